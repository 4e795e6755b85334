"""``ossec-ar metrics``: the blocks and the last failures, for Prometheus.

The text is Prometheus' text exposition format (version 0.0.4), the one
node_exporter's textfile collector reads from ``*.prom`` files.  Every
metric is a gauge (none of these is a count that only grows: those would
be ``_total`` counters), named ``ossec_ar_`` and in base units:

- ``ossec_ar_blocks_in_force``, ``ossec_ar_blocks_lost``,
  ``ossec_ar_blocks_unknown``, ``ossec_ar_blocks_not_ours`` {program,
  backend}: the rows of ``ossec-ar list``, counted by state; with
  ``ipv6_prefix``, each address counts (in its prefix's state), and a
  prefix only when no address of the ledger holds it (``counted``);
- ``ossec_ar_oldest_block_age_seconds`` {program}: the oldest block in force;
- ``ossec_ar_last_failed_timestamp_seconds``,
  ``ossec_ar_last_refused_timestamp_seconds``: the date of the last
  outcome line that says "failed" or "refused", read from no more than the
  last :data:`LOG_TAIL` bytes of active-responses.log (a log of gigabytes
  costs what a small one does); absent when none is there;
- ``ossec_ar_ledger_size_bytes`` {program}.

``--output FILE`` replaces the file atomically (:func:`publish`), so that
the collector never reads half of it.
"""

import calendar
import os
import re
import time

from . import log, safefile
from .exits import IOERR, RESOURCE_ERRORS, TEMPFAIL, failed

LOG_TAIL = 1 << 20
STATES = (("in force", "ossec_ar_blocks_in_force",
           "Blocks that the ledger holds and the firewall or hosts.deny shows."),
          ("lost", "ossec_ar_blocks_lost",
           "Blocks that the ledger holds and the firewall or hosts.deny no longer "
           "shows (ossec-ar restore puts them back)."),
          ("unknown", "ossec_ar_blocks_unknown",
           "Blocks the host shows that the ledger does not know, or that the ledger "
           "holds where they cannot be checked now."),
          ("not ours", "ossec_ar_blocks_not_ours",
           "Blocks that an add found already made by someone else, as the ledger "
           "records them: a delete leaves them in place."))

_MONTHS = {name: number for number, name in enumerate(log._MONTHS, 1)}
# An outcome line, as cli.outcome_line and ossec-ar write it after the
# date: the program's path has no space (log.escape), so no argument of an
# invocation line, where the attacker's text goes, can look like one.
_OUTCOME = re.compile(r"(?P<date>[A-Z][a-z]{2} (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
                      r"(?P<hms>\d\d:\d\d:\d\d) (?P<zone>[A-Za-z]+) (?P<year>\d{4})"
                      r"|(?P<wazuh>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)) \S+: \S+ \S+: "
                      r"(?P<status>failed|refused)(?:: .*)? \(exit \d+\)$")


def exposition(rows, ledger_sizes, last, now):
    """The metrics' text: *rows* as ``ossec-ar list --json`` has them,
    *ledger_sizes* {program: bytes}, *last* {"failed"|"refused": time or
    None}, *now* the time ages are measured at."""
    out = []
    rows = counted(rows)
    for state, name, text in STATES:
        counts = {}
        for row in rows:
            if row["state"] == state:
                key = (row["program"], _backend(row))
                counts[key] = counts.get(key, 0) + 1
        out += _family(name, text, [({"program": program, "backend": backend}, count)
                                    for (program, backend), count in sorted(counts.items())])
    oldest = {}
    for row in rows:
        if row["state"] == "in force" and row["since"] is not None:
            oldest[row["program"]] = min(row["since"], oldest.get(row["program"], row["since"]))
    out += _family("ossec_ar_oldest_block_age_seconds", "Age of the oldest block in force "
                   "(0 for one dated in the future).",
                   [({"program": program}, max(0.0, now - since))
                    for program, since in sorted(oldest.items())])
    for status in ("failed", "refused"):
        out += _family("ossec_ar_last_%s_timestamp_seconds" % status,
                       "Time of the last outcome line that says %s, in the last %d bytes "
                       "of active-responses.log; absent when there is none."
                       % (status, LOG_TAIL),
                       [] if last.get(status) is None else [({}, last[status])])
    out += _family("ossec_ar_ledger_size_bytes", "Size of each program's ledger.",
                   [({"program": program}, size)
                    for program, size in sorted(ledger_sizes.items())])
    return "".join(out)


def counted(rows):
    """The rows that count as blocks: every address the ledger holds (an
    address whose block is a prefix counts once, in its prefix's state),
    and what the host alone shows; a prefix that the ledger's addresses
    hold is counted through them, never again on its own."""
    held = {(row["program"], row.get("prefix")) for row in rows if row.get("prefix")}
    return [row for row in rows if row.get("kind") != "prefix"
            or (row["program"], row["address"]) not in held]


