"""OSSEC's ar_log decoder and rules 601-604, as docs/contract.md, section 4,
describes them.

Used to check that our invocation lines decode exactly as the stock ones do
and that our outcome lines never decode as invocations.
"""

import re

AR_LOG = re.compile(
    r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [A-Za-z0-9@_-]+ \d{4} "
    r"(/\S*/active-response/bin/(\S+)) (add|delete) - (\S+) (\d+\.\d+) (\d+)")

RULES = {("firewall-drop.sh", "add"): 601, ("firewall-drop.sh", "delete"): 602,
         ("host-deny.sh", "add"): 603, ("host-deny.sh", "delete"): 604}


def decode(line):
    """(rule id, source ip) that OSSEC would alert with, or None."""
    match = AR_LOG.match(line)
    if not match:
        return None
    rule = RULES.get((match.group(2), match.group(3)))
    return (rule, match.group(4)) if rule else None


# What the parent decoder ar_log's prematch consumes of any line that starts
# like an invocation line: the date and the program's directory.  Children
# such as ours read what follows (offset="after_parent").
AR_LOG_PARENT = re.compile(
    r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [A-Za-z0-9@_-]+ \d{4} "
    r"/\S*/active-response/bin/")
