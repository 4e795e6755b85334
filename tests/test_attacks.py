"""Attacks by whoever holds the ossec user or group, made as a real
unprivileged uid and gid against the installed programs.

The scratch prefix gets the owners and modes of a real install, measured on
OSSEC built from source (src/Makefile of the vendored tree: logs/
ossec:ossec 0750, active-responses.log ossec:ossec 0660, var/ root:ossec
0550, var/run root:ossec 0770, etc/ root:ossec 0550) and read in Wazuh's
src/init/inst-functions.sh (etc/ wazuh:wazuh 0770, var/db root:wazuh
0770).  The attacker's files are planted by a process running as that uid
and gid; the programs then run as root, as execd runs them, inside a
private mount namespace with a fresh copy of /etc bound over /etc (the
attacks aim at /etc/shadow and /etc/ld.so.preload) and, for the firewall,
a private network namespace.  Each test compares checksums of that /etc
before and after, bounds every run, and checks that the block happened and
that the log or syslog says why.
"""

import hashlib
import json
import os
import pwd
import grp
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import Install, make_install, new_netns, delete_netns, require_root
from ossec import copy_etc
from test_wazuh import message, with_command

UID = GID = 61234          # the "ossec" user and group of these tests
BOUND = 30                 # seconds; a normal run takes well under one

# Runs in the private mount namespace: /etc is the copy, /dev a tmpfs with
# /dev/null and our own /dev/log catcher, so the machine's syslog is never
# involved.  Prints the exit code, then every message syslog received.
IN_PRIVATE_MOUNTS = r"""
set -e
mount --bind "$ETC" /etc
mount -t tmpfs none /dev
mknod -m 0666 /dev/null c 1 3
exec "$@"
"""

SYSLOG_AND_RUN = r"""
import json, os, socket, subprocess, sys
catcher = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
catcher.bind("/dev/log")
stalled = os.environ.get("STALL_SYSLOG") == "1"
if stalled:                       # a syslogd that has stopped reading
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    try:
        while True:
            filler.sendto(b"x" * 512, "/dev/log")
    except BlockingIOError:
        pass
stdin = subprocess.DEVNULL
data = os.environ.get("REQUEST")
proc = subprocess.run(sys.argv[1:], input=data.encode() if data else None,
                      stdin=None if data else stdin, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, timeout=float(os.environ["BOUND"]))
messages = []
catcher.setblocking(False)
while not stalled:
    try:
        messages.append(catcher.recv(65536).decode("utf-8", "replace"))
    except BlockingIOError:
        break
print(json.dumps({"code": proc.returncode, "stdout": proc.stdout.decode("utf-8", "replace"),
                  "stderr": proc.stderr.decode("utf-8", "replace"), "syslog": messages}))
"""


# The attacker's interpreter: the system's, which the unprivileged uid can run.
ATTACKER_PYTHON = "/usr/bin/python3"


def as_attacker(script, *args):
    """Run Python *script* as the unprivileged uid and gid; its exit code."""
    return subprocess.run([ATTACKER_PYTHON, "-c", script] + list(args), user=UID, group=GID,
                          extra_groups=[], timeout=BOUND, stdin=subprocess.DEVNULL).returncode


def checksums(top):
    """{relative path: sha256 or link target or kind} of everything under *top*."""
    found = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as f:
                    value = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                value = "-> " + os.readlink(path)
            else:
                value = stat.S_IFMT(info.st_mode)
            found[os.path.relpath(path, top)] = (value, info.st_uid, info.st_mode)
    return found


