"""ossec-ar fleet on a real OSSEC manager with two real agents
(tests/ossec_pair.py), each agent in its own network namespace, and a third
agent that the manager knows but that never connected.

Agent 1 blocks 192.0.2.21 on an sshd alert (rule 5716, both programs,
timing out after BLOCK_SECONDS); the manager's ``agent_control -b
192.0.2.22 -f firewall-drop0`` blocks 192.0.2.22 on both agents; with
firewall-drop's lock held on agent 2, ``agent_control -b 192.0.2.23``
fails there.  ``ossec-ar fleet`` on the manager must list exactly those
rows, read from the real alerts.log, each field checked against the alert
and the agent's outcome line.  ``ossec-ar fleet unblock 192.0.2.22
--everywhere --wait 60`` runs the real agent_control with the unblock
response; packets from 192.0.2.22 pass on both agents again and the rows
say lifted.  When execd's timeout lifts 192.0.2.21 on agent 1, its rows
say lifted too.  A "not ours, left" outcome line in agent 2's log (written
there as firewall-drop.sh writes it) raises 100615 on the real manager, and
fleet shows its row as not ours.

The text outputs are printed (``-s`` shows them) and, when
OSSEC_AR_FLEET_EXAMPLES names a file, written there: docs/manager.md
quotes them.
"""

import json
import os
import re
import time

import pytest

import ossec
import ossec_pair
from ossec import wait_for
from ossec_ar.cli import outcome_line
from ossec_ar.exits import NOT_OURS
from ossec_ar.fleet import UNBLOCK_SNIPPET
from ossec_ar.log import c_date
from test_ossec_pair import C_DATE, SSHD_FAILURE

BLOCK_SECONDS = 45
LOCK_WAIT = "[firewall-drop]\nlock_wait = 1\n"
ALERTED, CONTROLLED, FAILED, NEVER, WAKE, NOBODY = (
    "192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24", "192.0.2.25", "192.0.2.26")
LEFT = "192.0.2.27"
RESPONSE = "firewall-drop0"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("fleet")
    try:
        pair = ossec_pair.Pair(scratch, BLOCK_SECONDS, agents=2, absent=1,
                               attackers=(ALERTED, CONTROLLED, FAILED, NEVER, WAKE, NOBODY))
    except ossec.Missing as error:
        pytest.fail(str(error))
    try:
        pair.start()
        yield pair
    finally:
        left = pair.stop()
        assert left == [], "daemons killed after ossec-control stop: %s" % left


def example(title, command, result):
    """Print, and keep for the documentation, one real run's output."""
    text = "# %s\n$ %s\n%s%s(exit %d)\n\n" % (title, command, result.stdout, result.stderr,
                                              result.returncode)
    print(text)
    path = os.environ.get("OSSEC_AR_FLEET_EXAMPLES")
    if path:
        with open(path, "a") as f:
            f.write(text)


def fleet(pair, *args):
    """``ossec-ar fleet ...`` on the manager, as root there."""
    return pair.manager.run([pair.manager.prefix + "/bin/ossec-ar", "fleet"] + list(args),
                            netns=pair.manager_ns, timeout=180)


def rows(pair, *args):
    result = fleet(pair, "--json", *args)
    assert (result.returncode, result.stderr) == (0, ""), (result.stdout, result.stderr)
    return json.loads(result.stdout)["rows"]


def outcome(pair, agent, program, action, address, status, code=0):
    """The outcome line of a run on *agent*, waited for."""
    regex = re.compile(r"%s %s/active-response/bin/%s: %s %s: %s(: .*)? \(exit %d\)" % (
        C_DATE, re.escape(agent.install.prefix), re.escape(program), action,
        re.escape(address), status, code))
    return wait_for("%s's line %s" % (agent.name, regex.pattern),
                    lambda: [line for line in agent.install.ar_log() if regex.fullmatch(line)],
                    60, pair.context)[-1]


