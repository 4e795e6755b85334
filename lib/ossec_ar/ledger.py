"""The ledger: what each program blocked and unblocked, and when.

One append-only file per program, ``<prefix>/var/db/ossec-ar-<program>.ledger``,
written under the program's own lock.  A record is one line:

    1 <unix time> <add|delete> <program> <address> <backend> <rule> <alert> <crc32>

Fields are escaped (``\\xNN`` for anything but printable ASCII other than
the backslash), and the CRC-32 of the rest of the line ends it.  Each record
goes to disk with one write(2) and is synced before the run ends, so a
crash or a full disk can cost the record being written, never an earlier
one.  A torn or damaged line is skipped on reading and reported; the next
append starts on a fresh line so that it cannot be glued to the debris.

The file is kept bounded: past :data:`LIMIT` bytes (or twice its size after
the last compaction, if that is more) it is rewritten, atomically, with
only the blocks that are still in force.  Writing the ledger never fails a
block: an error is returned, and the program adds it to its outcome line.
"""

import binascii
import os
import time

from .exits import Stop

VERSION = "1"
LIMIT = 1 << 20
_HEADER = "# compacted to "


class Record:
    __slots__ = ("time", "op", "program", "address", "backend", "rule", "alert")

    def __init__(self, time, op, program, address, backend="-", rule="-", alert="-"):
        self.time = time
        self.op = op
        self.program = program
        self.address = address
        self.backend = backend
        self.rule = rule
        self.alert = alert

    def line(self):
        fields = [VERSION, "%.3f" % self.time, self.op, self.program, self.address,
                  self.backend, self.rule, self.alert]
        text = " ".join(_escape(field) for field in fields)
        return "%s %08x\n" % (text, binascii.crc32(text.encode()))

    def __repr__(self):
        return "Record(%r)" % self.line()


def ledger_path(prefix, program):
    return os.path.join(prefix, "var", "db", "ossec-ar-%s.ledger" % program)


def record(prefix, program, op, address, backend="-", rule="-", alert="-"):
    """Append one record to *program*'s ledger; None, or what went wrong."""
    entry = Record(time.time(), op, program, str(address), backend or "-",
                   rule or "-", alert or "-")
    path = ledger_path(prefix, program)
    try:
        size = append(path, entry.line().encode())
    except OSError as error:
        return "ledger %s not written: %s" % (path, error.strerror)
    # The threshold is never below LIMIT: smaller ledgers (nearly every
    # run) skip reading the compaction header.
    if size > LIMIT and size > _threshold(path):
        try:
            compact(path)
        except OSError as error:        # the record itself is written
            return "ledger %s not compacted: %s" % (path, error.strerror)
        except Stop as stop:
            return "ledger not compacted: %s" % stop.reason
    return None


def append(path, data):
    """Append *data* as whole lines, synced; return the new size.

    On a failure the file is cut back to its old size, so that a full disk
    leaves no partial record behind.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    # Not O_APPEND: the program's lock already makes us the only writer, and
    # the end is found (and checked for a torn record) explicitly.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":   # and the next write goes at the end
                data = b"\n" + data       # after a torn record, a line of its own
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, os.strerror(28))      # ENOSPC, part written
            os.fdatasync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
        return size + len(data)
    finally:
        os.close(fd)


def read(path):
    """(records in order, [(line number, reason) of each line skipped])."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return [], []
    records, skipped = [], []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        skipped.append((len(lines), "torn (no end of line)"))
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if not raw or raw.startswith(_HEADER.encode()):
            continue
        entry, reason = _parse(raw)
        if entry is None:
            skipped.append((number, reason))
        else:
            records.append(entry)
    return records, skipped


def in_force(records):
    """{address: the Record that blocked it}, replaying adds and deletes;
    a block keeps the time of the add that started it."""
    blocks = {}
    for entry in records:
        if entry.op == "add":
            blocks.setdefault(entry.address, entry)
        elif entry.op == "delete":
            blocks.pop(entry.address, None)
    return blocks


def compact(path):
    """Rewrite the ledger with only the blocks in force, atomically."""
    from . import atomicfile
    records, _ = read(path)
    body = "".join(entry.line() for entry in
                   sorted(in_force(records).values(), key=lambda e: e.time))
    data = "%s%d\n%s" % (_HEADER, len(body), body)
    atomicfile.replace(path, data.encode())


def _threshold(path):
    """LIMIT, or twice the size of the last compaction if that is more: a
    ledger of many live blocks is not rewritten on every append."""
    try:
        with open(path, "rb") as stream:
            first = stream.readline(64).decode("ascii", "replace")
    except OSError:
        return LIMIT
    if first.startswith(_HEADER):
        try:
            return max(LIMIT, 2 * int(first[len(_HEADER):]))
        except ValueError:
            pass
    return LIMIT


def _parse(raw):
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None, "not ASCII"
    body, _, crc = text.rpartition(" ")
    if len(crc) != 8 or "%08x" % binascii.crc32(body.encode()) != crc:
        return None, "damaged (checksum)"
    fields = [_unescape(field) for field in body.split(" ")]
    if len(fields) != 8 or fields[0] != VERSION or fields[2] not in ("add", "delete"):
        return None, "not a version %s record" % VERSION
    try:
        when = float(fields[1])
    except ValueError:
        return None, "bad time"
    return Record(when, *fields[2:]), None


def _escape(field):
    out = []
    for char in field:
        if "!" <= char <= "~" and char != "\\":
            out.append(char)
        else:
            out.extend("\\x%02x" % byte for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out) or "-"


def _unescape(field):
    if "\\" not in field:
        return field
    data = bytearray()
    i = 0
    while i < len(field):
        if field.startswith("\\x", i) and i + 4 <= len(field):
            data.append(int(field[i + 2:i + 4], 16))
            i += 4
        else:
            data.extend(field[i].encode())
            i += 1
    return data.decode("utf-8", "surrogateescape")
