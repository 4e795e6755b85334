"""ipset: one hash:ip set per family, matched by one iptables rule each.

Layout (set names configurable)::

    ipset create ossec4 hash:ip family inet  maxelem 1048576
    ipset create ossec6 hash:ip family inet6 maxelem 1048576
    iptables  -I INPUT|FORWARD 1 -m set --match-set ossec4 src -j DROP
    ip6tables -I INPUT|FORWARD 1 -m set --match-set ossec6 src -j DROP

With ``ipv6_prefix``, the IPv6 prefixes go into a set of their own, made
at the first prefix add with its two rules (and repaired as the others)::

    ipset create ossec6-net hash:net family inet6 maxelem 1048576
    ip6tables -I INPUT|FORWARD 1 -m set --match-set ossec6-net src -j DROP

Its name is the IPv6 set's with ``-net`` (the IPv6 set's name cut to fit
ipset's 31 characters).  A layout without it is whole: an address's add,
delete and check never look at it.

A ban is one set element: constant time to add and to match.  An add is
two calls when the layout is whole: one ``ipset restore`` (below) and one
``iptables-restore --noflush`` holding a ``-C`` line for each rule, which
fails if one is gone.

Our sets are exactly what we create: hash:ip, that family, that maxelem,
no timeout and no other option.  A set of that name made otherwise (whose
elements expire, or a net type where a delete cannot lift an address that a
wider element covers) is a broken layout: the add fails with exit 75 and a
line saying what the set is, and adds nothing.  The check costs no call of
its own: the add's ``ipset restore`` reads ``list -t NAME`` (the header),
then ``create NAME ... -exist`` (which the kernel refuses when the existing
set's type or options differ), then ``add NAME ADDR`` and ``list -t NAME``
again (the count of elements says whether the address was new); it stops
at the first line that fails, and the line number says which.  A full set fails
with ipset's own "Hash is full" and exit 75, never silently.  A delete
runs ``del`` and ``test`` in one ``ipset -`` batch: if the address still
matches after the delete, it is not "unblocked" but exit 75.  A prefix's
delete is one ``del`` (a wider prefix in that set is a block of ours of its
own, with a delete of its own).
"""

from ..address import Prefix
from ..commands import Result
from ..config import table_name
from ..exits import TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   Broken, addresses, blocks, repaired, unusable)
from .iptables import HOOKS, TOOLS, Table

MAXELEM = 1048576
NET_SUFFIX = "-net"
_NAME_MAX = 31          # IPSET_MAXNAMELEN, less its NUL
FAMILY = {4: "inet", 6: "inet6"}
_NO_SET = "set with the given name does not exist"
# Not in the set, no such set, or a kernel without ip_set.
_ABSENT = ("it's not added", "does not exist", "Protocol not supported")
_NO_KERNEL = ("Protocol not supported", "Cannot open session to kernel")
_HEADER_KEYS = ("Name", "Type", "Revision", "Header", "Size in memory", "References",
                "Number of entries")


