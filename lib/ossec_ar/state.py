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
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    except OSError as error:
        raise failed(TEMPFAIL, "cannot create %s: %s" % (path, error.strerror))
    try:
        os.chmod(path, mode)            # exactly, whatever the umask
    except OSError as error:
        raise failed(TEMPFAIL, "cannot set the mode of %s: %s" % (path, error.strerror))
