"""IPv6 prefix blocks (``ipv6_prefix``): the configuration, the ledger's
version 2 record, reference counting by the ledger, the allowlist over the
whole prefix, switching the setting with blocks in force, and concurrent
runs, against real nftables in a private namespace.  Packets and the other
backends: test_prefix_packets.py and the backends' own test files."""

import json
import os
import random
import sys

import pytest

from ossec_ar import address as addresses
from ossec_ar import config, exits, ledger

PATH = "/var/ossec/etc/ossec-ar.conf"


# The configuration.

@pytest.mark.parametrize("section", ["firewall-drop", "host-deny"])
@pytest.mark.parametrize("value", ["0", "129", "64.5", "abc", "47", "-64", "", "६४"])
def test_a_bad_ipv6_prefix_is_78_naming_the_line(fs, section, value):
    # Bytes: the suite runs in the C locale too, where text would be ASCII.
    fs.create_file(PATH, contents=("# bans\n[%s]\nipv6_prefix = %s\n" % (
        section, value)).encode())
    os.chmod(PATH, 0o640)
    with pytest.raises(exits.Stop) as info:
        config.load(PATH)
    assert info.value.code == exits.CONFIG == 78
    assert info.value.reason == (
        "configuration %s line 3: ipv6_prefix: %r is not an IPv6 prefix length from 48"
        " to 128 (128: the address alone)" % (PATH, value))


@pytest.mark.parametrize("value", [48, 56, 64, 127, 128])
def test_a_good_ipv6_prefix_is_read_per_program(fs, value):
    fs.create_file(PATH, contents="[host-deny]\nipv6_prefix = %d\n" % value)
    os.chmod(PATH, 0o640)
    settings = config.load(PATH)
    assert (settings.ipv6_prefix, settings.host_deny_ipv6_prefix) == (128, value)


# Prefixes.

def test_prefix_of_never_widens_ipv4_nor_128():
    v4 = addresses.parse("192.0.2.7")
    v6 = addresses.parse("2001:db8:1:2:aaaa::7")
    assert addresses.prefix_of(v4, 64) is v4
    assert addresses.prefix_of(v6, 128) is v6
    assert addresses.prefix_of(v6, 64).text == "2001:db8:1:2::/64"
    assert addresses.prefix_of(v6, 56).text == "2001:db8:1::/56"
    assert addresses.prefix_of(v6, 63).text == "2001:db8:1:2::/63"
    assert addresses.prefix_of(addresses.parse("2001:db8:1:3::1"), 63).text == \
        "2001:db8:1:2::/63"


def test_prefixes_agree_with_ipaddress():
    import ipaddress
    rng = random.Random(22)
    for _ in range(3000):
        packed = bytes(rng.getrandbits(8) for _ in range(16))
        packed = b"\x20" + packed[1:]               # global unicast, never refused
        length = rng.randint(48, 127)
        prefix = addresses.Prefix(packed, length)
        expected = ipaddress.ip_network((ipaddress.ip_address(packed), length), strict=False)
        assert prefix.text == str(expected)
        assert addresses.parse_prefix(prefix.text) == prefix
        inside = expected.network_address + rng.randrange(expected.num_addresses)
        assert addresses.parse(str(inside)) in prefix
        outside = expected.broadcast_address + 1
        assert addresses.parse(str(outside)) not in prefix


@pytest.mark.parametrize("text", ["2001:db8:1:2::7/64", "2001:db8:1:2::/128",
                                  "2001:db8:1:2::/0", "2001:db8::/x", "192.0.2.0/24",
                                  "2001:db8::", "2001:db8::/064", "2001:db8::/+64"])
def test_parse_prefix_reads_only_a_network_below_128(text):
    assert addresses.parse_prefix(text) is None


# The ledger.

def test_a_prefix_record_is_version_2_and_reads_back(tmp_path):
    path = tmp_path / "l"
    entry = ledger.Record(1796534628.5, "add", "firewall-drop", "2001:db8:1:2::7",
                          "nftables", "5712", "1.2", "2001:db8:1:2::/64")
    plain = ledger.Record(1796534628.5, "add", "firewall-drop", "2001:db8::9", "nftables")
    assert entry.line().startswith("2 1796534628.500 add firewall-drop 2001:db8:1:2::7"
                                   " nftables 5712 1.2 2001:db8:1:2::/64 ")
    assert plain.line().startswith("1 ")
    path.write_text(entry.line() + plain.line())
    records, skipped = ledger.read(str(path))
    assert skipped == []
    assert [(r.address, r.prefix) for r in records] == [
        ("2001:db8:1:2::7", "2001:db8:1:2::/64"), ("2001:db8::9", "-")]


