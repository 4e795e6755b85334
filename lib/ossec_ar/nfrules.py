"""The rules of an nf_tables table, read from the kernel over netlink.

nft 1.0 cannot show a chain's rules without fetching every element of
every set in the table first (half a second at 100,000 bans), and a dry
run that would prove them costs a kernel transaction (about 16 ms).  A
netlink dump of the table's rules carries no set elements and takes a
fraction of a millisecond, so an add can afford to check the rules every
time.  Only reading is done here; every change goes through nft.

Each rule comes back as a tuple of short words, one per expression, in the
form nft's ``--debug=netlink`` shows them, with registers left out::

    ("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup v4",
     "verdict drop")

An expression we do not describe is its bare name (``"counter"``), so a
rule someone else added never looks like ours.  Only the built-in
``_socket`` and ``_struct`` are used: nothing on the hot path pays for
``socket``'s enums.
"""

import _socket
import _struct
import os

NETLINK_NETFILTER = 12
NFPROTO_INET = 1
_GETRULE = (10 << 8) | 7            # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETRULE
_REQUEST_DUMP = 0x1 | 0x300         # NLM_F_REQUEST | NLM_F_DUMP
_ERROR, _DONE = 2, 3                # NLMSG_ERROR, NLMSG_DONE
_NESTED = 0x8000                    # NLA_F_NESTED
_TYPE = 0x3fff                      # the attribute type without its flags

# Attribute numbers, from linux/netfilter/nf_tables.h.
_RULE_TABLE, _RULE_CHAIN, _RULE_EXPRESSIONS = 1, 2, 4
_LIST_ELEM = 1
_EXPR_NAME, _EXPR_DATA = 1, 2
_VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", -1: "continue", -2: "break",
             -3: "jump", -4: "goto", -5: "return"}
_META_KEYS = {15: "nfproto", 16: "l4proto"}
_PAYLOAD_BASES = {0: "link", 1: "network", 2: "transport"}
_CMP_OPS = {0: "eq", 1: "neq", 2: "lt", 3: "lte", 4: "gt", 5: "gte"}


class Unreadable(Exception):
    """The dump could not be made or read; the text says why."""


def rules(table, family=NFPROTO_INET, timeout=5.0):
    """``{chain: [rule, ...]}`` for every chain of *table* that has rules,
    in the kernel's order."""
    request = _header(_GETRULE, _REQUEST_DUMP, family, _attribute(_RULE_TABLE, _string(table)))
    found = {}
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as error:
        raise Unreadable("netlink: %s" % (error.strerror or error))
    try:
        sock.settimeout(timeout)
        sock.sendto(request, (0, 0))
        while True:
            for kind, body in _messages(sock.recv(1 << 16)):
                if kind == _DONE:
                    return found
                if kind == _ERROR:
                    code = -_struct.unpack_from("=i", body)[0]
                    if code:
                        raise Unreadable("netlink: %s" % os.strerror(code))
                    continue
                attributes = _attributes(body[4:])          # after nfgenmsg
                if _string_of(attributes.get(_RULE_TABLE)) != table:
                    continue
                chain = _string_of(attributes.get(_RULE_CHAIN))
                found.setdefault(chain, []).append(
                    _describe_rule(attributes.get(_RULE_EXPRESSIONS, b"")))
    except OSError as error:            # a timeout is an OSError too
        raise Unreadable("netlink: %s" % (error.strerror or error))
    finally:
        sock.close()


def _header(kind, flags, family, payload):
    body = _struct.pack("=BBH", family, 0, 0) + payload    # nfgenmsg, version 0
    return _struct.pack("=IHHII", 16 + len(body), kind, flags, 1, 0) + body


def _attribute(kind, value):
    return _struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def _string(text):
    return text.encode("ascii") + b"\0"


def _string_of(value):
    return None if value is None else value.split(b"\0", 1)[0].decode("ascii", "replace")


def _messages(data):
    """(type, payload) for each netlink message in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind = _struct.unpack_from("=IH", data, offset)
        if length < 16 or offset + length > len(data):
            raise Unreadable("netlink: a truncated message")
        yield kind, data[offset + 16:offset + length]
        offset += (length + 3) & ~3


def _attributes(data):
    """``{type: value}``.  Only lists (NFTA_LIST_ELEM) repeat a type, and
    those are read with _each_attribute."""
    return dict(_each_attribute(data))


def _each_attribute(data):
    offset = 0
    while offset + 4 <= len(data):
        length, kind = _struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        yield kind & _TYPE, data[offset + 4:offset + length]
        offset += (length + 3) & ~3


def _be32(value, signed=False):
    return _struct.unpack(">i" if signed else ">I", value[:4])[0] if value else None


def _describe_rule(expressions):
    return tuple(_describe_expression(_attributes(element))
                 for kind, element in _each_attribute(expressions) if kind == _LIST_ELEM)


def _describe_expression(expression):
    name = _string_of(expression.get(_EXPR_NAME)) or "?"
    data = _attributes(expression.get(_EXPR_DATA, b""))
    if name == "meta" and 2 in data:                        # NFTA_META_KEY
        return "meta " + _META_KEYS.get(_be32(data[2]), "?")
    if name == "cmp" and 3 in data:                         # NFTA_CMP_OP, _DATA
        value = _attributes(data[3]).get(1, b"")            # NFTA_DATA_VALUE
        return "cmp %s %s" % (_CMP_OPS.get(_be32(data.get(2)), "?"), value.hex())
    if name == "payload" and 2 in data:                     # BASE, OFFSET, LEN
        return "payload %s %s %s" % (_PAYLOAD_BASES.get(_be32(data[2]), "?"),
                                     _be32(data.get(3)), _be32(data.get(4)))
    if name == "lookup" and 1 in data:                      # NFTA_LOOKUP_SET
        flags = _be32(data.get(5)) or 0                     # NFT_LOOKUP_F_INV
        return "lookup %s%s" % ("!" if flags & 1 else "", _string_of(data[1]))
    if name == "immediate" and 2 in data:                   # NFTA_IMMEDIATE_DATA
        verdict = _attributes(_attributes(data[2]).get(2, b""))   # NFTA_DATA_VERDICT
        if 1 in verdict:                                          # NFTA_VERDICT_CODE
            return "verdict " + _VERDICTS.get(_be32(verdict[1], signed=True), "?")
    return name
