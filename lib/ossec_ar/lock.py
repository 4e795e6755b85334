"""Serialise runs with ``flock(2)`` on a lock file of our own.

execd starts one process per alert, and hundreds at once when it stops, so
the check-then-change on the firewall must not interleave.  A kernel lock is
released when its holder dies, so there is never a stale lock to clean up and
never a reason to kill another process.
"""

import errno
import fcntl
import os
import time

from .exits import TEMPFAIL, failed

# Polling, rather than a blocking flock interrupted by a timer, keeps the
# signal module (and its enum import) off the hot path.
_FIRST_PAUSE = 0.002
_LONGEST_PAUSE = 0.05


def lock_file(prefix, program):
    """Each program's lock file, under the install prefix (never the cwd)."""
    return os.path.join(prefix, "var", "run", "ossec-ar-%s.lock" % program)


class FileLock:
    def __init__(self, path, wait):
        self.path = path
        self.wait = wait
        self._fd = None

    def __enter__(self):
        self._fd = _open_lock_file(self.path)
        deadline = time.monotonic() + self.wait
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    self._close()
                    raise failed(TEMPFAIL, "cannot lock %s: %s"
                                 % (self.path, error.strerror))
            if time.monotonic() >= deadline:
                self._close()
                raise failed(TEMPFAIL, "lock %s still held by another run after %gs"
                             % (self.path, self.wait))
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def __exit__(self, *exc_info):
        self._close()

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)   # closing releases the lock
            self._fd = None


def _open_lock_file(path):
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, 0o750, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                       | os.O_NOFOLLOW | os.O_NOCTTY, 0o640)
    except OSError as error:
        raise failed(TEMPFAIL, "cannot open lock file %s: %s"
                     % (path, error.strerror))
