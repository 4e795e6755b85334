"""What this host is, as far as the programs care: its name, where its
firewall tools are, and whether a daemon runs.

The system's name and the tool directories come from uname(2) and a fixed
list, unless the root-owned configuration file says otherwise (``[system]
name`` and ``tool_dirs``: the seam that the tests use for fake tools).
Nothing in the caller's environment can move either, and the settings
reach the code that needs them as this object, never as globals.
"""

import os

from .commands import DEFAULT_TOOL_DIRS, Tools
from .safefile import read_file


class System:
    def __init__(self, settings):
        self.name = settings.system_name or os.uname().sysname
        self.tools = Tools(settings.tool_dirs or DEFAULT_TOOL_DIRS)


# Where a daemon started by hand, or by an init that lets it, leaves its
# pid; systemd starts firewalld with --nopid, and then the unit's cgroup
# holds its processes (systemd's cgroup tree: unified, hybrid, legacy).
_PID_FILES = ("/run/%s.pid", "/var/run/%s.pid")
_UNIT_CGROUPS = ("/sys/fs/cgroup/system.slice/%s.service/cgroup.procs",
                 "/sys/fs/cgroup/unified/system.slice/%s.service/cgroup.procs",
                 "/sys/fs/cgroup/systemd/system.slice/%s.service/cgroup.procs")


def daemon_running(name):
    """True if the daemon *name* runs on this host, by its pid file or its
    systemd unit: a few small reads, where scanning every process would
    cost a millisecond on each run (and see daemons of other namespaces)."""
    for template in _PID_FILES:
        pid = _small_file(template % name)
        if pid is not None:
            if pid.strip().isdigit() and _is_process(int(pid), name):
                return True
            break
    if os.path.isdir("/run/systemd/system"):            # systemd is PID 1
        for template in _UNIT_CGROUPS:
            procs = _small_file(template % name)
            if procs is not None:
                return bool(procs.strip())
    return False


def _is_process(pid, name):
    """A live process of root's that runs the daemon *name*: a pid file may
    be stale and its pid reused by any process of anyone, which may call
    itself anything.  The name is checked in the command line too, as the
    program run or the script its interpreter runs (firewalld is a Python
    script: ``/usr/bin/python3 /usr/sbin/firewalld ...``)."""
    comm = _small_file("/proc/%d/comm" % pid)
    if comm is not None:
        if comm.strip() != name.encode():
            return False
        try:
            if os.stat("/proc/%d" % pid).st_uid != 0:
                return False
        except OSError:
            return False
        words = (_small_file("/proc/%d/cmdline" % pid) or b"").split(b"\0")[:2]
        return any(os.path.basename(word) == name.encode() for word in words)
    if os.path.isdir("/proc/self"):
        return False
    try:                         # no /proc (the BSDs): a live pid will do
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _small_file(path):
    try:
        data, _ = read_file(path, 4096)
    except OSError:
        return None
    return data
