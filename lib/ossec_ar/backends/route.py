"""route: a blackhole route for the address, as OSSEC's route-null.sh and
Wazuh's route-null make one, but idempotent, removable, and listed.

No firewall is involved: the host's replies to the address are dropped by
its routing table, so no TCP connection to or from it completes, and
forwarded traffic to it is dropped too.  Chosen only by its own name
(route-null.sh, route-null) or ``backend = route``, never by ``auto``.

Linux (iproute2's ip, in the main table)::

    ip -4 route add blackhole 192.0.2.7/32 table main proto 239
    ip -6 route add blackhole 2001:db8::7/128 table main proto 239
    ip -6 route add blackhole 2001:db8:1:2::/64 table main proto 239   (ipv6_prefix)

- **Our routes are marked** with a routing protocol number of their own
  (``route_proto``, 239 by default, which iproute2's rt_protos gives to no
  routing daemon; the kernel does not interpret numbers from 5 up).  A
  delete names type, prefix and protocol, and the kernel removes only a
  route that matches all three: an administrator's own
  blackhole route is never touched (IPv6 deletes do not look at the type
  at all, so the protocol is what keeps them off other routes).
- **A prefix** (``ipv6_prefix``) is a route of its own length beside the
  /128 routes: the kernel matches a delete on the exact prefix and length,
  so a prefix's delete never removes a /128 route inside it, nor the
  other way round.  ``ossec-ar list`` reads it back as the prefix.
- **An add that meets a route** ("File exists": the kernel allows one route
  per prefix and metric) looks at what is there: ours, or the stock
  script's, is "already blocked"; so is an administrator's own route of a
  type that drops the traffic (blackhole, unreachable, prohibit), which
  stays theirs (no delete of ours removes it); any other route (say, the
  administrator's route to that host) is exit 75 and stays as it was.
- **The stock script's routes are lifted only if adopted.**  route-null.sh
  ran net-tools' ``route add IP reject``, an ``unreachable`` host route
  (scope host, protocol boot), IPv4 only (given an IPv6 address, net-tools
  looked it up as a host name and failed).  Those there at install are
  recorded by ``ossec-ar adopt`` (the ledger's ``route:stock``), and their
  delete removes them; one made later is an administrator's, and an add
  that meets it records it as not ours.

BSDs and macOS (route(8), listed with netstat(1))::

    route -n add -host 192.0.2.7 127.0.0.1 -blackhole
    route -n add -inet6 -host 2001:db8::7 ::1 -blackhole
    route -n add -inet6 -net 2001:db8:1:2:: -prefixlen 64 ::1 -blackhole   (ipv6_prefix)

- ``-host`` always for an address: without it, 192.0.2.0 would be the
  network 192.0.2.0/24 and 2001:db8:1:2:: a /64 (route guesses from the
  address).  A prefix is ``-net`` with its length as ``-prefixlen``, after
  the destination (OpenBSD's route wants it there), the form all four
  accept; netstat lists it as ``2001:db8:1:2::/64`` with no H flag, and
  ``ossec-ar list`` reads it back as the prefix.
- ``-n``: no name is ever looked up.  No ``-q``: it silences the very words
  that tell an existing route from a failure (FreeBSD's route prints
  nothing at all for an existing route under -q, only exit 1).
- macOS's route exits 0 even when the routing socket refused the change,
  so a failure is also told by its words ("writing to routing socket").
- A kernel's delete may match the destination alone (the gateway is
  compared, if at all, between multipath routes; the blackhole flag never
  is), so a delete first asks ``route -n get`` and removes only a
  blackhole host route of the address to the loopback gateway: ours, or
  the stock script's, which is the same route, so a move from the stock
  script strands nothing.  An add that meets an existing route asks the
  same.  These systems have no protocol mark for routes: an
  administrator's blackhole route of that very form is taken as ours.
- For a prefix, ``route -n get -inet6 -net 2001:db8:1:2:: -prefixlen 64``
  asks the kernel for that very prefix (a get with a mask is an exact
  lookup on every one of them), and only a blackhole network route of it,
  its mask ffff:ffff:ffff:ffff::, to the loopback gateway is ours: never
  the host route of an address inside it, nor a route of another length.
  The kernel keeps a network and a host route of one address apart, so
  the prefix's delete leaves the /128 routes inside it, and the other way
  round.  A blackhole network route wider than a /48 (which ipv6_prefix
  never blocks) is an administrator's: ``list`` leaves it out.
"""

