"""Races that whoever holds the ossec (or wazuh) user runs against root,
with a real unprivileged uid, real runs of the installed programs and, for
the firewall, a private network namespace (issue 26).

- The log is a second name of one of root's files for a moment only: the
  attacker removes the extra name between our open() and our fstat(), so
  the link count says 1.  Root must still never write into that file.
- Our state directory is swapped for a link while it is being made: no
  mode or owner may change outside the prefix.
- A configuration planted in Wazuh's etc/ stops adds but never a delete.

This machine has fs.protected_hardlinks=1, so the hard links are made by
root on the uid's behalf, as a kernel without that setting (FreeBSD's, or
Linux's own default) lets the uid make them alone.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ossec_ar import backends, exits, log, state
from test_attacks import (ATTACKER_PYTHON, GID, IN_PRIVATE_MOUNTS, UID, as_attacker, checksums,
                          drop_agent, make_agent)
from test_attacks import agent, wazuh_agent         # noqa: F401 (fixtures, both layouts)
from test_unblock import Agent as UnblockAgent
from test_packets import CLIENT_V4, SERVER_V4, Pair

# Runs in the agent's private mounts and network namespace: binds /dev/log
# with a reader that drains it while the runs go on (hundreds of syslog
# messages would overflow a socket nobody reads), runs the program once
# per action given, and prints the exit codes and what syslog received.
MANY_RUNS = r"""
import json, os, socket, subprocess, sys, threading
catcher = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
catcher.bind("/dev/log")
messages = []
def drain():
    while True:
        data = catcher.recv(65536)
        if data == b"end":
            return
        messages.append(data.decode("utf-8", "replace"))
reader = threading.Thread(target=drain)
reader.start()
program, address = sys.argv[1], sys.argv[2]
codes = []
for action in sys.argv[3:]:
    codes.append(subprocess.run([program, action, "-", address, "1", "5712"],
                                stdin=subprocess.DEVNULL, timeout=30).returncode)
ender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ender.sendto(b"end", "/dev/log")
reader.join(30)
print(json.dumps({"codes": codes, "syslog": messages}))
"""


def many_runs(agent, program, address, actions):
    """Run *program* once per action, in order, as root in the agent's
    namespaces: {"codes": [...], "syslog": [...]}."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ETC": agent.etc}
    argv = (agent.netns.prefix() + ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                    IN_PRIVATE_MOUNTS, "sh", sys.executable, "-c",
                                    MANY_RUNS, agent.path("active-response/bin/" + program),
                                    address] + list(actions))
    result = subprocess.run(argv, env=env, cwd="/", stdout=subprocess.PIPE,
                            timeout=30 + 2 * len(actions))
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def ledger_records(agent):
    path = agent.path("var/ossec-ar/firewall-drop.ledger")
    with open(path) as f:
        return [line.split()[2] for line in f if not line.startswith("#")]


# Root's side of the attack, on the uid's behalf (the uid could do this
# itself without protected_hardlinks): makes the log a second name of the
# target and takes that name away again, as fast as it can.  With the old
# open-then-count check, 50 pairs of runs were enough to put lines in the
# target here; the uid's own unlinker below adds to the churn.
RELINKER = r"""
import os, sys, time
target, log = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + float(sys.argv[3])
made = 0
try:
    while time.monotonic() < deadline:
        try:
            os.link(target, log)
            made += 1
            os.unlink(log)
        except (FileExistsError, FileNotFoundError):
            pass
except KeyboardInterrupt:
    pass
print(made, flush=True)
"""

# The attacker's side: removes the log's name as fast as it can, which is
# what turns a link count of 2 into 1 between a reader's open and fstat.
UNLINKER = r"""
import os, sys, time
log = sys.argv[1]
deadline = time.monotonic() + float(sys.argv[2])
removed = 0
try:
    while time.monotonic() < deadline:
        try:
            os.unlink(log)
            removed += 1
        except FileNotFoundError:
            pass
except KeyboardInterrupt:
    pass
print(removed, flush=True)
"""

RUNS = 150           # pairs of runs: 300 runs, an add and a delete each


