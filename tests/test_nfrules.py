"""nfrules: the rules of an nf_tables table read over netlink, checked
against what the real nft wrote into the real kernel (in a private network
namespace), and its failure modes through a stand-in socket."""

import json
import os
import struct
import sys

import pytest

from conftest import ROOT
from ossec_ar import nfrules

READ = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import nfrules
print(json.dumps({t: nfrules.rules(t) for t in sys.argv[2:]}))
"""


def read(netns, *tables):
    result = netns.run([sys.executable, "-I", "-c", READ, os.path.join(ROOT, "lib")]
                       + list(tables))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return {table: {chain: [tuple(rule) for rule in rules] for chain, rules in found.items()}
            for table, found in json.loads(result.stdout).items()}


def test_the_rules_nft_wrote_as_nft_debug_shows_them(nft_netns):
    nft_netns.check(["nft", "add table inet t; add set inet t v4 { type ipv4_addr; }; "
                            "add set inet t v6 { type ipv6_addr; }; "
                            "add chain inet t c { type filter hook input priority -10; }; "
                            "add rule inet t c ip saddr @v4 drop; "
                            "add rule inet t c ip6 saddr @v6 counter accept; "
                            "add rule inet t c ip saddr != @v4 tcp dport 22 return; "
                            "add chain inet t empty; "
                            "add table ip t; add chain ip t c; add rule ip t c ip daddr 1.2.3.4 drop"])
    found = read(nft_netns, "t", "absent")
    assert found["absent"] == {}
    # What `nft --debug=netlink` prints for the same rules, registers left out.
    assert found["t"] == {"c": [
        ("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup v4", "verdict drop"),
        ("meta nfproto", "cmp eq 0a", "payload network 8 16", "lookup v6", "counter",
         "verdict accept"),
        ("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup !v4",
         "meta l4proto", "cmp eq 06", "payload transport 2 2", "cmp eq 0016", "verdict return"),
    ]}                                       # the ip family's table t is not inet's


def test_a_dump_larger_than_one_datagram_is_read_whole(nft_netns, tmp_path):
    script = ["add table inet t", "add chain inet t c"]
    script += ["add rule inet t c ip saddr 10.0.%d.%d drop" % (n // 256, n % 256)
               for n in range(3000)]
    (tmp_path / "rules.nft").write_text("\n".join(script) + "\n")
    nft_netns.check(["nft", "-f", str(tmp_path / "rules.nft")])
    rules = read(nft_netns, "t")["t"]["c"]
    assert len(rules) == 3000
    assert rules[-1] == ("meta nfproto", "cmp eq 02", "payload network 12 4",
                         "cmp eq 0a000bb7", "verdict drop")


class Socket:
    """Stands in for the netlink socket: answers each recv with the next
    of *datagrams* (or raises it, if it is an exception)."""

    def __init__(self, datagrams):
        self.datagrams = list(datagrams)
        self.sent = []
        self.closed = False

    def settimeout(self, seconds):
        self.timeout = seconds

    def sendto(self, data, address):
        self.sent.append((data, address))

    def recv(self, size):
        answer = self.datagrams.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self):
        self.closed = True


def message(kind, body):
    return struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body


def attribute(kind, value):
    return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def rule(table, chain, *names):
    expressions = b"".join(attribute(1 | 0x8000, attribute(1, name.encode() + b"\0"))
                           for name in names)
    return message((10 << 8) | 6, b"\x01\x00\x00\x00" + attribute(1, table + b"\0")
                   + attribute(2, chain + b"\0") + attribute(4 | 0x8000, expressions))


@pytest.fixture
def answering(monkeypatch):
    def answer(*datagrams):
        sock = Socket(datagrams)
        monkeypatch.setattr(nfrules._socket, "socket", lambda *args: sock)
        return sock
    return answer


def test_the_request_is_a_dump_of_one_inet_table(answering):
    sock = answering(message(3, b"\0" * 4))
    assert nfrules.rules("ossec", timeout=2.5) == {}
    (data, address), = sock.sent
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, pid, address) == (len(data), 0xa07, 0x301, 1, 0, (0, 0))
    assert data[16:20] == b"\x01\x00\x00\x00"                 # NFPROTO_INET, version 0
    assert data[20:] == attribute(1, b"ossec\0")
    assert sock.timeout == 2.5 and sock.closed


def test_messages_over_several_datagrams_and_other_tables_ignored(answering):
    answering(rule(b"ossec", b"input", "counter") + rule(b"other", b"input", "counter"),
              rule(b"ossec", b"forward", "limit", "counter"), message(3, b"\0" * 4))
    assert nfrules.rules("ossec") == {"input": [("counter",)],
                                      "forward": [("limit", "counter")]}


WHOLE = rule(b"ossec", b"input", "counter")


@pytest.mark.parametrize("answer,reason", [
    (message(2, struct.pack("=i", -1) + b"\0" * 16), "netlink: Operation not permitted"),
    (struct.pack("=I", len(WHOLE) + 64) + WHOLE[4:], "netlink: a truncated message"),
    (OSError(11, "Resource temporarily unavailable"),
     "netlink: Resource temporarily unavailable"),          # what a timeout raises
])
def test_errors_truncation_and_timeouts_are_unreadable(answering, answer, reason):
    sock = answering(answer)
    with pytest.raises(nfrules.Unreadable) as raised:
        nfrules.rules("ossec")
    assert str(raised.value) == reason
    assert sock.closed


def test_a_socket_that_cannot_be_made_is_unreadable(monkeypatch):
    def refuse(*args):
        raise OSError(93, "Protocol not supported")
    monkeypatch.setattr(nfrules._socket, "socket", refuse)
    with pytest.raises(nfrules.Unreadable, match="^netlink: Protocol not supported$"):
        nfrules.rules("ossec")


def test_an_add_that_cannot_read_the_rules_applies_the_layout_again(nft_netns):
    """Where netlink cannot be read the add cannot tell, so it applies the
    layout again (always safe) rather than trust it."""
    code = """
import sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import address, commands, config, nfrules
from ossec_ar.backends import load
def refuse(*args, **kwargs):
    raise nfrules.Unreadable("netlink: refused for the test")
nfrules.rules = refuse
backend = load("nftables", config.Settings(), commands.Tools(), "Linux")
print(backend.add(address.parse(sys.argv[2]))[1])
"""
    def add(ip):
        result = nft_netns.run([sys.executable, "-I", "-c", code, os.path.join(ROOT, "lib"), ip])
        assert (result.returncode, result.stderr) == (0, "")
        return result.stdout.strip()

    def handles():
        listing = nft_netns.check(["nft", "-a", "list", "chain", "inet", "ossec", "input"])
        return [line.split("# handle ")[1] for line in listing.splitlines()
                if line.strip().endswith(tuple("0123456789")) and " drop " in line]

    assert add("192.0.2.1") == "nftables table inet ossec, set v4 (chains created)"
    first = handles()
    assert add("192.0.2.2") == "nftables table inet ossec, set v4"
    second = handles()
    assert len(first) == len(second) == 2           # never duplicated...
    assert set(first).isdisjoint(second)            # ...but refilled: new rules
