"""The log is the interface: ``<prefix>/logs/active-responses.log``.

Each run appends an invocation line first and an outcome line last.  The
invocation line keeps the stock layout that OSSEC's ``ar_log`` decoder and
rules 600-606 parse; the outcome line has a colon right after the program
path so that the same decoder never takes it for an invocation.

Dates are built here rather than by ``strftime``: the stock scripts' ``date``
follows LANG/LC_TIME and then stops decoding (German month names, AM/PM, a
numeric zone such as ``+04``).
"""

import errno
import os
import time

from .safefile import open_shared

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONE_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_FULL = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)

# One argument is at most this many bytes in the log.  OSSEC's logcollector
# splits long lines, and the tail of a split line would be decoded on its
# own, so an attacker-sized argument could otherwise forge a line.
MAX_FIELD = 256


def c_date(now=None):
    """``Thu Jan 19 13:52:29 CET 2012`` in local time, whatever the locale.

    When the zone has no alphabetic abbreviation (tzdata writes ``+04`` for
    many zones) the time is given in UTC instead, which every decoder reads.
    """
    if now is None:
        now = _clock()
    tm = time.localtime(now)
    zone = tm.tm_zone or ""
    if not zone or not set(zone) <= _ZONE_LETTERS:
        tm = time.gmtime(now)
        zone = "UTC"
    return "%s %s %2d %02d:%02d:%02d %s %d" % (
        _DAYS[tm.tm_wday], _MONTHS[tm.tm_mon - 1], tm.tm_mday,
        tm.tm_hour, tm.tm_min, tm.tm_sec, zone, tm.tm_year)


def _clock():
    """Now, as a number localtime() takes.  Past 2262-04-11 time.time()
    fails (Python holds it in 64-bit nanoseconds) where time(2) still
    answers: the line is still dated, and the run then stops on the clock
    (ledger.now)."""
    try:
        return time.time()
    except OverflowError:
        return time.mktime(time.localtime())


def wazuh_date(now=None):
    """``2021/05/01 10:00:00`` in local time, as Wazuh's programs log."""
    tm = time.localtime(_clock() if now is None else now)
    return "%04d/%02d/%02d %02d:%02d:%02d" % (tm.tm_year, tm.tm_mon, tm.tm_mday,
                                              tm.tm_hour, tm.tm_min, tm.tm_sec)


def escape(text):
    """Make one argument safe to put in one field of one log line.

    Backslashes, spaces, control and other non-printable characters, and
    bytes that are not UTF-8 become backslash escapes, so the line keeps one
    field per argument and nothing can start a new line.
    """
    raw = os.fsencode(text)
    extra = ""
    if len(raw) > MAX_FIELD:
        extra = "...(%d bytes)" % len(raw)
        raw = raw[:MAX_FIELD]
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable() and " " not in text and "\\" not in text:
        return text + extra
    return "".join(_escape_char(ch) for ch in text) + extra


def _escape_char(ch):
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:          # an undecodable byte
        return "\\x%02x" % (code - 0xDC00)
    if ch == " " or not ch.isprintable():
        if code <= 0xFF:
            return "\\x%02x" % code
        return "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code
    return ch


def printable(text, limit=2000):
    """Escape what cannot be shown on one line; spaces stay as they are."""
    if len(text) > limit:
        text = text[:limit] + "...(%d characters)" % len(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(" " if ch == " " else _escape_char(ch) for ch in text)


class Log:
    """Appends whole lines to the log, or to syslog when the log fails.

    The file stays open between the invocation and the outcome line; every
    line goes out in one ``write`` on an ``O_APPEND`` descriptor, so lines of
    concurrent runs never interleave.

    ``logs/`` belongs to the ossec user, so the log is opened as
    ``safefile.open_shared`` says: a symbolic link, a FIFO, a second name
    of another file, or a file that is not the owner of ``logs/``'s is
    refused, and both lines go to syslog instead.  A log we
    create gets what OSSEC's installer gives it: mode 0660, and the owner
    and group of ``logs/``.
    """

    def __init__(self, path, ident, date=c_date):
        self.path = path
        self.ident = ident
        self.date = date
        self._fd = None
        self._error = None
        self._prepared = None

    def write(self, line):
        data = (self.date() + " " + line + "\n").encode("utf-8", "surrogateescape")
        if self._error is None:
            try:
                if self._fd is None:
                    self._fd = _open_log(self.path)
                written = os.write(self._fd, data)
                if written == len(data):
                    return
                self._error = "short write (%d of %d bytes)" % (written, len(data))
            except OSError as error:
                self._error = error.strerror or str(error)
        send_to_syslog(self.ident, "cannot write %s (%s): %s"
                       % (self.path, self._error, line))

    def prepare(self, line):
        """Make *line*, dated now, ready for :meth:`write_prepared`."""
        self._prepared = (self.date() + " " + line + "\n").encode("utf-8", "surrogateescape")

    def write_prepared(self):
        """Write the prepared line, if the log is open and took the lines
        before it; True if it was written.  Allocates nothing: for a run
        that memory ran out on while it put its outcome in words."""
        if self._fd is None or self._error is not None or self._prepared is None:
            return False
        try:
            return os.write(self._fd, self._prepared) == len(self._prepared)
        except OSError:
            return False

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


LOG_MODE = 0o660


def _open_log(path):
    # logs/ is the ossec user's: the log must be that user's file, never a
    # second name of one of root's (safefile.open_shared says why).
    fd, _, created, owner = open_shared(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                        LOG_MODE)
    if created:
        try:
            os.fchown(fd, owner.st_uid, owner.st_gid)
        except OSError:
            os.close(fd)
            raise
    return fd


# syslog(3) would block in send(2) while a stalled syslogd leaves its
# socket full, and hold the block back with it; ours never waits.
SYSLOG_SOCKETS = ("/dev/log", "/var/run/log", "/var/run/syslog")
_AUTHPRIV_ERR = 10 * 8 + 3          # facility authpriv, priority err
_MAX_DATAGRAM = 2048


def send_to_syslog(ident, text):
    """Send one message to the local syslog daemon, or drop it: never waits.

    Only reached when the log is unusable, so its import stays off the hot
    path.  A system whose syslog has no Unix socket (Solaris uses a STREAMS
    device) gets nothing.
    """
    import _socket
    tm = time.localtime()
    message = "<%d>%s %2d %02d:%02d:%02d %s[%d]: %s" % (
        _AUTHPRIV_ERR, _MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min,
        tm.tm_sec, ident, os.getpid(), text)
    data = message.encode("utf-8", "surrogateescape")[:_MAX_DATAGRAM]
    for path in SYSLOG_SOCKETS:
        for kind, end in ((_socket.SOCK_DGRAM, b""), (_socket.SOCK_STREAM, b"\0")):
            try:
                sock = _socket.socket(_socket.AF_UNIX, kind)
            except OSError:
                return
            try:
                sock.setblocking(False)
                sock.connect(path)
                sock.send(data + end)
                return
            except OSError as error:
                if error.errno in _FULL:
                    return              # there, but not taking messages now
            finally:
                sock.close()


def log_path(argv0):
    """``dirname(argv0)/../../logs/active-responses.log``, as the stock scripts."""
    bindir = os.path.dirname(argv0)
    return os.path.join(bindir, "..", "..", "logs", "active-responses.log")
