"""Exit codes: one meaning each, following sysexits(3).

execd ignores them, but administrators' scripts, ``ossec-ar`` and our own
tests read them; the README has the same table.
"""

import errno

OK = 0            # done, including "already blocked", "was not blocked" and
                  # "not ours, left"
USAGE = 64        # missing arguments or unknown action
REFUSED = 65      # the address is not one we will block
UNAVAILABLE = 69  # no usable firewall tool on this host
INTERNAL = 70     # a bug: the log has a one-line traceback summary
BYPASSED = 72     # a name execd runs is not our link, or our program is missing
IOERR = 74        # a file could not be read or written; it is left as it was
TEMPFAIL = 75     # lock not obtained in time, or the firewall tool failed
NOPERM = 77       # not running as root
CONFIG = 78       # the configuration file is broken

# The system ran out of descriptors, memory or processes: a temporary
# failure (75), worth another try, never a broken configuration or a bug.
RESOURCE_ERRORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN,
                             errno.ENOBUFS))


# What a run did, as the outcome line says it (a Stop says "refused" or
# "failed", or one of these when there was nothing left to do).
BLOCKED = "blocked"
ALREADY_BLOCKED = "already blocked"
UNBLOCKED = "unblocked"
NOT_BLOCKED = "was not blocked"
# A delete that found the block is someone else's (an add found it already
# there and the ledger has no block of ours): it is left in place, exit 0.
NOT_OURS = "not ours, left"


class Stop(Exception):
    """Ends a run early, with an outcome line and an exit code.

    ``status`` is the outcome word written to the log: ``usage`` when the
    request is not of the form the program takes (exit 64), ``refused``
    when it names an address we will not block, ``failed`` when the host
    could not carry it out, or a plain outcome such as ``already blocked``
    when there is nothing left to do (Wazuh's execd answering ``abort``).
    """

    def __init__(self, code, status, reason):
        Exception.__init__(self, reason)
        self.code = code
        self.status = status
        self.reason = reason


def usage(reason):
    """A request (or ossec-ar command line) not of the form it must have:
    exit 64, and the outcome says ``usage``, not ``refused``."""
    return Stop(USAGE, "usage", reason)


def refused(code, reason):
    return Stop(code, "refused", reason)


def failed(code, reason):
    return Stop(code, "failed", reason)


class Unusable(Stop):
    """The backend's tool is here but this system cannot do what it needs
    (a kernel without nf_tables or ip_set): exit 69, and ``auto`` goes on
    to its next choice."""

    def __init__(self, reason):
        Stop.__init__(self, UNAVAILABLE, "failed", reason)
