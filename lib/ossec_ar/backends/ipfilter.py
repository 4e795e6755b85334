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
"""

import ipaddress

from ..exits import TEMPFAIL, failed
from .toolbox import Toolbox

# What ipfstat says when IP Filter is not in the kernel (no /dev/ipl):
# nothing of ours can be there.
_NOT_LOADED = "No such file or directory"


class Backend:
    name = "ipfilter"

    def __init__(self, settings):
        self.tools = Toolbox("ipf", "ipfstat")

    def missing(self, address):
        return self.tools.missing()

    def inactive(self, address):
        result = self.tools.run("ipf", "-V")
        if not result.ok:
            return "IP Filter is not usable (%s)" % result.describe()
        if "Running: yes" not in result.output:
            return "IP Filter is not running (enable it with ipf -E)"
        return None

    def add(self, address):
        listing = self.tools.run("ipfstat", *self._family(address, "-io"))
        active = _parse(self._checked(listing))
        wanted = [rule for rule in _rules(address) if rule not in active]
        if not wanted:
            return "already blocked", "ipfilter rules in and out"
        text = "".join("@1 %s\n" % " ".join(rule) for rule in wanted)
        self.tools.check("ipf", *self._family(address, "-f", "-"), input=text.encode())
        return "blocked", "ipfilter rules in and out"

    def delete(self, address):
        listing = self.tools.run("ipfstat", *self._family(address, "-io"))
        if not listing.ok and _NOT_LOADED in listing.output:
            return "was not blocked", "ipfilter not loaded"
        active = _parse(self._checked(listing))
        # Every copy: the stock script added the same rules again on each
        # alert, and one left behind would keep the address blocked.
        present = [rule for rule in active if rule in _rules(address)]
        if not present:
            return "was not blocked", "ipfilter rules in and out"
        # A few rules a call, so that each call's input fits in one pipe write.
        for start in range(0, len(present), 4):
            text = "".join("%s\n" % " ".join(rule) for rule in present[start:start + 4])
            self.tools.check("ipf", *self._family(address, "-r", "-f", "-"),
                             input=text.encode())
        return "unblocked", "ipfilter rules in and out"

    def members(self, version):
        listing = self.tools.run("ipfstat", *(("-6",) if version == 6 else ()) + ("-io",))
        if not listing.ok and _NOT_LOADED in listing.output:
            return set()
        found = set()
        for rule in _parse(self._checked(listing)):
            if rule[:4] == ("block", "in", "quick", "from") and rule[5:] == ("to", "any"):
                try:
                    found.add(ipaddress.ip_interface(rule[4]).ip)
                except ValueError:
                    pass
        return found

    @staticmethod
    def _checked(result):
        if not result.ok:
            raise failed(TEMPFAIL, result.describe())
        return result.output

    @staticmethod
    def _family(address, *args):
        return (("-6",) if address.version == 6 else ()) + args


def _rules(address):
    """Our two rules for *address*, as tuples of words."""
    host = "%s/%d" % (address, address.max_prefixlen)
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
    if word[:1].isalnum() and ("." in word or ":" in word):
        try:
            host = ipaddress.ip_interface(word)
        except ValueError:
            return word
        if host.network.prefixlen == host.max_prefixlen:
            return "%s/%d" % (host.ip, host.max_prefixlen)
    return word
