"""Every CPython from 3.6 up that the machine has, for real.

Each interpreter (pyenv's versions, and /usr/bin/python3) is one test id.
ossec-ar is installed with it (make install PYTHON=...), and the contract
is run through the installed programs, as execd runs them: against real
iptables in a private network namespace, on a private copy of /etc, and
through the Wazuh protocol.  That the programs ran under that interpreter
is shown three ways: the shebang names it; /proc/<pid>/exe, read while a
program waits for execd's request, is it; and the byte-code compiled at
install for its cache tag is all there is, and no run writes any more
(a run under another version would add its own, and byte-code this one
cannot use would be rewritten).  One install and one namespace serve all
the tests of an interpreter.
"""

import glob
import json
import os
import subprocess
import time

import pytest

from conftest import INSTALL_PREFIX, PYTHON, ROOT, Install, delete_netns, invocation, new_netns
from execd import Execd, alert, from_manager_4, from_manager_5
from test_admin import admin
from test_hostdeny import ADMIN, BIND_ETC, Etc
from test_iptables import HOSTILE, said
from test_wazuh import CHECK_KEYS, logged

from ossec_ar import __version__

# One line per version of execd's protocol (see tests/execd.py): a name,
# the version, the manager's message for an executable, and the ids our
# outcome lines give (5.x requests carry no rule or alert id).
REQUESTS = [
    ("4.x", "4", lambda name: from_manager_4(alert(), name=name + "600"),
     "(rule 5712, alert 1326977549.1358625)"),
    ("5.x", "5", lambda name: from_manager_5(executable=name), "(rule -, alert -)"),
]

PROBE = ("import importlib.util, sys; print(sys.implementation.name, "
         "'.'.join(map(str, sys.version_info[:3])), sys.implementation.cache_tag, "
         "importlib.util.MAGIC_NUMBER.hex())")


class Interpreter:
    """One python3 on the machine, as it describes itself, or why it cannot."""

    def __init__(self, path, name):
        self.path = path
        self.error = None
        try:
            result = subprocess.run([path, "-IS", "-c", PROBE], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    universal_newlines=True, timeout=60)
            fields = result.stdout.split()
            if result.returncode != 0 or len(fields) != 4:
                raise OSError("exit %d: %s" % (result.returncode, result.stdout))
        except (OSError, subprocess.SubprocessError) as error:
            self.error = str(error)
            fields = ["?", "0.0.0", "?", ""]
        self.implementation, self.version, self.cache_tag, self.magic = fields
        self.version_info = tuple(int(part) for part in self.version.split("."))
        self.name = name if name != "system" else "system-" + self.version

    def wanted(self):
        """CPython 3.6 and later; one that does not run stays, to fail."""
        return self.error is not None or (self.implementation == "cpython"
                                          and self.version_info >= (3, 6))


def pyenv_root():
    try:
        return subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):     # pyenv not on PATH
        return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def interpreters():
    """pyenv's versions and the system's python3, each once, oldest first."""
    paths = sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*", "bin", "python3")))
    candidates = [(path, path.split(os.sep)[-3]) for path in paths] + [(PYTHON, "system")]
    found, seen = [], set()
    for path, name in candidates:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            python = Interpreter(path, name)
            if python.wanted():
                found.append(python)
    return sorted(found, key=lambda python: (python.version_info, python.name))


INTERPRETERS = interpreters()
OURS = ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]
REPAIRED = "(repaired: created chain OSSEC, jump from INPUT, jump from FORWARD)"


def test_the_system_python_is_among_them():
    # Never an empty list, which pytest would turn into skips.
    assert os.path.realpath(PYTHON) in [os.path.realpath(p.path) for p in INTERPRETERS]


