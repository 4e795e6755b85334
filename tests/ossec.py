"""Real OSSEC for the tests, built from the vendored source
(tests/vendor/, checked against its SHA256SUMS before each use).

``python3 tests/ossec.py build [TARGET]`` (run by tools/setup) builds
``TARGET`` (local, server or agent) once into ``.cache/ossec/`` (ignored by
git).  Each target has its own install prefix, compiled into its binaries, so
that a server and an agent can live side by side in one namespace.

``make install`` of OSSEC adds users and sets owners, and its daemons drop
privileges to those users, so everything runs in a private mount namespace
where a copy of /etc is bound over /etc, ``dirname(prefix)`` (``/var``) is a
writable overlay (the mount point for the prefix is made there, never on the
machine), and a scratch directory is bound over the prefix.  The machine's
own /etc, /var, firewall and services are never changed.

A test gets a fresh scratch install with :class:`Ossec`: a copy of the
cached tree, a copy of /etc with OSSEC's accounts added, and ossec-ar
installed into it by our own ``make install``.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

import vendored

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = vendored.OSSEC_VERSION
TARBALL = vendored.OSSEC_TARBALL
CACHE = os.path.join(ROOT, ".cache", "ossec")
PREFIXES = {"local": "/var/ossec", "server": "/var/ossec-server", "agent": "/var/ossec-agent"}
# The files that `make install` of OSSEC adds its accounts to.
ACCOUNT_FILES = ("group", "gshadow", "passwd", "shadow")
# The tests' own PATH, and the daemons': never the caller's.
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Missing(Exception):
    """A prerequisite is missing; the message says which and what to do."""


# Runs as root in a new mount namespace: /etc, an overlay on the prefix's
# parent (so its mount point exists without being made on the machine),
# then the scratch tree on the prefix.
_ENTER = r'''
set -e
etc=$1 etc_mode=$2 upper=$3 work=$4 tree=$5 prefix=$6
shift 6
mount --bind "$etc" /etc
[ "$etc_mode" = rw ] || mount -o remount,bind,ro /etc
parent=$(dirname "$prefix")
mount -t overlay overlay -o "lowerdir=$parent,upperdir=$upper,workdir=$work" "$parent"
mkdir -p "$prefix"
mount --bind "$tree" "$prefix"
exec "$@"
'''


def namespace_argv(etc, upper, work, tree, prefix, argv, new_net=True, etc_readonly=False):
    """*argv* run in a private mount namespace (and network namespace unless
    *new_net* is false: the caller is already in one of its own)."""
    for path in (etc, upper, work, tree):
        if "," in path or ":" in path:
            raise ValueError("overlay options cannot carry %r" % path)
    if os.path.dirname(prefix) == "/":
        raise ValueError("the prefix needs a parent directory other than /: %s" % prefix)
    return (["unshare", "--mount", "--propagation", "private"]
            + (["--net"] if new_net else [])
            + ["sh", "-c", _ENTER, "sh", etc, "ro" if etc_readonly else "rw",
               upper, work, tree, prefix] + list(argv))


# --- the cache ---------------------------------------------------------------

def entry_path(target):
    return os.path.join(CACHE, "%s-%s" % (VERSION, target))


def _wanted(target):
    # The tarball's checksum keys the cache: checked against SHA256SUMS
    # (a changed tarball is refused), and a cache built from another
    # tarball is rebuilt.
    return {"tarball_sha256": _verified_tarball(), "target": target,
            "prefix": PREFIXES[target]}


def _complete(entry, wanted):
    try:
        with open(os.path.join(entry, "build.json")) as f:
            return json.load(f) == wanted
    except (OSError, ValueError):
        return False


def _verified_tarball():
    try:
        return vendored.verify(TARBALL)
    except (OSError, vendored.Mismatch) as error:
        raise Missing("the vendored OSSEC source: %s" % error)


def require_tarball():
    _verified_tarball()


def build(target="local", log=sys.stderr):
    """The cache entry for *target*, built first if it is missing, incomplete
    (a killed build) or from another tarball.  Safe to run concurrently: one
    build at a time, under a lock."""
    require_tarball()
    if os.geteuid() != 0:
        raise Missing("building OSSEC needs root (and CI runs as root)")
    entry = entry_path(target)
    os.makedirs(CACHE, exist_ok=True)
    with open(entry + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = _wanted(target)
        if _complete(entry, wanted):
            return entry
        print("tests/ossec.py: building OSSEC %s TARGET=%s into %s"
              % (VERSION, target, entry), file=log)
        shutil.rmtree(entry, ignore_errors=True)
        new = entry + ".new"
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(new)
        _build_into(new, target)
        with open(os.path.join(new, "build.json"), "w") as f:
            json.dump(wanted, f)
        # The rename is what makes the entry complete.
        os.rename(new, entry)
        return entry


def _run_logged(argv, logfile, **kwargs):
    with open(logfile, "ab") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, timeout=1200, **kwargs)
    if result.returncode != 0:
        with open(logfile, errors="replace") as f:
            tail = f.read()[-4000:]
        raise Missing("%s exited %d; the end of %s:\n%s"
                      % (argv[:4], result.returncode, logfile, tail))


# Files of /etc that a test's copy leaves out: they start absent, as on a
# clean machine, so that what the machine happens to have never changes a
# test's outcome (a stray hosts.deny line; an ossec-ar.conf, which would
# take priority over the test's own configuration).
LEFT_OUT = ("hosts.deny", "hosts.allow", "ossec-ar.conf")


def copy_etc(destination, timeout=300):
    """Copy /etc to *destination* (returned), less the files of LEFT_OUT."""
    subprocess.run(["cp", "-a", "/etc", destination], check=True, timeout=timeout)
    for name in LEFT_OUT:
        if os.path.lexists(os.path.join(destination, name)):
            os.unlink(os.path.join(destination, name))
    return destination


def _build_into(new, target):
    prefix = PREFIXES[target]
    logfile = os.path.join(new, "build.log")
    env = {"PATH": PATH, "LANG": "C", "HOME": "/root"}
    subprocess.run(["tar", "-xzf", TARBALL, "-C", new], check=True, timeout=300)
    (top,) = [name for name in os.listdir(new) if name.startswith("ossec-hids-")]
    src = os.path.join(new, top, "src")
    _run_logged(["make", "-C", src, "-j2", "TARGET=" + target, "PREFIX=" + prefix,
                 "build"], logfile, env=env)
    etc = os.path.join(new, "etc")
    subprocess.run(["cp", "-a", "/etc", etc], check=True, timeout=300)
    tree = os.path.join(new, "tree")
    upper, work = os.path.join(new, "upper"), os.path.join(new, "work")
    for path in (tree, upper, work):
        os.makedirs(path)
    _run_logged(namespace_argv(etc, upper, work, tree, prefix,
                               ["make", "-C", src, "TARGET=" + target, "PREFIX=" + prefix,
                                "install"]), logfile, env=env)
    accounts = {name: _added_lines(os.path.join("/etc", name), os.path.join(etc, name))
                for name in ACCOUNT_FILES}
    if not accounts["passwd"] or not accounts["group"]:
        raise Missing("OSSEC's make install added no accounts; see %s" % logfile)
    with open(os.path.join(new, "accounts.json"), "w") as f:
        json.dump(accounts, f, indent=1)
    for path in (os.path.join(new, top), etc, upper, work):
        shutil.rmtree(path)


def built_source(target="local", log=sys.stderr):
    """The ``src/`` directory of OSSEC built for *target* and kept (build()
    keeps only the installed tree): for the tests that run OSSEC's own
    ``make install`` again over a prefix where ossec-ar is installed, as
    an administrator re-installing OSSEC from source does.  Cached beside
    build()'s entries, under a lock, rebuilt when the tarball changes."""
    require_tarball()
    if os.geteuid() != 0:
        raise Missing("building OSSEC needs root (and CI runs as root)")
    entry = entry_path(target) + "-source"
    os.makedirs(CACHE, exist_ok=True)
    with open(entry + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = dict(_wanted(target), kept="source")
        if not _complete(entry, wanted):
            print("tests/ossec.py: building OSSEC %s TARGET=%s, source kept, into %s"
                  % (VERSION, target, entry), file=log)
            shutil.rmtree(entry, ignore_errors=True)
            new = entry + ".new"
            shutil.rmtree(new, ignore_errors=True)
            os.makedirs(new)
            subprocess.run(["tar", "-xzf", TARBALL, "-C", new], check=True, timeout=300)
            (top,) = [name for name in os.listdir(new) if name.startswith("ossec-hids-")]
            _run_logged(["make", "-C", os.path.join(new, top, "src"), "-j2",
                         "TARGET=" + target, "PREFIX=" + PREFIXES[target], "build"],
                        os.path.join(new, "build.log"),
                        env={"PATH": PATH, "LANG": "C", "HOME": "/root"})
            with open(os.path.join(new, "build.json"), "w") as f:
                json.dump(wanted, f)
            os.rename(new, entry)
    (top,) = [name for name in os.listdir(entry) if name.startswith("ossec-hids-")]
    return os.path.join(entry, top, "src")


def _names(path):
    try:
        with open(path) as f:
            return {line.split(":", 1)[0] for line in f if line.strip()}
    except FileNotFoundError:
        return set()


def _added_lines(before, after):
    """The lines of account file *after* whose names *before* lacks."""
    known = _names(before)
    with open(after) as f:
        return [line.rstrip("\n") for line in f
                if line.strip() and line.split(":", 1)[0] not in known]


# --- accounts in a copy of /etc ---------------------------------------------

def _read_ids(path, field):
    ids = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) > field:
                ids[parts[0]] = int(parts[field])
    return ids