class Agent:
    """An installed ossec-ar with a real install's owners and modes."""

    def __init__(self, top, flavour):
        require_root()
        self.top = top
        for name, lookup in (("uid", pwd.getpwuid), ("gid", grp.getgrgid)):
            try:
                lookup(UID)
                pytest.fail("%s %d exists on this machine; the tests need it unused"
                            % (name, UID))
            except KeyError:
                pass
        self.install = Install(make_install(os.path.join(top, "destdir")))
        self.prefix = self.install.prefix
        self.etc = os.path.join(top, "etc")
        copy_etc(self.etc)
        os.makedirs(os.path.join(self.prefix, "logs"))
        os.makedirs(os.path.join(self.prefix, "etc"))
        os.makedirs(os.path.join(self.prefix, "var", "run"))
        os.makedirs(os.path.join(self.prefix, "var", "db"))
        with open(self.install.log_file, "w"):
            pass
        modes = {
            "": (0, GID, 0o550), "logs": (UID, GID, 0o750),
            "logs/active-responses.log": (UID, GID, 0o660), "var": (0, GID, 0o550),
            "var/run": (0, GID, 0o770), "var/db": (0, GID, 0o770),
            "active-response": (0, GID, 0o550), "active-response/bin": (0, GID, 0o550),
            "etc": (0, GID, 0o550) if flavour == "ossec" else (UID, GID, 0o770),
        }
        if flavour == "wazuh":
            modes[""] = (0, GID, 0o750)
            modes["var"] = (0, GID, 0o750)
        for relative, (uid, gid, mode) in modes.items():
            path = os.path.join(self.prefix, relative)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        # The attacker must be able to reach the prefix, as on a real host.
        for directory in (top, os.path.join(top, "destdir"),
                          os.path.join(top, "destdir", "var")):
            os.chmod(directory, 0o755)
        self.netns = None

    def path(self, relative):
        return os.path.join(self.prefix, relative)

    def run(self, name, *args, request=None, stall_syslog=False):
        """Run the installed *name* as root, as execd does: cwd /, nothing on
        stdin, in private mounts (and the test's network namespace)."""
        argv = [self.path("active-response/bin/" + name)] + list(args)
        return self._run(argv, request, stall_syslog)

    def _run(self, argv, request=None, stall_syslog=False):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ETC": self.etc, "BOUND": str(BOUND),
               "STALL_SYSLOG": "1" if stall_syslog else "0"}
        if request is not None:
            env["REQUEST"] = request
        wrap = self.netns.prefix() if self.netns else []
        full = wrap + ["unshare", "-m", "--propagation", "private", "sh", "-c",
                       IN_PRIVATE_MOUNTS, "sh", sys.executable, "-c", SYSLOG_AND_RUN] + argv
        start = time.monotonic()
        result = subprocess.run(full, env=env, cwd="/", stdout=subprocess.PIPE,
                                timeout=BOUND + 30)
        assert result.returncode == 0, result
        outcome = json.loads(result.stdout)
        outcome["seconds"] = time.monotonic() - start
        return outcome

    def log_lines(self):
        try:
            return self.install.log_lines()
        except (FileNotFoundError, IsADirectoryError, OSError):
            return []

    def blocked(self, address="192.0.2.7"):
        return "-A OSSEC -s %s/32 -j DROP" % address in self.netns.rules()


def make_agent(flavour):
    top = tempfile.mkdtemp(prefix="oar-attack-")
    host = Agent(top, flavour)
    host.flavour = flavour
    host.netns = new_netns()
    # The configuration itself must stay out of the attacker's etc/ on
    # Wazuh: it lives in /etc/ossec-ar.conf there (README, Configuration).
    if flavour == "wazuh":
        with open(os.path.join(host.etc, "ossec-ar.conf"), "w") as f:
            f.write("[firewall-drop]\nbackend = iptables\n")
    else:
        host.install.configure("[firewall-drop]\nbackend = iptables\n")
    return host


def drop_agent(host):
    delete_netns(host.netns)
    shutil.rmtree(host.top)


@pytest.fixture(params=["ossec", "wazuh"])
def agent(request):
    host = make_agent(request.param)
    yield host
    drop_agent(host)


@pytest.fixture
def wazuh_agent():
    host = make_agent("wazuh")
    yield host
    drop_agent(host)


PLANT_SYMLINK = "import os, sys; os.unlink(sys.argv[1]) if os.path.lexists(sys.argv[1]) " \
                "else None; os.symlink(sys.argv[2], sys.argv[1])"


