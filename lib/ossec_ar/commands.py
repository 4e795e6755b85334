"""Run firewall tools: an argv list, no shell, a clean environment.

This is a small fork/exec rather than ``subprocess``: importing subprocess
costs about as much as starting the interpreter (it pulls in locale, re and
enum), and every run of firewall-drop.sh pays for its imports.
"""

import os
import select
import time

# Where tools are looked for.  execd's PATH may be short or hostile; this
# list is fixed so that nothing the caller controls picks the binary.
TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

# The tools' messages go into our log, so ask for them untranslated.
_ENVIRONMENT = {"PATH": ":".join(TOOL_DIRS), "LC_ALL": "C"}
_MAX_OUTPUT = 1 << 26


class Result:
    """What a command did: ``returncode`` is None when it timed out."""

    __slots__ = ("argv", "returncode", "output")

    def __init__(self, argv, returncode, output):
        self.argv = argv
        self.returncode = returncode
        self.output = output

    @property
    def ok(self):
        return self.returncode == 0

    def describe(self):
        """One line for the log: the command, how it ended, what it said."""
        if self.returncode is None:
            how = "timed out"
        elif self.returncode < 0:
            how = "was killed by signal %d" % -self.returncode
        else:
            how = "exited %d" % self.returncode
        message = " / ".join(line.strip() for line in self.output.splitlines()
                             if line.strip())
        text = "`%s` %s" % (" ".join(self.argv), how)
        return text + (": " + message if message else "")


def find_tool(name):
    """Absolute path of the executable *name* in :data:`TOOL_DIRS`, or None."""
    for directory in TOOL_DIRS:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run(argv, timeout):
    """Run *argv* (argv[0] an absolute path) and return a :class:`Result`.

    stdout and stderr are collected together; stdin is /dev/null; the working
    directory is ``/``.  After *timeout* seconds the command is killed.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()      # carries the errno of a failed exec
    pid = os.fork()
    if pid == 0:                  # pragma: no cover - the child execs or exits
        _child(argv, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    try:
        exec_error = _read_all(err_r, time.monotonic() + timeout)
        if exec_error:
            os.waitpid(pid, 0)
            code = int(exec_error)
            return Result(argv, 127, "cannot execute: %s" % os.strerror(code))
        output, finished = _read_output(out_r, time.monotonic() + timeout)
    finally:
        os.close(out_r)
        os.close(err_r)
    if not finished:
        _kill(pid)
        return Result(argv, None, output)
    _, status = os.waitpid(pid, 0)
    return Result(argv, _decode_status(status), output)


def _child(argv, out_w, err_w):
    try:
        # execd ignores SIGHUP and Python ignores SIGPIPE; neither should be
        # inherited by the tool.  _signal is already loaded by the
        # interpreter, unlike the signal module.
        import _signal
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        _signal.signal(_signal.SIGHUP, _signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.chdir("/")
        os.execve(argv[0], argv, _ENVIRONMENT)
    except OSError as error:
        os.write(err_w, str(error.errno or 0).encode())
    finally:
        os._exit(127)


def _read_all(fd, deadline):
    data, _ = _read_output(fd, deadline)
    return data


def _read_output(fd, deadline):
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _text(chunks), False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return _text(chunks), True
        if size < _MAX_OUTPUT:
            chunks.append(chunk)
            size += len(chunk)


def _text(chunks):
    return b"".join(chunks).decode("utf-8", "replace")


def _kill(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _decode_status(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
