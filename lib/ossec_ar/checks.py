"""The checks every program makes before it changes anything."""

import os

from . import address as addresses
from . import config
from .exits import NOPERM, REFUSED, failed, refused


def before_change(prefix, request):
    """The parsed address and the settings, or the refusal.

    In order: a bad address (65), a broken configuration (78), an address
    on the allowlist (65), not running as root (77); then, for an add, the
    request's own confirmation (Wazuh's check_keys), which may stop the run.
    """
    address = addresses.parse(request.address)
    settings = config.load(config.config_path(prefix))
    for text, network in settings.allowlist:
        if address in network:
            raise refused(REFUSED, "%s is on the allowlist (%s)" % (address, text))
    if os.geteuid() != 0:
        raise failed(NOPERM, "must run as root (effective uid %d)" % os.geteuid())
    if request.action == "add" and request.confirm is not None:
        request.confirm(address)
    return address, settings
