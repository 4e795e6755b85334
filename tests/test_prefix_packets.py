"""Proof with packets that ``ipv6_prefix = 64`` blocks the whole /64 in
every Linux backend, and that the ledger's reference counting keeps it
until the last address of the prefix is deleted.

The client of test_packets.py's pair gets two more addresses: one inside
the blocked prefix (2001:db8:1:2::99, never added itself) and one outside
it (2001:db8:1:3::1).  Each run is the installed firewall-drop.sh, and
each outcome line is checked as the log says it.
"""

import os

import pytest

from conftest import require_root
from test_packets import Pair, SERVER_V6, more_client_addresses

ADDED, OTHER = "2001:db8:1:2::7", "2001:db8:1:2::8"
INSIDE, OUTSIDE = "2001:db8:1:2::99", "2001:db8:1:3::1"
NET = "2001:db8:1:2::/64"

# Per backend: where its add says the prefix went (the first add's repairs
# after it), and what its delete of the prefix says.
WHERE = {
    "nftables": ("nftables table inet ossec, set v6p64",
                 " (repaired: created table inet ossec)",
                 "nftables table inet ossec, set v6p64"),
    "ipset": ("ipset ossec6-net",
              " (repaired: created set ossec6-net, ip6tables rule in INPUT, ip6tables rule"
              " in FORWARD)",
              "ipset ossec6-net"),
    "iptables": ("ip6tables chain OSSEC",
                 " (repaired: created chain OSSEC, jump from INPUT, jump from FORWARD)",
                 "ip6tables: removed 1 from OSSEC"),
    "route": ("blackhole route %s in table main" % NET, "",
              "blackhole route %s in table main" % NET),
    "firewalld": ("firewalld ipset ossec6-net in zone drop", "", "firewalld ipset ossec6-net"),
}
CASES = [("nftables", "nft"), ("nftables", "legacy"), ("ipset", "nft"), ("ipset", "legacy"),
         ("iptables", "nft"), ("iptables", "legacy"), ("route", "nft")]


@pytest.fixture(params=CASES, ids=["-".join(case) for case in CASES])
def host(request, install):
    """(the pair, its backend), with ``ipv6_prefix = 64`` and the client's
    two more addresses."""
    require_root()
    backend, flavour = request.param
    install.configure("[firewall-drop]\nbackend = %s\nipv6_prefix = 64\n" % backend)
    pair = Pair(flavour)
    try:
        more_client_addresses(pair.server, pair.client, (INSIDE, OUTSIDE))
        yield pair, backend
    finally:
        pair.close()


def firewall_drop(netns, install, action, address):
    """Run the installed firewall-drop.sh in *netns*: its outcome line."""
    result = netns.run([install.program(), action, "-", address, "1.1", "5712"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    return install.log_lines()[-1].split("/firewall-drop.sh: ", 1)[1]


def reaches(connects):
    """From which of the client's addresses the server is reached, by a
    *connects*(server, source) of the pair's."""
    return {source: connects(SERVER_V6, source) for source in (INSIDE, OUTSIDE)}


def check_the_whole_prefix_is_blocked_and_counted(netns, install, connects, backend):
    where, repairs, lifted = WHERE[backend]
    assert reaches(connects) == {INSIDE: True, OUTSIDE: True}
    assert firewall_drop(netns, install, "add", ADDED) == (
        "add %s: blocked: %s in %s%s (exit 0)" % (ADDED, NET, where, repairs))
    # The prefix's other addresses are dropped, another prefix's are not.
    assert reaches(connects) == {INSIDE: False, OUTSIDE: True}
    assert firewall_drop(netns, install, "add", OTHER) == (
        "add %s: already blocked: by %s in %s (exit 0)" % (OTHER, NET, where))
    # Two addresses hold it: the first delete keeps it for the other...
    assert firewall_drop(netns, install, "delete", ADDED) == (
        "delete %s: unblocked: %s; prefix %s kept for 1 other (%s) (exit 0)"
        % (ADDED, ADDED, NET, backend))
    assert reaches(connects) == {INSIDE: False, OUTSIDE: True}
    # ...and the last lifts it.
    assert firewall_drop(netns, install, "delete", OTHER) == (
        "delete %s: unblocked: %s from %s (exit 0)" % (OTHER, NET, lifted))
    assert reaches(connects) == {INSIDE: True, OUTSIDE: True}
    assert firewall_drop(netns, install, "delete", OTHER) == (
        "delete %s: was not blocked: no block of ours in the ledger (exit 0)" % OTHER)
    assert len(install.log_lines()) == 10


def test_a_prefix_block_drops_the_prefix_until_its_last_address_is_deleted(host, install):
    pair, backend = host
    check_the_whole_prefix_is_blocked_and_counted(pair.server, install, pair.connects,
                                                  backend)


def test_firewalld_blocks_the_prefix_through_its_hash_net_ipset(install):
    from test_firewalld import PORT, Firewalld
    firewalld = Firewalld()
    try:
        more_client_addresses(firewalld.server, firewalld.client, (INSIDE, OUTSIDE))
        install.configure("[firewall-drop]\nipv6_prefix = 64\n")     # auto: firewalld
        setup = firewalld.run([os.path.join(install.prefix, "bin", "ossec-ar"),
                               "firewalld-setup"])
        assert (setup.returncode, setup.stdout, setup.stderr) == (
            0, "firewalld: ipsets ossec4, ossec6 and ossec6-net bound to zone drop; "
               "firewalld reloaded\n", "")
        firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])   # lost by the reload
        check_the_whole_prefix_is_blocked_and_counted(
            firewalld, install, firewalld.connects, "firewalld")
        assert firewalld.entries("ossec6-net") == firewalld.entries("ossec6-net", True) == []
    finally:
        firewalld.close()