def test_a_log_linked_to_roots_file_for_a_moment_never_gets_a_byte(ossec_agent):
    agent = ossec_agent
    target = os.path.join(agent.etc, "ld.so.preload")
    with open(target, "w"):
        pass                    # empty: every process in the namespace reads it
    os.chmod(target, 0o644)
    log = agent.install.log_file
    os.unlink(log)
    before = checksums(agent.etc)
    seconds = str(60 + RUNS)
    relinker = subprocess.Popen([sys.executable, "-c", RELINKER, target, log, seconds],
                                stdout=subprocess.PIPE, universal_newlines=True)
    unlinker = subprocess.Popen([ATTACKER_PYTHON, "-c", UNLINKER, log, seconds], user=UID,
                                group=GID, extra_groups=[], stdout=subprocess.PIPE,
                                universal_newlines=True)
    try:
        result = many_runs(agent, "firewall-drop.sh", "192.0.2.7", ["add", "delete"] * RUNS)
    finally:
        for process in (relinker, unlinker):
            process.send_signal(signal.SIGINT)
        made, removed = (int(process.communicate(timeout=30)[0] or 0)
                         for process in (relinker, unlinker))
    assert made > RUNS and removed > 0              # the attack really ran
    assert checksums(agent.etc) == before           # not one byte in root's file
    assert result["codes"] == [0] * (2 * RUNS)      # every run did its work
    assert ledger_records(agent) == ["add", "delete"] * RUNS
    # The runs that met root's file sent both their lines to syslog instead,
    # each saying why: its other name was still there, or no longer, or the
    # name came and went under every try of the open.
    refused = [m for m in result["syslog"] if "cannot write " in m]
    assert refused and len(refused) == len(result["syslog"])
    reasons = ("(has 2 names (hard links); refused, one may be a system file)",
               "(is owned by uid 0, not by uid %d, the owner of its directory" % UID,
               "(keeps appearing and disappearing)")
    odd = [m for m in refused if not any(reason in m for reason in reasons)]
    assert not odd, odd[:2]
    outcomes = [m for m in refused if m.endswith(" (exit 0)")]
    assert outcomes and all(": add 192.0.2.7: blocked: iptables chain OSSEC" in m or
                            ": delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC"
                            in m for m in outcomes)
    assert not agent.blocked()


def test_a_log_that_is_roots_file_under_one_name_is_refused(agent):
    """The attacker's race won, frozen: the log's only name is in logs/, but
    the file is root's (here made by root; the attacker would have linked
    it and removed the other name).  And the link left in place."""
    target = os.path.join(agent.etc, "ld.so.preload")
    with open(target, "w"):
        pass                    # empty: every process in the namespace reads it
    log = agent.install.log_file
    os.unlink(log)
    os.link(target, log)
    before = checksums(agent.etc)
    result = many_runs(agent, "firewall-drop.sh", "192.0.2.7", ["add"])
    assert result["codes"] == [0] and agent.blocked()
    assert len(result["syslog"]) == 2
    assert all("(has 2 names (hard links); refused, one may be a system file)" in m
               for m in result["syslog"])
    os.unlink(target)                   # now root's file has one name, in logs/
    result = many_runs(agent, "firewall-drop.sh", "192.0.2.7", ["delete"])
    assert result["codes"] == [0] and not agent.blocked()
    assert len(result["syslog"]) == 2
    assert all("(is owned by uid 0, not by uid %d, the owner of its directory: it may be a "
               "second name of another user's file; refused)" % UID in m
               for m in result["syslog"]), result["syslog"]
    assert result["syslog"][1].endswith(
        ": delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC (exit 0)")
    del before[os.path.relpath(target, agent.etc)]
    assert checksums(agent.etc) == before
    with open(log) as f:
        assert f.read() == ""


# The attacker's side of the state directory race, with var/ writable by
# the uid: wait for root's new var/ossec-ar, put a link in its place, take
# the link away so that root makes the directory again.
SWAPPER = r"""
import os, sys, time
state, targets = sys.argv[1], sys.argv[2:-1]
deadline = time.monotonic() + float(sys.argv[-1])
swapped = n = 0
while time.monotonic() < deadline:
    try:
        os.rmdir(state)
    except OSError:
        continue
    os.symlink(targets[n % len(targets)], state)
    n += 1
    swapped += 1
    time.sleep(0.001)
    os.unlink(state)
print(swapped, flush=True)
"""

STATE_RUNS = 500


def test_the_state_directory_is_never_made_through_a_link(ossec_agent):
    agent = ossec_agent
    os.chmod(agent.path("var"), 0o770)          # for this test only
    target_file = os.path.join(agent.etc, "motd")
    target_dir = os.path.join(agent.etc, "default")
    assert os.path.isfile(target_file) and os.path.isdir(target_dir)
    outside = os.path.join(agent.top, "outside")
    os.mkdir(outside, 0o755)
    before = checksums(agent.etc), checksums(outside), os.stat(agent.top)
    swapper = subprocess.Popen([ATTACKER_PYTHON, "-c", SWAPPER, agent.path("var/ossec-ar"),
                                target_file, target_dir, outside, str(60 + STATE_RUNS)],
                               user=UID, group=GID, extra_groups=[], stdout=subprocess.PIPE,
                               universal_newlines=True)
    try:
        result = many_runs(agent, "firewall-drop.sh", "192.0.2.7", ["add"] * STATE_RUNS)
    finally:
        swapper.kill()
        swapper.wait()
    after = checksums(agent.etc), checksums(outside), os.stat(agent.top)
    assert after[:2] == before[:2]
    assert (after[2].st_mode, after[2].st_uid) == (before[2].st_mode, before[2].st_uid)
    # var/ is not root's alone: no run may use a state directory in it.
    assert set(result["codes"]) == {78}
    assert not agent.blocked()
    lines = [line for line in agent.log_lines() if ": add 192.0.2.7: " in line]
    assert len(lines) == STATE_RUNS
    assert all(": add 192.0.2.7: failed: unsafe state directory: " in line for line in lines)