def _free_id(used):
    for number in range(999, 99, -1):
        if number not in used:
            used.add(number)
            return number
    raise Missing("no free system id between 100 and 999 for OSSEC's accounts")


def add_accounts(etc, accounts):
    """Add OSSEC's accounts to the /etc copy *etc*: an account the copy
    already has is kept, an id already taken is replaced by a free one.
    Returns the (uid map, gid map) from the cached tree's ids to the copy's."""
    groups = _read_ids(os.path.join(etc, "group"), 2)
    users = _read_ids(os.path.join(etc, "passwd"), 2)
    gid_map, uid_map = {}, {}
    new_lines = {name: [] for name in ACCOUNT_FILES}

    used = set(groups.values())
    for line in accounts["group"]:
        parts = line.split(":")
        old = int(parts[2])
        if parts[0] in groups:
            gid_map[old] = groups[parts[0]]
            continue
        gid_map[old] = old if old not in used else _free_id(used)
        used.add(gid_map[old])
        parts[2] = str(gid_map[old])
        new_lines["group"].append(":".join(parts))

    used = set(users.values())
    for line in accounts["passwd"]:
        parts = line.split(":")
        old = int(parts[2])
        if parts[0] in users:
            uid_map[old] = users[parts[0]]
            continue
        uid_map[old] = old if old not in used else _free_id(used)
        used.add(uid_map[old])
        parts[2] = str(uid_map[old])
        parts[3] = str(gid_map.get(int(parts[3]), int(parts[3])))
        new_lines["passwd"].append(":".join(parts))

    for name in ("shadow", "gshadow"):
        known = _names(os.path.join(etc, name))
        new_lines[name] = [line for line in accounts[name]
                           if line.split(":", 1)[0] not in known]
    for name in ACCOUNT_FILES:
        if new_lines[name]:
            with open(os.path.join(etc, name), "a") as f:
                f.write("".join(line + "\n" for line in new_lines[name]))
    return uid_map, gid_map