@pytest.mark.parametrize("target", ["/etc/ld.so.preload", "/etc/shadow"])
def test_a_symlinked_log_writes_nothing_outside_and_the_block_happens(agent, target):
    log = agent.install.log_file
    assert as_attacker(PLANT_SYMLINK, log, target) == 0
    before = checksums(agent.etc)
    run = agent.run("firewall-drop.sh", "add", "/tmp/evil.so", "192.0.2.7", "1", "5712")
    assert (run["code"], run["stdout"], run["stderr"]) == (0, "", "")
    assert checksums(agent.etc) == before            # no /etc/ld.so.preload, shadow as it was
    assert agent.blocked()
    assert len(run["syslog"]) == 2
    reason = "cannot write %s (is a symbolic link, not a regular file): " % \
        agent.install.program().replace("/firewall-drop.sh", "/../../logs/active-responses.log")
    assert reason in run["syslog"][0] and run["syslog"][0].endswith(
        " add /tmp/evil.so 192.0.2.7 1 5712")
    assert run["syslog"][1].endswith(": add 192.0.2.7: blocked: iptables chain OSSEC "
                                     "(repaired: created chain OSSEC, jump from INPUT, jump "
                                     "from FORWARD) (exit 0)")
    assert os.readlink(log) == target                # the attacker's link, left alone


MAKE_FIFO = "import os, sys; os.unlink(sys.argv[1]); os.mkfifo(sys.argv[1], 0o666)"

# Holds the FIFO open for reading, as an attacker collecting our lines
# would, and reports what it got.
FIFO_READER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print("open", flush=True)
got = b""
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        got += os.read(fd, 65536)
    except BlockingIOError:
        pass
    time.sleep(0.05)
print(len(got), flush=True)
"""


@pytest.mark.parametrize("reader", [False, True], ids=["no reader", "attacker reading"])
@pytest.mark.parametrize("form", ["ossec", "wazuh"])
def test_a_fifo_log_never_hangs_and_the_block_happens(agent, reader, form):
    log = agent.install.log_file
    assert as_attacker(MAKE_FIFO, log) == 0
    listener = None
    if reader:
        listener = subprocess.Popen([ATTACKER_PYTHON, "-c", FIFO_READER, log, "8"],
                                    user=UID, group=GID, extra_groups=[],
                                    stdout=subprocess.PIPE, universal_newlines=True)
        assert listener.stdout.readline() == "open\n"
    try:
        if form == "ossec":
            run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
        else:
            # execd's request and, ahead of time, its answer to check_keys.
            request = message("add")
            run = agent.run("firewall-drop", request=(
                request + b"\n" + with_command(request, "continue") + b"\n").decode())
    finally:
        if listener:
            assert listener.stdout.readline() == "0\n"       # it read nothing of ours
            listener.wait(BOUND)
    assert run["code"] == 0 and run["seconds"] < BOUND
    assert agent.blocked()
    assert len(run["syslog"]) == 2 and all("is a FIFO, not a regular file" in m
                                           for m in run["syslog"]), run["syslog"]
    assert stat.S_ISFIFO(os.lstat(log).st_mode)


def test_a_stalled_syslog_never_holds_back_the_block(agent):
    # The log is unusable (a file where logs/ should be) and syslog takes
    # nothing: the run must still end at once, with the block done.
    shutil.rmtree(agent.path("logs"))
    with open(agent.path("logs"), "w") as f:
        f.write("not a directory")
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712",
                    stall_syslog=True)
    assert run["code"] == 0 and run["seconds"] < BOUND
    assert agent.blocked()


def test_the_old_ledger_place_is_never_followed_and_ours_is_out_of_reach(agent):
    """The ledger used to live in var/db, which Wazuh makes writable by its
    group: a link planted there is never followed.  The new place, var/ossec-ar,
    is root's alone: the attacker cannot even create a name in it."""
    old = agent.path("var/db/ossec-ar-firewall-drop.ledger")
    if agent.flavour == "wazuh":
        assert as_attacker(PLANT_SYMLINK, old, "/etc/shadow") == 0
    else:   # OSSEC's var/db is ours: root may have made it so, the attacker cannot
        os.symlink("/etc/shadow", old)
    before = checksums(agent.etc)
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
    assert run["code"] == 0 and agent.blocked()
    assert checksums(agent.etc) == before
    state = agent.path("var/ossec-ar")
    info = os.stat(state)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
    assert as_attacker("import os, sys; os.symlink('/etc/shadow', sys.argv[1])",
                       os.path.join(state, "x")) != 0
    assert os.readlink(old) == "/etc/shadow"
    with open(os.path.join(state, "firewall-drop.ledger")) as f:
        assert " add firewall-drop 192.0.2.7 iptables 5712 1 " in f.read()


