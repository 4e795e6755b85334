"""The ledger: what each program blocked and unblocked, and when.

One append-only file per program, ``<prefix>/var/ossec-ar/<program>.ledger``
(in our root-only state directory), written under the program's own lock.  A record is one line:

    1 <unix time> <op> <program> <address> <backend> <rule> <alert> <crc32>
    2 <unix time> <op> <program> <address> <backend> <rule> <alert> <prefix> <crc32>

A version 2 record is one whose block is an IPv6 prefix (``ipv6_prefix``):
*address* is the attacker's address, *prefix* the network blocked for it
(``2001:db8:1:2::/64``).  Several addresses may hold one prefix; a delete
lifts it only with the last of them (:func:`prefix_holders`).  A record of
one address alone stays version 1, which earlier versions read.

The op says whose the block is, which decides what a delete may lift:

``add``
    one of our programs blocked the address (in *backend*).
``adopt``
    a block in the stock scripts' form that was there when ossec-ar was
    installed (``ossec-ar adopt``): ours to lift, as the stock delete
    that execd still owes it would have.  Its *backend* may name a place
    outside our layout (``iptables:INPUT``, ``route:stock``).
``found``
    an add found the address already blocked, by something that is not
    ours: its delete leaves it.
``delete``
    the address was lifted (or left, if it was not ours); it ends every
    record of the address before it.

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

Read back by ossec-ar, a ledger steers what it restores and expires, so it
is used only when it is trusted: a regular file owned by root, writable by
nobody else, in a directory only root can change (``safefile.untrusted``).
Version 0.1 kept the ledger in ``var/db/ossec-ar-<program>.ledger``; the
first record written moves a trusted old file to the new place.
"""

import binascii
import os
import time

from . import safefile, state
from .exits import CONFIG, TEMPFAIL, Stop, failed

VERSION = "1"
PREFIX_VERSION = "2"         # a record that carries a prefix
OPS = ("add", "adopt", "found", "delete")
# The ops of a block that is ours to lift.
OURS = ("add", "adopt")
LIMIT = 1 << 20
# Python holds the clock in signed 64-bit nanoseconds: time.time() fails
# past 2262-04-11, and no record can be later (nor a far later one shown).
LAST_TIME = (1 << 63) // 10 ** 9
_HEADER = "# compacted to "


def now():
    """The time a record would carry; a clock past :data:`LAST_TIME`
    stops the run (75) before anything is changed, since no record of the
    change could be written or read back."""
    try:
        return time.time()
    except OverflowError:
        raise failed(TEMPFAIL, "the system clock is past 2262-04-11, later than Python can"
                     " read it: set the clock")


class Record:
    __slots__ = ("time", "op", "program", "address", "backend", "rule", "alert", "prefix")

    def __init__(self, time, op, program, address, backend="-", rule="-", alert="-",
                 prefix="-"):
        self.time = time
        self.op = op
        self.program = program
        self.address = address
        self.backend = backend
        self.rule = rule
        self.alert = alert
        self.prefix = prefix        # "-": the address alone

    def line(self):
        fields = [VERSION, "%.3f" % self.time, self.op, self.program, self.address,
                  self.backend, self.rule, self.alert]
        if self.prefix != "-":
            fields[0] = PREFIX_VERSION
            fields.append(self.prefix)
        text = " ".join(_escape(field) for field in fields)
        return "%s %08x\n" % (text, binascii.crc32(text.encode()))

    def __repr__(self):
        return "Record(%r)" % self.line()


MODE = 0o600
# macOS has no fdatasync(2).
_datasync = getattr(os, "fdatasync", os.fsync)
# A ledger is read whole; this bounds what a damaged one can cost.
_READ_LIMIT = 1 << 28


def ledger_path(prefix, program):
    """Where *program*'s ledger is (the state directory is made and checked)."""
    return state.path(prefix, "%s.ledger" % program)


def legacy_path(prefix, program):
    """Where version 0.1 kept it."""
    return os.path.join(prefix, "var", "db", "ossec-ar-%s.ledger" % program)


def record(prefix, program, op, address, backend="-", rule="-", alert="-", when=None,
           network="-"):
    """Append one record to *program*'s ledger; None, or what went wrong.

    The caller holds *program*'s lock.  *when* is the record's time, if
    not now (a block put back in the ledger keeps its own); *network* the
    prefix blocked for *address*, if any.
    """
    entry = Record(time.time() if when is None else when, op, program, str(address),
                   backend or "-", rule or "-", alert or "-", str(network or "-"))
    return record_many(prefix, program, [entry])


