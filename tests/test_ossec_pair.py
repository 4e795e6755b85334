"""A real OSSEC manager and a real OSSEC agent (built from the vendored
source, tests/ossec_pair.py), each in its own network namespace: responses
that the manager decides run our programs on the agent, block the address
in the agent's namespace (checked with packets), and come back to the
manager as alerts read from the agent's forwarded active-responses.log.

Why agent_control needs a manager and an agent (measured on 7f06fe0, and
read in its source):
- On a local install (TARGET=local), ``agent_control -b`` fails, daemons
  running or not: it writes to the queue /queue/alerts/ar, which only
  remoted creates (remoted/ar-forward.c); a local install has no remoted.
  It exits 1 with "agent_control(1210): ERROR: Queue '/queue/alerts/ar' not
  accessible: 'Queue not found'." and "** Unable to connect to remoted.".
- On a manager, ``-u 000`` (the manager itself) never reaches the manager's
  own execd: remoted looks 000 up in client.keys, logs "Agent '000' not
  found" and drops the request (test below).
- agent_control always sends ``add``, with ``- <ip> (from_the_server)
  (no_rule_id)`` as $2 to $5 (shared/read-agents.c, send_msg_to_agent).
- An ``<active-response>`` with ``<rules_id>999999</rules_id>`` (a rule that
  does not exist) is accepted by analysisd, never fires, and is written to
  ar.conf as ``<command><timeout>`` (firewall-drop600, unblock0), the name
  that ``agent_control -L`` lists and ``-f`` takes.

The module shares one pair (start-up and connection take about 12 s).  Each
test blocks addresses of its own: execd skips an add while a block of the
same program for the same address is pending, whatever the response's name.
"""

import os
import re
import time

import pytest

import ossec
import ossec_pair
from ossec import read, wait_for

BLOCK_SECONDS = 3
LOCK_WAIT = "[firewall-drop]\nlock_wait = 1\n"
SSHD_FAILURE = "Jan 19 13:52:29 web1 sshd[4242]: Failed password for root from %s port 51234 ssh2"
# Addresses the tests block on the agent; each is also the manager's (a /32)
# so that a connect from it shows whether the agent drops it.
ALERTED, ALERTED_NEXT, FAILED, CONTROLLED = "192.0.2.20", "192.0.2.21", "192.0.2.30", "192.0.2.7"
C_DATE = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [A-Za-z]+ [0-9]{4}"

# execd reads ar.conf only when asked for a response name it does not know,
# and from then on skips, without a word, every response whose program was
# missing at that reading (os_execd/exec.c, ReadExecConfig; execd.c,
# ExecdStart): unblock.sh must be installed before the daemons start.
UNBLOCKED = "192.0.2.22"        # blocked by an alert, lifted by unblock0
UNBLOCKED_NEXT = "192.0.2.23"   # only wakes execd after that
CONTROLLED_LIFTED = "192.0.2.24"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("pair")
    try:
        pair = ossec_pair.Pair(scratch, BLOCK_SECONDS,
                               attackers=(ALERTED, ALERTED_NEXT, FAILED, CONTROLLED,
                                          UNBLOCKED, UNBLOCKED_NEXT, CONTROLLED_LIFTED))
    except ossec.Missing as error:
        pytest.fail(str(error))
    unblock = pair.agent.path("active-response", "bin", "unblock.sh")
    assert os.path.realpath(unblock).endswith("/ossec-ar-unblock"), unblock
    try:
        pair.start()
        yield pair
    finally:
        left = pair.stop()
        assert left == [], "daemons killed after ossec-control stop: %s" % left


def alert(pair, rule, srcip):
    """The manager's first alert *rule* for *srcip*, waited for."""
    return wait_for("alert %d for %s" % (rule, srcip),
                    lambda: [a for a in ossec.alerts(pair.manager)
                             if (a.rule, a.srcip) == (rule, srcip)],
                    60, pair.context)[0]


def agent_line(pair, pattern):
    """The first line of the agent's active-responses.log that matches
    *pattern* in full, waited for."""
    regex = re.compile(pattern)
    return wait_for("line %r in the agent's active-responses.log" % pattern,
                    lambda: [line for line in pair.agent.ar_log() if regex.fullmatch(line)],
                    60, pair.context)[0]


def outcome(pair, program, action, address, status):
    """Wait for the outcome line of a run on the agent: the run has ended."""
    return agent_line(pair, r"%s %s/active-response/bin/%s: %s %s: %s(: .*)? \(exit 0\)" % (
        C_DATE, re.escape(pair.agent.prefix), re.escape(program), action,
        re.escape(address), status))


