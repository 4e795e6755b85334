"""Install's ``ossec-ar adopt``: the stock scripts' blocks become ours.

A delete lifts only what the ledger says one of our programs put there.
The blocks that the stock scripts made before ossec-ar was installed are
the one exception: execd still owes them a delete, which now runs our
program, and the stock delete would have lifted them.  So at install (the
packages' postinst and ``make install``) each block in a stock form that
is there at that moment is recorded in the ledger as ``adopt``: the rules
``-s IP -j DROP`` in INPUT and FORWARD, the members of a layout the stock
scripts share with ours (chain OSSEC of OSSEC's main, pf's
``ossec_fwtable``, npf's ``ossec_blacklist``, the IP Filter and AIX rules,
the BSD blackhole routes), route-null.sh's reject routes, ipfw.sh's
table 1 (where its rules read it) and the hosts.deny lines.  It runs once
per installation (the state directory's ``adopted`` file says when it
did): anything of that form that appears later is someone else's, and a
delete leaves it.

Each program's part runs under its lock, and records only what its ledger
does not already hold as ours (an upgrade from a version without this
command adopts what it would have lifted).
"""

import os

from . import ledger, state
from .exits import TEMPFAIL, failed

MARKER = "adopted"


def adopt(prefix, programs):
    """([(program name, [(Address, where)] adopted)], notes); nothing at all
    if this installation has adopted before.  A layout that could not be
    listed fails the run (75) after the rest is recorded, unmarked."""
    marker = state.path(prefix, MARKER)
    if os.path.lexists(marker):
        return None, ["already done at install (%s exists): a block of the stock form"
                      " made since then is not ours" % marker]
    notes, done, unlisted = [], [], []
    for program in programs:
        with program.lock():
            records, _ = ledger.read_trusted(prefix, program.name, notes)
            ours = {(entry.address, entry.backend)
                    for entries in ledger.standing(records).values()
                    for entry in entries if entry.op in ledger.OURS}
            adopted = [(address, where)
                       for address, wheres in sorted(program.adoptable(unlisted).items())
                       for where in wheres if (address.text, where) not in ours]
            problem = ledger.record_many(prefix, program.name, [
                ledger.Record(ledger.now(), "adopt", program.name, address.text, where)
                for address, where in adopted])
            if problem:
                raise failed(TEMPFAIL, problem)
        done.append((program.name, adopted))
    if unlisted:
        # Not marked done: a layout that could not be read may hold stock
        # blocks, and the next run (the administrator's, or the next
        # upgrade's) adopts them, and nothing twice.
        raise failed(TEMPFAIL, "adopted %s; not done: %s: run ossec-ar adopt again" % (
            "; ".join("%s: %d" % (name, len(found)) for name, found in done),
            "; ".join(unlisted)))
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    return done, notes