def test_a_bad_ledger_file_costs_the_record_not_the_block(agent):
    # Only root can put anything in var/ossec-ar; if a link is there all the
    # same, the record is not written and the outcome line says why.
    state = agent.path("var/ossec-ar")
    os.makedirs(state, mode=0o700)
    os.symlink("/etc/shadow", os.path.join(state, "firewall-drop.ledger"))
    before = checksums(agent.etc)
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
    assert run["code"] == 0 and agent.blocked()
    assert checksums(agent.etc) == before
    assert agent.log_lines()[-1].endswith(
        "blocked: iptables chain OSSEC (repaired: created chain OSSEC, jump from INPUT, "
        "jump from FORWARD); ledger %s/firewall-drop.ledger not written: is a symbolic "
        "link, not a regular file (exit 0)" % state)


UNLINKER = r"""
import errno, os, sys, time
paths = sys.argv[1:-1]
deadline = time.monotonic() + float(sys.argv[-1])
removed = refused = 0
while time.monotonic() < deadline:
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
        except PermissionError:
            refused += 1
print(removed, refused, flush=True)
"""

CONCURRENT = r"""
import subprocess, sys
program = sys.argv[1]
procs = [subprocess.Popen([program, "add", "-", address, "1.1", "5712"],
                          stdin=subprocess.DEVNULL) for address in sys.argv[2:]]
print(max(p.wait() for p in procs))
"""


def test_an_unlinked_lock_loses_no_hosts_deny_line(agent):
    deny = os.path.join(agent.etc, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# the administrator's\n")
    addresses = ["198.51.100.%d" % n for n in range(1, 101)]
    old_lock = agent.path("var/run/ossec-ar-host-deny.lock")
    new_lock = agent.path("var/ossec-ar/host-deny.lock")
    with open(old_lock, "w"):
        pass
    unlinker = subprocess.Popen([ATTACKER_PYTHON, "-c", UNLINKER, old_lock, new_lock, "20"],
                                user=UID, group=GID, extra_groups=[], stdout=subprocess.PIPE,
                                universal_newlines=True)
    try:
        run = agent._run([sys.executable, "-c", CONCURRENT,
                          agent.path("active-response/bin/host-deny.sh")] + addresses)
    finally:
        removed, refused = map(int, unlinker.stdout.readline().split())
        unlinker.wait(BOUND)
    assert run["code"] == 0 and run["stdout"] == "0\n"
    with open(deny) as f:
        lines = f.read().splitlines()
    assert lines[0] == "# the administrator's"
    assert sorted(lines[1:]) == sorted("ALL:" + a for a in addresses)       # 100 of 100
    assert removed >= 1 and refused > 0       # it really tried, and could not reach ours
    listing = agent._run([agent.path("bin/ossec-ar"), "list", "--json"])
    rows = json.loads(listing["stdout"])["blocks"]
    assert sorted(r["address"] for r in rows if r["state"] == "in force") == sorted(addresses)


@pytest.mark.parametrize("how", ["owned by the ossec user", "group-writable",
                                 "in a directory the ossec user owns"])
def test_a_configuration_root_did_not_write_is_refused(agent, how):
    conf = agent.path("etc/ossec-ar.conf")
    if agent.flavour == "wazuh":
        os.unlink(os.path.join(agent.etc, "ossec-ar.conf"))   # the safe place unused
    text = "[allowlist]\naddresses = 0.0.0.0/0 ::/0\n"
    if how == "in a directory the ossec user owns":
        if agent.flavour == "ossec":
            os.chown(agent.path("etc"), UID, GID)
            os.chmod(agent.path("etc"), 0o770)
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o640)                    # root's file, in their directory
        reason = "%s is owned by uid %d, not root" % (agent.path("etc"), UID)
    else:
        with open(conf, "w") as f:
            f.write(text)
        if how == "group-writable":
            os.chmod(conf, 0o660)
            reason = "%s is writable by its group (mode 0660)" % conf
        else:
            os.chown(conf, UID, GID)
            os.chmod(conf, 0o640)
            reason = "%s is owned by uid %d, not root" % (conf, UID)
        if agent.flavour == "wazuh":
            reason = "%s is owned by uid %d, not root" % (agent.path("etc"), UID)
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
    assert run["code"] == 78
    assert not agent.blocked() and agent.netns.rules() == []
    assert agent.log_lines()[-1].endswith(
        ": add 192.0.2.7: failed: configuration %s: not trusted: %s; only a file that root "
        "alone can change is used (see README, Configuration) (exit 78)" % (conf, reason))


