#!/usr/bin/python3 -IS
"""OSSEC active response: block (add) or unblock (delete) an IP address.

Drop-in replacement for OSSEC's firewall-drop.sh; see README.md.  -I keeps
the caller's PYTHON* variables, user site and working directory out; -S
skips site-packages, which we do not use.
"""
import os
import sys

# Our package lives in <prefix>/lib, both in the source tree and installed.
PREFIX = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))
sys.path.insert(0, os.path.join(PREFIX, "lib"))

try:
    from ossec_ar import cli, firewall  # noqa: E402
except (OSError, MemoryError):
    # Out of descriptors or memory before the log could even be opened:
    # exit 75 (temporary failure) rather than a traceback nobody reads.
    os._exit(75)

cli.standard_descriptors()
code = cli.main("firewall-drop", sys.argv, PREFIX, firewall.respond)
# Skip the interpreter's teardown (about 2 ms, a sixth of a run): the log
# has been written with os.write and closed, and nothing else is buffered.
os._exit(code)
