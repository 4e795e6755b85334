"""ipfw (FreeBSD): one lookup table and one deny rule that reads it.

Layout (names configurable)::

    ipfw table ossec_fwtable create type addr
    ipfw add 1 deny ip from table(ossec_fwtable) to any
    ipfw table ossec_fwtable add 192.0.2.7

The table and the rule are created when missing, on every add.  A table
of type addr holds IPv4 and IPv6 alike, and ``ip`` matches both.  It holds
networks too (ipfw(8): ``addr[/masklen]``): with ``ipv6_prefix`` an IPv6
prefix is the one entry ``2001:db8:1:2::/64``, which ``table list`` prints
so; a delete matches its entry exactly, so a prefix and an address inside
it are separate entries, each lifted alone.

The stock ipfw variant (ipfw.sh, which OSSEC's installer puts in place of
firewall-drop.sh on a FreeBSD host whose rc.conf enables ipfw) kept its
blocks in table 1, read by its rules ``deny ip from table(1) to any``
and ``deny ip from any to table(1)`` (number 1 in ipfw.sh, whose own
line to load them ipfw may refuse; an administrator may have loaded them
under another number).  Where either rule is loaded, table 1's entries
are listed with ours, and ``ossec-ar adopt`` records those there at
install as ``ipfw:table(1)``, which their delete lifts from table 1.
Otherwise table 1 is never touched: an entry put there after install, or
a table 1 without ipfw.sh's rules, is the administrator's.
"""

from ..address import Address
from ..config import rule_number, table_name
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base, Op,
                   blocks, repaired)

# ipfw's answers when the address is not there: no such entry, or no table.
_NOTHING_THERE = ("record not found", "does not exist")

# What ``table T list`` says of a table that does not exist (tables.c's
# err() when the table's info cannot be had, ESRCH).
_NO_TABLE = "failed to request table info: No such process"

# ipfw.sh's table, its rules (as ``ipfw list`` prints them after their
# number), and the ledger's place for its blocks.
STOCK_TABLE = "1"
_STOCK_RULES = (["deny", "ip", "from", "table(1)", "to", "any"],
                ["deny", "ip", "from", "any", "to", "table(1)"])
STOCK_PLACE = "table(1)"


class Backend(Base):
    settings = {"ipfw_table": ("ossec_fwtable", table_name),
                "ipfw_rule": (1, rule_number)}

    ADD = Op("ipfw", ("table", "{ipfw_table}", "add", "{address}"), BLOCKED,
             (ALREADY_BLOCKED, ("record already exists",)))

    def inactive(self, address):
        result = self.run("sysctl", "-n", "net.inet.ip.fw.enable")
        if not result.ok:
            return "ipfw is not loaded (%s)" % result.describe()
        if result.output.strip() != "1":
            return "ipfw is disabled (net.inet.ip.fw.enable=%s)" % result.output.strip()
        return None

    def add(self, address):
        repairs = self._ensure_layout()
        return self.ADD(self, address), "ipfw table %s%s" % (self.ipfw_table,
                                                             repaired(repairs))

    def delete(self, address):
        return self._delete_from(self.ipfw_table, address)

    def delete_stock(self, address, places):
        """ipfw.sh's entry in table 1, which ``adopt`` recorded."""
        if STOCK_PLACE not in places:
            return Base.delete_stock(self, address, places)
        status, detail = self._delete_from(STOCK_TABLE, address)
        return status, detail + " (the stock ipfw.sh's)"

    def _delete_from(self, table, address):
        result = self.run("ipfw", "table", table, "delete", address.text)
        if self._unloaded(result):
            return NOT_BLOCKED, "ipfw not loaded"
        return (self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _NOTHING_THERE),)),
                "ipfw table %s" % table)

    def members(self, version):
        """Our table's addresses and prefixes, and ipfw.sh's table 1's
        addresses where its rules read it: all block."""
        return self._table_members(self.ipfw_table, version).union(
            self.stock_members(version))

    def layout_members(self, version):
        return {member for member in self._table_members(self.ipfw_table, version)
                if isinstance(member, Address)}

    def stock_members(self, version):
        """{Address: ["table(1)"]} of ipfw.sh's table 1, if its rules are
        loaded; {} otherwise."""
        result = self.run("ipfw", "list")
        if self._unloaded(result):
            return {}
        self.sort(result, None)
        rules = [line.split()[1:] for line in result.output.splitlines()]
        if not any(rule in rules for rule in _STOCK_RULES):
            return {}
        # ipfw.sh added addresses only: a network there is the administrator's.
        return {address: [STOCK_PLACE]
                for address in self._table_members(STOCK_TABLE, version)
                if isinstance(address, Address)}

    def _table_members(self, table, version):
        result = self.run("ipfw", "table", table, "list")
        if self._unloaded(result) or self.sort(
                result, None, ((NOT_BLOCKED, _NOTHING_THERE + (_NO_TABLE,)),)) == NOT_BLOCKED:
            return set()
        # "192.0.2.7/32 0", "2001:db8:1:2::/64 0": the entry, then its value.
        return blocks([line.partition(" ")[0] for line in result.output.splitlines()],
                      version)

    def _unloaded(self, result):
        """True when *result* failed because ipfw.ko is not loaded (pf is
        FreeBSD's other firewall): then no table of ours can exist, though
        ipfw's error does not say so; sysctl does."""
        return (not result.ok and not any(text in result.output for text in _NOTHING_THERE)
                and not self.run("sysctl", "-n", "net.inet.ip.fw.enable").ok)

    def _ensure_layout(self):
        repairs = []
        if not self.run("ipfw", "table", self.ipfw_table, "info").ok:
            self.check("ipfw", "table", self.ipfw_table, "create", "type", "addr")
            repairs.append("created table %s" % self.ipfw_table)
        rule = ["deny", "ip", "from", "table(%s)" % self.ipfw_table, "to", "any"]
        listing = self.check("ipfw", "list").output
        if not any(line.split()[1:] == rule for line in listing.splitlines()):
            self.check("ipfw", "add", str(self.ipfw_rule), *rule)
            repairs.append("deny rule %s" % self.ipfw_rule)
        return repairs
