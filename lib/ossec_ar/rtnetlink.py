"""What Linux says of this host's own network, asked over netlink.

The protections (``protect``) ask on every add whether an address is one
of the host's own, the next hop of a default route, or the far end of the
agent's connection to its manager.  A router may hold a million routes and
a web server thousands of addresses and sockets, so nothing here reads a
whole table on that path: each answer is one lookup that the kernel does
itself, the way ``ip route get`` and ``ss dst`` ask it:

- :func:`route_to`: the route the kernel would use to reach an address
  (RTM_GETROUTE without a dump); its type says whether the address is
  local;
- :func:`has_address`: whether an IPv6 address is one of the host's, in
  any state (RTM_GETADDR without a dump, which Linux answers from its hash
  of addresses; IPv4 has no such request);
- :func:`default_route`: the default route itself, by looking up a probe
  address with RTM_F_FIB_MATCH (Linux 4.13), which answers with the
  routing table's entry, every next hop included, rather than the route
  taken;
- :func:`sockets_to`: the sockets connected to one address and port
  (sock_diag with a filter program, so the kernel skips every other
  socket), or to any address of one prefix.

An add that blocks a whole IPv6 prefix (``ipv6_prefix``) has to know
whether any of the host's addresses lies inside it, which no single
lookup answers: it reads the host's IPv6 addresses (:func:`addresses`,
one entry an address, a few on most hosts) and its local routes
(:func:`local_routes_v6`, a dump that the kernel filters to them).

The other dumps of everything (:func:`default_routes`, and
:func:`addresses` of IPv4) are for ``ossec-ar status`` only.  Like ``nfnetlink``, only the built-in
``_socket`` and ``_struct`` are used; message and attribute numbers are
those of linux/rtnetlink.h, linux/if_addr.h and linux/inet_diag.h.
"""

import _socket
import _struct

from .nfnetlink import NetlinkError, _each_attribute

NETLINK_ROUTE, NETLINK_SOCK_DIAG = 0, 4
AF_INET, AF_INET6 = 2, 10
_AF_UNSPEC = 0
FAMILY = {4: AF_INET, 6: AF_INET6}

_NEWADDR, _GETADDR, _NEWROUTE, _GETROUTE = 20, 22, 24, 26
_SOCK_DIAG_BY_FAMILY = 20
_REQUEST, _DUMP = 0x1, 0x300
_ERROR, _DONE = 2, 3
_RTM_F_FIB_MATCH = 0x2000
# What a route lookup answers for an address with no usable route: no
# route at all, or one of type unreachable, blackhole, prohibit, throw.
_ENOENT, _EAGAIN, _EACCES, _EINVAL, _ENETUNREACH, _EHOSTUNREACH = 2, 11, 13, 22, 101, 113
_EADDRNOTAVAIL = 99
_NO_ROUTE = (_ENOENT, _EAGAIN, _EACCES, _EINVAL, _ENETUNREACH, _EHOSTUNREACH)
_SOL_NETLINK, _NETLINK_GET_STRICT_CHK = 270, 12
_MAIN_TABLE, _LOCAL_TABLE = 254, 255
RTN_UNICAST, RTN_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_MULTIPATH, _RTA_TABLE, _RTA_VIA = 1, 4, 5, 9, 15, 18
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_INET_DIAG_REQ_BYTECODE, _INET_DIAG_BC_D_COND = 1, 8
IPPROTO_TCP, IPPROTO_UDP = 6, 17
PROTOCOLS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP}

# Addresses that the global routing table never holds (RFC 1112's class E,
# RFC 4291's unspecified address), looked up to find the default route
# however many more specific routes a router holds.  Linux treats 0.0.0.0
# as "this host" on output, so IPv4 uses 240.0.0.1.
_PROBE = {4: bytes((240, 0, 0, 1)), 6: bytes(16)}


class Route:
    """A route as the kernel answered: ``kind`` (RTN_*), ``length`` (of
    the destination prefix), ``oif`` (interface index), and ``hops``:
    ``[(gateway, interface index)]``, empty for a route to a link."""

    __slots__ = ("kind", "length", "oif", "hops")

    def __init__(self, kind, length, oif, hops):
        self.kind, self.length, self.oif, self.hops = kind, length, oif, hops


