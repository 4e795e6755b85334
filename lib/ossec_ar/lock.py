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

import errno
import fcntl
import os
import time

from . import safefile, state
from .exits import TEMPFAIL, failed

# Polling, rather than a blocking flock interrupted by a timer, keeps the
# signal module (and its enum import) off the hot path.
_FIRST_PAUSE = 0.002
_LONGEST_PAUSE = 0.05
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
        pause = _FIRST_PAUSE
        while True:
            if self._fd is None:
                self._fd = _open_lock_file(self.path)
            if self._try_lock():
                if self._still_named():
                    return self
                self._close()           # removed or replaced: lock the new one
                continue
            if time.monotonic() >= deadline:
                self._close()
                raise failed(TEMPFAIL, "lock %s still held by another run after %gs"
                             % (self.path, self.wait))
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def __exit__(self, *exc_info):
        self._close()

    def _try_lock(self):
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def _open_lock_file(path):
    try:
        fd, _, _ = safefile.open_file(path, os.O_RDWR | os.O_CREAT, MODE)
    except OSError as error:
        raise failed(TEMPFAIL, "cannot open lock file %s: %s" % (path, error.strerror))
    return fd
