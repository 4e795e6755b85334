"""firewall-drop: block or unblock one address in the host firewall."""

from . import backends, ledger
from .exits import NOT_BLOCKED, TEMPFAIL, UNAVAILABLE, UNBLOCKED, Stop, Unusable, failed
from .backends.base import Broken
from .program import Program, targets


# The stock names that agents' configurations use for one firewall each
# (OSSEC's firewalld-drop.sh, nftables-drop.sh, route-null.sh and the BSD
# variants; Wazuh's names without .sh): run by such a name, we use that
# backend, whatever the configuration's ``backend`` says.  firewall-drop
# itself keeps the configured one (``auto`` by default).
BACKEND_OF_NAME = {"firewalld-drop": "firewalld", "nftables-drop": "nftables",
                   "route-null": "route", "pf": "pf", "ipfw": "ipfw", "ipfw_mac": "ipfw",
                   "npf": "npf"}


class FirewallDrop(Program):
    name = "firewall-drop"

    def __init__(self, prefix, settings=None, backend=None):
        Program.__init__(self, prefix, settings)
        self.backend = backend          # chosen by the name we run under

    def lock_wait(self):
        return self.settings.lock_wait

    def prefix_length(self):
        return self.settings.ipv6_prefix

    def block(self, address, prefer=None):
        """Every tool call, the read-only checks of the choice included,
        runs under the lock: one run at a time talks to the firewall."""
        names = self.choices(prefer)
        reasons = []
        for name in names:
            reason = self._missing(backends.REGISTRY[name], address.version)
            backend = None
            if reason is None:
                backend = self._load(name)
                reason = backend.inactive(address)
            if reason is None:
                try:
                    status, detail = backend.add(address)
                    return status, detail, name
                except Unusable as stop:
                    reason = stop.reason
            reasons.append("%s: %s" % (name, reason))
        raise failed(UNAVAILABLE, "no usable firewall tool (%s)" % "; ".join(reasons))

    def choices(self, prefer=None):
        """The backends an add may use, in order: the one the name we run
        under chooses, else the configured one, or ``auto``'s list for this
        system; first *prefer* (the backend that made a block being
        restored) if it runs here."""
        if self.backend:
            names = [self.backend]
        elif self.settings.backend == "auto":
            names = list(backends.AUTOMATIC.get(self.system.name, ()))
            if not names:
                raise failed(UNAVAILABLE, "no firewall backend for %s" % self.system.name)
        else:
            names = [self.settings.backend]
        entry = backends.REGISTRY.get(prefer)
        if entry is not None and self.system.name in entry.systems:
            names = [prefer] + [name for name in names if name != prefer]
        return names

    def unblock(self, address, held):
        """Remove *address* from where the ledger's records of ours (*held*,
        latest first) say it is blocked, and nowhere else: each backend's
        own layout for an add, and the stock places recorded by ``adopt``.

        A layout the ledger names is never passed over: if its tools are
        gone, it is reached over netlink where the backend can (nftables),
        else the run fails (69) naming it, rather than say "was not
        blocked" while the block may stand."""
        here = {e.name: e for e in backends.on(self.system.name)}
        places = {}             # {(backend, address or prefix): [place]}
        for target, entries in targets(address, held).items():
            for entry in entries:
                name, place = ledger.split_where(entry.backend)
                if name in here:
                    places.setdefault((name, target), []).append(place)
        unreachable = sorted({name for name, _ in places if self._missing(
            here[name], address.version) is not None and not here[name].netlink})
        if unreachable:
            raise failed(UNAVAILABLE, "the ledger says %s is blocked in %s, which cannot be"
                         " examined here (%s)" % (address, ", ".join(unreachable), "; ".join(
                             self._missing(here[name], address.version)
                             for name in unreachable)))
        removed, absent, errors = [], [], []

        def attempt(call, target, *args):
            try:
                status, detail = call(target, *args)
            except Stop as stop:
                errors.append(stop.reason)
                return
            if target is not address:
                detail = "%s from %s" % (target, detail)
            (removed if status == UNBLOCKED else absent).append(detail)
        for (name, target), where in places.items():
            backend = self._load(name)
            if None in where:                   # an add of ours, in our layout
                attempt(backend.delete, target)
            stock = [place for place in where if place is not None]
            if stock:                           # adopted, outside it
                attempt(backend.delete_stock, target, stock)
        if errors:
            done = "; removed from %s" % "; ".join(removed) if removed else ""
            raise failed(TEMPFAIL, "; ".join(errors) + done)
        if removed:
            return UNBLOCKED, "; ".join(removed)
        return NOT_BLOCKED, "; ".join(absent) or "the ledger's layouts are not on this" \
            " system (%s)" % ", ".join(sorted(set(ledger.backends_of(held))))

    def verify(self, notes):
        with self.lock():
            for entry in backends.on(self.system.name):
                if self._missing(entry, 4) is None:
                    try:
                        done = self._load(entry.name).verify()
                    except Stop as stop:
                        done = "cannot repair: " + stop.reason
                    if done:
                        notes.append("%s: %s" % (entry.name, done))

    def present(self, notes):
        where = {}
        self.unchecked = set()
        for entry in backends.on(self.system.name):
            backend = None
            for version in (4, 6):
                if self._missing(entry, version) is not None:
                    self.unchecked.add((entry.name, version))
                    continue
                backend = backend or self._load(entry.name)
                try:
                    members = backend.members(version)
                except Broken as broken:
                    note = "%s: %s" % (entry.name, broken.reason)
                    if note not in notes:           # one for both families
                        notes.append(note)
                    self.unchecked.add((entry.name, version))
                    continue
                except Stop as stop:
                    notes.append("%s: cannot list: %s" % (entry.name, stop.reason))
                    self.unchecked.add((entry.name, version))
                    continue
                for address in members:
                    where.setdefault(address, []).append(entry.name)
        return {address: ", ".join(names) for address, names in where.items()}

    def adoptable(self, unlisted):
        """{Address: [where]} of the stock-form blocks on this host: the
        members of each layout of ours whose tools are here (where the
        stock scripts share it) and each backend's stock places outside it
        (``iptables:INPUT``).  A layout that cannot be listed goes to
        *unlisted*, with why."""
        found = {}
        for entry in backends.on(self.system.name):
            for version in (4, 6):
                if self._missing(entry, version) is not None:
                    continue
                backend = self._load(entry.name)
                try:
                    members = {address: [None] for address in backend.layout_members(version)}
                    for address, places in backend.stock_members(version).items():
                        members.setdefault(address, []).extend(places)
                except Stop as stop:
                    unlisted.append("%s: cannot list: %s" % (entry.name, stop.reason))
                    continue
                for address, places in members.items():
                    found.setdefault(address, []).extend(
                        entry.name if place is None else "%s:%s" % (entry.name, place)
                        for place in places)
        return found

    def _missing(self, entry, version):
        return entry.missing(self.system.tools, version, self.system.name)

    def _load(self, name):
        return backends.load(name, self.settings, self.system.tools, self.system.name)


def respond(prefix, request):
    return FirewallDrop(prefix, backend=BACKEND_OF_NAME.get(request.name)).respond(request)
