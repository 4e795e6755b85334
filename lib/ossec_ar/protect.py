"""Protections: the addresses an add never blocks, whatever the alert says,
because blocking them cuts the host off.

An attacker who can choose the source address of an alert (a spoofed
packet, a scan relayed through the NAT gateway) must not make the host
drop its own addresses, its default gateways, its resolvers or the OSSEC
or Wazuh manager it reports to: the last would also stop the manager from
lifting the block.  ``[allowlist] protect`` chooses among the four
(:data:`NAMES`; all by default).

Each is decided afresh on every add, from what the host says at that
moment, and never by reading a whole table: a router holds a million
routes and a busy host thousands of addresses and sockets.  On Linux the
kernel answers single questions over netlink (``rtnetlink``) and no tool
runs; on the other systems, whose backends run tools anyway, one
``ifconfig -a`` or ``netstat -rn`` is read.  No name is ever looked up in
the DNS: a manager given by name is found in ``/etc/hosts``, and on Linux
by the agent daemon's own connection.

An add that blocks a whole IPv6 prefix (``ipv6_prefix``) is refused if
any protected address lies anywhere inside it, and the reason names that
address.  What no single lookup answers is read whole for it, and only
for it: the host's IPv6 addresses and its local routes (Linux), the
resolvers and the manager's addresses (the files, as for an address).

A source that cannot be read is no protection and no failure: the add
goes on, and its outcome line says which protection was unavailable and
why.  Deletes are never refused: a protection that appears after a block
was made must not keep it in place.
"""

import _socket
import os
import stat

from . import address as addresses

NAMES = ("self", "gateways", "resolvers", "manager")
RESOLV_CONF = "/etc/resolv.conf"
HOSTS = "/etc/hosts"
READ_LIMIT = 1 << 16            # resolv.conf and /etc/hosts: what is read of them
CONF_LIMIT = 1 << 20            # the agent's ossec.conf
MANAGER_PORT = 1514             # ossec-remoted's and wazuh-remoted's default
AGENT_DAEMONS = (b"ossec-agentd", b"wazuh-agentd")

_WORDS = {"self": "one of the host's own addresses",
          "gateways": "the host's default gateway",
          "resolvers": "a resolver in %s" % RESOLV_CONF,
          "manager": "the manager this agent reports to"}


class Finding:
    """What the protections say of one address or prefix: ``reason`` (why
    it is refused, or None) and ``unavailable`` (the protections that could
    not be checked, with why), for the outcome line; for a prefix refused,
    ``inside`` is the protected :class:`~ossec_ar.address.Address` found
    inside it."""

    def __init__(self):
        self.reason = None
        self.unavailable = []
        self.inside = None

    def note(self):
        return "; ".join("protection '%s' unavailable: %s" % item for item in self.unavailable)


def check(target, protections, prefix, system):
    """The :class:`Finding` for adding *target* on this host, with the
    protections named in *protections* (a subset of :data:`NAMES`);
    *prefix* is where the agent is installed.  *target* is an
    :class:`~ossec_ar.address.Address`, or a
    :class:`~ossec_ar.address.Prefix` to be blocked whole: that is refused
    if any protected address lies inside it."""
    finding = Finding()
    if not protections:
        return finding
    whole = isinstance(target, addresses.Prefix)
    checks = _PREFIX_CHECKS if whole else _CHECKS
    host = _host_of(system)
    try:
        for name in NAMES:
            if name not in protections:
                continue
            try:
                because = checks[name](host, target, prefix)
            except Unavailable as problem:
                finding.unavailable.append((name, str(problem)))
                continue
            except Exception as error:      # a protection must never cost the block
                finding.unavailable.append((name, "%s: %s" % (type(error).__name__, error)))
                continue
            if because and whole:
                finding.inside, detail = because
                finding.reason = "%s (%s) is inside %s (protect = %s)" % (
                    _WORDS[name], finding.inside if detail is None else "%s, %s" % (
                        finding.inside, detail), target, name)
                break
            if because:
                finding.reason = "%s%s (protect = %s)" % (
                    _WORDS[name], " (%s)" % because if because is not True else "", name)
                break
    finally:
        host.close()
    return finding


class Unavailable(Exception):
    """A protection's source could not be read; the text says why."""


def _host_of(system):
    """What answers for this host: the kernel on Linux (``linuxhost``),
    its tools elsewhere (``toolhost``); each is loaded only where used."""
    if system.name == "Linux":
        from .linuxhost import LinuxHost
        return LinuxHost()
    from .toolhost import ToolHost
    return ToolHost(system)


