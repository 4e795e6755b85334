"""nftables: our own table with one address set per family.

Layout (table name configurable, default ``ossec``)::

    table inet ossec {
        set v4 { type ipv4_addr; }
        set v6 { type ipv6_addr; }
        chain input   { type filter hook input priority -10; ip saddr @v4 drop; ip6 saddr @v6 drop }
        chain forward { type filter hook forward priority -10; (the same two rules) }
    }

With ``ipv6_prefix`` (an IPv6 prefix blocked whole), one more set per
prefix length in use, made by the first add of such a prefix and kept
while it exists, with one more rule in each chain::

        set v6p64 { type ipv6_addr; }       # the prefixes' first addresses
        ip6 saddr & ffff:ffff:ffff:ffff:: @v6p64 drop

A prefix is then one element of a hash set, added, asked for and deleted
over netlink as an address is: no interval set, whose ranges a lone
address would be read into.

Priority -10 runs before the usual filter chains (iptables-nft and most
rulesets use 0).  A ban is one element of a hash set, so the
hundred-thousandth costs what the first did.

An add where the layout is whole runs no nft at all: over netlink
(nfnetlink.py) it checks that our table is awake, our sets are of our
type with no flags (a timeout would expire a ban, an interval set would
read a lone address as the start of a range), our chains are on their
hooks and hold our rules and nothing else, asks for the element ("already blocked" is the
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
from ..address import Prefix, parse_prefix
from ..config import table_name
from ..exits import TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   addresses, repaired, unusable)

_SETS = {4: "v4", 6: "v6"}
_MATCH = {4: "ip saddr @v4", 6: "ip6 saddr @v6"}
_HOOKS = ("input", "forward")
_PREFIX_SET = "v6p"         # + the prefix length: a set of prefixes of that length
# Each chain's rules as nfnetlink reads them back: the two of _MATCH, drop.
_RULES = [("meta nfproto", "cmp eq 02", "payload network 12 4", "lookup v4", "verdict drop"),
          ("meta nfproto", "cmp eq 0a", "payload network 8 16", "lookup v6", "verdict drop")]
_SET_TYPES = {4: "type ipv4_addr", 6: "type ipv6_addr"}     # as nfnetlink.sets says them
_CHAIN = "filter hook %s priority -10 policy accept"         # as nfnetlink.chains says it
_MISSING = "No such file or directory"
# What an add or a restore says when nft had to declare our chains.
_CREATED_CHAINS = "created chains input and forward"
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
        return "nftables table inet %s, set %s" % (self.nft_table, _set_of(address))

    def add(self, address):
        layout = self._read_layout(address)
        if layout is not None and layout.whole():
            status = self._quick(address, "add")
            if status is not None:
                return status, self.where(address)
        elif layout is not None:
            return self._repair_and_add(address, layout)
        return self._add_through_nft(address, whole=layout is not None)

    def _repair_and_add(self, address, layout):
        """One nft transaction that rebuilds what *layout* shows wrong and
        adds the element.  "Already blocked" only where the element sat in
        a set of ours that needed no rebuilding."""
        name = _set_of(address)
        status = BLOCKED
        if layout.sets.get(name) == _SET_TYPES[address.version]:
            try:
                if nfnetlink.element("get", self.nft_table, name, address.packed,
                                     timeout=self.timeout) == 0:
                    status = ALREADY_BLOCKED
            except nfnetlink.NetlinkError:
                pass
        self._succeeded(self._nft(self._repair_script(layout) + [
            "add element inet %s %s { %s }" % (self.nft_table, name, _element(address))]))
        return status, self.where(address) + repaired(self._rewritten(layout))

    def _add_through_nft(self, address, whole):
        """The add where netlink gave no usable answer."""
        element = "create element inet %s %s { %s }" % (
            self.nft_table, _set_of(address), _element(address))
        result = self._nft([element])
        status = ALREADY_BLOCKED if _EXISTS in result.output else BLOCKED
        created = False
        if _MISSING in result.output or not whole:
            lengths = self._lengths_through_nft(address)
        if _MISSING in result.output:
            # Part of the layout is gone (nothing was applied): the whole
            # layout, with the element.
            result, created = self._apply([element], lengths)
            if not result.ok and _EXISTS in result.output:
                status = ALREADY_BLOCKED
                result, created_now = self._apply([], lengths)
                created = created or created_now
            self._succeeded(result)
        elif result.ok or status == ALREADY_BLOCKED:
            if not whole:
                # a chain gone, flushed or changed
                result, created = self._apply([], lengths)
                self._succeeded(result)
        else:
            self._succeeded(result)
        return status, self.where(address) + repaired([_CREATED_CHAINS] if created else [])

    def delete(self, address):
        status = self._quick(address, "delete")
        if status is not None:
            return status, self.where(address)
        result = self._nft(["delete element inet %s %s { %s }" % (
            self.nft_table, _set_of(address), _element(address))])
        status = self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _NOTHING_THERE),))
        return status, self.where(address)

    def _quick(self, address, action):
        """The add (to a whole layout) or delete over netlink, when the
        answers are the expected ones; None sends it through nft."""
        def element(action):
            return nfnetlink.element(action, self.nft_table, _set_of(address),
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

    def _read_layout(self, target=None):
        """Our table as the kernel describes it over netlink (a _Layout),
        which must also hold the prefix set of *target* if it is a Prefix;
        None where netlink gives no answer."""
        wanted = _lengths_of([target])
        try:
            flags = nfnetlink.table_flags(self.nft_table, timeout=self.timeout)
            if flags is None:
                return _Layout(None, {}, {}, {}, wanted)
            return _Layout(flags, nfnetlink.chains(self.nft_table, timeout=self.timeout),
                           nfnetlink.rules(self.nft_table, timeout=self.timeout),
                           nfnetlink.sets(self.nft_table, timeout=self.timeout), wanted)
        except nfnetlink.NetlinkError:
            return None

    def _lengths_through_nft(self, target=None):
        """The prefix lengths whose sets our table holds, as nft lists them
        (no elements), and *target*'s: the layout applied through nft
        keeps their rules.  Asked only where netlink gave no answer."""
        lengths = _lengths_of([target])
        result = self.run("nft", "-t", "list", "sets", "inet")
        table = None
        for line in result.output.splitlines():
            words = line.split()
            if words[:2] == ["table", "inet"]:
                table = words[2] if len(words) > 2 else None
            elif words[:1] == ["set"] and len(words) > 1 and table == self.nft_table:
                lengths |= _lengths_of_names([words[1]])
        return lengths

    def _repair_script(self, layout):
        """nft commands that turn *layout* into ours: the table woken, our
        chains emptied, chains on another hook or priority and sets of another kind
        deleted (a set's single addresses come back, without timeouts),
        then everything declared and filled again."""
        table = "inet " + self.nft_table
        lengths = layout.lengths()
        present = [hook for hook in _HOOKS if hook in layout.chains]
        script = ["add table " + table]         # also wakes a dormant table
        script += ["flush chain %s %s" % (table, hook) for hook in present]
        script += ["delete chain %s %s" % (table, hook) for hook in present
                   if _hook_of(layout.chains[hook]) != _hook_of(_CHAIN % hook)]
        kept = []
        for name, version in _set_names(lengths):
            if layout.sets.get(name, _SET_TYPES[version]) != _SET_TYPES[version]:
                script.append("delete set %s %s" % (table, name))
                members = sorted(_element(a) for a in self._members_of(name, version))
                if members:
                    kept.append("add element %s %s { %s }" % (table, name,
                                                             ", ".join(members)))
        return script + self.layout(lengths=lengths) + kept

    def _rewritten(self, layout):
        """What the repair of *layout* rewrote, in words: the table made,
        where there was none, or each thing found wrong."""
        if layout.flags is None:
            return ["created table inet " + self.nft_table]
        # The first prefix of a length makes its set and rules: no repair.
        new = sorted(layout.wanted - _lengths_of_names(layout.sets))
        existing = _Layout(layout.flags, layout.chains, layout.rules, layout.sets)
        return existing.problems() + ["created set %s%d" % (_PREFIX_SET, n) for n in new]

    def layout_state(self):
        """What ``ossec-ar status`` says of our layout: whole, absent, broken
        (and how), or why it cannot tell.  Reads only."""
        layout = self._read_layout()
        if layout is None:
            return "cannot tell (no answer over netlink)"
        if layout.flags is None:
            return "absent"
        problems = layout.problems()
        if not problems:
            return "whole"
        return "broken: %s (repaired by the next add or by ossec-ar restore)" % (
            ", ".join(problems))

    def verify(self):
        """The add's check, for ``ossec-ar restore``, which repairs a layout
        no add has met since it broke.  None if it was whole or was never
        made, else what was done."""
        layout = self._read_layout()
        if layout is None:
            return self._verify_through_nft()
        if layout.flags is None or layout.whole():
            return None          # none: not ours to make here, no add ever used it
        self._succeeded(self._nft(self._repair_script(layout)))
        return "repaired: " + ", ".join(self._rewritten(layout))

    def _verify_through_nft(self):
        tables = self._nft(["list tables inet"])
        if "table inet " + self.nft_table not in tables.output.splitlines():
            self.sort(tables, None, ((None, _NOTHING_THERE),))
            return None
        result, created = self._apply([], self._lengths_through_nft())
        self._succeeded(result)
        return "repaired: " + (_CREATED_CHAINS if created
                               else "chains input and forward refilled")

    def members(self, version):
        """The addresses of *version* in our set, and for IPv6 the prefixes
        in our prefix sets (as Prefix)."""
        found = self._members_of(_SETS[version], version)
        if version == 6:
            try:
                names = nfnetlink.sets(self.nft_table, timeout=self.timeout)
            except nfnetlink.NetlinkError:
                names = ["%s%d" % (_PREFIX_SET, n) for n in self._lengths_through_nft()]
            for name, _ in _set_names(_lengths_of_names(names)):
                if name != _SETS[6]:
                    found |= self._members_of(name, 6)
        return found

    def _members_of(self, name, version):
        """The members of our set *name*: addresses, or in a prefix set
        the prefixes its elements start."""
        import json
        result = self.run("nft", "-j", "list", "set", "inet", self.nft_table, name)
        if not result.ok:
            self.sort(result, None, ((None, _NOTHING_THERE),))
            return set()
        elements = []
        for item in json.loads(result.output)["nftables"]:
            for element in item.get("set", {}).get("elem", ()):
                if isinstance(element, dict):       # one with a timeout; ranges are not ours
                    element = element.get("elem", {}).get("val")
                if isinstance(element, str):
                    elements.append(element)
        length = _lengths_of_names([name])
        if length:
            return {parse_prefix("%s/%d" % (element, min(length))) for element in elements} \
                - {None}
        return addresses(elements, version)

    def _apply(self, extra, lengths=frozenset()):
        """Our layout (with the prefix sets of *lengths*) plus *extra* in one
        transaction: (result, chains created)."""
        result = self._nft(self.layout(declare_chains=False, lengths=lengths) + extra)
        if result.ok or _MISSING not in result.output:
            return result, False
        return self._nft(self.layout(lengths=lengths) + extra), True

    def layout(self, declare_chains=True, lengths=frozenset()):
        """The nft commands of our layout, with a prefix set and its rules
        for each of *lengths*."""
        table = "inet " + self.nft_table
        script = ["add table " + table]
        script += ["add set %s %s { %s; }" % (table, name, _SET_TYPES[version])
                   for name, version in _set_names(lengths)]
        for hook in _HOOKS:
            if declare_chains:
                script.append("add chain %s %s { type filter hook %s priority -10; "
                              "policy accept; }" % (table, hook, hook))
            else:       # an existing chain's policy, which a hand may have set to drop
                script.append("chain %s %s { policy accept; }" % (table, hook))
            script.append("flush chain %s %s" % (table, hook))
            script += ["add rule %s %s %s drop" % (table, hook, _MATCH[version])
                       for version in (4, 6)]
            script += ["add rule %s %s ip6 saddr & %s @%s%d drop" % (
                table, hook, _mask(length).network, _PREFIX_SET, length)
                for length in sorted(lengths)]
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


def _set_of(target):
    """Our set that holds *target*: an address's family set, or the
    prefix set of a Prefix's length."""
    if isinstance(target, Prefix):
        return "%s%d" % (_PREFIX_SET, target.length)
    return _SETS[target.version]


def _element(target):
    """*target* as an element of its set: a prefix by its first address."""
    return target.network if isinstance(target, Prefix) else target.text


def _mask(length):
    """The netmask of a prefix *length*, as a Prefix of all ones."""
    return Prefix(b"\xff" * 16, length)


def _lengths_of(targets):
    return {target.length for target in targets if isinstance(target, Prefix)}


def _lengths_of_names(names):
    """The prefix lengths of the prefix sets among the set *names*."""
    found = set()
    for name in names:
        digits = name[len(_PREFIX_SET):]
        if name.startswith(_PREFIX_SET) and digits.isdigit() and 0 < int(digits) < 128 \
                and str(int(digits)) == digits:
            found.add(int(digits))
    return found


def _set_names(lengths):
    """[(set name, IP version)] of our layout with the prefix sets of *lengths*."""
    return [(_SETS[4], 4), (_SETS[6], 6)] + [
        ("%s%d" % (_PREFIX_SET, length), 6) for length in sorted(lengths)]


def _prefix_rule(length):
    """A prefix set's rule as nfnetlink reads it back."""
    return ("meta nfproto", "cmp eq 0a", "payload network 8 16",
            "bitwise " + _mask(length).packed.hex(), "lookup %s%d" % (_PREFIX_SET, length),
            "verdict drop")


class _Layout:
    """Our table as netlink read it: its flags (None: no table), chains,
    rules and sets as nfnetlink describes them; *wanted*, the prefix
    lengths an add needs beside those whose sets exist."""

    def __init__(self, flags, chains, rules, sets, wanted=frozenset()):
        self.flags, self.chains, self.rules, self.sets = flags, chains, rules, sets
        self.wanted = wanted

    def lengths(self):
        """The prefix lengths of our layout: those with a set, and the wanted."""
        return _lengths_of_names(self.sets) | set(self.wanted)

    def whole(self):
        return self.flags is not None and not self.problems()

    def problems(self):
        """Each thing that keeps a ban from dropping packets, in words."""
        if self.flags is None:
            return ["table missing"]
        found = ["table dormant"] if self.flags & nfnetlink.TABLE_DORMANT else []
        lengths = self.lengths()
        for name, version in _set_names(lengths):
            found += _differs("set", name, self.sets.get(name), _SET_TYPES[version])
        expected = _RULES + [_prefix_rule(length) for length in sorted(lengths)]
        for hook in _HOOKS:
            differs = _differs("chain", hook, self.chains.get(hook), _CHAIN % hook)
            rules = self.rules.get(hook, [])
            if not differs and rules != expected:
                differs = ["chain %s %s" % (hook, "held other rules" if rules else "empty")]
            found += differs
        return found


def _differs(kind, name, declared, ours):
    if declared is None:
        return ["%s %s missing" % (kind, name)]
    return [] if declared == ours else ["%s %s was %s" % (kind, name, declared)]


def _hook_of(declaration):
    """A chain's declaration without its policy, which a declaration can
    change in place; its type, hook and priority cannot be."""
    return declaration.rsplit(" policy ", 1)[0]


