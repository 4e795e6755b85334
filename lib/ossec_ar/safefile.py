"""Opening files as root where other users can write.

On real installs the directories we touch are not root's alone: OSSEC
gives ``logs/`` to the ``ossec`` user and ``var/run/`` to its group, and
Wazuh gives ``etc/`` to its own user.  Whoever holds that user or group can
plant a symbolic link, a FIFO or a hard link where we expect a file of
ours.  So every file we open as root goes through :func:`open_file`:

- the last component is never followed (``O_NOFOLLOW``);
- the open never waits (``O_NONBLOCK``: a FIFO would block a reader for
  ever) and never takes a controlling terminal (``O_NOCTTY``);
- what was opened must be a regular file with one name: a FIFO, a
  device, a directory or a second name of some other file is refused.

The link count alone cannot stop a hard link: whoever planted one can
remove the extra name between our ``open`` and our ``fstat``, and the
count is 1 again.  So a file in a directory that someone other than root
can write (the log in ``logs/``) is opened with :func:`open_shared`, which
also requires the opened file to belong to that directory's owner: nobody
but root can give a file to another uid, so a second name of a file of
root's (``/etc/ld.so.preload``) is always refused, whatever the timing.

Files whose content steers us (the configuration, the ledger as ossec-ar
reads it back) must also be *trusted* (:func:`untrusted`): owned by root,
writable by nobody else, in directories that only root can change.
"""

import errno
import os
import stat

FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What open(2) says when O_NOFOLLOW met a symbolic link: ELOOP on Linux,
# Solaris and AIX, EMLINK on FreeBSD and macOS, EFTYPE on NetBSD.
_LINK_ERRORS = {errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP)}
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


class Unsafe(OSError):
    """A path we refuse to use.  ``strerror`` says why, for the log."""

    def __init__(self, path, reason):
        OSError.__init__(self, errno.EPERM, reason, path)


def open_file(path, flags, mode=0o600):
    """``(descriptor, fstat, created)`` for the regular file *path*, opened
    with *flags* plus :data:`FLAGS`; raises :class:`Unsafe` for anything
    else.

    With ``O_CREAT`` in *flags*, a file this call creates gets *mode*
    exactly, whatever the umask, and ``created`` is True.
    """
    created = False
    for _ in range(3):
        try:
            fd = os.open(path, (flags & ~os.O_CREAT) | FLAGS)
            break
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
        except OSError as error:
            raise _explained(path, error)
        try:
            fd = os.open(path, flags | os.O_EXCL | FLAGS, mode)
            created = True
            break
        except FileExistsError:
            continue                # someone else created it just now
        except OSError as error:
            raise _explained(path, error)
    else:
        raise Unsafe(path, "keeps appearing and disappearing")
    try:
        info = os.fstat(fd)
        reason = not_plain(info)
        if reason:
            raise Unsafe(path, reason)
        if created and info.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
            info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd, info, created


def _explained(path, error):
    if error.errno in _LINK_ERRORS or error.errno == errno.ENXIO:
        # ENXIO: a FIFO without a reader, or a device, opened for writing.
        return Unsafe(path, _describe(path) or error.strerror)
    return error


def open_shared(path, flags, mode=0o600):
    """:func:`open_file` for a file whose directory others may write:
    ``(descriptor, fstat, created, stat of the directory)``.

    Of the two ways to make such an open safe, opening with the directory
    owner's uid, or opening as root and then requiring the file to be that
    owner's, we take the second: one ``fstat`` where the first would switch
    a root process's credentials twice per file (and its groups, which are
    restored differently on each system), and the answer is the same on
    every system we run on.  The directory is found by its name, which
    costs no descriptor (a run short of them still gets its log): the
    directory above it is root's (the prefix), so nobody else can put
    another directory under that name.  A file this call creates is
    root's until the caller gives it away (the log gives it to the
    directory's owner).
    """
    fd, info, created = open_file(path, flags, mode)
    try:
        directory_info = os.stat(os.path.dirname(path) or ".")
        reason = None if created else foreign(info, directory_info)
        if reason:
            raise Unsafe(path, reason)
    except BaseException:
        os.close(fd)
        raise
    return fd, info, created, directory_info


