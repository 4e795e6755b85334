"""The protections' questions on Linux, asked of the kernel over netlink
(``rtnetlink``): one lookup each on the add path of an address; for a
prefix blocked whole, the host's IPv6 addresses and local routes besides
(dumps, small on any host); whole dumps only for ``ossec-ar status``.
See ``protect``."""

import os

from .protect import AGENT_DAEMONS, Unavailable, address6


class LinuxHost:
    def __init__(self):
        self._route_session = None
        self._routes = {}
        self._addresses6 = None

    def close(self):
        if self._route_session is not None:
            self._route_session.close()

    def _session(self):
        from . import rtnetlink
        if self._route_session is None:
            try:
                self._route_session = rtnetlink.Session(rtnetlink.NETLINK_ROUTE)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
        return self._route_session

    def _route(self, address):
        """The kernel's route to *address* (one lookup, asked once)."""
        from . import rtnetlink
        if address.packed not in self._routes:
            try:
                self._routes[address.packed] = rtnetlink.route_to(
                    self._session(), address.packed, fib_match=True)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
        return self._routes[address.packed]

    def is_own(self, address):
        """A local route says so for every IPv4 address of the host, on
        an interface up or down.  IPv6 has none for an address still in
        duplicate address detection or on an interface that is down, so
        there the kernel is asked for the address itself."""
        from . import rtnetlink
        route = self._route(address)
        if route is not None and route.kind == rtnetlink.RTN_LOCAL:
            return True
        if address.version == 6:
            try:
                return rtnetlink.has_address(self._session(), address.packed)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
        return False

    def gateway_of(self, address):
        """Whether *address* is a next hop of a default route: only an
        address the host reaches directly can be one (or one reached
        through itself, ``via X onlink``).  Then the default routes are
        looked up, the preferred one and the one through the address's own
        interface, every next hop of each; for IPv4, also every default
        route of the main table (the head of its dump).  Of several IPv6
        default routes through one interface with different metrics, only
        the one the kernel prefers is seen."""
        from . import rtnetlink
        route = self._route(address)
        if route is None or route.kind != rtnetlink.RTN_UNICAST:
            return None
        if any(gateway == address.packed for gateway, _ in route.hops):
            return "the route to it goes through it"
        if route.hops:
            return None
        for gateway, index in self._default_hops(address.version, (0, route.oif)):
            if gateway == address.packed:
                return "default via %s" % rtnetlink.interface_name(index)
        return None

    def _default_hops(self, version, interfaces):
        """[(gateway, interface index)] of the default routes the kernel
        prefers through each of *interfaces* (0: any), every next hop of
        each, and for IPv4 of every default route of the main table (the
        head of its dump).  Unavailable if, for IPv6, a route that is not
        a default one answers the lookup of the default route: it hides
        the default route."""
        from . import rtnetlink
        session = self._session()
        try:
            defaults = [rtnetlink.default_route(session, version, oif) for oif in interfaces]
            if version == 4:
                defaults += rtnetlink.main_defaults_v4()
        except rtnetlink.NetlinkError as error:
            raise Unavailable(str(error))
        hops, hidden = [], None
        for default in defaults:
            if default is None:
                continue
            if default.length != 0:
                hidden = default.length
                continue
            hops += default.hops
        if hidden is not None and version == 6:      # IPv4 read the table's head
            raise Unavailable("a route to /%d covers the address that finds the default"
                              " route" % hidden)
        return hops

    # A prefix blocked whole (an IPv6 one): what lies inside it.

    def _own6(self):
        """[(bytes, interface index)] of every IPv6 address of the host
        (one dump, read once a run)."""
        from . import rtnetlink
        if self._addresses6 is None:
            try:
                self._addresses6 = rtnetlink.addresses(self._session(), 6)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
        return self._addresses6

    def own_inside(self, prefix):
        """(Address, detail or None) of an address of the host inside
        *prefix*, or None.  Its addresses first, in any state (an address
        in duplicate address detection or on an interface that is down
        has no local route); then its local routes, which make a whole
        network the host's (``ip route add local ... dev lo``): the one
        the kernel takes to the prefix's first address, in whatever table
        a rule chooses, and every one of the local table that overlaps
        the prefix, inside it or around it."""
        from . import rtnetlink
        from .address import Prefix
        inside = sorted(packed for packed, _ in self._own6() if prefix.holds(packed))
        if inside:
            return address6(inside[0]), None
        route = self._route(prefix)
        if route is not None and route.kind == rtnetlink.RTN_LOCAL:
            return address6(prefix.packed), None if route.length == 128 else \
                "local route %s" % Prefix(prefix.packed, route.length)
        try:
            local = rtnetlink.local_routes_v6()
        except rtnetlink.NetlinkError as error:
            raise Unavailable(str(error))
        for packed, length in sorted(local):
            if length >= prefix.length and prefix.holds(packed):
                first = packed
            elif length < prefix.length and Prefix(packed, length).holds(prefix.packed):
                first = prefix.packed
            else:
                continue
            if length == 128:
                return address6(first), None
            return address6(first), "local route %s" % Prefix(packed, length)
        return None

    def gateway_inside(self, prefix):
        """(Address, detail) of a next hop inside *prefix* of the route
        to it or of a default route, or None.  The route to the prefix's
        first address, every next hop of it (unless it is a default route,
        which comes next and is named so); then the default route the
        kernel prefers, and the one it prefers through each interface
        that has an IPv6 address (each interface with IPv6 on has its
        link-local one), every next hop of each.  A link-local gateway
        (fe80::) lies inside no prefix that can be blocked, and is
        compared all the same.  Of several default routes through one
        interface with different metrics, only the preferred one is seen,
        as for an address."""
        from . import rtnetlink
        route = self._route(prefix)
        if route is not None and route.kind == rtnetlink.RTN_UNICAST and route.length:
            for gateway, _ in route.hops:
                if prefix.holds(gateway):
                    return address6(gateway), "the route to %s goes through it" % prefix.network
        interfaces = {0} | {index for _, index in self._own6()}
        if route is not None and route.oif:
            interfaces.add(route.oif)
        for gateway, index in self._default_hops(6, sorted(interfaces)):
            if prefix.holds(gateway):
                return address6(gateway), "default via %s" % rtnetlink.interface_name(index)
        return None

    def agent_peer_inside(self, prefix, ports, protocols):
        """The Address of a peer inside *prefix* of a socket that the
        agent daemon holds to one of *ports*, or None: the kernel filters
        the sockets by the prefix, as for an address."""
        from . import rtnetlink
        numbers = tuple(rtnetlink.PROTOCOLS[name] for name in sorted(protocols))
        try:
            with rtnetlink.Session(rtnetlink.NETLINK_SOCK_DIAG) as session:
                connections = [c for port in sorted(ports) for c in rtnetlink.sockets_to(
                    session, prefix.packed, port, numbers, prefix.length)]
        except rtnetlink.NetlinkError as error:
            raise Unavailable("sockets: %s" % error)
        if not connections:
            return None
        mine = _agent_socket_inodes()
        peers = sorted(c.peer for c in connections if c.inode in mine and len(c.peer) == 16)
        return address6(peers[0]) if peers else None

    def agent_connected(self, address, ports, protocols):
        """True if the agent daemon holds a socket connected to *address*
        on one of *ports* (*protocols*: "tcp", "udp").  The kernel filters
        the sockets; only for one that matches are the daemon's
        descriptors looked at."""
        from . import rtnetlink
        numbers = tuple(rtnetlink.PROTOCOLS[name] for name in sorted(protocols))
        try:
            with rtnetlink.Session(rtnetlink.NETLINK_SOCK_DIAG) as session:
                inodes = set()
                for port in sorted(ports):
                    inodes.update(c.inode for c in rtnetlink.sockets_to(
                        session, address.packed, port, numbers))
        except rtnetlink.NetlinkError as error:
            raise Unavailable("sockets: %s" % error)
        return bool(inodes) and bool(inodes & _agent_socket_inodes())


    def own_addresses(self):
        from .protectlist import _address
        from . import rtnetlink
        session = self._session()
        found = []
        for version in (4, 6):
            try:
                listed = rtnetlink.addresses(session, version)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
            found += [(_address(packed), "own address (on %s)" % rtnetlink.interface_name(index))
                      for packed, index in listed]
        return found

    def gateways(self):
        from .protectlist import _address
        from . import rtnetlink
        session = self._session()
        found = []
        for version in (4, 6):
            try:
                routes = rtnetlink.default_routes(session, version)
            except rtnetlink.NetlinkError as error:
                raise Unavailable(str(error))
            found += [(_address(gateway), "gateway (default via %s)"
                       % rtnetlink.interface_name(index))
                      for route in routes for gateway, index in route.hops]
        return found

    def agent_peers(self, ports, protocols):
        """[(peer bytes, port)] of the agent daemon's sockets to *ports*."""
        from . import rtnetlink
        numbers = tuple(rtnetlink.PROTOCOLS[name] for name in sorted(protocols))
        try:
            with rtnetlink.Session(rtnetlink.NETLINK_SOCK_DIAG) as session:
                connections = [c for port in sorted(ports)
                               for c in rtnetlink.sockets_to(session, None, port, numbers)]
        except rtnetlink.NetlinkError as error:
            raise Unavailable("sockets: %s" % error)
        if not connections:
            return []
        mine = _agent_socket_inodes()
        return sorted({(c.peer, c.port) for c in connections if c.inode in mine})


def _agent_socket_inodes():
    """The inodes of the sockets that OSSEC's or Wazuh's agent daemon
    holds, found by their names in /proc."""
    inodes = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid, "rb") as comm:
                if comm.read(64).strip() not in AGENT_DAEMONS:
                    continue
            for fd in os.listdir("/proc/%s/fd" % pid):
                target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except (OSError, ValueError):
            continue
    return inodes
