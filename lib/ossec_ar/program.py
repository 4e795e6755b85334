"""The program model: one object per active-response program.

A program (firewall-drop, host-deny) owns its lock, the checks before a
change, and the ledger record; its subclass says how it blocks, unblocks
and lists an address on this host.  The executables (through ``cli``) and
every ``ossec-ar`` command that changes something go through here, and
nothing else changes a firewall or hosts.deny.  Every change is decided
under the program's lock, from what the ledger and the host say inside it,
so that no order of concurrent runs leaves a block that its delete should
have lifted.
"""

import os
import time

from . import address as addresses
from . import config, ledger
from .exits import (ALREADY_BLOCKED, BLOCKED, NOPERM, NOT_BLOCKED, NOT_OURS, OK, REFUSED,
                    UNBLOCKED, Stop, failed, refused)
from .lock import FileLock, lock_file
from .system import System


class Program:
    name = None             # the ledger's and the lock's name

    def __init__(self, prefix, settings=None):
        self.prefix = prefix
        self._settings = settings
        self._system = None

    @property
    def settings(self):
        """The configuration, read when first needed (exit 78 if broken)."""
        if self._settings is None:
            self._settings = config.load(config.config_path(self.prefix))
        return self._settings

    @property
    def system(self):
        if self._system is None:
            self._system = System(self.settings)
        return self._system

    def lock(self):
        return FileLock(lock_file(self.prefix, self.name), self.lock_wait())

    # A request from execd.

    def respond(self, request):
        """(status, address, detail) of one request; a refusal or failure
        raises ``exits.Stop``.

        Checked in order: the address (65), for an add the configuration
        (78) and the allowlist (65), root (77); then, for an add, the
        request's own confirmation (Wazuh's check_keys), which may stop the
        run.  A delete is never stopped by the configuration: with a broken
        or untrusted one it uses the defaults and says so.
        """
        address = addresses.parse(request.address, lifting=request.action != "add")
        ledger.now()                    # a clock no record can hold stops here
        problem = note = None
        if request.action == "add":
            self.settings
            target, note = self.target(address)
        elif self._settings is None:
            self._settings, problem = config.load_for_lifting(self.prefix)
        require_root()
        if request.action == "add":
            if request.confirm is not None:
                request.confirm(address)
            status, detail = self.add(address, request.rule_id, request.alert_id, target)
            if note:
                detail += "; " + note
        else:
            try:
                status, detail = self.delete(address, request.rule_id, request.alert_id)
            except Stop as stop:
                if problem:
                    stop.reason += "; " + config.set_aside(problem)
                raise
            if problem:
                detail += "; " + config.set_aside(problem)
        return status, address.text, detail

    def target(self, address):
        """(what an add of *address* blocks, note for its outcome line):
        the address, or with ``ipv6_prefix`` below 128 its IPv6 prefix.  A
        prefix that holds an allowlisted or protected address is not
        blocked: the address alone is, if it may be, and the note says why.
        Refused (65) when the address itself may not be blocked."""
        wanted = addresses.prefix_of(address, self.prefix_length())
        if wanted is address:
            return address, self.check_allowed(address)
        try:
            return wanted, self.check_allowed(wanted)
        except Stop as stop:
            if stop.code != REFUSED:
                raise
            note = self.check_allowed(address)
            return address, "; ".join(filter(None, [_alone(wanted, stop), note]))

    def check_allowed(self, address):
        """Refuse (65) an address (or an IPv6 prefix) on the allowlist or
        under a protection (``protect``: the host's own addresses,
        gateways, resolvers, manager).  Adds only: lifting a block is
        always allowed, or allowlisting a blocked address would keep it
        blocked for ever.

        Returns the note for the outcome line of the add (the protections
        that could not be checked), or None."""
        if self.settings.allowlist:
            _check_allowlist(address, self.settings.allowlist)
        from . import protect          # adds only: a delete never pays for its import
        finding = protect.check(address, self.settings.protect, self.prefix, self.system)
        if finding.reason:
            raise refused(REFUSED, finding.reason)
        return finding.note() or None

    # The changes, each under the lock.

    def add(self, address, rule="-", alert="-", target=None):
        """Block *address*, or *target*, the IPv6 prefix that holds it.  A
        block that was already there is ours only if the ledger says so
        (for a prefix: for any address); otherwise someone else made it (an
        administrator, another tool), and it is recorded as ``found``, so
        that the delete execd sends for this add leaves it."""
        target = target or address
        network = "-" if target is address else target.text
        with self.lock():
            status, detail, where = self.block(target)
            op = "add"
            if status == ALREADY_BLOCKED and not ledger.ours_in_force(
                    self.prefix, self.name, address, where, network):
                op = "found"
                detail += "; not ours: its delete will leave it"
            detail = _worded(status, target, address, detail)
            return status, self._recorded(op, address, where, rule, alert, detail, network)

    def delete(self, address, rule="-", alert="-"):
        with self.lock():
            return self._lift(address, rule, alert)

    def restore(self, address):
        """Block *address* again if the ledger still holds its block:
        (status, detail), or None when it was lifted in the meantime.
        Refused (65) as an add would be: link-local, allowlisted."""
        addresses.check_addable(address)
        note = self.check_allowed(address)
        with self.lock():
            ours = ledger.adds_in_force(self.prefix, self.name, address)
            if not ours:                # lifted, or someone else's
                return None
            entry = ours[0]
            target = _target_of(entry, address)
            if target is not address:       # a prefix: still allowed whole?
                try:
                    self.check_allowed(target)
                except Stop as stop:
                    if stop.code != REFUSED:
                        raise
                    note = "; ".join(filter(None, [_alone(target, stop), note]))
                    target = address
            status, detail, where = self.block(target, prefer=ledger.split_where(
                entry.backend)[0])
            detail = _worded(status, target, address, detail)
            if status == BLOCKED:
                detail = self._recorded("add", address, where, entry.rule, entry.alert, detail,
                                        "-" if target is address else target.text)
            return status, detail + ("; " + note if note else "")

    def expire(self, address, before):
        """Lift *address* if the ledger's block of it began before the time
        *before*: (status, detail), or None when it is not (or no longer) so.
        A block dated after now (the clock was ahead when it was recorded)
        counts as old: its age is unknown, and it would outlive every expiry."""
        with self.lock():
            standing = ledger.since_delete(self.prefix, self.name, address)
            if not standing or before <= standing[0].time <= time.time():
                return None
            return self._lift(address, "-", "-")

    def release(self, target, rule="-", alert="-"):
        """An administrator's unblock (``ossec-ar unblock``, unblock.sh):
        (status, detail) of lifting *target*, an Address or a Prefix, for
        good.  When the ledger holds the address's block as a prefix, or the
        address lies inside a prefix it holds, or *target* is that prefix,
        every address holding the prefix is lifted with it, each as its own
        delete lifts it (its delete record written, and any other block of
        it lifted), the address itself last: the prefix goes once, with the
        last of them, and the detail says how many were released
        ("released 3 addresses of 2001:db8:1:2::/64").  The deletes that
        execd still holds for them then find nothing to do."""
        with self.lock():
            order, released = self._released(target)
            if not released:                # an address alone: as its delete lifts it
                if isinstance(target, addresses.Prefix):
                    return NOT_BLOCKED, "no address of ours holds %s in the ledger" % target
                return self._lift(target, rule, alert)
            statuses, failures, detail = [], [], None
            for holder in order:
                try:
                    status, detail = self._lift(holder, rule, alert)
                except Stop as stop:
                    failures.append((holder, stop))
                    detail = None
                    continue
                statuses.append(status)
            if failures:            # each failed one is still in the ledger, as it was
                raise failed(max(stop.code for _, stop in failures), "; ".join(
                    "%s: %s" % (holder, stop.reason) for holder, stop in failures) + (
                        "; %s: %s: %s" % (order[-1], status, detail) if detail else ""))
            if UNBLOCKED in statuses:
                status = UNBLOCKED
            return status, "%s; released %s" % (detail, "; ".join(released))

    def _released(self, target):
        """([Address] to lift, in order, [words for each prefix released])
        of an administrator's unblock of *target*: every holder of each
        prefix of ours that is *target*, holds it or is held by it, and
        *target* itself last (its outcome is the one shown) if the ledger
        holds a block of it.  No words: no prefix is involved."""
        held = self._held_prefixes()
        if isinstance(target, addresses.Prefix):
            wanted, own = [network for network in held if network == target], False
        else:
            wanted = [network for network in held
                      if target in network or target in held[network]]
            own = bool(ledger.since_delete(self.prefix, self.name, target))
        order, released = [], []
        for network in wanted:
            holders = held[network]
            released.append("%d address%s of %s" % (
                len(holders), "" if len(holders) == 1 else "es", network))
            order += [holder for holder in holders if holder != target and holder not in order]
        return order + ([target] if own else []), released

    def _held_prefixes(self):
        """{Prefix: [Address]} of the prefixes that blocks of ours hold in
        the ledger now, and their addresses, in the ledger's order."""
        held = {}
        for text, holders in ledger.held_prefixes(self.prefix, self.name).items():
            network = addresses.parse_prefix(text)
            if network is None:
                continue
            found = []
            for holder in holders:
                try:
                    found.append(addresses.parse(holder, lifting=True))
                except Stop:                # not an address we would block
                    continue
            if found:
                held[network] = found
        return held

    def _lift(self, address, rule, alert):
        """Unblock *address*, under the lock, with the ledger's delete
        written first: a run killed after the firewall change and before
        its record would leave a block in the ledger that ``restore`` puts
        back.  If the unblock fails, the ledger's records are put back as
        they were (their own times), since the block may still stand.

        Only the blocks the ledger says are ours are lifted, and only where
        it says they are: with none, no tool is asked, and a block that
        someone else made (``found`` by an add) is left, said so."""
        standing = ledger.since_delete(self.prefix, self.name, address)
        ours = [entry for entry in standing if entry.op in ledger.OURS]
        lifted, kept = self.shared(address, ours)
        problem = ledger.record(self.prefix, self.name, "delete", address, self.where_deleted,
                                rule, alert)
        if not ours:
            status, detail = self.left(standing)
        elif not lifted:
            status, detail = UNBLOCKED, "%s; %s" % (address, kept)
        else:
            try:
                status, detail = self.unblock(address, lifted)
                if kept:
                    detail += "; " + kept
            except Stop:
                if problem is None:
                    for entry in reversed(standing):
                        ledger.record(self.prefix, self.name, entry.op, address, entry.backend,
                                      entry.rule, entry.alert, when=entry.time)
                raise
            theirs = ledger.backends_of(entry for entry in standing if entry.op == "found")
            if theirs:
                detail += "; left in place, not ours: %s" % ", ".join(theirs)
        return status, detail + ("; " + problem if problem else "")

    def shared(self, address, ours):
        """(the records of *ours* to lift, what is kept and why): a prefix
        that other addresses still hold in the ledger stays blocked for
        them ("prefix 2001:db8:1:2::/64 kept for 2 others"), or "" """
        lifted, kept = [], []
        for entry in ours:
            if entry.prefix != "-":
                others = [held for held in ledger.prefix_holders(
                    self.prefix, self.name, entry.prefix, ledger.split_where(entry.backend)[0])
                    if held != address.text]
                if others:
                    kept.append("prefix %s kept for %d other%s (%s)" % (
                        entry.prefix, len(others), "" if len(others) == 1 else "s",
                        ledger.split_where(entry.backend)[0]))
                    continue
            lifted.append(entry)
        return lifted, "; ".join(kept)

    @staticmethod
    def left(standing):
        """(status, detail) of a delete with no block of ours to lift."""
        if not standing:
            return NOT_BLOCKED, "no block of ours in the ledger"
        found = standing[-1]
        return NOT_OURS, "%s: blocked by someone else (found there by an add, rule %s," \
            " alert %s), left in place" % (found.backend, found.rule, found.alert)

    def _recorded(self, op, address, where, rule, alert, detail, network="-"):
        problem = ledger.record(self.prefix, self.name, op, address, where, rule, alert,
                                network=network)
        return detail + ("; " + problem if problem else "")

    # What a program says of this host: to be given by each program.

    where_deleted = "-"     # the ledger's "backend" field of a delete

    def lock_wait(self):
        raise NotImplementedError

    def prefix_length(self):
        """The IPv6 prefix length an add blocks (``ipv6_prefix``; 128: the
        address alone)."""
        raise NotImplementedError

    def block(self, address, prefer=None):
        """(status, detail, where): block *address*, under the lock."""
        raise NotImplementedError

    def unblock(self, address, held):
        """(status, detail): lift *address* where the ledger says we
        blocked it; *held* are its records of ours (add, adopt) since its
        last delete, latest first, never empty."""
        raise NotImplementedError

    def present(self, notes):
        """{Address: where} of what is blocked on the host now; a layout
        that cannot be listed adds to *notes*, and to :attr:`unchecked`."""
        raise NotImplementedError

    # (layout, IP version) pairs that present() could not list, so that a
    # block the ledger puts there is "unknown", never "lost".
    unchecked = frozenset()

    def verify(self, notes):
        """Check every layout of ours whole, under the lock, and repair
        what an add would not notice; what was done goes to *notes*."""

    # What ossec-ar shows.

    def blocks(self, notes):
        """[:class:`Block`]: every address the ledger holds as blocked or
        the host blocks, the ledger's first.  A prefix that the ledger
        holds comes once, followed by the addresses whose blocks it is (its
        holders); a prefix or an address that only the host shows comes
        last, as one the ledger does not know.

        Every address read back from the ledger goes through the parser
        and refusals that argv does: a record for 127.0.0.1 or a network is
        reported and skipped, never shown as a block nor acted on.  A
        link-local one is read as a delete reads it (an earlier version's
        block of one is shown, and can be lifted, never restored).
        """
        records, skipped = ledger.read_trusted(self.prefix, self.name, notes)
        path = ledger.ledger_path(self.prefix, self.name)
        notes += ["ledger %s: skipped line %d: %s" % (path, number, reason)
                  for number, reason in skipped]
        held = {}
        for text, entries in ledger.standing(records).items():
            try:
                held[addresses.parse(text, lifting=True)] = entries
            except Stop as stop:            # not an address we would block
                notes.append("ledger %s: record for %s skipped: %s"
                             % (path, text, stop.reason))
        return _listed(held, self.present(notes))


