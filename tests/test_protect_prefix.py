"""Protections checked against a whole IPv6 prefix (issue 22): an add that
would block ``2001:db8:1:2::/64`` is refused if any protected address (one
of the host's own, a default gateway, a resolver, the manager) lies
anywhere inside it, and the reason names that address.

On Linux the check runs in a private network namespace, on the kernel's
real state: ``protect.check`` is called there by a small script (CHECK)
that prints its finding.  On the other systems it reads the fake
``ifconfig -a`` and ``netstat -rn`` (tests/fakes/) that
test_protect_platforms.py uses.
"""

import json
import os
import socket
import subprocess
import sys
import types

import pytest

from conftest import ROOT, delete_netns, new_netns
from fakebsd import FakeHost
from ossec_ar import protect
from ossec_ar.address import parse, parse_prefix
from ossec_ar.commands import Tools
from test_platforms import PLATFORMS

ALL = ["self", "gateways", "resolvers", "manager"]

# Run in the namespace: check argv[1] (a prefix, or an address) with the
# protections argv[2] (words), the agent installed at argv[3] and
# resolv.conf at argv[4]; print [reason, unavailable, inside].  With
# argv[5] == "no-dumps", any dump of the host's addresses or local routes
# fails the check (a single address must never ask for one).
CHECK = """
import json, sys, types
sys.path.insert(0, %r)
from ossec_ar import address, protect, rtnetlink
protect.RESOLV_CONF = sys.argv[4]
protect.HOSTS = sys.argv[4] + ".hosts"
if sys.argv[5:] == ["no-dumps"]:
    def dump(*args):
        raise AssertionError("a dump")
    rtnetlink.addresses = rtnetlink.local_routes_v6 = dump
target = address.parse_prefix(sys.argv[1]) or address.parse(sys.argv[1])
finding = protect.check(target, sys.argv[2].split(), sys.argv[3],
                        types.SimpleNamespace(name="Linux"))
print(json.dumps([finding.reason, finding.unavailable,
                  finding.inside.text if finding.inside else None]))
""" % os.path.join(ROOT, "lib")

# A process that calls itself ossec-agentd (its comm, as /proc shows it)
# and holds a UDP socket connected to argv[1], port 1514.
AGENT = """
import socket, sys
with open("/proc/self/comm", "w") as f:
    f.write("ossec-agentd")
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 1514))
print("ready", flush=True)
sys.stdin.read()
"""


class Host:
    """A namespace with v0 (its peer v1 in the same namespace) holding
    2001:db8:1:2::1/64, an on-link route to 2001:db8:1:4::/64 and the
    default route through 2001:db8:1:4::fe; an agent installed in a
    directory of its own, and a resolv.conf of the test's."""

    def __init__(self, tmp_path):
        self.netns = new_netns()
        for argv in (["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                     ["ip", "-6", "addr", "add", "2001:db8:1:2::1/64", "dev", "v0", "nodad"],
                     ["ip", "link", "set", "v0", "up"], ["ip", "link", "set", "v1", "up"],
                     ["ip", "-6", "route", "add", "2001:db8:1:4::/64", "dev", "v0"],
                     ["ip", "-6", "route", "add", "default", "via", "2001:db8:1:4::fe",
                      "dev", "v0"]):
            self.netns.check(argv)
        self.prefix = str(tmp_path / "ossec")
        os.makedirs(os.path.join(self.prefix, "etc"))
        self.resolv_conf = str(tmp_path / "resolv.conf")
        self.resolvers("192.0.2.53")
        self.ossec_conf("<server-ip>192.0.2.40</server-ip>")

    def resolvers(self, *addresses):
        with open(self.resolv_conf, "w") as f:
            f.write("".join("nameserver %s\n" % address for address in addresses))

    def ossec_conf(self, client):
        with open(os.path.join(self.prefix, "etc", "ossec.conf"), "w") as f:
            f.write("<ossec_config>\n  <client>%s</client>\n</ossec_config>\n" % client)

    def check(self, target, protections=ALL, *extra):
        """[reason, unavailable, inside] for *target* in the namespace."""
        result = self.netns.run([sys.executable, "-c", CHECK, target, " ".join(protections),
                                 self.prefix, self.resolv_conf] + list(extra))
        assert result.returncode == 0 and result.stderr == "", result
        return json.loads(result.stdout)

    def refused(self, target, protection, inside, detail=None, protections=ALL):
        words = {"self": "one of the host's own addresses",
                 "gateways": "the host's default gateway",
                 "resolvers": "a resolver in /etc/resolv.conf",
                 "manager": "the manager this agent reports to"}[protection]
        named = inside if detail is None else "%s, %s" % (inside, detail)
        assert self.check(target, protections) == [
            "%s (%s) is inside %s (protect = %s)" % (words, named, target, protection), [],
            inside]

    def allowed(self, target, protections=ALL):
        assert self.check(target, protections) == [None, [], None]

    def close(self):
        delete_netns(self.netns)


@pytest.fixture
def host(tmp_path):
    host = Host(tmp_path)
    yield host
    host.close()


def test_an_own_address_inside_the_prefix_refuses_it(host):
    host.refused("2001:db8:1:2::/64", "self", "2001:db8:1:2::1")
    host.allowed("2001:db8:1:3::/64")
    # Anywhere inside, at any length: the first address, the middle, a /48
    # around it; not a /124 beside it.
    host.refused("2001:db8:1::/48", "self", "2001:db8:1:2::1")
    host.refused("2001:db8:1:2::/127", "self", "2001:db8:1:2::1")
    host.allowed("2001:db8:1:2::10/124")
    # Several: the lowest is named.
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:1:2:ffff::9/64", "dev", "v0",
                      "nodad"])
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:1:2::0/64", "dev", "v0",
                      "nodad"])
    host.refused("2001:db8:1:2::/64", "self", "2001:db8:1:2::")
    host.refused("2001:db8:1:2:8000::/65", "self", "2001:db8:1:2:ffff::9")


