"""IPv6 prefixes (``ipv6_prefix``) in the backends of systems that cannot
run here: pf, ipfw, npf, IP Filter and AIX filter rules, through the fake
tools of tests/fakes (each naming the manual page it follows), which keep
networks as their tools do.  First each backend alone, loaded in the test
and handed a Prefix as the program hands it one; then the installed
program, with ``ipv6_prefix = 64`` in its configuration."""

import ipaddress
import os
import subprocess

import pytest

from fakebsd import FakeHost
from ossec_ar import backends, commands, config
from ossec_ar.address import parse, parse_prefix
from ossec_ar.exits import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, TEMPFAIL, UNBLOCKED, Stop

PREFIX = parse_prefix("2001:db8:1:2::/64")
INSIDE = parse("2001:db8:1:2::7")
FIRST = parse("2001:db8:1:2::")         # the prefix's first address, blocked alone
APPLE_RULES = ['scrub-anchor "com.apple/*" all fragment reassemble',
               'anchor "com.apple/*" all']

# id: (uname name, backend, how the detail of its outcomes begins)
PLATFORMS = {
    "freebsd-pf": ("FreeBSD", "pf", "pf table <ossec_fwtable>"),
    "macos-pf": ("Darwin", "pf", "pf table <ossec_fwtable>"),   # (in anchor com.apple/...)
    "freebsd-ipfw": ("FreeBSD", "ipfw", "ipfw table ossec_fwtable"),
    "netbsd-npf": ("NetBSD", "npf", "npf table <ossec_blacklist>"),
    "solaris-ipfilter": ("SunOS", "ipfilter", "ipfilter rules in and out"),
    "aix": ("AIX", "genfilt", "AIX filter rules (IPv6)"),
}

# The call that blocks PREFIX, in the form its tool's manual gives (and
# for IP Filter the rules on its stdin).
PREFIX_CALLS = {
    "pf": (["pfctl", "-t", "ossec_fwtable", "-T", "add", "2001:db8:1:2::/64"], ""),
    "ipfw": (["ipfw", "table", "ossec_fwtable", "add", "2001:db8:1:2::/64"], ""),
    "npf": (["npfctl", "table", "ossec_blacklist", "add", "2001:db8:1:2::/64"], ""),
    "ipfilter": (["ipf", "-6", "-f", "-"], "@1 block in quick from 2001:db8:1:2::/64 to any\n"
                                          "@1 block out quick from any to 2001:db8:1:2::/64\n"),
    "genfilt": (["genfilt", "-v", "6", "-a", "D", "-s", "2001:db8:1:2::", "-m", "64", "-d", "::",
                 "-M", "0", "-w", "B", "-D", "ossec-ar"], ""),
}


def firewall_of(platform):
    return PLATFORMS[platform][1]


def fake_host(tmp_path, platform, install=None, settings=""):
    """The platform's fakes; npf's table declared ``type lpm``, the type
    that holds networks (npf.conf(5))."""
    system, firewall, _ = PLATFORMS[platform]
    host = FakeHost(install, tmp_path / "sbin", system, [firewall], settings)
    if system == "Darwin":          # macOS's pf.conf: Apple's anchor points, no table
        host.change("pf", rules=APPLE_RULES)
    if firewall == "npf":
        host.change("npf", types={"ossec_blacklist": "lpm"})
    return host


def load(host, platform, ipv6_prefix=64):
    """The platform's backend, as a run with ``ipv6_prefix`` loads it."""
    settings = config.Settings(ipv6_prefix=ipv6_prefix)
    return backends.load(firewall_of(platform), settings, commands.Tools([host.directory]),
                         host.name)


