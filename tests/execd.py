"""Plays Wazuh's execd, step by step as its C code does (docs/contract.md,
section 6).  Wazuh's execd cannot be built here (its dependencies are
downloaded at build time), so this follows the source:

Wazuh 4.x: src/os_execd/execd.c (ExecdStart @ v4.2.0, ExecdRun @ v4.9.0 and
v4.14.7, the same steps), src/os_execd/exec.c (ar.conf), and the manager's
message from src/analysisd/ar_json.c @ v4.2.0, v4.9.0, v4.14.7:

1. The manager sends ``{"version":1,"origin":{"name":<node>,"module":
   "wazuh-analysisd"},"command":<AR name>,"parameters":{"extra_args":[...],
   "alert":{...}}}``; the AR name (``firewall-drop600``) gives the
   executable and the timeout through ar.conf.
2. execd sets ``command`` to ``add`` and ``origin.module`` to
   ``wazuh-execd`` in place and appends ``parameters.program``
   (``active-response/bin/<executable>``).
3. It runs that relative path with no arguments from the install
   directory, stdin and stdout on pipes, stderr on /dev/null, writes the
   request line, flushes, keeps stdin open and reads one line of the
   program's stdout, with no time limit.
4. No line: it closes stdin, waits for the program, queues nothing.
5. Otherwise its key is the program's file name, followed by ``-<key>``
   for each string in ``parameters.keys`` if the line passes the 4.x
   parser (get_json_from_input, src/active-response/active_responses.c)
   and its command is ``check_keys``; otherwise the name alone.
6. With a timeout, a pending entry with that key is refreshed and the
   answer is ``abort``; else the request with ``command`` set to ``delete``
   is queued and the answer is ``continue``.  Without one: ``continue``,
   nothing queued.
7. The answer is the request with ``command`` set to that word.  execd
   writes it, closes stdin and waits for the program, with no time limit.
8. When the timeout passes (or execd stops), the queued line goes to a new
   run of the program: stdin a pipe, closed right after the line; stdout
   /dev/null.

Wazuh 5.x: src/os_execd/src/execd.c @ main (ExecdRun).  The message is the
alert document; ``wazuh.active_response.executable`` names the program and
the timeout is ``stateful_timeout`` when ``type`` is ``stateful``, else 0.
execd appends ``"command":"enable"`` (after any command member the
document already has); the delete and the answer replace the first
``command`` member (cJSON compares names without regard to ASCII case) with
``disable``, ``continue`` or ``abort``.  The check_keys line is read as plain
JSON: only ``command`` and ``parameters.keys`` count.  Steps 3, 4, 6, 7 and
8 as in 4.x.

Lines are printed as cJSON_PrintUnformatted prints them (no spaces, only
``"``, ``\\`` and control characters escaped, other text as UTF-8), which is
what json.dumps does for the strings, integers, objects and arrays used
here.  The only departures: every wait has a time limit, so that a broken
program fails its test instead of hanging it; a delete's stdout is a pipe,
so that the tests can see nothing was written there; and the check_keys
line is read with Python's json (ours has exactly one member of each name).
"""

import copy
import json
import os
import select
import subprocess
import time

NODE = "node01"
# ar.conf as the manager writes it: "<name><timeout> - <executable> - <timeout>".
AR_CONF = {"firewall-drop600": ("firewall-drop", 600), "host-deny600": ("host-deny", 600),
           "firewall-drop0": ("firewall-drop", 0)}

# What to answer instead of what execd would (Execd.run's *reply*).
EXECD = "execd"          # what execd does (the default)
CLOSE = "close"          # close stdin instead of answering
SILENT = "silent"        # keep stdin open and write nothing


