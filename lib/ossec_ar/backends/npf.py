"""npf (NetBSD): one table of npf.conf, filled with npfctl(8).

Layout (table name configurable, ``ossec_blacklist`` as in the stock npf
variant), in /etc/npf.conf, written by the administrator::

    table <ossec_blacklist> type ipset
    group default { block in final from <ossec_blacklist> ... }

npfctl cannot create a table at run time, so a missing table fails the add
with exit 78 and the lines to add; an npf that is not active is exit 69.
"""

from ..exits import CONFIG, TEMPFAIL, failed
from .toolbox import Toolbox, addresses

# npfctl's errno texts (npfctl.c): EEXIST, ENOENT, and EINVAL, which for an
# address we have already validated can only mean the table ID.
_EXISTS = "entry already exists"
_ABSENT = "no matching entry"
_NO_TABLE = "invalid address, mask or table ID"
_NOT_LOADED = "cannot open '/dev/npf'"


class Backend:
    name = "npf"

    def __init__(self, settings):
        self.table = settings.npf_table
        self.tools = Toolbox("npfctl")

    def missing(self, address):
        return self.tools.missing()

    def inactive(self, address):
        result = self.tools.run("npfctl", "show")
        if not result.ok:
            return "npf is not usable (%s)" % result.describe()
        first = result.output.splitlines()[:1]
        if not first or first[0].split() != ["#", "filtering:", "active"]:
            return "npf is not active (start it with npfctl start)"
        return None

    def add(self, address):
        result = self.tools.run("npfctl", "table", self.table, "add", str(address))
        if result.ok:
            return "blocked", self._where()
        if _EXISTS in result.output:
            return "already blocked", self._where()
        if _NO_TABLE in result.output:
            raise failed(CONFIG, "npf has no table <%s>; add 'table <%s> type ipset' and,"
                          " in group default, 'block in final from <%s>' to /etc/npf.conf,"
                          " then run npfctl reload" % ((self.table,) * 3))
        raise failed(TEMPFAIL, result.describe())

    def delete(self, address):
        result = self.tools.run("npfctl", "table", self.table, "rem", str(address))
        if result.ok:
            return "unblocked", self._where()
        if any(text in result.output for text in (_ABSENT, _NO_TABLE, _NOT_LOADED)):
            return "was not blocked", self._where()
        raise failed(TEMPFAIL, result.describe())

    def members(self, version):
        result = self.tools.run("npfctl", "table", self.table, "list")
        if not result.ok:
            if any(text in result.output for text in (_NO_TABLE, _NOT_LOADED)):
                return set()
            raise failed(TEMPFAIL, result.describe())
        return addresses(result.output.split(), version)

    def _where(self):
        return "npf table <%s>" % self.table
