"""unblock.sh, installed by make install: lifting a block everywhere, as
execd runs it on the manager's word (agent_control -b IP -f unblock0),
through the programs' own locks and ledgers.  Real nftables, iptables and
a private /etc in private namespaces."""

import json
import os

import pytest

from conftest import invocation
from execd import Execd, alert, from_manager_4, from_manager_5
from test_iptables import HOSTILE
from test_packets import CLIENT_V4, SERVER_V4, Pair

# How execd runs it for agent_control -b: add, no user, no ids.
FROM_THE_SERVER = ["-", "(from_the_server)", "(no_rule_id)"]
PRIVATE_ETC = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
               'mount --bind "$0" /etc; exec "$@"']


class Agent:
    def __init__(self, install, netns, etc):
        self.install, self.netns, self.etc = install, netns, etc
        self.deny = os.path.join(etc, "hosts.deny")
        with open(self.deny, "w") as f:
            f.write("# admin\n")

    def run(self, name, *args):
        result = self.netns.run(PRIVATE_ETC + [self.etc, self.install.program(name)]
                                + list(args))
        assert (result.stdout, result.stderr) == ("", ""), result
        return result.returncode

    def outcome(self, name="unblock.sh"):
        return self.install.log_lines()[-1].split("/%s: " % name, 1)[1]

    def hosts_deny(self):
        with open(self.deny) as f:
            return f.read()

    def ledger(self, program):
        from ossec_ar import ledger
        records, skipped = ledger.read(os.path.join(self.install.prefix, "var", "ossec-ar",
                                                    program + ".ledger"))
        assert skipped == []
        return [(r.op, r.address) for r in records]


@pytest.fixture
def agent(nft_netns, install, etc_copy):
    return Agent(install, nft_netns, etc_copy)


