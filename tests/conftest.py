"""Shared fixtures: the source tree, an installed copy, private namespaces.

Everything that touches a firewall runs inside a network namespace made by
the test and deleted after it, so the machine's own firewall is never
changed.  Tests that need root fail loudly instead of skipping: CI runs as
root, and a skipped test there would be a test that does not exist.
"""

import faulthandler
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ossec import copy_etc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

PYTHON = "/usr/bin/python3"


def _keep_mode_of_existing_files():
    """pyfakefs 5.7's os.open applies its mode argument to a file that
    already exists (open(2) uses it only when it creates the file): put the
    old mode back, so that a fake file's mode is what the test gave it."""
    from pyfakefs import fake_os
    original = fake_os.FakeOsModule.open

    def posix_open(self, path, flags, *args, **kwargs):
        try:
            before = self.filesystem.lresolve(path).st_mode
        except OSError:
            before = None
        fd = original(self, path, flags, *args, **kwargs)
        if before is not None:
            self.filesystem.get_open_file(fd).get_object().st_mode = before
        return fd
    fake_os.FakeOsModule.open = posix_open


_keep_mode_of_existing_files()


@pytest.fixture
def fs(fs):
    """pyfakefs's file system, with the modes of a real one: its root
    directory is 0777 where every real / is 0755, and the programs refuse
    to trust a file under a directory that anyone can write."""
    os.chmod("/", 0o755)
    return fs


INSTALL_PREFIX = "/var/ossec"

# The words that run a command with the clock past 2262-04-11 (where Python's
# time.time() fails), the monotonic clock left alone; out of any faketime
# the tests themselves run under (test_dates.py), which would complain.
AFTER_2262 = ["env", "-u", "LD_PRELOAD", "-u", "FAKETIME", "-u", "FAKETIME_SHARED",
              "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "2263-01-01 00:00:00"]


# ---------------------------------------------------------------- no test hangs
#
# Every test (its set-up and tear-down included) gets BOUND seconds, or what
# its ``time_bound`` marker says.  A watchdog thread, not SIGALRM or a timer
# of the process (the lock under test uses both and checks they are left
# alone), watches the clock: past the bound it writes the test's name and
# every thread's traceback to the terminal, then sends SIGUSR2, which no code
# under test uses, to the main thread; its handler fails the test there, so
# that a test blocked in a system call (open(2) of a FIFO, a wait) fails
# with its name and the run goes on.  Should the test still not end within
# GRACE seconds (its cleanup hangs too), the run ends, the name said.  The
# bound catches hangs; it measures nothing: the slowest tests measured take
# about 16 s (test_ossec_daemons.py, test_dates.py), the package builds 3 s.
# OSSEC_AR_TEST_BOUND overrides the default (to see this work).
BOUND = float(os.environ.get("OSSEC_AR_TEST_BOUND", 300))
GRACE = 60
_INTERRUPT = signal.SIGUSR2


class _Watchdog:
    def __init__(self, stderr_fd):
        self.stderr_fd = stderr_fd
        self.condition = threading.Condition()
        self.running = None         # (nodeid, bound, deadline) of the current test
        self.interrupted = None
        thread = threading.Thread(target=self._watch, name="test-watchdog", daemon=True)
        thread.start()

    def start(self, nodeid, bound):
        with self.condition:
            self.running = (nodeid, bound, time.monotonic() + bound)
            self.condition.notify()

    def stop(self):
        with self.condition:
            self.running = None
            self.condition.notify()

    def _say(self, text):
        os.write(self.stderr_fd, ("\n+++ %s\n" % text).encode("utf-8", "replace"))
        faulthandler.dump_traceback(file=self.stderr_fd, all_threads=True)

    def _watch(self):
        with self.condition:
            while True:
                running = self.running
                if running is None:
                    self.condition.wait()
                    continue
                left = running[2] - time.monotonic()
                if left > 0:
                    self.condition.wait(left)
                    continue
                nodeid, bound, _ = running
                self.interrupted = running
                self._say("%s still running after %g s (the per-test bound, tests/conftest.py)"
                          "; its threads:" % (nodeid, bound))
                signal.pthread_kill(threading.main_thread().ident, _INTERRUPT)
                self.condition.wait(GRACE)
                if self.running is running:
                    self._say("%s did not stop within %d s of being failed; the run ends here"
                              % (nodeid, GRACE))
                    os._exit(3)


_watchdog = None


def _time_is_up(signum, frame):
    running = _watchdog.interrupted
    if running is None or _watchdog.running is not running:
        return                      # that test ended as the signal came
    name, bound, _ = running
    pytest.fail("%s: still running after %g s, failed by the per-test bound "
                "(tests/conftest.py; its tracebacks are on stderr)" % (name, bound),
                pytrace=True)


def pytest_configure(config):
    global _watchdog
    if _watchdog is None:
        # Capture is suspended here: descriptor 2 is the terminal's.
        _watchdog = _Watchdog(os.dup(2))
        signal.signal(_INTERRUPT, _time_is_up)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    marker = item.get_closest_marker("time_bound")
    _watchdog.start(item.nodeid, marker.args[0] if marker else BOUND)
    try:
        outcome = yield
    finally:
        _watchdog.stop()
    if outcome.excinfo and issubclass(outcome.excinfo[0], KeyboardInterrupt):
        # Ctrl-C, or tools/check's bound on the whole run: say where.
        os.write(_watchdog.stderr_fd, ("\n+++ interrupted in %s\n" % item.nodeid).encode())


# Our invocation line: "<C date> <argv0> <$1> <$2> <$3> ...".  An outcome
# line has a colon right after argv0 and is not one.  This reads our own
# format only; what OSSEC makes of these lines is tested with the real
# ossec-logtest (test_ossec_rules.py).
_INVOCATION = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9:]{8} [A-Za-z]+ [0-9]{4} "
                         r"/\S+/active-response/bin/([^\s:]+) (\S*) \S* (\S*)")