def printed(value):
    """*value* as one line, as cJSON_PrintUnformatted prints it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def alert(srcip="192.0.2.7", where=("data", "srcip"), rule="5712",
          alert_id="1326977549.1358625", full_log="sshd[9]: Failed password for root",
          data=None):
    """An alert as analysisd serialises it, the address at *where*."""
    value = {"timestamp": "2012-01-19T13:52:29.000+0100",
             "rule": {"level": 10, "description": "sshd: brute force", "id": rule},
             "agent": {"id": "002", "name": "web1"}, "manager": {"name": NODE},
             "id": alert_id, "full_log": full_log, "decoder": {"name": "sshd"},
             "data": dict(data or {}), "location": "/var/log/auth.log"}
    if srcip is not None:
        node = value
        for key in where[:-1]:
            node = node.setdefault(key, {})
        node[where[-1]] = srcip
    return value


def from_manager_4(alert_value, name="firewall-drop600", extra_args=()):
    """What a 4.x manager sends to execd (src/analysisd/ar_json.c @ v4.9.0)."""
    return {"version": 1, "origin": {"name": NODE, "module": "wazuh-analysisd"},
            "command": name,
            "parameters": {"extra_args": list(extra_args), "alert": alert_value}}


def from_manager_5(srcip="192.0.2.7", executable="firewall-drop", kind="stateful",
                   timeout=600, **fields):
    """What a 5.x manager sends: the alert document with its AR metadata
    (src/os_execd/src/execd.c @ main reads executable, type and
    stateful_timeout; the other members are as docs/ref/modules/
    active-response/README.md @ main shows them)."""
    active_response = {"name": "block-" + executable, "executable": executable,
                       "type": kind, "location": "local", "agent_id": None,
                       "extra_arguments": None}
    if timeout is not None:
        active_response["stateful_timeout"] = timeout
    document = {"wazuh": {"active_response": active_response,
                          "agent": {"id": "002", "name": "web1"}}}
    if srcip is not None:
        document["source"] = {"ip": srcip}
    document.update(fields)
    return document


class Run:
    """One run of the program: exit code, the lines each side wrote, and
    the delete line execd queued (or None)."""

    def __init__(self, code, request, reply, answer, rest, stderr, seconds, queued=None):
        self.code, self.request, self.reply, self.answer = code, request, reply, answer
        self.rest, self.stderr, self.seconds, self.queued = rest, stderr, seconds, queued


class Execd:
    """One agent's execd, for Wazuh *version* "4" (4.2 to 4.14) or "5"."""

    def __init__(self, prefix, version="4", wrap=(), env=None, ar_conf=AR_CONF):
        assert version in ("4", "5")
        self.prefix = prefix
        self.version = version
        self.wrap = list(wrap)
        self.env = env
        self.ar_conf = ar_conf
        self.pending = []          # [key, program, delete line], oldest first

    def run(self, message, reply=EXECD, timeout=20):
        """Steps 2 to 7 for one *message* from the manager.

        *reply* replaces execd's answer (raw bytes, a function of the
        request line giving them, CLOSE or SILENT); then nothing is queued.
        """
        program, request, delay = self._request(message)
        line = self._printed(request, None)
        queued = []

        def answer(keys_line):
            if callable(reply):
                return reply(line)
            if reply != EXECD:
                return reply
            key = self.key(program, keys_line)
            pending = [entry for entry in self.pending if entry[0] == key] if delay else []
            if pending:
                return self._printed(request, "abort")
            if delay:
                queued.append(self._printed(request, self._delete_word()))
                self.pending.append([key, program, queued[0]])
            return self._printed(request, "continue")
        run = self.exchange(program, line, answer, timeout)
        run.queued = queued[0] if queued else None
        return run

    def expire(self, timeout=20):
        """Step 8 for every queued delete, oldest first (the timeout passed)."""
        runs = [self.delete(program, line, timeout) for _, program, line in self.pending]
        self.pending = []
        return runs

    def key(self, program, keys_line):
        """Step 5: the key execd files this run under."""
        key = os.path.basename(program)
        try:
            message = json.loads(keys_line.decode("utf-8"))
        except ValueError:
            return key
        if not isinstance(message, dict):
            return key
        if self.version == "4" and not (
                isinstance(message.get("version"), (int, float))
                and not isinstance(message.get("version"), bool)
                and isinstance(message.get("origin"), dict)
                and isinstance(message.get("command"), str)
                and isinstance(message.get("parameters"), dict)):
            return key
        if message.get("command") != "check_keys":
            return key
        keys = message.get("parameters", {})
        keys = keys.get("keys") if isinstance(keys, dict) else None
        if isinstance(keys, list):
            key += "".join("-" + item for item in keys if isinstance(item, str))
        return key

    def exchange(self, program, line, answer, timeout=20):
        """Steps 3, 4 and 7 with the request *line* as given:
        ``answer(check_keys line) -> bytes, CLOSE or SILENT``."""
        start = time.monotonic()
        proc = self._start(program, subprocess.PIPE)
        proc.stdin.write(line + b"\n")
        proc.stdin.flush()                     # and keep stdin open
        reply = _read_line(proc.stdout, timeout)
        sent = None
        if reply is None:
            proc.stdin.close()
        else:
            sent = answer(reply)
            if sent == CLOSE:
                proc.stdin.close()
            elif sent != SILENT:
                proc.stdin.write(sent + b"\n")
                proc.stdin.flush()
                proc.stdin.close()
        code = proc.wait(timeout)
        seconds = time.monotonic() - start
        rest, stderr = proc.stdout.read(), proc.stderr.read()
        if not proc.stdin.closed:
            proc.stdin.close()
        return Run(code, line, reply, sent, rest, stderr, seconds)

    def delete(self, program, line, timeout=20):
        """Step 8 for one delete *line*."""
        start = time.monotonic()
        proc = self._start(program, subprocess.PIPE)
        out, err = proc.communicate(line + b"\n", timeout)   # then stdin closes
        return Run(proc.returncode, line, None, None, out, err, time.monotonic() - start)

    def _start(self, program, stdout):
        return subprocess.Popen(self.wrap + [program], cwd=self.prefix, env=self.env,
                                stdin=subprocess.PIPE, stdout=stdout,
                                stderr=subprocess.PIPE)

    def _request(self, message):
        """(program, request, timeout) for *message* (step 2)."""
        request = copy.deepcopy(message)
        if self.version == "4":
            executable, delay = self.ar_conf[message["command"]]
            program = "active-response/bin/" + executable
            request["command"] = "add"
            request["origin"]["module"] = "wazuh-execd"
            request["parameters"]["program"] = program
            return program, request, delay
        active_response = message["wazuh"]["active_response"]
        program = "active-response/bin/" + active_response["executable"]
        delay = active_response.get("stateful_timeout")
        if active_response.get("type") != "stateful" or not isinstance(delay, int):
            delay = 0
        return program, request, delay

    def _delete_word(self):
        return "delete" if self.version == "4" else "disable"

    def _printed(self, request, word):
        """The request line with its command replaced by *word* (None: as sent)."""
        if self.version == "4":
            if word is not None:
                request = dict(request, command=word)      # in place, as cJSON replaces
            return printed(request)
        members = list(request.items())
        appended = ["command", "enable"]
        first = [i for i, (name, _) in enumerate(members) if name.lower() == "command"]
        if word is not None:
            if first:
                members[first[0]] = ("command", word)
            else:
                appended[1] = word
        members.append(tuple(appended))
        return b"{" + b",".join(printed(name) + b":" + printed(value)
                                for name, value in members) + b"}"


def _read_line(stream, timeout):
    """One line from the program's stdout, or None at its end or the timeout."""
    fd = stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            return None if not data else data
        data += chunk
    return data