def held(host, platform):
    """The IPv6 blocks the fake firewall holds, as texts ("2001:db8::7",
    "2001:db8:1:2::/64"): one each, however the tool writes it."""
    state, firewall = host.state(), firewall_of(platform)
    if firewall == "pf":
        texts = [entry for tables in state["pf"]["tables"].values()
                 for entry in tables.get("ossec_fwtable", [])]
    elif firewall == "ipfw":
        texts = [entry.split()[0] for entry in state["ipfw"]["tables"].get("ossec_fwtable", [])]
    elif firewall == "npf":
        texts = state["npf"]["tables"]["ossec_blacklist"]
    elif firewall == "ipfilter":
        rules = state["ipf"]["rules6"]
        texts = [rule.split()[4] for rule in rules if rule.startswith("block in quick from ")
                 and "block out quick from any to %s" % rule.split()[4] in rules]
    else:
        active = state["aix"]["active"]["6"]
        assert active == state["aix"]["table"]["6"]             # mkfilt -u ran
        texts = ["%s/%s" % (fields[2], fields[3]) for fields in active
                 if fields[1] == "deny" and fields[21] == "ossec-ar"]
    networks = [ipaddress.ip_network(text) for text in texts]
    found = {str(n.network_address) if n.prefixlen == 128 else str(n) for n in networks}
    assert len(found) == len(networks)                          # no copies
    return found


def outcome(result, platform):
    """(status, True) if *result*'s detail names the platform's place."""
    status, detail = result
    return status, detail.startswith(PLATFORMS[platform][2])


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    return request.param


@pytest.fixture
def host(tmp_path, platform):
    return fake_host(tmp_path, platform)


