"""The JSON-lines protocol of Wazuh agents 4.2 and later, as their C code speaks it.

execd writes one request line on stdin, in one of two shapes
(docs/contract.md, section 6):

- Wazuh 4.x (4.2 to 4.14): ``version``, ``origin``, ``command`` (``add`` or
  ``delete``) and ``parameters``, the alert at ``parameters.alert``;
- Wazuh 5.x: the alert document itself, with a root ``wazuh`` object and
  the ``command`` (``enable`` or ``disable``) that execd appends; the
  address at the root ``source.ip``.

For add and enable we answer one ``check_keys`` line naming the address and
read execd's answer, which is the request itself with ``command`` set to
``continue`` (act) or ``abort`` (execd already has this block pending).
delete and disable come alone.

execd keeps stdin open while it waits for our answer and waits for us
without a time limit, and a Unix execd is single-threaded, so every read
here takes one line at most and every wait is bounded: a stalled run stalls
every other response on the agent.
"""

import json
import os
import re
import select
import time

from .exits import ALREADY_BLOCKED, OK, REFUSED, TEMPFAIL, Stop, failed, refused, usage
from .request import Request

MAX_LINE = 64 * 1024
ANSWER_WAIT = 5.0          # seconds for execd's request and for its answer


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_object(value):
    return isinstance(value, dict)


def _is_string(value):
    return isinstance(value, str)


class Shape:
    """One Wazuh version's message: what its own programs require of it,
    where the alert is, and where the address is in the alert."""

    def __init__(self, name, commands, members, alert, addresses, ids, prefix):
        self.name = name
        self.commands = commands      # the request's command -> our action
        self.members = members        # (name, test, what it must be), checked in order
        self.alert = alert            # the path of the alert; () is the message itself
        self.addresses = addresses    # paths in the alert, in the order tried
        self.ids = ids                # paths of the (alert id, rule id), or None
        self.prefix = prefix          # how the log names the alert's fields

    def shown(self, path):
        return self.prefix + ".".join(path)


# src/active-response/active_responses.c @ v4.2.0, v4.9.0, v4.14.7
# (get_json_from_input, get_srcip_from_json).  4.2 reads data.srcip only;
# 4.9 and later try the Windows event's ipAddress, then its destinationIp,
# then data.srcip.  A 4.2 request cannot be told from a 4.9 one, so the
# 4.9 order serves both: it finds data.srcip whenever the Windows fields
# are absent, as they are in every alert that is not a Windows event.
# A value that is not a string is passed over, as there.
WAZUH_4 = Shape(
    "4.x", {"add": "add", "delete": "delete"},
    (("version", _is_number, "a number"), ("origin", _is_object, "an object"),
     ("command", _is_string, "a string"), ("parameters", _is_object, "an object")),
    ("parameters", "alert"),
    (("data", "win", "eventdata", "ipAddress"), ("data", "win", "eventdata", "destinationIp"),
     ("data", "srcip")),
    (("id",), ("rule", "id")), "alert.")

# src/active-response/src/active_responses.c @ main: only command and a
# wazuh object are required; the alert is the message, the address source.ip.
# The C code reads no rule or alert id in this shape, and neither do we.
WAZUH_5 = Shape(
    "5.x", {"enable": "add", "disable": "delete"},
    (("command", _is_string, "a string"), ("wazuh", _is_object, "an object")),
    (), (("source", "ip"),), None, "")

SHAPES = (WAZUH_4, WAZUH_5)


