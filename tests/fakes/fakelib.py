"""State and bookkeeping shared by the fake firewall tools in this folder.

Each fake is installed (by tests/fakebsd.py) into a root-owned directory
with ``state.json`` beside it.  A call:
- takes an exclusive flock on ``state.lock``, first without waiting: if
  another fake holds it, two of our runs were inside the firewall at once,
  which ossec-ar's own lock must prevent, and ``overlaps`` is counted.  A
  tool that only reads, and that ossec-ar runs before it takes its lock
  (ifconfig and netstat, for the protections), takes no part in this:
  ``Call(outside_lock=True)``;
- then, every fake, an exclusive flock on ``data.lock`` (waiting), which
  keeps each call's reading and writing of the files below whole;
- appends its argv and stdin to ``calls.jsonl`` (what the tests compare);
- answers from, and updates, ``state.json``;
- fails on demand: ``state["fail"][tool] = [words, exit code, message]``
  makes any call whose arguments contain *words* (in order) fail so.
"""

import fcntl
import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(sys.argv[0]))
STATE = os.path.join(HERE, "state.json")


class Call:
    def __init__(self, outside_lock=False):
        self.tool = os.path.basename(sys.argv[0])
        self.args = sys.argv[1:]
        overlapped = False
        if not outside_lock:
            self._lock = open(os.path.join(HERE, "state.lock"), "a")
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(self._lock, fcntl.LOCK_EX)
                overlapped = True
        self._data_lock = open(os.path.join(HERE, "data.lock"), "a")
        fcntl.flock(self._data_lock, fcntl.LOCK_EX)
        with open(STATE) as f:
            self.state = json.load(f)
        if overlapped:
            self.state["overlaps"] = self.state.get("overlaps", 0) + 1
        self.stdin = sys.stdin.read() if "-" in self.args else ""
        with open(os.path.join(HERE, "calls.jsonl"), "a") as f:
            f.write(json.dumps({"argv": [self.tool] + self.args,
                                "stdin": self.stdin}) + "\n")

    def injected_failure(self):
        """Exit as told by ``state["fail"]``, if it names this call."""
        words, code, message = self.state.get("fail", {}).get(self.tool, (None, 0, ""))
        if words is not None and _contains(self.args, words.split()):
            self.finish(code, err=message)

    def finish(self, code=0, out="", err=""):
        """Save the state, print like the real tool, and exit with *code*."""
        with open(STATE + ".new", "w") as f:
            json.dump(self.state, f)
        os.replace(STATE + ".new", STATE)
        if out:
            sys.stdout.write(out if out.endswith("\n") else out + "\n")
        if err:
            sys.stderr.write(err if err.endswith("\n") else err + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _contains(args, words):
    return any(args[i:i + len(words)] == words for i in range(len(args) - len(words) + 1))