def test_a_prefix_is_blocked_and_lifted_whole(host, platform):
    backend = load(host, platform)
    assert outcome(backend.add(PREFIX), platform) == (BLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    # One argument, the network in its manual's form (on macOS in the anchor:
    # -a com.apple/ossec-ar first); pf then kills the network's states.
    argv, stdin = PREFIX_CALLS[firewall_of(platform)]
    calls = [(call["argv"], call["stdin"]) for call in host.calls()]
    assert any((called[:1] + called[-len(argv) + 1:], given) == (argv, stdin)
               for called, given in calls)
    assert (firewall_of(platform) == "pf") == ((["pfctl", "-k", str(PREFIX)], "") in calls)
    assert outcome(backend.add(PREFIX), platform) == (ALREADY_BLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    # Listed as the prefix, never as the address it starts with.
    assert backend.members(6) == {PREFIX}
    assert backend.members(4) == set()
    assert outcome(backend.delete(PREFIX), platform) == (UNBLOCKED, True)
    assert held(host, platform) == set()
    assert backend.members(6) == set()
    assert outcome(backend.delete(PREFIX), platform) == (NOT_BLOCKED, True)
    assert held(host, platform) == set()


def test_a_prefix_and_an_address_inside_it_are_lifted_each_alone(host, platform):
    """An address blocked alone before the prefix (an earlier block, made
    while ipv6_prefix was 128) and the prefix are two blocks: the delete
    of either leaves the other, and so does a second delete that finds
    its own entry gone."""
    backend = load(host, platform)
    assert backend.add(INSIDE)[0] == BLOCKED
    assert backend.add(PREFIX)[0] == BLOCKED
    assert backend.members(6) == {INSIDE, PREFIX}
    # What adopt would take for a stock script's: the address alone (no
    # stock script blocked a network).
    assert backend.layout_members(6) == {INSIDE}
    assert outcome(backend.delete(PREFIX), platform) == (UNBLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::7"}
    assert outcome(backend.delete(PREFIX), platform) == (NOT_BLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::7"}
    assert backend.add(PREFIX)[0] == BLOCKED
    assert outcome(backend.delete(INSIDE), platform) == (UNBLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    assert outcome(backend.delete(INSIDE), platform) == (NOT_BLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    assert backend.members(6) == {PREFIX}


@pytest.mark.parametrize("platform", sorted(set(PLATFORMS) - {"netbsd-npf"}))
def test_the_prefix_and_its_first_address_are_two_blocks(host, platform):
    """2001:db8:1:2:: blocked alone and 2001:db8:1:2::/64: each listed as
    itself, each lifted alone.  (npf cannot hold both: below.)"""
    backend = load(host, platform)
    for target in (FIRST, PREFIX):
        assert backend.add(target)[0] == BLOCKED
    assert backend.members(6) == {FIRST, PREFIX}
    assert backend.delete(FIRST)[0] == UNBLOCKED
    assert backend.members(6) == {PREFIX}
    assert backend.add(FIRST)[0] == BLOCKED
    assert backend.delete(PREFIX)[0] == UNBLOCKED
    assert backend.members(6) == {FIRST}
    assert held(host, platform) == {"2001:db8:1:2::"}


def test_pf_kills_the_states_of_the_whole_prefix(tmp_path):
    host = fake_host(tmp_path, "freebsd-pf")
    host.change("pf", states={"2001:db8:1:2::99": 2, "2001:db8:1:2:0:1::5": 1,
                              "2001:db8:1:3::1": 4})
    assert load(host, "freebsd-pf").add(PREFIX) == (
        BLOCKED, "pf table <ossec_fwtable> (killed 3 states)")
    assert host.state()["pf"]["states"] == {"2001:db8:1:3::1": 4}


def test_the_fakes_refuse_what_their_tools_refuse(tmp_path):
    """The fakes' own answers to networks, from the tools' sources: pf's
    kernel refuses bits past the length, pfctl and ipfw a length past 128;
    ipfw clears such bits itself; npf's ipset table takes no mask."""
    def run(host, *argv):
        result = subprocess.run([os.path.join(host.directory, argv[0])] + list(argv[1:]),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
        return result.returncode, (result.stdout + result.stderr).strip()

    pf = fake_host(tmp_path / "pf", "freebsd-pf")
    assert run(pf, "pfctl", "-t", "ossec_fwtable", "-T", "add", "2001:db8:1:2::7/64") == (
        1, "pfctl: Invalid argument.")
    assert run(pf, "pfctl", "-t", "ossec_fwtable", "-T", "add", "2001:db8:1:2::/129") == (
        1, "invalid netmask '/129'")
    assert held(pf, "freebsd-pf") == set()
    ipfw = fake_host(tmp_path / "ipfw", "freebsd-ipfw")
    assert run(ipfw, "ipfw", "table", "t", "create", "type", "addr")[0] == 0
    assert run(ipfw, "ipfw", "table", "t", "add", "2001:db8:1:2::/129") == (
        65, "ipfw: bad IPv6 mask width: 129")
    assert run(ipfw, "ipfw", "table", "t", "add", "2001:db8:1:2::7/64") == (
        0, "added: 2001:db8:1:2::/64 0")
    npf = fake_host(tmp_path / "npf", "netbsd-npf")
    assert run(npf, "npfctl", "table", "ossec_blacklist", "add", "2001:db8:1:2::/129") == (
        1, "npfctl: invalid CIDR '2001:db8:1:2::'")
    npf.change("npf", types={})                                 # type ipset
    assert run(npf, "npfctl", "table", "ossec_blacklist", "add", "2001:db8:1:2::/64") == (
        1, "npfctl: invalid address, mask or table ID")
    assert held(npf, "netbsd-npf") == set()


# npf: only an lpm table holds networks, and it answers by longest match


def test_npf_a_prefix_needs_a_table_of_type_lpm(tmp_path):
    host = fake_host(tmp_path, "netbsd-npf")
    host.change("npf", types={"ossec_blacklist": "ipset"})
    backend = load(host, "netbsd-npf")
    with pytest.raises(Stop) as stop:
        backend.add(PREFIX)
    assert (stop.value.code, stop.value.reason) == (78, (
        "npf table <ossec_blacklist> cannot hold a network, which ipv6_prefix blocks; only a"
        " table of type lpm can: declare it 'table <ossec_blacklist> type lpm' in"
        " /etc/npf.conf, then run npfctl reload"))
    host.change("npf", tables={})
    with pytest.raises(Stop) as stop:
        backend.add(PREFIX)
    assert stop.value.code == 78 and stop.value.reason.startswith(
        "npf has no table <ossec_blacklist>; ")
    # An address still goes into the ipset table, and out of it by one rem.
    host.change("npf", tables={"ossec_blacklist": []})
    host.calls()
    backend = load(host, "netbsd-npf", ipv6_prefix=128)
    assert backend.add(INSIDE)[0] == BLOCKED
    assert backend.delete(INSIDE)[0] == UNBLOCKED
    assert [call["argv"] for call in host.calls()] == [
        ["npfctl", "table", "ossec_blacklist", "add", "2001:db8:1:2::7"],
        ["npfctl", "table", "ossec_blacklist", "rem", "2001:db8:1:2::7"]]


def test_npf_lpm_rem_would_lift_the_prefix_for_an_address_gone_so_delete_looks_first(
        tmp_path):
    host = fake_host(tmp_path, "netbsd-npf")
    backend = load(host, "netbsd-npf")
    assert backend.add(PREFIX)[0] == BLOCKED
    # What the table itself does: rem of an address takes the longest
    # match, here the prefix.
    result = subprocess.run([os.path.join(host.directory, "npfctl"), "table",
                             "ossec_blacklist", "rem", str(INSIDE)], stdout=subprocess.PIPE)
    assert result.returncode == 0 and held(host, "netbsd-npf") == set()
    assert backend.add(PREFIX)[0] == BLOCKED
    host.calls()
    assert backend.delete(INSIDE) == (NOT_BLOCKED, "npf table <ossec_blacklist>")
    assert held(host, "netbsd-npf") == {"2001:db8:1:2::/64"}
    assert [call["argv"] for call in host.calls()] == [
        ["npfctl", "table", "ossec_blacklist", "list"]]
    # An address inside the prefix is already blocked (lpm: conflicting).
    assert backend.add(INSIDE) == (ALREADY_BLOCKED, "npf table <ossec_blacklist>")
    assert held(host, "netbsd-npf") == {"2001:db8:1:2::/64"}


def test_npf_a_prefix_cannot_join_an_entry_at_its_first_address(tmp_path):
    """lpm refuses an entry whose first address another matches: the
    prefix's add fails naming that entry, rather than say "already
    blocked" of a network that is not."""
    host = fake_host(tmp_path, "netbsd-npf")
    backend = load(host, "netbsd-npf")
    assert backend.add(FIRST)[0] == BLOCKED
    with pytest.raises(Stop) as stop:
        backend.add(PREFIX)
    assert (stop.value.code, stop.value.reason) == (TEMPFAIL, (
        "2001:db8:1:2::/64 was not added: npf table <ossec_blacklist> holds 2001:db8:1:2:: at"
        " its first address, which its lpm lookup takes as a conflict"))
    assert held(host, "netbsd-npf") == {"2001:db8:1:2::"}
    # A network of someone else's that holds the prefix blocks it already.
    host.change("npf", tables={"ossec_blacklist": ["2001:db8::/32"]})
    assert backend.add(PREFIX) == (ALREADY_BLOCKED, "npf table <ossec_blacklist>")
    assert backend.members(6) == {parse_prefix("2001:db8::/32")}


# The installed program, with ipv6_prefix = 64: the prefix lasts as long as
# the ledger holds an address of it

A7, A8 = "2001:db8:1:2::7", "2001:db8:1:2::8"


# The place an outcome names, whole.
PLACES = {"freebsd-pf": "pf table <ossec_fwtable>",
          "macos-pf": "pf table <ossec_fwtable> in anchor com.apple/ossec-ar",
          "freebsd-ipfw": "ipfw table ossec_fwtable", "netbsd-npf": "npf table <ossec_blacklist>",
          "solaris-ipfilter": "ipfilter rules in and out", "aix": "AIX filter rules (IPv6)"}


def test_the_program_blocks_the_prefix_until_its_last_address_is_deleted(
        install, tmp_path, platform):
    host = fake_host(tmp_path, platform, install, "[firewall-drop]\nipv6_prefix = 64\n")
    place, firewall = PLACES[platform], firewall_of(platform)
    assert host.run("add", "-", A7, "1.1", "5712") == 0
    assert host.outcome().startswith("add %s: blocked: 2001:db8:1:2::/64 in %s" % (A7, place))
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    assert host.run("add", "-", A8, "1.1", "5712") == 0
    assert host.outcome() == ("add %s: already blocked: by 2001:db8:1:2::/64 in %s (exit 0)"
                              % (A8, place))
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    # The first delete keeps the prefix for the other address...
    assert host.run("delete", "-", A7, "1.1", "5712") == 0
    assert host.outcome() == ("delete %s: unblocked: %s; prefix 2001:db8:1:2::/64 kept for 1"
                              " other (%s) (exit 0)" % (A7, A7, firewall))
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    # ...whose delete lifts it.
    assert host.run("delete", "-", A8, "1.1", "5712") == 0
    assert host.outcome() == ("delete %s: unblocked: 2001:db8:1:2::/64 from %s%s (exit 0)"
                              % (A8, place, " (rule 1)" if firewall == "genfilt" else ""))
    assert held(host, platform) == set()
    assert host.state().get("overlaps", 0) == 0