def test_a_planted_configuration_stops_adds_never_a_delete(wazuh_agent):
    agent = wazuh_agent
    os.unlink(os.path.join(agent.etc, "ossec-ar.conf"))     # no system file: the defaults
    pair = Pair("nft")
    own_netns, agent.netns = agent.netns, pair.server
    try:
        assert pair.connects(SERVER_V4)
        run = agent.run("firewall-drop.sh", "add", "-", CLIENT_V4, "1", "5712")
        assert run["code"] == 0
        assert not pair.connects(SERVER_V4)
        conf = agent.path("etc/ossec-ar.conf")
        assert as_attacker("import sys; open(sys.argv[1], 'w').write("
                           "'[allowlist]\\naddresses = 0.0.0.0/0\\n')", conf) == 0
        run = agent.run("firewall-drop.sh", "add", "-", "192.0.2.8", "1", "5712")
        assert run["code"] == 78
        untrusted = ("configuration %s: not trusted: %s is owned by uid %d, not root; only a "
                     "file that root alone can change is used (see README, Configuration)"
                     % (conf, agent.path("etc"), UID))
        assert agent.log_lines()[-1].endswith(": add 192.0.2.8: failed: %s (exit 78)"
                                              % untrusted)
        run = agent.run("firewall-drop.sh", "delete", "-", CLIENT_V4, "1", "5712")
        assert run["code"] == 0
        assert pair.connects(SERVER_V4)
        line = agent.log_lines()[-1]
        assert ": delete %s: unblocked: nftables table inet ossec, set v4; default settings " \
               "used: %s (exit 0)" % (CLIENT_V4, untrusted) in line, line
    finally:
        agent.netns = own_netns
        pair.close()


# The races need the ossec user's logs/ (or a writable var/), which both
# layouts give alike: one layout is enough for them.
@pytest.fixture
def ossec_agent():
    host = make_agent("ossec")
    yield host
    drop_agent(host)


# -- Lifting is never stopped by the configuration ---------------------------


BROKEN = "[firewall-drop]\nbackend = iptable\n"     # a typo, by root


@pytest.fixture
def lifting_agent(nft_netns, install, etc_copy):
    return UnblockAgent(install, nft_netns, etc_copy)


def broken_configuration(install):
    install.configure(BROKEN)
    return ("default settings used: configuration %s line 2: backend: unknown backend "
            "'iptable' (known: %s)" % (install.config_file,
                                      ", ".join(("auto",) + tuple(backends.REGISTRY))))


def test_a_broken_configuration_stops_an_add_not_the_delete(lifting_agent):
    agent = lifting_agent
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1", "5712") == 0
    assert agent.run("host-deny.sh", "add", "-", "192.0.2.7", "1", "5712") == 0
    words = broken_configuration(agent.install)
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.8", "1", "5712") == 78
    assert agent.run("firewall-drop.sh", "delete", "-", "192.0.2.7", "1", "5712") == 0
    assert agent.outcome("firewall-drop.sh") == (
        "delete 192.0.2.7: unblocked: nftables table inet ossec, set v4; %s (exit 0)" % words)
    assert agent.run("host-deny.sh", "delete", "-", "192.0.2.7", "1", "5712") == 0
    assert agent.outcome("host-deny.sh") == (
        "delete 192.0.2.7: unblocked: %s; %s (exit 0)" % (agent.deny.replace(
            agent.etc, "/etc"), words))
    assert agent.hosts_deny() == "# admin\n"
    assert agent.ledger("firewall-drop")[-1] == ("delete", "192.0.2.7")


