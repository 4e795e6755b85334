"""IP Filter (Solaris, illumos; FreeBSD and NetBSD where it is the active
firewall): two rules per address, fed to ipf(8) on stdin.

Rules (the stock script's, with the prefix length written out)::

    @1 block in quick from 192.0.2.7/32 to any
    @1 block out quick from any to 192.0.2.7/32

``ipf -f -`` adds them at the top of the active list, ``ipf -r -f -``
removes them, and ``-6`` does both for IPv6.  No shell: the rules are
built from the parsed address and written to ipf's stdin.  ipfstat(8)'s
listing of the active rules is read first, so adding twice adds nothing and
a delete never asks ipf to remove a rule that is not there.  Rules the
stock script added are the same rules, so a delete removes those too.

With ``ipv6_prefix`` the host of the two rules is the network,
``2001:db8:1:2::/64``, which ipfstat lists with its prefix length.  The
rules of a network and those of an address inside it are different rules,
each removed alone.
"""

from ..address import Prefix, host as literal, parse_prefix
from .base import ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, UNBLOCKED, Backend as Base
from .base import blocks

# What ipfstat says when IP Filter is not in the kernel (no /dev/ipl):
# nothing of ours can be there.
_NOT_LOADED = "No such file or directory"
_WHERE = "ipfilter rules in and out"


class Backend(Base):
    versions = {"ipf": ("-V",)}

    def inactive(self, address):
        result = self.run("ipf", "-V")
        if not result.ok:
            return "IP Filter is not usable (%s)" % result.describe()
        if "Running: yes" not in result.output:
            return "IP Filter is not running (enable it with ipf -E)"
        return None

    def add(self, address):
        active = self._active(address.version)
        wanted = [rule for rule in _rules(address) if rule not in active]
        if not wanted:
            return ALREADY_BLOCKED, _WHERE
        text = "".join("@1 %s\n" % " ".join(rule) for rule in wanted)
        self.check("ipf", *_family(address.version, "-f", "-"), input=text.encode())
        return BLOCKED, _WHERE

    def delete(self, address):
        active = self._active(address.version, strict=False)
        if active is None:
            return NOT_BLOCKED, "ipfilter not loaded"
        # Every copy: the stock script added the same rules again on each
        # alert, and one left behind would keep the address blocked.
        ours = _rules(address)
        present = [rule for rule in active if rule in ours]
        if not present:
            return NOT_BLOCKED, _WHERE
        # A few rules a call, so that each call's input fits in one pipe write.
        for start in range(0, len(present), 4):
            text = "".join("%s\n" % " ".join(rule) for rule in present[start:start + 4])
            self.check("ipf", *_family(address.version, "-r", "-f", "-"),
                       input=text.encode())
        return UNBLOCKED, _WHERE

    def members(self, version):
        hosts = [rule[4] for rule in self._active(version, strict=False) or ()
                 if rule[:4] == ("block", "in", "quick", "from") and rule[5:] == ("to", "any")]
        return blocks(hosts, version)

    def _active(self, version, strict=True):
        """The active rules of one family, in our normal form.  With
        strict=False, None when IP Filter is not loaded (nothing of ours
        can be there) rather than a failure."""
        listing = self.run("ipfstat", *_family(version, "-io"))
        if not strict and not listing.ok and _NOT_LOADED in listing.output:
            return None
        self.sort(listing, None)
        return _parse(listing.output)


def _family(version, *args):
    return (("-6",) if version == 6 else ()) + args


def _rules(target):
    """Our two rules for *target* (an address, or a Prefix), as tuples of
    words."""
    host = target.text if isinstance(target, Prefix) else "%s/%d" % (
        target.text, target.max_prefixlen)
    return [("block", "in", "quick", "from", host, "to", "any"),
            ("block", "out", "quick", "from", "any", "to", host)]


def _parse(listing):
    """The rules of an ipfstat listing, in our normal form, in order.

    ipfstat may print a host with or without its prefix length, an
    ``@n`` position, and (IP Filter 5) an ``inet``/``inet6`` family word;
    addresses are compared as addresses, never as substrings.
    """
    rules = []
    for line in listing.splitlines():
        words = [word for word in line.split()
                 if word not in ("inet", "inet6") and not word.startswith("@")]
        rules.append(tuple(_host(word) for word in words))
    return rules


def _host(word):
    """A single address, with or without its full prefix length, or an
    IPv6 network, in our normal form; any other word as it is."""
    if word[:1].isalnum() and ("." in word or ":" in word):
        address = literal(word)
        if address is not None:
            return "%s/%d" % (address.text, address.max_prefixlen)
        prefix = parse_prefix(word)
        if prefix is not None:
            return prefix.text
    return word
