"""Every stock name an agent's ossec.conf may use runs our program, and the
name chooses the backend (lib/ossec_ar/firewall.py, BACKEND_OF_NAME):
on Linux for real in private network namespaces, elsewhere through the fake
tools of tests/fakes/."""

import json
import os
import subprocess

import pytest

from fakebsd import PROTECTION_TOOLS, FakeHost
from test_packets import CLIENT_V4, SERVER_V4, Pair

OSSEC_NAMES = ["firewall-drop.sh", "firewalld-drop.sh", "nftables-drop.sh", "route-null.sh",
               "pf.sh", "ipfw.sh", "ipfw_mac.sh", "npf.sh", "host-deny.sh", "unblock.sh"]
WAZUH_NAMES = ["firewall-drop", "firewalld-drop", "route-null", "pf", "ipfw", "npf",
               "host-deny", "unblock"]


@pytest.mark.parametrize("name", OSSEC_NAMES + WAZUH_NAMES)
def test_every_name_is_a_link_to_one_of_our_programs(install, name):
    path = install.program(name)
    assert os.path.islink(path)
    assert os.readlink(path) in ("ossec-ar-firewall-drop", "ossec-ar-host-deny",
                                 "ossec-ar-unblock")


def test_nftables_drop_uses_nftables_whatever_the_configuration_says(install):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    pair = Pair("nft")
    try:
        program = install.program("nftables-drop.sh")
        assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "5712"]).returncode == 0
        assert install.log_lines()[-1].endswith(
            "/nftables-drop.sh: add %s: blocked: nftables table inet ossec, set v4 (repaired: "
            "created table inet ossec) (exit 0)" % CLIENT_V4)
        assert pair.server.rules() == []                 # no iptables rule
        assert not pair.connects(SERVER_V4)
        assert pair.server.run([program, "delete", "-", CLIENT_V4, "1.1",
                                "5712"]).returncode == 0
        assert pair.connects(SERVER_V4)
    finally:
        pair.close()


# (name, system, fake firewall, what the outcome line names)
BSD_NAMES = [("pf.sh", "FreeBSD", "pf", "pf table <ossec_fwtable>"),
             ("pf", "OpenBSD", "pf", "pf table <ossec_fwtable>"),
             ("ipfw.sh", "FreeBSD", "ipfw", "ipfw table ossec_fwtable"),
             ("ipfw_mac.sh", "FreeBSD", "ipfw", "ipfw table ossec_fwtable"),
             ("npf.sh", "NetBSD", "npf", "npf table <ossec_blacklist>")]


@pytest.mark.parametrize("name,system,firewall,where", BSD_NAMES,
                         ids=[case[0] for case in BSD_NAMES])
def test_the_bsd_names_use_their_own_firewall(install, tmp_path, name, system, firewall,
                                             where):
    # The host has every fake tool, and auto would choose another firewall
    # first where it could: the name decides.
    host = FakeHost(install, tmp_path / "sbin", system, ["pf", "ipfw", "npf", "ipfilter"])
    assert host.run_program(name, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert install.log_lines()[-1].endswith(
        "/%s: add 192.0.2.7: blocked: %s%s (exit 0)" % (
            name, where, " (repaired: created table ossec_fwtable, deny rule 1)"
            if firewall == "ipfw" else ""))
    tools = {call[0] for call in host.argvs()}
    assert tools <= set(host_tools(firewall) + PROTECTION_TOOLS), tools
    assert host.run_program(name, "delete", "-", "192.0.2.7", "1.1", "5712") == 0
    assert " delete 192.0.2.7: unblocked: " in install.log_lines()[-1]


def host_tools(firewall):
    from fakebsd import TOOLS
    return TOOLS[firewall]


# -- ipv6_prefix = 64 under every name --------------------------------------
#
# Each name that blocks, with ipv6_prefix = 64: an add of ::7 blocks the /64,
# an add of ::8 finds it blocked by that prefix, the delete of ::7 keeps it
# for ::8 and the delete of ::8 lifts it; ossec-ar list, reading the
# firewall (or hosts.deny) itself, shows the prefix with both addresses
# between.  On Linux for real in a private network namespace (and a private
# /etc), elsewhere through the fakes, firewalld against a real one.

PREFIX = "2001:db8:1:2::/64"
PREFIX_SETTINGS = "[firewall-drop]\nipv6_prefix = 64\n[host-deny]\nipv6_prefix = 64\n"
PRIVATE_ETC = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
               'mount --bind "$0" /etc; exec "$@"']
LINUX_NAMES = ["firewall-drop.sh", "firewall-drop", "nftables-drop.sh", "route-null.sh",
               "route-null", "host-deny.sh", "host-deny"]
BSD_SYSTEMS = {"pf.sh": ("FreeBSD", "pf"), "pf": ("OpenBSD", "pf"),
               "ipfw.sh": ("FreeBSD", "ipfw"), "ipfw": ("FreeBSD", "ipfw"),
               "ipfw_mac.sh": ("FreeBSD", "ipfw"), "npf.sh": ("NetBSD", "npf"),
               "npf": ("NetBSD", "npf")}
FIREWALLD_NAMES = ["firewalld-drop.sh", "firewalld-drop"]


