"""A delete never claims what it did not check (issue 25): when the layout
the ledger names cannot be examined (its tool is gone), a delete reaches
it over netlink where the backend can (nftables), or fails naming it; and
ossec-ar list calls such a block "unknown", never "lost".  Real nft and
iptables in private network namespaces; the tools are taken away through
the configuration's tool_dirs."""

import json
import os

import pytest

from test_program import nft_elements

ADDRESS = "192.0.2.7"


@pytest.fixture
def tools(tmp_path):
    """A tool directory of root's, empty until a test links tools in."""
    directory = tmp_path / "tools"
    directory.mkdir()
    directory.chmod(0o755)
    return directory


def only(tools, *names):
    for name in names:
        os.symlink("/usr/sbin/" + name, str(tools / name))


def run(netns, install, name, *args):
    result = netns.run([install.program(name)] + list(args))
    assert (result.stdout, result.stderr) == ("", ""), result
    return result.returncode, install.log_lines()[-1].split("/%s: " % name, 1)[1]


def admin(netns, install, *args):
    result = netns.run([os.path.join(install.prefix, "bin", "ossec-ar")] + list(args))
    assert result.stderr == "" or result.returncode != 0, result
    return result


def block_with_nftables(netns, install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    assert run(netns, install, "firewall-drop.sh", "add", "-", ADDRESS, "1", "1")[0] == 0
    assert nft_elements(netns) == [ADDRESS]


@pytest.mark.parametrize("name,args,expected", [
    ("firewall-drop.sh", ["delete", "-", ADDRESS, "1", "1"],
     "delete 192.0.2.7: unblocked: nftables table inet ossec, set v4 (exit 0)"),
    ("unblock.sh", ["add", "-", ADDRESS, "(no_rule_id)"],
     "add 192.0.2.7: unblocked: firewall-drop: unblocked: nftables table inet ossec, set v4; "
     "host-deny: was not blocked: no block of ours in the ledger (exit 0)"),
])
def test_without_nft_a_delete_lifts_the_nftables_block_over_netlink(
        nft_netns, install, tools, name, args, expected):
    block_with_nftables(nft_netns, install)
    only(tools, "iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "ipset",
         "ip")
    install.configure("[system]\ntool_dirs = %s\n" % tools)
    assert run(nft_netns, install, name, *args) == (0, expected)
    assert nft_elements(nft_netns) == []


def test_a_block_no_tool_can_reach_fails_every_lifting_and_is_unknown(nft_netns, install,
                                                                       tools):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    assert run(nft_netns, install, "firewall-drop.sh", "add", "-", ADDRESS, "1", "1")[0] == 0
    rule = "-A OSSEC -s %s/32 -j DROP" % ADDRESS
    assert rule in nft_netns.rules()
    install.configure("[system]\ntool_dirs = %s\n" % tools)        # no tool at all
    reason = ("the ledger says 192.0.2.7 is blocked in iptables, which cannot be examined "
              "here (iptables not found in %s)" % tools)
    assert run(nft_netns, install, "firewall-drop.sh", "delete", "-", ADDRESS, "1", "1") == (
        69, "delete 192.0.2.7: failed: %s (exit 69)" % reason)
    code, line = run(nft_netns, install, "unblock.sh", "add", "-", ADDRESS, "(no_rule_id)")
    assert (code, line) == (69, "add 192.0.2.7: failed: firewall-drop: failed: %s; host-deny: "
                                "was not blocked: no block of ours in the ledger (exit 69)"
                            % reason)
    result = admin(nft_netns, install, "unblock", ADDRESS)
    assert result.returncode == 69 and "firewall-drop: failed: " + reason in result.stdout
    rows = json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]
    assert [(r["address"], r["state"]) for r in rows] == [(ADDRESS, "unknown")]
    assert "nothing to restore" in admin(nft_netns, install, "restore").stdout
    assert rule in nft_netns.rules()                    # said as it is: still there
    install.configure("")                               # the tools are back
    assert run(nft_netns, install, "firewall-drop.sh", "delete", "-", ADDRESS, "1", "1") == (
        0, "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC (exit 0)")
    assert rule not in nft_netns.rules()


def test_with_no_tool_and_nothing_in_the_ledger_there_is_nothing_to_lift(nft_netns, install,
                                                                         tools):
    install.configure("[system]\ntool_dirs = %s\n" % tools)
    # Nothing of ours in the ledger: no tool is needed to know that.
    assert run(nft_netns, install, "firewall-drop.sh", "delete", "-", ADDRESS, "1", "1") == (
        0, "delete 192.0.2.7: was not blocked: no block of ours in the ledger (exit 0)")
    code, line = run(nft_netns, install, "unblock.sh", "add", "-", ADDRESS, "(no_rule_id)")
    assert (code, line) == (0, "add 192.0.2.7: was not blocked: firewall-drop: was not "
                               "blocked: no block of ours in the ledger; host-deny: was not "
                               "blocked: no block of ours in the ledger (exit 0)")
