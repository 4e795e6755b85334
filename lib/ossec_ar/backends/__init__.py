"""Firewall backends, one module each, registered by name below.

A backend module defines ``Backend``, constructed with the run's
:class:`~ossec_ar.config.Settings`, with three methods:

``missing(address)``
    None when the backend can act on this address here, otherwise the
    reason it cannot (a missing tool, a service that is not running).
``members(version)``
    The addresses (``ipaddress`` objects) of that family held in our layout
    now, for ``ossec-ar list`` to hold against the ledger.  Only asked when
    ``missing`` finds the tools for that family.
``inactive(address)`` (optional)
    None when the firewall is enabled, otherwise why not.  Asked before an
    add only: a disabled firewall's tables can still be emptied, so a
    delete goes ahead.
``add(address)`` and ``delete(address)``
    Change the firewall and return ``(status, detail)``: status is one of
    ``blocked``, ``already blocked``, ``unblocked``, ``was not blocked``;
    detail says where, for the log.  A failure raises
    :class:`~ossec_ar.exits.Stop`.  A delete where our layout does not exist
    is "was not blocked", never a failure.

They run under the program's lock, so they may check and then change.
"""

from ..exits import TEMPFAIL, UNAVAILABLE, Stop, failed

# name -> (module, systems it runs on); a new backend is one line here.
REGISTRY = {
    "iptables": ("ossec_ar.backends.iptables", ("Linux",)),
    "nftables": ("ossec_ar.backends.nftables", ("Linux",)),
    "ipset": ("ossec_ar.backends.ipset", ("Linux",)),
    "firewalld": ("ossec_ar.backends.firewalld", ("Linux",)),
    "pf": ("ossec_ar.backends.pf", ("FreeBSD", "OpenBSD", "Darwin")),
    "ipfw": ("ossec_ar.backends.ipfw", ("FreeBSD",)),
    "npf": ("ossec_ar.backends.npf", ("NetBSD",)),
    "ipfilter": ("ossec_ar.backends.ipfilter", ("SunOS", "FreeBSD", "NetBSD")),
    "genfilt": ("ossec_ar.backends.genfilt", ("AIX",)),
}

# What ``backend = auto`` tries for an add, in order, per uname(2) name:
# the first whose tools are here and whose firewall is enabled.
AUTOMATIC = {
    "Linux": ("firewalld", "iptables", "nftables"),
    "FreeBSD": ("pf", "ipfw", "ipfilter"),
    "OpenBSD": ("pf",),
    "Darwin": ("pf",),
    "NetBSD": ("npf", "ipfilter"),
    "SunOS": ("ipfilter",),
    "AIX": ("genfilt",),
}


def choose(settings, system, address):
    """The backend that will carry out an add, or exit 69."""
    if settings.backend == "auto":
        names = [name for name in AUTOMATIC.get(system, ()) if name in REGISTRY]
        if not names:
            raise failed(UNAVAILABLE, "no firewall backend for %s" % system)
    else:
        names = [settings.backend]
    reasons = []
    for name in names:
        backend = load(name, settings)
        reason = backend.missing(address)
        if reason is None and hasattr(backend, "inactive"):
            reason = backend.inactive(address)
        if reason is None:
            return backend
        reasons.append("%s: %s" % (name, reason))
    raise failed(UNAVAILABLE, "no usable firewall tool (%s)" % "; ".join(reasons))


def delete_everywhere(settings, system, address):
    """Remove *address* from every layout of ours on this host.

    An address blocked before the backend was changed in the configuration
    (or by the other choice of ``auto``) must not stay blocked for ever, so
    a delete asks every backend whose tools are here, not just the chosen one.
    """
    backends = [load(name, settings) for name, (_, systems) in REGISTRY.items()
                if system in systems]
    usable = [b for b in backends if b.missing(address) is None]
    if not usable:
        reasons = ["%s: %s" % (b.name, b.missing(address)) for b in backends]
        raise failed(UNAVAILABLE, "no usable firewall tool (%s)"
                     % ("; ".join(reasons) or "none for %s" % system))
    removed, absent, errors = [], [], []
    for backend in usable:
        try:
            status, detail = backend.delete(address)
        except Stop as stop:
            errors.append(stop.reason)
            continue
        (removed if status == "unblocked" else absent).append(detail)
    if errors:
        done = "; removed from %s" % "; ".join(removed) if removed else ""
        raise failed(TEMPFAIL, "; ".join(errors) + done)
    if removed:
        return "unblocked", "; ".join(removed)
    return "was not blocked", "; ".join(absent)


def load(name, settings):
    # __import__ rather than importlib: the importlib package is not loaded
    # at start-up, and every run would pay for it.
    module = __import__(REGISTRY[name][0], fromlist=["Backend"])
    return module.Backend(settings)
