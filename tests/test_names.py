"""Every stock name an agent's ossec.conf may use runs our program, and the
name chooses the backend (lib/ossec_ar/firewall.py, BACKEND_OF_NAME):
on Linux for real in private network namespaces, elsewhere through the fake
tools of tests/fakes/."""

import os

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