class Connection:
    """A socket as sock_diag lists it: its peer's address bytes (IPv4 for
    an IPv4-mapped one), port, and the socket's inode."""

    __slots__ = ("protocol", "peer", "port", "inode")

    def __init__(self, protocol, peer, port, inode):
        self.protocol, self.peer, self.port, self.inode = protocol, peer, port, inode


class Session:
    """One netlink socket of one protocol for several questions: each
    costs a round trip, not a socket."""

    def __init__(self, protocol, timeout=2.0):
        try:
            self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, protocol)
        except OSError as error:
            raise NetlinkError("netlink: %s" % (error.strerror or error))
        self._sock.settimeout(timeout)
        self._seq = 0

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def ask(self, kind, flags, payload, empty=(_ENOENT,)):
        """The payloads of the answers to one request; its error (a
        negative errno) raised as ``NetlinkError``, unless it is one of
        *empty*: then no answer."""
        self._seq += 1
        seq = self._seq
        request = _struct.pack("=IHHII", 16 + len(payload), kind, _REQUEST | flags, seq, 0)
        answers = []
        try:
            self._sock.sendto(request + payload, (0, 0))
            while True:
                data = self._sock.recv(1 << 16)
                offset, finished = 0, False
                while offset + 16 <= len(data):
                    length, answer, _, got = _struct.unpack_from("=IHHI", data, offset)
                    if length < 16 or offset + length > len(data):
                        raise NetlinkError("netlink: a truncated message")
                    body = data[offset + 16:offset + length]
                    offset += (length + 3) & ~3
                    if got != seq:
                        continue
                    if answer == _ERROR:
                        error = -_struct.unpack_from("=i", body)[0]
                        if error and error not in empty:
                            raise OSError(error, _strerror(error))
                        finished = True
                    elif answer == _DONE:
                        finished = True
                    else:
                        answers.append((answer, body))
                        finished = finished or not flags & _DUMP
                if finished:
                    return answers
        except OSError as error:            # a timeout is an OSError too
            raise NetlinkError("netlink: %s" % (error.strerror or error))


def _strerror(number):
    import os
    return os.strerror(number)


def _attribute(kind, value):
    return _struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


# Routes.

def route_to(session, packed, oif=0, fib_match=False):
    """The :class:`Route` the kernel would use to reach the address whose
    bytes are *packed* (through interface *oif* only, if not 0), or None
    if it has none.  With *fib_match*, the routing table's entry that
    matched, all of its next hops; without, an IPv6 answer costs Linux a
    choice of source address (RTA_PREFSRC) among every address of the
    host, a millisecond at 5,000."""
    family = AF_INET if len(packed) == 4 else AF_INET6
    header = _struct.pack("=BBBBBBBBI", family, len(packed) * 8, 0, 0, 0, 0, 0, 0,
                          _RTM_F_FIB_MATCH if fib_match else 0)
    body = header + _attribute(_RTA_DST, packed)
    if oif:
        body += _attribute(_RTA_OIF, _struct.pack("=i", oif))
    for kind, answer in session.ask(_GETROUTE, 0, body, _NO_ROUTE):
        if kind == _NEWROUTE:
            return _route(answer)
    return None


def default_route(session, version, oif=0):
    """The default route (through *oif* only, if not 0) as a
    :class:`Route`, or None if there is none; ``length`` is not 0 if a
    more specific route covers the probe address (see ``_PROBE``)."""
    return route_to(session, _PROBE[version], oif, fib_match=True)


def _route(answer):
    _, length, _, _, _, _, _, kind, _ = _struct.unpack_from("=BBBBBBBBI", answer)
    oif, gateway, hops = 0, None, []
    for key, value in _each_attribute(answer[12:]):
        if key == _RTA_OIF:
            oif = _struct.unpack_from("=i", value)[0]
        elif key == _RTA_GATEWAY:
            gateway = value
        elif key == _RTA_VIA:
            gateway = value[2:]                 # struct rtvia: family, then the address
        elif key == _RTA_MULTIPATH:
            hops += _next_hops(value)
    if gateway is not None:
        hops.insert(0, (gateway, oif))
    return Route(kind, length, oif, hops)


