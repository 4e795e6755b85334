"""nf_tables over netlink: what the nftables backend asks the kernel itself.

An nft run costs 4 ms before it does anything, and nft 1.0 fetches every
element of every set before it shows a chain's rules (half a second at
100,000 bans).  The questions an add asks are small: are our chains on
their hooks, do they hold our rules, is the address in the set.  The
kernel answers each in a fraction of a millisecond, and adds or deletes one
set element in one batch.  So the hot path talks netlink; everything that
builds or repairs a layout, and anything unexpected, goes through nft.

Rules come back as tuples of short words, one per expression, in the form
``nft --debug=netlink`` shows them, registers left out::

    ("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup v4",
     "verdict drop")

An expression we do not describe is its bare name (``"counter"``), so a
rule someone else added never looks like ours.  Chains come back as the
words nft would declare them with (``"filter hook input priority -10
policy accept"``; ``""`` for a regular chain).

Only the built-in ``_socket`` and ``_struct`` are used: nothing on the hot
path pays for ``socket``'s enums.  Attribute and message numbers are those
of linux/netfilter/nf_tables.h and nfnetlink.h, stable since Linux 3.13;
the single-element get is Linux 4.15's.
"""

import _socket
import _struct
import os

NETLINK_NETFILTER = 12
NFPROTO_INET = 1
ENOENT, EEXIST = 2, 17

_NFTABLES = 10 << 8                 # NFNL_SUBSYS_NFTABLES, as a message type
_NEWTABLE, _GETTABLE, _NEWCHAIN, _GETCHAIN, _NEWRULE, _GETRULE = 0, 1, 3, 4, 6, 7
_NEWSET, _GETSET = 9, 10
_NEWSETELEM, _GETSETELEM, _DELSETELEM = 12, 13, 14
_BATCH_BEGIN, _BATCH_END = 0x10, 0x11
_REQUEST, _ACK, _DUMP = 0x1, 0x4, 0x300
_CREATE, _EXCL = 0x400, 0x200
_ERROR, _DONE = 2, 3                # NLMSG_ERROR, NLMSG_DONE
_NESTED = 0x8000                    # NLA_F_NESTED
_TYPE = 0x3fff                      # an attribute's type without its flags

_TABLE, _CHAIN_NAME, _CHAIN_HOOK, _CHAIN_POLICY, _CHAIN_TYPE = 1, 3, 4, 5, 7
_RULE_CHAIN, _RULE_EXPRESSIONS = 2, 4
_TABLE_FLAGS, TABLE_DORMANT = 2, 1
_SET_NAME, _SET_FLAGS, _SET_KEY_TYPE, _SET_KEY_LEN = 2, 3, 4, 5
_SET_FLAG_NAMES = ((1, "anonymous"), (2, "constant"), (4, "interval"), (8, "map"),
                   (0x10, "timeout"), (0x20, "dynamic"), (0x40, "object"), (0x80, "concat"),
                   (0x100, "expr"))
_KEY_TYPES = {(7, 4): "ipv4_addr", (8, 16): "ipv6_addr"}     # nft's datatypes, key length
_ELEM_SET, _ELEM_ELEMENTS = 2, 3
_LIST_ELEM = 1
_EXPR_NAME, _EXPR_DATA = 1, 2
_HOOKS = {0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}
_VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", -1: "continue", -2: "break",
             -3: "jump", -4: "goto", -5: "return"}
_META_KEYS = {15: "nfproto", 16: "l4proto"}
_PAYLOAD_BASES = {0: "link", 1: "network", 2: "transport"}
_CMP_OPS = {0: "eq", 1: "neq", 2: "lt", 3: "lte", 4: "gt", 5: "gte"}
_ELEMENT_ACTIONS = {"get": (_GETSETELEM, 0), "add": (_NEWSETELEM, _CREATE | _EXCL),
                    "delete": (_DELSETELEM, 0)}


class NetlinkError(Exception):
    """No answer could be had or read; the text says why."""


def chains(table, family=NFPROTO_INET, timeout=5.0):
    """``{chain: declaration}`` for every chain of *table*."""
    found = {}
    for attributes in _dump(_GETCHAIN, _NEWCHAIN, table, family, timeout):
        hook = _attributes(attributes.get(_CHAIN_HOOK, b""))
        words = []
        if hook:
            words = [_string_of(attributes.get(_CHAIN_TYPE)) or "?",
                     "hook", _HOOKS.get(_be32(hook.get(1)), "?"),           # HOOKNUM
                     "priority", str(_be32(hook.get(2), signed=True)),       # PRIORITY
                     "policy", _VERDICTS.get(_be32(attributes.get(_CHAIN_POLICY)), "?")]
        found[_string_of(attributes.get(_CHAIN_NAME))] = " ".join(words)
    return found


def table_flags(table, family=NFPROTO_INET, timeout=5.0):
    """The flags of *table* (TABLE_DORMANT), None if there is no such table."""
    flags = None
    for attributes in _dump(_GETTABLE, _NEWTABLE, table, family, timeout):
        flags = _be32(attributes.get(_TABLE_FLAGS)) or 0
    return flags


def sets(table, family=NFPROTO_INET, timeout=5.0):
    """``{set: declaration}`` for every set of *table*, in nft's words
    (``"type ipv4_addr flags interval"``; a key nft has no word for is
    ``"type 9/4"``, its datatype and length)."""
    found = {}
    for attributes in _dump(_GETSET, _NEWSET, table, family, timeout):
        key = (_be32(attributes.get(_SET_KEY_TYPE)), _be32(attributes.get(_SET_KEY_LEN)))
        flags = _be32(attributes.get(_SET_FLAGS)) or 0
        words = ["type", _KEY_TYPES.get(key) or "%s/%s" % key]
        named = [name for bit, name in _SET_FLAG_NAMES if flags & bit]
        unnamed = flags & ~sum(bit for bit, _ in _SET_FLAG_NAMES)
        if unnamed:
            named.append(hex(unnamed))
        if named:
            words += ["flags", ",".join(named)]
        found[_string_of(attributes.get(_SET_NAME))] = " ".join(words)
    return found


