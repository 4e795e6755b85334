"""The protections (issue 20) on FreeBSD, OpenBSD, NetBSD, macOS, Solaris
and AIX: an add of one of the host's own addresses or of a default
gateway is refused (65) before any firewall tool runs, from what the fake
``ifconfig -a`` and ``netstat -rn`` (tests/fakes/) say of the host; a
delete is never refused and never asks them; a protection whose tool is
missing, fails or prints nonsense is no protection and no failure.

The fake host (tests/fakebsd.py) has 198.51.100.10 and .11 and
2001:db8:ffff::10 and ::11 on em0, and default routes through
198.51.100.1 and 2001:db8:ffff::1 on em0.
"""

import os
import random
import subprocess

import pytest

from fakebsd import GATEWAYS, OWN, FakeHost
from ossec_ar import toolhost
from ossec_ar.address import host as address_of
from test_hostdeny import etc                # noqa: F401 (a fixture)
from test_platforms import PLATFORMS, V4, V6, copies, make_host

OTHER = {4: V4, 6: V6}
PROTECT_CALLS = {4: [["ifconfig", "-a"], ["netstat", "-rn", "-f", "inet"]],
                 6: [["ifconfig", "-a"], ["netstat", "-rn", "-f", "inet6"]]}
SELF = "one of the host's own addresses (protect = self)"
GATEWAY = "the host's default gateway (default via em0) (protect = gateways)"


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    return request.param


@pytest.fixture
def host(install, tmp_path, platform):
    return make_host(install, tmp_path, platform)


def version_of(address):
    return 6 if ":" in address else 4


def detail(platform, address):
    """What the outcome line names for a block of *address* (route's
    names the address)."""
    version = version_of(address)
    return PLATFORMS[platform][2 if version == 4 else 3].replace(OTHER[version], address)


def protection_calls(host):
    return [argv for argv in host.argvs() if argv[0] in ("ifconfig", "netstat")]


# Refused

@pytest.mark.parametrize("address", OWN)     # primary and secondary, both families
def test_an_own_address_is_refused_and_its_delete_still_runs(host, platform, address):
    before = host.state()
    assert host.run("add", "-", address, "1.1", "5712") == 65
    assert host.outcome() == "add %s: refused: %s (exit 65)" % (address, SELF)
    assert host.state() == before                   # no firewall tool ran
    assert host.argvs() == [["ifconfig", "-a"]]     # refused: the gateways are not asked
    assert host.run("delete", "-", address, "1.1", "5712") == 0
    assert host.outcome().startswith("delete %s: was not blocked: " % address)
    assert protection_calls(host) == []


@pytest.mark.parametrize("version", [4, 6])
def test_the_default_gateway_is_refused_and_its_delete_still_runs(host, platform, version):
    gateway = GATEWAYS[version]
    before = host.state()
    assert host.run("add", "-", gateway, "1.1", "5712") == 65
    assert host.outcome() == "add %s: refused: %s (exit 65)" % (gateway, GATEWAY)
    assert host.state() == before
    assert host.argvs() == PROTECT_CALLS[version]
    assert host.run("delete", "-", gateway, "1.1", "5712") == 0
    assert host.outcome().startswith("delete %s: was not blocked: " % gateway)
    assert protection_calls(host) == []


def test_a_solaris_default_route_bound_to_no_interface_is_a_gateway_all_the_same(
        install, tmp_path):
    """Solaris 10 leaves netstat's Interface column blank for it."""
    host = make_host(install, tmp_path, "solaris-ipfilter")
    state = host.state()
    state["route"]["routes"][0]["iface"] = ""
    host.save(state)
    assert host.run("add", "-", GATEWAYS[4], "1.1", "5712") == 65
    assert host.outcome() == ("add 198.51.100.1: refused: the host's default gateway"
                              " (protect = gateways) (exit 65)")
    assert host.state()["ipf"]["rules4"] == []


# Let through

