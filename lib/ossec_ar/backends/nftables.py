"""nftables: our own table with one address set per family.

Layout (table name configurable, default ``ossec``)::

    table inet ossec {
        set v4 { type ipv4_addr; }
        set v6 { type ipv6_addr; }
        chain input   { type filter hook input priority -10; ip saddr @v4 drop; ip6 saddr @v6 drop }
        chain forward { type filter hook forward priority -10; (the same two rules) }
    }

Priority -10 runs before the usual filter chains (iptables-nft and most
rulesets use 0).  Every add sends the whole layout and the new element as
one transaction: ``add`` of a table, set or chain is idempotent, our two
chains are flushed and refilled (so a rule is never duplicated), and either
all of it applies or none.  A ban is one hash-set element, so the
ten-thousandth costs what the first did.  No iptables binary is involved.
"""

from .. import commands
from ..exits import TEMPFAIL, failed

_SETS = {4: "v4", 6: "v6"}
_MATCH = {4: "ip saddr @v4", 6: "ip6 saddr @v6"}
_GRACE = 30
# No such element, set or table; or a kernel without nf_tables, where no
# table of ours can exist.
_ABSENT = ("No such file or directory", "Operation not supported",
           "Protocol not supported")


class Backend:
    name = "nftables"

    def __init__(self, settings):
        self.table = settings.nft_table
        self.wait = settings.lock_wait
        self._path = commands.find_tool("nft")

    def missing(self, address):
        if self._path is None:
            return "nft not found in %s" % ", ".join(commands.TOOL_DIRS)
        return None

    def where(self, address):
        return "nftables table inet %s, set %s" % (self.table, _SETS[address.version])

    def add(self, address):
        element = "create element inet %s %s { %s }" % (
            self.table, _SETS[address.version], address)
        result = self._run(self.layout() + [element])
        if result.ok:
            return "blocked", self.where(address)
        if "File exists" not in result.output:
            raise failed(TEMPFAIL, _describe(result))
        # Already there; the failed transaction changed nothing, so repair
        # the layout on its own.
        result = self._run(self.layout())
        if not result.ok:
            raise failed(TEMPFAIL, _describe(result))
        return "already blocked", self.where(address)

    def delete(self, address):
        result = self._run(["delete element inet %s %s { %s }" % (
            self.table, _SETS[address.version], address)])
        if result.ok:
            return "unblocked", self.where(address)
        if any(absent in result.output for absent in _ABSENT):
            return "was not blocked", self.where(address)
        raise failed(TEMPFAIL, _describe(result))

    def layout(self):
        table = "inet " + self.table
        script = ["add table " + table,
                  "add set %s v4 { type ipv4_addr; }" % table,
                  "add set %s v6 { type ipv6_addr; }" % table]
        for hook in ("input", "forward"):
            script += [
                "add chain %s %s { type filter hook %s priority -10; policy accept; }"
                % (table, hook, hook),
                "flush chain %s %s" % (table, hook)]
            script += ["add rule %s %s %s drop" % (table, hook, _MATCH[version])
                       for version in (4, 6)]
        return script

    def _run(self, script):
        # One argument holding every command: nft applies it as one
        # transaction.  nft has no lock to wait for; the bound is a backstop.
        return commands.run([self._path, "; ".join(script)], self.wait + _GRACE)


def _describe(result):
    """nft echoes the whole script with carets under the fault; keep its
    error lines only."""
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    if not errors:
        return result.describe()
    how = ("timed out" if result.returncode is None
           else "exited %d" % result.returncode)
    return "nft %s: %s" % (how, " / ".join(errors))