def agent_location(pair):
    """Where the manager's alerts say an event of the agent's
    active-responses.log came from."""
    return "(%s) %s->%s/logs/active-responses.log" % (
        ossec_pair.AGENT_NAME, ossec_pair.AGENT_IP, pair.agent.prefix)


def hosts_deny(pair):
    return read(os.path.join(pair.agent.etc, "hosts.deny")).splitlines()


def test_the_agent_is_connected(pair):
    assert pair.agent_status() == "Active"
    assert ("Connected to server %s, port 1514." % ossec_pair.MANAGER_IP
            in read(pair.agent.path("logs", "ossec.log")))


def test_a_failed_response_on_the_agent_raises_ours_on_the_manager(pair):
    # Our lock held on the agent: firewall-drop.sh gives up after 1 s, and
    # the manager reads its outcome line, forwarded by the agent, with our
    # decoders and rules (100611).  Any other delete that falls due while
    # the lock is held fails too: this test comes first, when no block of
    # another test is pending, and looks only at its own address.
    pair.agent.configure_ossec_ar(LOCK_WAIT)
    try:
        with ossec.held_lock(pair.agent.path("var", "ossec-ar", "firewall-drop.lock")):
            pair.sshd_failure(SSHD_FAILURE % FAILED)
            failed = alert(pair, 100611, FAILED)
    finally:
        os.unlink(pair.agent.path("etc", "ossec-ar.conf"))
    assert failed.level == 10
    assert failed.location.endswith(" " + agent_location(pair)), failed.text
    assert failed.log.endswith(
        " %(p)s/active-response/bin/firewall-drop.sh: add %(a)s: failed: lock "
        "%(p)s/var/ossec-ar/firewall-drop.lock still held by another run after 1s (exit 75)"
        % {"p": pair.agent.prefix, "a": FAILED}), failed.text
    assert pair.connects_from(FAILED) == "open"
    # host-deny.sh has a lock of its own.
    alert(pair, 603, FAILED)
    outcome(pair, "host-deny.sh", "add", FAILED, "blocked")


def test_an_alert_on_the_agent_blocks_there_and_the_timeout_lifts_it(pair):
    assert pair.connects_from(ALERTED) == "open"
    # An sshd failure read on the agent: the manager's rule 5716 sends both
    # responses to that agent, whose execd runs our programs; the agent
    # forwards their invocation lines and the manager raises 601 and 603.
    pair.sshd_failure(SSHD_FAILURE % ALERTED)
    blocked = alert(pair, 601, ALERTED)
    location = agent_location(pair)
    assert blocked.location.endswith(" " + location), blocked.text
    assert re.fullmatch(r"%s %s/active-response/bin/firewall-drop\.sh add - %s [0-9]+\.[0-9]+ "
                        r"5716" % (C_DATE, re.escape(pair.agent.prefix), re.escape(ALERTED)),
                        blocked.log), blocked.text
    assert alert(pair, 603, ALERTED).location.endswith(" " + location)
    outcome(pair, "firewall-drop.sh", "add", ALERTED, "blocked")
    outcome(pair, "host-deny.sh", "add", ALERTED, "blocked")
    seen = time.monotonic()
    assert pair.connects_from(ALERTED) == "dropped"
    assert "ALL:" + ALERTED in hosts_deny(pair)

    # execd lifts a block when it wakes after the timeout: for its next
    # request, or after 90 s of quiet (os_execd/execd.c, EXECD_TIMEOUT).  Its
    # clock counts whole seconds and the block must be older than the
    # timeout: 2 s more, then the next failure wakes it.
    time.sleep(max(0.0, seen + BLOCK_SECONDS + 2 - time.monotonic()))
    pair.sshd_failure(SSHD_FAILURE % ALERTED_NEXT)
    assert alert(pair, 602, ALERTED).location.endswith(" " + location)
    assert alert(pair, 604, ALERTED).location.endswith(" " + location)
    outcome(pair, "firewall-drop.sh", "delete", ALERTED, "unblocked")
    outcome(pair, "host-deny.sh", "delete", ALERTED, "unblocked")
    assert pair.connects_from(ALERTED) == "open"
    assert "ALL:" + ALERTED not in hosts_deny(pair)
    alert(pair, 601, ALERTED_NEXT)