def _listed(held, present):
    """[:class:`Block`] of *held* ({Address: its records since its last
    delete}) and of what *present* ({Address or Prefix: where}) shows: an
    address alone, or a prefix with its holders and then its addresses,
    in order; last, what the ledger does not know."""
    singles, shown = [], set()
    groups = {}         # {Prefix: ([its records], [holders], [address Blocks])}
    for address, entries in held.items():
        ours = [entry for entry in entries if entry.op in ledger.OURS]
        places = targets(address, ours or entries)
        shown.update(places)
        networks = [place for place in places if place is not address]
        block = Block(address, (ours or entries)[0], _joined(
            present.get(place) for place in places), networks[0] if networks else None)
        for network in networks:
            group = groups.setdefault(network, ([], [], []))
            group[0].extend(places[network])
            if any(entry.op in ledger.OURS for entry in places[network]):
                group[1].append(address)
        if networks:
            groups[networks[0]][2].append(block)
        else:
            singles.append(block)
    rows = [(block.target, [block]) for block in singles]
    for network, (entries, holders, members) in groups.items():
        ours = [entry for entry in entries if entry.op in ledger.OURS]
        first = min(ours or entries, key=lambda entry: entry.time)
        rows.append((network, [Block(network, first, present.get(network),
                                     holders=sorted(holders))]
                     + sorted(members, key=lambda block: block.target)))
    found = [block for _, group in sorted(rows, key=lambda row: row[0]) for block in group]
    return found + [Block(target, None, where) for target, where in
                    sorted(present.items(), key=lambda item: item[0]) if target not in shown]