def _next_hops(data):
    """[(gateway, interface index)] of an RTA_MULTIPATH: struct rtnexthop
    (length, flags, hops, ifindex), each followed by its attributes."""
    hops, offset = [], 0
    while offset + 8 <= len(data):
        length, _, _, index = _struct.unpack_from("=HBBi", data, offset)
        if length < 8:
            break
        for key, value in _each_attribute(data[offset + 8:offset + length]):
            if key == _RTA_GATEWAY:
                hops.append((value, index))
            elif key == _RTA_VIA:
                hops.append((value[2:], index))
        offset += (length + 3) & ~3
    return hops


def main_defaults_v4(timeout=2.0):
    """[:class:`Route`] of the IPv4 default routes of the main table,
    every one of them (several metrics, several next hops), without
    reading the rest of the table: Linux dumps an IPv4 table in the order
    of its prefixes, so its default routes come first, and the dump is
    abandoned at the first route that is not one.  Since Linux 5.3 the
    kernel dumps the main table alone (NETLINK_GET_STRICT_CHK); before,
    tables numbered below it come first, and one with another route stops
    the reading early (the default route in use is looked up besides)."""
    found = []
    dump = _table_dump(AF_INET, _MAIN_TABLE, 0, timeout)
    try:
        for answer in dump:
            if answer[1] != 0:
                break
            if answer[7] == RTN_UNICAST:
                found.append(_route(answer))
    finally:
        dump.close()
    return found


def local_routes_v6(timeout=2.0):
    """[(destination bytes, prefix length)] of the IPv6 routes of type
    local in the local table: one for each address of the host that is
    not tentative on an interface that is up, and any route that makes a
    whole network the host's (``ip route add local 2001:db8::/64 dev
    lo``).  The kernel filters the dump itself (NETLINK_GET_STRICT_CHK,
    Linux 5.0 and later: the table and the type in the request), so a
    router's million routes are never read; a kernel that answers with
    any other route does not filter, and the dump is abandoned at that
    route (NetlinkError), before the rest is sent."""
    unfiltered = NetlinkError("local routes: this kernel does not filter a route dump"
                              " (Linux 5.0 and later do)")
    found = []
    dump = _table_dump(AF_INET6, _LOCAL_TABLE, RTN_LOCAL, timeout, unfiltered)
    try:
        for answer in dump:
            if answer[0] != AF_INET6 or answer[7] != RTN_LOCAL:
                raise unfiltered
            values = dict(_each_attribute(answer[12:]))
            found.append((values.get(_RTA_DST, bytes(16)), answer[1]))
    finally:
        dump.close()
    return found


def _table_dump(family, table, route_type, timeout, unfiltered=None):
    """Yield each route message of a dump of *table*, with the table and
    *route_type* in the request, so that a kernel that checks dumps
    strictly (NETLINK_GET_STRICT_CHK) sends only those; where the option
    is missing (before Linux 4.20), *unfiltered* is raised, or with None
    the dump goes on unfiltered.  The caller may stop at any message."""
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, NETLINK_ROUTE)
    except OSError as error:
        raise NetlinkError("netlink: %s" % (error.strerror or error))
    try:
        try:
            sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)
        except OSError:
            if unfiltered is not None:
                raise unfiltered
        sock.settimeout(timeout)
        header = _struct.pack("=BBBBBBBBI", family, 0, 0, 0, table, 0, 0, route_type, 0)
        body = header + _attribute(_RTA_TABLE, _struct.pack("=I", table))
        sock.sendto(_struct.pack("=IHHII", 16 + len(body), _GETROUTE, _REQUEST | _DUMP, 1, 0)
                    + body, (0, 0))
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = _struct.unpack_from("=IH", data, offset)
                if length < 16 or offset + length > len(data):
                    raise NetlinkError("netlink: a truncated message")
                answer = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if kind == _ERROR:
                    error = -_struct.unpack_from("=i", answer)[0]
                    if error:
                        raise NetlinkError("netlink: %s" % _strerror(error))
                    return
                if kind != _NEWROUTE:
                    return                      # NLMSG_DONE
                yield answer
    except OSError as error:
        raise NetlinkError("netlink: %s" % (error.strerror or error))
    finally:
        sock.close()