class Backend(Base):
    settings = {"ipset_v4": ("ossec4", table_name), "ipset_v6": ("ossec6", table_name)}
    versions = {"ipset": ("--version",)}

    def set_name(self, version):
        return self.ipset_v4 if version == 4 else self.ipset_v6

    def net_set_name(self):
        """The IPv6 prefixes' set (``ipv6_prefix``)."""
        return self.ipset_v6[:_NAME_MAX - len(NET_SUFFIX)] + NET_SUFFIX

    def layout_sets(self, version):
        """(name, type) of each set of *version*'s layout that may exist:
        for IPv6, the prefixes' set too."""
        sets = [(self.set_name(version), "hash:ip")]
        if version == 6:
            sets.append((self.net_set_name(), "hash:net"))
        return sets

    def _set_of(self, target):
        """(name, type) of the set that holds *target*: an address, or a
        :class:`~ossec_ar.address.Prefix`."""
        if isinstance(target, Prefix):
            return self.net_set_name(), "hash:net"
        return self.set_name(target.version), "hash:ip"

    def add(self, address):
        name, kind = self._set_of(address)
        create = self._create_line(name, address.version, kind)
        add = "add %s %s\n" % (name, address.text)
        repairs = []
        # -exist, once given, holds for the lines after it too: "add" then
        # never says "already added", so the two headers' counts say it.
        listed = "list -t %s\n" % name
        result = self._restore(listed + create + " -exist\n" + add + listed)
        counts = _entry_counts(result)
        if _failed_at(result, 1) and _NO_SET in result.output:
            result = self._restore(create + "\n" + add)
            counts = [0, 1]
            repairs.append("created set %s" % name)
        elif _failed_at(result, 2):
            raise failed(TEMPFAIL, _not_ours(name, address.version, kind, result)
                         + _REMOVE_IT)
        status = self.sort(_errors_only(result), BLOCKED, ((unusable, _NO_KERNEL),))
        if len(counts) == 2 and counts[0] == counts[1]:
            status = ALREADY_BLOCKED
        if repairs or not self._rules_in_place(address.version, name):
            repairs += self._ensure_rules(address.version, name)
        return status, "ipset %s%s" % (name, repaired(repairs))

    def delete(self, address):
        """``del`` then ``test`` in one batch (``ipset -`` goes on after a
        failed line): an address still matched after the delete is covered
        by a wider element, and stays dropped.  A prefix: one ``del``."""
        if isinstance(address, Prefix):
            name = self.net_set_name()
            result = self.run("ipset", "del", name, address.text)
            return self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _ABSENT),)), "ipset %s" % name
        name = self.set_name(address.version)
        batch = "del {0} {1}\ntest {0} {1}\n".format(name, address.text)
        result = self.run("ipset", "-", input=batch.encode())
        if "%s is in set %s" % (address.text, name) in result.output:
            raise failed(TEMPFAIL, "ipset %s still matches %s after the delete: an element "
                         "wider than one address covers it" % (name, address.text))
        result = _errors_only(result)
        if not result.output:
            return UNBLOCKED, "ipset %s" % name
        return self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _ABSENT),)), "ipset %s" % name

    def _create_line(self, name, version, kind="hash:ip"):
        return "create %s %s family %s maxelem %d" % (name, kind, FAMILY[version], MAXELEM)

    def _restore(self, lines):
        return self.run("ipset", "restore", input=lines.encode())

    def members(self, version):
        """The set's addresses (and for IPv6 the prefixes' set's
        prefixes), where each set that exists is ours and both its match
        rules are in place; else Broken (its elements drop nothing, or may
        expire, or cover more than themselves)."""
        found = set()
        for name, kind in self.layout_sets(version):
            found |= self._set_members(version, name, kind)
        return found

    def _set_members(self, version, name, kind):
        state = self._kind(version, name, kind)
        if state is None:
            return set()
        if _firewalld_runs():
            raise Broken("set %s not counted: firewalld runs, and its ipsets have our "
                         "sets' names" % name)
        problems = [state] if state else self._rules_missing(version, name)
        if problems:
            raise Broken("%s: its elements are not counted as blocks" % ", ".join(problems))
        result = self.run("ipset", "list", name)
        if not result.ok:
            self.sort(result, None, ((None, _ABSENT),))
            return set()
        listed = result.output.split("Members:\n", 1)[-1].split()
        if kind == "hash:net":
            return {prefix for prefix in blocks(listed, version) if isinstance(prefix, Prefix)}
        return addresses(listed, version)

    # ossec-ar status, restore and list: never on the add's path.

    def _families(self):
        """The families whose tools are here."""
        return [version for version in (4, 6)
                if self.entry.missing(self.tools, version, self.sysname) is None]

    def _kind(self, version, name=None, kind="hash:ip"):
        """None where our set *name* (of *kind*; the family's addresses'
        set by default) does not exist, "" where it is ours, else what it
        is.  The add's own test, read only: ``list -t``, then
        ``create ... -exist``, which changes nothing where a set of that
        name exists (the kernel refuses it where the set is made otherwise)
        and is never reached where none does (restore stops at the first
        line that fails)."""
        name = name or self.set_name(version)
        result = self._restore("list -t %s\n%s -exist\n" % (
            name, self._create_line(name, version, kind)))
        if _failed_at(result, 1) and _NO_SET in result.output:
            return None
        if _failed_at(result, 2):
            return _not_ours(name, version, kind, result)
        self.sort(_errors_only(result), None, ((unusable, _NO_KERNEL),))
        return ""

    def _rules_missing(self, version, name=None):
        if _firewalld_runs():
            # Its ipsets may be kernel sets of our names, matched by its own
            # rules: not ours to judge or repair.
            return []
        name = name or self.set_name(version)
        rules = Table(self, TOOLS[version]).rules()
        rule = self._rule(name)
        return ["%s rule matching set %s missing from %s" % (TOOLS[version], name, hook)
                for hook in HOOKS if rule not in rules.get(hook, ())]

    def layout_state(self):
        """Whole, absent, or broken and how: read only."""
        if _firewalld_runs():
            return "not checked (firewalld runs, and its ipsets may have our sets' names)"
        repairable, refused, present = [], [], False
        for version in self._families():
            for name, kind in self.layout_sets(version):
                state = self._kind(version, name, kind)
                if state is None:
                    continue
                present = True
                if state:
                    refused.append(state)
                else:
                    repairable += self._rules_missing(version, name)
        if not present:
            return "absent"
        if not repairable and not refused:
            return "whole"
        parts = []
        if repairable:
            parts.append("%s (repaired by the next add or by ossec-ar restore)"
                         % ", ".join(repairable))
        if refused:
            parts.append("%s (every add fails with exit 75 until it is removed; the next "
                         "add then makes ours)" % ", ".join(refused))
        return "broken: " + "; ".join(parts)

    def verify(self):
        """For ``ossec-ar restore``: put back a match rule gone from a hook
        where our set exists (as an add does); a set of that name made
        otherwise is left as it is (it is not ours to destroy) and named
        with what to do.  None where nothing was found wrong."""
        if _firewalld_runs():
            return None         # (see _rules_missing)
        done, left = [], []
        for version in self._families():
            for name, kind in self.layout_sets(version):
                state = self._kind(version, name, kind)
                if state:
                    left.append(state + _REMOVE_IT)
                elif state == "":
                    done += self._ensure_rules(version, name)
        parts = (["repaired: " + ", ".join(done)] if done else []) + (
            ["left as it is: " + "; ".join(left)] if left else [])
        return "; ".join(parts) or None

    def _rule(self, name):
        return ["-m", "set", "--match-set", name, "src", "-j", "DROP"]

    def _rules_in_place(self, version, name):
        """One iptables-restore call: does each hook still have our rule?"""
        checks = "".join("-C %s %s\n" % (hook, " ".join(self._rule(name))) for hook in HOOKS)
        result = self.run(TOOLS[version] + "-restore", "-w", str(max(1, int(self.wait))),
                          "--noflush", input=("*filter\n%sCOMMIT\n" % checks).encode())
        return result.ok

    def _ensure_rules(self, version, name):
        table = Table(self, TOOLS[version])
        rule = self._rule(name)
        rules = table.rules()
        repairs = []
        for hook in HOOKS:
            if rule not in rules.get(hook, ()):
                table.change("-I", hook, "1", *rule)
                repairs.append("%s rule in %s" % (table.tool, hook))
        return repairs


