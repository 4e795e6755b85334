"""npf (NetBSD): one table of npf.conf, filled with npfctl(8).

Layout (table name configurable, ``ossec_blacklist`` as in the stock npf
variant), in /etc/npf.conf, written by the administrator::

    table <ossec_blacklist> type ipset
    group default { block in final from <ossec_blacklist> ... }

npfctl cannot create a table at run time, so a missing table fails the add
with exit 78 and the lines to add; an npf that is not active is exit 69.
"""

from ..config import table_name
from ..exits import CONFIG, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base, Op,
                   addresses)

# npfctl's errno texts (npfctl.c): EEXIST, ENOENT, and EINVAL, which for an
# address we have already validated can only mean the table ID.
_EXISTS = "entry already exists"
_ABSENT = "no matching entry"
_NO_TABLE = "invalid address, mask or table ID"
_NOT_LOADED = "cannot open '/dev/npf'"


def _no_table(backend, result):
    raise failed(CONFIG, "npf has no table <%s>; add 'table <%s> type ipset' and, in"
                 " group default, 'block in final from <%s>' to /etc/npf.conf, then run"
                 " npfctl reload" % ((backend.npf_table,) * 3))


class Backend(Base):
    settings = {"npf_table": ("ossec_blacklist", table_name)}

    ADD = Op("npfctl", ("table", "{npf_table}", "add", "{address}"), BLOCKED,
             (ALREADY_BLOCKED, (_EXISTS,)), (_no_table, (_NO_TABLE,)))
    DELETE = Op("npfctl", ("table", "{npf_table}", "rem", "{address}"), UNBLOCKED,
                (NOT_BLOCKED, (_ABSENT, _NO_TABLE, _NOT_LOADED)))

    def inactive(self, address):
        result = self.run("npfctl", "show")
        if not result.ok:
            return "npf is not usable (%s)" % result.describe()
        first = result.output.splitlines()[:1]
        if not first or first[0].split() != ["#", "filtering:", "active"]:
            return "npf is not active (start it with npfctl start)"
        return None

    def add(self, address):
        return self.ADD(self, address), self._where()

    def delete(self, address):
        return self.DELETE(self, address), self._where()

    def members(self, version):
        result = self.run("npfctl", "table", self.npf_table, "list")
        if self.sort(result, None, ((NOT_BLOCKED, (_NO_TABLE, _NOT_LOADED)),)) is None:
            return addresses(result.output.split(), version)
        return set()

    def _where(self):
        return "npf table <%s>" % self.npf_table
