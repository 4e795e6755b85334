"""nftables: our own table with one address set per family.

Layout (table name configurable, default ``ossec``)::

    table inet ossec {
        set v4 { type ipv4_addr; }
        set v6 { type ipv6_addr; }
        chain input   { type filter hook input priority -10; ip saddr @v4 drop; ip6 saddr @v6 drop }
        chain forward { type filter hook forward priority -10; (the same two rules) }
    }

Priority -10 runs before the usual filter chains (iptables-nft and most
rulesets use 0).  A ban is one element of a hash set, so the
hundred-thousandth costs what the first did.

An add where the layout is whole runs no nft at all: over netlink
(nfnetlink.py) it checks that our chains are on their hooks and hold our
rules and nothing else, asks for the element ("already blocked" is the
kernel's own answer) and adds it, each in a fraction of a millisecond.  A
delete asks for the element and deletes it.  nft would cost 4 ms a run
before doing anything, fetches every set element before it shows a
chain's rules (half a second at 100,000), and a failed batch (adding what
is there, deleting what is not) costs the kernel 16 ms.  Whenever netlink
says something is missing or changed, or gives no answer, the add goes
through nft: the element, and if the layout is not whole, the layout
applied again in one transaction that (re)declares the table and sets,
flushes our chains and refills them, so that a rule is never duplicated
and a flushed chain heals.  No iptables binary is involved.
"""

from .. import nfnetlink
from ..config import table_name
from ..exits import TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   addresses, unusable)

_SETS = {4: "v4", 6: "v6"}
_MATCH = {4: "ip saddr @v4", 6: "ip6 saddr @v6"}
_HOOKS = ("input", "forward")
# Each chain's rules as nfnetlink reads them back: the two of _MATCH, drop.
_RULES = [("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup v4", "verdict drop"),
          ("meta nfproto", "cmp eq 0a", "payload network 8 16", "lookup v6", "verdict drop")]
_MISSING = "No such file or directory"
_EXISTS = "File exists"
# A kernel without nf_tables (netlink answers EPROTONOSUPPORT): no add can
# work, so auto goes on to the next backend.
_NO_KERNEL = "Protocol not supported"
# What a delete or a listing may meet where no table of ours can exist.
_NOTHING_THERE = (_MISSING, _NO_KERNEL, "Operation not supported")


