"""host-deny: block or unblock one address in the tcp_wrappers files."""

from . import atomicfile, hostsfile
from .address import Address
from .exits import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED
from .program import Program, targets


class HostDeny(Program):
    name = "host-deny"

    @property
    def style(self):
        return hostsfile.style_for(self.system.name)

    @property
    def where_deleted(self):
        return self.style.path

    def lock_wait(self):
        return self.settings.host_deny_lock_wait

    def prefix_length(self):
        return self.settings.host_deny_ipv6_prefix

    def block(self, target, prefer=None):
        """The line of *target*, an address or the IPv6 prefix that holds
        it (``ALL:[2001:db8:1:2::]/64``), unless the file has it."""
        status, where = self._change(hostsfile.add, target, BLOCKED, ALREADY_BLOCKED)
        return status, where, self.style.path

    def unblock(self, address, held):
        """One line of ours for *address*, and one for each prefix the
        ledger's records *held* blocked for it: the ledger says we wrote
        them (or adopted the stock script's); an identical line beside one,
        which only an administrator can have written, stays."""
        found = list(targets(address, held))

        def edit(data, _, style):
            new, removed = hostsfile.delete_each(data, found, style)
            return new if removed else None
        status, where = self._change(edit, address, UNBLOCKED, NOT_BLOCKED)
        if found == [address]:
            return status, where
        return status, "; ".join(where if target is address else "%s from %s" % (target, where)
                                 for target in found)

    def adoptable(self, unlisted):
        """{Address: [where]} of the lines in the stock form, which is ours
        (Wazuh's unbracketed IPv6 lines too: its delete lifted them).  A
        prefix's line is none: neither script ever wrote one."""
        return {address: [where] for address, where in self._lines(bare_ipv6=True).items()
                if isinstance(address, Address)}

    def present(self, notes):
        return self._lines()

    def _lines(self, bare_ipv6=False):
        """{Address or Prefix: the file} of the lines of our form in the file."""
        style = self.style
        data = atomicfile.read(atomicfile.resolve(style.path))
        return {address: style.path
                for address in hostsfile.members(data, style, bare_ipv6)}

    def _change(self, edit, address, changed, unchanged):
        """One read-modify-write of the file, under the lock: (status, where)."""
        style = self.style
        path = atomicfile.resolve(style.path)
        new = edit(atomicfile.read(path), address, style)
        if new is not None:
            atomicfile.replace(path, new)
        where = path if path == style.path else "%s (via %s)" % (path, style.path)
        return (unchanged if new is None else changed), where


def respond(prefix, request):
    return HostDeny(prefix).respond(request)
