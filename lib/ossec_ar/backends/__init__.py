"""Firewall backends, one module each, registered by name below.

A backend module defines ``Backend``, constructed with the run's
:class:`~ossec_ar.config.Settings`, with three methods:

``missing(address)``
    None when the backend can act on this address here, otherwise the
    reason it cannot (a missing tool, an unsupported address family).
``add(address)`` and ``delete(address)``
    Change the firewall and return ``(status, detail)``: status is one of
    ``blocked``, ``already blocked``, ``unblocked``, ``was not blocked``;
    detail says where, for the log.  A failure raises
    :class:`~ossec_ar.exits.Stop`.

They run under the program's lock, so they may check and then change.
"""

from ..exits import UNAVAILABLE, failed

# name -> module; adding a backend is one file and one line here.
REGISTRY = {
    "iptables": "ossec_ar.backends.iptables",
}

# What ``backend = auto`` tries, in order, per uname(2) system name.
AUTOMATIC = {
    "Linux": ("iptables",),
}


def choose(settings, system, address):
    """The backend instance that will act on *address*, or exit 69."""
    if settings.backend == "auto":
        names = AUTOMATIC.get(system, ())
        if not names:
            raise failed(UNAVAILABLE, "no firewall backend for %s" % system)
    else:
        names = (settings.backend,)
    reasons = []
    for name in names:
        # __import__ rather than importlib: the importlib package is not
        # loaded at start-up, and every run would pay for it.
        module = __import__(REGISTRY[name], fromlist=["Backend"])
        backend = module.Backend(settings)
        reason = backend.missing(address)
        if reason is None:
            return backend
        reasons.append("%s: %s" % (name, reason))
    raise failed(UNAVAILABLE, "no usable firewall tool (%s)" % "; ".join(reasons))
