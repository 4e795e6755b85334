"""unblock: lift one address everywhere we block it, on the manager's word.

A block cannot be lifted with OSSEC's own ``agent_control -b`` (it only
runs a response's add): run as an active response with ``add`` for an
address, this program lifts it as ``ossec-ar unblock`` does, from every
firewall layout of ours and from hosts.deny, each through its program
(firewall-drop, host-deny) under that program's lock, recorded in that
program's ledger and logged.  The delete that execd still holds for the
original block later finds nothing to do ("was not blocked").  When the
address's block is an IPv6 prefix (``ipv6_prefix``), the prefix is lifted
with every address that holds it, as ``ossec-ar unblock`` lifts it
(``Program.release``).

The address goes through the same parser and refusals as the other
programs'; the allowlist does not apply, and a broken or untrusted
configuration does not stop it (lifting is always allowed).  A
``delete`` for it (execd has none to send when ``timeout_allowed`` is no)
lifts again, which changes nothing.
"""

from . import address as addresses
from . import config, ledger
from .exits import UNBLOCKED, Stop
from .firewall import FirewallDrop
from .hostdeny import HostDeny
from .program import combined, lift, require_root


def respond(prefix, request):
    address = addresses.parse(request.address, lifting=True)
    ledger.now()                        # a clock no record can hold stops here
    settings, problem = config.load_for_lifting(prefix)
    require_root()
    if request.action == "add" and request.confirm is not None:
        request.confirm(address)
    programs = [FirewallDrop(prefix, settings), HostDeny(prefix, settings)]
    status, detail, code = combined(lift(programs, address, request.rule_id,
                                         request.alert_id), UNBLOCKED)
    if problem:
        detail += "; " + config.set_aside(problem)
    if code:
        raise Stop(code, status, detail)
    return status, address.text, detail