@pytest.mark.parametrize("version", [4, 6])
def test_an_unrelated_address_is_blocked_after_both_questions(host, platform, version):
    address = OTHER[version]
    assert host.run("add", "-", address, "1.1", "5712") == 0
    text = host.outcome()
    assert text.startswith("add %s: blocked: %s" % (address, detail(platform, address)))
    assert text.endswith(" (exit 0)") and "unavailable" not in text
    assert copies(host, platform, address) == 1
    assert host.argvs()[:2] == PROTECT_CALLS[version]
    assert protection_calls(host) == []     # one of each, before the firewall's tools


@pytest.mark.parametrize("version", [4, 6])
def test_protect_none_lets_the_gateway_be_blocked_and_any_delete_lifts_it(
        install, tmp_path, platform, version):
    host = make_host(install, tmp_path, platform, "[allowlist]\nprotect = none\n")
    gateway = GATEWAYS[version]
    assert host.run("add", "-", gateway, "1.1", "5712") == 0
    assert host.outcome().startswith("add %s: blocked: %s" % (gateway,
                                                              detail(platform, gateway)))
    assert copies(host, platform, gateway) == 1
    assert protection_calls(host) == []
    host.configure()                        # the protections again: a delete still lifts it
    assert host.run("delete", "-", gateway, "1.1", "5712") == 0
    assert host.outcome().startswith("delete %s: unblocked: " % gateway)
    assert copies(host, platform, gateway) == 0


# Unavailable: the add goes on, and says why

@pytest.mark.parametrize("version", [4, 6])
def test_without_ifconfig_the_add_goes_on_and_says_so(host, platform, version):
    os.unlink(os.path.join(host.directory, "ifconfig"))
    address = OTHER[version]
    assert host.run("add", "-", address, "1.1", "5712") == 0
    text = host.outcome()
    assert text.startswith("add %s: blocked: %s" % (address, detail(platform, address)))
    assert text.endswith("; protection 'self' unavailable: ifconfig not found (exit 0)")
    assert copies(host, platform, address) == 1


@pytest.mark.parametrize("version", [4, 6])
def test_a_failing_ifconfig_and_netstat_leave_the_add_to_go_on(host, platform, version):
    host.fail("ifconfig", "-a", 1, "ifconfig: socket: Protocol not supported")
    host.fail("netstat", "-rn", 2, "netstat: kvm_openfiles: /dev/mem: Permission denied")
    address = OTHER[version]
    assert host.run("add", "-", address, "1.1", "5712") == 0
    text = host.outcome()
    family = "inet" if version == 4 else "inet6"
    assert text.startswith("add %s: blocked: %s" % (address, detail(platform, address)))
    assert text.endswith(
        "; protection 'self' unavailable: `{0}/ifconfig -a` exited 1: ifconfig: socket:"
        " Protocol not supported; protection 'gateways' unavailable: `{0}/netstat -rn -f {1}`"
        " exited 2: netstat: kvm_openfiles: /dev/mem: Permission denied (exit 0)".format(
            host.directory, family))
    assert copies(host, platform, address) == 1


def test_an_own_address_is_blocked_when_ifconfig_cannot_say(install, tmp_path):
    """No source, no protection: what the outcome line says."""
    host = make_host(install, tmp_path, "netbsd-npf")
    host.fail("ifconfig", "-a", 1, "ifconfig: getifaddrs: Cannot allocate memory")
    assert host.run("add", "-", "198.51.100.11", "1.1", "5712") == 0
    assert host.outcome() == (
        "add 198.51.100.11: blocked: npf table <ossec_blacklist>; protection 'self'"
        " unavailable: `%s/ifconfig -a` exited 1: ifconfig: getifaddrs: Cannot allocate"
        " memory (exit 0)" % host.directory)
    assert copies(host, "netbsd-npf", "198.51.100.11") == 1


