"""The JSON-lines protocol of Wazuh agents 4.2 and later.

execd writes one request line on stdin.  For ``add`` we answer one
``check_keys`` line naming the address and read one answer line:
``continue`` means act, ``abort`` means execd already has this block
pending.  ``delete`` comes alone.  Wazuh 5.0 says ``enable``/``disable`` and
puts the address at ``alert.source.ip``.

execd keeps stdin open while it waits for our answer, and a Unix execd is
single-threaded, so every read here takes one line at most and every wait
is bounded: a stalled run stalls every other response on the agent.
"""

import os
import select
import time

from .exits import REFUSED, TEMPFAIL, USAGE, OK, Stop, failed, refused
from .request import Request

MAX_LINE = 64 * 1024
ANSWER_WAIT = 5.0          # seconds for execd's request and for its answer
COMMANDS = {"add": "add", "enable": "add", "delete": "delete", "disable": "delete"}
# Where the address is, in the order tried (ossec-contract.md, section 4).
ADDRESS_FIELDS = (("data", "srcip"), ("data", "win", "eventdata", "ipAddress"),
                  ("source", "ip"))


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
                raise refused(USAGE, "%s is longer than %d bytes" % (what, MAX_LINE))
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and select.select([self.reader], [], [], remaining)[0]
            if not ready:
                raise failed(TEMPFAIL, "no %s from execd within %gs" % (what, self.wait))
            chunk = os.read(self.reader, 65536)
            if not chunk:
                if not data:
                    raise refused(USAGE, "no %s: end of input" % what)
                self._pending = b""
                return data             # a last line without its newline
            data += chunk
        line, _, self._pending = data.partition(b"\n")
        if len(line) > MAX_LINE:
            raise refused(USAGE, "%s is longer than %d bytes" % (what, MAX_LINE))
        return line

    def confirm(self, name, address):
        """Send check_keys for *address*; return only if execd says continue."""
        import json
        message = json.dumps({"version": 1,
                              "origin": {"name": name, "module": "active-response"},
                              "command": "check_keys",
                              "parameters": {"keys": [str(address)]}},
                             separators=(",", ":"))
        try:
            _write_all(self.writer, message.encode("ascii") + b"\n")
        except OSError as error:
            raise failed(TEMPFAIL, "cannot send check_keys to execd: %s" % error.strerror)
        answer = decode(self.read_line("answer to check_keys"))
        command = answer.get("command")
        if command == "continue":
            return
        if command == "abort":
            raise Stop(OK, "already blocked", "execd answered abort to check_keys: "
                       "its block of %s is still pending" % address)
        raise refused(USAGE, "execd answered %s to check_keys; expected continue or abort"
                      % _shown(command))


def decode(line):
    """A protocol message as a dict, checked as Wazuh's own programs check it."""
    import json
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise refused(USAGE, "input is not UTF-8")
    except (ValueError, RecursionError) as error:
        raise refused(USAGE, "input is not valid JSON (%s)" % _first_line(error))
    if not isinstance(message, dict):
        raise refused(USAGE, "input is not a JSON object")
    version = message.get("version")
    if isinstance(version, bool) or not isinstance(version, (int, float)):
        raise refused(USAGE, "'version' is not a number")
    for key, kind, name in (("origin", dict, "an object"), ("command", str, "a string"),
                            ("parameters", dict, "an object")):
        if not isinstance(message.get(key), kind):
            raise refused(USAGE, "'%s' is not %s" % (key, name))
    return message


def request(line):
    """The :class:`~ossec_ar.request.Request` in execd's first line."""
    message = decode(line)
    action = COMMANDS.get(message["command"])
    if action is None:
        raise refused(USAGE, "unknown command %s (expected add, delete, enable or "
                      "disable)" % _shown(message["command"]))
    alert = message["parameters"].get("alert")
    if not isinstance(alert, dict):
        raise refused(USAGE, "'parameters.alert' is not an object")
    address = _address(alert)
    rule = _field(alert, ("rule", "id"))
    return Request(action, "-", address, _text(_field(alert, ("id",))), _text(rule))


def _address(alert):
    for path in ADDRESS_FIELDS:
        value = _field(alert, path)
        if value is None:
            continue
        if not isinstance(value, str):
            raise refused(USAGE, "'alert.%s' is not a string" % ".".join(path))
        return value
    raise refused(REFUSED, "no address in the alert (looked at %s)"
                  % ", ".join("alert." + ".".join(path) for path in ADDRESS_FIELDS))


def _field(value, path):
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value):
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return "-"


def _shown(value):
    # Raw text: the outcome line escapes it, once.
    return value if isinstance(value, str) else "a %s" % type(value).__name__


def _first_line(error):
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
