"""The OSSEC argv form of an active-response request.

``$1`` action, ``$2`` user, ``$3`` address, ``$4`` alert id, ``$5`` rule id,
then the event location split on spaces, which we ignore.  Only the action
and the address steer what we do; the rest is recorded in the log as given.
"""

from .exits import usage

ACTIONS = ("add", "delete")
MAX_ARGUMENTS = 30      # execd never passes more (docs/contract.md, section 2)
FORM = "add|delete USER IP [ALERT_ID [RULE_ID [LOCATION...]]]"
USAGE_TEXT = "expected: " + FORM


class Request:
    __slots__ = ("action", "user", "address", "alert_id", "rule_id", "confirm", "name")

    def __init__(self, action, user, address, alert_id="-", rule_id="-"):
        self.action = action
        self.user = user
        self.address = address          # the text of $3, not yet validated
        self.alert_id = alert_id
        self.rule_id = rule_id
        # confirm(address) is called before an add changes anything, once the
        # address has passed every check; it raises to stop the run.  Only
        # Wazuh's protocol has one (its check_keys exchange).
        self.confirm = None
        # The name execd ran us by, without ".sh": some names choose a backend.
        self.name = None


def from_argv(args):
    """Build a :class:`Request` from ``sys.argv[1:]`` or raise exit 64
    (``usage``)."""
    if not args:
        raise usage("no arguments; " + USAGE_TEXT)
    if len(args) > MAX_ARGUMENTS:
        raise usage("%d arguments, at most %d; %s"
                % (len(args), MAX_ARGUMENTS, USAGE_TEXT))
    if args[0] not in ACTIONS:
        # Raw text: the outcome line escapes it, once.
        raise usage("unknown action %s; %s" % (args[0], USAGE_TEXT))
    if len(args) < 3:
        raise usage("no IP address argument; " + USAGE_TEXT)
    rest = list(args[3:5]) + ["-", "-"]
    return Request(args[0], args[1], args[2], rest[0], rest[1])