@pytest.mark.parametrize("line", [
    "2 1.000 add firewall-drop 2001:db8::7 nftables - - -",         # version 2 without one
    "1 1.000 add firewall-drop 2001:db8::7 nftables - - 2001:db8::/64",
    "2 1.000 add firewall-drop 2001:db8::7 nftables - -",
    "3 1.000 add firewall-drop 2001:db8::7 nftables - - 2001:db8::/64"])
def test_a_record_of_the_wrong_shape_is_skipped(line):
    import binascii
    data = ("%s %08x\n" % (line, binascii.crc32(line.encode()))).encode()
    records, skipped = ledger.parse(data)
    assert records == [] and skipped == [(1, "not a version 1 or 2 record")]


def _record(prefix, op, address, network="-", backend="nftables"):
    assert ledger.record(prefix, "firewall-drop", op, addresses.parse(address), backend,
                         network=network) is None


def test_prefix_holders_follow_adds_and_deletes(tmp_path):
    prefix = str(tmp_path)
    net = "2001:db8:1:2::/64"
    _record(prefix, "add", "2001:db8:1:2::7", net)
    _record(prefix, "add", "2001:db8:1:2::8", net)
    _record(prefix, "add", "2001:db8:1:2::9", net, backend="ipset")
    _record(prefix, "found", "2001:db8:1:2::a", net)
    _record(prefix, "add", "2001:db8:1:2::b")                       # the address alone
    _record(prefix, "add", "2001:db8:1:3::1", "2001:db8:1:3::/64")
    holders = ledger.prefix_holders(prefix, "firewall-drop", net, "nftables")
    assert holders == ["2001:db8:1:2::7", "2001:db8:1:2::8"]
    _record(prefix, "delete", "2001:db8:1:2::7")
    assert ledger.prefix_holders(prefix, "firewall-drop", net, "nftables") == \
        ["2001:db8:1:2::8"]
    _record(prefix, "add", "2001:db8:1:2::7", net)                  # again, after its delete
    _record(prefix, "delete", "2001:db8:1:2::8")
    assert ledger.prefix_holders(prefix, "firewall-drop", net, "nftables") == \
        ["2001:db8:1:2::7"]
    assert ledger.prefix_holders(prefix, "firewall-drop", net, "ipset") == \
        ["2001:db8:1:2::9"]


def test_compaction_keeps_each_prefix_an_address_holds(tmp_path):
    prefix = str(tmp_path)
    _record(prefix, "add", "2001:db8:1:2::7")
    _record(prefix, "add", "2001:db8:1:2::7", "2001:db8:1:2::/64")
    _record(prefix, "add", "2001:db8:1:2::7", "2001:db8:1::/56")
    _record(prefix, "add", "2001:db8:1:2::7", "2001:db8:1::/56")
    path = ledger.ledger_path(prefix, "firewall-drop")
    ledger.compact(path)
    records, _ = ledger.read(path)
    assert [r.prefix for r in records] == ["-", "2001:db8:1:2::/64", "2001:db8:1::/56"]


# Through the executables, with real nftables in a private namespace.

@pytest.fixture
def ns(nft_netns, install):
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n")
    return nft_netns


def run(ns, install, action, address, name="firewall-drop.sh"):
    result = ns.run([install.program(name), action, "-", address, "5712", "1.2"])
    assert (result.stdout, result.stderr) == ("", "")
    return result.returncode, install.log_lines()[-1].split(": ", 1)[1]


def elements(ns, name):
    """The elements of our set *name*, or None if it does not exist."""
    result = ns.run(["nft", "-j", "list", "set", "inet", "ossec", name])
    if result.returncode:
        return None
    found = []
    for item in json.loads(result.stdout)["nftables"]:
        found += item.get("set", {}).get("elem", [])
    return sorted(found)


def in_force(install):
    records, _ = ledger.read(ledger.ledger_path(install.prefix, "firewall-drop"))
    return {address: entry.prefix for address, entry in ledger.in_force(records).items()}


