"""firewalld: permanent ipsets bound to the drop zone.

Layout (ipset names configurable, shared with the ipset backend's)::

    firewall-cmd --permanent --new-ipset=ossec4 --type=hash:ip --option=family=inet ...
    firewall-cmd --permanent --new-ipset=ossec6 ... --option=family=inet6
    firewall-cmd --permanent --zone=drop --add-source=ipset:ossec4   (and ossec6)

With ``ipv6_prefix``, the IPv6 prefixes go into a third ipset, of type
hash:net, named as the ipset backend names its set of prefixes
(``ossec6-net``) and bound to the drop zone the same way.  Like the others
it is made by ``ossec-ar firewalld-setup`` (which makes it only where
``ipv6_prefix`` is set); a layout without it is whole, and a prefix's add
that finds it missing fails as an address's add does.

Each ban is added to the running firewall and to the permanent
configuration, so ``firewall-cmd --reload`` (which rebuilds the runtime
from the permanent configuration) keeps it.

An add never reloads firewalld: a reload throws away every runtime-only
rule (the administrator's ports and sources, direct rules, other tools'
bans), and firewall-cmd 1.x makes ipsets in the permanent configuration
only (``--new-ipset`` is "P only"), so only a reload makes a new one live.
The layout is made by ``ossec-ar firewalld-setup``, which says it reloads;
an add that finds our ipset missing from the running firewall fails with
exit 75 and a line saying so.  Our ipsets must be bound to a zone that
drops: an add reads the drop zone's permanent file (no call) and refuses,
with exit 75, a target other than DROP or %%REJECT%% (with ACCEPT, our
banned addresses would be accepted).  firewall-cmd costs some 170 ms a
call here, so an add makes two calls and nothing more.  Whether firewalld
runs is known from its pid file or its systemd unit (the registry's
``daemon``), without a call.
"""

import os
from xml.etree import ElementTree

from ..address import Prefix
from ..exits import TEMPFAIL, failed
from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base
from .base import Broken, addresses, blocks
from .ipset import FAMILY, MAXELEM, Backend as Ipset

ZONE = "drop"
# firewalld's own zone files, and the administrator's, which take priority.
ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")
_DROPPING_TARGETS = ("DROP", "%%REJECT%%")
# The two configurations a source binding lives in, as firewall-cmd
# chooses them, and how our lines name them.
_RUNTIME, _PERMANENT = (), ("--permanent",)
_WHERE = {_RUNTIME: "in the running firewall", _PERMANENT: "in the permanent configuration"}