def record_many(prefix, program, entries):
    """Append *entries* (Records) to *program*'s ledger in one write; None,
    or what went wrong."""
    if not entries:
        return None
    try:
        path = ledger_path(prefix, program)
    except Stop as stop:
        return "ledger not written: %s" % stop.reason
    try:
        adopt_legacy(prefix, program, path)
        size = append(path, "".join(entry.line() for entry in entries).encode())
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
    # Not O_APPEND: the program's lock already makes us the only writer, and
    # the end is found (and checked for a torn record) explicitly.
    fd, info, _ = safefile.open_file(path, os.O_RDWR | os.O_CREAT, MODE)
    try:
        if info.st_uid != 0:
            raise safefile.Unsafe(path, "is owned by uid %d, not root" % info.st_uid)
        size = info.st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":   # and the next write goes at the end
                data = b"\n" + data       # after a torn record, a line of its own
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, os.strerror(28))      # ENOSPC, part written
            _datasync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
        return size + len(data)
    finally:
        os.close(fd)


def adopt_legacy(prefix, program, path):
    """Move version 0.1's ledger to *path* if there is none there yet and
    the old one is trusted; an untrusted one is left where it is."""
    old = legacy_path(prefix, program)
    if os.path.lexists(path) or not os.path.lexists(old):
        return
    try:
        info = os.lstat(old)
    except FileNotFoundError:
        return
    if safefile.not_plain(info) or safefile.untrusted(old, info, prefix):
        return
    os.rename(old, path)


def read_trusted(prefix, program, notes=None):
    """(records, skipped lines) of *program*'s ledger as ossec-ar reads it;
    exit 78 when the file could have been written by someone but root.

    Until a run moves it, a 0.1 ledger is read in its old place, but only
    if root alone could have written it.  That place is ``var/db``, which
    Wazuh gives to its group: a file there that is not trusted is nobody's
    word but the group's, so it is ignored (with a line in *notes*), never
    a reason to stop.
    """
    path = ledger_path(prefix, program)
    legacy = not os.path.lexists(path) and os.path.lexists(legacy_path(prefix, program))
    if legacy:
        path = legacy_path(prefix, program)     # not yet moved by a run
    try:
        data, info = safefile.read_file(path, _READ_LIMIT)
    except OSError as error:
        if not legacy:
            raise failed(CONFIG, "ledger %s: %s" % (path, error.strerror))
        data, reason = None, "%s: %s" % (path, error.strerror)
    else:
        reason = None if data is None else safefile.untrusted(path, info, prefix)
    if reason and legacy:
        if notes is not None:
            notes.append("version 0.1's ledger ignored: %s; it is used only if root alone"
                         " could have written it" % reason)
        return [], []
    if reason:
        raise failed(CONFIG, "ledger not trusted: %s" % reason)
    if data is None:
        return [], []
    return parse(data)


def split_where(where):
    """(backend, place) of a record's backend field: place is None for our
    own layout, else the stock place outside it (``iptables:INPUT``)."""
    backend, colon, place = where.partition(":")
    if not colon or "/" in backend:         # host-deny's field is a path
        return where, None
    return backend, place


def backends_of(adds):
    """The backends of these records, each once, in their order."""
    found = []
    for entry in adds:
        backend, _ = split_where(entry.backend)
        if backend not in found:
            found.append(backend)
    return found


def since_delete(prefix, program, address):
    """The records of *address* since its last delete, latest first."""
    return list(_since(_latest(prefix, program, address)))


def adds_in_force(prefix, program, address):
    """Our blocks of *address* (add and adopt records) since its last
    delete, latest first: what a delete may lift."""
    return [entry for entry in since_delete(prefix, program, address) if entry.op in OURS]


def ours_in_force(prefix, program, address, backend, network="-"):
    """True if the ledger holds a block of ours of *address* in *backend*
    (its layout, or a stock place it adopted), or of the prefix *network*
    for any address: an add that finds it blocked there is "already
    blocked" by us, not by someone else."""
    if network != "-":
        return bool(prefix_holders(prefix, program, network, backend))
    return any(entry.op in OURS and split_where(entry.backend)[0] == backend
               and entry.prefix == "-" for entry in since_delete(prefix, program, address))


def prefix_holders(prefix, program, network, backend):
    """The addresses (texts, in the ledger's order) for which the ledger
    holds our block of the prefix *network* in *backend*: the prefix is
    lifted with the last of them."""
    data = _data(prefix, program)
    if not data:
        return []
    holders = []
    for entry in _matching(data, str(network)):
        if entry.prefix == str(network) and entry.address not in holders:
            holders.append(entry.address)
    holders.reverse()
    return [address for address in holders if any(
        entry.op in OURS and entry.prefix == str(network) and
        split_where(entry.backend)[0] == backend
        for entry in _since(_matching(data, address, exact=True)))]


