"""What ``ossec-ar status`` shows of the protections: every address they
cover now, read from whole tables (status is run by a person, not on every
add, so this stays out of ``protect``, which every add loads)."""

import ipaddress

from . import address as addresses
from .protect import NAMES, RESOLV_CONF, Unavailable, _host_of, read_manager, resolvers


def listing(protections, prefix, system):
    """``(rows, notes)``: ``rows`` are ``(Address, protection, reason)``
    for every address the protections in *protections* cover now, sorted;
    ``notes`` say which could not be listed and why.  Whole tables are
    read here (status is run by a person, not on every add)."""
    rows, notes = [], []
    host = _host_of(system)
    try:
        for name in NAMES:
            if name not in protections:
                continue
            try:
                rows += [(address, name, reason) for address, reason in
                         _LISTINGS[name](host, prefix)]
            except Unavailable as problem:
                notes.append("protection '%s' unavailable: %s" % (name, problem))
    finally:
        host.close()
    rows.sort(key=lambda row: (row[0], NAMES.index(row[1])))
    return rows, notes


def _list_self(host, prefix):
    return host.own_addresses()


def _list_gateways(host, prefix):
    return host.gateways()


def _list_resolvers(host, prefix):
    return [(_address(packed), "resolver (%s)" % RESOLV_CONF) for packed in resolvers()]


def _list_manager(host, prefix):
    manager, problem = read_manager(prefix)
    found = [(_address(packed), "manager (%s)" % where)
             for packed, where in manager.addresses.items()]
    known = set(manager.addresses)
    found += [(_address(packed), "manager (the agent daemon's connection to port %d)" % port)
              for packed, port in host.agent_peers(manager.ports, manager.protocols)
              if packed not in known]
    if problem is not None and not found:
        raise problem
    return found


_LISTINGS = {"self": _list_self, "gateways": _list_gateways, "resolvers": _list_resolvers,
             "manager": _list_manager}


def _address(packed):
    return addresses.host(str(ipaddress.ip_address(packed)))