def our_alert(pair, agent, rule, address, program):
    """The manager's last alert *rule* for *address* from *agent*'s
    active-responses.log whose line is *program*'s."""
    location = "(%s) %s->%s/logs/active-responses.log" % (agent.name, agent.ip,
                                                         agent.install.prefix)
    return wait_for("alert %d for %s from %s" % (rule, address, agent.name),
                    lambda: [a for a in ossec.alerts(pair.manager)
                             if (a.rule, a.srcip) == (rule, address)
                             and a.location.endswith(" " + location)
                             and "/active-response/bin/%s: " % program in a.log],
                    60, pair.context)[-1]


def alert_id(alert):
    return re.match(r"^\*\* Alert ([0-9]+\.[0-9]+):", alert.text).group(1)


def control(pair, address, response, agent):
    result = pair.agent_control("-b", address, "-f", response, "-u", agent.id)
    assert result.returncode == 0, (result.stdout, result.stderr)


def test_blocks_on_two_agents_and_a_failure(pair):
    one, two = pair.agents
    assert [pair.agent_status(agent) for agent in pair.agents] == ["Active", "Active"]
    assert pair.agent_status(pair.absent[0]) == "Never connected"
    pair.sshd_failure(SSHD_FAILURE % ALERTED, agent=one)
    for program in ("firewall-drop.sh", "host-deny.sh"):
        outcome(pair, one, program, "add", ALERTED, "blocked")
    for agent in pair.agents:
        control(pair, CONTROLLED, RESPONSE, agent)
        outcome(pair, agent, "firewall-drop.sh", "add", CONTROLLED, "blocked")
    two.install.configure_ossec_ar(LOCK_WAIT)
    try:
        with ossec.held_lock(two.install.path("var", "ossec-ar", "firewall-drop.lock")):
            control(pair, FAILED, RESPONSE, two)
            outcome(pair, two, "firewall-drop.sh", "add", FAILED, "failed", 75)
    finally:
        os.unlink(two.install.path("etc", "ossec-ar.conf"))
    assert pair.connects_from(ALERTED, one) == "dropped"
    assert pair.connects_from(CONTROLLED, one) == "dropped"
    assert pair.connects_from(CONTROLLED, two) == "dropped"
    assert pair.connects_from(FAILED, two) == "open"


def expected_rows(pair):
    one, two = pair.agents
    return [(one, ALERTED, "firewall-drop.sh", "blocked", 100613),
            (one, ALERTED, "host-deny.sh", "blocked", 100613),
            (one, CONTROLLED, "firewall-drop.sh", "blocked", 100613),
            (two, CONTROLLED, "firewall-drop.sh", "blocked", 100613),
            (two, FAILED, "firewall-drop.sh", "failed", 100611)]


def test_fleet_lists_exactly_those_rows_field_by_field(pair):
    wanted = expected_rows(pair)
    alerts = [our_alert(pair, agent, rule, address, program)
              for agent, address, program, _, rule in wanted]
    found = rows(pair)
    assert len(found) == len(wanted), found
    for row, (agent, address, program, state, rule), alert in zip(found, wanted, alerts):
        detail = alert.log.split(": %s: " % ("blocked" if state == "blocked" else "failed"),
                                 1)[1]
        assert row == {
            "agent_id": agent.id, "agent": agent.name, "agent_ip": agent.ip,
            "address": address, "program": program,
            "backend": detail.split(" ", 1)[0].rstrip(",;:") if state == "blocked" else "-",
            "prefix": None, "state": state, "outcome": state, "by": program,
            "since": int(alert_id(alert).split(".")[0]),
            "since_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
                int(alert_id(alert).split(".")[0]))),
            "rule": rule, "alert": alert_id(alert), "exit": 0 if state == "blocked" else 75,
            "detail": re.sub(r" \(exit [0-9]+\)$", "", detail)}, (row, alert.text)
    assert found[0]["backend"] in ("nftables", "iptables", "ipset")
    assert found[1]["backend"] == "/etc/hosts.deny"
    assert found[4]["detail"].startswith("lock %s/var/ossec-ar/firewall-drop.lock still held"
                                         % pair.agents[1].install.prefix)

    text = fleet(pair)
    example("what is blocked where", "ossec-ar fleet", text)
    assert (text.returncode, text.stderr) == (0, "")
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["AGENT", "NAME", "ADDRESS", "PROGRAM", "BACKEND", "STATE",
                                "SINCE", "RULE", "ALERT"]
    assert [line.split() for line in lines[1:]] == [
        [r["agent_id"], r["agent"], r["address"], r["program"], r["backend"], r["state"]]
        + r["since_text"].split() + [str(r["rule"]), r["alert"]] for r in found]
    assert [r["address"] for r in rows(pair, "--agent", "agent2")] == [CONTROLLED, FAILED]
    assert [r["agent"] for r in rows(pair, "--address", CONTROLLED)] == ["agent1", "agent2"]


