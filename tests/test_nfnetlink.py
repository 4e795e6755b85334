"""nfnetlink: chains, rules and set elements of nf_tables over netlink,
checked against what the real nft wrote into and reads from the real
kernel (in private network namespaces), and its failure modes through a
stand-in socket."""

import json
import os
import struct
import sys

import pytest

from conftest import ROOT
from ossec_ar import nfnetlink

CALL = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import nfnetlink
calls = json.loads(sys.argv[2])
print(json.dumps([getattr(nfnetlink, name)(*[bytes.fromhex(a[1:]) if a.startswith("#") else a
                                             for a in args])
                  for name, args in calls]))
"""


def call(netns, *calls):
    """nfnetlink's functions run in *netns*: (name, args) pairs, bytes
    arguments as "#hex"; their results, as JSON gives them back."""
    result = netns.run([sys.executable, "-I", "-c", CALL, os.path.join(ROOT, "lib"),
                        json.dumps(calls)])
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def read(netns, *tables):
    found = call(netns, *[("rules", [table]) for table in tables])
    return {table: {chain: [tuple(rule) for rule in rules] for chain, rules in each.items()}
            for table, each in zip(tables, found)}


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


def test_chains_as_nft_declares_them(nft_netns):
    nft_netns.check(["nft", "add table inet t; "
                            "add chain inet t input { type filter hook input priority -10; }; "
                            "add chain inet t fw { type filter hook forward priority 5; "
                            "policy drop; }; add chain inet t plain; "
                            "add table ip t; add chain ip t c { type nat hook output priority 0; }"])
    assert call(nft_netns, ("chains", ["t"]), ("chains", ["absent"])) == [
        {"input": "filter hook input priority -10 policy accept",
         "fw": "filter hook forward priority 5 policy drop", "plain": ""}, {}]


V4, V6 = "c0000207", "20010db8000000000000000000000007"      # 192.0.2.7, 2001:db8::7


def elements(netns, name):
    out = netns.check(["nft", "-j", "list", "set", "inet", "t", name])
    return [e for item in json.loads(out)["nftables"] for e in item.get("set", {}).get("elem", ())]


def test_elements_got_added_and_deleted_as_nft_sees_them(nft_netns):
    nft_netns.check(["nft", "add table inet t; add set inet t v4 { type ipv4_addr; }; "
                            "add set inet t v6 { type ipv6_addr; }"])
    enoent, eexist = nfnetlink.ENOENT, nfnetlink.EEXIST
    assert call(nft_netns, ("element", ["get", "t", "v4", "#" + V4]),
                ("element", ["add", "t", "v4", "#" + V4]),
                ("element", ["add", "t", "v6", "#" + V6]),
                ("element", ["get", "t", "v4", "#" + V4]),
                ("element", ["add", "t", "v4", "#" + V4])) == [enoent, 0, 0, 0, eexist]
    assert (elements(nft_netns, "v4"), elements(nft_netns, "v6")) == (["192.0.2.7"],
                                                                      ["2001:db8::7"])
    assert call(nft_netns, ("element", ["delete", "t", "v4", "#" + V4]),
                ("element", ["delete", "t", "v4", "#" + V4]),
                ("element", ["get", "t", "v4", "#" + V4]),
                ("element", ["get", "t", "absent", "#" + V4]),
                ("element", ["delete", "absent", "v4", "#" + V4]),
                ("element", ["add", "t", "v4", "#" + V6])) == [0, enoent, enoent, enoent,
                                                               enoent, 22]   # EINVAL: length
    assert (elements(nft_netns, "v4"), elements(nft_netns, "v6")) == ([], ["2001:db8::7"])


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


def message(kind, body, seq=1):
    return struct.pack("=IHHII", 16 + len(body), kind, 2, seq, 0) + body


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
        monkeypatch.setattr(nfnetlink._socket, "socket", lambda *args: sock)
        return sock
    return answer


def test_the_request_is_a_dump_of_one_inet_table(answering):
    sock = answering(message(3, b"\0" * 4))
    assert nfnetlink.rules("ossec", timeout=2.5) == {}
    (data, address), = sock.sent
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, pid, address) == (len(data), 0xa07, 0x301, 1, 0, (0, 0))
    assert data[16:20] == b"\x01\x00\x00\x00"                 # NFPROTO_INET, version 0
    assert data[20:] == attribute(1, b"ossec\0")
    assert sock.timeout == 2.5 and sock.closed


def test_messages_over_several_datagrams_and_other_tables_ignored(answering):
    answering(rule(b"ossec", b"input", "counter") + rule(b"other", b"input", "counter"),
              rule(b"ossec", b"forward", "limit", "counter"), message(3, b"\0" * 4))
    assert nfnetlink.rules("ossec") == {"input": [("counter",)],
                                      "forward": [("limit", "counter")]}


def test_a_change_is_one_batch_and_a_refused_batch_is_its_errno(answering):
    sock = answering(message(2, struct.pack("=i", -1) + b"\0" * 16, seq=1))   # EPERM, whole
    assert nfnetlink.element("add", "ossec", "v4", bytes([192, 0, 2, 7])) == 1
    (data, _), = sock.sent
    sent = []
    while data:
        length, kind, flags, seq = struct.unpack_from("=IHHI", data)
        sent.append((kind, flags, seq, data[16:20]))
        data = data[length:]
    assert sent == [(0x10, 0x1, 1, b"\0\0\0\x0a"),     # batch begin, nf_tables (big-endian)
                    (0xa0c, 0x605, 2, b"\x01\0\0\0"),    # NEWSETELEM, create excl, ack; inet
                    (0x11, 0x1, 3, b"\0\0\0\x0a")]       # batch end


def test_a_get_is_no_batch(answering):
    sock = answering(message(2, struct.pack("=i", -2) + b"\0" * 16, seq=2))
    assert nfnetlink.element("get", "ossec", "v6", bytes(16)) == nfnetlink.ENOENT
    (data, _), = sock.sent
    assert struct.unpack_from("=IHHI", data)[1:] == (0xa0d, 0x5, 2)
    assert len(data) == struct.unpack_from("=I", data)[0]   # one message


def test_a_deletes_socket_stays_open_until_the_next_one(monkeypatch):
    # Its close would wait for the kernel to release the element: the
    # program closes it at exit, after its lock.
    made = []

    def make(*args):
        made.append(Socket([message(2, b"\0" * 20, seq=2)]))
        return made[-1]
    monkeypatch.setattr(nfnetlink._socket, "socket", make)
    monkeypatch.setattr(nfnetlink, "_LINGERING", [])
    assert nfnetlink.element("delete", "ossec", "v4", bytes(4)) == 0
    assert not made[0].closed
    assert nfnetlink.element("get", "ossec", "v4", bytes(4)) == 0
    assert made[1].closed and not made[0].closed
    assert nfnetlink.element("delete", "ossec", "v4", bytes(4)) == 0
    assert made[0].closed and not made[2].closed
    assert nfnetlink._LINGERING == [made[2]]


WHOLE = rule(b"ossec", b"input", "counter")


@pytest.mark.parametrize("answer,reason", [
    (message(2, struct.pack("=i", -1) + b"\0" * 16), "netlink: Operation not permitted"),
    (struct.pack("=I", len(WHOLE) + 64) + WHOLE[4:], "netlink: a truncated message"),
    (OSError(11, "Resource temporarily unavailable"),
     "netlink: Resource temporarily unavailable"),          # what a timeout raises
])
def test_errors_truncation_and_timeouts_are_netlink_errors(answering, answer, reason):
    sock = answering(answer)
    with pytest.raises(nfnetlink.NetlinkError) as raised:
        nfnetlink.rules("ossec")
    assert str(raised.value) == reason
    assert sock.closed


def test_a_socket_that_cannot_be_made_is_a_netlink_error(monkeypatch):
    def refuse(*args):
        raise OSError(93, "Protocol not supported")
    monkeypatch.setattr(nfnetlink._socket, "socket", refuse)
    with pytest.raises(nfnetlink.NetlinkError, match="^netlink: Protocol not supported$"):
        nfnetlink.rules("ossec")


BACKEND = """
import sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import address, commands, config, nfnetlink
from ossec_ar.backends import load
def refuse(*args, **kwargs):
    raise nfnetlink.NetlinkError("netlink: refused for the test")