class Backend(Base):
    settings = Ipset.settings
    versions = {"firewall-cmd": ("--version",)}
    down = "firewalld is not running"          # firewall-cmd asks the daemon
    set_name = Ipset.set_name
    net_set_name = Ipset.net_set_name

    def _name_of(self, target):
        """Our ipset that holds *target*, an address or a Prefix."""
        if isinstance(target, Prefix):
            return self.net_set_name()
        return self.set_name(target.version)

    def layout_names(self):
        """Every ipset of our layout that may exist."""
        return [self.set_name(4), self.set_name(6), self.net_set_name()]

    def add(self, address):
        name = self._name_of(address)
        entry = "--add-entry=%s" % address
        _refuse_a_zone_that_does_not_drop()
        result = self.run("firewall-cmd", "--ipset=" + name, entry)
        if "INVALID_IPSET" in result.output:
            raise failed(TEMPFAIL, "firewalld has no ipset %s in its running configuration: "
                         "make the layout with `ossec-ar firewalld-setup`%s (it reloads "
                         "firewalld once; an add never does)" % (
                             name, ", with ipv6_prefix set in the configuration"
                             if isinstance(address, Prefix) else ""))
        status = self.sort(result, BLOCKED, ((ALREADY_BLOCKED, ("ALREADY_ENABLED",)),))
        self.check("firewall-cmd", "--permanent", "--ipset=" + name, entry,
                   harmless=("ALREADY_ENABLED",))
        return status, "firewalld ipset %s in zone %s" % (name, ZONE)

    def delete(self, address):
        name = self._name_of(address)
        entry = "--remove-entry=%s" % address
        removed = False
        for scope in ([], ["--permanent"]):
            result = self.run("firewall-cmd", *(scope + ["--ipset=" + name, entry]))
            if "INVALID_IPSET" not in result.output:
                removed = self.sort(result, UNBLOCKED,
                                    ((NOT_BLOCKED, ("NOT_ENABLED",)),)) == UNBLOCKED or removed
        return (UNBLOCKED if removed else NOT_BLOCKED), "firewalld ipset %s" % name

    def members(self, version):
        """The ipset's entries (and for IPv6 the prefixes' ipset's), where
        each is bound to the drop zone in the running firewall and the zone
        drops; else Broken."""
        found = set()
        for name in [self.set_name(version)] + ([self.net_set_name()] if version == 6 else []):
            found |= self._entries(version, name)
        return found

    def _entries(self, version, name):
        layout = self._inspect()
        if layout is None or name not in layout.ours:
            return set()
        problems = ([layout.target] if layout.target else []) + [
            "ipset %s is not a source of zone %s %s" % (name, ZONE, _WHERE[_RUNTIME])
            for scope in layout.unbound.get(name, ()) if scope == _RUNTIME]
        if problems:
            raise Broken("%s: its entries are not counted as blocks" % ", ".join(problems))
        result = self.run("firewall-cmd", "--ipset=" + name, "--get-entries")
        if "INVALID_IPSET" in result.output:
            return set()
        self.sort(result, None)
        if name == self.net_set_name():
            return {prefix for prefix in blocks(result.output.split(), version)
                    if isinstance(prefix, Prefix)}
        return addresses(result.output.split(), version)

    # ossec-ar status, restore and list: never on the add's path, and never
    # a reload.

    def _inspect(self):
        """Our ipsets in the running firewall, the zone's target and the
        missing source bindings (a _Layout), or None where firewalld has
        none of our ipsets (no layout made).  Read once per run."""
        if getattr(self, "_inspected", False) is not False:
            return self._inspected
        running = self.check("firewall-cmd", "--get-ipsets").output.split()
        ours = [name for name in self.layout_names() if name in running]
        layout = None
        if ours:
            target = _zone_target()
            unbound = {}
            for scope in (_RUNTIME, _PERMANENT):
                sources = self.check("firewall-cmd", *(scope + ("--zone=" + ZONE,
                                                                "--list-sources"))).output
                for name in ours:
                    if "ipset:" + name not in sources.split():
                        unbound.setdefault(name, []).append(scope)
            layout = _Layout(ours, None if target in _DROPPING_TARGETS + (None,)
                             else _target_problem(target), unbound)
        self._inspected = layout
        return layout

    def layout_state(self):
        """Whole, absent, or broken and how, with the firewall-cmd command
        that fixes each; read only."""
        layout = self._inspect()
        if layout is None:
            return "absent"
        parts = []
        if layout.unbound:
            parts.append("%s (repaired by ossec-ar restore, without a reload)" % ", ".join(
                self._unbound_text(name, scopes) for name, scopes in
                sorted(layout.unbound.items())))
        if layout.target:
            parts.append(layout.target + " (ossec-ar restore leaves it: it needs a reload)")
        return "broken: " + "; ".join(parts) if parts else "whole"

    def verify(self):
        """For ``ossec-ar restore``: bind our ipsets to the drop zone again
        where they are not, in the running firewall and in the permanent
        configuration (neither needs a reload).  A target that accepts is
        left, with the command that fixes it: a target is permanent only,
        and only a reload would make a new one live.  None where nothing
        was found wrong."""
        layout = self._inspect()
        if layout is None:
            return None
        done, left = [], []
        for name, scopes in sorted(layout.unbound.items()):
            bound = []
            for scope in scopes:
                result = self.run("firewall-cmd", *(scope + ("--zone=" + ZONE,
                                                             "--add-source=ipset:" + name)))
                if result.ok or "ALREADY_ENABLED" in result.output:
                    bound.append(scope)
                else:
                    left.append("ipset %s not bound to zone %s %s: %s" % (
                        name, ZONE, _WHERE[scope], result.describe()))
            if bound:
                done.append("ipset %s bound to zone %s %s" % (
                    name, ZONE, " and ".join(_WHERE[scope] for scope in bound)))
        if layout.target:
            left.append(layout.target)
        self._inspected = False         # changed: read again if asked
        parts = (["repaired: " + ", ".join(done)] if done else []) + (
            ["left as it is: " + "; ".join(left)] if left else [])
        return "; ".join(parts) or None

    def _unbound_text(self, name, scopes):
        return "ipset %s is not a source of zone %s %s" % (name, ZONE, " nor ".join(
            "%s (`firewall-cmd %s`)" % (_WHERE[scope], " ".join(
                scope + ("--zone=" + ZONE, "--add-source=ipset:" + name)))
            for scope in scopes))

    def create_layout(self, prefixes=False):
        """For ``ossec-ar firewalld-setup``: our ipsets in the permanent
        configuration (the prefixes' too, with *prefixes*), bound to the
        drop zone, then the one reload that makes them live."""
        sets = [(self.set_name(4), 4, "hash:ip"), (self.set_name(6), 6, "hash:ip")]
        if prefixes:
            sets.append((self.net_set_name(), 6, "hash:net"))
        for name, version, kind in sets:
            self.check("firewall-cmd", "--permanent", "--new-ipset=" + name, "--type=" + kind,
                       "--option=family=" + FAMILY[version], "--option=maxelem=%d" % MAXELEM,
                       harmless=("NAME_CONFLICT",))
            self.check("firewall-cmd", "--permanent", "--zone=" + ZONE,
                       "--add-source=ipset:" + name, harmless=("ALREADY_ENABLED",))
        self.check("firewall-cmd", "--reload")


def _refuse_a_zone_that_does_not_drop():
    """Exit 75 if the drop zone's permanent file gives it a target that
    lets packets in.  The target is permanent-only in firewalld, so the
    file is what the running firewall uses once reloaded."""
    target = _zone_target()
    if target is not None and target not in _DROPPING_TARGETS:
        raise failed(TEMPFAIL, "firewalld zone %s has target %s, so our ipsets bound to "
                     "it accept: set it back with `firewall-cmd --permanent --zone=%s "
                     "--set-target=DROP` and reload firewalld" % (ZONE, target, ZONE))


def _zone_target():
    """The drop zone's target in its permanent file (the administrator's
    first), or None where no file can be read."""
    for directory in ZONE_DIRS:
        path = os.path.join(directory, ZONE + ".xml")
        try:
            return ElementTree.parse(path).getroot().get("target", "default")
        except (OSError, ElementTree.ParseError):
            continue
    return None


def _target_problem(target):
    return ("zone %s has target %s, so our ipsets bound to it accept (`firewall-cmd "
            "--permanent --zone=%s --set-target=DROP`, then reload firewalld)"
            % (ZONE, target, ZONE))


class _Layout:
    """What _inspect read: our ipsets in the running firewall, the
    target's problem (or None), {ipset: [scopes where it is not bound]}."""

    def __init__(self, ours, target, unbound):
        self.ours, self.target, self.unbound = ours, target, unbound
