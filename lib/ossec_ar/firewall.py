"""firewall-drop: block or unblock one address in the host firewall."""

from . import backends, platform
from .checks import before_change
from .lock import FileLock, lock_file


def respond(prefix, request):
    address, settings = before_change(prefix, request)
    system = platform.system_name()
    if request.action == "add":
        backend = backends.choose(settings, system, address)
        with FileLock(lock_file(prefix, "firewall-drop"), settings.lock_wait):
            status, detail = backend.add(address)
    else:
        with FileLock(lock_file(prefix, "firewall-drop"), settings.lock_wait):
            status, detail = backends.delete_everywhere(settings, system, address)
    return status, str(address), detail
