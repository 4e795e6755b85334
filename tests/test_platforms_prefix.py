"""IPv6 prefixes (``ipv6_prefix``) in the backends of systems that cannot
run here: pf, ipfw, npf, IP Filter, AIX filter rules and the BSDs' and
macOS's blackhole routes (route-null.sh), through the fake tools of
tests/fakes (each naming the manual page it follows), which keep networks
as their tools do.  First each backend alone, loaded in the test
and handed a Prefix as the program hands it one; then the installed
program, with ``ipv6_prefix = 64`` in its configuration."""

import ipaddress
import os
import subprocess

import pytest

from conftest import stock_name
from fakebsd import FakeHost
from ossec_ar import backends, commands, config
from ossec_ar.address import Prefix, parse, parse_prefix
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
    # route-null.sh: a blackhole route, whose detail names the route itself
    "freebsd-route": ("FreeBSD", "route", None),
    "openbsd-route": ("OpenBSD", "route", None),
    "netbsd-route": ("NetBSD", "route", None),
    "macos-route": ("Darwin", "route", None),
}
ROUTE_SYSTEMS = sorted(platform for platform in PLATFORMS if platform.endswith("-route"))

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
    "route": (["route", "-n", "add", "-inet6", "-net", "2001:db8:1:2::", "-prefixlen", "64",
               "::1", "-blackhole"], ""),
}


def firewall_of(platform):
    return PLATFORMS[platform][1]


def fake_host(tmp_path, platform, install=None, settings=""):
    """The platform's fakes; npf's table declared ``type lpm``, the type
    that holds networks (npf.conf(5)); route run as route-null.sh, the
    name that chooses it."""
    system, firewall, _ = PLATFORMS[platform]
    host = FakeHost(install, tmp_path / "sbin", system, [firewall], settings)
    if system == "Darwin":          # macOS's pf.conf: Apple's anchor points, no table
        host.change("pf", rules=APPLE_RULES)
    if firewall == "npf":
        host.change("npf", types={"ossec_blacklist": "lpm"})
    if firewall == "route" and install is not None:
        stock_name(install.bin, "route-null.sh")
        host.program = "route-null.sh"
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
    elif firewall == "route":       # blackhole routes to ::1, host or network
        texts = ["%s/%d" % (route["dst"], route["plen"]) for route in state["route"]["routes"]
                 if ":" in route["dst"] and route["plen"] and "B" in route["flags"]
                 and route["gateway"] == "::1"]
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


def route_where(target):
    """The route backend's place for *target*: the route itself."""
    return "blackhole %s route %s to ::1" % (
        "network" if isinstance(target, Prefix) else "host", target)


def outcome(result, platform, target=PREFIX):
    """(status, True) if *result*'s detail names the platform's place (for
    route, the route of *target*)."""
    status, detail = result
    if firewall_of(platform) == "route":
        return status, detail == route_where(target)
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
    assert outcome(backend.delete(INSIDE), platform, INSIDE) == (UNBLOCKED, True)
    assert held(host, platform) == {"2001:db8:1:2::/64"}
    assert outcome(backend.delete(INSIDE), platform, INSIDE) == (NOT_BLOCKED, True)
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
    assert backend.members(6) == set()              # wider than ipv6_prefix blocks: not ours


# route (route-null.sh): the prefix is a blackhole network route, which the
# kernel keeps apart from the host routes of the addresses inside it

NET = ["-inet6", "-net", "2001:db8:1:2::", "-prefixlen", "64"]
NETWORK_ROUTE = route_where(PREFIX)


def table_route(dst, plen, gateway="::1", flags="UGSB", iface="lo0"):
    """A route of the fake route(8)'s table (a blackhole network route to
    ::1 unless told otherwise)."""
    return {"dst": dst, "plen": plen, "gateway": gateway, "flags": flags, "iface": iface}


def add_routes(host, *routes):
    state = host.state()
    state["route"]["routes"] += list(routes)
    host.save(state)


