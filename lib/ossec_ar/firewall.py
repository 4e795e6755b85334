"""firewall-drop: block or unblock one address in the host firewall."""

from . import backends, ledger, platform
from .checks import before_change
from .lock import FileLock, lock_file


PROGRAM = "firewall-drop"


def respond(prefix, request):
    address, settings = before_change(prefix, request)
    system = platform.settle(settings)
    # Every tool call, the read-only checks of the choice included, runs
    # under the lock: one run at a time talks to the firewall.
    with FileLock(lock_file(prefix, PROGRAM), settings.lock_wait):
        if request.action == "add":
            backend = backends.choose(settings, system, address)
            status, detail = backend.add(address)
            used = backend.name
        else:
            status, detail = backends.delete_everywhere(settings, system, address)
            used = "-"
        problem = ledger.record(prefix, PROGRAM, request.action, address, used,
                                request.rule_id, request.alert_id)
    return status, str(address), detail + ("; " + problem if problem else "")