def _firewalld_runs():
    from .. import system
    return system.daemon_running("firewalld")


_REMOVE_IT = ": remove it (and the iptables rules that use it); the next add makes ours"


def _not_ours(name, version, kind, result):
    return ("ipset %s is not the set we make (%s, family %s maxelem %d, nothing else) "
            "but %s" % (name, kind, FAMILY[version], MAXELEM, _found(result)))


def _failed_at(result, line):
    return not result.ok and ("Error in line %d:" % line) in result.output


def _entry_counts(result):
    return [int(line.split(": ", 1)[1]) for line in result.output.splitlines()
            if line.startswith("Number of entries: ")]


def _found(result):
    """What ``list -t`` said the set is: its type and header."""
    fields = dict(line.split(": ", 1) for line in result.output.splitlines()
                  if line.split(": ", 1)[0] in ("Type", "Header"))
    return "%s, %s" % (fields.get("Type", "?"), fields.get("Header", "?"))


def _errors_only(result):
    """*result* without the header lines of ``list -t`` and the prompts of
    ``ipset -``: what is left is the tools' messages."""
    lines = [line.replace("ipset> ", "") for line in result.output.splitlines()]
    kept = [line for line in lines if line.strip() and line.split(": ", 1)[0]
            not in _HEADER_KEYS and " is NOT in set " not in line]
    return Result(result.argv, result.returncode, "\n".join(kept))
