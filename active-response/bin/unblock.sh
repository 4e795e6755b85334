#!/usr/bin/python3 -IS
"""PLACEHOLDER, not the real program: the stock-names branch needed a file
to install as ossec-ar-unblock (with the links unblock.sh and unblock).
The lead's unblock.sh and lib/ossec_ar/unblock.py replace it; until then
ossec_ar.unblock does not exist and a run of this file fails.

Its shape is firewall-drop.sh's.
"""
import sys

try:
    import os
    # Our package lives in <prefix>/lib, both in the source tree and installed.
    PREFIX = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__))))
    sys.path.insert(0, os.path.join(PREFIX, "lib"))
    from ossec_ar import cli, unblock
    cli.standard_descriptors()
    code = cli.main("unblock", sys.argv, PREFIX, unblock.respond)
except (OSError, MemoryError, SystemError):
    sys.exit(75)
os._exit(code)