class Site:
    """Where a name runs: ``argv(words)`` is the command line that runs
    *words* there; ``start`` and ``close`` make and end it."""

    def __init__(self, install, name, netns, etc, tmp_path):
        self.install, self.name = install, name
        self.firewalld = None
        if name in BSD_SYSTEMS:
            system, firewall = BSD_SYSTEMS[name]
            host = FakeHost(install, tmp_path / "sbin", system, [firewall], PREFIX_SETTINGS)
            if firewall == "npf":       # only a table of type lpm holds networks
                host.change("npf", types={"ossec_blacklist": "lpm"})
            self.wrap = []
        elif name in FIREWALLD_NAMES:
            from test_firewalld import Firewalld
            install.configure(PREFIX_SETTINGS)
            self.firewalld = Firewalld()
            self.wrap = self.firewalld.enter()
            assert self.admin("firewalld-setup")[0] == 0
        else:
            install.configure(PREFIX_SETTINGS)
            with open(os.path.join(etc, "hosts.deny"), "w") as f:
                f.write("# admin\n")
            self.wrap = netns.prefix() + PRIVATE_ETC + [etc]

    def close(self):
        if self.firewalld is not None:
            self.firewalld.close()

    def run(self, *args):
        """The name's outcome line (without its path and date)."""
        result = subprocess.run(self.wrap + [self.install.program(self.name)] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=120)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), result
        return self.install.log_lines()[-1].split("/%s: " % self.name, 1)[1]

    def admin(self, *args):
        result = subprocess.run(self.wrap + [os.path.join(self.install.prefix, "bin",
                                                          "ossec-ar")] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        return result.returncode, result.stdout, result.stderr

    def prefix_rows(self, program):
        code, out, err = self.admin("list", "--json")
        assert (code, err) == (0, ""), out
        return [(row["address"], row["state"], row["holders"] or row["prefix"])
                for row in json.loads(out)["blocks"] if row["program"] == program]


@pytest.fixture
def site(request, install, nft_netns, etc_copy, tmp_path):
    made = Site(install, request.param, nft_netns, etc_copy, tmp_path)
    yield made
    made.close()


@pytest.mark.parametrize("site", LINUX_NAMES + sorted(BSD_SYSTEMS) + FIREWALLD_NAMES,
                         indirect=True)
def test_with_ipv6_prefix_every_name_blocks_the_prefix_and_lifts_it_with_its_last_address(
        site):
    program = "host-deny" if site.name.startswith("host-deny") else "firewall-drop"
    first = site.run("add", "-", "2001:db8:1:2::7", "1.1", "5712")
    start = "add 2001:db8:1:2::7: blocked: %s in " % PREFIX
    assert first.startswith(start) and first.endswith(" (exit 0)"), first
    where = first[len(start):-len(" (exit 0)")].split(" (repaired: ")[0]
    assert site.run("add", "-", "2001:db8:1:2::8", "1.2", "5712") == (
        "add 2001:db8:1:2::8: already blocked: by %s in %s (exit 0)" % (PREFIX, where))
    assert site.prefix_rows(program) == [
        (PREFIX, "in force", ["2001:db8:1:2::7", "2001:db8:1:2::8"]),
        ("2001:db8:1:2::7", "in force", PREFIX), ("2001:db8:1:2::8", "in force", PREFIX)]
    kept = site.run("delete", "-", "2001:db8:1:2::7", "1.1", "5712")
    assert kept.startswith("delete 2001:db8:1:2::7: unblocked: 2001:db8:1:2::7; prefix %s "
                           "kept for 1 other (" % PREFIX), kept
    assert site.prefix_rows(program) == [(PREFIX, "in force", ["2001:db8:1:2::8"]),
                                         ("2001:db8:1:2::8", "in force", PREFIX)]
    lifted = site.run("delete", "-", "2001:db8:1:2::8", "1.2", "5712")
    assert lifted.startswith("delete 2001:db8:1:2::8: unblocked: %s from " % PREFIX), lifted
    assert site.prefix_rows(program) == []


@pytest.mark.parametrize("name", ["unblock.sh", "unblock"])
def test_with_ipv6_prefix_unblock_releases_the_prefix_with_its_addresses(
        install, nft_netns, etc_copy, tmp_path, name):
    site = Site(install, "firewall-drop.sh", nft_netns, etc_copy, tmp_path)
    for address in ("2001:db8:1:2::7", "2001:db8:1:2::8"):
        site.run("add", "-", address, "1.1", "5712")
    site.name = name
    assert site.run("add", "-", "2001:db8:1:2::8", "(from_the_server)", "(no_rule_id)") == (
        "add 2001:db8:1:2::8: unblocked: firewall-drop: unblocked: %s from nftables table "
        "inet ossec, set v6p64; released 2 addresses of %s; host-deny: was not blocked: no "
        "block of ours in the ledger (exit 0)" % (PREFIX, PREFIX))
    assert site.prefix_rows("firewall-drop") == []
    site.name = "firewall-drop.sh"
    assert site.run("delete", "-", "2001:db8:1:2::7", "1.1", "5712") == (
        "delete 2001:db8:1:2::7: was not blocked: no block of ours in the ledger (exit 0)")
