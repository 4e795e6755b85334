"""host-deny.sh, installed by make install, on real files.

Each run happens in a private mount namespace where a scratch copy of /etc
is bind-mounted over /etc, so the machine's own hosts.deny is never touched.
"""

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import time

import pytest

import tcpd
from conftest import PYTHON, invocation, state_file
from test_iptables import HOSTILE, said

ADMIN = (b"# /etc/hosts.deny: the administrator's own rules\r\n"
         b"\r\n"
         b"sshd: 1.2.3.4\r\n"
         b"ALL:1x2y3z4\r\n"
         b"ALL:11.2.3.4\r\n"
         b"# ALL:192.0.2.7\r\n"
         b"in.telnetd: ALL")               # no final newline

BIND_ETC = 'mount --bind "$ETC" /etc'


class Etc:
    def __init__(self, path, install):
        self.path = path
        self.install = install
        self.deny = os.path.join(path, "hosts.deny")

    def run(self, *args, mounts=BIND_ETC, **kwargs):
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
                mounts + '\nexec "$@"', "sh", self.install.program("host-deny.sh")]
        env = dict(os.environ, ETC=self.path)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(argv + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60, **kwargs)

    def code(self, *args, **kwargs):
        result = self.run(*args, **kwargs)
        assert (result.stdout, result.stderr) == (b"", b"")
        return result.returncode

    def write(self, data):
        with open(self.deny, "wb") as f:
            f.write(data)

    def read(self):
        with open(self.deny, "rb") as f:
            return f.read()

    def outcome(self):
        lines = self.install.log_lines()
        assert len(lines) % 2 == 0
        return lines[-1].split("/host-deny.sh: ", 1)[1]

    def leftovers(self):
        return [name for name in os.listdir(self.path) if ".ossec-ar-" in name]


def verdicts(etc, *clients):
    """What tcpdmatch says of sshd for each client, over the copy of /etc."""
    return [tcpd.verdict(etc.path, "sshd", client) for client in clients]


@pytest.fixture
def etc(etc_copy, install):
    for name in ("hosts.deny", "hosts.allow"):
        path = os.path.join(etc_copy, name)
        if os.path.lexists(path):
            os.unlink(path)
    yield Etc(etc_copy, install)


