"""iptables and ip6tables: one DROP rule per address in a chain of our own.

Layout (OSSEC 4.3 adopted the same): chain ``OSSEC`` (configurable) holding
``-s ADDR -j DROP`` rules, jumped to from position 1 of INPUT and FORWARD;
with ``ipv6_prefix``, ip6tables' chain holds ``-s 2001:db8:1:2::/64 -j
DROP`` too, one rule per prefix, beside the /128 rules and never mistaken
for one.  Every add re-creates whatever of that layout is missing, so a
flushed firewall heals at the next ban.  A delete removes one copy of our
rule from our chain, and the stock scripts' rules in INPUT and FORWARD
only where ``ossec-ar adopt`` recorded them at install (the ledger's
``iptables:INPUT``): a rule of that form put there later is an
administrator's, and stays.

The chain holds our DROP rules and nothing that could take a packet out
of it before them: a rule whose target is not DROP, REJECT, LOG or NFLOG
(a RETURN, an ACCEPT, a jump elsewhere) is deleted by the next add, which
names it in its outcome line, and by ``ossec-ar restore``.  An
administrator's own DROP of a network in our chain stays.  Until then
``ossec-ar list`` counts only the rules before such a rule as in force.
The check reads the listing the add makes anyway: no extra call.

One ``iptables -S`` listing per run gives the chain, the jumps and the rules
at once; it is cheaper than a ``-C`` per item, and what we then change is
decided from one consistent view (the run holds our lock).  The listing has
the same format under iptables-legacy and iptables-nft.  Its cost grows
with the chain, which is why ``auto`` prefers the set layouts.
"""

import shlex
import time

from ..address import Prefix
from ..config import chain_name
from ..exits import TEMPFAIL, failed
from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base
from .base import addresses, blocks, repaired

HOOKS = ("INPUT", "FORWARD")
TOOLS = {4: "iptables", 6: "ip6tables"}
_HOST_BITS = {4: "/32", 6: "/128"}
_RESOURCE_PROBLEM = 4   # the xtables lock, or a concurrent nftables update
# Targets after which a packet can go nowhere but to a drop or to the next rule.
_KEEPS_PACKETS_IN = frozenset(("DROP", "REJECT", "LOG", "NFLOG"))


class Backend(Base):
    settings = {"chain": ("OSSEC", chain_name)}
    versions = {"iptables": ("--version",), "ip6tables": ("--version",)}

    def add(self, address):
        table = self.table(address.version)
        rules = table.rules()
        repairs = self._ensure_layout(table, rules)
        drop = _drop_rule(address)
        if drop in rules.get(self.chain, ()):
            status = ALREADY_BLOCKED
        else:
            table.change("-A", self.chain, *drop)
            status = BLOCKED
        return status, "%s chain %s%s" % (table.tool, self.chain, repaired(repairs))

    def delete(self, address):
        """One copy of our rule from our chain: a copy that an administrator
        put beside it stays."""
        return self._delete_copies(address, (self.chain,))

    def delete_stock(self, address, places):
        """The copies of the stock rule that ``adopt`` found in INPUT and
        FORWARD (*places*, one item per copy)."""
        return self._delete_copies(address, [place for place in places if place in HOOKS])

    def _delete_copies(self, address, chains):
        """One copy of our rule from each of *chains* (a chain named twice
        loses two), as far as there are copies."""
        table = self.table(address.version)
        rules = table.rules()
        drop = _drop_rule(address)
        removed = []
        for chain in sorted(set(chains), key=((self.chain,) + HOOKS).index):
            count = min(chains.count(chain), rules.get(chain, []).count(drop))
            for _ in range(count):
                table.change("-D", chain, *drop)
            if count:
                removed.append("%d from %s" % (count, chain))
        if not removed:
            return NOT_BLOCKED, "%s: no rule for it in %s" % (
                table.tool, ", ".join(sorted(set(chains), key=chains.index)))
        return UNBLOCKED, "%s: removed %s" % (table.tool, ", ".join(removed))

    def stock_members(self, version):
        """The stock scripts' ``-s IP -j DROP`` rules in INPUT and FORWARD."""
        if self.tools.find(TOOLS[version]) is None:
            return {}
        rules = self.table(version).rules()
        found = {}
        for hook in HOOKS:
            for rule in rules.get(hook, ()):        # each copy: each is a stock add's
                if len(rule) == 4 and rule[0] == "-s" and rule[2:] == ["-j", "DROP"]:
                    for address in addresses([rule[1]], version):
                        found.setdefault(address, []).append(hook)
        return found

    def members(self, version):
        """Our single-address rules, and IPv6 prefix rules, that packets
        reach: an IPv4 network an administrator put in our chain by hand,
        or an IPv6 one wider than a /48, is not one of our blocks (a
        narrower one is listed as a prefix, which the ledger calls ours or
        not), and a rule after one that lets packets out of the chain
        blocks nothing."""
        rules = self.table(version).rules()
        reached = []
        for rule in rules.get(self.chain, ()):
            if lets_packets_out(rule):
                break
            reached.append(rule)
        return blocks([rule[1] for rule in reached
                       if len(rule) == 4 and rule[0] == "-s"
                       and rule[2:] == ["-j", "DROP"]], version)

    def verify(self):
        """For ``ossec-ar restore``: repair each family's layout where our
        chain exists (it is never created here)."""
        done = []
        for version, tool in sorted(TOOLS.items()):
            if self.tools.find(tool) is None:
                continue
            table = self.table(version)
            rules = table.rules()
            if self.chain in rules:
                prefix = "" if version == 4 else tool + ": "
                done += [prefix + repair for repair in self._ensure_layout(table, rules)]
        return "repaired: " + ", ".join(done) if done else None

    def table(self, version):
        return Table(self, TOOLS[version])

    def _ensure_layout(self, table, rules):
        repairs = []
        if self.chain not in rules:
            table.change("-N", self.chain)
            rules[self.chain] = []
            repairs.append("created chain %s" % self.chain)
        repairs += self._remove_rules_letting_packets_out(table, rules[self.chain])
        jump = ["-j", self.chain]
        for hook in HOOKS:
            positions = [i for i, rule in enumerate(rules.get(hook, ())) if rule == jump]
            if positions == [0]:
                continue
            if positions[:1] == [0]:
                stale = positions[1:]
            else:
                # Insert first, then remove the old copies, so that there is
                # no moment without a jump.
                table.change("-I", hook, "1", *jump)
                stale = [i + 1 for i in positions]
            for index in reversed(stale):
                table.change("-D", hook, str(index + 1))
            repairs.append("jump from %s%s" % (hook, " moved to the top"
                                               if positions else ""))
        return repairs

    def _remove_rules_letting_packets_out(self, table, chain_rules):
        """Delete, by number and from the last, each rule of our chain that
        could let a packet out before our DROPs; *chain_rules* is updated."""
        removed = []
        for index in reversed(range(len(chain_rules))):
            if lets_packets_out(chain_rules[index]):
                table.change("-D", self.chain, str(index + 1))
                removed.insert(0, "removed a rule not ours from chain %s: %s"
                               % (self.chain, " ".join(chain_rules.pop(index))))
        return removed


