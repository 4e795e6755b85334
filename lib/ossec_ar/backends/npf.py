"""npf (NetBSD): one table of npf.conf, filled with npfctl(8).

Layout (table name configurable, ``ossec_blacklist`` as in the stock npf
variant), in /etc/npf.conf, written by the administrator::

    table <ossec_blacklist> type ipset
    group default { block in final from <ossec_blacklist> ... }

npfctl cannot create a table at run time, so a missing table fails the add
with exit 78 and the lines to add; an npf that is not active is exit 69.

With ``ipv6_prefix`` an IPv6 prefix is one entry, ``2001:db8:1:2::/64``;
only a table of type lpm holds networks (npfctl(8)), so that is then the
table's type, and an add of a prefix to any other fails (78) saying so.
An lpm table answers by longest match of an entry's first address: an add
is "already exists or is conflicting" when an entry matches it (a network
holding it: already blocked; an entry at a prefix's first address, which
the prefix cannot then join: a failure that says so), and ``rem`` lifts
whatever entry matches longest, a network holding the address if its own
entry is gone.  So with ``ipv6_prefix`` set, and for every prefix, a
delete lists the table first and lifts only an entry that is there as
itself.
"""

from ..address import Prefix
from ..config import table_name
from ..exits import CONFIG, TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base, Op,
                   blocks)

# npfctl's errno texts (npfctl.c): EEXIST, ENOENT, and EINVAL, which for an
# address we have already validated can only mean the table ID (or, for a
# network, a table whose type holds none).
_EXISTS = "entry already exists"
_ABSENT = "no matching entry"
_NO_TABLE = "invalid address, mask or table ID"
_NOT_LOADED = "cannot open '/dev/npf'"


def _no_table(backend, result):
    raise failed(CONFIG, "npf has no table <%s>; add 'table <%s> type ipset' and, in"
                 " group default, 'block in final from <%s>' to /etc/npf.conf, then run"
                 " npfctl reload" % ((backend.npf_table,) * 3))


def _no_network_table(backend, result):
    """EINVAL for a network: no such table, or one that cannot hold it."""
    if not backend.run("npfctl", "table", backend.npf_table, "list").ok:
        _no_table(backend, result)
    raise failed(CONFIG, "npf table <%s> cannot hold a network, which ipv6_prefix blocks;"
                 " only a table of type lpm can: declare it 'table <%s> type lpm' in"
                 " /etc/npf.conf, then run npfctl reload" % ((backend.npf_table,) * 2))


class Backend(Base):
    settings = {"npf_table": ("ossec_blacklist", table_name)}

    ADD = Op("npfctl", ("table", "{npf_table}", "add", "{address}"), BLOCKED,
             (ALREADY_BLOCKED, (_EXISTS,)), (_no_table, (_NO_TABLE,)))
    ADD_NETWORK = Op("npfctl", ("table", "{npf_table}", "add", "{address}"), BLOCKED,
                     (ALREADY_BLOCKED, (_EXISTS,)), (_no_network_table, (_NO_TABLE,)))
    DELETE = Op("npfctl", ("table", "{npf_table}", "rem", "{address}"), UNBLOCKED,
                (NOT_BLOCKED, (_ABSENT, _NO_TABLE, _NOT_LOADED)))

    def __init__(self, entry, settings, tools, sysname=None):
        Base.__init__(self, entry, settings, tools, sysname)
        # Prefixes may be blocked: the table is an lpm one, whose rem
        # matches by longest prefix.
        self.networks = settings.ipv6_prefix < 128

    def inactive(self, address):
        result = self.run("npfctl", "show")
        if not result.ok:
            return "npf is not usable (%s)" % result.describe()
        first = result.output.splitlines()[:1]
        if not first or first[0].split() != ["#", "filtering:", "active"]:
            return "npf is not active (start it with npfctl start)"
        return None

    def add(self, target):
        if not isinstance(target, Prefix):
            return self.ADD(self, target), self._where()
        status = self.ADD_NETWORK(self, target)
        if status == ALREADY_BLOCKED:
            entries = self._entries(6, widest=1)        # any network holding it
            if not any(_holds(entry, target) for entry in entries):
                there = sorted(str(entry) for entry in entries if entry.packed == target.packed)
                raise failed(TEMPFAIL, "%s was not added: npf table <%s> holds %s at its first"
                             " address, which its lpm lookup takes as a conflict"
                             % (target, self.npf_table, ", ".join(there) or "an entry"))
        return status, self._where()

    def delete(self, target):
        if self.networks or isinstance(target, Prefix):
            return self._delete_listed(target), self._where()
        return self.DELETE(self, target), self._where()

    def _delete_listed(self, target):
        """Lift *target* only if the table holds it as itself.  Its rem
        then takes that entry: lpm adds no entry whose first address
        another entry already matches, so none is longer at its own."""
        if target not in self._entries(target.version):
            return NOT_BLOCKED
        return self.DELETE(self, target)

    def members(self, version):
        return self._entries(version)

    def _entries(self, version, widest=None):
        result = self.run("npfctl", "table", self.npf_table, "list")
        if self.sort(result, None, ((NOT_BLOCKED, (_NO_TABLE, _NOT_LOADED)),)) is None:
            return blocks(result.output.split(), version, widest)
        return set()

    def _where(self):
        return "npf table <%s>" % self.npf_table


def _holds(entry, prefix):
    """True if the table's *entry* is *prefix* or a network holding it."""
    return isinstance(entry, Prefix) and entry.length <= prefix.length and \
        entry.holds(prefix.packed)