# Nonsense from either tool, exit 0: nothing found, nothing refused, no traceback.
GARBAGE = "\n".join([
    "inet", "inet6", "inet inet6 inet", "inet6 % inet6 / inet6 %/ inet6 fe80::1%/x/y",
    "inet 999.1.2.3 inet 1.2.3 inet 01.2.3.4 inet 1.2.3.4.5 inet6 ::::: inet6 1::2::3",
    "inet6 ::ffff:/96 inet 0.0.0.0 inet6 :: inet6 ::/0 inet 192.0.2.70/99",
    "Destination", "Destination If", "default", "default default default",
    "default 0x1 UG em0", "default link#1 UCS em0", "0.0.0.0 - U", ":: ", "::/0 --",
    "Destination Gateway Flags If Exp\ndefault 192.0.2.300 UG em0",
    "\x1b[31mdefault\x1b[0m 192.0.2.71 UG", "\x00inet\x00 192.0.2.72", "\ufffd" * 50,
    "inet " + "9" * 5000, "x" * 20000])


@pytest.mark.parametrize("version", [4, 6])
def test_nonsense_from_ifconfig_and_netstat_finds_nothing(host, platform, version):
    host.fail("ifconfig", "-a", 0, GARBAGE)
    host.fail("netstat", "-rn", 0, GARBAGE)
    address = OTHER[version]
    assert host.run("add", "-", address, "1.1", "5712") == 0       # run() checks: no output
    text = host.outcome()
    assert text.startswith("add %s: blocked: %s" % (address, detail(platform, address)))
    assert "unavailable" not in text
    assert copies(host, platform, address) == 1


# The parsers, on what each system prints

FREEBSD_IFCONFIG = """\
em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=4e524bb<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU,VLAN_HWCSUM,LRO>
\tether 52:54:00:12:34:56
\tinet 198.51.100.10 netmask 0xffffff00 broadcast 198.51.100.255
\tinet 198.51.100.11 netmask 0xffffffff broadcast 198.51.100.11 vhid 1
\tinet6 fe80::5054:ff:fe12:3456%em0 prefixlen 64 scopeid 0x1
\tinet6 2001:db8:ffff::10 prefixlen 64 autoconf pltime 604618 vltime 2591818
gif0: flags=1008051<UP,POINTOPOINT,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 1280
\ttunnel inet 198.51.100.10 --> 203.0.113.9
\tinet 10.0.0.1 --> 10.0.0.2 netmask 0xffffffff
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
"""

SOLARIS_IFCONFIG = """\
lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1
\tinet 127.0.0.1 netmask ff000000 
e1000g0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 198.51.100.10 netmask ffffff00 broadcast 198.51.100.255
\tether 0:c:29:12:34:56 
e1000g0:1: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 0.0.0.0 netmask 0 
ip.tun0: flags=10008d1<UP,POINTOPOINT,RUNNING,NOARP,MULTICAST,IPv4> mtu 1480 index 3
\tinet tunnel src 198.51.100.10 tunnel dst 203.0.113.9
\tinet 10.0.0.1 --> 10.0.0.2 netmask ff000000 
lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1
\tinet6 ::1/128 
e1000g0: flags=2000841<UP,RUNNING,MULTICAST,IPv6> mtu 1500 index 2
\tinet6 fe80::20c:29ff:fe12:3456/10 
e1000g0:1: flags=2080841<UP,RUNNING,MULTICAST,ADDRCONF,IPv6> mtu 1500 index 2
\tinet6 2001:db8:ffff::10/64 
e1000g0:2: flags=2080840<RUNNING,MULTICAST,ADDRCONF,IPv6> mtu 1500 index 2
\tinet6 ::/0 
"""

AIX_IFCONFIG = """\
en0: flags=1e084863,480<UP,BROADCAST,NOTRAILERS,RUNNING,SIMPLEX,MULTICAST,GROUPRT,64BIT,\
CHECKSUM_OFFLOAD(ACTIVE),CHAIN>
\tinet 198.51.100.10 netmask 0xffffff00 broadcast 198.51.100.255
\tinet6 2001:db8:ffff::10/64
\t tcp_sendspace 262144 tcp_recvspace 262144 rfc1323 1
lo0: flags=e08084b,c0<UP,BROADCAST,LOOPBACK,RUNNING,SIMPLEX,MULTICAST,GROUPRT,64BIT,LARGESEND,\
CHAIN>
\tinet 127.0.0.1 netmask 0xff000000 broadcast 127.255.255.255
\tinet6 ::1%1/0
\t tcp_sendspace 131072 tcp_recvspace 131072 rfc1323 1
"""


