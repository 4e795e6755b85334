"""Plays Wazuh's execd (agents 4.2+), as ossec-contract.md section 4 says.

The program is run as ``active-response/bin/<name>`` with no arguments from
the install directory.  For add: one request line, stdin kept open, one
reply line read, one answer line written.  For delete: one line, then stdin
is closed.
"""

import json
import os
import select
import subprocess
import time


def message(command="add", srcip="192.0.2.7", rule="5712",
            alert_id="1326977549.1358625", where=("data", "srcip")):
    alert = {"timestamp": "2012-01-19T13:52:29.000+0100", "id": alert_id,
             "rule": {"id": rule, "level": 10, "description": "sshd: brute force"},
             "agent": {"id": "002", "name": "web1"}}
    node = alert
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = srcip
    return json.dumps({"version": 1, "origin": {"name": "node01", "module": "wazuh-execd"},
                       "command": command,
                       "parameters": {"extra_args": [], "alert": alert,
                                      "program": "active-response/bin/firewall-drop"}},
                      separators=(",", ":")).encode()


def answer(command):
    return json.dumps({"version": 1, "origin": {"name": "node01", "module": "wazuh-execd"},
                       "command": command, "parameters": {}}).encode()


class Run:
    """How one run went: exit code, the reply line (or None), stdout, stderr."""

    def __init__(self, code, reply, rest, stderr, seconds):
        self.code, self.reply, self.rest = code, reply, rest
        self.stderr, self.seconds = stderr, seconds


class Execd:
    def __init__(self, prefix, name="firewall-drop", wrap=(), env=None):
        self.prefix = prefix
        self.name = name
        self.wrap = list(wrap)
        self.env = env

    def _start(self):
        return subprocess.Popen(self.wrap + ["active-response/bin/" + self.name],
                                cwd=self.prefix, env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def add(self, request, reply_with="continue", timeout=20):
        """Send *request*; answer the check_keys reply with *reply_with*
        (an answer command, raw bytes, 'close' to close stdin, or None to
        stay silent)."""
        start = time.monotonic()
        proc = self._start()
        proc.stdin.write(request + b"\n")
        proc.stdin.flush()                     # and keep stdin open
        reply = _read_line(proc.stdout, timeout)
        if reply is not None and reply_with is not None:
            if reply_with == "close":
                proc.stdin.close()
            else:
                data = reply_with if isinstance(reply_with, bytes) else answer(reply_with)
                proc.stdin.write(data + b"\n")
                proc.stdin.flush()
        code = proc.wait(timeout)
        seconds = time.monotonic() - start
        rest, stderr = proc.stdout.read(), proc.stderr.read()
        if not proc.stdin.closed:
            proc.stdin.close()
        return Run(code, reply, rest, stderr, seconds)

    def delete(self, request, timeout=20):
        start = time.monotonic()
        proc = self._start()
        out, err = proc.communicate(request + b"\n", timeout)   # then stdin closes
        return Run(proc.returncode, None, out, err, time.monotonic() - start)


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
