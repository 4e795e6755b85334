"""Our outcome lines as the OSSEC manager's alerts, read back for ``ossec-ar
fleet``.

Where analysisd writes them (src/analysisd/alerts/getloglocation.c and
src/monitord/ at OSSEC 7f06fe0): every alert goes to the day's file
``logs/alerts/<YYYY>/<Mon>/ossec-alerts-<DD>.log``, of which
``logs/alerts/alerts.log`` is a second name (a hard link, made again at
each new day).  After the day, monitord writes ``<that file>.gz`` and then
removes the plain file; while both exist, the ``.gz`` is still being
written.  So the day files are read oldest first, each day's plain file
rather than its ``.gz``, then ``alerts.log`` unless it is a day file
already read.  With a ``since``, the files of earlier days are not opened.

What an alert looks like (src/analysisd/alerts/log.c, OS_Log)::

    ** Alert <time>.<id>:[ mail ] - <groups>
    <YYYY> <Mon> <DD> <HH:MM:SS> <location>
    Rule: <id> (level <n>) -> '<description>'
    Src IP: <srcip>                       (only when the decoder gave one)
    <the event's line, cut at 1256 bytes>
    <blank line>

where the location of an agent's event is ``(<name>) <ip>-><file>`` and
that of the manager's own ``<host>-><file>``.  The event's line is the
attacker's: analysisd removes its control characters, so it is one line,
but it can say anything, "** Alert" and "Rule: 100611" included.  So:

- an alert starts only at the start of a file or after a blank line, and
  only a complete alert (its blank line read) is used: the manager may be
  writing the last one as we read;
- only the header lines that analysisd writes are read, and an alert is
  ours only when its group list holds ``ossec-ar`` and the group of its
  outcome (``GROUP_OF_STATUS``), its location is an
  ``active-responses.log``, and its event line is one of our outcome lines
  read from the start, as our decoder reads it; the address there must be
  the alert's ``Src IP``.  Nothing after the status word is used for a
  state.

Everything is streamed in chunks of CHUNK bytes; a stretch longer than
MAX_ALERT without a blank line (a sparse file's hole, garbage) is dropped,
so memory stays bounded whatever the files hold.
"""

import gzip
import os
import re
import stat
import zlib

from . import safefile

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
          "Dec")
_MONTH_NUMBER = {name.encode(): number for number, name in enumerate(MONTHS, 1)}
CHUNK = 1 << 20
# An alert is its header (a few hundred bytes), its event line (at most
# 1256 bytes) and, for rules that count events, their earlier lines: far
# below this.
MAX_ALERT = 1 << 20
_DAY_FILE = re.compile(r"^ossec-alerts-([0-9]{2})\.log(\.gz)?$")

# The header of an alert, its optional Src IP (and Src Location, in builds
# with GeoIP) and the line after them: the event's.  It starts at a blank
# line and ends before the event line's newline, so that the next alert's
# blank line is left for the next match.
_ALERT = re.compile(
    rb"\n\n\*\* Alert ([0-9]{1,20})\.([0-9]{1,20}):(?: mail )? - ([^\n]*)\n"
    rb"([0-9]{4}) ([A-Z][a-z]{2}) ([0-9]{2}) [0-9]{2}:[0-9]{2}:[0-9]{2} ([^\n]*)\n"
    rb"Rule: ([0-9]{1,10}) \(level ([0-9]{1,3})\) -> '[^\n]*'\n"
    rb"(?:Src IP: ([^\n]*)\n)?(?:Src Location: [^\n]*\n)?"
    rb"([^\n]*)(?=\n)")

# Our outcome line as the ossec-ar-outcome decoder reads it (OSSEC's
# ar_log first: a C date and a path up to its last /active-response), up
# to the status: ``<date> <prefix>/active-response/bin/<program>: <action>
# <address>: <status>``, then ``: <detail>`` or `` (exit <code>)``.
_OUTCOME = re.compile(
    rb"[A-Za-z0-9@_-]{3} [A-Za-z0-9@_-]+ +[0-9]+ [0-9]{2}:[0-9]{2}:[0-9]{2} "
    rb"[A-Za-z0-9@_-]+ [0-9]+ /[^ ]*/active-response/bin/([^ /]+): (add|delete|-) ([^ ]+): "
    rb"(blocked|already blocked|unblocked|was not blocked|not ours, left|usage|refused|"
    rb"failed)"
    rb"(?:: (.*?))?(?: \(exit ([0-9]{1,3})\))?$")

# The names our programs run as (the decoder's list), and the program whose
# blocks each one makes: a block is firewall-drop's or host-deny's, and
# unblock lifts both.
FIREWALL, HOSTS, UNBLOCK = "firewall-drop", "host-deny", "unblock"
_FAMILIES = {"firewall-drop": FIREWALL, "host-deny": HOSTS, "unblock": UNBLOCK,
             "firewalld-drop": FIREWALL, "nftables-drop": FIREWALL, "route-null": FIREWALL,
             "pf": FIREWALL, "ipfw": FIREWALL, "ipfw_mac": FIREWALL, "npf": FIREWALL}


