"""The nftables and ipset backends, and the choice between backends, against
the real tools in private network namespaces."""

import json
import os
import re
import time

import pytest

from conftest import ROOT
from test_admin import admin
from test_iptables import in_private_mounts, outcome, run
from test_packets import CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, Pair

NFT_LAYOUT = """table inet ossec {
	set v4 {
		type ipv4_addr
	}

	set v6 {
		type ipv6_addr
	}

	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip saddr @v4 drop
		ip6 saddr @v6 drop
	}

	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr @v4 drop
		ip6 saddr @v6 drop
	}
}"""


def nft_ruleset(netns):
    """The ruleset without set elements (nft -t)."""
    return netns.check(["nft", "-t", "list", "ruleset"]).strip()


def nft_elements(netns, name):
    out = netns.check(["nft", "-j", "list", "set", "inet", "ossec", name])
    found = [item["set"] for item in json.loads(out)["nftables"] if "set" in item]
    return sorted(found[0].get("elem", []))


def members(netns, name):
    out = netns.check(["ipset", "list", name])
    return out.split("Members:\n", 1)[1].split()


def use(install, backend):
    install.configure("[firewall-drop]\nbackend = %s\n" % backend)


def test_nftables_add_add_delete_delete(nft_netns, install):
    use(install, "nftables")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: nftables table inet ossec, set v4 "
                                "(repaired: created table inet ossec) (exit 0)")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    # The chains were there this time.
    assert outcome(install) == ("add 192.0.2.7: already blocked: nftables table inet ossec, "
                                "set v4 (exit 0)")
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "1") == 0
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert nft_elements(nft_netns, "v4") == ["192.0.2.7"]
    assert nft_elements(nft_netns, "v6") == ["2001:db8::7"]
    assert nft_netns.rules() == []                  # no iptables rule at all
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("delete 192.0.2.7: unblocked: nftables table inet ossec, "
                                "set v4 (exit 0)")
    assert run(nft_netns, install, "delete", "-", "2001:db8::7", "1.1", "1") == 0
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert nft_elements(nft_netns, "v4") == nft_elements(nft_netns, "v6") == []
    assert run(nft_netns, install, "delete", "-", "2001:db8::7", "1.1", "1") == 0
    assert outcome(install).startswith("delete 2001:db8::7: was not blocked: ")


def test_nftables_layout_is_repaired_and_never_duplicated(nft_netns, install):
    use(install, "nftables")
    for n in range(1, 6):
        assert run(nft_netns, install, "add", "-", "192.0.2.%d" % n, "1.1", "1") == 0
    assert run(nft_netns, install, "add", "-", "192.0.2.6", "1.1", "1") == 0
    assert outcome(install).endswith("set v4 (exit 0)")           # chains were there
    nft_netns.check(["nft", "delete chain inet ossec forward"])
    nft_netns.check(["nft", "flush chain inet ossec input"])
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0   # already
    assert outcome(install) == ("add 192.0.2.1: already blocked: nftables table inet ossec, "
                                "set v4 (repaired: chain input empty, chain forward missing) "
                                "(exit 0)")
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    # A flushed chain, or an extra rule in it, is refilled by the next add.
    nft_netns.check(["nft", "flush chain inet ossec forward"])
    nft_netns.check(["nft", "add rule inet ossec input tcp dport 22 accept"])
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install).endswith("set v4 (repaired: chain input held other rules, "
                                     "chain forward empty) (exit 0)")
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert nft_elements(nft_netns, "v4") == ["192.0.2.%d" % n for n in (1, 2, 3, 4, 5, 6, 7)]
    nft_netns.check(["nft", "delete table inet ossec"])     # as `nft flush ruleset` does
    assert run(nft_netns, install, "add", "-", "192.0.2.9", "1.1", "1") == 0
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert nft_elements(nft_netns, "v4") == ["192.0.2.9"]


