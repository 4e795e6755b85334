"""firewall-drop.sh on FreeBSD, OpenBSD, NetBSD, macOS, Solaris and AIX,
through fake tools (tests/fakes/, each naming the manual page it follows)
that keep state between calls.  The installed program runs as it would
there: only the configuration file's [system] section differs."""

import fcntl
import ipaddress
import json
import os
import subprocess
import time

import pytest

from conftest import stock_name
from fakebsd import FakeHost
from test_iptables import HOSTILE, said

V4, V6 = "192.0.2.7", "2001:db8::7"
PF, PF_ANCHOR = "pf table <ossec_fwtable>", "pf table <ossec_fwtable> in anchor com.apple/ossec-ar"
APPLE_RULES = ['scrub-anchor "com.apple/*" all fragment reassemble',
               'anchor "com.apple/*" all']
ROUTE4, ROUTE6 = ("blackhole host route %s to 127.0.0.1" % V4,
                  "blackhole host route %s to ::1" % V6)

# id: (uname name, firewall, outcome detail for IPv4, for IPv6)
PLATFORMS = {
    "freebsd-pf": ("FreeBSD", "pf", PF, PF),
    "openbsd-pf": ("OpenBSD", "pf", PF, PF),
    "macos-pf": ("Darwin", "pf", PF_ANCHOR, PF_ANCHOR),
    "freebsd-ipfw": ("FreeBSD", "ipfw", "ipfw table ossec_fwtable",
                     "ipfw table ossec_fwtable"),
    "netbsd-npf": ("NetBSD", "npf", "npf table <ossec_blacklist>",
                   "npf table <ossec_blacklist>"),
    "solaris-ipfilter": ("SunOS", "ipfilter", "ipfilter rules in and out",
                         "ipfilter rules in and out"),
    "freebsd-ipfilter": ("FreeBSD", "ipfilter", "ipfilter rules in and out",
                         "ipfilter rules in and out"),
    "netbsd-ipfilter": ("NetBSD", "ipfilter", "ipfilter rules in and out",
                        "ipfilter rules in and out"),
    "aix": ("AIX", "genfilt", "AIX filter rules (IPv4)", "AIX filter rules (IPv6)"),
    # route-null.sh: a blackhole route (route(8), netstat(1))
    "freebsd-route": ("FreeBSD", "route", ROUTE4, ROUTE6),
    "openbsd-route": ("OpenBSD", "route", ROUTE4, ROUTE6),
    "netbsd-route": ("NetBSD", "route", ROUTE4, ROUTE6),
    "macos-route": ("Darwin", "route", ROUTE4, ROUTE6),
}


def make_host(install, tmp_path, platform, settings=""):
    system, firewall = PLATFORMS[platform][:2]
    host = FakeHost(install, tmp_path / "sbin", system, [firewall], settings)
    if system == "Darwin":          # macOS's pf.conf: Apple's anchor points, no table
        host.change("pf", rules=APPLE_RULES)
    if firewall == "route":         # chosen by the stock name alone
        stock_name(install.bin, "route-null.sh")
        host.program = "route-null.sh"
    return host


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    return request.param


@pytest.fixture
def host(install, tmp_path, platform):
    return make_host(install, tmp_path, platform)


def copies(host, platform, address):
    """How many entries or rules of the fake firewall block *address*."""
    state, firewall = host.state(), PLATFORMS[platform][1]
    ip = ipaddress.ip_address(address)
    if firewall == "pf":
        return sum(table.get("ossec_fwtable", []).count(address)
                   for table in state["pf"]["tables"].values())
    if firewall == "ipfw":
        return state["ipfw"]["tables"].get("ossec_fwtable", []).count(
            "%s/%d 0" % (ip, ip.max_prefixlen))
    if firewall == "npf":
        return state["npf"]["tables"]["ossec_blacklist"].count(address)
    if firewall == "route":
        return sum(1 for route in state["route"]["routes"] if route["dst"] == str(ip)
                   and route["plen"] == ip.max_prefixlen and "B" in route["flags"])
    if firewall == "ipfilter":
        host_text = "%s/%d" % (ip, ip.max_prefixlen)
        rules = state["ipf"]["rules%d" % ip.version]
        return min(rules.count("block in quick from %s to any" % host_text),
                   rules.count("block out quick from any to %s" % host_text))
    active = state["aix"]["active"][str(ip.version)]
    assert active == state["aix"]["table"][str(ip.version)]    # mkfilt -u ran
    return sum(1 for fields in active if fields[1] == "deny" and fields[2] == address)


@pytest.mark.parametrize("address", [V4, V6])
def test_add_add_delete_delete(host, platform, address):
    detail = PLATFORMS[platform][2 if ":" not in address else 3]
    assert host.run("add", "-", address, "1326977549.1358625", "5712") == 0
    assert host.outcome().startswith("add %s: blocked: %s" % (address, detail))
    assert copies(host, platform, address) == 1
    assert host.run("add", "-", address, "1326977549.1358625", "5712") == 0
    assert host.outcome() == "add %s: already blocked: %s (exit 0)" % (address, detail)
    assert copies(host, platform, address) == 1
    assert host.run("delete", "-", address, "1326977549.1358625", "5712") == 0
    assert host.outcome().startswith("delete %s: unblocked: %s" % (address, detail))
    assert copies(host, platform, address) == 0
    assert host.run("delete", "-", address, "1326977549.1358625", "5712") == 0
    assert host.outcome().startswith("delete %s: was not blocked: " % address)
    assert copies(host, platform, address) == 0
    assert host.state().get("overlaps", 0) == 0