def test_unblock_sh_and_ossec_ar_lift_with_a_broken_configuration(lifting_agent):
    agent = lifting_agent
    for address in ("192.0.2.7", "192.0.2.9"):
        assert agent.run("firewall-drop.sh", "add", "-", address, "1", "5712") == 0
    words = broken_configuration(agent.install)
    assert agent.run("unblock.sh", "add", "-", "192.0.2.7", "(no_rule_id)") == 0
    assert agent.outcome() == (
        "add 192.0.2.7: unblocked: firewall-drop: unblocked: nftables table inet ossec, set "
        "v4; host-deny: was not blocked: %s; %s (exit 0)" % ("no block of ours in the ledger", words))
    ossec_ar = os.path.join(agent.install.prefix, "bin", "ossec-ar")
    result = agent.netns.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                              'mount --bind "$0" /etc; exec "$@"', agent.etc, ossec_ar,
                              "unblock", "192.0.2.9", "--json"])
    assert result.returncode == 0, result
    answer = json.loads(result.stdout)
    assert (answer["status"], answer["note"]) == ("unblocked", words)
    assert agent.install.log_lines()[-1].endswith("; %s (exit 0)" % words)
    assert [op for op, address in agent.ledger("firewall-drop")] == ["add", "add", "delete",
                                                                     "delete"]
    # expire lifts what is older than a second, as the ledger says.
    agent.install.configure("")
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.10", "1", "5712") == 0
    broken_configuration(agent.install)
    time.sleep(1.1)
    result = agent.netns.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                              'mount --bind "$0" /etc; exec "$@"', agent.etc, ossec_ar,
                              "expire", "--older-than", "1"])
    assert result.returncode == 0, result
    assert agent.install.log_lines()[-1].endswith(
        ": expire -: unblocked: 192.0.2.10 firewall-drop: unblocked; %s (exit 0)" % words)
    assert agent.ledger("firewall-drop")[-1] == ("delete", "192.0.2.10")


# -- The rule itself, on real files -------------------------------------------

@pytest.fixture
def logs(tmp_path, monkeypatch):
    """A logs/ of the test uid's, and what a Log sends to syslog."""
    directory = tmp_path / "logs"
    directory.mkdir()
    os.chown(str(directory), UID, GID)
    os.chmod(str(directory), 0o750)
    sent = []
    monkeypatch.setattr(log, "send_to_syslog", lambda ident, text: sent.append(text))
    return str(directory), sent


def write_one_line(path):
    writer = log.Log(path, "firewall-drop", date=lambda: "DATE")
    try:
        writer.write("a line")
    finally:
        writer.close()


def test_a_new_log_is_the_directory_owners_and_takes_the_line(logs):
    directory, sent = logs
    path = os.path.join(directory, "active-responses.log")
    write_one_line(path)
    write_one_line(path)                 # now an existing file of the owner's
    info = os.lstat(path)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (UID, GID, 0o660)
    with open(path) as f:
        assert f.read() == "DATE a line\n" * 2
    assert sent == []


@pytest.mark.parametrize("owner", [0, 4242], ids=["root", "another uid"])
def test_a_log_not_the_directory_owners_is_refused(logs, owner):
    directory, sent = logs
    path = os.path.join(directory, "active-responses.log")
    with open(path, "w"):
        pass
    os.chown(path, owner, GID)
    write_one_line(path)
    with open(path) as f:
        assert f.read() == ""
    assert sent == ["cannot write %s (is owned by uid %d, not by uid %d, the owner of its "
                    "directory: it may be a second name of another user's file; refused): "
                    "a line" % (path, owner, UID)]


@pytest.mark.parametrize("mode,who", [(0o770, "its group"), (0o1777, "any user")])
def test_no_log_is_used_in_a_root_directory_others_can_write(logs, mode, who):
    directory, sent = logs
    os.chown(directory, 0, GID)
    os.chmod(directory, mode)
    path = os.path.join(directory, "active-responses.log")
    with open(path, "w"):
        pass
    write_one_line(path)
    with open(path) as f:
        assert f.read() == ""
    assert sent == ["cannot write %s (is in a directory owned by root that %s can write "
                    "(mode %04o): it may be a second name of any file of root's; refused): "
                    "a line" % (path, who, mode)]


def test_in_a_directory_of_roots_alone_roots_log_is_used(logs):
    directory, sent = logs
    os.chown(directory, 0, 0)
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "active-responses.log")
    write_one_line(path)
    with open(path) as f:
        assert f.read() == "DATE a line\n"
    assert sent == [] and os.lstat(path).st_uid == 0


def test_a_state_directory_swapped_for_a_link_as_it_is_made_changes_nothing(tmp_path,
                                                                           monkeypatch):
    """The race above, won by the attacker every time: right after root's
    mkdir, the new directory is a link to a file of root's."""
    prefix = tmp_path / "prefix"
    (prefix / "var").mkdir(parents=True)
    target = tmp_path / "motd"
    target.write_text("root's\n")
    os.chmod(str(target), 0o644)
    real_mkdir = os.mkdir

    def mkdir_then_swap(path, mode=0o777):
        real_mkdir(path, mode)
        os.rmdir(path)
        os.symlink(str(target), path)
    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    with pytest.raises(exits.Stop) as stopped:
        state._make(str(prefix / "var" / "ossec-ar"), 0o700)
    monkeypatch.undo()
    assert stopped.value.code == exits.CONFIG
    assert "changed as it was created" in stopped.value.reason
    info = os.stat(str(target))
    assert (info.st_mode & 0o7777, info.st_uid) == (0o644, 0)