def test_fleet_unblock_everywhere_lifts_it_on_both_agents(pair):
    command = ["unblock", CONTROLLED, "--everywhere", "--wait", "60"]
    result = fleet(pair, *command)
    example("lift it everywhere", "ossec-ar fleet " + " ".join(command), result)
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "unblock %s through unblock0:" % CONTROLLED
    assert lines[1].split() == ["AGENT", "NAME", "RESULT", "SECONDS"]
    assert [line.split()[:3] for line in lines[2:]] == [
        [agent.id, agent.name, "unblocked"] for agent in pair.agents]
    assert all(0 < float(line.split()[3]) < 60 for line in lines[2:])
    for agent in pair.agents:
        lifted = outcome(pair, agent, "unblock.sh", "add", CONTROLLED, "unblocked")
        assert ": unblocked: firewall-drop: unblocked: " in lifted, lifted
        assert pair.connects_from(CONTROLLED, agent) == "open"
    every = rows(pair, "--all", "--address", CONTROLLED)
    assert [(r["agent"], r["program"], r["state"], r["by"], r["outcome"], r["rule"])
            for r in every] == [
        (agent.name, "firewall-drop.sh", "lifted", "unblock.sh", "unblocked", 100614)
        for agent in pair.agents]
    assert CONTROLLED not in [r["address"] for r in rows(pair)]
    # The manager's own log says what was asked and what came of it.
    logged = pair.manager.ar_log()[-1]
    assert re.fullmatch(r"%s %s/bin/ossec-ar: delete %s: unblocked: %s agent1: unblocked; "
                        r"%s agent2: unblocked \(exit 0\)" % (
                            C_DATE, re.escape(pair.manager.prefix), re.escape(CONTROLLED),
                            pair.agents[0].id, pair.agents[1].id), logged), logged


def test_an_agent_that_is_not_connected_is_reported_not_waited_for(pair):
    never = pair.absent[0]
    command = ["unblock", NEVER, "--agent", never.name, "--agent", pair.agents[0].id,
               "--wait", "30"]
    started = time.monotonic()
    result = fleet(pair, *command)
    example("an agent that is not connected", "ossec-ar fleet " + " ".join(command), result)
    assert result.returncode == 75, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[2].split()[:3] == [never.id, never.name, "disconnected:"]
    assert "agent_control -l says Never connected; not sent" in lines[2]
    # agent 1 answers (it never blocked NEVER): the wait ends with it.
    assert lines[3].split(None, 2)[:2] == [pair.agents[0].id, pair.agents[0].name]
    assert lines[3].split(None, 2)[2].startswith("was not blocked "), lines[3]
    assert time.monotonic() - started < 30
    document = json.loads(fleet(pair, "--json", *command).stdout)
    assert document["agents"][0] == {"agent_id": never.id, "agent": never.name,
                                     "result": "disconnected", "seconds": None,
                                     "alert": None, "detail": "agent_control -l says Never "
                                     "connected; not sent"}
    assert document["exit"] == 75


def test_an_address_that_no_agent_blocks(pair):
    result = fleet(pair, "unblock", NOBODY, "--everywhere")
    example("an address that no agent blocks", "ossec-ar fleet unblock %s --everywhere"
            % NOBODY, result)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("no agent blocks %s (since " % NOBODY)


