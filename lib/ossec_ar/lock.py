"""Serialise runs with ``flock(2)`` on a lock file of our own.

execd starts one process per alert, and hundreds at once when it stops, so
the check-then-change on the firewall must not interleave.  A kernel lock is
released when its holder dies, so there is never a stale lock to clean up and
never a reason to kill another process.

The lock files live in our root-only state directory (see ``state``).  A
lock file that is removed or replaced while we wait would let two runs hold
two different locks, so once ``flock`` succeeds the path must still name
the file we locked (same device and inode); if it does not, we open the
new one and lock again, within the same bounded wait.
"""

import _signal
import errno
import fcntl
import os
import time

from . import safefile, state
from .exits import TEMPFAIL, failed

MODE = 0o600


def lock_file(prefix, program):
    """Each program's lock file, in the state directory (never the cwd)."""
    return state.path(prefix, "%s.lock" % program)


class FileLock:
    def __init__(self, path, wait):
        self.path = path
        self.wait = wait
        self._fd = None

    def __enter__(self):
        deadline = time.monotonic() + self.wait
        while True:
            if self._fd is None:
                self._fd = _open_lock_file(self.path)
            if not self._lock_within(deadline - time.monotonic()):
                self._close()
                raise failed(TEMPFAIL, "lock %s still held by another run after %gs"
                             % (self.path, self.wait))
            if self._still_named():
                return self
            self._close()               # removed or replaced: lock the new one

    def __exit__(self, *exc_info):
        self._close()

    def _lock_within(self, seconds):
        """Lock, waiting at most *seconds*; False if the time ran out.

        The wait is the kernel's, so a released lock goes to the next
        waiter at once (a burst of runs neither polls nor leaves the lock
        idle between them), bounded by a one-shot timer whose signal ends
        the wait.  ``_signal`` is built in: ``signal``'s enums stay off
        the hot path.
        """
        if self._flock(fcntl.LOCK_EX | fcntl.LOCK_NB):
            return True
        if seconds <= 0:
            return False
        previous = _signal.signal(_signal.SIGALRM, _time_is_up)
        # A caller may have blocked SIGALRM (a mask survives exec): the
        # timer must still end the wait.
        mask = _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGALRM])
        try:
            try:
                # A timer of 0 is none at all (the wait would never end),
                # so never less than a millisecond, however a float rounds.
                _signal.setitimer(_signal.ITIMER_REAL, max(seconds, 0.001))
                return self._flock(fcntl.LOCK_EX)
            finally:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
        except _TimeIsUp:
            # Also if the timer fired just as the lock came: the caller
            # closes the file, which lets it go.
            return False
        finally:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
            # None: a handler set outside Python, which cannot be put back.
            _signal.signal(_signal.SIGALRM,
                           _signal.SIG_DFL if previous is None else previous)

    def _flock(self, operation):
        try:
            fcntl.flock(self._fd, operation)
            return True
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return False
            self._close()
            raise failed(TEMPFAIL, "cannot lock %s: %s" % (self.path, error.strerror))

    def _still_named(self):
        mine = os.fstat(self._fd)
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)   # closing releases the lock
            self._fd = None


class _TimeIsUp(Exception):
    pass


def _time_is_up(signum, frame):
    raise _TimeIsUp


def _open_lock_file(path):
    try:
        fd, _, _ = safefile.open_file(path, os.O_RDWR | os.O_CREAT, MODE)
    except OSError as error:
        raise failed(TEMPFAIL, "cannot open lock file %s: %s" % (path, error.strerror))
    return fd