@pytest.mark.parametrize("damage,repair", [
    ("flush chain inet ossec input", "chain input empty"),
    ("add rule inet ossec forward ip saddr 192.0.2.1 accept",               # after ours
     "chain forward held other rules"),
    ("insert rule inet ossec input ip saddr 192.0.2.1 accept",              # a hole
     "chain input held other rules"),
    ("add rule inet ossec input ip saddr @v4 counter drop",                 # not ours
     "chain input held other rules"),
    ("delete chain inet ossec forward", "chain forward missing"),
    ("add chain inet ossec input { policy drop; }",
     "chain input was filter hook input priority -10 policy drop"),
])
def test_nftables_layout_damage_is_repaired_by_the_next_add_and_by_restore(
        nft_netns, install, damage, repair):
    use(install, "nftables")
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0
    nft_netns.check(["nft", damage])
    assert nft_ruleset(nft_netns) != NFT_LAYOUT
    restored = admin(nft_netns, install, "restore")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "note: nftables: repaired: %s\n" % repair in restored.stdout
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert "nftables" not in admin(nft_netns, install, "restore").stdout   # whole now
    nft_netns.check(["nft", damage])
    assert run(nft_netns, install, "add", "-", "192.0.2.2", "1.1", "1") == 0
    assert nft_ruleset(nft_netns) == NFT_LAYOUT
    assert nft_elements(nft_netns, "v4") == ["192.0.2.1", "192.0.2.2"]


def test_nftables_restore_makes_no_table_where_none_was(nft_netns, install):
    use(install, "iptables")
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0
    restored = admin(nft_netns, install, "restore")
    assert (restored.returncode, restored.stdout) == (0, "nothing to restore\n")
    assert "ossec" not in nft_netns.check(["nft", "list", "tables"])


def test_nftables_failure_is_exit_75_with_nfts_own_error(nft_netns, install):
    install.configure("[firewall-drop]\nbackend = nftables\nnft_table = ossec\n")
    # A set of intervals under our name that a chain of someone else's uses:
    # it cannot be rebuilt, so nothing is said blocked.
    nft_netns.check(["nft", "add table inet ossec; add set inet ossec v4 { type ipv4_addr; "
                            "flags interval; }; add chain inet ossec theirs; "
                            "add rule inet ossec theirs ip saddr @v4 accept"])
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 75
    text = outcome(install)
    assert text.startswith("add 192.0.2.7: failed: nft exited 1: Error: ")
    assert text.endswith("(exit 75)")
    assert "192.0.2.7" not in nft_netns.check(["nft", "list", "ruleset"])


