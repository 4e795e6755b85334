"""Which system we run on, for the choice of firewall backend."""

import os


def system_name():
    """The kernel's name as uname(2) gives it: Linux, FreeBSD, SunOS, AIX..."""
    return os.uname().sysname