def default_routes(session, version):
    """Every default route of every table: [Route] (a dump, for status)."""
    header = _struct.pack("=BBBBBBBBI", FAMILY[version], 0, 0, 0, 0, 0, 0, 0, 0)
    found = []
    for kind, answer in session.ask(_GETROUTE, _DUMP, header):
        if kind == _NEWROUTE and answer[1] == 0 and answer[7] == RTN_UNICAST:
            found.append(_route(answer))
    return found


def addresses(session, version):
    """[(address bytes, interface index)] of every address of the host in
    the family (a dump: for status, and of IPv6 for a prefix's add),
    tentative ones and those of interfaces that are down included."""
    found = []
    header = _struct.pack("=BBBBI", FAMILY[version], 0, 0, 0, 0)
    for kind, answer in session.ask(_GETADDR, _DUMP, header):
        if kind != _NEWADDR:
            continue
        index = _struct.unpack_from("=I", answer, 4)[0]
        values = dict(_each_attribute(answer[8:]))
        address = values.get(_IFA_LOCAL) or values.get(_IFA_ADDRESS)
        if address:
            found.append((address, index))
    return found


def has_address(session, packed):
    """True if the IPv6 address whose bytes are *packed* is one of the
    host's, on any interface, up or down, tentative (in duplicate address
    detection) or not: the list that /proc/net/if_inet6 prints, asked for
    one address."""
    header = _struct.pack("=BBBBI", AF_INET6, 128, 0, 0, 0)
    answers = session.ask(_GETADDR, 0, header + _attribute(_IFA_ADDRESS, packed),
                          (_ENOENT, _EADDRNOTAVAIL))
    return any(kind == _NEWADDR for kind, _ in answers)


def interface_name(index):
    try:
        return _socket.if_indextoname(index)
    except (OSError, ValueError):
        return str(index)


# Sockets.

def sockets_to(session, packed, port, protocols=(IPPROTO_TCP, IPPROTO_UDP), length=None):
    """[:class:`Connection`] of every socket connected to *port* of the
    address whose bytes are *packed* (of any address if None; of any
    address in the prefix *packed*/*length* if *length* is given), IPv6
    sockets with an IPv4-mapped peer included: one filtered request per
    family and protocol."""
    # One INET_DIAG_BC_D_COND: struct inet_diag_hostcond (family, prefix
    # length, port) and the address; on a match, on to the end (accept),
    # else four bytes past it (reject).  The kernel compares the families
    # before the prefix (net/ipv4/inet_diag.c, inet_diag_bc_run): only
    # AF_UNSPEC, with no address, matches a peer of any family.
    if packed is None:
        family, packed = _AF_UNSPEC, b""
    else:
        family = AF_INET if len(packed) == 4 else AF_INET6
    if length is None:
        length = len(packed) * 8
    condition = _struct.pack("=BBxxi", family, length, port) + packed
    size = 4 + len(condition)
    program = _struct.pack("=BBH", _INET_DIAG_BC_D_COND, size, size + 4) + condition
    found = []
    for socket_family in ((AF_INET6,) if family == AF_INET6 else (AF_INET, AF_INET6)):
        for protocol in protocols:
            # struct inet_diag_req_v2, every state, an empty socket id.
            request = _struct.pack("=BBBxI", socket_family, protocol, 0, 0xffffffff) + \
                bytes(48) + _attribute(_INET_DIAG_REQ_BYTECODE, program)
            for kind, answer in session.ask(_SOCK_DIAG_BY_FAMILY, _DUMP, request):
                if kind == _SOCK_DIAG_BY_FAMILY and len(answer) >= 72:
                    # struct inet_diag_msg: family, state, timer, retrans;
                    # the socket id (sport, dport, src[16], dst[16], if,
                    # cookie); expires, rqueue, wqueue, uid; inode at 68.
                    dport = _struct.unpack_from(">H", answer, 6)[0]
                    peer = answer[24:40] if answer[0] == AF_INET6 else answer[24:28]
                    if peer[:12] == bytes(10) + b"\xff\xff":
                        peer = peer[12:]
                    inode = _struct.unpack_from("=I", answer, 68)[0]
                    found.append(Connection(protocol, peer, dport, inode))
    return found
