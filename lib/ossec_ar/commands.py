"""Run firewall tools: an argv list, no shell, a clean environment.

This is a small posix_spawn (or fork/exec) rather than ``subprocess``:
importing subprocess costs about as much as starting the interpreter (it
pulls in locale, re and enum), and every run of firewall-drop.sh pays for
its imports.
"""

import _signal   # built in and loaded at start-up, unlike signal (and enum)
import os
import select
import time

from .exits import RESOURCE_ERRORS, TEMPFAIL, failed

# Where tools are looked for.  execd's PATH may be short or hostile; this
# list is fixed so that nothing the caller controls picks the binary.  Only
# the root-owned configuration file can replace it ([system] tool_dirs: the
# seam that tests use to run fake tools).
DEFAULT_TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

# execd ignores SIGHUP and Python ignores SIGPIPE; the tools get neither.
_DEFAULT_SIGNALS = (_signal.SIGPIPE, _signal.SIGHUP)
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


class Tools:
    """The firewall tools of one run: found only in *directories*, and run
    with them as the whole PATH and the C locale (their messages go into our
    log, so untranslated), nothing else of our environment."""

    def __init__(self, directories=DEFAULT_TOOL_DIRS):
        self.directories = tuple(directories)
        self.environment = {"PATH": ":".join(self.directories), "LC_ALL": "C"}
        self._found = {}

    def find(self, name):
        """Absolute path of the executable *name* in the directories, or None."""
        if name not in self._found:
            self._found[name] = None
            for directory in self.directories:
                path = os.path.join(directory, name)
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    self._found[name] = path
                    break
        return self._found[name]

    def not_found(self, name):
        """The reason a backend gives when :meth:`find` found nothing."""
        return "%s not found in %s" % (name, ", ".join(self.directories))

    def run(self, argv, timeout, input=b""):
        """:func:`run` with this run's environment."""
        return run(argv, timeout, input, self.environment)


# What may be fed to a command's stdin: it must fit in the pipe at once,
# so that writing it can never wait for the command (POSIX promises 512).
MAX_INPUT = 512


_ENVIRONMENT = Tools().environment


def run(argv, timeout, input=b"", environment=_ENVIRONMENT):
    """Run *argv* (argv[0] an absolute path) and return a :class:`Result`.

    stdout and stderr are collected together; stdin is *input* (bytes, at
    most :data:`MAX_INPUT`) then end of file; the working directory is the
    caller's (``cli.main`` has moved to ``/``).  After *timeout* seconds the
    command is killed.
    """
    if len(input) > MAX_INPUT:
        raise ValueError("command input over %d bytes" % MAX_INPUT)
    try:
        return _run(argv, timeout, input, environment)
    except OSError as error:
        if error.errno not in RESOURCE_ERRORS:
            raise
        # Out of descriptors, memory or processes: no answer from the tool,
        # so nothing may be read into it (a probe that "failed" would make a
        # backend look absent, a delete look done).
        raise failed(TEMPFAIL, "cannot run %s: %s" % (argv[0], error.strerror))


def _run(argv, timeout, input, environment):
    in_r, in_w = os.pipe()
    try:
        out_r, out_w = os.pipe()
    except OSError:
        os.close(in_r)
        os.close(in_w)
        raise
    try:
        try:
            os.write(in_w, input)
        finally:
            os.close(in_w)
        start = _spawn if _posix_spawn is not None else _fork_exec
        pid = start(argv, in_r, out_w, environment)
    except OSError as error:
        os.close(out_r)
        if error.errno in RESOURCE_ERRORS:
            raise
        return Result(argv, 127, "cannot execute: %s" % error.strerror)
    finally:
        os.close(in_r)
        os.close(out_w)
    try:
        output, finished = _read_output(out_r, time.monotonic() + timeout)
    finally:
        os.close(out_r)
    if not finished:
        _kill(pid)
        return Result(argv, None, output)
    _, status = os.waitpid(pid, 0)
    return Result(argv, _decode_status(status), output)


# posix_spawn (Python 3.8+) starts a command in about half the time of
# os.fork: glibc uses vfork, while a forked Python child copies every page
# whose reference counts it touches.  Python 3.6 and 3.7 use the fork path.
_posix_spawn = getattr(os, "posix_spawn", None)


def _spawn(argv, in_r, out_w, environment):
    actions = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_descriptors()]
    actions += [(os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, out_w, 2)]
    return _posix_spawn(argv[0], argv, environment, file_actions=actions,
                        setsigdef=_DEFAULT_SIGNALS)


def _inherited_descriptors():
    """Inheritable descriptors above 2: what our own parent left open.

    Ours are opened close-on-exec; these are execd's (or a shell's), and a
    firewall tool has no business with them.
    """
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
            break
        except OSError as error:
            if error.errno in RESOURCE_ERRORS:
                raise
            continue
    else:
        return []
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:     # the listing's own descriptor, closed by now
            pass
    return found


def _fork_exec(argv, in_r, out_w, environment):
    inherited = _inherited_descriptors()
    err_r, err_w = os.pipe()      # carries the errno of a failed exec
    pid = os.fork()
    if pid == 0:                  # pragma: no cover - the child execs or exits
        _child(argv, in_r, out_w, err_w, inherited, environment)
    os.close(err_w)
    try:
        code = _read_all(err_r)
    finally:
        os.close(err_r)
    if code:
        os.waitpid(pid, 0)
        raise OSError(int(code), os.strerror(int(code)))
    return pid


def _child(argv, in_r, out_w, err_w, inherited, environment):
    try:
        for fd in inherited:
            os.close(fd)
        for number in _DEFAULT_SIGNALS:
            _signal.signal(number, _signal.SIG_DFL)
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.execve(argv[0], argv, environment)
    except OSError as error:
        os.write(err_w, str(error.errno or 0).encode())
    finally:
        os._exit(127)


def _read_all(fd):
    """Everything until end of file (the exec error pipe closes on exec)."""
    chunks = []
    while True:
        chunk = os.read(fd, 64)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


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