class Case:
    """An interpreter, ossec-ar installed with it, and a network namespace."""

    def __init__(self, python, install, netns):
        self.python, self.install, self.netns = python, install, netns
        self.lib = os.path.join(install.prefix, "lib")
        self.byte_code = self.read_byte_code()

    def read_byte_code(self):
        """{path below lib/: content} of every file in a __pycache__."""
        found = {}
        for directory, dirs, files in os.walk(self.lib):
            if os.path.basename(directory) == "__pycache__":
                for name in files:
                    path = os.path.join(directory, name)
                    with open(path, "rb") as f:
                        found[os.path.relpath(path, self.lib)] = f.read()
        return found

    def assert_byte_code_untouched(self):
        now = self.read_byte_code()
        assert sorted(now) == sorted(self.byte_code)        # none added or removed
        assert now == self.byte_code                        # none rewritten

    def program(self, name):
        return self.install.program(name)

    def run(self, name, *args):
        result = self.netns.run([self.program(name)] + list(args))
        assert (result.stdout, result.stderr) == ("", ""), args
        return result.returncode


@pytest.fixture(scope="module", params=INTERPRETERS, ids=[p.name for p in INTERPRETERS])
def installed(request, tmp_path_factory):
    python = request.param
    assert python.error is None, "%s does not run: %s" % (python.path, python.error)
    destdir = str(tmp_path_factory.mktemp("python-" + python.name))
    result = subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + destdir,
                             "PREFIX=" + INSTALL_PREFIX, "PYTHON=" + python.path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    assert result.returncode == 0, result.stdout
    netns = new_netns("nft")
    try:
        # The checks below read the iptables layout, so they choose it.
        yield Case(python, Install(destdir + INSTALL_PREFIX, backend="iptables"), netns)
    finally:
        delete_netns(netns)


@pytest.fixture
def case(installed):
    """The interpreter's install, with an empty log and ledger and an empty
    firewall, so that each test sees the outcomes of a first run."""
    installed.install.reset()
    for tool in ("iptables", "ip6tables"):
        installed.netns.check([tool, "-w", "-F"])
        installed.netns.check([tool, "-w", "-X"])
    return installed


# Imports every module below lib/ossec_ar and prints where each came from.
IMPORT_ALL = r"""
import importlib, os, sys
lib = sys.argv[1]
sys.path.insert(0, lib)
for directory, dirs, files in sorted(os.walk(os.path.join(lib, "ossec_ar"))):
    for name in sorted(files):
        if name.endswith(".py"):
            module = os.path.relpath(os.path.join(directory, name[:-3]), lib)
            module = module.replace(os.sep, ".").replace(".__init__", "")
            print(importlib.import_module(module).__file__)
"""