def _self(host, address, prefix):
    return host.is_own(address)


def _gateways(host, address, prefix):
    return host.gateway_of(address)


def _resolvers(host, address, prefix):
    return address.packed in resolvers()


def _manager(host, address, prefix):
    """The configuration's addresses first.  The agent daemon's sockets
    are asked only where the configuration leaves the manager unknown (a
    name that /etc/hosts does not hold, or a file that cannot be read):
    the kernel answers that question by walking every TCP socket of the
    host, a millisecond or more, and the daemon connects to nothing but
    what its configuration names."""
    manager, problem = read_manager(prefix)
    if address.packed in manager.addresses:
        return manager.addresses[address.packed]
    if (problem is not None or manager.unresolved) and \
            host.agent_connected(address, manager.ports, manager.protocols):
        return "the agent daemon is connected to it"
    if problem is not None:
        raise problem
    return None


def read_manager(prefix):
    """(the :class:`Manager` of the agent at *prefix*, read, and the
    Unavailable that its reading met, or None): what could be read counts
    even when part could not."""
    manager = Manager(prefix)
    try:
        manager.read()
    except Unavailable as error:
        return manager, error
    return manager, None


_CHECKS = {"self": _self, "gateways": _gateways, "resolvers": _resolvers,
           "manager": _manager}


# A prefix: each check answers (the protected Address inside it, a detail
# or None), or None.

def _self_inside(host, block, prefix):
    return host.own_inside(block)


def _gateways_inside(host, block, prefix):
    return host.gateway_inside(block)


def _resolvers_inside(host, block, prefix):
    inside = sorted(packed for packed in resolvers() if block.holds(packed))
    return (address6(inside[0]), None) if inside else None


def _manager_inside(host, block, prefix):
    """As :func:`_manager`: the configuration's addresses, and the agent
    daemon's connections only where the configuration leaves the manager
    unknown, then any connection to an address inside *block*."""
    manager, problem = read_manager(prefix)
    inside = sorted(packed for packed in manager.addresses if block.holds(packed))
    if inside:
        return address6(inside[0]), manager.addresses[inside[0]]
    if problem is not None or manager.unresolved:
        peer = host.agent_peer_inside(block, manager.ports, manager.protocols)
        if peer is not None:
            return peer, "the agent daemon is connected to it"
    if problem is not None:
        raise problem
    return None


_PREFIX_CHECKS = {"self": _self_inside, "gateways": _gateways_inside,
                  "resolvers": _resolvers_inside, "manager": _manager_inside}


def address6(packed):
    """The :class:`~ossec_ar.address.Address` of the IPv6 bytes *packed*."""
    return addresses.Address(addresses._ipv6_text(packed), 6, packed)


# Files: resolv.conf, the agent's ossec.conf, /etc/hosts.