def family(program):
    """The program (firewall-drop, host-deny, unblock) of a name execd ran
    (``firewall-drop.sh``, ``route-null``, ``ossec-ar-host-deny``), or None."""
    name = program[:-3] if program.endswith(".sh") else program
    if name.startswith("ossec-ar-"):
        name = name[len("ossec-ar-"):]
    return _FAMILIES.get(name)


# The state each outcome word gives, and the group our rule for it adds.
# "not ours, left": a delete found a block that someone else made (so the
# ledger says) and left it; the address may still be blocked, not by us.
STATE_OF_STATUS = {"blocked": "blocked", "already blocked": "blocked",
                   "unblocked": "lifted", "was not blocked": "lifted",
                   "not ours, left": "not ours",
                   "failed": "failed", "refused": "refused", "usage": "refused"}
GROUP_OF_STATUS = {"blocked": b"active_response_blocked",
                   "already blocked": b"active_response_blocked",
                   "unblocked": b"active_response_unblocked",
                   "was not blocked": b"active_response_unblocked",
                   "not ours, left": b"active_response_left",
                   "failed": b"active_response_failed", "refused": b"active_response_refused",
                   "usage": b"active_response_refused"}
_LOG_NAME = b"/active-responses.log"


def _text(raw):
    return raw.decode("utf-8", "surrogateescape")


class Outcome:
    """One outcome of ours, from one alert: where (``agent``: the agent's
    name, ``agent_ip``, or None for the manager itself with its host name
    in ``host``), what (``program`` as logged, its ``family``, ``action``,
    ``address`` as logged, ``status``, ``detail``, ``exit`` or None when
    the line was cut), and the alert (``time``, ``alert_id``, ``rule``,
    ``level``).  Text is str, undecodable bytes kept as surrogates."""

    __slots__ = ("time", "alert_id", "rule", "level", "agent", "agent_ip", "host", "program",
                 "family", "action", "address", "status", "detail", "exit")

    @property
    def state(self):
        return STATE_OF_STATUS[self.status]


def parse_alert(match):
    """The :class:`Outcome` of one alert matched by ``_ALERT``, or None when
    it is not one of ours."""
    (seconds, number, groups, year, month, day, location, rule, level, srcip,
     line) = match.groups()
    found = _OUTCOME.match(line)
    if found is None:
        return None
    program, action, address, status, detail, code = found.groups()
    status = status.decode()
    group_list = groups.split(b",")
    if b"ossec-ar" not in group_list or GROUP_OF_STATUS[status] not in group_list:
        return None
    if month not in _MONTH_NUMBER:
        return None
    # Our decoder gives the address as srcip; analysisd prints it as given.
    if srcip is None and address != b"-" or srcip is not None and srcip != address:
        return None
    where = _location(location)
    if where is None:
        return None
    outcome = Outcome()
    outcome.agent, outcome.agent_ip, outcome.host = where
    outcome.program = _text(program)
    outcome.family = family(outcome.program)
    if outcome.family is None:
        return None
    outcome.time = int(seconds)
    outcome.alert_id = (seconds + b"." + number).decode()
    outcome.rule = int(rule)
    outcome.level = int(level)
    outcome.action = action.decode()
    outcome.address = _text(address)
    outcome.status = status
    outcome.detail = _text(detail) if detail is not None else ""
    outcome.exit = int(code) if code is not None else None
    return outcome


def _location(raw):
    """(agent name, agent address, None) for ``(<name>) <ip>-><file>``,
    (None, None, host) for the manager's ``<host>-><file>``, where the
    file is an ``active-responses.log``; else None.  remoted writes the
    agent's part from client.keys; analysisd splits at the first ``->``."""
    arrow = raw.find(b"->")
    if arrow < 0 or not raw.endswith(_LOG_NAME):
        return None
    head = raw[:arrow]
    if head.startswith(b"("):
        close = head.rfind(b") ")
        if close < 1:
            return None
        return _text(head[1:close]), _text(head[close + 2:]), None
    return None, None, _text(head)


class Scanner:
    """Outcomes from a stream of alerts.log text fed in pieces of any size.

    *at_start*: the stream starts at an alert's start (a file's first byte).
    Only complete alerts are used; what follows the last blank line waits
    for the next piece, and is dropped at the end.
    """

    def __init__(self, at_start=True):
        self._rest = b"\n\n" if at_start else b""
        self.dropped = 0            # bytes that held no complete alert

    def feed(self, data):
        buf = self._rest + data if self._rest else data
        end = buf.rfind(b"\n\n")
        self._rest = buf[end:] if end >= 0 else buf
        if len(self._rest) > MAX_ALERT:
            # No alert is this long: garbage, or a hole.  Its last byte may
            # be a newline that starts a blank line.
            self.dropped += len(self._rest) - 1
            self._rest = self._rest[-1:]
        if end <= 0:
            return []
        found = []
        for match in _ALERT.finditer(buf, 0, end + 1):
            outcome = parse_alert(match)
            if outcome is not None:
                found.append(outcome)
        return found

    def end(self):
        """The stream ended: what is left is an alert still being written."""
        self.dropped += max(0, len(self._rest) - 2)
        self._rest = b""