import socket

from ..address import Prefix, host
from ..exits import TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   addresses, blocks)

_HOST_BITS = {4: 32, 6: 128}
_LOOPBACK = {4: "127.0.0.1", 6: "::1"}
_FAMILY = {4: "-4", 6: "-6"}

# ip's answers (the kernel's errno texts): EEXIST, ESRCH, and a kernel
# without IPv6, where no route of ours can exist.
_EXISTS = "File exists"
_ABSENT = "No such process"
# A family whose main table has never held a route (an IPv6-only host for
# IPv4, a bare namespace) has no table at all: nothing of ours there either.
_NO_TABLE = "FIB table does not exist"
_NO_FAMILY = "Address family not supported"
_BATCH_FAILED = "Command failed -:"
# The route types that drop what they match, as ip names them first.
_DROPPING = ("blackhole", "unreachable", "prohibit")

# route(8)'s answers: an existing route (strerror's text; FreeBSD's own
# words), an absent one (every route(8); FreeBSD's warning; OpenBSD's
# strerror), and the warning every system prints when the routing socket
# refused a change.
_BSD_EXISTS = ("File exists", "route already in table")
_BSD_ABSENT = ("not in table", "route has not been found", "No such process")
_SOCKET_REFUSED = "writing to routing socket"
# What route get prints of a route, "     key: value" a line (route.c's
# print_getmsg on every system); a host route has no mask line, or (OpenBSD)
# the whole mask, a network route its mask as an address.
_GET_FIELDS = ("destination", "mask", "gateway", "flags")
_SOCKET_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


def protocol_number(value):
    """A routing protocol number that the kernel leaves alone (5 to 255)."""
    if not value or any(c not in "0123456789" for c in value) or not 5 <= int(value) <= 255:
        raise ValueError("%r is not a routing protocol number from 5 to 255" % value)
    return int(value)


