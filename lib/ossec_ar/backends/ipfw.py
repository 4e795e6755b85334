"""ipfw (FreeBSD): one lookup table and one deny rule that reads it.

Layout (names configurable)::

    ipfw table ossec_fwtable create type addr
    ipfw add 1 deny ip from table(ossec_fwtable) to any
    ipfw table ossec_fwtable add 192.0.2.7

The table and the rule are created when missing, on every add.  A table
of type addr holds IPv4 and IPv6 alike, and ``ip`` matches both.  The
stock ipfw variant's table 1 is left alone: it may be the administrator's.
"""

from ..config import rule_number, table_name
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base, Op,
                   addresses, repaired)

# ipfw's answers when the address is not there: no such entry, or no table.
_NOTHING_THERE = ("record not found", "does not exist")


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
        result = self.run("ipfw", "table", self.ipfw_table, "delete", address.text)
        if self._unloaded(result):
            return NOT_BLOCKED, "ipfw not loaded"
        return (self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _NOTHING_THERE),)),
                "ipfw table %s" % self.ipfw_table)

    def members(self, version):
        result = self.run("ipfw", "table", self.ipfw_table, "list")
        if self._unloaded(result) or self.sort(
                result, None, ((NOT_BLOCKED, _NOTHING_THERE),)) == NOT_BLOCKED:
            return set()
        # "192.0.2.7/32 0": the entry, then its value.
        return addresses([line.partition(" ")[0] for line in result.output.splitlines()],
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