nfnetlink._exchange = refuse
backend = load("nftables", config.Settings(), commands.Tools(), "Linux")
for action in sys.argv[3:]:
    print("%s: %s" % getattr(backend, action)(address.parse(sys.argv[2])))
"""


def without_netlink(netns, ip, *actions):
    """The nftables backend's *actions* on *ip* in *netns*, with every
    netlink exchange refused: each (status, detail) line."""
    result = netns.run([sys.executable, "-I", "-c", BACKEND, os.path.join(ROOT, "lib"), ip]
                       + list(actions))
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout.splitlines()


def test_without_netlink_every_answer_comes_from_nft(nft_netns):
    where = "nftables table inet ossec, set v6"
    assert without_netlink(nft_netns, "2001:db8::7", "add", "add", "delete", "delete") == [
        "blocked: %s (repaired: created chains input and forward)" % where, "already blocked: " + where,
        "unblocked: " + where, "was not blocked: " + where]


def test_an_add_that_cannot_read_the_rules_applies_the_layout_again(nft_netns):
    """Where netlink cannot be read the add cannot tell, so it applies the
    layout again (always safe) rather than trust it."""
    def handles():
        listing = nft_netns.check(["nft", "-a", "list", "chain", "inet", "ossec", "input"])
        return [line.split("# handle ")[1] for line in listing.splitlines()
                if line.strip().endswith(tuple("0123456789")) and " drop " in line]

    assert without_netlink(nft_netns, "192.0.2.1", "add") == [
        "blocked: nftables table inet ossec, set v4 (repaired: created chains input and "
        "forward)"]
    first = handles()
    assert without_netlink(nft_netns, "192.0.2.2", "add") == [
        "blocked: nftables table inet ossec, set v4"]
    second = handles()
    assert len(first) == len(second) == 2           # never duplicated...
    assert set(first).isdisjoint(second)            # ...but refilled: new rules