class Block:
    """One row of ``ossec-ar list``.  *target*: the Address or the IPv6
    Prefix blocked; *entry*: the ledger's record that made the block (for
    a prefix, its first holder's), or None when only the host shows it;
    *where*: the host's places that show it, or None; *prefix*: for an
    address, the Prefix its block is, or None; *holders*: for a prefix the
    ledger knows, the addresses whose blocks of ours hold it (it is lifted
    with the last of them), else None."""

    __slots__ = ("target", "entry", "where", "prefix", "holders")

    def __init__(self, target, entry, where, prefix=None, holders=None):
        self.target, self.entry, self.where = target, entry, where
        self.prefix, self.holders = prefix, holders

    def __repr__(self):
        return "Block(%r, %r, %r, %r, %r)" % (self.target, self.entry, self.where,
                                              self.prefix, self.holders)


def _joined(places):
    """The places of several lists ("nftables", "nftables, iptables"),
    each once, or None."""
    places = [where for where in places if where]
    if len(places) < 2:
        return places[0] if places else None
    names = []
    for where in places:
        for name in where.split(", "):
            if name and name not in names:
                names.append(name)
    return ", ".join(names) or None


def lift(programs, address, rule="-", alert="-"):
    """[(program, status, detail, exit code)]: *address* (or an IPv6
    prefix) lifted by each of *programs*, each under its own lock, as an
    administrator means it (``Program.release``): a prefix with every
    address that holds it."""
    results = []
    for program in programs:
        try:
            status, detail = program.release(address, rule, alert)
        except Stop as stop:
            # With nothing of ours in the ledger a delete asks no tool, so a
            # failure here is always one: a layout it names is out of reach.
            results.append((program.name, stop.status, stop.reason, stop.code))
            continue
        results.append((program.name, status, detail, OK))
    return results