@pytest.mark.parametrize("text,expected", [
    (FREEBSD_IFCONFIG, ["127.0.0.1", "10.0.0.1", "198.51.100.10", "198.51.100.11", "::1",
                        "2001:db8:ffff::10", "fe80::5054:ff:fe12:3456"]),
    (SOLARIS_IFCONFIG, ["127.0.0.1", "10.0.0.1", "198.51.100.10", "::1", "2001:db8:ffff::10",
                        "fe80::20c:29ff:fe12:3456"]),
    (AIX_IFCONFIG, ["127.0.0.1", "198.51.100.10", "::1", "2001:db8:ffff::10"]),
], ids=["freebsd", "solaris", "aix"])
def test_own_addresses_of_real_ifconfig_output(text, expected):
    """A point-to-point peer (after -->) and a tunnel's far end are not
    the host's; an unconfigured Solaris logical interface (0.0.0.0, ::/0)
    adds nothing."""
    assert sorted(toolhost.own_addresses(text)) == sorted(address_of(a) for a in expected)


SOLARIS10_NETSTAT = """
Routing Table: IPv4
  Destination           Gateway           Flags  Ref     Use     Interface 
-------------------- -------------------- ----- ----- ---------- --------- 
default              198.51.100.1         UG        1     152449           
198.51.100.0         198.51.100.10        U         1        456 e1000g0   
127.0.0.1            127.0.0.1            UH        2        100 lo0       
"""

AIX_NETSTAT = """\
Routing tables
Destination        Gateway           Flags   Refs     Use  If   PMTU Exp  Groups

Route Tree for Protocol Family 2 (Internet):
default            198.51.100.1      UG        3    112345 en0      -     -      -   =>
default            198.51.100.2      UG        0         0 en1      -     -      -
127/8              127.0.0.1         U         9      1234 lo0      -     -      -
198.51.100.0       198.51.100.10     UHSb      0         0 en0      -     -      -   =>
198.51.100/24      198.51.100.10     U         4     23456 en0      -     -      -
"""

MACOS_NETSTAT = """\
Routing tables

Internet6:
Destination                             Gateway                                 Flags \
        Netif Expire
default                                 fe80::1%en0                             UGcg  \
          en0
default                                 fe80::%utun0                            UGcIg \
        utun0
default                                 2001:db8:ffff::1                        UGSc  \
          en0
::1                                     ::1                                     UHL   \
          lo0
"""

OPENBSD_NETSTAT = """\
Routing tables

Internet:
Destination        Gateway            Flags   Refs      Use   Mtu  Prio Iface
default            198.51.100.1       UGS        6    52361     -     8 em0
default            link#2             UCS        0        0     -    56 em1
127/8              127.0.0.1          UGRS       0        0 32768     8 lo0
"""


@pytest.mark.parametrize("text,expected", [
    (SOLARIS10_NETSTAT, [("198.51.100.1", "")]),
    (AIX_NETSTAT, [("198.51.100.1", "en0"), ("198.51.100.2", "en1")]),
    (MACOS_NETSTAT, [("fe80::1", "en0"), ("fe80::", "utun0"), ("2001:db8:ffff::1", "en0")]),
    (OPENBSD_NETSTAT, [("198.51.100.1", "em0")]),
], ids=["solaris10", "aix", "macos", "openbsd"])
def test_default_gateways_of_real_netstat_output(text, expected):
    assert toolhost.default_gateways(text) == [(address_of(a), where) for a, where in expected]