def invocation(line):
    """(program, action, address) of an invocation line, or None."""
    match = _INVOCATION.match(line)
    return match.groups() if match else None


def require_root():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (and CI runs as root)")


def make_install(destdir, prefix=INSTALL_PREFIX):
    subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + destdir,
                    "PREFIX=" + prefix, "PYTHON=" + PYTHON],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return destdir + prefix


def state_file(prefix, name):
    """A file in the programs' root-only state directory, which holds the
    locks and ledgers (the directory is made as the programs make it)."""
    directory = os.path.join(prefix, "var", "ossec-ar")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, name)


class Install:
    """An installed copy of ossec-ar under a scratch prefix."""

    def __init__(self, prefix, backend=None):
        self.prefix = prefix
        self.bin = os.path.join(prefix, "active-response", "bin")
        self.logs = os.path.join(prefix, "logs")
        self.log_file = os.path.join(self.logs, "active-responses.log")
        self.config_file = os.path.join(prefix, "etc", "ossec-ar.conf")
        # The backend the tests of one layout choose; None leaves it to auto.
        self.backend = backend

    def program(self, name="firewall-drop.sh"):
        return os.path.join(self.bin, name)

    def reset(self):
        os.makedirs(self.logs, exist_ok=True)
        with open(self.log_file, "w"):
            pass
        if os.path.exists(self.config_file):
            os.unlink(self.config_file)
        if self.backend:
            self.configure("")
        # Each test starts with empty ledgers, as with an empty log.
        for name in ("firewall-drop.ledger", "host-deny.ledger", "adopted"):
            path = os.path.join(self.prefix, "var", "ossec-ar", name)
            if os.path.lexists(path):
                os.unlink(path)

    def own(self, address, program="host-deny", where="/etc/hosts.deny"):
        """Record in *program*'s ledger that a block of *address* is ours
        (as ``ossec-ar adopt`` does for a stock block found at install):
        for tests that plant blocks by hand and then lift them."""
        from ossec_ar import ledger
        assert ledger.record(self.prefix, program, "adopt", address, where) is None

    def adopt(self, netns=None, mounts=None, env=None):
        """``ossec-ar adopt``, as install runs it: in *netns* (a private
        network namespace of its own if None, so that the machine's own
        firewall is not even read), over the mounts of a shell line."""
        argv = [os.path.join(self.prefix, "bin", "ossec-ar"), "--json", "adopt"]
        if mounts:
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
                    mounts + '\nexec "$@"', "sh"] + argv
        if netns is None:
            argv = ["unshare", "-n"] + argv
        else:
            argv = netns.prefix() + argv
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=120, env=env,
                                universal_newlines=True)
        assert (result.returncode, result.stderr) == (0, ""), result
        return json.loads(result.stdout)["adopted"]

    def log_lines(self):
        with open(self.log_file, encoding="utf-8", errors="surrogateescape") as f:
            return f.read().splitlines()

    def configure(self, text):
        """Write the configuration file; with a chosen backend, *text* gets
        its ``backend =`` line unless it says one of its own."""
        if self.backend and "backend =" not in text:
            line = "backend = %s\n" % self.backend
            if "[firewall-drop]\n" in text:
                text = text.replace("[firewall-drop]\n", "[firewall-drop]\n" + line, 1)
            else:
                text = "[firewall-drop]\n" + line + text
        os.makedirs(os.path.dirname(self.config_file), exist_ok=True)
        with open(self.config_file, "w") as f:
            f.write(text)
        os.chmod(self.config_file, 0o640)


@pytest.fixture(scope="session")
def installed_prefix(tmp_path_factory):
    return make_install(str(tmp_path_factory.mktemp("destdir")))


