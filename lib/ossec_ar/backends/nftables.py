"""nftables: our own table with one address set per family.

Layout (table name configurable, default ``ossec``)::

    table inet ossec {
        set v4 { type ipv4_addr; }
        set v6 { type ipv6_addr; }
        chain input   { type filter hook input priority -10; ip saddr @v4 drop; ip6 saddr @v6 drop }
        chain forward { type filter hook forward priority -10; (the same two rules) }
    }

Priority -10 runs before the usual filter chains (iptables-nft and most
rulesets use 0).  Every add is one transaction that (re)declares the table
and sets, flushes our two chains and refills them (so a rule is never
duplicated and a flushed chain heals), and adds the element; either all of
it applies or none.  When a chain itself is missing, the transaction fails
and is sent again with the chains declared.  A ban is one hash-set
element, so the hundred-thousandth costs what the first did.

Two costs shaped this: any nft listing fetches every set element (350 ms at
100,000), so we never read the layout back; and changing a base chain's
rules costs about 13 ms of kernel commit here, so each add pays that, at
any size.  No iptables binary is involved.
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
            return commands.not_found("nft")
        return None

    def where(self, address):
        return "nftables table inet %s, set %s" % (self.table, _SETS[address.version])

    def add(self, address):
        element = "create element inet %s %s { %s }" % (
            self.table, _SETS[address.version], address)
        status = "blocked"
        result, created = self._apply([element])
        if not result.ok and "File exists" in result.output:
            # Already there; the failed transaction changed nothing, so
            # repair the layout on its own.
            status = "already blocked"
            result, created_now = self._apply([])
            created = created or created_now
        if not result.ok:
            raise failed(TEMPFAIL, _describe(result))
        return status, self.where(address) + (" (chains created)" if created else "")

    def delete(self, address):
        result = self._run(["delete element inet %s %s { %s }" % (
            self.table, _SETS[address.version], address)])
        if result.ok:
            return "unblocked", self.where(address)
        if any(absent in result.output for absent in _ABSENT):
            return "was not blocked", self.where(address)
        raise failed(TEMPFAIL, _describe(result))

    def members(self, version):
        import ipaddress
        import json
        result = commands.run([self._path, "-j", "list", "set", "inet", self.table,
                               _SETS[version]], self.wait + _GRACE)
        if not result.ok:
            if any(absent in result.output for absent in _ABSENT):
                return set()
            raise failed(TEMPFAIL, _describe(result))
        found = set()
        for item in json.loads(result.output)["nftables"]:
            for element in item.get("set", {}).get("elem", ()):
                if isinstance(element, str):
                    found.add(ipaddress.ip_address(element))
        return found

    def _apply(self, extra):
        """Our layout plus *extra* in one transaction: (result, chains created)."""
        result = self._run(self.layout(declare_chains=False) + extra)
        if result.ok or "No such file or directory" not in result.output:
            return result, False
        return self._run(self.layout() + extra), True

    def layout(self, declare_chains=True):
        table = "inet " + self.table
        script = ["add table " + table,
                  "add set %s v4 { type ipv4_addr; }" % table,
                  "add set %s v6 { type ipv6_addr; }" % table]
        for hook in ("input", "forward"):
            if declare_chains:
                script.append("add chain %s %s { type filter hook %s priority -10; "
                              "policy accept; }" % (table, hook, hook))
            script.append("flush chain %s %s" % (table, hook))
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
