"""firewalld: permanent ipsets bound to the drop zone.

Layout (ipset names configurable, shared with the ipset backend's)::

    firewall-cmd --permanent --new-ipset=ossec4 --type=hash:ip --option=family=inet ...
    firewall-cmd --permanent --new-ipset=ossec6 ... --option=family=inet6
    firewall-cmd --permanent --zone=drop --add-source=ipset:ossec4   (and ossec6)

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

from ..exits import TEMPFAIL, failed
from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base
from .base import addresses
from .ipset import FAMILY, MAXELEM, Backend as Ipset

ZONE = "drop"
# firewalld's own zone files, and the administrator's, which take priority.
ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")
_DROPPING_TARGETS = ("DROP", "%%REJECT%%")


class Backend(Base):
    settings = Ipset.settings
    versions = {"firewall-cmd": ("--version",)}
    down = "firewalld is not running"          # firewall-cmd asks the daemon
    set_name = Ipset.set_name

    def add(self, address):
        name = self.set_name(address.version)
        entry = "--add-entry=%s" % address
        _refuse_a_zone_that_does_not_drop()
        result = self.run("firewall-cmd", "--ipset=" + name, entry)
        if "INVALID_IPSET" in result.output:
            raise failed(TEMPFAIL, "firewalld has no ipset %s in its running configuration: "
                         "make the layout with `ossec-ar firewalld-setup` (it reloads "
                         "firewalld once; an add never does)" % name)
        status = self.sort(result, BLOCKED, ((ALREADY_BLOCKED, ("ALREADY_ENABLED",)),))
        self.check("firewall-cmd", "--permanent", "--ipset=" + name, entry,
                   harmless=("ALREADY_ENABLED",))
        return status, "firewalld ipset %s in zone %s" % (name, ZONE)

    def delete(self, address):
        name = self.set_name(address.version)
        entry = "--remove-entry=%s" % address
        removed = False
        for scope in ([], ["--permanent"]):
            result = self.run("firewall-cmd", *(scope + ["--ipset=" + name, entry]))
            if "INVALID_IPSET" not in result.output:
                removed = self.sort(result, UNBLOCKED,
                                    ((NOT_BLOCKED, ("NOT_ENABLED",)),)) == UNBLOCKED or removed
        return (UNBLOCKED if removed else NOT_BLOCKED), "firewalld ipset %s" % name

    def members(self, version):
        result = self.run("firewall-cmd", "--ipset=" + self.set_name(version),
                          "--get-entries")
        if "INVALID_IPSET" in result.output:
            return set()
        self.sort(result, None)
        return addresses(result.output.split(), version)

    def create_layout(self):
        """For ``ossec-ar firewalld-setup``: our ipsets in the permanent
        configuration, bound to the drop zone, then the one reload that
        makes them live."""
        for version in (4, 6):
            name = self.set_name(version)
            self.check("firewall-cmd", "--permanent", "--new-ipset=" + name, "--type=hash:ip",
                       "--option=family=" + FAMILY[version], "--option=maxelem=%d" % MAXELEM,
                       harmless=("NAME_CONFLICT",))
            self.check("firewall-cmd", "--permanent", "--zone=" + ZONE,
                       "--add-source=ipset:" + name, harmless=("ALREADY_ENABLED",))
        self.check("firewall-cmd", "--reload")


def _refuse_a_zone_that_does_not_drop():
    """Exit 75 if the drop zone's permanent file gives it a target that
    lets packets in.  The target is permanent-only in firewalld, so the
    file is what the running firewall uses once reloaded."""
    for directory in ZONE_DIRS:
        path = os.path.join(directory, ZONE + ".xml")
        try:
            target = ElementTree.parse(path).getroot().get("target", "default")
        except (OSError, ElementTree.ParseError):
            continue
        if target not in _DROPPING_TARGETS:
            raise failed(TEMPFAIL, "firewalld zone %s has target %s, so our ipsets bound to "
                         "it accept: set it back with `firewall-cmd --permanent --zone=%s "
                         "--set-target=DROP` and reload firewalld" % (ZONE, target, ZONE))
        return
