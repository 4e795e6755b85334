"""ipset: one hash:ip set per family, matched by one iptables rule each.

Layout (set names configurable)::

    ipset create ossec4 hash:ip family inet  maxelem 1048576
    ipset create ossec6 hash:ip family inet6 maxelem 1048576
    iptables  -I INPUT|FORWARD 1 -m set --match-set ossec4 src -j DROP
    ip6tables -I INPUT|FORWARD 1 -m set --match-set ossec6 src -j DROP

A ban is one set element: constant time to add and to match.  An add is
two calls when the layout is whole: ``ipset add`` (whose answer says
whether the address was there already) and one ``iptables-restore
--noflush`` holding a ``-C`` line for each rule, which fails if one is
gone.  A set is created only when missing, so one that the administrator
made with other options is used as it is; when it is full, the add fails
with ipset's own "Hash is full" and exit 75, never silently.
"""

from ..config import table_name
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   addresses, unusable)
from .iptables import HOOKS, TOOLS, Table

MAXELEM = 1048576
FAMILY = {4: "inet", 6: "inet6"}
_NO_SET = "set with the given name does not exist"
# Not in the set, no such set, or a kernel without ip_set.
_ABSENT = ("it's not added", "does not exist", "Protocol not supported")
_NO_KERNEL = ("Protocol not supported", "Cannot open session to kernel")


class Backend(Base):
    settings = {"ipset_v4": ("ossec4", table_name), "ipset_v6": ("ossec6", table_name)}
    versions = {"ipset": ("--version",)}

    def set_name(self, version):
        return self.ipset_v4 if version == 4 else self.ipset_v6

    def add(self, address):
        name = self.set_name(address.version)
        repairs = []
        result = self.run("ipset", "add", name, address.text)
        if _NO_SET in result.output:
            self.check("ipset", "create", name, "hash:ip", "family", FAMILY[address.version],
                       "maxelem", str(MAXELEM))
            repairs.append("created set %s" % name)
            result = self.run("ipset", "add", name, address.text)
        status = self.sort(result, BLOCKED, ((ALREADY_BLOCKED, ("already added",)),
                                             (unusable, _NO_KERNEL)))
        if repairs or not self._rules_in_place(address.version, name):
            repairs += self._ensure_rules(address.version, name)
        detail = "ipset %s" % name
        if repairs:
            detail += " (repaired: %s)" % ", ".join(repairs)
        return status, detail

    def delete(self, address):
        name = self.set_name(address.version)
        result = self.run("ipset", "del", name, address.text)
        return self.sort(result, UNBLOCKED, ((NOT_BLOCKED, _ABSENT),)), "ipset %s" % name

    def members(self, version):
        result = self.run("ipset", "list", self.set_name(version))
        if not result.ok:
            self.sort(result, None, ((None, _ABSENT),))
            return set()
        return addresses(result.output.split("Members:\n", 1)[-1].split(), version)

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