def remap_owners(tree, uid_map, gid_map):
    """Give the files of *tree* the ids the accounts have in this /etc copy."""
    if all(k == v for k, v in uid_map.items()) and all(k == v for k, v in gid_map.items()):
        return
    for top, dirs, files in os.walk(tree):
        for name in [""] + dirs + files:
            path = os.path.join(top, name) if name else top
            info = os.lstat(path)
            uid, gid = uid_map.get(info.st_uid, info.st_uid), gid_map.get(info.st_gid,
                                                                          info.st_gid)
            if (uid, gid) != (info.st_uid, info.st_gid):
                mode = info.st_mode
                os.lchown(path, uid, gid)
                if not os.path.islink(path):
                    os.chmod(path, mode & 0o7777)     # chown drops set-id bits


# --- a scratch install -------------------------------------------------------

class Ossec:
    """A fresh OSSEC install of *target* under *scratch*, from the cache.

    ``tree`` is where the prefix's files are on the machine; inside the
    namespaces they are at ``prefix`` (``/var/ossec``), where the binaries
    look for them.  ``etc`` is the copy of /etc the namespaces see.
    """

    def __init__(self, scratch, target="local"):
        entry = build(target)
        self.scratch = str(scratch)
        self.target = target
        self.prefix = PREFIXES[target]
        self.root = os.path.join(self.scratch, "root")
        self.tree = self.root + self.prefix
        self.etc = os.path.join(self.scratch, "etc")
        self.upper = os.path.join(self.scratch, "overlay", "upper")
        self.work = os.path.join(self.scratch, "overlay", "work")
        for path in (os.path.dirname(self.tree), self.upper, self.work):
            os.makedirs(path)
        subprocess.run(["cp", "-a", os.path.join(entry, "tree"), self.tree],
                       check=True, timeout=120)
        copy_etc(self.etc, timeout=120)
        with open(os.path.join(entry, "accounts.json")) as f:
            uid_map, gid_map = add_accounts(self.etc, json.load(f))
        remap_owners(self.tree, uid_map, gid_map)

    def path(self, *parts):
        """The machine's path of ``<prefix>/<parts>``."""
        return os.path.join(self.tree, *parts)

    # ossec-ar, installed as the README says

    def install_ossec_ar(self, python="/usr/bin/python3"):
        subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + self.root,
                        "PREFIX=" + self.prefix, "PYTHON=" + python],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)

    def install_ossec_again(self):
        """OSSEC's own ``make install`` of the same source, run again over
        this install, ossec-ar's links included, as an administrator who
        re-installs or upgrades OSSEC from source does.  Its output."""
        src = built_source(self.target)
        result = self.run(["make", "-C", src, "TARGET=" + self.target,
                           "PREFIX=" + self.prefix, "install"], timeout=600,
                          stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise AssertionError("OSSEC's make install exited %d:\n%s"
                                 % (result.returncode, result.stdout[-4000:]))
        return result.stdout

    def install_rules(self):
        """``cat ... >> local_decoder.xml`` and ``>> local_rules.xml``, from
        the files our make install put in its DATADIR: /usr/share/ossec-ar
        for the prefix /var/ossec, ``<prefix>/share/ossec-ar`` for any other
        (the server's and the agent's)."""
        if self.prefix == "/var/ossec":
            shared = os.path.join(self.root, "usr", "share", "ossec-ar")
        else:
            shared = self.path("share", "ossec-ar")
        for source, target in (("ossec-ar_decoders.xml", ("etc", "local_decoder.xml")),
                               ("ossec-ar_rules.xml", ("rules", "local_rules.xml"))):
            with open(os.path.join(shared, source), "rb") as f:
                data = f.read()
            with open(self.path(*target), "ab") as f:
                f.write(data)

    def configure_ossec_ar(self, text):
        path = self.path("etc", "ossec-ar.conf")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o640)

    def ar_log(self):
        with open(self.path("logs", "active-responses.log"), encoding="utf-8",
                  errors="surrogateescape") as f:
            return f.read().splitlines()

    # running things in the namespaces

    def argv(self, argv, netns=None, etc_readonly=False):
        """*argv* in a private mount namespace with this install in place, and
        in *netns* (a conftest.Netns) or else a new, empty network namespace."""
        inner = namespace_argv(self.etc, self.upper, self.work, self.tree, self.prefix,
                               argv, new_net=netns is None, etc_readonly=etc_readonly)
        return (netns.prefix() if netns is not None else []) + inner

    def run(self, argv, netns=None, env=None, input=None, timeout=120, etc_readonly=False,
            **kwargs):
        full_env = {"PATH": PATH, "LANG": "C"}
        full_env.update(env or {})
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        if input is None:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(argv, netns, etc_readonly), env=full_env,
                              input=input, timeout=timeout, universal_newlines=True,
                              **kwargs)

    def logtest(self, lines):
        """Each line through the real ossec-logtest: a list of events, one per
        line, in order."""
        for line in lines:
            if "\n" in line or not line.strip():
                raise ValueError("one non-empty line per event: %r" % line)
        result = self.run([self.prefix + "/bin/ossec-logtest"],
                          input="".join(line + "\n" for line in lines))
        if result.returncode != 0:
            raise AssertionError("ossec-logtest exited %d:\n%s"
                                 % (result.returncode, result.stderr))
        # ossec-logtest prints its results on stderr.
        events = parse_logtest(result.stderr)
        if [event.full for event in events] != list(lines):
            raise AssertionError("ossec-logtest gave %d events for %d lines:\n%s"
                                 % (len(events), len(lines), result.stderr[-4000:]))
        return events

    # the daemons

    def pids(self):
        """The daemons' pids, from their pid files."""
        run_dir = self.path("var", "run")
        found = {}
        for name in os.listdir(run_dir):
            match = re.match(r"^(ossec-[a-z]+)-(\d+)\.pid$", name)
            if match:
                found[match.group(1)] = int(match.group(2))
        return found

    def control(self, action, netns, timeout=120, terminal=None):
        """``ossec-control start`` or ``stop`` in *netns*; output goes to a
        file, since the daemons keep what they inherit, or to *terminal*
        (a pseudo-terminal's descriptor), as when a person types it; then
        the output returned is ""."""
        if terminal is not None:
            result = self.run([self.prefix + "/bin/ossec-control", action], netns=netns,
                              stdout=terminal, stderr=terminal, timeout=timeout)
            return result.returncode, ""
        out = os.path.join(self.scratch, "ossec-control.out")
        with open(out, "a") as f:
            result = self.run([self.prefix + "/bin/ossec-control", action], netns=netns,
                              stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
        with open(out) as f:
            return result.returncode, f.read()

    def stop(self, netns, timeout=30):
        """Stop the daemons.  Those still running after *timeout* seconds
        are killed by their pids (checked to be this install's daemons) and
        their names returned."""
        pids = self.pids()
        self.control("stop", netns)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._running(pids):
            time.sleep(0.2)
        left = self._running(pids)
        for name in left:
            os.kill(pids[name], 9)
        return sorted(left)

    def _running(self, pids):
        return [name for name, pid in pids.items()
                if _command(pid) == self.prefix + "/bin/" + name]


def _command(pid):
    """The program a live process runs (None if gone or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.fsdecode(f.read().split(b"\0", 1)[0])
    except (OSError, IndexError):
        return None


# --- what the daemons write ------------------------------------------------

def read(path):
    """The text of *path*, or "" while it does not exist."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(what, check, seconds, context):
    """Poll *check* until it returns something true, and return that; fail
    after *seconds* with *what* and ``context()`` (the logs that explain)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("after %ds, still no %s\n%s" % (seconds, what, context()))
        time.sleep(0.2)


class Alert:
    """One alert of alerts.log: ``rule``, ``level``, ``description``,
    ``srcip`` (None if none), ``location`` (the header's second line, which
    names the agent), ``log`` (the event's line) and ``text``."""

    def __init__(self, block):
        lines = block.splitlines()
        rule = re.match(r"^Rule: (\d+) \(level (\d+)\) -> '(.*)'$", lines[2])
        self.rule, self.level, self.description = int(rule.group(1)), int(rule.group(2)), \
            rule.group(3)
        self.location = lines[1]
        self.srcip = next((line[len("Src IP: "):] for line in lines
                           if line.startswith("Src IP: ")), None)
        self.log = lines[-1]
        self.text = block

    def __repr__(self):
        return "Alert(%d, %r, %r)" % (self.rule, self.srcip, self.log)


def alerts(install):
    """The alerts in *install*'s logs/alerts/alerts.log, oldest first."""
    text = read(install.path("logs", "alerts", "alerts.log"))
    return [Alert("** Alert" + block.rstrip("\n")) for block in text.split("** Alert")[1:]]


# --- ossec-logtest's output ----------------------------------------------------

class Event:
    """One line's result: ``full`` (the line), ``fields`` (name -> value, as
    Phase 2
    prints them), ``decoder``, ``rule`` and ``level`` (None if no rule)."""

    def __init__(self):
        self.full = None
        self.fields = {}
        self.decoder = None
        self.rule = None
        self.level = None
        self.description = None

    def __repr__(self):
        return "Event(rule=%r, level=%r, decoder=%r, fields=%r, full=%r)" % (
            self.rule, self.level, self.decoder, self.fields, self.full)


_VALUE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_. -]*): '(.*)'$")