# The exact argv (and stdin) of every tool call: an add, the same add again,
# a delete.  No shell anywhere: each call is one argv list.  Each add first
# reads the host's own addresses and default gateways (the protections);
# a delete never does.
T = ["-t", "ossec_fwtable", "-T"]
ANCHOR = ["-a", "com.apple/ossec-ar"]
PROTECT = [(["ifconfig", "-a"], ""), (["netstat", "-rn", "-f", "inet"], "")]
EXPECTED_CALLS = {
    "pf": PROTECT + [
        (["pfctl", "-s", "info"], ""), (["pfctl", "-s", "rules"], ""),
        (["pfctl"] + T + ["add", V4], ""), (["pfctl", "-k", V4], "")] + PROTECT + [
        (["pfctl", "-s", "info"], ""), (["pfctl", "-s", "rules"], ""),
        (["pfctl"] + T + ["add", V4], ""), (["pfctl", "-k", V4], ""),
        (["pfctl"] + T + ["delete", V4], ""), (["pfctl"] + ANCHOR + T + ["delete", V4], ""),
    ],
    "macos-pf": PROTECT + [
        (["pfctl", "-s", "info"], ""), (["pfctl", "-s", "rules"], ""),
        (["pfctl"] + ANCHOR + ["-s", "rules"], ""),
        (["pfctl"] + ANCHOR + ["-f", "-"], "table <ossec_fwtable> persist\n"
                                           "block drop in quick from <ossec_fwtable> to any\n"),
        (["pfctl"] + ANCHOR + T + ["add", V4], ""), (["pfctl", "-k", V4], "")] + PROTECT + [
        (["pfctl", "-s", "info"], ""), (["pfctl", "-s", "rules"], ""),
        (["pfctl"] + ANCHOR + ["-s", "rules"], ""),
        (["pfctl"] + ANCHOR + T + ["add", V4], ""), (["pfctl", "-k", V4], ""),
        (["pfctl"] + T + ["delete", V4], ""), (["pfctl"] + ANCHOR + T + ["delete", V4], ""),
    ],
    "ipfw": PROTECT + [
        (["sysctl", "-n", "net.inet.ip.fw.enable"], ""),
        (["ipfw", "table", "ossec_fwtable", "info"], ""),
        (["ipfw", "table", "ossec_fwtable", "create", "type", "addr"], ""),
        (["ipfw", "list"], ""),
        (["ipfw", "add", "1", "deny", "ip", "from", "table(ossec_fwtable)", "to", "any"], ""),
        (["ipfw", "table", "ossec_fwtable", "add", V4], "")] + PROTECT + [
        (["sysctl", "-n", "net.inet.ip.fw.enable"], ""),
        (["ipfw", "table", "ossec_fwtable", "info"], ""), (["ipfw", "list"], ""),
        (["ipfw", "table", "ossec_fwtable", "add", V4], ""),
        (["ipfw", "table", "ossec_fwtable", "delete", V4], ""),
    ],
    "npf": PROTECT + [
        (["npfctl", "show"], ""), (["npfctl", "table", "ossec_blacklist", "add", V4], "")
    ] + PROTECT + [
        (["npfctl", "show"], ""), (["npfctl", "table", "ossec_blacklist", "add", V4], ""),
        (["npfctl", "table", "ossec_blacklist", "rem", V4], ""),
    ],
    "ipfilter": PROTECT + [
        (["ipf", "-V"], ""), (["ipfstat", "-io"], ""),
        (["ipf", "-f", "-"], "@1 block in quick from 192.0.2.7/32 to any\n"
                             "@1 block out quick from any to 192.0.2.7/32\n")] + PROTECT + [
        (["ipf", "-V"], ""), (["ipfstat", "-io"], ""),
        (["ipfstat", "-io"], ""),
        (["ipf", "-r", "-f", "-"], "block out quick from any to 192.0.2.7/32\n"
                                   "block in quick from 192.0.2.7/32 to any\n"),
    ],
    "genfilt": PROTECT + [
        (["lsdev", "-C", "-l", "ipsec_v4"], ""), (["lsfilt", "-v", "4", "-O"], ""),
        (["genfilt", "-v", "4", "-a", "D", "-s", V4, "-m", "255.255.255.255",
          "-d", "0.0.0.0", "-M", "0.0.0.0", "-w", "B", "-D", "ossec-ar"], ""),
        (["mkfilt", "-v", "4", "-u"], "")] + PROTECT + [
        (["lsdev", "-C", "-l", "ipsec_v4"], ""), (["lsfilt", "-v", "4", "-O"], ""),
        (["lsfilt", "-v", "4", "-O"], ""), (["rmfilt", "-v", "4", "-n", "2"], ""),
        (["mkfilt", "-v", "4", "-u"], ""),
    ],
    # The add; the same add, which meets a route and asks whose it is; the
    # delete, which asks first (the kernel deletes any route to V4).
    "route": PROTECT + [
        (["route", "-n", "add", "-host", V4, "127.0.0.1", "-blackhole"], "")] + PROTECT + [
        (["route", "-n", "add", "-host", V4, "127.0.0.1", "-blackhole"], ""),
        (["route", "-n", "get", "-host", V4], ""),
        (["route", "-n", "get", "-host", V4], ""),
        (["route", "-n", "delete", "-host", V4, "127.0.0.1", "-blackhole"], ""),
    ],
}


def test_exact_argv_of_every_tool_call(host, platform):
    for action in ("add", "add", "delete"):
        assert host.run(action, "-", V4, "1.1", "5712") == 0
    firewall = PLATFORMS[platform][1]
    expected = EXPECTED_CALLS["macos-pf" if platform == "macos-pf" else firewall]
    assert [(call["argv"], call["stdin"]) for call in host.calls()] == expected