def rules(table, family=NFPROTO_INET, timeout=5.0):
    """``{chain: [rule, ...]}`` for every chain of *table* that has rules,
    in the kernel's order."""
    found = {}
    for attributes in _dump(_GETRULE, _NEWRULE, table, family, timeout):
        found.setdefault(_string_of(attributes.get(_RULE_CHAIN)), []).append(
            _describe_rule(attributes.get(_RULE_EXPRESSIONS, b"")))
    return found


def element(action, table, set_name, key, family=NFPROTO_INET, timeout=5.0):
    """Get, add or delete the element *key* (bytes in network order) of a
    set; the kernel's errno, 0 for done (or present).  A get of an absent
    element, or a delete, where table, set or element is missing, is
    ENOENT; an add of a present one EEXIST.  A get or add is no
    transaction: an add is one batch of one message, applied whole or not
    at all."""
    kind, flags = _ELEMENT_ACTIONS[action]
    key_attribute = _attribute(1 | _NESTED, _attribute(1, key))  # ELEM_KEY { DATA_VALUE }
    body = (_attribute(_TABLE, _string(table)) + _attribute(_ELEM_SET, _string(set_name))
            + _attribute(_ELEM_ELEMENTS | _NESTED,
                         _attribute(_LIST_ELEM | _NESTED, key_attribute)))
    request = _message(_NFTABLES | kind, _REQUEST | _ACK | flags, 2, family, body)
    if kind != _GETSETELEM:         # a change must come in a batch
        begin = _message(_BATCH_BEGIN, _REQUEST, 1, 0, b"", _socket.htons(_NFTABLES >> 8))
        end = _message(_BATCH_END, _REQUEST, 3, 0, b"", _socket.htons(_NFTABLES >> 8))
        request = begin + request + end
    for kind, seq, body in _exchange(request, timeout, linger=kind == _DELSETELEM):
        if kind == _ERROR:
            code = -_struct.unpack_from("=i", body)[0]
            if code or seq == 2:        # ours, or the batch refused whole
                return code
    raise NetlinkError("netlink: no answer to the element's %s" % action)


def _dump(ask, answer, table, family, timeout):
    """The attributes of each *answer* message to a dump of *table*."""
    request = _message(_NFTABLES | ask, _REQUEST | _DUMP, 1, family,
                       _attribute(_TABLE, _string(table)))
    for kind, _, body in _exchange(request, timeout):
        if kind == _DONE:
            return
        if kind == _ERROR:
            code = -_struct.unpack_from("=i", body)[0]
            if code:
                raise NetlinkError("netlink: %s" % os.strerror(code))
        elif kind == _NFTABLES | answer:
            attributes = _attributes(body[4:])                  # after nfgenmsg
            if _string_of(attributes.get(_TABLE)) == table:
                yield attributes
    raise NetlinkError("netlink: the dump did not end")


# The socket of the last delete, left open.  Closing a socket that deleted
# an element waits for the kernel to release it (an RCU grace period: 7 to
# 20 ms measured here, on every kernel the same kind of wait), which nothing
# of ours needs: closed at exit, after the program's lock and log, the wait
# no longer holds up the next run.  One at a time, so a long run (ossec-ar
# expire) never piles up descriptors.
_LINGERING = []


def _exchange(request, timeout, linger=False):
    """Send *request*; (type, seq, payload) of every message answered,
    until an error or the end of a dump (the caller stops there).  With
    *linger*, the socket stays open until the next lingering one or exit."""
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as error:
        raise NetlinkError("netlink: %s" % (error.strerror or error))
    try:
        sock.settimeout(timeout)
        sock.sendto(request, (0, 0))
        while True:
            for message in _messages(sock.recv(1 << 16)):
                yield message
                if message[0] == _DONE:
                    return
    except OSError as error:            # a timeout is an OSError too
        raise NetlinkError("netlink: %s" % (error.strerror or error))
    finally:
        if linger:
            while _LINGERING:
                _LINGERING.pop().close()
            _LINGERING.append(sock)
        else:
            sock.close()


def _message(kind, flags, seq, family, payload, res_id=0):
    body = _struct.pack("=BBH", family, 0, res_id) + payload   # nfgenmsg, version 0
    return _struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _attribute(kind, value):
    return _struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def _string(text):
    return text.encode("ascii") + b"\0"


def _string_of(value):
    return None if value is None else value.split(b"\0", 1)[0].decode("ascii", "replace")


def _messages(data):
    """(type, seq, payload) for each netlink message in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, seq = _struct.unpack_from("=IHHI", data, offset)
        if length < 16 or offset + length > len(data):
            raise NetlinkError("netlink: a truncated message")
        yield kind, seq, data[offset + 16:offset + length]
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
    if name == "bitwise" and 4 in data:                     # NFTA_BITWISE_MASK
        return "bitwise %s" % _attributes(data[4]).get(1, b"").hex()
    if name == "immediate" and 2 in data:                   # NFTA_IMMEDIATE_DATA
        verdict = _attributes(_attributes(data[2]).get(2, b""))   # NFTA_DATA_VERDICT
        if 1 in verdict:                                          # NFTA_VERDICT_CODE
            return "verdict " + _VERDICTS.get(_be32(verdict[1], signed=True), "?")
    return name