def test_reference_counting_and_its_words(ns, install):
    assert run(ns, install, "add", "2001:db8:1:2::7") == (
        0, "add 2001:db8:1:2::7: blocked: 2001:db8:1:2::/64 in nftables table inet ossec,"
           " set v6p64 (repaired: created table inet ossec) (exit 0)")
    assert run(ns, install, "add", "2001:db8:1:2::8") == (
        0, "add 2001:db8:1:2::8: already blocked: by 2001:db8:1:2::/64 in nftables table"
           " inet ossec, set v6p64 (exit 0)")
    assert run(ns, install, "add", "2001:db8:1:2::9")[0] == 0
    assert run(ns, install, "add", "192.0.2.7") == (
        0, "add 192.0.2.7: blocked: nftables table inet ossec, set v4 (exit 0)")
    assert elements(ns, "v6p64") == ["2001:db8:1:2::"]
    assert elements(ns, "v6") == []
    assert elements(ns, "v4") == ["192.0.2.7"]
    assert run(ns, install, "delete", "2001:db8:1:2::7") == (
        0, "delete 2001:db8:1:2::7: unblocked: 2001:db8:1:2::7; prefix 2001:db8:1:2::/64"
           " kept for 2 others (nftables) (exit 0)")
    assert run(ns, install, "delete", "2001:db8:1:2::8") == (
        0, "delete 2001:db8:1:2::8: unblocked: 2001:db8:1:2::8; prefix 2001:db8:1:2::/64"
           " kept for 1 other (nftables) (exit 0)")
    assert elements(ns, "v6p64") == ["2001:db8:1:2::"]
    assert run(ns, install, "delete", "2001:db8:1:2::9") == (
        0, "delete 2001:db8:1:2::9: unblocked: 2001:db8:1:2::/64 from nftables table inet"
           " ossec, set v6p64 (exit 0)")
    assert elements(ns, "v6p64") == []
    assert run(ns, install, "delete", "2001:db8:1:2::9") == (
        0, "delete 2001:db8:1:2::9: was not blocked: no block of ours in the ledger (exit 0)")
    assert in_force(install) == {"192.0.2.7": "-"}


def test_the_first_prefix_of_a_length_says_it_made_its_set(ns, install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    run(ns, install, "add", "2001:db8:1:2::7")
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n")
    assert run(ns, install, "add", "2001:db8:1:3::7")[1] == (
        "add 2001:db8:1:3::7: blocked: 2001:db8:1:3::/64 in nftables table inet ossec, set"
        " v6p64 (repaired: created set v6p64) (exit 0)")
    assert run(ns, install, "add", "2001:db8:1:4::7")[1] == (
        "add 2001:db8:1:4::7: blocked: 2001:db8:1:4::/64 in nftables table inet ossec, set"
        " v6p64 (exit 0)")
    # A chain broken meanwhile is named beside the set made.
    ns.check(["nft", "flush chain inet ossec forward"])
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 56\n")
    assert run(ns, install, "add", "2001:db8:1:5::7")[1] == (
        "add 2001:db8:1:5::7: blocked: 2001:db8:1::/56 in nftables table inet ossec, set"
        " v6p56 (repaired: chain forward empty, created set v6p56) (exit 0)")


def test_someone_elses_prefix_element_is_found_and_left(ns, install):
    run(ns, install, "add", "2001:db8:1:3::1")          # our layout, with its prefix set
    ns.check(["nft", "add element inet ossec v6p64 { 2001:db8:1:2:: }"])
    assert run(ns, install, "add", "2001:db8:1:2::7") == (
        0, "add 2001:db8:1:2::7: already blocked: by 2001:db8:1:2::/64 in nftables table"
           " inet ossec, set v6p64; not ours: its delete will leave it (exit 0)")
    assert run(ns, install, "delete", "2001:db8:1:2::7")[1].startswith(
        "delete 2001:db8:1:2::7: not ours, left: nftables: blocked by someone else")
    assert elements(ns, "v6p64") == ["2001:db8:1:2::", "2001:db8:1:3::"]


def test_an_allowlisted_address_inside_the_prefix_leaves_the_address_alone(ns, install):
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"
                      "[allowlist]\naddresses = 2001:db8:1:2::99\n")
    assert run(ns, install, "add", "2001:db8:1:2::7") == (
        0, "add 2001:db8:1:2::7: blocked: nftables table inet ossec, set v6 (repaired: created"
           " table inet ossec); 2001:db8:1:2::/64 not blocked whole: 2001:db8:1:2::/64 holds"
           " addresses on the allowlist (2001:db8:1:2::99); the address alone is (exit 0)")
    assert elements(ns, "v6") == ["2001:db8:1:2::7"]
    assert elements(ns, "v6p64") is None            # never made: no prefix was blocked
    assert run(ns, install, "add", "2001:db8:1:2::99") == (
        65, "add 2001:db8:1:2::99: refused: 2001:db8:1:2::99 is on the allowlist"
            " (2001:db8:1:2::99) (exit 65)")
    assert run(ns, install, "delete", "2001:db8:1:2::7")[1] == (
        "delete 2001:db8:1:2::7: unblocked: nftables table inet ossec, set v6 (exit 0)")
    assert in_force(install) == {}


