"""pf (FreeBSD, OpenBSD, macOS): one table, filled with pfctl(8).

Layout (table name configurable, ``ossec_fwtable`` as in the stock pf
variant)::

    pfctl -t ossec_fwtable -T add 192.0.2.7      then pfctl -k 192.0.2.7

A table holds networks as well (pfctl(8)'s -T takes ``address/length``):
with ``ipv6_prefix`` an IPv6 prefix is one entry, ``2001:db8:1:2::/64``,
added, deleted and listed (``-T show``) in that form, and ``-k`` kills the
states of the whole network.  pf matches an entry exactly on delete, so a
prefix and a single address inside it are separate entries, each lifted
alone.

pf enforces a table only through a loaded rule that uses it.  When no
``block`` rule of the main ruleset does, and the ruleset offers the
``com.apple/*`` anchor point (macOS), our rule and table go into the anchor
``com.apple/ossec-ar``, loaded at run time.  Otherwise the add fails
with exit 78 and the two lines to put in pf.conf: adding to a table that
nothing reads would log "blocked" and block nothing.
"""

from ..config import table_name
from ..exits import CONFIG, TEMPFAIL, failed
from .base import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base,
                   blocks, repaired)

ANCHOR = "com.apple/ossec-ar"
_APPLE_ANCHOR_POINT = 'anchor "com.apple/*"'
# pfctl's answers when nothing of ours can be there: pf not in the kernel,
# or no table (or anchor) of that name.
_NOTHING_THERE = ("/dev/pf: No such file or directory", "Table does not exist",
                  "Anchor does not exist")


class Backend(Base):
    settings = {"pf_table": ("ossec_fwtable", table_name)}

    def inactive(self, address):
        result = self.run("pfctl", "-s", "info")
        if not result.ok:
            return "pf is not usable (%s)" % result.describe()
        if not any(line.startswith("Status: Enabled") for line in result.output.splitlines()):
            return "pf is disabled (enable it with pfctl -e)"
        return None

    def add(self, address):
        anchor, repairs = self._enforcing_anchor()
        result = self.check("pfctl", *self._table(anchor, "add", address.text))
        added = _count(result, "added")
        detail = self._where(anchor)
        notes = []
        # The table stops new connections; the address's open ones (an
        # attacker's live session) live on in pf's state table until killed.
        killed = self.run("pfctl", "-k", address.text)
        if not killed.ok:
            raise failed(TEMPFAIL, "in %s, but its connections were not cut: %s"
                         % (detail, killed.describe()))
        states = _number_before(killed.output, " states")
        if states:
            notes.append("killed %d states" % states)
        detail += repaired(repairs) + (" (%s)" % ", ".join(notes) if notes else "")
        return (BLOCKED if added else ALREADY_BLOCKED), detail

    def delete(self, address):
        removed, absent = [], []
        for anchor in (None, ANCHOR):
            result = self.run("pfctl", *self._table(anchor, "delete", address.text))
            gone = self.sort(result, None, ((NOT_BLOCKED, _NOTHING_THERE),)) == NOT_BLOCKED
            (absent if gone or not _count(result, "deleted") else removed).append(
                self._where(anchor))
        if removed:
            return UNBLOCKED, "; ".join(removed)
        return NOT_BLOCKED, self._where(None)

    def members(self, version):
        found = set()
        for anchor in (None, ANCHOR):
            result = self.run("pfctl", *self._table(anchor, "show"))
            if self.sort(result, None, ((NOT_BLOCKED, _NOTHING_THERE),)) is None:
                found |= blocks(result.output.split(), version)
        return found

    def _enforcing_anchor(self):
        """None when the main ruleset blocks our table, else the anchor we
        loaded for it; fails (78) when neither can be done."""
        rules = self.check("pfctl", "-s", "rules").output
        if _blocks_table(rules, self.pf_table):
            return None, []
        if _APPLE_ANCHOR_POINT not in rules:
            raise failed(CONFIG, "pf has no loaded rule that blocks table <%s>, so adding"
                         " to it would block nothing; add these lines to /etc/pf.conf:"
                         " 'table <%s> persist' and 'block drop in quick from <%s> to"
                         " any', then run pfctl -f /etc/pf.conf" % ((self.pf_table,) * 3))
        if _blocks_table(self.check("pfctl", "-a", ANCHOR, "-s", "rules").output,
                         self.pf_table):
            return ANCHOR, []
        ruleset = ("table <%s> persist\nblock drop in quick from <%s> to any\n"
                   % (self.pf_table, self.pf_table))
        self.check("pfctl", "-a", ANCHOR, "-f", "-", input=ruleset.encode())
        return ANCHOR, ["loaded anchor %s" % ANCHOR]

    def _table(self, anchor, command, *addresses):
        where = ["-a", anchor] if anchor else []
        return where + ["-t", self.pf_table, "-T", command] + list(addresses)

    def _where(self, anchor):
        text = "pf table <%s>" % self.pf_table
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
    """How many addresses pfctl says it added or deleted: "N/M addresses
    added." (0 or 1 here)."""
    for line in result.output.splitlines():
        words = line.split()
        if words[1:3] == ["addresses", verb + "."] and "/" in words[0]:
            count = words[0].split("/")[0]
            if count.isdigit():
                return int(count)
    raise failed(TEMPFAIL, "unexpected answer from " + result.describe())


def _number_before(text, words):
    """The number just before *words* in *text* ("killed 3 states from..."),
    or 0."""
    head, found, _ = text.partition(words)
    number = head.rsplit(" ", 1)[-1] if found else ""
    return int(number) if number.isdigit() else 0