class Channel:
    """execd's end of the conversation: our stdin and stdout."""

    def __init__(self, reader=0, writer=1, wait=ANSWER_WAIT):
        self.reader = reader
        self.writer = writer
        self.wait = wait
        self._pending = b""

    def read_line(self, what):
        """The next line (without its newline), read within ``wait`` seconds.

        Never reads beyond what that line needs except what a single read
        returns, kept for the next call; never waits for end of input.
        """
        deadline = time.monotonic() + self.wait
        data = self._pending
        while b"\n" not in data:
            if len(data) > MAX_LINE:
                raise usage("%s is longer than %d bytes" % (what, MAX_LINE))
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and select.select([self.reader], [], [], remaining)[0]
            if not ready:
                raise failed(TEMPFAIL, "no %s from execd within %gs" % (what, self.wait))
            chunk = os.read(self.reader, 65536)
            if not chunk:
                if not data:
                    raise usage("no %s: end of input" % what)
                self._pending = b""
                return data             # a last line without its newline
            data += chunk
        line, _, self._pending = data.partition(b"\n")
        if len(line) > MAX_LINE:
            raise usage("%s is longer than %d bytes" % (what, MAX_LINE))
        return line

    def request(self, line, name):
        """The :class:`~ossec_ar.request.Request` in execd's first *line*.

        Its ``confirm`` runs the check_keys exchange on this channel, as
        *name* (the program's file name), for an add or enable.
        """
        message, shape = decode(line)
        action = shape.commands[_field(message, ("command",))]
        alert = _field(message, shape.alert)
        if not isinstance(alert, dict):
            raise usage("'%s' is not an object" % ".".join(shape.alert))
        alert_id, rule_id = "-", "-"
        if shape.ids:
            alert_id, rule_id = (_text(_field(alert, path)) for path in shape.ids)
        req = Request(action, "-", _address(shape, alert), alert_id, rule_id)
        req.confirm = lambda address: self.confirm(name, address, shape)
        return req

    def confirm(self, name, address, shape):
        """Send check_keys for *address*; return only if execd says continue.

        The answer is checked as the request was: it is the request itself
        with another command (src/os_execd/execd.c @ v4.2.0, v4.9.0, v4.14.7;
        src/os_execd/src/execd.c @ main).
        """
        # One form for every version.  execd 4.x reads this line with the
        # 4.x parser (src/os_execd/execd.c with get_json_from_input from
        # src/active-response/active_responses.c @ v4.2.0, v4.9.0, v4.14.7:
        # version a number, origin and parameters objects); execd 5.x parses
        # it as plain JSON and reads only command and parameters.keys
        # (src/os_execd/src/execd.c @ main).  Both make their key from the
        # program's name and each string in parameters.keys; a line either
        # one cannot read gives the same key to every address, so a second
        # address is answered abort and never blocked.  It must also stay
        # under execd's 8192-byte read.
        message = json.dumps({"version": 1,
                              "origin": {"name": name, "module": "active-response"},
                              "command": "check_keys",
                              "parameters": {"keys": [str(address)]}},
                             separators=(",", ":"))
        try:
            _write_all(self.writer, message.encode("ascii") + b"\n")
        except OSError as error:
            raise failed(TEMPFAIL, "cannot send check_keys to execd: %s" % error.strerror)
        answer, _ = decode(self.read_line("answer to check_keys"), shape)
        command = _field(answer, ("command",))
        if command == "continue":
            return
        if command == "abort":
            raise Stop(OK, ALREADY_BLOCKED, "execd answered abort to check_keys: "
                       "its block of %s is still pending" % address)
        raise usage("execd answered %s to check_keys; expected continue or abort"
                    % _shown(command))