def test_an_allowlisted_network_overlapping_the_prefix_refuses_it_whole(ns, install):
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"
                      "[allowlist]\naddresses = 2001:db8:1::/48\n")
    assert run(ns, install, "add", "2001:db8:1:2::7") == (
        65, "add 2001:db8:1:2::7: refused: 2001:db8:1:2::7 is on the allowlist"
            " (2001:db8:1::/48) (exit 65)")
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"
                      "[allowlist]\naddresses = 192.0.2.0/24, 2001:db8:1:3::/64\n")
    assert run(ns, install, "add", "2001:db8:1:2::7")[1].startswith(
        "add 2001:db8:1:2::7: blocked: 2001:db8:1:2::/64 in ")


def test_switching_the_setting_with_blocks_in_force_strands_nothing(ns, install):
    plain = "[firewall-drop]\nbackend = nftables\n"
    install.configure(plain)
    assert run(ns, install, "add", "2001:db8:1:2::7")[0] == 0           # a /128
    install.configure(plain + "ipv6_prefix = 64\n")
    assert run(ns, install, "add", "2001:db8:1:2::7")[1].startswith(
        "add 2001:db8:1:2::7: blocked: 2001:db8:1:2::/64 in ")
    assert run(ns, install, "add", "2001:db8:1:2::8")[0] == 0
    install.configure(plain + "ipv6_prefix = 56\n")
    assert run(ns, install, "add", "2001:db8:1:2::9")[1].startswith(
        "add 2001:db8:1:2::9: blocked: 2001:db8:1::/56 in nftables table inet ossec, set v6p56")
    install.configure(plain)
    assert run(ns, install, "add", "2001:db8:1:2::8")[1].startswith(
        "add 2001:db8:1:2::8: blocked: nftables table inet ossec, set v6 ")
    assert (elements(ns, "v6"), elements(ns, "v6p64"), elements(ns, "v6p56")) == (
        ["2001:db8:1:2::7", "2001:db8:1:2::8"], ["2001:db8:1:2::"], ["2001:db8:1::"])
    # With the setting back at 128, every delete still lifts what its add made.
    assert run(ns, install, "delete", "2001:db8:1:2::7")[1] == (
        "delete 2001:db8:1:2::7: unblocked: nftables table inet ossec, set v6; prefix"
        " 2001:db8:1:2::/64 kept for 1 other (nftables) (exit 0)")
    assert run(ns, install, "delete", "2001:db8:1:2::8")[1] == (
        "delete 2001:db8:1:2::8: unblocked: nftables table inet ossec, set v6;"
        " 2001:db8:1:2::/64 from nftables table inet ossec, set v6p64 (exit 0)")
    assert run(ns, install, "delete", "2001:db8:1:2::9")[1] == (
        "delete 2001:db8:1:2::9: unblocked: 2001:db8:1::/56 from nftables table inet ossec,"
        " set v6p56 (exit 0)")
    assert (elements(ns, "v6"), elements(ns, "v6p64"), elements(ns, "v6p56")) == ([], [], [])
    assert in_force(install) == {}