@pytest.mark.parametrize("args,code,reason", HOSTILE,
                         ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_input_is_refused_before_any_tool_runs(install, tmp_path, args, code, reason):
    for platform in sorted(PLATFORMS):
        host = make_host(install, tmp_path / platform, platform)
        before = host.state()
        install.reset()
        host.configure()
        assert host.run(*args) == code
        lines = install.log_lines()
        assert len(lines) == 2 and said(code) in lines[1] and reason in lines[1]
        assert host.calls() == []
        assert host.state() == before
    assert not os.path.exists("/tmp/pwned")


# A failure of the tool that changes the firewall: (tool, words of the failing
# call, exit code, message), each from the tool's manual or source.
FAILURES = {
    "pf": ("pfctl", "-T add", 1, "pfctl: /dev/pf: Permission denied"),
    "ipfw": ("ipfw", "table ossec_fwtable add", 71,
             "ipfw: Adding record failed: table is locked"),
    "npf": ("npfctl", "table ossec_blacklist add", 1,
            "npfctl: ioctl(IOC_NPF_TABLE): Operation not permitted"),
    "ipfilter": ("ipf", "-f -", 1, "open(/dev/ipl): Permission denied"),
    "genfilt": ("genfilt", "-a D", 1, "Device ipsec_v4 is in Defined state."),
    "route": ("route", "add", 1, "route: writing to routing socket: Operation not permitted"),
}


def test_a_failing_tool_is_exit_75_with_its_own_words(host, platform):
    firewall = PLATFORMS[platform][1]
    tool, words, code, message = FAILURES[firewall]
    host.fail(tool, words, code, message)
    assert host.run("add", "-", V4, "1.1", "5712") == 75
    text = host.outcome()
    assert text.startswith("add %s: failed: `%s/%s " % (V4, host.directory, tool))
    assert text.endswith("exited %d: %s (exit 75)" % (code, message))
    assert copies(host, platform, V4) == 0


def test_concurrent_runs_take_turns(host, platform):
    addresses = ["192.0.2.%d" % n for n in range(10, 18)] + ["2001:db8::%d" % n
                                                            for n in range(1, 5)]
    for action, expected in (("add", 1), ("delete", 0)):
        runs = [host.start(action, "-", address, "1.1", "5712") for address in addresses]
        assert [run.wait(120) for run in runs] == [0] * len(runs)
        assert [copies(host, platform, a) for a in addresses] == [expected] * len(addresses)
    assert host.state().get("overlaps", 0) == 0


# One read-only call of each firewall's fakes (not netstat, which ossec-ar
# also runs outside its lock, for the protections: it counts no overlap).
QUERIES = {"pf": ["pfctl", "-s", "info"], "ipfw": ["sysctl", "-n", "net.inet.ip.fw.enable"],
           "npf": ["npfctl", "show"], "ipfilter": ["ipf", "-V"],
           "genfilt": ["lsfilt", "-v", "4", "-O"], "route": ["route", "-n", "get", "-host", V4]}


def wait_until_blocked_on(fd, bound=60):
    """Until some process waits for the flock on *fd*'s file: /proc/locks
    lists a waiter as "N: -> FLOCK ..." with the file's device and inode."""
    info = os.fstat(fd)
    inode = ":%d " % info.st_ino
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        with open("/proc/locks") as f:
            if any(" -> FLOCK " in line and inode in line for line in f):
                return
        time.sleep(0.01)
    raise AssertionError("nobody waited for the lock within %ds" % bound)


def test_the_fakes_notice_calls_that_overlap(host, platform):
    """The concurrency test's overlap count can fail: a fake that finds the
    state lock held by someone else counts it."""
    tool, *args = QUERIES[PLATFORMS[platform][1]]
    with open(os.path.join(host.directory, "state.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        process = subprocess.Popen([os.path.join(host.directory, tool)] + args,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_until_blocked_on(lock.fileno())
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert process.wait(30) == 0
    assert host.state()["overlaps"] == 1


# pf

def test_pf_without_a_rule_for_the_table_is_refused_with_the_lines_to_add(install,
                                                                            tmp_path):
    host = make_host(install, tmp_path, "freebsd-pf")
    host.change("pf", rules=["pass in all flags S/SA keep state"])
    assert host.run("add", "-", V4, "1.1", "5712") == 78
    assert host.outcome() == (
        "add 192.0.2.7: failed: pf has no loaded rule that blocks table <ossec_fwtable>,"
        " so adding to it would block nothing; add these lines to /etc/pf.conf: 'table"
        " <ossec_fwtable> persist' and 'block drop in quick from <ossec_fwtable> to any',"
        " then run pfctl -f /etc/pf.conf (exit 78)")
    assert copies(host, "freebsd-pf", V4) == 0


def test_pf_rule_in_another_form_is_recognised(install, tmp_path):
    host = make_host(install, tmp_path, "openbsd-pf")
    host.change("pf", rules=["block return in log quick on egress inet6 from <ossec_fwtable>"
                             " to any", "pass"])
    assert host.run("add", "-", V6, "1.1", "5712") == 0
    assert host.outcome() == "add 2001:db8::7: blocked: %s (exit 0)" % PF


def test_pf_disabled_or_not_loaded_is_exit_69_but_a_delete_still_empties_the_table(
        install, tmp_path):
    host = make_host(install, tmp_path, "openbsd-pf")
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.run("add", "-", "192.0.2.9", "1.1", "5712") == 0
    host.change("pf", enabled=False)
    assert host.run("add", "-", "192.0.2.8", "1.1", "5712") == 69
    assert host.outcome() == ("add 192.0.2.8: failed: no usable firewall tool (pf: pf is"
                              " disabled (enable it with pfctl -e)) (exit 69)")
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert copies(host, "openbsd-pf", V4) == 0
    # Without pf in the kernel, a block the ledger holds is not there.
    host.change("pf", loaded=False)
    assert host.run("delete", "-", "192.0.2.9", "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.9: was not blocked: %s (exit 0)" % PF
    # One the ledger no longer holds asks no tool.
    host.calls()
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == ("delete 192.0.2.7: was not blocked: no block of ours in the"
                              " ledger (exit 0)")
    assert host.calls() == []
    assert host.run("add", "-", V4, "1.1", "5712") == 69
    assert host.outcome() == (
        "add 192.0.2.7: failed: no usable firewall tool (pf: pf is not usable (`%s/pfctl -s"
        " info` exited 1: pfctl: /dev/pf: No such file or directory)) (exit 69)"
        % host.directory)


def test_pf_add_cuts_the_attackers_open_connections(install, tmp_path):
    host = make_host(install, tmp_path, "freebsd-pf")
    host.change("pf", states={V4: 3, "192.0.2.99": 1})
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "add 192.0.2.7: blocked: %s (killed 3 states) (exit 0)" % PF
    assert host.state()["pf"]["states"] == {"192.0.2.99": 1}
    host.fail("pfctl", "-k", 1, "pfctl: /dev/pf: Permission denied")
    assert host.run("add", "-", "192.0.2.8", "1.1", "5712") == 75
    assert host.outcome() == (
        "add 192.0.2.8: failed: in %s, but its connections were not cut: `%s/pfctl -k"
        " 192.0.2.8` exited 1: pfctl: /dev/pf: Permission denied (exit 75)"
        % (PF, host.directory))


def test_macos_anchor_is_loaded_once_and_holds_the_table(install, tmp_path):
    host = make_host(install, tmp_path, "macos-pf")
    for n in range(1, 4):
        assert host.run("add", "-", "192.0.2.%d" % n, "1.1", "5712") == 0
        # The first add loaded the anchor, and says so as every repair is said.
        assert host.outcome() == "add 192.0.2.%d: blocked: %s%s (exit 0)" % (
            n, PF_ANCHOR, " (repaired: loaded anchor com.apple/ossec-ar)" if n == 1 else "")
    state = host.state()["pf"]
    assert state["anchors"] == {"com.apple/ossec-ar": [
        "block drop in quick from <ossec_fwtable> to any"]}
    assert state["tables"]["com.apple/ossec-ar"]["ossec_fwtable"] == [
        "192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert state["rules"] == APPLE_RULES                  # pf.conf's own rules untouched


# ipfw

def test_ipfw_keeps_one_deny_rule_at_the_configured_number(install, tmp_path):
    host = make_host(install, tmp_path, "freebsd-ipfw", "[firewall-drop]\nipfw_rule = 500\n")
    for address in (V4, V6, "192.0.2.8"):
        assert host.run("add", "-", address, "1.1", "5712") == 0
    assert host.state()["ipfw"]["rules"] == [[500, "deny ip from table(ossec_fwtable) to any"]]
    host.change("ipfw", rules=[])                        # `ipfw flush`
    assert host.run("add", "-", "192.0.2.9", "1.1", "5712") == 0
    assert host.outcome() == ("add 192.0.2.9: blocked: ipfw table ossec_fwtable (repaired:"
                              " deny rule 500) (exit 0)")


def test_ipfw_disabled_is_exit_69_and_unloaded_ipfw_has_nothing_to_delete(install, tmp_path):
    host = make_host(install, tmp_path, "freebsd-ipfw")
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    host.change("sysctl", **{"net.inet.ip.fw.enable": "0"})
    assert host.run("add", "-", "192.0.2.8", "1.1", "5712") == 69
    assert "; ipfw: ipfw is disabled (net.inet.ip.fw.enable=0); " in host.outcome()
    state = host.state()
    del state["sysctl"]["net.inet.ip.fw.enable"]
    state["ipfw"]["loaded"] = False
    host.save(state)
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.7: was not blocked: ipfw not loaded (exit 0)"


def test_freebsd_auto_takes_the_enabled_firewall_and_delete_asks_every_one(install,
                                                                           tmp_path):
    host = FakeHost(install, tmp_path / "sbin", "FreeBSD", ["pf", "ipfw", "ipfilter"])
    host.change("pf", enabled=False)
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.outcome().startswith("add 192.0.2.7: blocked: ipfw table ossec_fwtable")
    host.change("pf", loaded=False)                  # pf.ko not even loaded
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.7: unblocked: ipfw table ossec_fwtable (exit 0)"
    host.change("sysctl", **{"net.inet.ip.fw.enable": "0"})
    host.change("ipf", running=False)
    assert host.run("add", "-", V4, "1.1", "5712") == 69
    assert host.outcome() == (
        "add 192.0.2.7: failed: no usable firewall tool (pf: pf is not usable (`%s/pfctl"
        " -s info` exited 1: pfctl: /dev/pf: No such file or directory); ipfw: ipfw is"
        " disabled (net.inet.ip.fw.enable=0); ipfilter: IP Filter is not running (enable"
        " it with ipf -E)) (exit 69)" % host.directory)


# npf

def test_npf_missing_table_is_refused_and_inactive_npf_is_exit_69(install, tmp_path):
    host = make_host(install, tmp_path, "netbsd-npf")
    host.change("npf", tables={})
    assert host.run("add", "-", V4, "1.1", "5712") == 78
    assert host.outcome() == (
        "add 192.0.2.7: failed: npf has no table <ossec_blacklist>; add 'table"
        " <ossec_blacklist> type ipset' and, in group default, 'block in final from"
        " <ossec_blacklist>' to /etc/npf.conf, then run npfctl reload (exit 78)")
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome().startswith("delete 192.0.2.7: was not blocked: ")
    host.change("npf", active=False, tables={"ossec_blacklist": []})
    assert host.run("add", "-", V4, "1.1", "5712") == 69
    assert "(npf: npf is not active (start it with npfctl start); " in host.outcome()
    assert host.state()["npf"]["tables"] == {"ossec_blacklist": []}


# IP Filter

def test_ipfilter_delete_removes_every_copy_the_stock_script_left(install, tmp_path):
    """The stock script added its two rules again on each alert; those
    there at install are adopted, every copy lifted by the delete."""
    host = make_host(install, tmp_path, "solaris-ipfilter")
    stock = ["block in quick from 192.0.2.7/32 to any", "block out quick from any to"
             " 192.0.2.7/32"] * 3
    others = ["block in quick from 192.0.2.70/32 to any", "pass in all"]
    host.change("ipf", rules4=others + stock)
    assert install.adopt() == [
        {"program": "firewall-drop", "address": address, "where": "ipfilter"}
        for address in (V4, "192.0.2.70")]
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == ("add 192.0.2.7: already blocked: ipfilter rules in and out"
                              " (exit 0)")
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.7: unblocked: ipfilter rules in and out (exit 0)"
    assert host.state()["ipf"]["rules4"] == others
    removals = [c for c in host.calls() if c["argv"][:2] == ["ipf", "-r"]]
    # Six rules, four a call: each call's input fits in one pipe write.
    assert [len(c["stdin"].splitlines()) for c in removals] == [4, 2]


def test_ipfilter_not_running_is_exit_69(install, tmp_path):
    host = make_host(install, tmp_path, "solaris-ipfilter")
    host.change("ipf", running=False)
    assert host.run("add", "-", V6, "1.1", "5712") == 69
    assert host.outcome().endswith("(ipfilter: IP Filter is not running (enable it with"
                                   " ipf -E)) (exit 69)")
    assert host.state()["ipf"]["rules6"] == []


# AIX

def test_aix_delete_matches_the_address_exactly_and_only_our_rules(install, tmp_path):
    host = make_host(install, tmp_path, "aix")

    def rule(number, address, description):
        return [str(number), "deny", address, "255.255.255.255", "0.0.0.0", "0.0.0.0", "no",
                "all", "any", "0", "any", "0", "both", "both", "no", "all packets", "0",
                "all", "0", "", "", description]
    table = [host.state()["aix"]["table"]["4"][0],
             rule(2, "10.0.0.10", "Access Denied by OSSEC-HIDS"),
             rule(3, "10.0.0.1", "Access Denied by OSSEC-HIDS"),
             rule(4, "10.0.0.1", "our own: never lift"),
             rule(5, "10.0.0.1", "Access Denied by OSSEC-HIDS")]
    host.change("aix", table={"4": table, "6": []}, active={"4": table, "6": []})
    # There at install: the stock script's rules are adopted (rule 4, not
    # in their form, is not).
    assert install.adopt() == [
        {"program": "firewall-drop", "address": address, "where": "genfilt"}
        for address in ("10.0.0.1", "10.0.0.10")]
    host.calls()
    assert host.run("delete", "-", "10.0.0.1", "1.1", "5712") == 0
    assert host.outcome() == ("delete 10.0.0.1: unblocked: AIX filter rules (IPv4) (rule 3,"
                              " 5) (exit 0)")
    left = host.state()["aix"]["active"]["4"]
    assert [(r[0], r[2], r[21]) for r in left] == [
        ("1", "0.0.0.0", "Default Rule"), ("2", "10.0.0.10", "Access Denied by OSSEC-HIDS"),
        ("3", "10.0.0.1", "our own: never lift")]
    assert [c["argv"][1:] for c in host.calls() if c["argv"][0] == "rmfilt"] == [
        ["-v", "4", "-n", "5"], ["-v", "4", "-n", "3"]]           # highest first


def test_aix_ipsec_not_started_is_exit_69(install, tmp_path):
    host = make_host(install, tmp_path, "aix")
    host.change("aix", devices={"ipsec_v4": "Available", "ipsec_v6": "Defined"})
    assert host.run("add", "-", V6, "1.1", "5712") == 69
    assert host.outcome().endswith(
        "(genfilt: IP security for IPv6 is not started (ipsec_v6 is not Available; start"
        " it with mkdev -l ipsec -t 6)) (exit 69)")
    assert host.run("add", "-", V4, "1.1", "5712") == 0


# The seam itself

@pytest.mark.parametrize("mode,problem", [
    (0o775, "must be owned by root and writable by nobody else"),
    (0o757, "must be owned by root and writable by nobody else")])
def test_tool_directories_anyone_else_can_write_are_refused(install, tmp_path, mode,
                                                             problem):
    host = make_host(install, tmp_path, "freebsd-pf")
    os.chmod(host.directory, mode)
    assert host.run("add", "-", V4, "1.1", "5712") == 78
    assert problem in host.outcome() and host.calls() == []
    install.configure("[system]\ntool_dirs = sbin\n")
    assert host.run("add", "-", V4, "1.1", "5712") == 78
    assert "'sbin' is not an absolute path" in host.outcome()


def test_a_system_without_a_backend_is_exit_69(install, tmp_path):
    host = make_host(install, tmp_path, "freebsd-pf")
    install.configure("[system]\nname = HPUX\ntool_dirs = %s\n" % host.directory)
    assert host.run("add", "-", V4, "1.1", "5712") == 69
    assert host.outcome() == ("add 192.0.2.7: failed: no firewall backend for HPUX"
                              " (exit 69)")


# ossec-ar on another system

def listed(install, program=None):
    """{address: (state, where)} of ``ossec-ar list --json``'s rows (of
    *program* alone, if given)."""
    result = subprocess.run([os.path.join(install.prefix, "bin", "ossec-ar"), "list",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert (result.returncode, result.stderr) == (0, "")
    return {row["address"]: (row["state"], row["where"])
            for row in json.loads(result.stdout)["blocks"]
            if program is None or row["program"] == program}


def test_ossec_ar_lists_and_restores_pf_blocks(install, tmp_path):
    host = make_host(install, tmp_path, "freebsd-pf")
    program = os.path.join(install.prefix, "bin", "ossec-ar")

    def rows():
        return listed(install, "firewall-drop")

    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.run("add", "-", V6, "1.1", "5712") == 0
    assert rows() == {V4: ("in force", "pf"), V6: ("in force", "pf")}
    host.change("pf", tables={"": {"ossec_fwtable": [V6, "198.51.100.9"]}})
    assert rows() == {V4: ("lost", "-"), V6: ("in force", "pf"),
                      "198.51.100.9": ("unknown", "pf")}
    result = subprocess.run([program, "restore"], stdout=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 0
    assert result.stdout == "%s (firewall-drop): blocked: %s\n" % (V4, PF)
    assert copies(host, "freebsd-pf", V4) == 1
    assert host.state().get("overlaps", 0) == 0


def test_a_full_disk_under_the_ledger_never_fails_the_block(install, tmp_path):
    from ossec_ar import ledger
    host = make_host(install, tmp_path, "openbsd-pf")
    db = os.path.join(install.prefix, "var", "ossec-ar")
    ledger_file = os.path.join(db, "firewall-drop.ledger")
    os.makedirs(db, exist_ok=True)
    # Earlier records filling exactly one 4 KiB page: on a full tmpfs, the
    # next record needs a page that is not there.
    lines = [ledger.Record(1764290000.0 + n, "add", "firewall-drop", "192.0.2.%d" % n,
                           "pf", "5712", "1.1").line() for n in range(1, 40)]
    while len("".join(lines)) > 4096 - 200:
        lines.pop()
    last = ledger.Record(1764290100.0, "add", "firewall-drop", "192.0.2.99", "pf", "5712", "")
    padding = 4096 - len("".join(lines)) - len(last.line()) + 1     # "" is written "-"
    last.alert = "a" * padding
    before = "".join(lines + [last.line()]).encode()
    assert len(before) == 4096
    # A full tmpfs over var/ossec-ar, holding a copy of the ledger, in a private
    # mount namespace: the real ENOSPC, and nothing outside changes.
    copy = str(tmp_path / "ledger.copy")
    with open(copy, "wb") as f:
        f.write(before)
    script = ('set -e; mount -t tmpfs -o size=8k,mode=0700 none "$1"; cp "$0" "$2";'
              ' dd if=/dev/zero of="$1/fill" bs=1k count=64 2>/dev/null || true;'
              ' ledger=$2; shift 2; set +e; "$@"; echo "exit $?"; cat "$ledger"')
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                             copy, db, ledger_file, install.program(), "add", "-",
                             "192.0.2.7", "1.1", "5712"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
    assert result.stdout.startswith(b"exit 0\n")
    assert result.stdout[len(b"exit 0\n"):] == before        # earlier record intact
    assert copies(host, "openbsd-pf", "192.0.2.7") == 1      # blocked all the same
    assert host.outcome() == ("add 192.0.2.7: blocked: %s; ledger %s not written: No space"
                              " left on device (exit 0)" % (PF, ledger_file))


def test_ossec_ar_lists_what_every_backend_holds(host, platform, install):
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.run("add", "-", V6, "1.1", "5712") == 0
    result = subprocess.run([os.path.join(install.prefix, "bin", "ossec-ar"), "list",
                             "--json"], stdout=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0
    rows = {row["address"]: (row["state"], row["where"])
            for row in json.loads(result.stdout)["blocks"] if row["program"] == "firewall-drop"}
    firewall = PLATFORMS[platform][1]
    assert rows == {V4: ("in force", firewall), V6: ("in force", firewall)}


# Blocks in the stock scripts' forms: ours if there at install, not if made later

# The calls a stock script made for one block, run through the fakes:
# pf.sh's, ipfw.sh's (without its -q, which the fake does not take),
# npf.sh's, firewall-drop.sh's IP Filter and AIX forms, route-null.sh's
# FreeBSD form (with the -host that its IPv4 address implied).
STOCK_CALLS = {
    "pf": lambda ip: [(["pfctl", "-t", "ossec_fwtable", "-T", "add", ip], ""),
                      (["pfctl", "-k", ip], "")],
    "ipfw": lambda ip: [(["ipfw", "table", "1", "add", ip], "")],
    "npf": lambda ip: [(["npfctl", "table", "ossec_blacklist", "add", ip], "")],
    "ipfilter": lambda ip: [(["ipf", "-f", "-"], "@1 block out quick from any to %s\n" % ip),
                            (["ipf", "-f", "-"], "@1 block in quick from %s to any\n" % ip)],
    "genfilt": lambda ip: [(["genfilt", "-v", "4", "-a", "D", "-s", ip, "-m", "255.255.255.255",
                             "-d", "0.0.0.0", "-M", "0.0.0.0", "-w", "B", "-D",
                             "Access Denied by OSSEC-HIDS"], ""),
                           (["mkfilt", "-v", "4", "-d"], ""), (["mkfilt", "-v", "4", "-u"], "")],
    "route": lambda ip: [(["route", "-q", "add", "-host", ip, "127.0.0.1", "-blackhole"], "")],
}
# ipfw.sh's two rules, which it loaded once (as `ipfw -q 00001 add ...`).
IPFW_SH_RULES = [[1, "deny ip from table(1) to any"], [1, "deny ip from any to table(1)"]]


def stock_block(host, firewall, address):
    for argv, stdin in STOCK_CALLS[firewall](address):
        result = subprocess.run([os.path.join(host.directory, argv[0])] + argv[1:],
                                input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        assert result.returncode == 0, result
    host.calls()


def stock_copies(host, platform, address):
    """How many blocks of *address* in its stock form the fake holds."""
    state, firewall = host.state(), PLATFORMS[platform][1]
    if firewall == "ipfw":
        return state["ipfw"]["tables"].get("1", []).count("%s/32 0" % address)
    if firewall == "pf":
        return state["pf"]["tables"][""]["ossec_fwtable"].count(address)
    return copies(host, platform, address)


def stock_host(install, tmp_path, platform):
    """A host where a stock script ran: ipfw.sh's rules are loaded, and on
    macOS pf.conf has the table that pf.sh requires, with its rule."""
    host = make_host(install, tmp_path, platform)
    if PLATFORMS[platform][1] == "ipfw":
        host.change("ipfw", rules=IPFW_SH_RULES)
    if platform == "macos-pf":
        host.change("pf", rules=APPLE_RULES + ["block drop in quick from <ossec_fwtable>"
                                               " to any"])
    return host


def test_a_stock_block_there_at_install_is_ours_and_one_made_later_is_not(install, tmp_path,
                                                                          platform):
    host = stock_host(install, tmp_path, platform)
    firewall = PLATFORMS[platform][1]
    before, after = V4, "192.0.2.8"

    def detail(address):                # pf.sh's table is the main ruleset's
        return PF if firewall == "pf" else PLATFORMS[platform][2].replace(V4, address)

    stock_block(host, firewall, before)
    # Install's adopt records it, as the stock form's own backend's (for
    # ipfw.sh's table 1, outside our layout, at its place).
    where = "ipfw:table(1)" if firewall == "ipfw" else firewall
    assert install.adopt() == [{"program": "firewall-drop", "address": before,
                                "where": where}]
    assert stock_copies(host, platform, before) == 1
    # Its delete (the one execd owes the stock script's add) lifts it.
    assert host.run("delete", "-", before, "1.1", "5712") == 0
    lifted = {"ipfw": "ipfw table 1 (the stock ipfw.sh's)",
              "genfilt": detail(before) + " (rule 2)"}.get(firewall, detail(before))
    assert host.outcome() == "delete %s: unblocked: %s (exit 0)" % (before, lifted)
    assert stock_copies(host, platform, before) == 0
    # The same form made after install is someone else's.
    stock_block(host, firewall, after)
    assert host.run("add", "-", after, "1.1", "5712") == 0
    if firewall == "ipfw":
        # Table 1 is not our layout: the add blocks in ours, whose delete
        # lifts only that.
        assert host.outcome().startswith("add %s: blocked: ipfw table ossec_fwtable" % after)
        assert copies(host, platform, after) == 1
        assert host.run("delete", "-", after, "1.1", "5712") == 0
        assert host.outcome() == ("delete %s: unblocked: ipfw table ossec_fwtable (exit 0)"
                                  % after)
        assert copies(host, platform, after) == 0
    else:
        assert host.outcome() == ("add %s: already blocked: %s; not ours: its delete will"
                                  " leave it (exit 0)" % (after, detail(after)))
        host.calls()
        assert host.run("delete", "-", after, "1.1", "5712") == 0
        assert host.outcome() == (
            "delete %s: not ours, left: %s: blocked by someone else (found there by an add,"
            " rule 5712, alert 1.1), left in place (exit 0)" % (after, firewall))
        assert host.calls() == []
    assert stock_copies(host, platform, after) == 1
    assert host.state().get("overlaps", 0) == 0


def test_ipfw_table_1_is_ipfw_sh_s_only_where_its_rules_read_it(install, tmp_path):
    """Without ipfw.sh's rules, table 1 is the administrator's: neither
    adopted nor listed.  With one of them, at whatever number, it is
    listed, and adopted."""
    host = make_host(install, tmp_path, "freebsd-ipfw")

    def rows():
        return listed(install)

    stock_block(host, "ipfw", V4)
    host.change("ipfw", rules=[[1, "deny ip from table(2) to any"], [100, "allow ip from"
                                                                      " table(1) to any"]])
    assert rows() == {}
    assert install.adopt() == []
    install.reset()
    host.configure()
    host.change("ipfw", rules=[[500, "deny ip from any to table(1)"]])
    assert rows() == {V4: ("unknown", "ipfw")}
    assert install.adopt() == [{"program": "firewall-drop", "address": V4,
                                "where": "ipfw:table(1)"}]
    assert rows() == {V4: ("in force", "ipfw")}
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.state()["ipfw"]["tables"]["1"] == []
    assert rows() == {}


# route (route-null.sh): blackhole routes

def blackhole(address, gateway=None, plen=None, flags="UGHSB"):
    """A route of the fake route(8)'s table."""
    ip = ipaddress.ip_address(address)
    return {"dst": address, "plen": plen or ip.max_prefixlen,
            "gateway": gateway or ("127.0.0.1" if ip.version == 4 else "::1"),
            "flags": flags, "iface": "lo0"}


@pytest.mark.parametrize("platform", ["freebsd-route", "macos-route"])
def test_route_leaves_every_route_that_is_not_its_own(install, tmp_path, platform):
    host = make_host(install, tmp_path, platform)
    theirs = [blackhole("192.0.2.99"), blackhole("192.0.2.0", plen=24, flags="UGSB"),
              blackhole("2001:db8::99")]
    to_the_host = blackhole(V4, gateway="198.51.100.5", flags="UGHS")
    state = host.state()
    state["route"]["routes"] += theirs + [to_the_host]
    host.save(state)
    # An administrator's route to the very address: not ours to replace...
    assert host.run("add", "-", V4, "1.1", "5712") == 75
    assert host.outcome() == (
        "add 192.0.2.7: failed: a route to 192.0.2.7 that is not ours is in the table"
        " (destination 192.0.2.7, gateway 198.51.100.5, flags <UP,GATEWAY,HOST,DONE,STATIC>);"
        " it was left as it is (exit 75)")
    # ...nor to delete, though the kernel would delete any route to it: the
    # ledger holds no block of it, and no tool is asked...
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == ("delete 192.0.2.7: was not blocked: no block of ours in the"
                              " ledger (exit 0)")
    assert [call["argv"][2] for call in host.calls() if call["argv"][0] == "route"] == [
        "add", "get"]
    # ...and where it holds one (ours, since replaced by this route), the
    # route is asked whose it is first, and left.
    install.own(V4, "firewall-drop", "route")
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.7: was not blocked: %s (exit 0)" % ROUTE4
    assert [call["argv"][2] for call in host.calls() if call["argv"][0] == "route"] == [
        "get"]
    assert to_the_host in host.state()["route"]["routes"]
    state = host.state()
    state["route"]["routes"].remove(to_the_host)
    host.save(state)
    for address in (V4, V6):
        for action in ("add", "delete"):
            assert host.run(action, "-", address, "1.1", "5712") == 0
    assert [route for route in host.state()["route"]["routes"]
            if route["plen"] != 0] == theirs


def test_route_on_macos_fails_by_its_words_though_it_exits_0(install, tmp_path):
    host = make_host(install, tmp_path, "macos-route")
    host.fail("route", "add", 0, "route: writing to routing socket: Operation not permitted")
    assert host.run("add", "-", V6, "1.1", "5712") == 75
    assert host.outcome() == (
        "add 2001:db8::7: failed: `%s/route -n add -inet6 -host 2001:db8::7 ::1 -blackhole`"
        " exited 0: route: writing to routing socket: Operation not permitted (exit 75)"
        % host.directory)


def test_route_lifts_the_stock_freebsd_route_whoever_deletes(install, tmp_path):
    """route-null.sh's FreeBSD form is ours: `route -q add IP 127.0.0.1
    -blackhole`.  Those there at install are adopted as route's; a delete
    by route-null.sh lifts one, and so does firewall-drop.sh's on a host
    that runs pf."""
    host = FakeHost(install, tmp_path / "sbin", "FreeBSD", ["pf", "route"])
    for address in ("192.0.2.21", "192.0.2.22"):
        state = host.state()
        state["route"]["routes"].append(blackhole(address))
        host.save(state)
    assert install.adopt() == [
        {"program": "firewall-drop", "address": address, "where": "route"}
        for address in ("192.0.2.21", "192.0.2.22")]
    host.calls()
    stock_name(install.bin, "route-null.sh")
    assert host.run_program("route-null.sh", "delete", "-", "192.0.2.21", "1.1", "5712") == 0
    assert install.log_lines()[-1].endswith(
        "/route-null.sh: delete 192.0.2.21: unblocked: blackhole host route 192.0.2.21 to"
        " 127.0.0.1 (exit 0)")
    assert host.run("delete", "-", "192.0.2.22", "1.1", "5712") == 0
    assert host.outcome() == ("delete 192.0.2.22: unblocked: blackhole host route"
                              " 192.0.2.22 to 127.0.0.1 (exit 0)")
    # pf is not asked: the ledger says route.  Each is one get and one delete.
    assert [call["argv"] for call in host.calls()] == [
        ["route", "-n", "get", "-host", "192.0.2.21"],
        ["route", "-n", "delete", "-host", "192.0.2.21", "127.0.0.1", "-blackhole"],
        ["route", "-n", "get", "-host", "192.0.2.22"],
        ["route", "-n", "delete", "-host", "192.0.2.22", "127.0.0.1", "-blackhole"]]
    assert [r for r in host.state()["route"]["routes"] if r["plen"] != 0] == []
    assert host.state().get("overlaps", 0) == 0


def test_backend_route_in_the_configuration_on_netbsd(install, tmp_path):
    host = FakeHost(install, tmp_path / "sbin", "NetBSD", ["npf", "route"],
                    "[firewall-drop]\nbackend = route\n")
    assert host.run("add", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "add 192.0.2.7: blocked: %s (exit 0)" % ROUTE4
    assert host.state()["npf"]["tables"] == {"ossec_blacklist": []}
    assert host.run("delete", "-", V4, "1.1", "5712") == 0
    assert host.outcome() == "delete 192.0.2.7: unblocked: %s (exit 0)" % ROUTE4
    # Only route ran: npf, though installed, is not asked (the ledger says route).
    assert [call["argv"] for call in host.calls()] == [
        ["ifconfig", "-a"], ["netstat", "-rn", "-f", "inet"],
        ["route", "-n", "add", "-host", V4, "127.0.0.1", "-blackhole"],
        ["route", "-n", "get", "-host", V4],
        ["route", "-n", "delete", "-host", V4, "127.0.0.1", "-blackhole"]]


@pytest.mark.parametrize("platform", ["openbsd-route", "netbsd-route"])
def test_route_exact_argv_for_ipv6(install, tmp_path, platform):
    host = make_host(install, tmp_path, platform)
    for action in ("add", "add", "delete", "delete"):
        assert host.run(action, "-", V6, "1.1", "5712") == 0
    add = ["route", "-n", "add", "-inet6", "-host", V6, "::1", "-blackhole"]
    get = ["route", "-n", "get", "-inet6", "-host", V6]
    delete = ["route", "-n", "delete", "-inet6", "-host", V6, "::1", "-blackhole"]
    # Each add reads the protections first; the last delete, which the
    # ledger has no block for, asks no tool.
    protect = [["ifconfig", "-a"], ["netstat", "-rn", "-f", "inet6"]]
    assert [call["argv"] for call in host.calls()] == (protect + [add] + protect +
                                                      [add, get, get, delete])
    assert host.outcome() == ("delete %s: was not blocked: no block of ours in the ledger"
                              " (exit 0)" % V6)
