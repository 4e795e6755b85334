"""ipset: one hash:ip set per family, matched by one iptables rule each.

Layout (set names configurable)::

    ipset create ossec4 hash:ip family inet  maxelem 1048576
    ipset create ossec6 hash:ip family inet6 maxelem 1048576
    iptables  -I INPUT|FORWARD 1 -m set --match-set ossec4 src -j DROP
    ip6tables -I INPUT|FORWARD 1 -m set --match-set ossec6 src -j DROP

A ban is one set element: constant time to add and to match.  A set is
created only when missing, so one that the administrator made with other
options is used as it is; when it is full, the add fails with ipset's own
"Hash is full" and exit 75, never silently.
"""

from .. import commands
from ..exits import TEMPFAIL, failed
from .iptables import HOOKS, TOOLS, Table

MAXELEM = 1048576
FAMILY = {4: "inet", 6: "inet6"}
_GRACE = 30
# Not in the set, no such set, or a kernel without ip_set.
_ABSENT = ("it's not added", "does not exist", "Protocol not supported")


class Backend:
    name = "ipset"

    def __init__(self, settings):
        self.sets = {4: settings.ipset_v4, 6: settings.ipset_v6}
        self.wait = settings.lock_wait
        self._ipset = commands.find_tool("ipset")
        self._xtables = {version: commands.find_tool(tool)
                         for version, tool in TOOLS.items()}

    def missing(self, address):
        if self._ipset is None:
            return commands.not_found("ipset")
        if self._xtables[address.version] is None:
            return commands.not_found(TOOLS[address.version])
        return None

    def add(self, address):
        name = self.sets[address.version]
        repairs = []
        result = self._run("add", name, str(address))
        if "set with the given name does not exist" in result.output:
            self._check(self._run("create", name, "hash:ip", "family",
                                  FAMILY[address.version], "maxelem", str(MAXELEM)))
            repairs.append("created set %s" % name)
            result = self._run("add", name, str(address))
        if result.ok:
            status = "blocked"
        elif "already added" in result.output:
            status = "already blocked"
        else:
            raise failed(TEMPFAIL, result.describe())
        repairs += self._ensure_rules(address.version, name)
        detail = "ipset %s" % name
        if repairs:
            detail += " (repaired: %s)" % ", ".join(repairs)
        return status, detail

    def delete(self, address):
        name = self.sets[address.version]
        result = self._run("del", name, str(address))
        if result.ok:
            return "unblocked", "ipset %s" % name
        if any(absent in result.output for absent in _ABSENT):
            return "was not blocked", "ipset %s" % name
        raise failed(TEMPFAIL, result.describe())

    def members(self, version):
        import ipaddress
        result = self._run("list", self.sets[version])
        if not result.ok:
            if any(absent in result.output for absent in _ABSENT):
                return set()
            raise failed(TEMPFAIL, result.describe())
        listed = result.output.split("Members:\n", 1)[-1].split()
        return {ipaddress.ip_address(item) for item in listed}

    def _ensure_rules(self, version, name):
        table = Table(self._xtables[version], self.wait)
        rule = ["-m", "set", "--match-set", name, "src", "-j", "DROP"]
        rules = table.rules()
        repairs = []
        for hook in HOOKS:
            if rule not in rules.get(hook, ()):
                table.change("-I", hook, "1", *rule)
                repairs.append("%s rule in %s" % (table.tool, hook))
        return repairs

    def _run(self, *args):
        return commands.run([self._ipset] + list(args), self.wait + _GRACE)

    @staticmethod
    def _check(result):
        if not result.ok:
            raise failed(TEMPFAIL, result.describe())