def test_the_default_layout_is_unchanged_and_a_prefix_set_outlives_its_setting(ns, install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    run(ns, install, "add", "2001:db8:1:2::7")
    chain = ns.check(["nft", "list", "chain", "inet", "ossec", "input"])
    assert "v6p" not in chain and elements(ns, "v6p64") is None
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n")
    run(ns, install, "add", "2001:db8:1:3::7")
    # A chain flushed by hand is refilled with the prefix set's rule too, by
    # an add at 128 (its check of the layout reads the prefix set).
    ns.check(["nft", "flush chain inet ossec input"])
    install.configure("[firewall-drop]\nbackend = nftables\n")
    assert run(ns, install, "add", "2001:db8:1:4::7")[1] == (
        "add 2001:db8:1:4::7: blocked: nftables table inet ossec, set v6 (repaired: chain"
        " input empty) (exit 0)")
    chain = ns.check(["nft", "list", "chain", "inet", "ossec", "input"])
    assert "ip6 saddr & ffff:ffff:ffff:ffff:: == @v6p64 drop" in chain
    # A mask changed by hand is a rule that is not ours: rewritten.
    ns.check(["nft", "flush chain inet ossec forward; add rule inet ossec forward ip saddr"
              " @v4 drop; add rule inet ossec forward ip6 saddr @v6 drop; add rule inet"
              " ossec forward ip6 saddr & ffff:ffff:: == @v6p64 drop"])
    status = ns.check([os.path.join(install.prefix, "bin", "ossec-ar"), "status"])
    assert "broken: chain forward held other rules" in status
    assert "repaired: chain forward held other rules" in run(ns, install, "add",
                                                              "2001:db8:1:5::7")[1]


CONCURRENT = """
import json, random, subprocess, sys
program, seed = sys.argv[1], int(sys.argv[2])
jobs = json.loads(sys.argv[3])
random.Random(seed).shuffle(jobs)
procs = [subprocess.Popen([program, action, "-", ip, "5712", "1.%d" % n],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
         for n, (action, ip) in enumerate(jobs)]
print(json.dumps([[p.wait()] + [s.decode() for s in p.communicate()] for p in procs]))
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_adds_and_deletes_leave_exactly_the_prefixes_in_force(ns, install, seed):
    """50 addresses in 5 prefixes: all added at once; then, at once and in
    random order, deletes of half of them and adds again of some."""
    rng = random.Random(seed)
    groups = {"2001:db8:%x::/64" % g: ["2001:db8:%x::%x" % (g, n) for n in range(1, 11)]
              for g in range(1, 6)}
    every = [ip for ips in groups.values() for ip in ips]
    first = [["add", ip] for ip in every]
    results = json.loads(ns.check([sys.executable, "-c", CONCURRENT, install.program(),
                                   str(seed), json.dumps(first)]))
    assert results == [[0, "", ""]] * len(first)
    assert elements(ns, "v6p64") == sorted(net.split("/")[0] for net in groups)
    # Every address of one prefix goes; some of the others'.
    gone = list(groups["2001:db8:1::/64"]) + rng.sample(every[10:], 20)
    again = rng.sample([ip for ip in every if ip not in gone], 5)
    second = [["delete", ip] for ip in gone] + [["add", ip] for ip in again]
    results = json.loads(ns.check([sys.executable, "-c", CONCURRENT, install.program(),
                                   str(seed), json.dumps(second)]))
    assert results == [[0, "", ""]] * len(second)
    held = in_force(install)
    assert set(held) == set(every) - set(gone)
    expected = {addresses.prefix_of(addresses.parse(ip), 64).network for ip in held}
    assert set(elements(ns, "v6p64")) == expected
    assert "2001:db8:1::" not in expected
    # And every delete of the rest leaves nothing behind.
    third = [["delete", ip] for ip in held]
    json.loads(ns.check([sys.executable, "-c", CONCURRENT, install.program(), str(seed),
                         json.dumps(third)]))
    assert (in_force(install), elements(ns, "v6p64")) == ({}, [])


def test_a_protected_address_inside_the_prefix_leaves_the_address_alone(ns, install):
    """The host's own address in the /64: the /64 is not blocked, the
    /128 is, and the outcome line says why; the host's address itself is
    refused."""
    ns.check(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    ns.check(["ip", "addr", "add", "2001:db8:1:2::1/64", "dev", "d0", "nodad"])
    assert run(ns, install, "add", "2001:db8:1:2::7") == (
        0, "add 2001:db8:1:2::7: blocked: nftables table inet ossec, set v6 (repaired: created"
           " table inet ossec); 2001:db8:1:2::/64 not blocked whole: one of the host's own"
           " addresses (2001:db8:1:2::1) is inside 2001:db8:1:2::/64 (protect = self); the"
           " address alone is (exit 0)")
    assert (elements(ns, "v6"), elements(ns, "v6p64")) == (["2001:db8:1:2::7"], None)
    assert run(ns, install, "add", "2001:db8:1:2::1") == (
        65, "add 2001:db8:1:2::1: refused: one of the host's own addresses (protect = self)"
            " (exit 65)")
    assert run(ns, install, "add", "2001:db8:1:3::7")[1].startswith(
        "add 2001:db8:1:3::7: blocked: 2001:db8:1:3::/64 in ")
    assert in_force(install) == {"2001:db8:1:2::7": "-", "2001:db8:1:3::7": "2001:db8:1:3::/64"}
