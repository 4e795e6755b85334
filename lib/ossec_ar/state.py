"""Our own directory under the prefix: the locks and the ledgers.

``<prefix>/var/ossec-ar``, owned by root, mode 0700.  Not ``var/run``:
OSSEC and Wazuh make it writable by their group, which could unlink a lock
file there (two runs would then hold two different locks) or plant one.
``var/`` itself is root's alone (OSSEC installs it root:ossec 0550, Wazuh
root:wazuh 0750), so nobody but root can touch a directory of ours in it.
Before a run uses the directory it checks it, and every directory above it
up to the prefix: owned by root, writable by nobody else.
"""

import os
import stat

from .exits import CONFIG, TEMPFAIL, failed
from .safefile import unsafe_directories

NAME = os.path.join("var", "ossec-ar")
MODE = 0o700
# var/ exists on every OSSEC and Wazuh install; only a run from the source
# tree creates it.
_PARENT_MODE = 0o755


def path(prefix, name):
    """``<prefix>/var/ossec-ar/<name>``, its directory made and checked."""
    return os.path.join(directory(prefix), name)


def directory(prefix):
    """The state directory of *prefix*, created when missing.

    Stops the run with exit 78 when it, or a directory above it up to the
    prefix, could be changed by someone other than root, and with 75 when
    it cannot be created.
    """
    found = os.path.join(prefix, NAME)
    _make(os.path.dirname(found), _PARENT_MODE)
    _make(found, MODE)
    reason = unsafe_directories(found, prefix)
    if reason:
        raise failed(CONFIG, "unsafe state directory: %s; ossec-ar keeps its locks"
                      " and ledgers there and trusts it only if root alone can"
                      " change it" % reason)
    return found


def _make(path, mode):
    """Create the directory *path* for root with *mode*, following no link.

    The mode and owner are set through a descriptor of the directory this
    call made, opened with ``O_NOFOLLOW`` and checked first: were the new
    name swapped for a link (possible only if someone else could write the
    parent, which the check after us refuses), ``chmod`` on the path would
    change whatever the link points to.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    except OSError as error:
        raise failed(TEMPFAIL, "cannot create %s: %s" % (path, error.strerror))
    try:
        fd = os.open(path, _DIRECTORY_FLAGS)
    except OSError as error:
        raise failed(CONFIG, "unsafe state directory: %s changed as it was created (%s)"
                     % (path, error.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise failed(CONFIG, "unsafe state directory: %s changed as it was created"
                         " (now owned by uid %d)" % (path, info.st_uid))
        # Exactly, whatever the umask and a set-group-ID parent.
        if info.st_gid != 0 and os.geteuid() == 0:
            os.fchown(fd, -1, 0)
        if info.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    except OSError as error:
        raise failed(TEMPFAIL, "cannot set the mode of %s: %s" % (path, error.strerror))
    finally:
        os.close(fd)


_DIRECTORY_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW
                    | os.O_CLOEXEC)