def test_the_parsers_never_raise_on_nonsense():
    words = ["inet", "inet6", "default", "Destination", "Netif", "If", "Interface", "%", "/",
             ":", "::", ".", "1", "255", "ff", "fe80", "0.0.0.0", "::/0", "link#1", "-", "=>",
             "--", " ", "  ", "\n", "\t", "\x00", "\u00e9", "\ufffd", "192.0.2.1", "2001:db8::1"]
    rng = random.Random(20)         # the same nonsense every run
    for _ in range(3000):
        text = "".join(rng.choice(words) for _ in range(rng.randrange(1, 40)))
        found = toolhost.own_addresses(text)
        gateways = toolhost.default_gateways(text)
        assert all(address.packed for address in found)
        assert all(isinstance(where, str) for _, where in gateways)
    for text in (GARBAGE, "", "\n" * 1000, "inet " * 10000, "default " * 10000):
        toolhost.own_addresses(text)
        toolhost.default_gateways(text)


# host-deny.sh: the same check, on its own file (FreeBSD's: hosts.allow)

ALLOW = b"# /etc/hosts.allow\nsshd : 192.0.2.0/24 : allow\nALL : ALL : allow\n"


def test_host_deny_on_freebsd_refuses_the_gateway_and_own_addresses(install, tmp_path, etc):
    host = FakeHost(install, tmp_path / "sbin", "FreeBSD", [])
    allow = os.path.join(etc.path, "hosts.allow")

    def allowed():
        with open(allow, "rb") as f:
            return f.read()
    with open(allow, "wb") as f:
        f.write(ALLOW)
    for address, reason in ((GATEWAYS[4], GATEWAY), ("2001:db8:ffff::11", SELF)):
        assert etc.code("add", "-", address, "1.1", "5712") == 65
        assert etc.outcome() == "add %s: refused: %s (exit 65)" % (address, reason)
        assert allowed() == ALLOW
        assert etc.code("delete", "-", address, "1.1", "5712") == 0
        assert etc.outcome().startswith("delete %s: was not blocked: " % address)
        assert allowed() == ALLOW
    assert etc.code("add", "-", V6, "1.1", "5712") == 0
    assert etc.outcome() == "add 2001:db8::7: blocked: /etc/hosts.allow (exit 0)"
    assert allowed() != ALLOW
    assert host.argvs() == PROTECT_CALLS[4] + [["ifconfig", "-a"]] + PROTECT_CALLS[6]


# ossec-ar status

def status(install):
    result = subprocess.run([os.path.join(install.prefix, "bin", "ossec-ar"), "status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("protected "))
    end = next((n for n, line in enumerate(lines) if n > start and not line.startswith(" ")),
               len(lines))
    return lines[start:end]           # the protected part alone, not the health lines


def test_status_lists_the_protected_addresses_of_an_aix_host(install, tmp_path):
    # Not the resolvers nor the manager: this machine's own would show.
    make_host(install, tmp_path, "aix", "[allowlist]\nprotect = self gateways\n")
    rows = [("127.0.0.1", "own address"), ("198.51.100.1", "gateway (default via em0)"),
            ("198.51.100.10", "own address"), ("198.51.100.11", "own address"),
            ("::1", "own address"), ("2001:db8:ffff::1", "gateway (default via em0)"),
            ("2001:db8:ffff::10", "own address"), ("2001:db8:ffff::11", "own address"),
            ("fe80::1", "own address"), ("fe80::5054:ff:fe12:3456", "own address")]
    assert status(install) == (["protected (protect = self gateways): 10 addresses"] +
                               ["  %-39s %s" % row for row in rows])


def test_status_says_which_protection_it_could_not_list(install, tmp_path):
    host = make_host(install, tmp_path, "solaris-ipfilter",
                     "[allowlist]\nprotect = self gateways\n")
    os.unlink(os.path.join(host.directory, "ifconfig"))
    assert status(install) == [
        "protected (protect = self gateways): 2 addresses",
        "  %-39s %s" % ("198.51.100.1", "gateway (default via em0)"),
        "  %-39s %s" % ("2001:db8:ffff::1", "gateway (default via em0)"),
        "  note: protection 'self' unavailable: ifconfig not found"]