def _install(installed_prefix, backend):
    copy = Install(installed_prefix, backend)
    copy.reset()
    yield copy
    copy.backend = None
    copy.reset()


@pytest.fixture
def install(installed_prefix):
    """The install, with no configuration: ``backend = auto``."""
    yield from _install(installed_prefix, None)


@pytest.fixture
def auto_install(installed_prefix):
    """The same, for modules whose ``install`` chooses a backend."""
    yield from _install(installed_prefix, None)


@pytest.fixture
def iptables_install(installed_prefix):
    """The install with ``backend = iptables``, for the tests of that layout
    (``auto`` takes a set layout wherever nft or ipset is installed)."""
    yield from _install(installed_prefix, "iptables")


# xtables-multi picks iptables-legacy or iptables-nft by its own file, so a
# bind mount in a private mount namespace makes every iptables call legacy
# for the commands run there, and nowhere else.
_LEGACY = ("unshare", "-m", "--propagation", "private", "sh", "-c",
           'mount --bind /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi'
           ' && exec "$@"', "sh")


class Netns:
    """A private network namespace; ``flavour`` is 'nft' or 'legacy'."""

    def __init__(self, name, flavour="nft"):
        self.name = name
        self.flavour = flavour

    def prefix(self):
        words = ["ip", "netns", "exec", self.name]
        if self.flavour == "legacy":
            words += _LEGACY
        return words

    def run(self, argv, timeout=120, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        return subprocess.run(self.prefix() + list(argv), timeout=timeout,
                              universal_newlines=True, **kwargs)

    def check(self, argv):
        result = self.run(argv)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result.stdout

    def rules(self, tool="iptables"):
        """``tool -S`` as a list of lines, policies left out."""
        return [line for line in self.check([tool, "-w", "-S"]).splitlines()
                if not line.startswith("-P ")]


def new_netns(flavour="nft"):
    require_root()
    name = "oar-" + uuid.uuid4().hex[:10]
    subprocess.run(["ip", "netns", "add", name], check=True)
    namespace = Netns(name, flavour)
    namespace.check(["ip", "link", "set", "lo", "up"])
    return namespace


def delete_netns(namespace):
    subprocess.run(["ip", "netns", "delete", namespace.name], check=False)


@pytest.fixture(params=["nft", "legacy"])
def netns(request):
    namespace = new_netns(request.param)
    version = namespace.check(["iptables", "-V"])
    assert ("(legacy)" if request.param == "legacy" else "(nf_tables)") in version
    yield namespace
    delete_netns(namespace)


@pytest.fixture
def nft_netns():
    namespace = new_netns("nft")
    yield namespace
    delete_netns(namespace)


@pytest.fixture(scope="session")
def etc_copy(tmp_path_factory):
    """A copy of /etc, for bind-mounting over /etc in private mount namespaces."""
    require_root()
    top = tmp_path_factory.mktemp("etc-copy")
    return copy_etc(str(top / "etc"))



def stock_name(bindir, name, target="ossec-ar-firewall-drop"):
    """The path of *name* (a stock name such as route-null.sh) in *bindir*,
    which ``make install`` must have made a link to our program."""
    path = os.path.join(bindir, name)
    assert os.path.islink(path) and os.readlink(path) == target, (
        "make install did not link %s to %s" % (path, target))
    return path


_BACKEND_STEPS = """
import sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import address, commands, config, exits
from ossec_ar.backends import load
backend = load(sys.argv[2], config.Settings(), commands.Tools(), "Linux")
calls = []
run = backend.tools.run
backend.tools.run = lambda argv, *rest: calls.append(argv[0]) or run(argv, *rest)
for step in sys.argv[3:]:
    action, _, target = step.partition(" ")
    try:
        if action == "calls":
            print(len(calls))
            del calls[:]
        elif action == "members":
            print(" ".join(sorted(m.text if isinstance(m, address.Prefix) else repr(m)
                                  for m in backend.members(int(target)))))
        else:
            parsed = address.parse_prefix(target) or address.parse(target, lifting=True)
            print("%s: %s" % getattr(backend, action)(parsed))
    except exits.Stop as stop:
        print("%s: %s" % (stop.status, stop.reason))
"""


def backend_steps(run, name, *steps):
    """The backend *name*'s answers, one line a step, to *steps* run in one
    process through *run* (a namespace's ``run``): ``"add TARGET"``,
    ``"delete TARGET"`` (an address, or a prefix written
    ``2001:db8:1:2::/64``), ``"members 6"`` (the members' texts, a prefix
    bare and an address as ``Address('...')``, sorted, on one line), or
    ``"calls"``: how many tool processes the steps since the last
    ``"calls"`` ran.  A step that stops is ``<status>: <reason>``."""
    result = run([PYTHON, "-I", "-c", _BACKEND_STEPS, os.path.join(ROOT, "lib"), name]
                 + list(steps))
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout.splitlines()
