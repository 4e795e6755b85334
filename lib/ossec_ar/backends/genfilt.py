"""AIX IP security filter rules: genfilt(1), lsfilt, rmfilt, mkfilt.

Rule, for IPv4 (IPv6: ``-v 6``, mask ``128``, destination ``::``/``0``)::

    genfilt -v 4 -a D -s 192.0.2.7 -m 255.255.255.255 -d 0.0.0.0 -M 0.0.0.0
            -w B -D ossec-ar
    mkfilt -v 4 -u          (activates the filter table after each change)

A rule is ours when ``lsfilt -O`` shows it denying exactly this source
address with a full mask, to any destination, and its description is ours
or the stock script's.  Addresses are compared as addresses: the stock
script's delete matched substrings, so unblocking 10.0.0.1 also removed
10.0.0.10's rule.  Rules are removed from the highest ID down, because
rmfilt renumbers the rules above the one it removes.

With ``ipv6_prefix`` a prefix is one rule of its network and its length:
``genfilt -v 6 -a D -s 2001:db8:1:2:: -m 64 -d :: -M 0 ...`` (an IPv6 mask
is written as a prefix length, as the full one is 128).  A rule is then a
prefix's only if its mask is that length, and an address's only if its
mask is full: the network's rule is never taken for its first address's.
"""

from ..address import Prefix, host, parse_prefix
from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base

DESCRIPTION = "ossec-ar"
_STOCK_DESCRIPTION = "Access Denied by OSSEC-HIDS"
_FULL_MASK = {4: "255.255.255.255", 6: "128"}
_ANY = {4: ("0.0.0.0", "0.0.0.0"), 6: ("::", "0")}


class Backend(Base):
    def inactive(self, address):
        device = "ipsec_v%d" % address.version
        result = self.run("lsdev", "-C", "-l", device)
        if not result.ok or "Available" not in result.output.split():
            return ("IP security for IPv%d is not started (%s is not Available; start"
                    " it with mkdev -l ipsec -t %d)" % (address.version, device,
                                                        address.version))
        return None

    def add(self, address):
        version = str(address.version)
        if self._ours(address):
            return ALREADY_BLOCKED, self._where(address)
        any_address, any_mask = _ANY[address.version]
        source, mask = _source(address)
        self.check("genfilt", "-v", version, "-a", "D", "-s", source, "-m", mask,
                   "-d", any_address, "-M", any_mask, "-w", "B", "-D", DESCRIPTION)
        self.check("mkfilt", "-v", version, "-u")
        return BLOCKED, self._where(address)

    def delete(self, address):
        version = str(address.version)
        ids = self._ours(address)
        if not ids:
            return NOT_BLOCKED, self._where(address)
        for rule_id in sorted(ids, reverse=True):
            self.check("rmfilt", "-v", version, "-n", str(rule_id))
        self.check("mkfilt", "-v", version, "-u")
        return UNBLOCKED, "%s (rule %s)" % (self._where(address),
                                           ", ".join(str(i) for i in sorted(ids)))

    def _ours(self, address):
        """IDs of the filter rules that block exactly *address* (or
        Prefix)."""
        listing = self.check("lsfilt", "-v", str(address.version), "-O").output
        return [int(fields[0]) for fields in _rules(listing) if _blocks(fields, address)]

    def members(self, version):
        listing = self.check("lsfilt", "-v", str(version), "-O").output
        found = set()
        for fields in _rules(listing):
            target = _target(fields)
            if target is not None and target.version == version and _blocks(fields, target):
                found.add(target)
        return found

    @staticmethod
    def _where(address):
        return "AIX filter rules (IPv%d)" % address.version


def _rules(listing):
    """The fields of each rule line of ``lsfilt -O`` (22 fields, ``|``)."""
    for line in listing.splitlines():
        fields = line.split("|")
        if len(fields) >= 22 and fields[0].isdigit():
            yield fields


def _source(target):
    """(source, mask) of the rule for *target*: an address and the full
    mask, or a Prefix's network and its length."""
    if isinstance(target, Prefix):
        return target.network, str(target.length)
    return target.text, _FULL_MASK[target.version]


def _target(fields):
    """What the rule's source and mask are: an Address with the full
    mask, an IPv6 Prefix with a shorter length; else None."""
    address = host(fields[2])
    if address is None:
        return None
    if fields[3] == _FULL_MASK[address.version]:
        return address
    if address.version == 6:
        return parse_prefix("%s/%s" % (address.text, fields[3]))
    return None


def _blocks(fields, target):
    if fields[1] != "deny" or "|".join(fields[21:]) not in (DESCRIPTION, _STOCK_DESCRIPTION):
        return False
    if tuple(fields[4:6]) != _ANY[target.version]:
        return False
    return _target(fields) == target