def test_agent_control_runs_our_firewall_drop_on_the_agent(pair):
    result = pair.agent_control("-b", CONTROLLED, "-f", "firewall-drop600", "-u", pair.agent_id)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert ("Running active response 'firewall-drop600' on: %s" % pair.agent_id
            in result.stdout)
    agent_line(pair, r"%s %s/active-response/bin/firewall-drop\.sh add - %s "
                     r"\(from_the_server\) \(no_rule_id\)"
               % (C_DATE, re.escape(pair.agent.prefix), re.escape(CONTROLLED)))
    outcome(pair, "firewall-drop.sh", "add", CONTROLLED, "blocked")
    assert pair.connects_from(CONTROLLED) == "dropped"


def test_agent_control_never_reaches_the_managers_own_execd(pair):
    result = pair.agent_control("-b", CONTROLLED, "-f", "firewall-drop600", "-u", "000")
    # agent_control only hands the request to remoted, and says it ran.
    assert result.returncode == 0, (result.stdout, result.stderr)
    wait_for("remoted dropping the request for 000",
             lambda: "ossec-remoted(1320): ERROR: Agent '000' not found." in read(
                 pair.manager.path("logs", "ossec.log")), 60, pair.context)
    # Our programs are installed on the manager too; its execd never ran one.
    assert read(pair.manager.path("logs", "active-responses.log")) == ""


def test_unblock_response_is_listed_and_lifts_on_the_agent(pair):
    # The definition the README gives: accepted by the real analysisd...
    checked = pair.manager.run([pair.manager.prefix + "/bin/ossec-analysisd", "-t"])
    assert checked.returncode == 0, checked.stderr
    # ...and listed under the name agent_control -f takes.
    listing = pair.agent_control("-L")
    assert listing.returncode == 0, listing.stderr
    listed = [line.strip() for line in listing.stdout.splitlines()]
    assert "Response name: unblock0, command: unblock.sh" in listed, listing.stdout

    # A block by an alert, both programs.
    assert pair.connects_from(UNBLOCKED) == "open"
    pair.sshd_failure(SSHD_FAILURE % UNBLOCKED)
    outcome(pair, "firewall-drop.sh", "add", UNBLOCKED, "blocked")
    outcome(pair, "host-deny.sh", "add", UNBLOCKED, "blocked")
    assert pair.connects_from(UNBLOCKED) == "dropped"
    assert "ALL:" + UNBLOCKED in hosts_deny(pair)

    # The manager lifts it at once, through the agent's execd.
    result = pair.agent_control("-b", UNBLOCKED, "-f", "unblock0", "-u", pair.agent_id)
    assert result.returncode == 0, (result.stdout, result.stderr)
    agent_line(pair, r"%s %s/active-response/bin/unblock\.sh add - %s "
                     r"\(from_the_server\) \(no_rule_id\)"
               % (C_DATE, re.escape(pair.agent.prefix), re.escape(UNBLOCKED)))
    lifted = outcome(pair, "unblock.sh", "add", UNBLOCKED, "unblocked")
    assert re.search(r": unblocked: firewall-drop: unblocked: .*; host-deny: unblocked: ",
                     lifted), lifted
    lifted_at = time.monotonic()
    assert pair.connects_from(UNBLOCKED) == "open"
    assert "ALL:" + UNBLOCKED not in hosts_deny(pair)

    # execd's own delete comes later and finds nothing left to do.
    time.sleep(max(0.0, lifted_at + BLOCK_SECONDS + 2 - time.monotonic()))
    pair.sshd_failure(SSHD_FAILURE % UNBLOCKED_NEXT)
    outcome(pair, "firewall-drop.sh", "delete", UNBLOCKED, "was not blocked")
    outcome(pair, "host-deny.sh", "delete", UNBLOCKED, "was not blocked")
    assert pair.connects_from(UNBLOCKED) == "open"
    outcome(pair, "firewall-drop.sh", "add", UNBLOCKED_NEXT, "blocked")


def test_unblock_lifts_what_agent_control_blocked(pair):
    blocked = pair.agent_control("-b", CONTROLLED_LIFTED, "-f", "firewall-drop600",
                                 "-u", pair.agent_id)
    assert blocked.returncode == 0, (blocked.stdout, blocked.stderr)
    outcome(pair, "firewall-drop.sh", "add", CONTROLLED_LIFTED, "blocked")
    assert pair.connects_from(CONTROLLED_LIFTED) == "dropped"
    result = pair.agent_control("-b", CONTROLLED_LIFTED, "-f", "unblock0", "-u", pair.agent_id)
    assert result.returncode == 0, (result.stdout, result.stderr)
    lifted = outcome(pair, "unblock.sh", "add", CONTROLLED_LIFTED, "unblocked")
    assert "; host-deny: was not blocked: " in lifted, lifted
    assert pair.connects_from(CONTROLLED_LIFTED) == "open"