def test_ipset_add_add_delete_delete(netns, install):
    use(install, "ipset")
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: ipset ossec4 (repaired: created set "
                                "ossec4, iptables rule in INPUT, iptables rule in FORWARD) "
                                "(exit 0)")
    assert run(netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == "add 192.0.2.7: already blocked: ipset ossec4 (exit 0)"
    assert run(netns, install, "add", "-", "2001:db8::7", "1.1", "1") == 0
    assert members(netns, "ossec4") == ["192.0.2.7"]
    assert members(netns, "ossec6") == ["2001:db8::7"]
    header = netns.check(["ipset", "list", "ossec4"])
    assert "maxelem 1048576" in header and "Type: hash:ip" in header
    rule = "-m set --match-set %s src -j DROP"
    assert netns.rules() == ["-A INPUT " + rule % "ossec4", "-A FORWARD " + rule % "ossec4"]
    assert netns.rules("ip6tables") == ["-A INPUT " + rule % "ossec6",
                                        "-A FORWARD " + rule % "ossec6"]
    assert run(netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install) == "delete 192.0.2.7: unblocked: ipset ossec4 (exit 0)"
    assert members(netns, "ossec4") == []
    assert run(netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install).startswith("delete 192.0.2.7: was not blocked: ")


def test_ipset_rules_are_repaired(nft_netns, install):
    use(install, "ipset")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    nft_netns.check(["iptables", "-w", "-F"])
    assert run(nft_netns, install, "add", "-", "192.0.2.8", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.8: blocked: ipset ossec4 (repaired: iptables "
                                "rule in INPUT, iptables rule in FORWARD) (exit 0)")
    assert len(nft_netns.rules()) == 2
    assert sorted(members(nft_netns, "ossec4")) == ["192.0.2.7", "192.0.2.8"]


@pytest.fixture
def pair():
    pair = Pair("nft")
    yield pair
    pair.close()


@pytest.mark.parametrize("create,found", [
    (["hash:ip", "timeout", "2"], "hash:ip, family inet hashsize 1024 maxelem 65536 timeout 2"),
    (["hash:net"], "hash:net, family inet hashsize 1024 maxelem 65536"),
    (["hash:ip", "maxelem", "2"], "hash:ip, family inet hashsize 1024 maxelem 2"),
], ids=["elements expire", "a network type", "other options"])
def test_ipset_a_set_not_of_our_making_is_refused(pair, install, create, found):
    use(install, "ipset")
    pair.server.check(["ipset", "create", "ossec4"] + create)
    assert pair.connects(SERVER_V4)
    result = pair.server.run([install.program(), "add", "-", CLIENT_V4, "1.1", "1"])
    assert result.returncode == 75
    text = outcome(install)
    assert text.startswith("add 192.0.2.7: failed: ipset ossec4 is not the set we make "
                           "(hash:ip, family inet maxelem 1048576, nothing else) but %s "
                           "bucketsize 12 initval 0x" % found)
    assert text.endswith(": remove it (and the iptables rules that use it); the next add "
                         "makes ours (exit 75)")
    assert members(pair.server, "ossec4") == []       # nothing claimed, nothing added
    assert pair.connects(SERVER_V4)


def test_ipset_a_delete_that_a_network_element_still_covers_is_not_unblocked(pair, install):
    use(install, "ipset")
    server = pair.server
    server.check(["ipset", "create", "ossec4", "hash:net"])
    server.check(["ipset", "add", "ossec4", "192.0.2.0/24"])
    server.check(["ipset", "add", "ossec4", CLIENT_V4])
    for hook in ("INPUT", "FORWARD"):
        server.check(["iptables", "-w", "-I", hook, "1", "-m", "set", "--match-set", "ossec4",
                      "src", "-j", "DROP"])
    assert not pair.connects(SERVER_V4)
    install.own(CLIENT_V4, "firewall-drop", "ipset")       # as if our add had put it there
    result = server.run([install.program(), "delete", "-", CLIENT_V4, "1.1", "1"])
    assert result.returncode == 75
    assert outcome(install).startswith(
        "delete 192.0.2.7: failed: ipset ossec4 still matches 192.0.2.7 after the delete: "
        "an element wider than one address covers it")
    assert not pair.connects(SERVER_V4)


@pytest.mark.parametrize("first,second", [("iptables", "nftables"), ("nftables", "ipset"),
                                          ("ipset", "iptables"), ("nftables", "auto")])
def test_changing_the_backend_strands_no_ban(nft_netns, install, first, second):
    use(install, first)
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    use(install, second)
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert outcome(install).startswith("delete 192.0.2.7: unblocked: ")
    assert "192.0.2.7" not in nft_netns.check(["nft", "list", "ruleset"])
    assert all("192.0.2.7" not in rule for rule in nft_netns.rules())


def test_auto_uses_nftables_where_iptables_is_missing(nft_netns, install):
    hide = "mount --bind /dev/null /usr/sbin/xtables-nft-multi"
    result = in_private_mounts(nft_netns, hide, install.program(), "add", "-", "192.0.2.7",
                               "1.1", "1")
    assert result.returncode == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: nftables table inet ossec, set v4 "
                                "(repaired: created table inet ossec) (exit 0)")
    result = in_private_mounts(nft_netns, hide, install.program(), "delete", "-",
                               "192.0.2.7", "1.1", "1")
    assert result.returncode == 0
    assert outcome(install) == ("delete 192.0.2.7: unblocked: nftables table inet ossec, "
                                "set v4 (exit 0)")


@pytest.mark.parametrize("backend", ["iptables", "nftables", "ipset"])
def test_each_backend_drops_ipv4_and_ipv6_packets(pair, install, backend):
    use(install, backend)
    program = install.program()
    for server, client in ((SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)):
        assert pair.connects(server)
        assert pair.server.run([program, "add", "-", client, "1.1", "1"]).returncode == 0
        assert not pair.connects(server)
        assert pair.server.run([program, "delete", "-", client, "1.1", "1"]).returncode == 0
        assert pair.connects(server)


# Layouts someone else left (or made first) under our names, on which an
# add used to say "blocked" while the packets passed.  Each: nft run before
# any add, nft run after a first add, and what the add must say it repaired.
OUR_CHAINS = ("add set inet ossec v6 { type ipv6_addr; }; "
              "add chain inet ossec input { type filter hook input priority -10; }; "
              "add chain inet ossec forward { type filter hook forward priority -10; }; "
              "add rule inet ossec input ip saddr @v4 drop; "
              "add rule inet ossec input ip6 saddr @v6 drop; "
              "add rule inet ossec forward ip saddr @v4 drop; "
              "add rule inet ossec forward ip6 saddr @v6 drop")
# A set rebuilt is declared again after the other: either order is ours.
LAYOUTS = (NFT_LAYOUT, NFT_LAYOUT.replace(
    "\tset v4 {\n\t\ttype ipv4_addr\n\t}\n\n\tset v6 {\n\t\ttype ipv6_addr\n\t}",
    "\tset v6 {\n\t\ttype ipv6_addr\n\t}\n\n\tset v4 {\n\t\ttype ipv4_addr\n\t}"))
HOSTILE = {
    "chains-on-output": (
        "add table inet ossec; "
        "add chain inet ossec input { type filter hook output priority -10; }; "
        "add chain inet ossec forward { type filter hook output priority 0; }", None,
        "set v4 missing, set v6 missing, chain input was filter hook output priority -10 policy accept, "
        "chain forward was filter hook output priority 0 policy accept"),
    "table-dormant": (None, "add table inet ossec { flags dormant; }", "table dormant"),
    "set-timeout": ("add table inet ossec; add set inet ossec v4 { type ipv4_addr; "
                    "timeout 1s; }; " + OUR_CHAINS, None,
                    "set v4 was type ipv4_addr flags timeout"),
    "element-timeouts": (
        "add table inet ossec; add set inet ossec v4 { type ipv4_addr; flags timeout; }; "
        "add element inet ossec v4 { 192.0.2.7 timeout 1s }; " + OUR_CHAINS, None,
        "set v4 was type ipv4_addr flags timeout"),
    "set-interval": ("add table inet ossec; add set inet ossec v4 { type ipv4_addr; "
                     "flags interval; }; " + OUR_CHAINS, None,
                     "set v4 was type ipv4_addr flags interval"),
    "accept-before-ours": (None, "insert rule inet ossec input ip saddr 192.0.2.7 accept",
                           "chain input held other rules"),
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_nftables_hostile_layout_is_repaired_before_blocked_is_said(pair, install, hostile):
    first, then, repaired = HOSTILE[hostile]
    use(install, "nftables")
    if first:
        pair.server.check(["nft", first])
    else:
        assert run(pair.server, install, "add", "-", "198.51.100.1", "1.1", "1") == 0
        pair.server.check(["nft", then])
    # (A client whose address is an element timing out is dropped until then.)
    assert pair.connects(SERVER_V4) or hostile == "element-timeouts"
    assert run(pair.server, install, "add", "-", CLIENT_V4, "1.1", "1") == 0
    if "timeout" in hostile:
        time.sleep(1.5)                 # past the timeout the element was given
    assert not pair.connects(SERVER_V4)
    assert outcome(install).endswith("set v4 (repaired: %s) (exit 0)" % repaired)
    assert outcome(install).startswith("add 192.0.2.7: blocked: ")
    assert nft_ruleset(pair.server) in LAYOUTS
    # The address next below the client's: in a set of intervals, a lone
    # start would drop the client too, after its delete.
    assert run(pair.server, install, "add", "-", "192.0.2.6", "1.1", "1") == 0
    assert nft_elements(pair.server, "v4") == ["192.0.2.6", "192.0.2.7"] + (
        [] if first else ["198.51.100.1"])
    assert run(pair.server, install, "delete", "-", CLIENT_V4, "1.1", "1") == 0
    assert outcome(install).startswith("delete 192.0.2.7: unblocked: ")
    assert pair.connects(SERVER_V4)


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_nftables_hostile_layout_is_broken_for_status_and_repaired_by_restore(
        nft_netns, install, hostile):
    first, then, repaired = HOSTILE[hostile]
    use(install, "nftables")
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0
    nft_netns.check(["nft", "delete table inet ossec"])
    nft_netns.check(["nft", first or "add table inet ossec"])
    if then:
        nft_netns.check(["nft", "add set inet ossec v4 { type ipv4_addr; }; " + OUR_CHAINS
                         + "; " + then])
    status = admin(nft_netns, install, "status")
    assert "layout nftables: broken: %s" % repaired in status.stdout
    restored = admin(nft_netns, install, "restore")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "note: nftables: repaired: %s\n" % repaired in restored.stdout
    assert "192.0.2.1 (firewall-drop): blocked: " in restored.stdout
    assert nft_ruleset(nft_netns) in LAYOUTS
    assert "layout nftables: whole" in admin(nft_netns, install, "status").stdout
    assert "nftables" not in admin(nft_netns, install, "restore").stdout


# What the documents say auto tries, held against AUTOMATIC itself.

# The names the manual page and the README give a system, as uname(2) names it.
SYSTEM_NAMES = {"Linux": "Linux", "FreeBSD": "FreeBSD", "OpenBSD": "OpenBSD",
                "macOS": "Darwin", "NetBSD": "NetBSD", "Solaris": "SunOS",
                "illumos": "SunOS", "AIX": "AIX"}


def _backends_named(text):
    """The registry's backend names in *text*, in the order they come."""
    from ossec_ar import backends
    words = re.findall(r"[A-Za-z]+", text)
    return tuple(word for word in words if word in backends.REGISTRY)


def _systems_named(label):
    return sorted({SYSTEM_NAMES[word] for word in re.findall(r"[A-Za-z]+", label)
                   if word in SYSTEM_NAMES})


def test_the_manual_page_gives_autos_order_for_every_system():
    """firewall-drop.sh(8), BACKENDS: one tagged paragraph per system (its
    names on the .TP line after), whose backends are AUTOMATIC's, in order."""
    from ossec_ar import backends
    with open(os.path.join(ROOT, "man", "firewall-drop.sh.8")) as f:
        page = f.read()
    section = page.split("\n.SH BACKENDS\n", 1)[1].split("\n.SH ", 1)[0]
    listing = section.split("\n.TP\n", 1)[1].split("\n.PP\n", 1)[0]
    said = {}
    for paragraph in listing.split("\n.TP\n"):
        label, _, body = paragraph.partition("\n")
        systems = _systems_named(label)
        assert systems, label
        for system in systems:
            assert system not in said, system
            said[system] = _backends_named(body)
    assert said == backends.AUTOMATIC
    assert said["Linux"] == ("firewalld", "nftables", "ipset", "iptables")


def test_the_readme_gives_autos_order_for_the_other_systems():
    """docs/backends.md, "Other systems" (moved there from the README)."""
    from ossec_ar import backends
    with open(os.path.join(ROOT, "docs", "backends.md")) as f:
        readme = f.read()
    table = readme.split("\n| system | `auto` tries, in order | layout |\n", 1)[1]
    said = {}
    for row in table.split("\n\n", 1)[0].splitlines()[1:]:
        label, tried = row.split("|")[1:3]
        for system in _systems_named(label):
            said[system] = _backends_named(tried)
    assert said == {name: order for name, order in backends.AUTOMATIC.items()
                    if name != "Linux"}


# -- ipset: status, list and restore see a layout that no longer holds ------

def states(netns, install):
    result = admin(netns, install, "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    return {row["address"]: row["state"] for row in data["blocks"]}, data["notes"]


def test_ipset_a_match_rule_gone_is_broken_for_status_and_list_and_restore_puts_it_back(
        pair, install):
    use(install, "ipset")
    server = pair.server
    for client in (CLIENT_V4, CLIENT_V6):
        assert run(server, install, "add", "-", client, "1.1", "1") == 0
    server.check(["iptables", "-w", "-D", "INPUT", "-m", "set", "--match-set", "ossec4",
                  "src", "-j", "DROP"])
    assert pair.connects(SERVER_V4)             # the block no longer holds
    status = admin(server, install, "status")
    assert ("layout ipset: broken: iptables rule matching set ossec4 missing from INPUT "
            "(repaired by the next add or by ossec-ar restore)\n") in status.stdout
    found, notes = states(server, install)
    assert found == {CLIENT_V4: "unknown", CLIENT_V6: "in force"}
    assert notes == ["ipset: iptables rule matching set ossec4 missing from INPUT: its "
                     "elements are not counted as blocks"]
    restored = admin(server, install, "restore")
    assert (restored.returncode, restored.stdout) == (
        0, "nothing to restore\nnote: ipset: repaired: iptables rule in INPUT\n")
    assert not pair.connects(SERVER_V4)
    assert server.rules()[0] == "-A INPUT -m set --match-set ossec4 src -j DROP"
    assert states(server, install) == ({CLIENT_V4: "in force", CLIENT_V6: "in force"}, [])
    assert "layout ipset: whole\n" in admin(server, install, "status").stdout
    assert admin(server, install, "restore").stdout == "nothing to restore\n"


@pytest.mark.parametrize("create,found", [
    (["hash:ip", "timeout", "600"], "hash:ip, family inet hashsize 1024 maxelem 65536 "
                                    "timeout 600"),
    (["hash:net"], "hash:net, family inet hashsize 1024 maxelem 65536"),
    (["hash:ip", "maxelem", "2"], "hash:ip, family inet hashsize 1024 maxelem 2"),
], ids=["elements expire", "a network type", "other options"])
def test_ipset_a_set_not_of_our_making_is_broken_for_status_and_list_and_left_by_restore(
        nft_netns, install, create, found):
    use(install, "ipset")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    # Someone makes the set again their way, with the address and our rules.
    rule = ["-m", "set", "--match-set", "ossec4", "src", "-j", "DROP"]
    for hook in ("INPUT", "FORWARD"):
        nft_netns.check(["iptables", "-w", "-D", hook] + rule)
    nft_netns.check(["ipset", "destroy", "ossec4"])
    nft_netns.check(["ipset", "create", "ossec4"] + create)
    nft_netns.check(["ipset", "add", "ossec4", "192.0.2.7"])
    for hook in ("INPUT", "FORWARD"):
        nft_netns.check(["iptables", "-w", "-I", hook, "1"] + rule)
    header = nft_netns.check(["ipset", "list", "-t", "ossec4"])
    ours = ("ipset ossec4 is not the set we make (hash:ip, family inet maxelem 1048576, "
            "nothing else) but %s bucketsize 12 initval 0x" % found)
    status = admin(nft_netns, install, "status").stdout
    assert "layout ipset: broken: " + ours in status
    assert ("(every add fails with exit 75 until it is removed; the next add then makes "
            "ours)\n") in status
    found_states, notes = states(nft_netns, install)
    assert found_states == {"192.0.2.7": "unknown"}
    assert len(notes) == 1 and notes[0].startswith("ipset: " + ours)
    assert notes[0].endswith(": its elements are not counted as blocks")
    restored = admin(nft_netns, install, "restore")
    assert restored.returncode == 0, restored.stderr
    lines = restored.stdout.splitlines()
    assert lines[0] == "nothing to restore" and len(lines) == 3
    assert lines[1].startswith("note: ipset: left as it is: " + ours)
    assert lines[1].endswith(": remove it (and the iptables rules that use it); the next "
                             "add makes ours")
    assert lines[2] == "note: " + notes[0]           # list's: the block is unknown
    assert nft_netns.check(["ipset", "list", "-t", "ossec4"]) == header     # left
    assert members(nft_netns, "ossec4")[:1] == ["192.0.2.7"]     # (and its timeout)


# -- ipset and ipv6_prefix: a hash:net set of prefixes beside ossec6 ---------
#
# The backend alone, handed the Prefix the program hands it (packets:
# test_prefix_packets.py).

PREFIX, INSIDE = "2001:db8:1:2::/64", "2001:db8:1:2::7"
NET_RULE = "-m set --match-set ossec6-net src -j DROP"
SET_RULE = "-m set --match-set ossec6 src -j DROP"


def set_names(netns):
    return sorted(netns.check(["ipset", "list", "-n"]).split())


def test_ipset_an_address_layout_never_meets_the_prefixes_set(netns):
    from conftest import backend_steps
    # The /128 add makes the calls it made before (the set's restore, then
    # the rules: all missing here, so the rules are listed and put in);
    # once whole, two calls, as before; a delete, one.
    assert backend_steps(netns.run, "ipset", "add " + INSIDE, "calls", "add 2001:db8::8",
                         "calls", "delete " + INSIDE, "calls", "members 6") == [
        "blocked: ipset ossec6 (repaired: created set ossec6, ip6tables rule in INPUT, "
        "ip6tables rule in FORWARD)", "5",
        "blocked: ipset ossec6", "2",
        "unblocked: ipset ossec6", "1",
        "Address('2001:db8::8')"]
    assert set_names(netns) == ["ossec6"]
    assert netns.rules("ip6tables") == ["-A INPUT " + SET_RULE, "-A FORWARD " + SET_RULE]


def test_ipset_a_prefix_goes_into_a_hash_net_set_made_at_its_first_add(netns):
    from conftest import backend_steps
    assert backend_steps(netns.run, "ipset", "add " + INSIDE, "add " + PREFIX,
                         "add " + PREFIX, "members 6", "members 4") == [
        "blocked: ipset ossec6 (repaired: created set ossec6, ip6tables rule in INPUT, "
        "ip6tables rule in FORWARD)",
        "blocked: ipset ossec6-net (repaired: created set ossec6-net, ip6tables rule in "
        "INPUT, ip6tables rule in FORWARD)",
        "already blocked: ipset ossec6-net",
        "%s Address('%s')" % (PREFIX, INSIDE), ""]
    assert set_names(netns) == ["ossec6", "ossec6-net"]
    header = netns.check(["ipset", "list", "-t", "ossec6-net"])
    assert "Type: hash:net\n" in header
    assert "Header: family inet6 hashsize 1024 maxelem 1048576 " in header
    assert members(netns, "ossec6-net") == [PREFIX]
    assert members(netns, "ossec6") == [INSIDE]
    assert netns.rules("ip6tables") == [
        "-A INPUT " + NET_RULE, "-A INPUT " + SET_RULE,
        "-A FORWARD " + NET_RULE, "-A FORWARD " + SET_RULE]
    assert netns.rules("iptables") == []
    # The prefix's delete leaves the /128, the /128's the prefix.
    assert backend_steps(netns.run, "ipset", "delete " + PREFIX, "delete " + PREFIX,
                         "members 6", "add " + PREFIX, "delete " + INSIDE, "delete " + INSIDE,
                         "members 6") == [
        "unblocked: ipset ossec6-net", "was not blocked: ipset ossec6-net",
        "Address('%s')" % INSIDE,
        "blocked: ipset ossec6-net",
        "unblocked: ipset ossec6", "was not blocked: ipset ossec6",
        PREFIX]
    assert members(netns, "ossec6-net") == [PREFIX]
    assert members(netns, "ossec6") == []


def test_ipset_the_prefixes_set_rules_are_repaired_and_a_set_made_otherwise_refused(
        nft_netns):
    from conftest import backend_steps
    netns = nft_netns
    assert backend_steps(netns.run, "ipset", "add " + PREFIX)[0].startswith("blocked: ")
    netns.check(["ip6tables", "-w", "-D", "INPUT"] + NET_RULE.split())
    assert backend_steps(netns.run, "ipset", "members 6", "add 2001:db8:1:3::/64",
                         "members 6") == [
        "failed: ip6tables rule matching set ossec6-net missing from INPUT: its elements "
        "are not counted as blocks",
        "blocked: ipset ossec6-net (repaired: ip6tables rule in INPUT)",
        "2001:db8:1:2::/64 2001:db8:1:3::/64"]
    assert netns.rules("ip6tables") == ["-A INPUT " + NET_RULE, "-A FORWARD " + NET_RULE]
    # A set of that name that is not a hash:net set of ours: nothing is added.
    for hook in ("INPUT", "FORWARD"):
        netns.check(["ip6tables", "-w", "-D", hook] + NET_RULE.split())
    netns.check(["ipset", "destroy", "ossec6-net"])
    netns.check(["ipset", "create", "ossec6-net", "hash:ip", "family", "inet6"])
    lines = backend_steps(netns.run, "ipset", "add " + PREFIX, "members 6")
    assert lines[0].startswith(
        "failed: ipset ossec6-net is not the set we make (hash:net, family inet6 maxelem "
        "1048576, nothing else) but hash:ip, family inet6 hashsize 1024 maxelem 65536 ")
    assert lines[0].endswith(": remove it (and the iptables rules that use it); the next "
                             "add makes ours")
    assert lines[1].startswith("failed: ipset ossec6-net is not the set we make ")
    assert members(netns, "ossec6-net") == []