def decode(line, shape=None):
    """``(message, shape)``: the message in *line*, checked as that Wazuh
    version's own programs check it.

    A request's command names its shape (each version sends only its own
    words); an answer is checked against its request's *shape*.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise usage("input is not UTF-8")
    try:
        message = json.loads(text, object_pairs_hook=_cjson_object,
                             parse_constant=_not_json)
    except (ValueError, RecursionError) as error:
        raise usage("input is not valid JSON (%s)" % _first_line(error))
    if not isinstance(message, dict):
        raise usage("input is not a JSON object")
    if shape is None:
        shape = _shape_of(_field(message, ("command",)))
    for name, test, what in shape.members:
        if not test(_field(message, (name,))):
            raise usage("'%s' is not %s" % (name, what))
    return message, shape


def _shape_of(command):
    if not isinstance(command, str):
        raise usage("'command' is not a string")
    for shape in SHAPES:
        if command in shape.commands:
            return shape
    raise usage("unknown command %s (expected add, delete, enable or disable)"
                % _shown(command))


# Wazuh's programs read messages with cJSON, whose cJSON_GetObjectItem
# compares member names without regard to ASCII case and returns the first
# match.  That matters: in 5.x execd appends "command" to a document that
# may already have one, and later replaces the first one with "disable";
# reading the last one would take that delete for an enable.
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def _cjson_object(pairs):
    members = {}
    for name, value in pairs:
        members.setdefault(name.translate(_ASCII_LOWER), value)
    return members


def _not_json(constant):
    raise ValueError("%s is not JSON" % constant)


def _field(value, path):
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name.translate(_ASCII_LOWER))
    return value


def _address(shape, alert):
    odd = None
    for path in shape.addresses:
        value = _field(alert, path)
        if isinstance(value, str):
            return _whole(value)
        if value is not None and odd is None:
            odd = path
    if odd is not None:
        raise usage("'%s' is not a string" % shape.shown(odd))
    raise refused(REFUSED, "no address in the alert (looked at %s)"
                  % ", ".join(shape.shown(path) for path in shape.addresses))


# What could end or split the logged request line for some reader of the
# log: NUL (C string functions stop there, and Wazuh's logcollector drops a
# line that holds one), LF, and the other line boundaries of readers that
# decode the text (VT, FF, CR, FS, GS, RS, NEL, U+2028, U+2029), and bytes
# that are not UTF-8 (a lone 0x85 ends a line in Latin-1); and every other
# control character (ESC, BEL, DEL, the C1 set with its CSI), which a
# terminal showing the log would obey.  TAB alone stays: it splits nothing
# and is JSON's white space between tokens.  cJSON, which prints execd's
# requests, escapes every C0 control character inside strings, so a real
# request has none of these raw but DEL and C1 characters (JSON allows them
# raw), NEL, U+2028 and U+2029 from an alert's text; inside a JSON string
# their \uXXXX escapes mean the same, so the line parses to the same value,
# and a request refused for a raw C0 character is logged as valid JSON.
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")


def logged(line):
    """The request *line* as it goes into the log: as received.

    Wazuh's own programs log it so, and the manager's ar_log_json decoder
    parses it as JSON (rules 651-654 read its command and
    parameters.program): only control characters and what could end or
    split the line are escaped.  Nothing else is, so a request that parses still parses, to
    the same value.
    """
    text = line.decode("utf-8", "surrogateescape")
    if _LINE_BREAKING.search(text):
        text = _LINE_BREAKING.sub(_escaped, text)
    if len(text) > MAX_LINE:        # only escapes can make it longer than it came
        text = text[:MAX_LINE] + "...(%d characters)" % len(text)
    return text


def _escaped(match):
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:          # a byte that is not UTF-8
        return "\\x%02x" % (code - 0xDC00)
    return "\\u%04x" % code


def _text(value):
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return _whole(str(value))
    return "-"


# JSON can write half of a UTF-16 pair ("\ud800"), which json.loads gives
# as a lone surrogate: no encoding holds one, so it could be neither logged
# nor recorded.  (A whole pair is read as one character; raw bytes of a
# surrogate are not UTF-8 and were refused already.)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole(text):
    """*text* with each lone surrogate written as its JSON escape: in an
    address, which it makes no address, refused (65) as any other; in an
    id, shown as the request wrote it, never stopping the run."""
    if _LONE_SURROGATE.search(text):
        return _LONE_SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), text)
    return text


def _shown(value):
    # Raw text: the outcome line escapes it, once.
    return value if isinstance(value, str) else "a %s" % type(value).__name__


def _first_line(error):
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