def _backend(row):
    """The backend that made the block (the ledger's), else where it is."""
    return row["backend"] if row["backend"] != "-" else row["where"]


def _family(name, text, samples):
    lines = ["# HELP %s %s\n" % (name, text), "# TYPE %s gauge\n" % name]
    for labels, value in samples:
        inside = ",".join('%s="%s"' % (key, _label_value(labels[key]))
                          for key in sorted(labels))
        lines.append("%s%s %s\n" % (name, "{%s}" % inside if inside else "", _number(value)))
    return lines


def _label_value(text):
    """A label value as the format escapes it (backslash, quote, newline);
    the rest made printable, as every field we show."""
    text = log.printable(str(text))
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value):
    if isinstance(value, int) or float(value).is_integer():
        return "%d" % value
    return "%.3f" % value


# The log's end

def last_outcomes(path, limit=LOG_TAIL):
    """{"failed": time or None, "refused": time or None}: the dates of the
    last such outcome lines in the last *limit* bytes of the log at *path*,
    which is opened as every file in the ossec user's ``logs/`` (no link
    followed, no FIFO waited on, a file of its directory's owner).  A log
    that is absent has none; one that cannot be used stops the command (74)."""
    found = {"failed": None, "refused": None}
    try:
        fd, info, _, _ = safefile.open_shared(path, os.O_RDONLY)
    except FileNotFoundError:
        return found
    except OSError as error:
        raise failed(TEMPFAIL if error.errno in RESOURCE_ERRORS else IOERR,
                     "cannot read %s: %s" % (path, error.strerror))
    try:
        start = max(0, info.st_size - limit)
        # One byte before the tail says whether it begins a line: if not,
        # its first line began earlier and is dropped.
        whole = start == 0 or os.pread(fd, 1, start - 1) == b"\n"
        os.lseek(fd, start, os.SEEK_SET)
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not whole:
        data = data.partition(b"\n")[2]
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        match = _OUTCOME.match(line)
        if match:
            when = _time_of(match)
            if when is not None:
                found[match.group("status")] = when
    return found


def _time_of(match):
    """Seconds since the epoch of a matched line's date, or None.  The C
    date names its zone: UTC is read as such, any other as local time in
    the daylight-saving state whose abbreviation it is.  Wazuh's date is
    local time."""
    try:
        if match.group("wazuh"):
            return time.mktime(time.strptime(match.group("wazuh"), "%Y/%m/%d %H:%M:%S"))
        month = _MONTHS.get(match.group("month"))
        if month is None:
            return None
        hour, minute, second = (int(part) for part in match.group("hms").split(":"))
        fields = (int(match.group("year")), month, int(match.group("day")), hour, minute,
                  second, 0, 0)
        zone = match.group("zone")
        if zone in ("UTC", "GMT"):
            return calendar.timegm(fields + (0,))
        for dst in (0, 1):
            when = time.mktime(fields + (dst,))
            if time.localtime(when).tm_zone == zone:
                return when
        return time.mktime(fields + (-1,))
    except (ValueError, OverflowError):
        return None


# --output

def publish(path, text):
    """Make *text* the content of *path*, atomically: a new file in the same
    directory, written, synced and renamed over the old one, then the
    directory synced.  The textfile collector reads either the old file or
    the new one, never half of one.

    We run as root, and the directory may be writable by others (the
    collector's user; a mistaken path in the ossec user's ``logs/``).  What
    is at *path* now is opened as every such file (``safefile.open_file``:
    no link followed, a FIFO never waited on) and must be a regular file
    with one name, or the command stops with exit 74, nothing written.
    Nothing is ever written through it: the rename replaces the name, so
    what a link or a second name points at is never touched.  The new file
    is created exclusively (``O_EXCL | O_NOFOLLOW``) under a name nobody can
    predict, mode 0644 for the collector."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    try:
        fd, _, _ = safefile.open_file(path, os.O_RDONLY)
        os.close(fd)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise _refused(path, error)
    temp = os.path.join(directory, ".%s.ossec-ar-%s.%d" % (name, os.urandom(6).hex(),
                                                            os.getpid()))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise _refused(path, error)
    try:
        view = memoryview(text.encode("utf-8"))
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o644)
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(temp, path)
    except OSError as error:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise _refused(path, error)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass            # written and renamed; only its durability is the system's


def _refused(path, error):
    return failed(TEMPFAIL if error.errno in RESOURCE_ERRORS else IOERR,
                  "cannot write %s: %s; nothing written" % (path, error.strerror))