def tool(host, *argv):
    """(exit code, stdout, stderr) of the fake *argv* run as ossec-ar runs it."""
    result = subprocess.run([os.path.join(host.directory, argv[0])] + list(argv[1:]),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    return result.returncode, result.stdout.strip(), result.stderr.strip()


@pytest.mark.parametrize("platform", ROUTE_SYSTEMS)
def test_route_names_the_network_and_its_length_in_every_call(tmp_path, platform):
    """An add; the same add, which meets the route and asks whose it is;
    a delete, which asks first; a second delete, whose question finds no
    route and removes nothing.  netstat lists the route as the network,
    without H."""
    host = fake_host(tmp_path, platform)
    backend = load(host, platform)
    add = ["route", "-n", "add"] + NET + ["::1", "-blackhole"]
    get = ["route", "-n", "get"] + NET
    delete = ["route", "-n", "delete"] + NET + ["::1", "-blackhole"]
    assert backend.add(PREFIX) == (BLOCKED, NETWORK_ROUTE)
    assert host.argvs() == [add]
    listed = tool(host, "netstat", "-rn", "-f", "inet6")[1].splitlines()
    assert [line.split()[:3] for line in listed if line.startswith("2001:db8:1:2::")] == [
        ["2001:db8:1:2::/64", "::1", "UGSB"]]
    host.calls()
    assert backend.add(PREFIX) == (ALREADY_BLOCKED, NETWORK_ROUTE)
    assert backend.delete(PREFIX) == (UNBLOCKED, NETWORK_ROUTE)
    assert backend.delete(PREFIX) == (NOT_BLOCKED, NETWORK_ROUTE)
    assert host.argvs() == [add, get, get, delete, get]
    assert held(host, platform) == set()


@pytest.mark.parametrize("platform", ROUTE_SYSTEMS)
def test_route_a_route_of_the_network_that_is_not_its_own_is_exit_75_and_stays(
        tmp_path, platform):
    """An administrator's route of the very network (not a blackhole):
    the add meets it, asks, and fails naming it; a delete asks and
    leaves it."""
    host = fake_host(tmp_path, platform)
    theirs = table_route("2001:db8:1:2::", 64, gateway="2001:db8:ffff::1", flags="UGS",
                         iface="em0")
    add_routes(host, theirs)
    before = host.state()["route"]["routes"]
    backend = load(host, platform)
    with pytest.raises(Stop) as stop:
        backend.add(PREFIX)
    assert (stop.value.code, stop.value.reason) == (TEMPFAIL, (
        "a route to 2001:db8:1:2::/64 that is not ours is in the table (destination"
        " 2001:db8:1:2::, mask ffff:ffff:ffff:ffff::, gateway 2001:db8:ffff::1, flags"
        " <UP,GATEWAY,DONE,STATIC>); it was left as it is"))
    assert backend.delete(PREFIX) == (NOT_BLOCKED, NETWORK_ROUTE)
    assert [argv[2] for argv in host.argvs()] == ["add", "get", "get"]
    assert host.state()["route"]["routes"] == before
    assert backend.members(6) == set()


@pytest.mark.parametrize("platform", ROUTE_SYSTEMS)
def test_route_only_the_network_route_of_that_length_is_the_prefixs(tmp_path, platform):
    """Blackhole routes to ::1 of a wider network and of a narrower one at
    the same first address (an administrator's): the prefix is added
    beside them and its delete removes its own route alone.  A network
    wider than a /48, which ipv6_prefix never blocks, is not listed."""
    host = fake_host(tmp_path, platform)
    wider, narrower = table_route("2001:db8::", 32), table_route("2001:db8:1:2::", 80)
    add_routes(host, wider, narrower)
    backend = load(host, platform)
    assert backend.members(6) == {parse_prefix("2001:db8:1:2::/80")}
    assert backend.add(PREFIX) == (BLOCKED, NETWORK_ROUTE)
    assert backend.members(6) == {PREFIX, parse_prefix("2001:db8:1:2::/80")}
    assert backend.layout_members(6) == set()
    assert backend.delete(PREFIX) == (UNBLOCKED, NETWORK_ROUTE)
    assert backend.delete(PREFIX) == (NOT_BLOCKED, NETWORK_ROUTE)
    assert [route for route in host.state()["route"]["routes"] if route["plen"]] == [
        wider, narrower]


# What each route(8) answers (route.c's newroute and rtmsg): an existing
# network route, an absent one.
ROUTE_REFUSALS = {
    "FreeBSD": ((1, "add net 2001:db8:1:2::: gateway ::1 fib 0: route already in table", ""),
                (1, "delete net 2001:db8:1:2::: gateway ::1 fib 0: not in table",
                 "route: route has not been found")),
    "OpenBSD": ((1, "add net 2001:db8:1:2::: gateway ::1: File exists",
                 "route: writing to routing socket: File exists"),
                (1, "delete net 2001:db8:1:2::: gateway ::1: not in table",
                 "route: writing to routing socket: No such process")),
    "NetBSD": ((1, "add net 2001:db8:1:2::: gateway ::1: File exists",
                "route: writing to routing socket: File exists"),
               (1, "delete net 2001:db8:1:2::: gateway ::1: not in table",
                "route: writing to routing socket: not in table")),
    "Darwin": ((0, "add net 2001:db8:1:2::: gateway ::1: File exists",
                "route: writing to routing socket: File exists"),
               (0, "delete net 2001:db8:1:2::: gateway ::1: not in table",
                "route: writing to routing socket: not in table")),
}
BAD_PREFIXLEN = {"FreeBSD": (64, "route: 129: invalid prefixlen"),
                 "OpenBSD": (1, "route: prefixlen 129 is too large"),
                 "NetBSD": (1, "route: 129: bad value"), "Darwin": (1, "129: bad value")}


@pytest.mark.parametrize("platform", ROUTE_SYSTEMS)
def test_the_fake_route_answers_for_networks_as_route_c_does(tmp_path, platform):
    system = PLATFORMS[platform][0]
    host = fake_host(tmp_path, platform)
    add = ["route", "-n", "add"] + NET + ["::1", "-blackhole"]
    delete = ["route", "-n", "delete"] + NET + ["::1", "-blackhole"]
    assert tool(host, *add) == (0, "add net 2001:db8:1:2::: gateway ::1", "")
    exists, absent = ROUTE_REFUSALS[system]
    assert tool(host, *add) == exists
    # get: of a network, that very prefix; of a host, the longest match.
    add_routes(host, table_route("2001:db8:1::", 48))
    code, out, _ = tool(host, "route", "-n", "get", *NET)
    assert code == 0 and out.splitlines()[1:6] == [
        "destination: 2001:db8:1:2::", "       mask: ffff:ffff:ffff:ffff::",
        "    gateway: ::1", "  interface: lo0", "      flags: <UP,GATEWAY,DONE,STATIC,BLACKHOLE>"]
    code, out, _ = tool(host, "route", "-n", "get", "-inet6", "-host", "2001:db8:1:2::7")
    assert code == 0 and out.splitlines()[1:3] == [
        "destination: 2001:db8:1:2::", "       mask: ffff:ffff:ffff:ffff::"]
    assert tool(host, *delete) == (0, "delete net 2001:db8:1:2::: gateway ::1", "")
    assert tool(host, *delete) == absent
    # The /48 holds the network, but a get with a mask wants that very prefix.
    code, out, err = tool(host, "route", "-n", "get", *NET)
    assert "destination:" not in out and err == absent[2]
    assert code == (1 if system in ("FreeBSD", "NetBSD") else 0)
    code, out, err = tool(host, "route", "-n", "add", "-inet6", "-net", "2001:db8:1:2::",
                          "-prefixlen", "129", "::1", "-blackhole")
    assert (code, err) == BAD_PREFIXLEN[system] and out == ""
    assert held(host, platform) == {"2001:db8:1::/48"}


# The installed program, with ipv6_prefix = 64: the prefix lasts as long as
# the ledger holds an address of it

A7, A8 = "2001:db8:1:2::7", "2001:db8:1:2::8"


# The place an outcome names, whole.
PLACES = {"freebsd-pf": "pf table <ossec_fwtable>",
          "macos-pf": "pf table <ossec_fwtable> in anchor com.apple/ossec-ar",
          "freebsd-ipfw": "ipfw table ossec_fwtable", "netbsd-npf": "npf table <ossec_blacklist>",
          "solaris-ipfilter": "ipfilter rules in and out", "aix": "AIX filter rules (IPv6)"}
PLACES.update((platform, route_where(PREFIX)) for platform in ROUTE_SYSTEMS)


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
