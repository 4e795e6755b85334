"""firewall-drop.sh, installed by make install, against real iptables and
ip6tables (nft and legacy) in private network namespaces."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (AFTER_2262, Install, delete_netns, invocation, make_install, new_netns,
                      state_file)


@pytest.fixture
def install(iptables_install):
    """These tests read the iptables layout, so they choose it: ``auto``
    takes a set layout wherever nft or ipset is installed."""
    return iptables_install


OURS = ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]


def run(netns, install, *args):
    result = netns.run([install.program()] + list(args))
    assert (result.stdout, result.stderr) == ("", "")
    return result.returncode


def outcome(install):
    lines = install.log_lines()
    assert len(lines) % 2 == 0
    return lines[-1].split("/firewall-drop.sh: ", 1)[1]


def test_add_add_delete_delete_ipv4(netns, install):
    assert run(netns, install, "add", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: iptables chain OSSEC (repaired: "
                                "created chain OSSEC, jump from INPUT, jump from FORWARD) "
                                "(exit 0)")
    assert netns.rules() == OURS + ["-A OSSEC -s 192.0.2.7/32 -j DROP"]

    assert run(netns, install, "add", "-", "192.0.2.7", "1326977549.1358626", "5712") == 0
    assert outcome(install) == "add 192.0.2.7: already blocked: iptables chain OSSEC (exit 0)"
    assert netns.rules() == OURS + ["-A OSSEC -s 192.0.2.7/32 -j DROP"]

    assert run(netns, install, "delete", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert outcome(install) == "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC" \
                               " (exit 0)"
    assert netns.rules() == OURS

    assert run(netns, install, "delete", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    # The ledger's block was lifted: nothing of ours is left, no tool is asked.
    assert outcome(install) == ("delete 192.0.2.7: was not blocked: no block of ours in the"
                                " ledger (exit 0)")
    lines = install.log_lines()
    assert len(lines) == 8
    assert [invocation(line) for line in lines[::2]] == [
        ("firewall-drop.sh", "add", "192.0.2.7"), ("firewall-drop.sh", "add", "192.0.2.7"),
        ("firewall-drop.sh", "delete", "192.0.2.7"), ("firewall-drop.sh", "delete", "192.0.2.7")]
    assert all(invocation(line) is None for line in lines[1::2])


def test_ipv6_and_mapped_ipv4(netns, install):
    assert run(netns, install, "add", "-", "2001:DB8:0::7", "1.1", "5712") == 0
    assert outcome(install) == ("add 2001:db8::7: blocked: ip6tables chain OSSEC (repaired: "
                                "created chain OSSEC, jump from INPUT, jump from FORWARD) "
                                "(exit 0)")
    assert netns.rules("ip6tables") == OURS + ["-A OSSEC -s 2001:db8::7/128 -j DROP"]
    assert netns.rules("iptables") == []
    assert run(netns, install, "add", "-", "::ffff:192.0.2.9", "1.1", "5712") == 0
    assert netns.rules("iptables") == OURS + ["-A OSSEC -s 192.0.2.9/32 -j DROP"]
    assert run(netns, install, "delete", "-", "2001:db8::7", "1.1", "5712") == 0
    assert netns.rules("ip6tables") == OURS


def test_delete_lifts_adopted_stock_rules_and_leaves_the_administrators(netns, install):
    for chain in ("INPUT", "INPUT", "FORWARD"):     # as the stock script left them
        netns.check(["iptables", "-w", "-I", chain, "-s", "192.0.2.7", "-j", "DROP"])
    assert install.adopt(netns) == [
        {"program": "firewall-drop", "address": "192.0.2.7", "where": "iptables:" + chain}
        for chain in ("INPUT", "INPUT", "FORWARD")]
    # After install, the same form is the administrator's.
    netns.check(["iptables", "-w", "-I", "INPUT", "-s", "192.0.2.7", "-j", "DROP"])
    netns.check(["iptables", "-w", "-A", "INPUT", "-s", "192.0.2.77", "-j", "DROP"])
    netns.check(["iptables", "-w", "-A", "INPUT", "-s", "192.0.2.7", "-p", "tcp",
                 "-j", "DROP"])                      # an administrator's own rule
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert run(netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("delete 192.0.2.7: unblocked: iptables: removed 1 from "
                                "OSSEC; iptables: removed 2 from INPUT, 1 from FORWARD"
                                " (exit 0)")
    assert netns.rules() == [
        "-N OSSEC", "-A INPUT -j OSSEC", "-A INPUT -s 192.0.2.7/32 -j DROP",
        "-A INPUT -s 192.0.2.77/32 -j DROP", "-A INPUT -s 192.0.2.7/32 -p tcp -j DROP",
        "-A FORWARD -j OSSEC"]


def test_flushed_firewall_heals_at_the_next_add(netns, install):
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    netns.check(["iptables", "-w", "-F"])            # a firewall reload
    assert netns.rules() == ["-N OSSEC"]
    assert run(netns, install, "add", "-", "192.0.2.8", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.8: blocked: iptables chain OSSEC (repaired: "
                                "jump from INPUT, jump from FORWARD) (exit 0)")
    assert netns.rules() == OURS + ["-A OSSEC -s 192.0.2.8/32 -j DROP"]


def test_jump_is_moved_to_the_top_and_duplicates_removed(netns, install):
    netns.check(["iptables", "-w", "-N", "OSSEC"])
    netns.check(["iptables", "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate",
                 "ESTABLISHED", "-j", "ACCEPT"])
    netns.check(["iptables", "-w", "-A", "INPUT", "-j", "OSSEC"])
    netns.check(["iptables", "-w", "-A", "FORWARD", "-j", "OSSEC"])
    netns.check(["iptables", "-w", "-A", "FORWARD", "-j", "OSSEC"])
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: iptables chain OSSEC (repaired: "
                                "jump from INPUT moved to the top, jump from FORWARD moved "
                                "to the top) (exit 0)")
    assert netns.rules() == [
        "-N OSSEC", "-A INPUT -j OSSEC",
        "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT",
        "-A FORWARD -j OSSEC", "-A OSSEC -s 192.0.2.7/32 -j DROP"]


def test_chain_name_from_the_configuration(netns, install):
    install.configure("[firewall-drop]\nchain = OSSEC_BANS\n")
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert netns.rules() == ["-N OSSEC_BANS", "-A INPUT -j OSSEC_BANS",
                             "-A FORWARD -j OSSEC_BANS",
                             "-A OSSEC_BANS -s 192.0.2.7/32 -j DROP"]


HOSTILE = [
    # (argv after the program, exit code, outcome after "add "/"- ")
    (["add", "-", "$(touch /tmp/pwned)", "1.1", "1"], 65, "not an IP address"),
    (["add", "-", "192.0.2.7;reboot", "1.1", "1"], 65, "not an IP address"),
    (["add", "-", "-j", "ACCEPT"], 65, "starts with '-'"),
    (["add", "-", "192.0.2.7 -j ACCEPT", "1.1", "1"], 65, "not an IP address"),
    (["add", "-", "-F", "1.1", "1"], 65, "starts with '-'"),
    (["add", "-", "192.0.2.7\nThu Jan 19 13:52:29 CET 2012 x", "1.1", "1"], 65,
     "not an IP address"),
    (["add", "-", "A" * 10240, "1.1", "1"], 65, "not an IP address"),
    (["add", "-", b"\xff\xfe192.0.2.7", "1.1", "1"], 65, "not an IP address"),
    (["add", "-", "evil.example", "1.1", "1"], 65, "names are never resolved"),
    (["add", "-", "127.0.0.1", "1.1", "1"], 65, "loopback address"),
    (["add", "-", "::", "1.1", "1"], 65, "unspecified address"),
    (["add", "-", "224.0.0.1", "1.1", "1"], 65, "multicast address"),
    (["add", "-", "255.255.255.255", "1.1", "1"], 65, "broadcast address"),
    (["add", "-", "-", "(from_the_server)", "(no_rule_id)"], 65, "no address given"),
    (["ADD", "-", "192.0.2.7"], 64, "unknown action ADD"),
    (["add"], 64, "no IP address argument"),
    ([], 64, "no request: end of input"),           # no arguments: Wazuh's form
    (["add", "-", "192.0.2.7"] + ["x"] * 28, 64, "31 arguments, at most 30"),
]


def said(code):
    """The outcome's status for a request stopped with *code*: a request of
    the wrong form (64) is a usage error, an address we never block (65)
    is refused."""
    return {64: ": usage: ", 65: ": refused: "}[code]


@pytest.mark.parametrize("args,code,reason", HOSTILE,
                         ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_input_is_refused_and_changes_nothing(nft_netns, install, args, code,
                                                      reason):
    argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
    assert run(nft_netns, install, *argv) == code
    assert nft_netns.rules() == [] and nft_netns.rules("ip6tables") == []
    assert not os.path.exists("/tmp/pwned")
    lines = install.log_lines()
    assert len(lines) == 2
    assert all("\n" not in line and len(line) < 4096 for line in lines)
    assert said(code) in lines[1] and reason in lines[1]
    assert lines[1].endswith("(exit %d)" % code)


def test_allowlisted_address_is_refused(nft_netns, install):
    install.configure("[allowlist]\naddresses = 192.0.2.0/28, 2001:db8::/64\n")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 65
    assert outcome(install) == ("add 192.0.2.7: refused: 192.0.2.7 is on the allowlist "
                                "(192.0.2.0/28) (exit 65)")
    assert run(nft_netns, install, "add", "-", "192.0.2.77", "1.1", "1") == 0
    assert nft_netns.rules() == OURS + ["-A OSSEC -s 192.0.2.77/32 -j DROP"]


@pytest.mark.parametrize("entry", ["::ffff:192.0.2.10", "::ffff:192.0.2.0/124",
                                   "::FFFF:c000:20a"])
def test_an_ipv4_mapped_allowlist_entry_means_its_ipv4_address(nft_netns, install, entry):
    # The programs read ::ffff:a.b.c.d as a.b.c.d; so must the allowlist.
    install.configure("[allowlist]\naddresses = %s\n" % entry)
    for given in ("192.0.2.10", "::ffff:192.0.2.10"):
        assert run(nft_netns, install, "add", "-", given, "1.1", "1") == 65
        assert outcome(install) == ("add %s: refused: 192.0.2.10 is on the allowlist (%s) "
                                    "(exit 65)" % (given, entry))
    assert nft_netns.rules() == []
    assert run(nft_netns, install, "add", "-", "192.0.2.77", "1.1", "1") == 0
    assert nft_netns.rules() == OURS + ["-A OSSEC -s 192.0.2.77/32 -j DROP"]


def test_a_delete_lifts_an_address_allowlisted_after_its_block(nft_netns, install):
    # The allowlist refuses adds only: allowlisting a blocked address must
    # not keep it blocked for ever (execd's delete is its only way out).
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert nft_netns.rules() == OURS + ["-A OSSEC -s 192.0.2.7/32 -j DROP"]
    install.configure("[allowlist]\naddresses = 192.0.2.0/28\n")
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC"
                                " (exit 0)")
    assert nft_netns.rules() == OURS


def test_broken_configuration_is_exit_78_and_changes_nothing(nft_netns, install):
    install.configure("[firewall-drop]\nchain = OSSEC\nbackend = pfsense\n")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 78
    assert outcome(install) == (
        "add 192.0.2.7: failed: configuration %s line 3: backend: unknown backend 'pfsense'"
        " (known: auto, iptables, nftables, ipset, firewalld, pf, ipfw, npf, ipfilter,"
        " genfilt, route) (exit 78)" % install.config_file)
    assert nft_netns.rules() == []


def test_not_root_is_exit_77(nft_netns):
    # pytest's own temporary directories are 0700: install where uid 65534
    # can reach the program, as gid ossec can under /var/ossec.
    destdir = tempfile.mkdtemp(prefix="oar-")
    try:
        os.chmod(destdir, 0o755)
        copy = Install(make_install(destdir))
        copy.reset()
        os.chmod(copy.log_file, 0o666)
        # Group 0 so that the 0750 program is executable, as gid ossec is for execd.
        result = nft_netns.run(["setpriv", "--reuid=65534", "--regid=0", "--clear-groups",
                                copy.program(), "add", "-", "192.0.2.7", "1.1", "1"])
        assert (result.returncode, result.stdout, result.stderr) == (77, "", "")
        assert outcome(copy) == ("add 192.0.2.7: failed: must run as root (effective uid "
                                 "65534) (exit 77)")
        assert nft_netns.rules() == []
    finally:
        shutil.rmtree(destdir)


def in_private_mounts(netns, script, *argv):
    """Run *argv* in *netns* after *script* (mounts) in a private mount namespace."""
    return netns.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                      script + '\nexec "$@"', "sh"] + list(argv))


def test_missing_tool_is_exit_69(nft_netns, auto_install, tmp_path):
    install = auto_install
    # An empty directory over /usr/sbin hides iptables (and /sbin, its link).
    result = in_private_mounts(nft_netns, "mount -t tmpfs none /usr/sbin",
                               install.program(), "add", "-", "192.0.2.7", "1.1", "1")
    assert (result.returncode, result.stdout, result.stderr) == (69, "", "")
    # firewall-cmd is in /usr/bin (tools/setup installs it), but nothing runs it;
    # auto's order (README, Firewall backends).
    assert outcome(install) == ("add 192.0.2.7: failed: no usable firewall tool (firewalld: "
                                "firewalld is not running; "
                                "nftables: nft not found in /usr/sbin, /sbin, /usr/bin, /bin; "
                                "ipset: ipset not found in /usr/sbin, /sbin, /usr/bin, /bin; "
                                "iptables: "
                                "iptables not found in /usr/sbin, /sbin, /usr/bin, /bin)"
                                " (exit 69)")
    # A delete with nothing of ours in the ledger needs no tool at all...
    result = in_private_mounts(nft_netns, "mount -t tmpfs none /usr/sbin",
                               install.program(), "delete", "-", "192.0.2.7", "1.1", "1")
    assert result.returncode == 0
    assert outcome(install) == ("delete 192.0.2.7: was not blocked: no block of ours in the"
                                " ledger (exit 0)")
    # ...and one whose block the ledger puts in iptables fails, naming it.
    install.own("192.0.2.7", "firewall-drop", "iptables")
    result = in_private_mounts(nft_netns, "mount -t tmpfs none /usr/sbin",
                               install.program(), "delete", "-", "192.0.2.7", "1.1", "1")
    assert result.returncode == 69
    assert outcome(install) == ("delete 192.0.2.7: failed: the ledger says 192.0.2.7 is "
                                "blocked in iptables, which cannot be examined here (iptables"
                                " not found in /usr/sbin, /sbin, /usr/bin, /bin) (exit 69)")


FAILING_IPTABLES = """#!/bin/sh
# Stands in for iptables: lists an empty table, then fails every change the
# way iptables 1.8 does when the kernel lacks a target.
case " $* " in *" -S "*) exit 0;; esac
echo "iptables v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain OSSEC" >&2
exit 1
"""


def test_failing_tool_is_exit_75_with_its_own_message(nft_netns, install, tmp_path):
    fake = tmp_path / "iptables"
    fake.write_text(FAILING_IPTABLES)
    fake.chmod(0o755)
    result = in_private_mounts(
        nft_netns, "mount --bind %s /usr/sbin/xtables-nft-multi" % fake,
        install.program(), "add", "-", "192.0.2.7", "1.1", "1")
    assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
    assert outcome(install) == (
        "add 192.0.2.7: failed: `/usr/sbin/iptables -w 60 -N OSSEC` exited 1: iptables "
        "v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain "
        "OSSEC (exit 75)")
    assert nft_netns.rules() == []


def hold_lock(path):
    """flock(1) holding *path* until released; its child shares the lock."""
    holder = subprocess.Popen(["flock", path, "sh", "-c", "echo held; exec sleep 60"],
                              stdout=subprocess.PIPE, universal_newlines=True,
                              start_new_session=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def release(holder):
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()


# In the namespace's own mount namespace: a private /run, so that the
# xtables lock held here is not the machine's (iptables-legacy takes
# /run/xtables.lock whatever the network namespace).  Prints the program's
# exit code and how long it ran.
HELD_XTABLES_LOCK = r"""
set -e
mount -t tmpfs -o mode=0755 none /run
exec 9>/run/xtables.lock
flock -n 9              # held by this shell until it exits
start=$(date +%s.%N)
set +e
"$@"
code=$?
end=$(date +%s.%N)
echo "$code $start $end"
"""


def test_held_xtables_lock_is_exit_75_after_bounded_retries(install):
    netns = new_netns("legacy")
    try:
        install.configure("[firewall-drop]\nlock_wait = 2\n")
        result = netns.check(["sh", "-c", HELD_XTABLES_LOCK, "sh", install.program(), "add",
                              "-", "192.0.2.7", "1.1", "1"])
    finally:
        delete_netns(netns)
    code, start, end = result.split()
    elapsed = float(end) - float(start)
    assert code == "75"
    # It waited out its 2 s and gave up: bounded, whatever the machine's load.
    assert 2 <= elapsed < 60
    text = outcome(install)
    assert text.startswith("add 192.0.2.7: failed: `/usr/sbin/iptables -w ")
    assert "Another app is currently holding the xtables lock" in text
    assert text.endswith("(exit 75)")


def test_our_lock_held_is_exit_75(nft_netns, install):
    install.configure("[firewall-drop]\nlock_wait = 1\n")
    lock = state_file(install.prefix, "firewall-drop.lock")
    holder = hold_lock(lock)
    try:
        assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 75
    finally:
        release(holder)
    assert outcome(install) == ("add 192.0.2.7: failed: lock %s still held by another run "
                                "after 1s (exit 75)" % lock)
    assert nft_netns.rules() == []
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0


def test_internal_error_is_exit_70(nft_netns, tmp_path):
    copy = Install(make_install(str(tmp_path)), backend="iptables")
    copy.reset()
    module = os.path.join(copy.prefix, "lib", "ossec_ar", "backends", "iptables.py")
    with open(module, "a") as f:
        f.write("\ndef _drop_rule(address):\n    return None + 1\n")
    for cache in os.listdir(os.path.join(os.path.dirname(module), "__pycache__")):
        os.unlink(os.path.join(os.path.dirname(module), "__pycache__", cache))
    assert run(nft_netns, copy, "add", "-", "192.0.2.7", "1.1", "1") == 70
    text = outcome(copy)
    assert text.startswith("add 192.0.2.7: failed: internal error: TypeError: ")
    assert " at iptables.py:" in text and "in _drop_rule (exit 70)" in text


CLOCK_PAST_2262 = ("the system clock is past 2262-04-11, later than Python can read it: "
                   "set the clock")


@pytest.mark.parametrize("name,args", [
    ("firewall-drop.sh", ["add", "-", "192.0.2.8", "1.1", "5712"]),
    ("firewall-drop.sh", ["delete", "-", "192.0.2.7", "1.1", "5712"]),
    ("host-deny.sh", ["add", "-", "192.0.2.8", "1.1", "5712"]),
    ("unblock.sh", ["add", "-", "192.0.2.7", "(no_rule_id)"])])
def test_a_clock_past_2262_stops_a_run_with_a_dated_line(nft_netns, install, name, args):
    # Python reads the clock in 64-bit nanoseconds: time.time() fails past
    # 2262 where time(2) still answers.  No record could carry the change.
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    rules = nft_netns.rules()
    result = nft_netns.run(AFTER_2262 + [install.program(name)] + args)
    assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
    invocation, last = install.log_lines()[-2:]
    assert invocation.startswith("Thu Jan  1 ") and " 2263 " in invocation
    assert last.endswith(": %s %s: failed: %s (exit 75)" % (args[0], args[2], CLOCK_PAST_2262))
    assert nft_netns.rules() == rules


# -- A foreign rule in our chain must not let banned packets pass ----------

@pytest.fixture(params=["nft", "legacy"])
def pair(request):
    from test_packets import Pair
    pair = Pair(request.param)
    yield pair
    pair.close()


@pytest.mark.parametrize("target", ["RETURN", "ACCEPT"])
def test_a_rule_that_lets_packets_out_of_our_chain_is_removed_and_named(pair, install,
                                                                        target):
    from test_packets import CLIENT_V4, SERVER_V4
    program = install.program()
    pair.server.check(["iptables", "-w", "-N", "OSSEC"])
    pair.server.check(["iptables", "-w", "-A", "OSSEC", "-j", target])
    pair.server.check(["iptables", "-w", "-A", "OSSEC", "-s", "10.0.0.0/8", "-j", "DROP"])
    assert pair.connects(SERVER_V4)
    assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert not pair.connects(SERVER_V4)
    assert outcome(install) == (
        "add 192.0.2.7: blocked: iptables chain OSSEC (repaired: removed a rule not ours "
        "from chain OSSEC: -j %s, jump from INPUT, jump from FORWARD) (exit 0)" % target)
    # An administrator's own DROP lets nothing through: it stays.
    assert pair.server.rules() == OURS + ["-A OSSEC -s 10.0.0.0/8 -j DROP",
                                          "-A OSSEC -s 192.0.2.7/32 -j DROP"]
    assert pair.server.run([program, "delete", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert pair.connects(SERVER_V4)


def test_list_and_restore_see_a_return_put_before_our_rules(pair, install):
    from test_admin import admin, listing
    from test_packets import CLIENT_V4, SERVER_V4
    program = install.program()
    assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert not pair.connects(SERVER_V4)
    pair.server.check(["iptables", "-w", "-I", "OSSEC", "1", "-j", "RETURN"])
    assert pair.connects(SERVER_V4)
    assert listing(pair.server, install)["firewall-drop", CLIENT_V4]["state"] == "lost"
    result = admin(pair.server, install, "restore")
    assert (result.returncode, result.stderr) == (0, "")
    # The repair put the block back in force: nothing left to re-add.
    assert result.stdout == ("nothing to restore\nnote: iptables: repaired: removed a rule "
                             "not ours from chain OSSEC: -j RETURN\n")
    assert not pair.connects(SERVER_V4)
    assert listing(pair.server, install)["firewall-drop", CLIENT_V4]["state"] == "in force"


# -- ipv6_prefix: a prefix's rule beside the /128 rules ---------------------
#
# The backend alone, handed the Prefix the program hands it with
# ``ipv6_prefix`` (the program's own tests drive it with packets:
# test_prefix_packets.py).

PREFIX, INSIDE = "2001:db8:1:2::/64", "2001:db8:1:2::7"
PREFIX_RULE = "-A OSSEC -s 2001:db8:1:2::/64 -j DROP"
INSIDE_RULE = "-A OSSEC -s 2001:db8:1:2::7/128 -j DROP"


def test_a_prefix_is_one_rule_listed_back_as_the_prefix(netns):
    from conftest import backend_steps
    assert backend_steps(netns.run, "iptables", "add " + PREFIX, "add " + PREFIX,
                         "members 6", "members 4") == [
        "blocked: ip6tables chain OSSEC (repaired: created chain OSSEC, jump from INPUT, "
        "jump from FORWARD)",
        "already blocked: ip6tables chain OSSEC",
        PREFIX,                                 # a Prefix, not the address 2001:db8:1:2::
        ""]
    assert netns.rules("ip6tables") == OURS + [PREFIX_RULE]
    assert netns.rules("iptables") == []
    assert backend_steps(netns.run, "iptables", "delete " + PREFIX, "delete " + PREFIX,
                         "members 6") == [
        "unblocked: ip6tables: removed 1 from OSSEC",
        "was not blocked: ip6tables: no rule for it in OSSEC",
        ""]
    assert netns.rules("ip6tables") == OURS


def test_a_prefix_and_a_128_inside_it_are_lifted_apart(netns):
    from conftest import backend_steps
    assert backend_steps(netns.run, "iptables", "add " + PREFIX, "add " + INSIDE,
                         "members 6") == [
        "blocked: ip6tables chain OSSEC (repaired: created chain OSSEC, jump from INPUT, "
        "jump from FORWARD)", "blocked: ip6tables chain OSSEC",
        "%s Address('%s')" % (PREFIX, INSIDE)]
    assert netns.rules("ip6tables") == OURS + [PREFIX_RULE, INSIDE_RULE]
    # The /128's delete leaves the prefix...
    assert backend_steps(netns.run, "iptables", "delete " + INSIDE, "members 6") == [
        "unblocked: ip6tables: removed 1 from OSSEC", PREFIX]
    assert netns.rules("ip6tables") == OURS + [PREFIX_RULE]
    # ...and the prefix's delete leaves the /128.
    assert backend_steps(netns.run, "iptables", "add " + INSIDE, "delete " + PREFIX,
                         "members 6") == [
        "blocked: ip6tables chain OSSEC", "unblocked: ip6tables: removed 1 from OSSEC",
        "Address('%s')" % INSIDE]
    assert netns.rules("ip6tables") == OURS + [INSIDE_RULE]


def test_a_prefix_delete_takes_one_copy_and_leaves_an_administrators_rules(netns):
    from conftest import backend_steps
    assert backend_steps(netns.run, "iptables", "add " + PREFIX) == [
        "blocked: ip6tables chain OSSEC (repaired: created chain OSSEC, jump from INPUT, "
        "jump from FORWARD)"]
    theirs = [["OSSEC", "-s", PREFIX],                      # a copy beside ours
              ["OSSEC", "-s", "2001:db8:1::/48"],           # a wider network
              ["OSSEC", "-s", "2001:db8:1:2::/80"],         # a narrower one
              ["OSSEC", "-s", "2001:db8::/32"],             # wider than ipv6_prefix goes
              ["INPUT", "-s", PREFIX]]                      # the same, elsewhere
    for words in theirs:
        netns.check(["ip6tables", "-w", "-A"] + words + ["-j", "DROP"])
    before = netns.rules("ip6tables")
    assert backend_steps(netns.run, "iptables", "members 6", "delete " + PREFIX,
                         "members 6") == [
        "2001:db8:1:2::/64 2001:db8:1:2::/80 2001:db8:1::/48",
        "unblocked: ip6tables: removed 1 from OSSEC",
        "2001:db8:1:2::/64 2001:db8:1:2::/80 2001:db8:1::/48"]
    after = list(before)
    after.remove(PREFIX_RULE)                       # the first copy, ours
    assert netns.rules("ip6tables") == after
    assert after.count(PREFIX_RULE) == 1
    assert "-A INPUT -s %s -j DROP" % PREFIX in after
