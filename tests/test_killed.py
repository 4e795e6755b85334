"""The ledger's word survives a run killed half-way (issue 25): a delete
killed after the firewall change and before its ledger record must not
leave a block that ``ossec-ar restore`` puts back; a delete that fails
leaves the ledger's adds as they were.  Real iptables in a private
network namespace; the kill comes from a stand-in iptables, in the
configuration's tool_dirs, that does the real work first."""

import json
import os

from test_iptables import outcome, run

ADDRESS = "192.0.2.7"
RULE = "-A OSSEC -s %s/32 -j DROP" % ADDRESS

# Does the real iptables's work, then kills the run that called it
# (its parent) before that run can write anything more.
KILLS_ITS_CALLER_ON_DELETE = """#!/bin/sh
case " $* " in
*" -D "*) /usr/sbin/iptables "$@"; status=$?; kill -KILL $PPID; exit $status;;
esac
exec /usr/sbin/iptables "$@"
"""

FAILS_ON_DELETE = """#!/bin/sh
case " $* " in *" -D "*) echo "iptables: refused for the test" >&2; exit 1;; esac
exec /usr/sbin/iptables "$@"
"""


def tools_with(tmp_path, iptables):
    tools = tmp_path / "tools"
    tools.mkdir()
    tools.chmod(0o755)
    (tools / "iptables").write_text(iptables)
    (tools / "iptables").chmod(0o755)
    os.symlink("/usr/sbin/ip6tables", str(tools / "ip6tables"))
    return tools


def ledger_ops(install):
    with open(os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")) as f:
        return [(line.split()[2], line.split()[4]) for line in f if not line.startswith("#")]


def admin(netns, install, *args):
    return netns.run([os.path.join(install.prefix, "bin", "ossec-ar")] + list(args))


def test_a_delete_killed_after_the_change_is_not_restored(nft_netns, install, tmp_path):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    assert run(nft_netns, install, "add", "-", ADDRESS, "1.1", "5712") == 0
    tools = tools_with(tmp_path, KILLS_ITS_CALLER_ON_DELETE)
    install.configure("[firewall-drop]\nbackend = iptables\n[system]\ntool_dirs = %s\n" % tools)
    result = nft_netns.run([install.program(), "delete", "-", ADDRESS, "1.1", "5712"])
    assert result.returncode == -9                       # killed: no outcome line
    assert RULE not in nft_netns.rules()                 # but the rule was removed
    install.configure("[firewall-drop]\nbackend = iptables\n")
    result = admin(nft_netns, install, "restore")
    assert RULE not in nft_netns.rules()
    assert (result.returncode, result.stdout.strip()) == (0, "nothing to restore")
    assert ledger_ops(install) == [("add", ADDRESS), ("delete", ADDRESS)]
    rows = json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]
    assert rows == []


def test_a_delete_that_fails_leaves_the_ledgers_adds_as_they_were(nft_netns, install,
                                                                   tmp_path):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    assert run(nft_netns, install, "add", "-", ADDRESS, "1.1", "5712") == 0
    rows = json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]
    since = rows[0]["since"]
    tools = tools_with(tmp_path, FAILS_ON_DELETE)
    install.configure("[firewall-drop]\nbackend = iptables\n[system]\ntool_dirs = %s\n" % tools)
    assert run(nft_netns, install, "delete", "-", ADDRESS, "1.1", "5712") == 75
    assert outcome(install).startswith("delete %s: failed: `%s/iptables -w " % (ADDRESS, tools))
    assert RULE in nft_netns.rules()
    assert ledger_ops(install) == [("add", ADDRESS), ("delete", ADDRESS), ("add", ADDRESS)]
    install.configure("[firewall-drop]\nbackend = iptables\n")
    rows = json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]
    assert [(r["address"], r["state"], r["backend"], r["since"], r["rule"], r["alert"])
            for r in rows] == [(ADDRESS, "in force", "iptables", since, "5712", "1.1")]
    assert run(nft_netns, install, "delete", "-", ADDRESS, "1.1", "5712") == 0
    assert RULE not in nft_netns.rules()
