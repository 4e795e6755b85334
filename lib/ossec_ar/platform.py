"""Which system we run on, and where its firewall tools are.

This is the one seam for both: the kernel's own name and the fixed tool
directories, unless the root-owned configuration file says otherwise
(``[system] name`` and ``tool_dirs``).  Nothing in the caller's
environment can move either, and tests point both at fake tools here.
"""

import os

from . import commands


def system_name(settings=None):
    """The system's name as uname(2) gives it (Linux, FreeBSD, SunOS, AIX...)."""
    if settings is not None and settings.system_name:
        return settings.system_name
    return os.uname().sysname


def settle(settings):
    """Apply the configured tool directories; return the system's name."""
    if settings.tool_dirs:
        commands.search_in(settings.tool_dirs)
    return system_name(settings)
