#!/usr/bin/python3 -IS
"""OSSEC active response: lift the blocks of an IP address (add), everywhere
firewall-drop.sh and host-deny.sh may have put them, on the manager's
word (agent_control -b IP -f unblock0 -u AGENT).  See README.md, "Lifting a
block from the manager".  -I keeps the caller's PYTHON* variables, user
site and working directory out; -S skips site-packages, which we do not use.
"""
import sys

# The byte-code is the install's, compiled for the interpreter of the
# shebang; a run under any other (or of a changed source) writes none,
# so no run as root leaves files that no package owns.
sys.dont_write_bytecode = True
# Seconds the interpreter may take to load our modules (see below).
STARTUP_BOUND = 10

try:
    # The imports, bounded: at an address-space limit just short of what
    # they need, CPython can spin for ever on failed allocations (seen
    # under prlimit --as), and execd waits for every run.  The default
    # action of SIGALRM ends such a run, which has written nothing yet;
    # a start takes a few tens of milliseconds.
    import _signal
    _signal.alarm(STARTUP_BOUND)
    import os
    # Our package lives in <prefix>/lib, both in the source tree and installed.
    PREFIX = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__))))
    sys.path.insert(0, os.path.join(PREFIX, "lib"))
    from ossec_ar import cli, unblock
    _signal.alarm(0)
    cli.standard_descriptors()
    code = cli.main("unblock", sys.argv, PREFIX, unblock.respond)
except (OSError, MemoryError, SystemError):
    # Out of descriptors or memory before the run could write its outcome
    # line (short of memory, the interpreter's own imports can also fail
    # with SystemError): exit 75, a temporary failure, not a traceback.
    sys.exit(75)
# Skip the interpreter's teardown (about 2 ms, a sixth of a run): the log
# has been written with os.write and closed, and nothing else is buffered.
os._exit(code)