def combined(results, changed):
    """(status, detail, exit code) of several programs' results: failed if
    one failed, *changed* if one changed something, else their one status."""
    code = max(code for _, _, _, code in results)
    statuses = [status for _, status, _, _ in results]
    if code != OK:
        status = "failed"
    elif UNBLOCKED in statuses or BLOCKED in statuses:
        status = changed
    elif NOT_OURS in statuses:          # one program left someone else's block
        status = NOT_OURS
    else:
        status = statuses[0] if len(set(statuses)) == 1 else "done"
    detail = "; ".join("%s: %s: %s" % (name, st, text) for name, st, text, _ in results)
    return status, detail, code


def _target_of(entry, address):
    """What the ledger's record *entry* of *address* blocked: its prefix,
    if it has one, else the address."""
    if entry.prefix == "-":
        return address
    return addresses.parse_prefix(entry.prefix) or address


def _worded(status, target, address, detail):
    """An add's *detail* (where), with the prefix it blocked, if any:
    ``2001:db8:1:2::/64 in <where>``, or ``by ...`` where it already was."""
    if target is address:
        return detail
    return "%s%s in %s" % ("by " if status == ALREADY_BLOCKED else "", target, detail)


def _alone(prefix, refusal):
    """The note of an add that blocked the address alone, since *prefix*
    was refused (*refusal*, a Stop)."""
    return "%s not blocked whole: %s; the address alone is" % (prefix, refusal.reason)


def targets(address, held):
    """{target: [records]} of the records *held* of *address*: what each
    blocked (the address, or a prefix), in their order."""
    found = {}
    for entry in held:
        found.setdefault(_target_of(entry, address), []).append(entry)
    return found


def _check_allowlist(target, allowlist):
    """Refuse (65) *target* if it is on the allowlist; a prefix if it
    holds any allowlisted address."""
    import ipaddress
    if target.version == 6 and getattr(target, "length", 128) < 128:
        network = ipaddress.ip_network(target.text)
        for text, listed in allowlist:
            if listed.version == 6 and listed.overlaps(network):
                raise refused(REFUSED, "%s holds addresses on the allowlist (%s)"
                              % (target, text))
        return
    literal = ipaddress.ip_address(target.packed)
    for text, network in allowlist:
        if literal in network:
            raise refused(REFUSED, "%s is on the allowlist (%s)" % (target, text))


def require_root():
    if os.geteuid() != 0:
        raise failed(NOPERM, "must run as root (effective uid %d)" % os.geteuid())