def _read(path, limit, follow=True):
    """The first *limit* bytes of the regular file *path*, or None if it
    does not exist.  Never waits (O_NONBLOCK: a FIFO is refused, not
    read); *follow*: whether a symbolic link is followed (resolv.conf is
    often one, into /run)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Unavailable("%s: %s" % (path, error.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unavailable("%s is not a regular file" % path)
        return os.read(fd, limit)
    except OSError as error:
        raise Unavailable("%s: %s" % (path, error.strerror))
    finally:
        os.close(fd)


def resolvers():
    """The address bytes of the ``nameserver`` lines of resolv.conf, read
    as the C library reads them (``inet_aton`` for IPv4, a scope id after
    ``%`` ignored); a line with a name or garbage is not a resolver."""
    data = _read(RESOLV_CONF, READ_LIMIT)
    found = set()
    for line in (data or b"").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == b"nameserver":
            packed = _packed(words[1])
            if packed is not None:
                found.add(packed)
    return found


def _packed(word):
    """The bytes of the address *word* (IPv4-mapped as IPv4), or None.
    IPv4 is read by inet_aton(3), as the C library's resolver reads
    resolv.conf (``10.1``, octal parts), but never past a space; an IPv6
    scope id (``%eth0``) is left out."""
    try:
        text = word.decode("ascii")
        if not text or text.split() != [text]:
            return None
        if ":" in text:
            text, percent, scope = text.partition("%")     # fe80::1%eth0
            if percent and not scope:
                return None
            packed = _socket.inet_pton(_socket.AF_INET6, text)
            return packed[12:] if packed[:12] == bytes(10) + b"\xff\xff" else packed
        return _socket.inet_aton(text)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


class Manager:
    """The manager of the agent installed at *prefix*, from its
    ``etc/ossec.conf``: :attr:`addresses` (``{bytes: where it was
    found}``) and :attr:`ports`.

    OSSEC names it with ``<client><server-ip>`` or ``<server-hostname>``,
    Wazuh with ``<client><server><address>`` (each may repeat); a name is
    looked up in /etc/hosts and the prefix's etc/hosts (:func:`hosts_table`),
    never in the DNS; the ports
    come from ``<port>`` in either place.  The file is read as text, never
    by an XML parser: Wazuh's ``etc/`` is writable by the wazuh user, so
    the file is opened without following a link, never waited on, read up
    to :data:`CONF_LIMIT`, and nothing in it is expanded.
    """

    def __init__(self, prefix):
        self.prefix = prefix
        self.path = os.path.join(prefix, "etc", "ossec.conf")
        self.addresses = {}
        self.unresolved = []            # names that /etc/hosts does not hold
        self.ports = {MANAGER_PORT}
        self.protocols = {"tcp", "udp"}

    def read(self):
        data = _read(self.path, CONF_LIMIT + 1, follow=False)
        if data is None:
            return
        if len(data) > CONF_LIMIT:
            raise Unavailable("%s is larger than %d bytes" % (self.path, CONF_LIMIT))
        text = data.decode("utf-8", "replace")
        names, ports, protocols = [], set(), set()
        for client in _elements(_uncommented(text), "client"):
            for tag in ("server-ip", "address"):
                for value in _elements(client, tag):
                    packed = _packed(value.strip().encode("utf-8", "replace"))
                    if packed is not None:
                        self.addresses[packed] = "<%s> in %s" % (tag, self.path)
                    else:
                        names.append((tag, value.strip()))
            for value in _elements(client, "server-hostname"):
                names.append(("server-hostname", value.strip()))
            for value in _elements(client, "port"):
                if value.strip().isdigit() and 0 < int(value.strip()) < 65536:
                    ports.add(int(value.strip()))
            for value in _elements(client, "protocol"):
                if value.strip().lower() in ("tcp", "udp"):
                    protocols.add(value.strip().lower())
        if ports:
            self.ports = ports
        if protocols:
            self.protocols = protocols
        if names:
            table = hosts_table(self.prefix)
            for tag, name in names:
                found = table.get(name.lower(), ())
                for packed, where in found:
                    self.addresses.setdefault(packed, "<%s> %s, in %s" % (tag, name, where))
                if not found:
                    self.unresolved.append(name)


def _uncommented(text):
    parts, start = [], 0
    while True:
        begin = text.find("<!--", start)
        if begin < 0:
            parts.append(text[start:])
            return "".join(parts)
        parts.append(text[start:begin])
        end = text.find("-->", begin + 4)
        if end < 0:
            return "".join(parts)
        start = end + 3


def _elements(text, tag):
    """The contents of every ``<tag>...</tag>`` in *text*, outermost
    first; a tag with attributes counts, an unclosed one does not."""
    found, start = [], 0
    opening, closing = "<%s" % tag, "</%s>" % tag
    while True:
        begin = text.find(opening, start)
        if begin < 0:
            return found
        after = begin + len(opening)
        close = text.find(">", after)
        if close < 0:
            return found
        if text[after:close].strip() and text[after] not in " \t\r\n":
            start = after                   # <client-x>, not <client>
            continue
        end = text.find(closing, close + 1)
        if end < 0:
            return found
        found.append(text[close + 1:end])
        start = end + len(closing)


def hosts_table(prefix):
    """``{lower-case name: [address bytes]}`` from /etc/hosts and from the
    agent's own ``<prefix>/etc/hosts`` (never the DNS): OSSEC's agent
    daemon resolves its manager's name inside its chroot, the prefix, so
    that is the file it reads.  The prefix's file is not followed through
    a link (Wazuh's etc/ is its user's)."""
    table = {}
    for path, follow in ((HOSTS, True), (os.path.join(prefix, "etc", "hosts"), False)):
        try:
            data = _read(path, READ_LIMIT, follow)
        except Unavailable:
            continue
        _hosts_lines(data or b"", path, table)
    return table


def _hosts_lines(data, path, table):
    for line in data.splitlines():
        words = line.split(b"#", 1)[0].split()
        if len(words) < 2:
            continue
        packed = _packed(words[0])
        if packed is None:
            continue
        for name in words[1:]:
            table.setdefault(name.decode("utf-8", "replace").lower(), []).append(
                (packed, path))
    return table
