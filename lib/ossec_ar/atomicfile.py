"""Replace a file so that readers see the old or the new one, never a mix.

The new content goes to a temporary file created exclusively in the same
directory (never in /tmp, never a name another user can predict and plant),
takes the old file's mode, owner, group and SELinux label, is synced, and is
renamed over the old one; then the directory is synced.  Any failure leaves
the old file as it was.  A run killed half-way can leave its temporary file
behind; the next run, under the same lock, removes it.
"""

import errno
import os
import stat

from . import safefile
from .exits import IOERR, RESOURCE_ERRORS, TEMPFAIL, failed

_TEMP_MARK = ".ossec-ar-"
_SELINUX = "security.selinux"
NEW_FILE_MODE = 0o644


# Symbolic links followed at most, from the name to the file.
_MAX_LINKS = 8
# A tcp_wrappers file is read whole; nothing real comes near this.
MAX_SIZE = 1 << 26


def resolve(path):
    """The file that *path* names, for a change made as root.

    A symbolic link is followed, and the file edited at its target, only
    when root alone can have made it so: every link on the way is owned by
    root, and the file it ends at is a regular file (or absent) owned by
    root and writable by nobody else, in directories that only root can
    change.  Anything else stops the run with exit 74, nothing changed.
    """
    current = path
    for _ in range(_MAX_LINKS + 1):
        directory = os.path.dirname(current)
        reason = safefile.unsafe_directories(directory, "/")
        if reason is None:
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                return current
            except OSError as error:
                raise _failed(error, "cannot use %s: %s" % (current, error.strerror))
            if not stat.S_ISLNK(info.st_mode):
                reason = safefile.not_plain(info) or safefile.untrusted(current, info, "/")
                if reason is None:
                    return current
                reason = reason if reason.startswith(current) else current + " " + reason
            elif info.st_uid != 0:
                reason = "%s is a symbolic link owned by uid %d, not root" % (
                    current, info.st_uid)
            else:
                target = os.path.join(directory, os.readlink(current))
                current = os.path.join(os.path.realpath(os.path.dirname(target)),
                                       os.path.basename(target))
                continue
        raise failed(IOERR, "refused to edit %s: %s; nothing changed" % (path, reason))
    raise failed(IOERR, "refused to edit %s: more than %d symbolic links; nothing changed"
                 % (path, _MAX_LINKS))


def _failed(error, reason):
    """The Stop for *error*: 74, the file left as it was; but running out
    of descriptors, memory or processes is 75, worth another try, as in
    every other run."""
    return failed(TEMPFAIL if error.errno in RESOURCE_ERRORS else IOERR, reason)


def read(path):
    """The bytes of the regular file *path*, or None if it does not exist."""
    try:
        data, _ = safefile.read_file(path, MAX_SIZE + 1)
    except OSError as error:
        raise _failed(error, "cannot read %s: %s" % (path, error.strerror))
    if data is not None and len(data) > MAX_SIZE:
        raise failed(IOERR, "cannot read %s: larger than %d bytes" % (path, MAX_SIZE))
    return data


def replace(path, data):
    """Atomically make *data* the content of *path* (already resolved)."""
    directory, name = os.path.split(path)
    _remove_leftovers(directory, name)
    template = _template(path)
    temp = os.path.join(directory, "%s%s.%d" % (
        _temp_prefix(name), os.urandom(6).hex(), os.getpid()))
    step = "create " + temp
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise _failed(error, "cannot %s: %s; %s left as it was"
                     % (step, error.strerror, path))
    try:
        step = "write " + temp
        _write_all(fd, data)
        step = "copy owner, mode and label to " + temp
        _copy_attributes(fd, template)
        step = "sync " + temp
        os.fsync(fd)
        os.close(fd)
        fd = None
        step = "rename %s over %s" % (temp, path)
        os.rename(temp, path)
    except OSError as error:
        if fd is not None:
            os.close(fd)
        _unlink_quietly(temp)
        raise _failed(error, "cannot %s: %s; %s left as it was"
                     % (step, error.strerror, path))
    _sync_directory(directory, path)


def _template(path):
    """(stat, SELinux label) of the file being replaced, or None if new."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _failed(error, "cannot stat %s: %s" % (path, error.strerror))
    label = None
    getxattr = getattr(os, "getxattr", None)      # Linux only
    if getxattr is not None:
        try:
            label = getxattr(path, _SELINUX)
        except OSError as error:
            if error.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise _failed(error, "cannot read the SELinux label of %s: %s"
                             % (path, error.strerror))
    return info, label


def _copy_attributes(fd, template):
    if template is None:
        os.fchmod(fd, NEW_FILE_MODE)        # owner: root, who runs us
        return
    info, label = template
    os.fchown(fd, info.st_uid, info.st_gid)
    os.fchmod(fd, info.st_mode & 0o7777)
    if label is not None:
        os.setxattr(fd, _SELINUX, label)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# Some systems (AIX, older Solaris) refuse fsync on a directory: there the
# rename is as durable as the system makes it, and that is not a failure.
_SYNC_UNSUPPORTED = (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP)


def _sync_directory(directory, path):
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC
    try:
        fd = os.open(directory, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        if error.errno in _SYNC_UNSUPPORTED:
            return
        raise _failed(error, "%s was replaced, but syncing %s failed: %s"
                     % (path, directory, error.strerror))


def _remove_leftovers(directory, name):
    """Temporary files of runs that were killed before their rename.

    Only the holder of the program's lock creates them, and we hold it, so
    any that exist are abandoned.
    """
    prefix = _temp_prefix(name)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if entry.startswith(prefix):
            _unlink_quietly(os.path.join(directory, entry))


def _temp_prefix(name):
    """``.hosts.deny.ossec-ar-``: hidden, and ours by its mark."""
    return ("" if name.startswith(".") else ".") + name + _TEMP_MARK


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