def test_a_block_left_as_not_ours_raises_100615_and_fleet_says_not_ours(pair):
    """The line a delete writes when it leaves a block someone else made,
    appended to agent 2's log as firewall-drop.sh appends its lines: the
    agent sends it, the real analysisd raises 100615 with its group, and
    fleet reads the row from the real alerts.log."""
    two = pair.agents[1]
    detail = "iptables chain OSSEC: blocked by someone else, left in place"
    line = "%s %s" % (c_date(), outcome_line(
        two.install.prefix + "/active-response/bin/firewall-drop.sh", "delete", LEFT,
        NOT_OURS, detail, 0))
    with open(two.install.path("logs", "active-responses.log"), "a") as f:
        f.write(line + "\n")
    alert = our_alert(pair, two, 100615, LEFT, "firewall-drop.sh")
    assert "ossec-ar" in alert.text.split("\n", 1)[0] and \
        "active_response_left" in alert.text.split("\n", 1)[0], alert.text
    every = rows(pair, "--all", "--address", LEFT)
    assert [(r["agent"], r["program"], r["state"], r["outcome"], r["rule"], r["detail"],
             r["alert"]) for r in every] == [
        (two.name, "firewall-drop.sh", "not ours", "not ours, left", 100615, detail,
         alert_id(alert))]
    # Not a block of ours: not shown by default, and no agent to send to.
    assert LEFT not in [r["address"] for r in rows(pair)]
    result = fleet(pair, "unblock", LEFT, "--everywhere")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("no agent blocks %s (since " % LEFT)


def test_after_the_timeout_the_alerted_rows_are_lifted(pair):
    one = pair.agents[0]
    blocked = our_alert(pair, one, 100613, ALERTED, "firewall-drop.sh")
    since = int(alert_id(blocked).split(".")[0])
    # execd lifts after the timeout when it next wakes: a new alert.
    time.sleep(max(0.0, since + BLOCK_SECONDS + 3 - time.time()))
    pair.sshd_failure(SSHD_FAILURE % WAKE, agent=one)
    for program in ("firewall-drop.sh", "host-deny.sh"):
        outcome(pair, one, program, "delete", ALERTED, "unblocked")
        our_alert(pair, one, 100614, ALERTED, program)
    assert pair.connects_from(ALERTED, one) == "open"
    every = rows(pair, "--all", "--address", ALERTED)
    assert [(r["agent"], r["program"], r["state"], r["outcome"], r["rule"]) for r in every] \
        == [(one.name, program, "lifted", "unblocked", 100614)
            for program in ("firewall-drop.sh", "host-deny.sh")]
    shown = rows(pair)
    assert ALERTED not in [r["address"] for r in shown]
    assert [(r["address"], r["state"]) for r in shown if r["agent"] == one.name] == [
        (WAKE, "blocked"), (WAKE, "blocked")]
    example("after the timeout", "ossec-ar fleet --all", fleet(pair, "--all"))


def test_no_unblock_response_configured(pair):
    """The manager restarted without the unblock response: exit 78 and
    the blocks to add, which the real analysisd then accepts."""
    conf = pair.manager.path("etc", "ossec.conf")
    original = ossec.read(conf)
    without = re.sub(r"\s*<command>\s*<name>unblock</name>.*?</command>", "", original,
                     flags=re.S)
    without = re.sub(r"\s*<active-response>\s*<command>unblock</command>.*?"
                     r"</active-response>", "", without, flags=re.S)
    assert "<name>unblock</name>" not in without
    assert "<command>unblock</command>" not in without
    with open(conf, "w") as f:
        f.write(without)
    code, out = pair.manager.control("restart", pair.manager_ns)
    assert code == 0, out
    listed = pair.agent_control("-L").stdout
    assert "command: unblock.sh" not in listed and "firewall-drop0" in listed
    result = fleet(pair, "unblock", ALERTED, "--everywhere")
    example("no unblock response", "ossec-ar fleet unblock %s --everywhere" % ALERTED, result)
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr.endswith(":\n%s (exit 78)\n" % UNBLOCK_SNIPPET), result.stderr
    # The snippet as given makes the response agent_control lists.
    with open(conf, "w") as f:
        f.write(without.replace("</ossec_config>", UNBLOCK_SNIPPET + "\n</ossec_config>"))
    checked = pair.manager.run([pair.manager.prefix + "/bin/ossec-analysisd", "-t"])
    assert checked.returncode == 0, checked.stderr
    code, out = pair.manager.control("restart", pair.manager_ns)
    assert code == 0, out
    assert "Response name: unblock0, command: unblock.sh" in [
        line.strip() for line in pair.agent_control("-L").stdout.splitlines()]
