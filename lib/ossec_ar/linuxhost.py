"""The protections' questions on Linux, asked of the kernel over netlink
(``rtnetlink``): one lookup each on the add path, whole dumps only for
``ossec-ar status``.  See ``protect``."""

import os

from .protect import AGENT_DAEMONS, Unavailable


class LinuxHost:
    def __init__(self):
        self._route_session = None
        self._routes = {}

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
        session = self._session()
        hidden = None
        try:
            defaults = [rtnetlink.default_route(session, address.version, oif)
                        for oif in (0, route.oif)]
            if address.version == 4:
                defaults += rtnetlink.main_defaults_v4()
        except rtnetlink.NetlinkError as error:
            raise Unavailable(str(error))
        for default in defaults:
            if default is None:
                continue
            if default.length != 0:
                hidden = default.length
                continue
            for gateway, index in default.hops:
                if gateway == address.packed:
                    return "default via %s" % rtnetlink.interface_name(index)
        if hidden is not None and address.version == 6:      # IPv4 read the table's head
            raise Unavailable("a route to /%d covers the address that finds the default"
                              " route" % hidden)
        return None

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