def test_add_add_delete_delete(etc):
    etc.write(ADMIN)
    before, rules = tcpd.verdicts(etc.path), tcpd.rules(etc.path)
    assert etc.code("add", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert etc.outcome() == "add 192.0.2.7: blocked: /etc/hosts.deny (exit 0)"
    # Before the administrator's last line, which has no newline and keeps it.
    head, last = ADMIN.rsplit(b"\r\n", 1)
    assert etc.read() == head + b"\r\nALL:192.0.2.7\r\n" + last
    # As tcpd reads it: a rule of its own that denies the address.  (That
    # last line makes tcpd deny every client that reaches it, ours before
    # and after, so the verdicts alone would not show our rule.)
    assert tcpd.rules(etc.path) == rules + [("hosts.deny", "ALL", "192.0.2.7", "denied")]
    assert tcpd.verdict(etc.path, "sshd", "192.0.2.7") == "denied"
    assert etc.code("add", "-", "192.0.2.7", "1326977549.1358626", "5712") == 0
    assert etc.outcome() == "add 192.0.2.7: already blocked: /etc/hosts.deny (exit 0)"
    assert etc.code("delete", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert etc.outcome() == "delete 192.0.2.7: unblocked: /etc/hosts.deny (exit 0)"
    assert etc.read() == ADMIN                          # every byte, as it was
    assert (tcpd.verdicts(etc.path), tcpd.rules(etc.path)) == (before, rules)
    assert etc.code("delete", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert etc.outcome() == "delete 192.0.2.7: was not blocked: no block of ours in the ledger (exit 0)"
    lines = etc.install.log_lines()
    assert [invocation(line) for line in lines[::2]] == [
        ("host-deny.sh", "add", "192.0.2.7"), ("host-deny.sh", "add", "192.0.2.7"),
        ("host-deny.sh", "delete", "192.0.2.7"), ("host-deny.sh", "delete", "192.0.2.7")]
    assert all(invocation(line) is None for line in lines[1::2])
    assert etc.leftovers() == []


def test_ipv6_and_stock_lines(etc):
    etc.write(b"ALL:[2001:DB8::7]\nALL:192.0.2.9\n")       # as the stock script wrote
    assert etc.install.adopt(mounts=BIND_ETC, env=dict(os.environ, ETC=etc.path)) == [
        {"program": "host-deny", "address": a, "where": "/etc/hosts.deny"}
        for a in ("192.0.2.9", "2001:db8::7")]
    assert etc.code("add", "-", "2001:db8::7", "1.1", "1") == 0
    assert etc.outcome() == "add 2001:db8::7: already blocked: /etc/hosts.deny (exit 0)"
    assert etc.code("delete", "-", "2001:db8:0::7", "1.1", "1") == 0
    assert etc.code("add", "-", "2001:db8::8", "1.1", "1") == 0
    assert etc.code("delete", "-", "::ffff:192.0.2.9", "1.1", "1") == 0
    assert etc.read() == b"ALL:[2001:db8::8]\n"
    # As tcpd reads it: our IPv6 line denies that address alone.
    verdicts = {client: tcpd.verdict(etc.path, "sshd", client)
                for client in ("2001:db8::8", "2001:db8::7", "192.0.2.9")}
    assert verdicts == {"2001:db8::8": "denied", "2001:db8::7": "granted",
                        "192.0.2.9": "granted"}


def test_wazuhs_unbracketed_ipv6_lines_are_removed_by_a_delete(etc):
    # As Wazuh's own host-deny left them (host-deny.c @ v4.2.0 to v4.14.7).
    etc.write(b"# admin\nALL:2001:db8::21\nALL:192.0.2.9\n")
    etc.install.adopt(mounts=BIND_ETC, env=dict(os.environ, ETC=etc.path))
    assert etc.code("delete", "-", "2001:db8::21", "1.1", "1") == 0
    assert etc.outcome() == "delete 2001:db8::21: unblocked: /etc/hosts.deny (exit 0)"
    assert etc.read() == b"# admin\nALL:192.0.2.9\n"
    # That form blocks nothing (tcpd reads the colons as field separators),
    # so an add writes the bracketed form that hosts_access(5) documents.
    etc.write(b"ALL:2001:db8::21\n")
    assert verdicts(etc, "2001:db8::21", "2001:db8::22") == ["granted", "granted"]
    assert etc.code("add", "-", "2001:db8::21", "1.1", "1") == 0
    assert etc.outcome() == "add 2001:db8::21: blocked: /etc/hosts.deny (exit 0)"
    assert etc.read() == b"ALL:2001:db8::21\nALL:[2001:db8::21]\n"
    assert verdicts(etc, "2001:db8::21", "2001:db8::22") == ["denied", "granted"]
    # The unbracketed line was written after install: not ours, it stays.
    assert etc.code("delete", "-", "2001:db8::21", "1.1", "1") == 0
    assert etc.read() == b"ALL:2001:db8::21\n"
    assert verdicts(etc, "2001:db8::21", "2001:db8::22") == ["granted", "granted"]



# Files as tcpd reads them (tcp_wrappers' xgets): only a newline ends a line;
# a backslash right before it joins the next line to this one, comments
# included; a last line without a newline (a backslash-newline at the very
# end is one) makes tcpd deny every client that reached it.
TCPD_FILES = {
    "continuation at the end": b"# admin\nsshd: 10.0.0.1 \\\n",
    "continuation at the end, no blank": b"sshd: 10.0.0.1\\\n",
    "continuation into a last line without newline": b"sshd: 10.0.0.1 \\\n  10.0.0.2",
    "comment ending in a backslash at the end": b"sshd: 10.0.0.1\n# to do: \\\n",
    "our line continuing the administrator's rule": b"sshd: 10.0.0.1 \\\nALL:192.0.2.7\n",
    "our line continuing a comment": b"# was: \\\nALL:192.0.2.7\nsshd: 10.0.0.1\n",
    "our line after a lone CR": b"in.telnetd: 10.0.0.1\rALL:192.0.2.7\n",
    "our line before a lone CR": b"ALL:192.0.2.7\rin.telnetd: 10.0.0.1\n",
    "backslash before CRLF, no continuation": b"# admin\r\nsshd: 10.0.0.1 \\\r\n",
    "last line without newline": b"sshd: 10.0.0.1\nin.telnetd: 10.0.0.2",
}
OURS = ("ALL", "192.0.2.7", "denied")


@pytest.mark.parametrize("name", sorted(TCPD_FILES))
def test_tcpd_reads_our_line_as_a_rule_and_the_administrators_as_before(etc, name):
    """tcpdmatch and tcpdchk judge: after an add, every rule of the
    administrator's is still there and every client but ours gets what it
    got before; ours is denied, by a rule of its own when the file reaches
    it; a delete gives back the file byte for byte."""
    data = TCPD_FILES[name]
    etc.write(data)
    rules, verdicts = tcpd.rules(etc.path), tcpd.verdicts(etc.path)
    assert etc.code("add", "-", "192.0.2.7", "1.1", "1") == 0
    assert etc.outcome() == "add 192.0.2.7: blocked: /etc/hosts.deny (exit 0)"
    added = tcpd.rules(etc.path)
    assert [rule[1:] for rule in added].count(OURS) == [rule[1:] for rule in rules].count(OURS) + 1
    assert [rule for rule in added if rule[1:] != OURS] == [rule for rule in rules if rule[1:] != OURS]
    assert tcpd.verdicts(etc.path) == {
        probe: "denied" if probe[1] == "192.0.2.7" else before
        for probe, before in verdicts.items()}
    assert etc.code("add", "-", "192.0.2.7", "1.2", "1") == 0
    assert etc.outcome() == "add 192.0.2.7: already blocked: /etc/hosts.deny (exit 0)"
    assert etc.code("delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert etc.outcome() == "delete 192.0.2.7: unblocked: /etc/hosts.deny (exit 0)"
    assert etc.read() == data
    assert (tcpd.rules(etc.path), tcpd.verdicts(etc.path)) == (rules, verdicts)
    assert etc.code("delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert etc.outcome() == "delete 192.0.2.7: was not blocked: no block of ours in the ledger (exit 0)"
    assert etc.read() == data

def test_missing_file_is_created_0644_root(etc):
    assert etc.code("add", "-", "192.0.2.7", "1.1", "1") == 0
    info = os.stat(etc.deny)
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o644, 0, 0)
    assert etc.read() == b"ALL:192.0.2.7\n"
    assert verdicts(etc, "192.0.2.7", "192.0.2.8") == ["denied", "granted"]


def test_symlinked_file_is_edited_at_its_target(etc):
    os.makedirs(os.path.join(etc.path, "tcpd"), exist_ok=True)
    target = os.path.join(etc.path, "tcpd", "hosts.deny")
    with open(target, "wb") as f:
        f.write(b"sshd: 10.0.0.1\n")
    os.symlink("tcpd/hosts.deny", etc.deny)
    try:
        assert etc.code("add", "-", "192.0.2.7", "1.1", "1") == 0
        assert os.readlink(etc.deny) == "tcpd/hosts.deny"
        with open(target, "rb") as f:
            assert f.read() == b"sshd: 10.0.0.1\nALL:192.0.2.7\n"
        assert etc.outcome() == ("add 192.0.2.7: blocked: /etc/tcpd/hosts.deny (via "
                                 "/etc/hosts.deny) (exit 0)")
        # tcpd, which opens hosts.deny through the link, reads our line.
        assert verdicts(etc, "192.0.2.7", "192.0.2.8") == ["denied", "granted"]
    finally:
        os.unlink(target)


NOT_ROOT = 61234


def _identity(info):
    return (info.st_ino, info.st_mode, info.st_uid, info.st_gid, info.st_size,
            info.st_mtime_ns, info.st_nlink)


@pytest.mark.parametrize("case", ["link not root's", "target not root's",
                                  "target's directory not root's", "target group-writable",
                                  "target's directory group-writable",
                                  "target's directory world-writable", "/etc group-writable",
                                  "fifo", "hard link", "directory"])
def test_a_hosts_deny_root_did_not_make_is_refused_and_left_alone(etc, case):
    """A link is followed only when root alone can have made it so: the
    link, its target and the directories that hold them are root's, and
    nobody else can write them.  Anything else is 74, nothing touched."""
    tcpd = os.path.join(etc.path, "tcpd")
    os.makedirs(tcpd, exist_ok=True)
    target = os.path.join(tcpd, "hosts.deny")
    victim = os.path.join(etc.path, "victim")
    etc_mode = stat.S_IMODE(os.stat(etc.path).st_mode)
    try:
        with open(target, "wb") as f:
            f.write(b"sshd: 10.0.0.1\n")
        shown = "/etc/tcpd/hosts.deny"
        if case == "/etc group-writable":
            # Root's directories that others can write (not sticky): they
            # could swap the file, so it is not edited.
            with open(etc.deny, "wb") as f:
                f.write(b"sshd: 10.0.0.1\n")
            os.chmod(etc.path, 0o775)
            reason = "/etc is writable by its group (mode 0775)"
        elif case == "fifo":
            os.mkfifo(etc.deny)
            reason = "/etc/hosts.deny is a FIFO, not a regular file"
        elif case == "directory":
            os.mkdir(etc.deny)
            reason = "/etc/hosts.deny is a directory, not a regular file"
        elif case == "hard link":
            with open(victim, "wb") as f:
                f.write(b"sshd: 10.0.0.1\n")
            os.link(victim, etc.deny)
            reason = "/etc/hosts.deny has 2 names (hard links); refused, one may be a " \
                     "system file"
        else:
            os.symlink("tcpd/hosts.deny", etc.deny)
            if case == "link not root's":
                os.lchown(etc.deny, NOT_ROOT, NOT_ROOT)
                reason = "/etc/hosts.deny is a symbolic link owned by uid %d, not root" % \
                    NOT_ROOT
            elif case == "target not root's":
                os.chown(target, NOT_ROOT, NOT_ROOT)
                reason = "%s is owned by uid %d, not root" % (shown, NOT_ROOT)
            elif case == "target's directory not root's":
                os.chown(tcpd, NOT_ROOT, NOT_ROOT)
                reason = "/etc/tcpd is owned by uid %d, not root" % NOT_ROOT
            elif case == "target's directory group-writable":
                os.chmod(tcpd, 0o775)
                reason = "/etc/tcpd is writable by its group (mode 0775)"
            elif case == "target's directory world-writable":
                os.chmod(tcpd, 0o757)
                reason = "/etc/tcpd is writable by any user (mode 0757)"
            else:
                os.chmod(target, 0o664)
                reason = "%s is writable by its group (mode 0664)" % shown
        def snapshot():
            return {name: _identity(os.lstat(os.path.join(etc.path, name)))
                    for name in ("hosts.deny", "tcpd/hosts.deny")}
        before = snapshot()
        result = etc.run("add", "-", "192.0.2.7", "1.1", "1")
        assert (result.returncode, result.stdout, result.stderr) == (74, b"", b"")
        assert etc.outcome() == "add 192.0.2.7: failed: refused to edit /etc/hosts.deny: " \
            "%s; nothing changed (exit 74)" % reason
        with open(target, "rb") as f:
            assert f.read() == b"sshd: 10.0.0.1\n"
        assert snapshot() == before
    finally:
        os.chmod(etc.path, etc_mode)
        for path in (etc.deny, victim):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.lexists(path):
                os.unlink(path)
        shutil.rmtree(tcpd)


DANGEROUS = ["ALL", "LOCAL", "KNOWN", "UNKNOWN", "PARANOID", "*", "192.0.2.*",
             "192.0.2.", "192.0.2.0/24", "192.0.2.0/255.255.255.0", "?.?.?.?",
             "@netgroup", "user@192.0.2.7", "192.0.2.7 EXCEPT 10.0.0.1",
             "192.0.2.7, ALL", ".example.com", "[2001:db8::7]", "ALL:ALL"]


@pytest.mark.parametrize("args,code", [(h[0], h[1]) for h in HOSTILE]
                         + [(["add", "-", d, "1.1", "1"], 65) for d in DANGEROUS],
                         ids=["hostile-%d" % i for i in range(len(HOSTILE))] + DANGEROUS)
def test_hostile_and_wrapper_patterns_are_refused(etc, args, code):
    etc.write(ADMIN)
    before = os.stat(etc.deny)
    argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
    assert etc.code(*argv) == code
    assert etc.read() == ADMIN
    assert os.stat(etc.deny).st_ino == before.st_ino
    lines = etc.install.log_lines()
    assert len(lines) == 2 and said(code) in lines[1]
    assert lines[1].endswith("(exit %d)" % code)


def test_read_only_etc_is_exit_74_and_nothing_changes(etc):
    etc.write(ADMIN)
    mounts = BIND_ETC + " && mount -o remount,ro,bind /etc"
    assert etc.code("add", "-", "192.0.2.7", "1.1", "1", mounts=mounts) == 74
    text = etc.outcome()
    assert text.startswith("add 192.0.2.7: failed: cannot create /etc/.hosts.deny.ossec-ar-")
    assert text.endswith(": Read-only file system; /etc/hosts.deny left as it was (exit 74)")
    assert etc.read() == ADMIN and etc.leftovers() == []


def test_full_file_system_is_exit_74_and_nothing_changes(etc, tmp_path):
    # /etc is a 64 KiB tmpfs holding a 40 KB hosts.deny: the new copy cannot fit.
    small = str(tmp_path / "small")
    os.mkdir(small)
    big = ADMIN + b"\n" + b"# padding\n" * 4000
    etc.write(big)
    script = ("mount -t tmpfs -o size=64k none {0}\n"
              "cp \"$ETC/hosts.deny\" {0}/\n"
              "mount --bind {0} /etc\n"
              "code=0; \"$@\" || code=$?\n"
              "ls -A /etc\n"
              "cmp -s /etc/hosts.deny \"$ETC/hosts.deny\" && echo unchanged\n"
              "exit $code\n").format(small)
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-ec", script, "sh",
         etc.install.program("host-deny.sh"), "add", "-", "192.0.2.7", "1.1", "1"],
        env=dict(os.environ, ETC=etc.path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, timeout=60)
    assert (result.returncode, result.stderr) == (74, b"")
    assert result.stdout.decode().split() == ["hosts.deny", "unchanged"]
    text = etc.outcome()
    assert text.startswith("add 192.0.2.7: failed: cannot write /etc/.hosts.deny.ossec-ar-")
    assert text.endswith(": No space left on device; /etc/hosts.deny left as it was "
                         "(exit 74)")


def hold(path):
    holder = subprocess.Popen(["flock", path, "sh", "-c", "echo held; exec sleep 60"],
                              stdout=subprocess.PIPE, start_new_session=True)
    assert holder.stdout.readline() == b"held\n"
    return holder


def test_held_lock_is_exit_75_and_nothing_changes(etc):
    etc.write(ADMIN)
    etc.install.configure("[host-deny]\nlock_wait = 0.5\n")
    lock = state_file(etc.install.prefix, "host-deny.lock")
    holder = hold(lock)
    try:
        assert etc.code("add", "-", "192.0.2.7", "1.1", "1") == 75
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert etc.outcome() == ("add 192.0.2.7: failed: lock %s still held by another run "
                             "after 0.5s (exit 75)" % lock)
    assert etc.read() == ADMIN


def test_sigkill_at_random_points_never_leaves_a_partial_file(etc):
    # A large file widens the window in which the write is under way.
    body = ADMIN + b"\n" + b"".join(b"ALL:10.%d.%d.1\n" % (i // 256, i % 256)
                                    for i in range(60000))
    old = body + b"ALL:192.0.2.7\n"
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh", etc.install.program("host-deny.sh"),
            "delete", "-", "192.0.2.7", "1.1", "1"]
    env = dict(os.environ, ETC=etc.path)
    # How long a whole run takes here, so that the kills spread over all of it.
    durations = []
    for _ in range(3):
        etc.write(old)
        etc.install.own("192.0.2.7")
        start = time.monotonic()
        assert subprocess.run(argv, env=env).returncode == 0
        durations.append(time.monotonic() - start)
        assert etc.read() == body
    run_time = sorted(durations)[1]
    killed = mid_write = attempts = 0
    rng = random.Random(1)
    # At least 60 attempts; more, up to 400, until 20 runs were killed and
    # three of them between the temporary file's creation and its rename,
    # whatever the timing.
    while attempts < 60 or ((mid_write < 3 or killed < 20) and attempts < 400):
        attempts += 1
        etc.write(old)
        etc.install.own("192.0.2.7")        # whatever the last run recorded
        proc = subprocess.Popen(argv, env=env)
        time.sleep(rng.uniform(0.2, 1.6) * run_time)
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            killed += 1
        mid_write += bool(etc.leftovers())     # killed between create and rename
        assert etc.read() in (old, body), "a partial file after kill %d" % attempts
    summary = ("run %.0f ms; killed %d of %d runs, %d between create and rename"
               % (run_time * 1000, killed, attempts, mid_write))
    print(summary)
    assert killed >= 20, summary
    assert mid_write >= 3, summary
    # The next run removes what killed runs left behind.
    assert etc.code("add", "-", "192.0.2.8", "1.1", "1") == 0
    assert etc.leftovers() == []


CONCURRENT = """
import subprocess, sys
program = sys.argv[1]
jobs = [("add", a) for a in sys.argv[2].split()] + [("delete", a) for a in sys.argv[3].split()]
procs = [subprocess.Popen([program, action, "-", a, "1.1", "1"]) for action, a in jobs]
sys.exit(max(p.wait() for p in procs))
"""


def test_concurrent_adds_and_deletes_lose_nothing(etc):
    old = ["198.51.100.%d" % i for i in range(1, 51)]
    new = ["203.0.113.%d" % i for i in range(1, 51)]
    etc.write(ADMIN + b"\r\n" + b"".join(b"ALL:%s\r\n" % a.encode() for a in old))
    for address in old:
        etc.install.own(address)
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh", PYTHON, "-c", CONCURRENT,
            etc.install.program("host-deny.sh"), " ".join(new), " ".join(old)]
    result = subprocess.run(argv, env=dict(os.environ, ETC=etc.path), timeout=120)
    assert result.returncode == 0
    data = etc.read()
    assert data.startswith(ADMIN + b"\r\n")
    ours = data[len(ADMIN) + 2:].split(b"\r\n")
    assert ours[-1] == b""
    assert sorted(ours[:-1]) == sorted(b"ALL:%s" % a.encode() for a in new)
    assert verdicts(etc, *new) == ["denied"] * len(new)
    assert verdicts(etc, *old) == ["granted"] * len(old)
    assert len(etc.install.log_lines()) == 200
    assert etc.leftovers() == []


def _run_as(etc, name, *args):
    """Another of our programs (unblock.sh) or ossec-ar, over the copy of /etc."""
    argv = ["unshare", "-m", "-n", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh", name] + list(args)
    return subprocess.run(argv, env=dict(os.environ, ETC=etc.path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("lifter", ["delete", "unblock.sh", "ossec-ar unblock"])
def test_an_administrators_line_outlives_an_add_and_every_lifting(etc, lifter):
    """The administrator's own ALL:IP, there before the alert: the add
    finds it (not ours), and no lifting of ours removes it."""
    admin = b"# mine\nALL:198.51.100.77\n"
    etc.write(admin)
    assert tcpd.verdict(etc.path, "sshd", "198.51.100.77") == "denied"
    assert etc.code("add", "-", "198.51.100.77", "1.1", "5712") == 0
    assert etc.outcome() == ("add 198.51.100.77: already blocked: /etc/hosts.deny; not ours: "
                             "its delete will leave it (exit 0)")
    if lifter == "delete":
        assert etc.code("delete", "-", "198.51.100.77", "1.1", "5712") == 0
        assert etc.outcome() == (
            "delete 198.51.100.77: not ours, left: /etc/hosts.deny: blocked by someone else"
            " (found there by an add, rule 5712, alert 1.1), left in place (exit 0)")
    elif lifter == "unblock.sh":
        result = _run_as(etc, etc.install.program("unblock.sh"), "add", "-", "198.51.100.77",
                         "1.2", "100610")
        assert (result.returncode, result.stderr) == (0, b"")
        assert "host-deny: not ours, left: /etc/hosts.deny: blocked by someone else" in \
            etc.install.log_lines()[-1]
    else:
        result = _run_as(etc, os.path.join(etc.install.prefix, "bin", "ossec-ar"), "unblock",
                         "198.51.100.77")
        assert result.returncode == 0, result
        assert "host-deny: not ours, left: /etc/hosts.deny" in etc.install.log_lines()[-1]
    assert etc.read() == admin
    assert tcpd.verdict(etc.path, "sshd", "198.51.100.77") == "denied"
    # The ledger's word is spent: a second delete has nothing of ours.
    assert etc.code("delete", "-", "198.51.100.77", "1.1", "5712") == 0
    assert etc.outcome() == ("delete 198.51.100.77: was not blocked: no block of ours in the"
                             " ledger (exit 0)")
    assert etc.read() == admin


def test_a_copy_written_beside_ours_stays_after_our_delete(etc):
    etc.write(b"")
    assert etc.code("add", "-", "198.51.100.77", "1.1", "5712") == 0
    assert verdicts(etc, "198.51.100.77", "198.51.100.78") == ["denied", "granted"]
    with open(etc.deny, "ab") as f:
        f.write(b"ALL:198.51.100.77\n")             # the administrator's, later
    assert etc.code("delete", "-", "198.51.100.77", "1.1", "5712") == 0
    assert etc.outcome() == "delete 198.51.100.77: unblocked: /etc/hosts.deny (exit 0)"
    assert etc.read() == b"ALL:198.51.100.77\n"
    assert tcpd.verdict(etc.path, "sshd", "198.51.100.77") == "denied"


def test_a_stock_line_from_before_install_is_lifted_and_one_from_after_is_not(etc):
    etc.write(b"ALL:192.0.2.9\n")                    # the stock script's, before install
    assert etc.install.adopt(mounts=BIND_ETC, env=dict(os.environ, ETC=etc.path)) == [
        {"program": "host-deny", "address": "192.0.2.9", "where": "/etc/hosts.deny"}]
    with open(etc.deny, "ab") as f:
        f.write(b"ALL:192.0.2.10\n")                 # the same form, after install
    # Adopted once per installation: a second run adopts nothing.
    assert etc.install.adopt(mounts=BIND_ETC, env=dict(os.environ, ETC=etc.path)) is None
    for address in ("192.0.2.9", "192.0.2.10"):
        assert etc.code("delete", "-", address, "1.1", "5712") == 0
    assert etc.read() == b"ALL:192.0.2.10\n"
    assert tcpd.verdict(etc.path, "sshd", "192.0.2.9") == "granted"
    assert tcpd.verdict(etc.path, "sshd", "192.0.2.10") == "denied"


# ------------------------------------------------ ipv6_prefix: the /64 as tcpd reads it

PREFIX_LINE = b"ALL:[2001:db8:1:2::]/64\n"
INSIDE, BESIDE = "2001:db8:1:2::99", "2001:db8:1:3::1"


def test_ipv6_prefix_denies_the_whole_64_until_its_last_address_is_deleted(etc):
    etc.write(b"# admin\n")
    etc.install.configure("[host-deny]\nipv6_prefix = 64\n")
    assert etc.code("add", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert etc.outcome() == ("add 2001:db8:1:2::7: blocked: 2001:db8:1:2::/64 in "
                             "/etc/hosts.deny (exit 0)")
    assert etc.read() == b"# admin\n" + PREFIX_LINE
    assert verdicts(etc, INSIDE, BESIDE) == ["denied", "granted"]
    assert etc.code("add", "-", "2001:db8:1:2::8", "1.2", "5712") == 0
    assert etc.outcome() == ("add 2001:db8:1:2::8: already blocked: by 2001:db8:1:2::/64 in "
                             "/etc/hosts.deny (exit 0)")
    assert etc.read() == b"# admin\n" + PREFIX_LINE
    # The ledger holds ::8 in the prefix: the delete of ::7 keeps it.
    assert etc.code("delete", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert etc.outcome() == ("delete 2001:db8:1:2::7: unblocked: 2001:db8:1:2::7; prefix "
                             "2001:db8:1:2::/64 kept for 1 other (/etc/hosts.deny) (exit 0)")
    assert etc.read() == b"# admin\n" + PREFIX_LINE
    assert verdicts(etc, INSIDE, BESIDE, "2001:db8:1:2::7") == ["denied", "granted", "denied"]
    assert etc.code("delete", "-", "2001:db8:1:2::8", "1.2", "5712") == 0
    assert etc.outcome() == ("delete 2001:db8:1:2::8: unblocked: 2001:db8:1:2::/64 from "
                             "/etc/hosts.deny (exit 0)")
    assert etc.read() == b"# admin\n"
    assert verdicts(etc, INSIDE, BESIDE) == ["granted", "granted"]
    assert etc.code("delete", "-", "2001:db8:1:2::8", "1.2", "5712") == 0
    assert etc.outcome() == ("delete 2001:db8:1:2::8: was not blocked: no block of ours in "
                             "the ledger (exit 0)")
    # IPv4 is never widened.
    assert etc.code("add", "-", "192.0.2.7", "1.3", "5712") == 0
    assert etc.read() == b"# admin\nALL:192.0.2.7\n"
    assert verdicts(etc, "192.0.2.7", "192.0.2.8") == ["denied", "granted"]


def test_freebsd_hosts_allow_gets_the_prefix_line(etc):
    """FreeBSD's style, judged by Debian's tcpd, which reads its options."""
    path = os.path.join(etc.path, "hosts.allow")
    with open(path, "wb") as f:
        f.write(b"ALL : ALL : allow\n")
    etc.install.configure("[system]\nname = FreeBSD\n[allowlist]\nprotect = none\n"
                          "[host-deny]\nipv6_prefix = 64\n")
    try:
        assert etc.code("add", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
        with open(path, "rb") as f:
            assert f.read() == b"ALL : [2001:db8:1:2::]/64 : deny\nALL : ALL : allow\n"
        assert verdicts(etc, INSIDE, BESIDE) == ["denied", "granted"]
        assert etc.code("delete", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
        with open(path, "rb") as f:
            assert f.read() == b"ALL : ALL : allow\n"
        assert verdicts(etc, INSIDE, BESIDE) == ["granted", "granted"]
    finally:
        os.unlink(path)


@pytest.mark.parametrize("first,then", [(128, 64), (64, 128)])
def test_changing_ipv6_prefix_strands_no_line(etc, first, then):
    """Blocks made under one setting are lifted by their deletes under the
    other: a /128 line by its address's delete, the prefix by its last."""
    etc.write(b"")
    etc.install.configure("[host-deny]\nipv6_prefix = %d\n" % first)
    assert etc.code("add", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    etc.install.configure("[host-deny]\nipv6_prefix = %d\n" % then)
    assert etc.code("add", "-", "2001:db8:1:2::8", "1.2", "5712") == 0
    lines = {128: b"ALL:[2001:db8:1:2::7]\n", 64: PREFIX_LINE}
    assert etc.read() == lines[first] + (b"ALL:[2001:db8:1:2::8]\n" if then == 128
                                         else PREFIX_LINE)
    assert verdicts(etc, "2001:db8:1:2::7", "2001:db8:1:2::8", BESIDE) == [
        "denied", "denied", "granted"]
    assert etc.code("delete", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    if first == 128:        # its own line goes; the prefix stays for ::8
        assert etc.read() == PREFIX_LINE
    else:                   # ::7 alone held the prefix (::8's block is its /128)
        assert etc.read() == b"ALL:[2001:db8:1:2::8]\n"
    assert etc.code("delete", "-", "2001:db8:1:2::8", "1.2", "5712") == 0
    assert etc.read() == b""
    assert verdicts(etc, "2001:db8:1:2::7", "2001:db8:1:2::8", INSIDE) == ["granted"] * 3


def test_a_prefix_line_from_before_install_is_not_adopted_and_outlives_every_delete(etc):
    """The stock script never wrote a network: an administrator did, and
    it stays, listed by ossec-ar list, after the prefix's own delete."""
    etc.write(PREFIX_LINE + b"ALL:192.0.2.9\n")
    assert etc.install.adopt(mounts=BIND_ETC, env=dict(os.environ, ETC=etc.path)) == [
        {"program": "host-deny", "address": "192.0.2.9", "where": "/etc/hosts.deny"}]
    etc.install.configure("[host-deny]\nipv6_prefix = 64\n")
    assert etc.code("add", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert etc.outcome() == ("add 2001:db8:1:2::7: already blocked: by 2001:db8:1:2::/64 in "
                             "/etc/hosts.deny; not ours: its delete will leave it (exit 0)")
    result = _run_as(etc, os.path.join(etc.install.prefix, "bin", "ossec-ar"), "--json", "list")
    assert result.returncode == 0, result
    listed = {(row["address"], row["where"]) for row in json.loads(result.stdout)["blocks"]}
    assert ("2001:db8:1:2::/64", "/etc/hosts.deny") in listed
    assert etc.code("delete", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert etc.code("delete", "-", "192.0.2.9", "1.1", "5712") == 0
    assert etc.read() == PREFIX_LINE
    assert verdicts(etc, INSIDE, BESIDE, "192.0.2.9") == ["denied", "granted", "granted"]