def test_installed_and_compiled_for_it(case):
    python = case.python
    for program in ("active-response/bin/ossec-ar-firewall-drop",
                    "active-response/bin/ossec-ar-host-deny", "bin/ossec-ar"):
        with open(os.path.join(case.install.prefix, program)) as f:
            assert f.readline() == "#!%s -IS\n" % python.path
    sources = sorted(os.path.relpath(os.path.join(directory, name), case.lib)
                     for directory, dirs, files in os.walk(case.lib)
                     for name in files if name.endswith(".py"))
    assert len(sources) > 20
    assert sorted(case.byte_code) == sorted(
        os.path.join(os.path.dirname(source), "__pycache__",
                     "%s.%s.pyc" % (os.path.basename(source)[:-3], python.cache_tag))
        for source in sources)
    assert {data[:4].hex() for data in case.byte_code.values()} == {python.magic}
    # Every module imports under it, from the install and its byte-code.
    result = subprocess.run([python.path, "-IS", "-c", IMPORT_ALL, case.lib],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stdout
    assert sorted(result.stdout.split()) == [os.path.join(case.lib, s) for s in sources]
    case.assert_byte_code_untouched()


@pytest.mark.parametrize("name", ["firewall-drop", "host-deny"])
def test_the_kernel_runs_it(case, name):
    """Started as Wazuh's execd starts it, a program waits for the request:
    its /proc/<pid>/exe is read meanwhile, then end of input refuses it."""
    expected = os.path.realpath(case.python.path)
    proc = subprocess.Popen(case.netns.prefix() + ["active-response/bin/" + name],
                            cwd=case.install.prefix, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = None
    try:
        # ip netns exec becomes the program: the exe is ip's, then the shebang's.
        while proc.poll() is None and seen != expected:
            try:
                seen = os.readlink("/proc/%d/exe" % proc.pid)
            except OSError:                         # it has just ended
                break
            time.sleep(0.002)
    finally:
        out, err = proc.communicate(b"", timeout=60)
    assert seen == expected
    assert (proc.returncode, out, err) == (64, b"", b"")
    assert logged(case.install) == [(name, "(no request read)"),
                                    (name, "- -: usage: no request: end of input (exit 64)")]
    case.assert_byte_code_untouched()


def test_firewall_drop_adds_and_deletes_ipv4_and_ipv6(case):
    v4, v6 = "-A OSSEC -s 192.0.2.7/32 -j DROP", "-A OSSEC -s 2001:db8::7/128 -j DROP"
    steps = [
        # (action, address, outcome, iptables rules, ip6tables rules)
        ("add", "192.0.2.7", "add 192.0.2.7: blocked: iptables chain OSSEC %s (exit 0)"
         % REPAIRED, OURS + [v4], []),
        ("add", "192.0.2.7", "add 192.0.2.7: already blocked: iptables chain OSSEC (exit 0)",
         OURS + [v4], []),
        ("add", "2001:DB8:0::7", "add 2001:db8::7: blocked: ip6tables chain OSSEC %s (exit 0)"
         % REPAIRED, OURS + [v4], OURS + [v6]),
        ("delete", "192.0.2.7", "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC"
         " (exit 0)", OURS, OURS + [v6]),
        ("delete", "2001:db8::7", "delete 2001:db8::7: unblocked: ip6tables: removed 1 from "
         "OSSEC (exit 0)", OURS, OURS),
        ("delete", "192.0.2.7", "delete 192.0.2.7: was not blocked: no block of ours in the"
         " ledger (exit 0)", OURS, OURS),
    ]
    program = case.program("firewall-drop.sh")
    for action, address, outcome, rules, rules6 in steps:
        args = [action, "-", address, "1326977549.1358625", "5712"]
        assert case.run("firewall-drop.sh", *args) == 0
        line, result = case.install.log_lines()[-2:]
        assert line.endswith(" %s %s" % (program, " ".join(args)))
        assert invocation(line) == ("firewall-drop.sh", action, address)
        assert result.endswith(" %s: %s" % (program, outcome))
        assert (case.netns.rules(), case.netns.rules("ip6tables")) == (rules, rules6)
    assert len(case.install.log_lines()) == 2 * len(steps)
    case.assert_byte_code_untouched()


def test_hostile_input_is_refused(case):
    for args, code, reason in HOSTILE:
        case.install.reset()
        argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
        assert case.run("firewall-drop.sh", *argv) == code, args
        lines = case.install.log_lines()
        assert len(lines) == 2 and all(len(line) < 4096 for line in lines), args
        assert said(code) in lines[1] and reason in lines[1], args
        assert lines[1].endswith("(exit %d)" % code), args
    assert case.netns.rules() == [] and case.netns.rules("ip6tables") == []
    assert not os.path.exists("/tmp/pwned")
    case.assert_byte_code_untouched()


def private_etc(etc_copy, text):
    for name in ("hosts.deny", "hosts.allow"):
        path = os.path.join(etc_copy, name)
        if os.path.lexists(path):
            os.unlink(path)
    with open(os.path.join(etc_copy, "hosts.deny"), "wb") as f:
        f.write(text)


def test_host_deny_adds_and_deletes_on_a_private_etc(case, etc_copy):
    private_etc(etc_copy, ADMIN)
    etc = Etc(etc_copy, case.install)
    head, last = ADMIN.rsplit(b"\r\n", 1)
    steps = [
        ("add", "192.0.2.7", "add 192.0.2.7: blocked: /etc/hosts.deny (exit 0)",
         head + b"\r\nALL:192.0.2.7\r\n" + last),
        ("add", "2001:DB8::7", "add 2001:db8::7: blocked: /etc/hosts.deny (exit 0)",
         head + b"\r\nALL:192.0.2.7\r\nALL:[2001:db8::7]\r\n" + last),
        ("delete", "192.0.2.7", "delete 192.0.2.7: unblocked: /etc/hosts.deny (exit 0)",
         head + b"\r\nALL:[2001:db8::7]\r\n" + last),
        ("delete", "2001:db8::7", "delete 2001:db8::7: unblocked: /etc/hosts.deny (exit 0)",
         ADMIN),
    ]
    for action, address, outcome, content in steps:
        assert etc.code(action, "-", address, "1.1", "5712") == 0
        assert invocation(case.install.log_lines()[-2]) == ("host-deny.sh", action, address)
        assert etc.outcome() == outcome
        assert etc.read() == content
    assert etc.leftovers() == []
    case.assert_byte_code_untouched()


@pytest.mark.parametrize("version,manager,ids", [r[1:] for r in REQUESTS],
                         ids=[r[0] for r in REQUESTS])
def test_wazuh_protocol_through_the_names_without_sh(case, etc_copy, version, manager, ids):
    execd = Execd(case.install.prefix, version, wrap=case.netns.prefix())
    run = execd.run(manager("firewall-drop"))
    assert (run.code, run.reply, run.rest, run.stderr) == (0, CHECK_KEYS, b"", b"")
    assert case.netns.rules() == OURS + ["-A OSSEC -s 192.0.2.7/32 -j DROP"]
    [delete] = execd.expire()
    assert (delete.code, delete.rest, delete.stderr) == (0, b"", b"")
    assert case.netns.rules() == OURS
    why = ids + " (exit 0)"
    assert logged(case.install) == [
        ("firewall-drop", run.request.decode()),
        ("firewall-drop", "add 192.0.2.7: blocked: iptables chain OSSEC %s %s"
         % (REPAIRED, why)),
        ("firewall-drop", delete.request.decode()),
        ("firewall-drop", "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC "
         + why)]
    case.install.reset()
    private_etc(etc_copy, b"# admin\n")
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh"]
    execd = Execd(case.install.prefix, version, wrap=wrap,
                  env=dict(os.environ, ETC=etc_copy))
    run = execd.run(manager("host-deny"))
    assert (run.code, run.rest, run.stderr) == (0, b"", b"")
    assert json.loads(run.reply.decode())["origin"]["name"] == "host-deny"
    assert Etc(etc_copy, case.install).read() == b"# admin\nALL:192.0.2.7\n"
    [delete] = execd.expire()
    assert (delete.code, delete.rest, delete.stderr) == (0, b"", b"")
    assert Etc(etc_copy, case.install).read() == b"# admin\n"
    assert [line[1] for line in logged(case.install)[1::2]] == [
        "add 192.0.2.7: blocked: /etc/hosts.deny " + why,
        "delete 192.0.2.7: unblocked: /etc/hosts.deny " + why]
    case.assert_byte_code_untouched()


def test_ossec_ar_lists_the_blocks(case, etc_copy):
    private_etc(etc_copy, b"# admin\n")
    for address in ("192.0.2.7", "2001:db8::7"):
        assert case.run("firewall-drop.sh", "add", "-", address, "1326977549.1358625",
                        "5712") == 0
    assert Etc(etc_copy, case.install).code("add", "-", "192.0.2.8", "1.2", "5710") == 0
    result = admin(case.netns, case.install, "list", "--json", etc=etc_copy)
    assert (result.returncode, result.stderr) == (0, "")
    rows = sorted((row["program"], row["address"], row["state"], row["backend"],
                   row["rule"], row["alert"]) for row in json.loads(result.stdout)["blocks"])
    assert rows == [
        ("firewall-drop", "192.0.2.7", "in force", "iptables", "5712", "1326977549.1358625"),
        ("firewall-drop", "2001:db8::7", "in force", "iptables", "5712",
         "1326977549.1358625"),
        ("host-deny", "192.0.2.8", "in force", "/etc/hosts.deny", "5710", "1.2")]
    result = admin(case.netns, case.install, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "ossec-ar %s\n" % __version__, "")
    case.assert_byte_code_untouched()
