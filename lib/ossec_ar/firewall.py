"""firewall-drop: block or unblock one address in the host firewall."""

from . import backends, platform
from .checks import before_change
from .lock import FileLock, lock_file


def respond(prefix, request):
    address, settings = before_change(prefix, request)
    system = platform.settle(settings)
    # Every tool call, the read-only checks of the choice included, runs
    # under the lock: one run at a time talks to the firewall.
    with FileLock(lock_file(prefix, "firewall-drop"), settings.lock_wait):
        if request.action == "add":
            backend = backends.choose(settings, system, address)
            status, detail = backend.add(address)
        else:
            status, detail = backends.delete_everywhere(settings, system, address)
    return status, str(address), detail
