"""firewalld: permanent ipsets bound to the drop zone.

Layout (ipset names configurable, shared with the ipset backend's)::

    firewall-cmd --permanent --new-ipset=ossec4 --type=hash:ip --option=family=inet ...
    firewall-cmd --permanent --new-ipset=ossec6 ... --option=family=inet6
    firewall-cmd --permanent --zone=drop --add-source=ipset:ossec4   (and ossec6)

Each ban is added to the running firewall and to the permanent
configuration, so ``firewall-cmd --reload`` (which rebuilds the runtime
from the permanent configuration) keeps it.  The layout is created, with one
reload, the first time an ipset is found missing.  firewall-cmd costs some
170 ms a call here, so an add makes two calls and nothing more.  Whether
firewalld runs is known from its pid file or its systemd unit (the
registry's ``daemon``), without a call.
"""

from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base
from .base import addresses
from .ipset import FAMILY, MAXELEM, Backend as Ipset


class Backend(Base):
    settings = Ipset.settings
    versions = {"firewall-cmd": ("--version",)}
    down = "firewalld is not running"          # firewall-cmd asks the daemon
    set_name = Ipset.set_name

    def add(self, address):
        name = self.set_name(address.version)
        entry = "--add-entry=%s" % address
        result = self.run("firewall-cmd", "--ipset=" + name, entry)
        created = False
        if "INVALID_IPSET" in result.output:
            self._create_layout()
            created = True
            result = self.run("firewall-cmd", "--ipset=" + name, entry)
        status = self.sort(result, BLOCKED, ((ALREADY_BLOCKED, ("ALREADY_ENABLED",)),))
        self.check("firewall-cmd", "--permanent", "--ipset=" + name, entry,
                   harmless=("ALREADY_ENABLED",))
        detail = "firewalld ipset %s in zone drop" % name
        return status, detail + (" (created, firewall reloaded)" if created else "")

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

    def _create_layout(self):
        for version in (4, 6):
            name = self.set_name(version)
            self.check("firewall-cmd", "--permanent", "--new-ipset=" + name, "--type=hash:ip",
                       "--option=family=" + FAMILY[version], "--option=maxelem=%d" % MAXELEM,
                       harmless=("NAME_CONFLICT",))
            self.check("firewall-cmd", "--permanent", "--zone=drop",
                       "--add-source=ipset:" + name, harmless=("ALREADY_ENABLED",))
        self.check("firewall-cmd", "--reload")
