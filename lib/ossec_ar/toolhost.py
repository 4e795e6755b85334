"""The protections' questions on the BSDs, macOS, Solaris and AIX, whose
backends run tools anyway: ``ifconfig -a`` and ``netstat -rn`` on each
add, parsed for the address asked about.  See ``protect``."""

from . import address as addresses
from .commands import Result
from .protect import Unavailable


class ToolHost:
    """``ifconfig -a`` and ``netstat -rn``, read once per run: their output
    is parsed for the address asked about only."""

    def __init__(self, system):
        self.system = system

    def close(self):
        pass

    def _output(self, argv):
        tools = self.system.tools
        path = tools.find(argv[0])
        if path is None:
            raise Unavailable("%s not found" % argv[0])
        result = tools.run([path] + argv[1:], 10)
        if not result.ok:           # said as a backend says it, its first words only
            raise Unavailable(Result(result.argv, result.returncode,
                                     result.output[:400]).describe())
        return result.output

    def is_own(self, address):
        return address in own_addresses(self._output(["ifconfig", "-a"]))

    def gateway_of(self, address):
        family = "inet" if address.version == 4 else "inet6"
        for gateway, where in default_gateways(self._output(["netstat", "-rn", "-f",
                                                             family])):
            if gateway == address:
                return "default via %s" % where if where else True
        return None

    def agent_connected(self, address, ports, protocols):
        return False            # no socket listing without /proc: the file only

    # A prefix blocked whole (an IPv6 one): the same outputs, searched for
    # any address inside it.

    def own_inside(self, prefix):
        inside = sorted(address for address in own_addresses(self._output(["ifconfig", "-a"]))
                        if address in prefix)
        return (inside[0], None) if inside else None

    def gateway_inside(self, prefix):
        for gateway, where in default_gateways(self._output(["netstat", "-rn", "-f",
                                                             "inet6"])):
            if gateway in prefix:
                return gateway, "default via %s" % where if where else None
        return None

    def agent_peer_inside(self, prefix, ports, protocols):
        return None

    def agent_peers(self, ports, protocols):
        return []

    def own_addresses(self):
        return [(address, "own address") for address in
                sorted(own_addresses(self._output(["ifconfig", "-a"])))]

    def gateways(self):
        return [(gateway, "gateway (default via %s)" % where if where else "gateway")
                for family in ("inet", "inet6") for gateway, where in
                default_gateways(self._output(["netstat", "-rn", "-f", family]))]


def own_addresses(text):
    """The addresses in ``ifconfig -a`` output, as BSD, macOS, Solaris
    and AIX print them: the word after ``inet`` or ``inet6``, written
    ``A``, ``A%scope``, ``A/len`` or ``A%scope/len``.  What follows ``inet``
    and is no address (Solaris's ``inet tunnel src ...``, ``inet subnet``)
    is skipped, and so is the unspecified address (an unconfigured logical
    interface of Solaris)."""
    found = set()
    words = text.split()
    for index, word in enumerate(words[:-1]):
        if word in ("inet", "inet6"):
            address = _host(words[index + 1])
            if address is not None and any(address.packed):
                found.add(address)
    return found


# The heading of the interface column: BSD and macOS (Netif, Iface,
# Interface), Solaris (Interface, If for IPv6), AIX (If).
_INTERFACE_HEADINGS = ("Netif", "Iface", "Interface", "If")


def default_gateways(text):
    """[(gateway Address, interface or "")] of the default routes in
    ``netstat -rn`` output: a line whose first word is ``default`` (or
    ``0.0.0.0``, ``::/0``) and whose second is an address (``link#1`` is
    not).  The interface is the word in the column that the last header
    line (its first word ``Destination...``) names, or "" where the line
    has none: Solaris leaves it blank for a route bound to no interface,
    and FreeBSD, macOS and AIX put columns after it (Expire; Exp Groups)."""
    found, column = [], None
    for line in text.splitlines():
        words = line.split()
        if words and words[0].startswith("Destination"):
            column = next((n for n, word in enumerate(words)
                           if word in _INTERFACE_HEADINGS), None)
            continue
        if len(words) < 2 or words[0] not in ("default", "0.0.0.0", "::/0", "::"):
            continue
        gateway = _host(words[1])
        if gateway is not None:
            where = words[column] if column is not None and column < len(words) else ""
            found.append((gateway, where))
    return found


def _host(text):
    return addresses.host(text.split("%", 1)[0].split("/", 1)[0])
