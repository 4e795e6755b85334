"""firewalld: permanent ipsets bound to the drop zone.

Layout (ipset names configurable, shared with the ipset backend's)::

    firewall-cmd --permanent --new-ipset=ossec4 --type=hash:ip --option=family=inet ...
    firewall-cmd --permanent --new-ipset=ossec6 ... --option=family=inet6
    firewall-cmd --permanent --zone=drop --add-source=ipset:ossec4   (and ossec6)

Each ban is added to the running firewall and to the permanent
configuration, so ``firewall-cmd --reload`` (which rebuilds the runtime
from the permanent configuration) keeps it.  The layout is created, with one
reload, the first time an ipset is found missing.  firewall-cmd costs some
170 ms a call here, so an add makes two calls and nothing more.
"""

import os

from .. import commands
from ..exits import TEMPFAIL, failed
from .ipset import FAMILY, MAXELEM

_TIMEOUT = 120


class Backend:
    name = "firewalld"

    def __init__(self, settings):
        self.sets = {4: settings.ipset_v4, 6: settings.ipset_v6}
        self._path = commands.find_tool("firewall-cmd")
        self._running = None

    def missing(self, address):
        if self._path is None:
            return commands.not_found("firewall-cmd")
        if self._running is None:
            # Looking for the process first spares hosts where firewalld is
            # installed but stopped a 170 ms firewall-cmd call.
            self._running = _process_running("firewalld") and self._cmd("--state").ok
        if not self._running:
            return "firewalld is not running"
        return None

    def add(self, address):
        name = self.sets[address.version]
        entry = "--add-entry=%s" % address
        result = self._cmd("--ipset=" + name, entry)
        created = False
        if "INVALID_IPSET" in result.output:
            self._create_layout()
            created = True
            result = self._cmd("--ipset=" + name, entry)
        self._check(result)
        status = "already blocked" if "ALREADY_ENABLED" in result.output else "blocked"
        self._check(self._cmd("--permanent", "--ipset=" + name, entry), "ALREADY_ENABLED")
        detail = "firewalld ipset %s in zone drop" % name
        return status, detail + (" (created, firewall reloaded)" if created else "")

    def delete(self, address):
        name = self.sets[address.version]
        entry = "--remove-entry=%s" % address
        removed = False
        for scope in ([], ["--permanent"]):
            result = self._cmd(*(scope + ["--ipset=" + name, entry]))
            if "INVALID_IPSET" in result.output:
                continue
            self._check(result, "NOT_ENABLED")
            removed = removed or "NOT_ENABLED" not in result.output
        detail = "firewalld ipset %s" % name
        return ("unblocked" if removed else "was not blocked"), detail

    def members(self, version):
        import ipaddress
        result = self._cmd("--ipset=" + self.sets[version], "--get-entries")
        if "INVALID_IPSET" in result.output:
            return set()
        self._check(result)
        return {ipaddress.ip_address(item) for item in result.output.split()}

    def _create_layout(self):
        for version, name in sorted(self.sets.items()):
            self._check(self._cmd("--permanent", "--new-ipset=" + name, "--type=hash:ip",
                                  "--option=family=" + FAMILY[version],
                                  "--option=maxelem=%d" % MAXELEM), "NAME_CONFLICT")
            self._check(self._cmd("--permanent", "--zone=drop",
                                  "--add-source=ipset:" + name), "ALREADY_ENABLED")
        self._check(self._cmd("--reload"))

    def _cmd(self, *args):
        return commands.run([self._path] + list(args), _TIMEOUT)

    @staticmethod
    def _check(result, harmless=None):
        """firewall-cmd says ALREADY_ENABLED and the like as warnings with
        exit 0, or as errors with a code; either way *harmless* is fine."""
        if result.ok or (harmless and harmless in result.output):
            return
        raise failed(TEMPFAIL, result.describe())


def _process_running(name):
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return True           # cannot tell: let firewall-cmd --state decide
    for pid in pids:
        try:
            with open("/proc/%s/comm" % pid, "rb") as stream:
                if stream.read().strip() == name.encode():
                    return True
        except OSError:
            continue
    return False
