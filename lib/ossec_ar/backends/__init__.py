"""Firewall backends: one module each, and one line each in REGISTRY.

The line says what choosing the backend needs, without loading its module:
the systems it runs on, the tools it needs (for both address families, or
per family, and, where one system needs others, per system), and for a
daemon the pid file that says it is running.  The
module (see ``base``) says what the backend does and which settings of the
configuration file are its own.  ``auto`` tries the names of AUTOMATIC in
order and loads only the module it uses.
"""

from .. import system

# Tools looked up for both families unless given per family.
_BOTH = (4, 6)


def _per_family(tools):
    """{4: (tool, ...), 6: (tool, ...)} from either form of a line's tools."""
    return tools if isinstance(tools, dict) else {v: tools for v in _BOTH}


class Entry:
    """A backend as the registry knows it."""

    __slots__ = ("name", "systems", "tools", "daemon", "_tools_on", "netlink")

    def __init__(self, name, systems, tools, daemon=None, tools_on=None, netlink=False):
        self.name = name
        self.systems = systems
        # True: it can find and lift a block over netlink, without its tools
        self.netlink = netlink
        # {4: (tool, ...), 6: (tool, ...)}: on every system but those of *tools_on*
        self.tools = _per_family(tools)
        self.daemon = daemon        # the daemon that must be running, if any
        # {sysname: tools}: a system whose tools differ from the others'
        self._tools_on = {name: _per_family(t) for name, t in (tools_on or {}).items()}

    def tools_of(self, sysname):
        """{4: (tool, ...), 6: (tool, ...)} that this backend needs on the
        system *sysname*."""
        return self._tools_on.get(sysname, self.tools)

    def every_tool(self):
        """Each tool this backend needs on some system, once, in order."""
        names = []
        for table in [self.tools] + list(self._tools_on.values()):
            names += [name for name in table[4] + table[6] if name not in names]
        return names

    def missing(self, tools, version, sysname=None):
        """Why this backend cannot act on addresses of *version* with
        *tools* (a commands.Tools) on the system *sysname* (uname's name),
        or None."""
        for name in self.tools_of(sysname)[version]:
            if tools.find(name) is None:
                return tools.not_found(name)
        if self.daemon and not system.daemon_running(self.daemon):
            return "%s is not running" % self.daemon
        return None


# Registration: a new backend is one line here and one module of that name.
REGISTRY = {entry.name: entry for entry in (
    Entry("iptables", ("Linux",), {4: ("iptables",), 6: ("ip6tables",)}),
    Entry("nftables", ("Linux",), ("nft",), netlink=True),
    Entry("ipset", ("Linux",), {4: ("ipset", "iptables", "iptables-restore"),
                                6: ("ipset", "ip6tables", "ip6tables-restore")}),
    Entry("firewalld", ("Linux",), ("firewall-cmd",), daemon="firewalld"),
    Entry("pf", ("FreeBSD", "OpenBSD", "Darwin"), ("pfctl",)),
    Entry("ipfw", ("FreeBSD",), ("ipfw", "sysctl")),
    Entry("npf", ("NetBSD",), ("npfctl",)),
    Entry("ipfilter", ("SunOS", "FreeBSD", "NetBSD"), ("ipf", "ipfstat")),
    Entry("genfilt", ("AIX",), ("genfilt", "lsfilt", "mkfilt", "rmfilt", "lsdev")),
    Entry("route", ("Linux", "FreeBSD", "OpenBSD", "NetBSD", "Darwin"), ("route", "netstat"),
          tools_on={"Linux": ("ip",)}),
)}

# What ``backend = auto`` tries for an add, in order, per uname(2) name: the
# first whose tools are here and whose firewall is enabled.  On Linux a
# running firewalld is asked first (it owns the firewall); then the flat set
# layouts, whose cost does not grow with the number of bans; the chain of
# one rule per address only where neither nft nor ipset exists.  ``route``
# (a blackhole route: no firewall at all) is never chosen by auto, only by
# its own name (route-null, route-null.sh) or ``backend = route``.
AUTOMATIC = {
    "Linux": ("firewalld", "nftables", "ipset", "iptables"),
    "FreeBSD": ("pf", "ipfw", "ipfilter"),
    "OpenBSD": ("pf",),
    "Darwin": ("pf",),
    "NetBSD": ("npf", "ipfilter"),
    "SunOS": ("ipfilter",),
    "AIX": ("genfilt",),
}


def on(system):
    """The registry's entries for *system*, in registry order."""
    return [entry for entry in REGISTRY.values() if system in entry.systems]


def module(name):
    # __import__ rather than importlib: the importlib package is not loaded
    # at start-up, and every run would pay for it.
    return __import__("ossec_ar.backends." + name, fromlist=["Backend"])


def load(name, settings, tools, sysname=None):
    """The backend *name*, set up with the run's settings and tools, on the
    system *sysname* (uname's name: a backend may act differently on each)."""
    return module(name).Backend(REGISTRY[name], settings, tools, sysname)
