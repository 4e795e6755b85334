"""ipfw (FreeBSD): one lookup table and one deny rule that reads it.

Layout (names configurable)::

    ipfw table ossec_fwtable create type addr
    ipfw add 1 deny ip from table(ossec_fwtable) to any
    ipfw table ossec_fwtable add 192.0.2.7

The table and the rule are created when missing, on every add.  A table
of type addr holds IPv4 and IPv6 alike, and ``ip`` matches both.  The
stock ipfw variant's table 1 is left alone: it may be the administrator's.
"""

from ..exits import TEMPFAIL, failed
from .toolbox import Toolbox, addresses

# ipfw's answers when the address is not there to delete: no such entry,
# or no such table.
_NOTHING_THERE = ("record not found", "does not exist")


class Backend:
    name = "ipfw"

    def __init__(self, settings):
        self.table = settings.ipfw_table
        self.rule_number = str(settings.ipfw_rule)
        self.tools = Toolbox("ipfw", "sysctl")

    def missing(self, address):
        return self.tools.missing()

    def inactive(self, address):
        result = self.tools.run("sysctl", "-n", "net.inet.ip.fw.enable")
        if not result.ok:
            return "ipfw is not loaded (%s)" % result.describe()
        if result.output.strip() != "1":
            return "ipfw is disabled (net.inet.ip.fw.enable=%s)" % result.output.strip()
        return None

    def add(self, address):
        repairs = self._ensure_layout()
        result = self.tools.run("ipfw", "table", self.table, "add", str(address))
        if result.ok:
            status = "blocked"
        elif "record already exists" in result.output:
            status = "already blocked"
        else:
            raise failed(TEMPFAIL, result.describe())
        detail = "ipfw table %s" % self.table
        if repairs:
            detail += " (repaired: %s)" % ", ".join(repairs)
        return status, detail

    def delete(self, address):
        result = self.tools.run("ipfw", "table", self.table, "delete", str(address))
        if result.ok:
            return "unblocked", "ipfw table %s" % self.table
        if any(text in result.output for text in _NOTHING_THERE):
            return "was not blocked", "ipfw table %s" % self.table
        if not self.tools.run("sysctl", "-n", "net.inet.ip.fw.enable").ok:
            # ipfw.ko is not loaded (pf is FreeBSD's other firewall), so no
            # table of ours exists; its error text does not say so.
            return "was not blocked", "ipfw not loaded"
        raise failed(TEMPFAIL, result.describe())

    def members(self, version):
        result = self.tools.run("ipfw", "table", self.table, "list")
        if not result.ok:
            return set()            # no such table (or no ipfw): nothing of ours
        # "192.0.2.7/32 0": the entry, then its value.
        return addresses([line.partition(" ")[0] for line in result.output.splitlines()],
                         version)

    def _ensure_layout(self):
        repairs = []
        if not self.tools.run("ipfw", "table", self.table, "info").ok:
            self.tools.check("ipfw", "table", self.table, "create", "type", "addr")
            repairs.append("created table %s" % self.table)
        rule = ["deny", "ip", "from", "table(%s)" % self.table, "to", "any"]
        listing = self.tools.check("ipfw", "list").output
        if not any(line.split()[1:] == rule for line in listing.splitlines()):
            self.tools.check("ipfw", "add", self.rule_number, *rule)
            repairs.append("deny rule %s" % self.rule_number)
        return repairs
