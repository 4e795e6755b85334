"""host-deny: block or unblock one address in the tcp_wrappers files."""

from . import atomicfile, hostsfile, ledger, platform
from .checks import before_change
from .lock import FileLock, lock_file


PROGRAM = "host-deny"


def respond(prefix, request):
    address, settings = before_change(prefix, request)
    style = hostsfile.style_for(platform.settle(settings))
    with FileLock(lock_file(prefix, PROGRAM), settings.host_deny_lock_wait):
        status, where = change(style, request.action, address)
        problem = ledger.record(prefix, PROGRAM, request.action, address, style.path,
                                request.rule_id, request.alert_id)
    return status, str(address), where + ("; " + problem if problem else "")


def change(style, action, address):
    """Add or delete *address* in *style*'s file; (status, where).

    The caller holds host-deny's lock: this program, and ``ossec-ar``.
    """
    path = atomicfile.resolve(style.path)
    data = atomicfile.read(path)
    if action == "add":
        status, new = _add(data, address, style)
    else:
        status, new = _delete(data, address, style)
    if new is not None:
        atomicfile.replace(path, new)
    return status, path if path == style.path else "%s (via %s)" % (path, style.path)


def _add(data, address, style):
    new = hostsfile.add(data, address, style)
    return ("already blocked", None) if new is None else ("blocked", new)


def _delete(data, address, style):
    new, removed = hostsfile.delete(data, address, style)
    if not removed:
        return "was not blocked", None
    return "unblocked", new