class Backend(Base):
    settings = {"route_proto": (239, protocol_number)}
    versions = {"ip": ("-V",)}

    def add(self, address):
        if self.sysname == "Linux":
            return self._ip_add(address)
        return self._route_add(address)

    def delete(self, address):
        if self.sysname == "Linux":
            return self._ip_delete(address, [self._ours()])
        return self._route_delete(address)

    def delete_stock(self, address, places):
        """route-null.sh's reject route, which ``adopt`` recorded (IPv4,
        Linux: elsewhere the stock route is ours in form)."""
        if self.sysname != "Linux" or address.version != 4 or "stock" not in places:
            return Base.delete_stock(self, address, places)
        status, _ = self._ip_delete(address, [self._STOCK])
        return status, self._stock_where(address)

    def layout_members(self, version):
        if self.sysname != "Linux":
            return Base.layout_members(self, version)      # addresses only
        found = self._ip_show(version, *self._filter(self._ours()))
        return addresses([word for words in found for word in words[:2]], version)

    def stock_members(self, version):
        if self.sysname != "Linux" or version != 4:
            return {}
        found = self._ip_show(4, *self._filter(self._STOCK))
        return {address: ["stock"] for address in
                addresses([word for words in found for word in words[:2]], 4)}

    def members(self, version):
        if self.sysname == "Linux":
            return self._ip_members(version)
        return self._route_members(version)

    # Linux: ip.  A route is (type, the words after its prefix).

    def _ours(self):
        return "blackhole", ["proto", str(self.route_proto)]

    _STOCK = "unreachable", ["proto", "boot", "scope", "host"]      # route-null.sh's

    def _where(self, address):
        return "blackhole route %s in table main" % _prefix(address)

    def _stock_where(self, address):
        return "the stock route-null.sh's unreachable route %s in table main" % _prefix(
            address)

    def _ip_add(self, address):
        kind, words = self._ours()
        result = self.run("ip", _FAMILY[address.version], "route", "add", kind,
                          _prefix(address), "table", "main", *words)
        if result.ok:
            return BLOCKED, self._where(address)
        if _EXISTS not in result.output:
            raise failed(TEMPFAIL, result.describe())
        return self._ip_existing(address)

    def _ip_existing(self, address):
        """The kernel keeps one route per prefix and metric: whose is the
        one that is there?  Ours, or the stock script's, is already
        blocked.  One of the administrator's that drops the traffic as well
        also is, and stays theirs (a delete leaves it); any other route
        would need replacing, which is not ours to do."""
        exact = ["exact", _prefix(address)]
        if self._ip_show(address.version, *exact + self._filter(self._ours())):
            return ALREADY_BLOCKED, self._where(address)
        if address.version == 4 and self._ip_show(4, *exact + self._filter(self._STOCK)):
            return ALREADY_BLOCKED, self._stock_where(address)
        there = self._ip_show(address.version, *exact)
        said = " / ".join(" ".join(words) for words in there)
        if there and there[0][0] in _DROPPING:
            return ALREADY_BLOCKED, "%s route %s in table main, not ours (%s)" % (
                there[0][0], _prefix(address), said)
        raise failed(TEMPFAIL, "a route to %s that is not ours is in table main (%s);"
                     " it was left as it is" % (_prefix(address), said))

    @staticmethod
    def _filter(route):
        kind, words = route
        return ["type", kind] + words

    def _ip_show(self, version, *selectors):
        """The lines of ``ip route show table main *selectors*``."""
        result = self.run("ip", _FAMILY[version], "route", "show", "table", "main",
                          *selectors)
        if not result.ok:
            if _NO_FAMILY in result.output:
                return []
            raise failed(TEMPFAIL, result.describe())
        return [line.split() for line in result.output.splitlines() if line.strip()]

    def _ip_delete(self, address, routes):
        """One ip call for *routes*; the kernel removes a route only if
        type, prefix and protocol match."""
        script = "".join("route del %s %s table main %s\n" % (kind, _prefix(address),
                                                             " ".join(words))
                         for kind, words in routes)
        result = self.run("ip", _FAMILY[address.version], "-force", "-batch", "-",
                          input=script.encode())
        # Each line that failed: its error, then "Command failed -:<line>".
        failures = {line[len(_BATCH_FAILED):].strip() for line in result.output.splitlines()
                    if line.startswith(_BATCH_FAILED)}
        explained = sum(result.output.count(phrase)
                        for phrase in (_ABSENT, _NO_FAMILY, _NO_TABLE))
        if result.returncode is None or (not result.ok and not failures) \
                or len(failures) > explained:
            raise failed(TEMPFAIL, result.describe())
        if "1" not in failures:
            return UNBLOCKED, self._where(address)
        return NOT_BLOCKED, self._where(address)

    def _ip_members(self, version):
        found = self._ip_show(version, *self._filter(self._ours()))
        if version == 4:            # what route-null.sh left: unknown blocks
            found += self._ip_show(4, *self._filter(self._STOCK))
        # "blackhole 192.0.2.7", "unreachable 192.0.2.9 scope host": the
        # destination follows the type (which an older ip may leave out);
        # "blackhole 2001:db8:1:2::/64", a prefix.
        return blocks([word for words in found for word in words[:2]], version)

    # BSDs and macOS: route(8), netstat(1)

    def _route_words(self, command, target, gateway=True):
        words = ["-n", command] + (["-inet6"] if target.version == 6 else [])
        if isinstance(target, Prefix):
            words += ["-net", target.network, "-prefixlen", str(target.length)]
        else:
            words += ["-host", target.text]
        if gateway:
            words += [_LOOPBACK[target.version], "-blackhole"]
        return words

    def _route_where(self, target):
        return "blackhole %s route %s to %s" % (
            "network" if isinstance(target, Prefix) else "host", target,
            _LOOPBACK[target.version])

    def _route(self, *words):
        """``route *words*`` and whether it failed: by its exit code, or by
        its words where it exits 0 all the same (macOS)."""
        result = self.run("route", *words)
        return result, (not result.ok or _SOCKET_REFUSED in result.output)

    def _route_add(self, target):
        result, refused = self._route(*self._route_words("add", target))
        if not refused:
            return BLOCKED, self._route_where(target)
        if not any(phrase in result.output for phrase in _BSD_EXISTS):
            raise failed(TEMPFAIL, result.describe())
        ours, there = self._route_found(target)
        if ours:
            return ALREADY_BLOCKED, self._route_where(target)
        raise failed(TEMPFAIL, "a route to %s that is not ours is in the table (%s);"
                     " it was left as it is" % (target, there))

    def _route_delete(self, target):
        ours, _ = self._route_found(target)
        if not ours:
            return NOT_BLOCKED, self._route_where(target)
        result, refused = self._route(*self._route_words("delete", target))
        if not refused:
            return UNBLOCKED, self._route_where(target)
        if any(phrase in result.output for phrase in _BSD_ABSENT):
            return NOT_BLOCKED, self._route_where(target)
        raise failed(TEMPFAIL, result.describe())

    def _route_found(self, target):
        """(ours, what): whether the route that ``route get`` finds for
        *target* is ours, and that route in words.  Ours: a blackhole
        route to the loopback gateway, for an address a host route of it
        (no mask, or the whole one), for a prefix a network route of its
        first address with its mask (never a host route)."""
        result, refused = self._route(*self._route_words("get", target, gateway=False))
        fields = {}
        for line in result.output.splitlines():
            key, sep, value = line.strip().partition(": ")
            if sep and key in _GET_FIELDS:
                fields.setdefault(key, value.strip())
        if "destination" not in fields:
            if refused and any(phrase in result.output for phrase in _BSD_ABSENT):
                return False, "no route"
            raise failed(TEMPFAIL, result.describe())
        network = isinstance(target, Prefix)
        version = target.version
        flags = fields.get("flags", "").strip("<>").split(",")
        whole = b"\xff" * (16 if version == 6 else 4)       # a host route's mask
        mask = _packed(fields["mask"], version) if "mask" in fields else whole
        ours = (addresses([fields["destination"]], version)
                == {host(target.network) if network else target}
                and mask == (Prefix(whole, target.length).packed if network else whole)
                and fields.get("gateway") == _LOOPBACK[version]
                and ("HOST" in flags) != network and "BLACKHOLE" in flags)
        return ours, ", ".join("%s %s" % (key, fields[key]) for key in _GET_FIELDS
                               if key in fields)

    def _route_members(self, version):
        result = self.run("netstat", "-rn", "-f", "inet6" if version == 6 else "inet")
        self.sort(result, None)
        hosts, networks = [], []
        for line in result.output.splitlines():
            # Destination, Gateway, Flags, then columns that differ by system.
            words = line.split()
            if len(words) >= 3 and words[1] == _LOOPBACK[version] and "B" in words[2]:
                (hosts if "H" in words[2] else networks).append(words[0])
        found = addresses(hosts, version)
        if version == 6:        # "2001:db8:1:2::/64": a prefix, never its first address
            found.update(member for member in blocks(networks, 6)
                         if isinstance(member, Prefix))
        return found


def _packed(text, version):
    """The bytes of an address (or a mask) that route prints, or None."""
    try:
        return socket.inet_pton(_SOCKET_FAMILY[version], text)
    except (OSError, ValueError):
        return None


def _prefix(target):
    """The route's destination: an address's host route, or a prefix."""
    if isinstance(target, Prefix):
        return target.text
    return "%s/%d" % (target, _HOST_BITS[target.version])