def test_a_single_address_keeps_its_words_and_asks_for_no_dump(host):
    assert host.check("2001:db8:1:2::1", ALL, "no-dumps") == [
        "one of the host's own addresses (protect = self)", [], None]
    assert host.check("2001:db8:1:4::fe", ALL, "no-dumps") == [
        "the host's default gateway (default via v0) (protect = gateways)", [], None]
    assert host.check("2001:db8:1:3::1", ALL, "no-dumps") == [None, [], None]
    # The same hook does stop a prefix's check: it is what makes the dumps.
    reason, unavailable, _ = host.check("2001:db8:1:3::/64", ["self"], "no-dumps")
    assert reason is None and unavailable == [["self", "AssertionError: a dump"]]


def test_own_addresses_without_a_local_route_count(host):
    """Tentative (in duplicate address detection) and on an interface
    that is down: no local route, still the host's."""
    host.netns.check(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:5::1/64", "dev", "d0"])
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:6::77/64", "dev", "v0"])
    host.refused("2001:db8:5::/64", "self", "2001:db8:5::1")
    host.refused("2001:db8:6::/64", "self", "2001:db8:6::77")
    host.allowed("2001:db8:7::/64")


def test_a_local_route_inside_or_around_the_prefix_counts(host):
    """``ip route add local NET dev lo`` makes every address of NET the
    host's: a prefix that overlaps it either way is refused."""
    host.netns.check(["ip", "-6", "route", "add", "local", "2001:db8:8:0:8000::/65",
                      "dev", "lo"])
    route = "local route 2001:db8:8:0:8000::/65"
    host.refused("2001:db8:8::/64", "self", "2001:db8:8:0:8000::", route)       # around it
    host.refused("2001:db8:8::/48", "self", "2001:db8:8:0:8000::", route)
    host.refused("2001:db8:8:0:c000::/66", "self", "2001:db8:8:0:c000::", route)  # inside it
    host.allowed("2001:db8:8:0:4000::/66")
    host.allowed("2001:db8:8:1::/64")
    # In another table, chosen by a rule: the route to the prefix finds it.
    host.netns.check(["ip", "-6", "route", "add", "local", "2001:db8:9::/64", "dev", "lo",
                      "table", "100"])
    host.netns.check(["ip", "-6", "rule", "add", "to", "2001:db8:9::/64", "table", "100"])
    host.refused("2001:db8:9::/64", "self", "2001:db8:9::", "local route 2001:db8:9::/64",
                 ["self"])


def test_a_default_gateway_inside_the_prefix_refuses_it(host):
    host.refused("2001:db8:1:4::/64", "gateways", "2001:db8:1:4::fe", "default via v0")
    host.refused("2001:db8:1:4::f0/124", "gateways", "2001:db8:1:4::fe", "default via v0")
    host.allowed("2001:db8:1:4::/121")
    host.allowed("2001:db8:1:5::/64")
    # Turned off, the same prefix is let through.
    host.allowed("2001:db8:1:4::/64", ["self", "resolvers", "manager"])


def test_default_gateways_through_every_interface_and_every_next_hop(host):
    """A prefix reached through one interface, a gateway inside it through
    another at a higher metric; and a default route of two next hops."""
    host.netns.check(["ip", "link", "add", "w0", "type", "veth", "peer", "name", "w1"])
    # w0's own address lies outside the prefix (and makes it an interface
    # with IPv6 at once, before its link-local address comes).
    for argv in (["ip", "-6", "addr", "add", "2001:db8:ee::1/64", "dev", "w0", "nodad"],
                 ["ip", "link", "set", "w0", "up"], ["ip", "link", "set", "w1", "up"],
                 ["ip", "-6", "route", "add", "2001:db8:2:1::/64", "dev", "w0"],
                 ["ip", "-6", "route", "add", "default", "via", "2001:db8:2:1::fe", "dev",
                  "w0", "metric", "2000"]):
        host.netns.check(argv)
    host.refused("2001:db8:2::/48", "gateways", "2001:db8:2:1::fe", "default via w0")
    host.netns.check(["ip", "-6", "route", "del", "default", "via", "2001:db8:2:1::fe"])
    host.allowed("2001:db8:2::/48")
    host.netns.check(["ip", "-6", "route", "replace", "default", "nexthop", "via",
                      "2001:db8:1:4::fe", "dev", "v0", "nexthop", "via", "2001:db8:2:1::fe",
                      "dev", "w0"])
    host.refused("2001:db8:2::/48", "gateways", "2001:db8:2:1::fe", "default via w0")


def test_a_gateway_that_the_route_to_the_prefix_goes_through(host):
    host.netns.check(["ip", "-6", "route", "add", "2001:db8:3::/64", "via", "2001:db8:3::fe",
                      "dev", "v0", "onlink"])
    host.refused("2001:db8:3::/64", "gateways", "2001:db8:3::fe",
                 "the route to 2001:db8:3:: goes through it")


def test_a_route_that_hides_the_default_one_makes_gateways_unavailable(host):
    host.netns.check(["ip", "-6", "route", "add", "::/1", "dev", "v0"])
    assert host.check("2001:db8:1:5::/64") == [None, [[
        "gateways", "a route to /1 covers the address that finds the default route"]], None]


def test_a_resolver_inside_the_prefix_refuses_it(host):
    host.resolvers("192.0.2.53", "fe80::53%v0", "2001:db8:1:6::53", "2001:db8:1:6::54")
    host.refused("2001:db8:1:6::/64", "resolvers", "2001:db8:1:6::53")
    host.refused("2001:db8:1:6::54/127", "resolvers", "2001:db8:1:6::54")
    host.allowed("2001:db8:1:7::/64")
    host.allowed("2001:db8:1:6::/64", ["self", "gateways", "manager"])


def test_the_configured_manager_inside_the_prefix_refuses_it(host):
    host.ossec_conf("<server><address>2001:db8:1:8::40</address></server>")
    conf = os.path.join(host.prefix, "etc", "ossec.conf")
    host.refused("2001:db8:1:8::/64", "manager", "2001:db8:1:8::40",
                 "<address> in %s" % conf)
    host.allowed("2001:db8:1:9::/64")


def test_the_manager_the_agent_daemon_is_connected_to_inside_the_prefix(host):
    """Known by a name that no file resolves: the agent daemon's
    connections are asked, filtered by the prefix in the kernel."""
    host.ossec_conf("<server-hostname>manager.invalid</server-hostname>")
    agent = subprocess.Popen(host.netns.prefix() + [sys.executable, "-c", AGENT,
                                                    "2001:db8:1:9::40"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             universal_newlines=True)
    try:
        assert agent.stdout.readline() == "ready\n"
        host.refused("2001:db8:1:9::/64", "manager", "2001:db8:1:9::40",
                     "the agent daemon is connected to it")
        host.refused("2001:db8:1:9::40/127", "manager", "2001:db8:1:9::40",
                     "the agent daemon is connected to it")
        host.allowed("2001:db8:1:9::42/127")
        host.allowed("2001:db8:1:a::/64")
    finally:
        agent.stdin.close()
        agent.wait(30)


# The other systems: the fake ifconfig and netstat (tests/fakebsd.py: em0
# holds 2001:db8:ffff::10 and ::11, the default route goes through
# 2001:db8:ffff::1).

SYSTEMS = sorted({system for system, *_ in PLATFORMS.values()})


class NoInstall:
    def configure(self, text):
        pass


@pytest.fixture(params=SYSTEMS)
def tool_host(request, tmp_path, monkeypatch):
    fake = FakeHost(NoInstall(), tmp_path / "sbin", request.param, [])
    system = types.SimpleNamespace(name=request.param, tools=Tools([fake.directory]))
    monkeypatch.setattr(protect, "RESOLV_CONF", str(tmp_path / "resolv.conf"))
    monkeypatch.setattr(protect, "HOSTS", str(tmp_path / "hosts"))
    os.makedirs(str(tmp_path / "ossec" / "etc"))
    fake.check = lambda target, protections=ALL: protect.check(
        parse_prefix(target) or parse(target), protections, str(tmp_path / "ossec"), system)
    fake.tmp_path = tmp_path
    return fake


def test_tools_an_own_address_inside_the_prefix(tool_host):
    finding = tool_host.check("2001:db8:ffff::/64")
    assert finding.reason == ("one of the host's own addresses (2001:db8:ffff::10) is inside "
                              "2001:db8:ffff::/64 (protect = self)")
    assert (finding.inside, finding.unavailable) == (parse("2001:db8:ffff::10"), [])
    assert tool_host.argvs() == [["ifconfig", "-a"]]
    finding = tool_host.check("2001:db8:ffff::10/127")
    assert finding.inside == parse("2001:db8:ffff::10")
    # The loopback and link-local addresses are the host's too, but lie in
    # no prefix that is blocked; an unrelated one is let through.
    finding = tool_host.check("2001:db8:fffe::/64")
    assert (finding.reason, finding.unavailable, finding.inside) == (None, [], None)
    assert tool_host.argvs() == [["ifconfig", "-a"], ["ifconfig", "-a"],
                                 ["netstat", "-rn", "-f", "inet6"]]


def test_tools_a_default_gateway_inside_the_prefix(tool_host):
    finding = tool_host.check("2001:db8:ffff::/124")
    assert finding.reason == ("the host's default gateway (2001:db8:ffff::1, default via em0) "
                              "is inside 2001:db8:ffff::/124 (protect = gateways)")
    assert finding.inside == parse("2001:db8:ffff::1")
    finding = tool_host.check("2001:db8:ffff::/124", ["self", "resolvers", "manager"])
    assert (finding.reason, finding.unavailable) == (None, [])
    # The single address: today's words.
    finding = tool_host.check("2001:db8:ffff::1")
    assert finding.reason == "the host's default gateway (default via em0) (protect = gateways)"
    assert finding.inside is None


def test_tools_a_resolver_and_the_manager_inside_the_prefix(tool_host):
    with open(str(tool_host.tmp_path / "resolv.conf"), "w") as f:
        f.write("nameserver 198.51.100.53\nnameserver 2001:db8:5::53\n")
    with open(str(tool_host.tmp_path / "ossec" / "etc" / "ossec.conf"), "w") as f:
        f.write("<ossec_config><client><server-ip>2001:db8:6::40</server-ip>"
                "<server-hostname>manager.invalid</server-hostname></client></ossec_config>")
    assert tool_host.check("2001:db8:5::/64").reason == (
        "a resolver in /etc/resolv.conf (2001:db8:5::53) is inside 2001:db8:5::/64"
        " (protect = resolvers)")
    assert tool_host.check("2001:db8:6::/64").reason == (
        "the manager this agent reports to (2001:db8:6::40, <server-ip> in %s) is inside "
        "2001:db8:6::/64 (protect = manager)" % os.path.join(
            str(tool_host.tmp_path), "ossec", "etc", "ossec.conf"))
    finding = tool_host.check("2001:db8:7::/64")
    assert (finding.reason, finding.unavailable, finding.inside) == (None, [], None)


def test_tools_a_failing_ifconfig_is_unavailable_for_a_prefix_too(tool_host):
    tool_host.fail("ifconfig", "-a", 1, "ifconfig: socket: Protocol not supported")
    # The host's own addresses cannot be read; its gateway, inside too, is.
    finding = tool_host.check("2001:db8:ffff::/64")
    assert finding.reason == ("the host's default gateway (2001:db8:ffff::1, default via em0) "
                              "is inside 2001:db8:ffff::/64 (protect = gateways)")
    assert finding.unavailable == [("self", "`%s/ifconfig -a` exited 1: ifconfig: socket: "
                                    "Protocol not supported" % tool_host.directory)]
    finding = tool_host.check("2001:db8:ffff::10/127")
    assert finding.reason is None and len(finding.unavailable) == 1


@pytest.mark.parametrize("text,expected", [
    ("2001:db8:1:2::/64", {"2001:db8:1:2::", "2001:db8:1:2:ffff:ffff:ffff:ffff"}),
    ("2001:db8:1::/61", {"2001:db8:1::1", "2001:db8:1:7::1"}),
    ("2001:db8:1:2::80/121", {"2001:db8:1:2::80", "2001:db8:1:2::ff"}),
])
def test_holds_agrees_with_ipaddress_and_refuses_ipv4(text, expected):
    import ipaddress
    block = parse_prefix(text)
    neighbours = {"2001:db8:1:1::1", "2001:db8:1:3::", "2001:db8:1:8::", "2001:db8:1:2::7f",
                  "2001:db8:1:2::100", "2001:db8:2::"}
    for address in expected | neighbours:
        packed = socket.inet_pton(socket.AF_INET6, address)
        assert block.holds(packed) == (ipaddress.ip_address(address) in ipaddress.ip_network(
            text)), address
    for address in expected:
        assert block.holds(socket.inet_pton(socket.AF_INET6, address))
    assert not block.holds(bytes((192, 0, 2, 1)))