def foreign(info, directory_info):
    """Why a file (its fstat *info*) in a directory (*directory_info*) may
    be a second name of a file of someone other than the directory's
    owner, or None.

    In a directory that only root can change, nothing can have been
    planted.  In one owned by another user, that user could have linked
    any file they can see into it; only the files they own are theirs to
    write anyway.  In a directory owned by root that others may write,
    nothing tells our file from a link to one of root's, so nothing there
    is used.
    """
    owner = directory_info.st_uid
    writable_by_others = directory_info.st_mode & 0o022
    if owner == 0 and not writable_by_others:
        return None
    if owner == 0:
        return ("is in a directory owned by root that %s can write (mode %04o): it may"
                " be a second name of any file of root's; refused"
                % ("any user" if writable_by_others & 0o002 else "its group",
                   directory_info.st_mode & 0o7777))
    if info.st_uid != owner:
        return ("is owned by uid %d, not by uid %d, the owner of its directory: it may"
                " be a second name of another user's file; refused" % (info.st_uid, owner))
    return None


def read_file(path, limit):
    """The bytes of the regular file *path* (at most *limit*), or None if
    it does not exist; with its fstat: ``(data, info)``."""
    try:
        fd, info, _ = open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, None
    try:
        chunks, size = [], 0
        while size < limit:
            # Sized by the file, since os.read allocates all it is asked
            # for; /proc and /sys files say 0.
            wanted = info.st_size + 1 - size if info.st_size else 4096
            chunk = os.read(fd, max(1, min(wanted, limit - size, 1 << 20)))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), info
    finally:
        os.close(fd)


def not_plain(info):
    """Why a file with this stat is not a plain file of its own, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "is %s, not a regular file" % _kind(info.st_mode)
    if info.st_nlink > 1:
        return "has %d names (hard links); refused, one may be a system file" % (
            info.st_nlink)
    return None


def untrusted(path, info, top):
    """Why the file *path* (its fstat *info*) may not steer us, or None.

    Trusted means owned by root, writable by nobody else, and every
    directory from *top* down to the file's own likewise: otherwise someone
    other than root could swap the file or change what it says.  The first
    problem from the top down is the one given.
    """
    reason = unsafe_directories(os.path.dirname(path), top)
    if reason is None:
        reason = _not_root_only(info)
        if reason:
            reason = "%s %s" % (path, reason)
    return reason


def unsafe_directories(directory, top):
    """Why *directory*, or one above it up to *top* (both included), can be
    changed by someone other than root; or None."""
    chain = []
    current = directory
    while True:
        chain.append(current)
        if current == top or os.path.dirname(current) == current:
            break
        current = os.path.dirname(current)
    for path in reversed(chain):            # from the top down
        try:
            link = os.lstat(path)
            info = os.stat(path)
        except OSError as error:
            return "%s: %s" % (path, error.strerror)
        if stat.S_ISLNK(link.st_mode) and link.st_uid != 0:
            return "%s is a symbolic link owned by uid %d, not root" % (path, link.st_uid)
        if not stat.S_ISDIR(info.st_mode):
            return "%s is not a directory" % path
        reason = _not_root_only(info)
        if reason:
            return "%s %s" % (path, reason)
    return None


def _not_root_only(info):
    if info.st_uid != 0:
        return "is owned by uid %d, not root" % info.st_uid
    # In a sticky directory (/tmp) others may add names but not remove or
    # rename ours; what we use below it is checked to be root's in turn.
    sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
    if info.st_mode & 0o022 and not sticky:
        who = "any user" if info.st_mode & 0o002 else "its group"
        return "is writable by %s (mode %04o)" % (who, info.st_mode & 0o7777)
    return None


def _describe(path):
    try:
        return "is %s, not a regular file" % _kind(os.lstat(path).st_mode)
    except OSError:
        return None


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"