def parse_logtest(text):
    events, event, phase = [], None, None
    for line in text.splitlines():
        if line.startswith("**Phase 1:"):
            event, phase = Event(), 1
            events.append(event)
            continue
        if line.startswith("**Phase 2:"):
            phase = 2
            continue
        if line.startswith("**Phase 3:"):
            phase = 3
            continue
        match = _VALUE.match(line)
        if event is None or not match:
            continue
        name, value = match.groups()
        if phase == 1 and name == "full event":
            event.full = value
        elif phase == 2 and name == "decoder":
            event.decoder = value
        elif phase == 2:
            event.fields[name] = value
        elif phase == 3 and name == "Rule id":
            event.rule = int(value)
        elif phase == 3 and name == "Level":
            event.level = int(value)
        elif phase == 3 and name == "Description":
            event.description = value
    return events


@contextlib.contextmanager
def held_lock(path):
    """Hold ``flock(2)`` on *path* (created if missing, in a directory made
    as the programs make their state directory) for the block."""
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def main(argv):
    if len(argv) < 2 or argv[1] != "build" or len(argv) > 3:
        print("usage: tests/ossec.py build [%s]" % "|".join(sorted(PREFIXES)),
              file=sys.stderr)
        return 64
    target = argv[2] if len(argv) == 3 else "local"
    if target not in PREFIXES:
        print("tests/ossec.py: unknown target %s" % target, file=sys.stderr)
        return 64
    try:
        build(target)
    except Missing as error:
        print("tests/ossec.py: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
