"""firewall-drop: block or unblock one address in the host firewall."""

from . import backends, platform
from .checks import before_change
from .lock import FileLock, lock_file


def respond(prefix, request):
    address, settings = before_change(prefix, request)
    backend = backends.choose(settings, platform.system_name(), address)
    with FileLock(lock_file(prefix, "firewall-drop"), settings.lock_wait):
        if request.action == "add":
            status, detail = backend.add(address)
        else:
            status, detail = backend.delete(address)
    return status, str(address), detail
