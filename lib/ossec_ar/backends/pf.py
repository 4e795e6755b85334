"""pf (FreeBSD, OpenBSD, macOS): one table, filled with pfctl(8).

Layout (table name configurable, ``ossec_fwtable`` as in the stock pf
variant)::

    pfctl -t ossec_fwtable -T add 192.0.2.7      then pfctl -k 192.0.2.7

pf enforces a table only through a loaded rule that uses it.  When no
``block`` rule of the main ruleset does, and the ruleset offers the
``com.apple/*`` anchor point (macOS), our rule and table go into the anchor
``com.apple/ossec-ar``, loaded at run time.  Otherwise the add fails
with exit 78 and the two lines to put in pf.conf: adding to a table that
nothing reads would log "blocked" and block nothing.
"""

import re

from ..exits import CONFIG, TEMPFAIL, failed
from .toolbox import Toolbox, addresses

ANCHOR = "com.apple/ossec-ar"
_APPLE_ANCHOR_POINT = 'anchor "com.apple/*"'
_COUNT = re.compile(r"^(\d+)/(\d+) addresses (added|deleted)", re.M)
# pfctl's answers when nothing of ours can be there: pf not in the kernel,
# or no table (or anchor) of that name.
_NOTHING_THERE = ("/dev/pf: No such file or directory", "Table does not exist",
                  "Anchor does not exist")


class Backend:
    name = "pf"

    def __init__(self, settings):
        self.table = settings.pf_table
        self.tools = Toolbox("pfctl")

    def missing(self, address):
        return self.tools.missing()

    def inactive(self, address):
        result = self.tools.run("pfctl", "-s", "info")
        if not result.ok:
            return "pf is not usable (%s)" % result.describe()
        if not re.search(r"^Status: Enabled", result.output, re.M):
            return "pf is disabled (enable it with pfctl -e)"
        return None

    def add(self, address):
        anchor, notes = self._enforcing_anchor()
        result = self.tools.check("pfctl", *self._table(anchor, "add", str(address)))
        added = _count(result, "added")
        detail = self._where(anchor)
        # The table stops new connections; the address's open ones (an
        # attacker's live session) live on in pf's state table until killed.
        killed = self.tools.run("pfctl", "-k", str(address))
        if not killed.ok:
            raise failed(TEMPFAIL, "in %s, but its connections were not cut: %s"
                         % (detail, killed.describe()))
        found = re.search(r"killed (\d+) states", killed.output)
        if found and found.group(1) != "0":
            notes.append("killed %s states" % found.group(1))
        if notes:
            detail += " (%s)" % ", ".join(notes)
        return ("blocked" if added else "already blocked"), detail

    def delete(self, address):
        removed, absent = [], []
        for anchor in (None, ANCHOR):
            result = self.tools.run("pfctl", *self._table(anchor, "delete", str(address)))
            if not result.ok and any(text in result.output for text in _NOTHING_THERE):
                absent.append(self._where(anchor))
                continue
            if not result.ok:
                raise failed(TEMPFAIL, result.describe())
            (removed if _count(result, "deleted") else absent).append(self._where(anchor))
        if removed:
            return "unblocked", "; ".join(removed)
        return "was not blocked", self._where(None)

    def members(self, version):
        found = set()
        for anchor in (None, ANCHOR):
            result = self.tools.run("pfctl", *self._table(anchor, "show"))
            if not result.ok and any(text in result.output for text in _NOTHING_THERE):
                continue
            if not result.ok:
                raise failed(TEMPFAIL, result.describe())
            found |= addresses(result.output.split(), version)
        return found

    def _enforcing_anchor(self):
        """None when the main ruleset blocks our table, else the anchor we
        loaded for it; refuses (78) when neither can be done."""
        rules = self.tools.check("pfctl", "-s", "rules").output
        if _blocks_table(rules, self.table):
            return None, []
        if _APPLE_ANCHOR_POINT not in rules:
            raise failed(CONFIG, "pf has no loaded rule that blocks table <%s>, so adding"
                          " to it would block nothing; add these lines to /etc/pf.conf:"
                          " 'table <%s> persist' and 'block drop in quick from <%s> to"
                          " any', then run pfctl -f /etc/pf.conf"
                          % (self.table, self.table, self.table))
        if _blocks_table(self.tools.check("pfctl", "-a", ANCHOR, "-s", "rules").output,
                         self.table):
            return ANCHOR, []
        ruleset = ("table <%s> persist\nblock drop in quick from <%s> to any\n"
                   % (self.table, self.table))
        self.tools.check("pfctl", "-a", ANCHOR, "-f", "-", input=ruleset.encode())
        return ANCHOR, ["loaded anchor %s" % ANCHOR]

    def _table(self, anchor, command, *addresses):
        where = ["-a", anchor] if anchor else []
        return where + ["-t", self.table, "-T", command] + list(addresses)

    def _where(self, anchor):
        text = "pf table <%s>" % self.table
        return text + (" in anchor %s" % anchor if anchor else "")


def _blocks_table(rules, table):
    """True if a ``block`` rule of *rules* (pfctl -s rules) matches source <table>."""
    needle = ["from", "<%s>" % table]
    for line in rules.splitlines():
        words = line.split()
        if words[:1] == ["block"] and any(words[i:i + 2] == needle
                                           for i in range(len(words) - 1)):
            return True
    return False


def _count(result, verb):
    """How many addresses pfctl says it added or deleted (0 or 1 here)."""
    found = _COUNT.search(result.output)
    if found is None or found.group(3) != verb:
        raise failed(TEMPFAIL, "unexpected answer from " + result.describe())
    return int(found.group(1))