def lets_packets_out(rule):
    """Whether a rule (its words after ``-A CHAIN``) may end a packet's
    walk through our chain other than by dropping it: its target is not one
    of _KEEPS_PACKETS_IN, or it is a goto.  A rule without a target only
    counts packets.  Our own ``-s ADDR -j DROP`` is decided without parsing."""
    if rule[-2:] == ["-j", "DROP"]:
        return False
    try:
        words = shlex.split(" ".join(rule))
    except ValueError:          # quoting we cannot read: assume the worst
        return True
    if "-g" in words or "--goto" in words:
        return True
    for flag in ("-j", "--jump"):
        if flag in words:
            position = words.index(flag) + 1
            return position >= len(words) or words[position] not in _KEEPS_PACKETS_IN
    return False


def _drop_rule(target):
    """The rule as ``iptables -S`` prints it, which is also how we add it:
    of an address (``/32``, ``/128``) or of a prefix (its own length)."""
    if isinstance(target, Prefix):
        return ["-s", target.text, "-j", "DROP"]
    return ["-s", target.text + _HOST_BITS[target.version], "-j", "DROP"]


class Table:
    """The filter table through one tool, with -w and bounded retries."""

    def __init__(self, backend, tool):
        self.backend = backend
        self.tool = tool

    def rules(self):
        """{chain: [rule words after '-A CHAIN', ...]} for user and hook chains."""
        rules = {}
        for line in self._call("-S").output.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("-N", "-A"):
                chain = rules.setdefault(words[1], [])
                if words[0] == "-A":
                    chain.append(words[2:])
        return rules

    def change(self, *args):
        self._call(*args)

    def _call(self, *args):
        # Only a busy lock or a concurrent update (exit 4) is worth another
        # try; anything else would fail the same way again.  Each try waits
        # for the xtables lock what is left of our own wait.
        deadline = time.monotonic() + self.backend.wait
        pause = 0.05
        while True:
            wait = max(1, int(deadline - time.monotonic() + 0.999))
            result = self.backend.run(self.tool, "-w", str(wait), *args)
            if result.ok:
                return result
            if (result.returncode != _RESOURCE_PROBLEM
                    or time.monotonic() + pause >= deadline):
                raise failed(TEMPFAIL, result.describe())
            time.sleep(pause)
            pause *= 2