def held_prefixes(prefix, program):
    """{prefix text: [addresses, in the ledger's order]} of every prefix
    that a block of ours in the ledger holds now, whatever its backend:
    what an administrator's unblock releases (``Program.release``)."""
    data = _data(prefix, program)
    if not data:
        return {}
    held = {}
    for address, entries in standing(parse(data)[0]).items():
        for entry in entries:
            if entry.op in OURS and entry.prefix != "-":
                holders = held.setdefault(entry.prefix, [])
                if address not in holders:
                    holders.append(address)
    return held


def _since(entries):
    """*entries* (latest first) up to the first delete."""
    for entry in entries:
        if entry.op == "delete":
            return
        yield entry


def _data(prefix, program):
    """The ledger's bytes, or None: a file that is not a plain one of
    root's is as good as none."""
    try:
        data, info = safefile.read_file(ledger_path(prefix, program), _READ_LIMIT)
    except (OSError, Stop):
        return None
    if not data or info.st_uid != 0:
        return None
    return data


def _latest(prefix, program, address):
    """*address*'s records, from the last one back.

    Read from the end, parsing only the lines where the address stands, so
    that it costs a delete little whatever the ledger's size.
    """
    data = _data(prefix, program)
    if data:
        yield from _matching(data, address.text, exact=True)


def _matching(data, text, exact=False):
    """The records of *data* before *end* with the field *text*, from the
    last one back; with *exact*, only those whose address it is."""
    needle = (" %s " % _escape(text)).encode()
    end = len(data)
    while True:
        found = data.rfind(needle, 0, end)
        if found < 0:
            return
        start = data.rfind(b"\n", 0, found) + 1
        stop = data.find(b"\n", found)
        entry, _ = _parse(data[start:stop if stop >= 0 else len(data)])
        if entry is not None and (not exact or entry.address == text):
            yield entry
        end = start


def read(path):
    """(records in order, [(line number, reason) of each line skipped]) of
    the ledger at *path*, trusted or not (for tests and compaction)."""
    data, _ = safefile.read_file(path, _READ_LIMIT)
    return parse(data) if data is not None else ([], [])


def parse(data):
    """(records in order, [(line number, reason) of each line skipped])."""
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
    """{address: the Record that blocked it}, replaying the records; a
    block keeps the time of the record that started it.  A block of ours
    (add, adopt) wins over a ``found`` one: the Record's op says whose the
    block is."""
    blocks = {}
    for address, entries in standing(records).items():
        ours = [entry for entry in entries if entry.op in OURS]
        blocks[address] = (ours or entries)[0]
    return blocks


def standing(records):
    """{address: [its records since its last delete, in order]}."""
    held = {}
    for entry in records:
        if entry.op == "delete":
            held.pop(entry.address, None)
        else:
            held.setdefault(entry.address, []).append(entry)
    return held


def compact(path):
    """Rewrite the ledger with only the blocks in force, atomically: for
    each address, the first record of each op, backend and prefix since its last
    delete (a block keeps its time, and every place it stands in)."""
    from . import atomicfile
    records, _ = read(path)
    kept = []
    for entries in standing(records).values():
        seen = set()
        for entry in entries:
            if (entry.op, entry.backend, entry.prefix) not in seen:
                seen.add((entry.op, entry.backend, entry.prefix))
                kept.append(entry)
    body = "".join(entry.line() for entry in sorted(kept, key=lambda e: e.time))
    data = "%s%d\n%s" % (_HEADER, len(body), body)
    atomicfile.replace(path, data.encode())


def _threshold(path):
    """LIMIT, or twice the size of the last compaction if that is more: a
    ledger of many live blocks is not rewritten on every append."""
    try:
        data, _ = safefile.read_file(path, 64)
    except OSError:
        return LIMIT
    first = (data or b"").split(b"\n", 1)[0].decode("ascii", "replace")
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
    if fields[0] == PREFIX_VERSION and len(fields) == 9 and fields[8] != "-":
        pass
    elif len(fields) != 8 or fields[0] != VERSION:
        return None, "not a version %s or %s record" % (VERSION, PREFIX_VERSION)
    if fields[2] not in OPS:
        return None, "not a version %s or %s record" % (VERSION, PREFIX_VERSION)
    try:
        when = float(fields[1])
    except ValueError:
        return None, "bad time"
    if not 0 <= when < LAST_TIME:          # also NaN
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