class Backend(Base):
    settings = {"nft_table": ("ossec", table_name)}
    versions = {"nft": ("--version",)}

    def where(self, address):
        return "nftables table inet %s, set %s" % (self.nft_table, _SETS[address.version])

    def add(self, address):
        whole = self._whole()
        if whole:
            status = self._quick(address, "add")
            if status is not None:
                return status, self.where(address)
        element = "create element inet %s %s { %s }" % (
            self.nft_table, _SETS[address.version], address)
        result = self._nft([element])
        status = ALREADY_BLOCKED if _EXISTS in result.output else BLOCKED
        created = False
        if _MISSING in result.output:
            # Part of the layout is gone (nothing was applied): the whole
            # layout, with the element.
            result, created = self._apply([element])
            if not result.ok and _EXISTS in result.output:
                status = ALREADY_BLOCKED
                result, created_now = self._apply([])
                created = created or created_now
            self._succeeded(result)
        elif result.ok or status == ALREADY_BLOCKED:
            if not whole:
                result, created = self._apply([])      # a chain gone, flushed or changed
                self._succeeded(result)
        else:
            self._succeeded(result)
        return status, self.where(address) + (" (chains created)" if created else "")

    def delete(self, address):
        status = self._quick(address, "delete")
        if status is not None:
            return status, self.where(address)
        result = self._nft(["delete element inet %s %s { %s }" % (
            self.nft_table, _SETS[address.version], address)])
        status = self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _NOTHING_THERE),))
        return status, self.where(address)

    def _quick(self, address, action):
        """The add (to a whole layout) or delete over netlink, when the
        answers are the expected ones; None sends it through nft."""
        def element(action):
            return nfnetlink.element(action, self.nft_table, _SETS[address.version],
                                     address.packed, timeout=self.timeout)
        try:
            present = element("get")
            if present not in (0, nfnetlink.ENOENT):
                return None                     # a kernel without the get (before 4.15)
            if action == "add":
                if present == 0:
                    return ALREADY_BLOCKED
                return {0: BLOCKED, nfnetlink.EEXIST: ALREADY_BLOCKED}.get(element("add"))
            if present == nfnetlink.ENOENT:     # table, set or element
                return NOT_BLOCKED
            return {0: UNBLOCKED, nfnetlink.ENOENT: NOT_BLOCKED}.get(element("delete"))
        except nfnetlink.NetlinkError:
            return None

    def _whole(self):
        """True if the kernel says our chains are on their hooks at priority
        -10 and hold our rules and nothing else."""
        try:
            chains = nfnetlink.chains(self.nft_table, timeout=self.timeout)
            rules = nfnetlink.rules(self.nft_table, timeout=self.timeout)
        except nfnetlink.NetlinkError:
            return False        # cannot tell: applying the layout again is always safe
        return all(chains.get(hook) == "filter hook %s priority -10 policy accept" % hook
                   and rules.get(hook) == _RULES for hook in _HOOKS)

    def verify(self):
        """The add's check, for ``ossec-ar restore``, which repairs a layout
        no add has met since it broke.  None if it was whole or was never
        made, else what was done."""
        tables = self._nft(["list tables inet"])
        if "table inet " + self.nft_table not in tables.output.splitlines():
            self.sort(tables, None, ((None, _NOTHING_THERE),))
            return None          # not ours to make here: no add ever used it
        if self._whole():
            return None
        result, created = self._apply([])
        self._succeeded(result)
        return "chains created" if created else "chains refilled"

    def members(self, version):
        import json
        result = self.run("nft", "-j", "list", "set", "inet", self.nft_table, _SETS[version])
        if not result.ok:
            self.sort(result, None, ((None, _NOTHING_THERE),))
            return set()
        elements = []
        for item in json.loads(result.output)["nftables"]:
            elements += [e for e in item.get("set", {}).get("elem", ()) if isinstance(e, str)]
        return addresses(elements, version)

    def _apply(self, extra):
        """Our layout plus *extra* in one transaction: (result, chains created)."""
        result = self._nft(self.layout(declare_chains=False) + extra)
        if result.ok or _MISSING not in result.output:
            return result, False
        return self._nft(self.layout() + extra), True

    def layout(self, declare_chains=True):
        table = "inet " + self.nft_table
        script = ["add table " + table,
                  "add set %s v4 { type ipv4_addr; }" % table,
                  "add set %s v6 { type ipv6_addr; }" % table]
        for hook in _HOOKS:
            if declare_chains:
                script.append("add chain %s %s { type filter hook %s priority -10; "
                              "policy accept; }" % (table, hook, hook))
            else:       # an existing chain's policy, which a hand may have set to drop
                script.append("chain %s %s { policy accept; }" % (table, hook))
            script.append("flush chain %s %s" % (table, hook))
            script += ["add rule %s %s %s drop" % (table, hook, _MATCH[version])
                       for version in (4, 6)]
        return script

    def _nft(self, script):
        # One argument holding every command: nft applies it as one
        # transaction.  nft has no lock to wait for; the timeout is a backstop.
        return self.run("nft", "; ".join(script))

    def _succeeded(self, result):
        if result.ok:
            return
        if _NO_KERNEL in result.output:
            unusable(self, result)
        raise failed(TEMPFAIL, _describe(result))


def _describe(result):
    """nft echoes the whole script with carets under the fault; keep its
    error lines only."""
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    if not errors:
        return result.describe()
    how = ("timed out" if result.returncode is None
           else "exited %d" % result.returncode)
    return "nft %s: %s" % (how, " / ".join(errors))