def test_unblock_lifts_every_block_and_the_later_deletes_find_nothing(agent):
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    agent.install.configure("[firewall-drop]\nbackend = iptables\n")   # an older ban too
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.2", "5712") == 0
    agent.install.configure("")
    assert agent.run("host-deny.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in agent.netns.rules()
    assert agent.run("unblock.sh", "add", "-", "192.0.2.7", *FROM_THE_SERVER[1:]) == 0
    lines = agent.install.log_lines()
    assert lines[-2].endswith("/unblock.sh add - 192.0.2.7 (from_the_server) (no_rule_id)")
    assert invocation(lines[-2]) == ("unblock.sh", "add", "192.0.2.7")
    # Both firewall blocks (the ledger knows them), and hosts.deny.
    assert agent.outcome() == (
        "add 192.0.2.7: unblocked: firewall-drop: unblocked: iptables: removed 1 from OSSEC; "
        "nftables table inet ossec, set v4; host-deny: unblocked: /etc/hosts.deny (exit 0)")
    assert "192.0.2.7" not in agent.netns.check(["nft", "list", "ruleset"])
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" not in agent.netns.rules()
    assert agent.hosts_deny() == "# admin\n"
    assert agent.ledger("firewall-drop")[-1] == ("delete", "192.0.2.7")
    assert agent.ledger("host-deny")[-1] == ("delete", "192.0.2.7")
    # The deletes execd still holds for the original blocks find nothing to do.
    assert agent.run("firewall-drop.sh", "delete", "-", "192.0.2.7", "1.1", "5712") == 0
    assert agent.outcome("firewall-drop.sh").startswith("delete 192.0.2.7: was not blocked: ")
    assert agent.run("host-deny.sh", "delete", "-", "192.0.2.7", "1.1", "5712") == 0
    assert agent.outcome("host-deny.sh") == \
        "delete 192.0.2.7: was not blocked: no block of ours in the ledger (exit 0)"
    # Nothing of the address left anywhere: unblock again changes nothing.
    assert agent.run("unblock.sh", "add", "-", "192.0.2.7", *FROM_THE_SERVER[1:]) == 0
    assert agent.outcome().startswith("add 192.0.2.7: was not blocked: firewall-drop: was not "
                                      "blocked: ")


def test_the_outcome_line_names_what_each_program_did(agent):
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert agent.run("unblock.sh", "add", "-", "192.0.2.7", *FROM_THE_SERVER[1:]) == 0
    assert agent.outcome() == (
        "add 192.0.2.7: unblocked: firewall-drop: unblocked: nftables table inet ossec, set v4;"
        " host-deny: was not blocked: no block of ours in the ledger (exit 0)")


def test_packets_flow_again_after_an_unblock(install):
    pair = Pair("nft")
    try:
        assert pair.server.run([install.program(), "add", "-", CLIENT_V4, "1.1",
                                "5712"]).returncode == 0
        assert not pair.connects(SERVER_V4)
        result = pair.server.run([install.program("unblock.sh"), "add", "-", CLIENT_V4,
                                  "(from_the_server)", "(no_rule_id)"])
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        assert pair.connects(SERVER_V4)
    finally:
        pair.close()


def test_the_allowlist_does_not_stop_an_unblock(agent):
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    agent.install.configure("[allowlist]\naddresses = 192.0.2.0/24\n")
    assert agent.run("unblock.sh", "add", "-", "192.0.2.7", *FROM_THE_SERVER[1:]) == 0
    assert agent.outcome().startswith("add 192.0.2.7: unblocked: ")


@pytest.mark.parametrize("args,code", [(h[0], h[1]) for h in HOSTILE],
                         ids=["hostile-%d" % i for i in range(len(HOSTILE))])
def test_hostile_input_is_refused_and_changes_nothing(agent, args, code):
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    before = agent.netns.check(["nft", "list", "ruleset"])
    assert agent.run("unblock.sh", *args) == code
    assert agent.netns.check(["nft", "list", "ruleset"]) == before
    assert agent.outcome().endswith("(exit %d)" % code)


def test_a_failed_unblock_says_so_and_exits_75(agent):
    from conftest import state_file
    from test_iptables import hold_lock, release
    assert agent.run("host-deny.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    agent.install.configure("[host-deny]\nlock_wait = 1\n")
    holder = hold_lock(state_file(agent.install.prefix, "host-deny.lock"))
    try:
        assert agent.run("unblock.sh", "add", "-", "192.0.2.7", *FROM_THE_SERVER[1:]) == 75
    finally:
        release(holder)
    assert agent.outcome() == (
        # No ledger record of a firewall block: no layout is asked.
        "add 192.0.2.7: failed: firewall-drop: was not blocked: no block of ours in the "
        "ledger; host-deny: failed: lock %s still held by another run after 1s (exit 75)"
        % state_file(agent.install.prefix, "host-deny.lock"))
    assert agent.hosts_deny() == "# admin\nALL:192.0.2.7\n"


@pytest.mark.parametrize("version,manager", [
    ("4", lambda: from_manager_4(alert(), name="unblock0")),
    ("5", lambda: from_manager_5(executable="unblock", kind="stateless", timeout=None)),
])
def test_wazuh_agents_run_it_in_both_request_shapes(agent, version, manager):
    assert agent.run("firewall-drop.sh", "add", "-", "192.0.2.7", "1.1", "5712") == 0
    execd = Execd(agent.install.prefix, version, wrap=agent.netns.prefix() + PRIVATE_ETC
                  + [agent.etc], ar_conf={"unblock0": ("unblock", 0)})
    run = execd.run(manager())
    assert (run.code, run.rest, run.stderr) == (0, b"", b"")
    assert json.loads(run.reply)["parameters"]["keys"] == ["192.0.2.7"]
    assert run.queued is None                       # no delete: nothing to undo
    assert "192.0.2.7" not in agent.netns.check(["nft", "list", "ruleset"])
    assert agent.outcome("unblock").startswith(      # Wazuh's name, without .sh
        "add 192.0.2.7: unblocked: firewall-drop: unblocked: nftables table inet ossec, "
        "set v4; host-deny: was not blocked: no block of ours in the ledger")
