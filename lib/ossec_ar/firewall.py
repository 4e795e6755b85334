"""firewall-drop: block or unblock one address in the host firewall."""

import os

from . import address as addresses
from . import backends, config, platform
from .exits import NOPERM, REFUSED, failed, refused
from .lock import FileLock

LOCK_NAME = "ossec-ar-firewall-drop.lock"


def lock_path(prefix):
    return os.path.join(prefix, "var", "run", LOCK_NAME)


def respond(prefix, request):
    address = addresses.parse(request.address)
    settings = config.load(config.config_path(prefix))
    for text, network in settings.allowlist:
        if address in network:
            raise refused(REFUSED, "%s is on the allowlist (%s)" % (address, text))
    if os.geteuid() != 0:
        raise failed(NOPERM, "must run as root (effective uid %d)" % os.geteuid())
    backend = backends.choose(settings, platform.system_name(), address)
    with FileLock(lock_path(prefix), settings.lock_wait):
        if request.action == "add":
            status, detail = backend.add(address)
        else:
            status, detail = backend.delete(address)
    return status, str(address), detail