# --- the files ---------------------------------------------------------------

def alerts_dir(prefix):
    return os.path.join(prefix, "logs", "alerts")


def live_file(prefix):
    return os.path.join(alerts_dir(prefix), "alerts.log")


def day_files(prefix, since_day=None, notes=None):
    """The day files under ``logs/alerts/``, oldest first, as (path, (year,
    month, day)); each day's plain file when it is there, else its .gz.
    Days before *since_day* (a (year, month, day)) are left out unopened.
    Directories that cannot be listed are noted in *notes*."""
    top = alerts_dir(prefix)
    found = {}
    for year in _listing(top, notes):
        if not _ascii_digits(year, 4):
            continue
        year_dir = os.path.join(top, year)
        if since_day and int(year) < since_day[0] or not os.path.isdir(year_dir):
            continue
        for month in _listing(year_dir, notes):
            if month not in MONTHS:
                continue
            month_dir = os.path.join(year_dir, month)
            number = MONTHS.index(month) + 1
            if since_day and (int(year), number) < since_day[:2] or \
                    not os.path.isdir(month_dir):
                continue
            for name in _listing(month_dir, notes):
                match = _DAY_FILE.match(name)
                if not match:
                    continue
                key = (int(year), number, int(match.group(1)))
                if since_day and key < since_day:
                    continue
                plain = match.group(2) is None
                if key not in found or plain:
                    found[key] = os.path.join(month_dir, name)
    return [(found[key], key) for key in sorted(found)]


def _ascii_digits(text, length):
    return len(text) == length and all("0" <= ch <= "9" for ch in text)


def _listing(directory, notes):
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as error:
        if notes is not None:
            notes.append("%s: cannot be listed: %s; its alerts were not read"
                         % (directory, error.strerror))
        return []


def open_alerts(path):
    """A descriptor and fstat for the alerts file *path*, which is the
    ossec user's in the ossec user's directory: no symbolic link followed,
    no FIFO or device opened (nor waited on), and a file that is not the
    directory owner's (a second name of someone else's file) refused.
    (alerts.log has two names by design, so the link count is not held
    against it.)"""
    try:
        fd = os.open(path, os.O_RDONLY | safefile.FLAGS)
    except OSError as error:
        raise safefile._explained(path, error)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise safefile.Unsafe(path, "is %s, not a regular file" % safefile._kind(
                info.st_mode))
        reason = safefile.foreign(info, os.stat(os.path.dirname(path)))
        if reason:
            raise safefile.Unsafe(path, reason)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def read_outcomes(path, notes, seen=None):
    """Every outcome in the alerts file *path* (plain or .gz), in order, as
    a generator.  A file that cannot be opened or read, or a .gz corrupt
    part way, is noted in *notes* (what came before is kept).  *seen*: a
    set of (device, inode) already read; a file in it is skipped, and one
    read is added."""
    try:
        fd, info = open_alerts(path)
    except FileNotFoundError:
        return
    except OSError as error:
        notes.append("%s: cannot be read: %s" % (path, error.strerror or error))
        return
    identity = (info.st_dev, info.st_ino)
    if seen is not None:
        if identity in seen:
            os.close(fd)
            return
        seen.add(identity)
    raw = os.fdopen(fd, "rb", buffering=0)
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
    scanner = Scanner()
    done = 0
    with raw, stream:
        while True:
            try:
                data = stream.read(CHUNK)
            except (OSError, EOFError, zlib.error) as error:
                notes.append("%s: unreadable after %d bytes (%s); the alerts before that "
                             "were read" % (path, done, error))
                break
            if not data:
                break
            done += len(data)
            for outcome in scanner.feed(data):
                yield outcome
    scanner.end()


class Follower:
    """New outcomes in alerts.log as the manager writes them (``fleet
    unblock --wait``): :meth:`poll` reads what was added since the last
    call, from the size the file had when this was made.  When the day
    changes and alerts.log becomes a new file, the new one is read from its
    start."""

    def __init__(self, prefix):
        self.path = live_file(prefix)
        self.notes = []
        self._fd = None
        self._identity = None
        self._scanner = None
        try:
            fd, info = open_alerts(self.path)
        except OSError as error:
            self.notes.append("%s: cannot be read: %s" % (self.path, error.strerror))
            return
        self._start(fd, info, info.st_size)

    def _start(self, fd, info, offset):
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._identity = fd, (info.st_dev, info.st_ino)
        # Two bytes back: the blank line that ends the alert before, if
        # the offset is an alert's start.
        os.lseek(fd, max(0, offset - 2), os.SEEK_SET)
        self._scanner = Scanner(at_start=offset == 0)

    def poll(self):
        found = []
        if self._fd is None:
            return found
        found += self._read()
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return found
        if (info.st_dev, info.st_ino) != self._identity:
            try:
                fd, info = open_alerts(self.path)
            except OSError:
                return found
            self._start(fd, info, 0)
            found += self._read()
        return found

    def _read(self):
        found = []
        while True:
            data = os.read(self._fd, CHUNK)
            if not data:
                return found
            found += self._scanner.feed(data)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