def test_a_fifo_configuration_never_hangs_and_ossec_ar_status_reports_it(wazuh_agent):
    # OSSEC's etc/ is root's: only the Wazuh layout lets the attacker in.
    agent = wazuh_agent
    os.unlink(os.path.join(agent.etc, "ossec-ar.conf"))
    conf = agent.path("etc/ossec-ar.conf")
    assert as_attacker("import os, sys; os.mkfifo(sys.argv[1], 0o666)", conf) == 0
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
    assert run["code"] == 78 and run["seconds"] < BOUND
    assert agent.log_lines()[-1].endswith(
        ": add 192.0.2.7: failed: configuration %s: cannot read: is a FIFO, not a regular "
        "file (exit 78)" % conf)
    status = agent._run([agent.path("bin/ossec-ar"), "status", "--json"])
    assert status["code"] == 78 and status["seconds"] < BOUND
    assert json.loads(status["stdout"])["config"]["state"].endswith("is a FIFO, not a "
                                                                    "regular file")


def test_the_system_configuration_comes_first_and_the_planted_one_is_never_read(
        wazuh_agent):
    agent = wazuh_agent
    conf = agent.path("etc/ossec-ar.conf")
    assert as_attacker("import os, sys; os.mkfifo(sys.argv[1], 0o666)", conf) == 0
    run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712")
    assert run["code"] == 0 and agent.blocked()       # /etc/ossec-ar.conf, not the FIFO


@pytest.mark.parametrize("umask", ["000", "077"])
def test_every_file_we_create_gets_the_owner_and_mode_we_chose(agent, umask):
    """Whatever execd's umask: the log as OSSEC's installer makes it (0660,
    the owner and group of logs/), our state directory root's 0700, its
    locks and ledgers root's 0600, a new hosts.deny root's 0644."""
    os.unlink(agent.install.log_file)
    deny = os.path.join(agent.etc, "hosts.deny")
    if os.path.lexists(deny):
        os.unlink(deny)
    umasked = ["sh", "-c", 'umask %s && exec "$@"' % umask, "sh"]
    for program in ("firewall-drop.sh", "host-deny.sh"):
        run = agent._run(umasked + [agent.path("active-response/bin/" + program), "add", "-",
                                    "192.0.2.7", "1.1", "5712"])
        assert run["code"] == 0, run
    assert agent.blocked()

    def owner_and_mode(path):
        info = os.lstat(path)
        return info.st_uid, info.st_gid, oct(stat.S_IMODE(info.st_mode))
    state = agent.path("var/ossec-ar")
    assert owner_and_mode(agent.install.log_file) == (UID, GID, "0o660")
    assert owner_and_mode(state) == (0, 0, "0o700")
    assert sorted(os.listdir(state)) == ["firewall-drop.ledger", "firewall-drop.lock",
                                         "host-deny.ledger", "host-deny.lock"]
    for name in os.listdir(state):
        assert owner_and_mode(os.path.join(state, name)) == (0, 0, "0o600"), name
    assert owner_and_mode(deny) == (0, 0, "0o644")
