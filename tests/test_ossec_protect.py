"""The manager protection (lib/ossec_ar/protect.py) with the real OSSEC
manager and agent of tests/ossec_pair.py: the manager's ``agent_control -b``
of its own address reaches the agent's execd, and our firewall-drop.sh there
refuses it (exit 65), whether the agent's ossec.conf gives the manager as an
address, as a name that /etc/hosts holds, or as a name that resolves
nowhere any more (then the agent daemon's connected socket is what covers
it).  The refusal is checked where it shows: the agent's
active-responses.log, the firewall and the packets of the agent's network
namespace, and rule 100612 in the manager's alerts.log; ``ossec-ar status``
on the agent lists the manager with the same reason.  Every case ends by
showing that the agent still reports to the manager and still takes its
responses (``agent_control -l`` alone proves little: it says Active as long
as the last keepalive is recent, agent gone or not).

How OSSEC 7f06fe0 finds the manager by name (read in its source):
``<server-hostname>`` is resolved by ossec-agentd with getaddrinfo(3) each
time it connects, and it connects after chroot(2) into its prefix
(client-agent/agentd.c, start_agent.c; os_net/os_net.c): the ``/etc/hosts``
it reads then is ``<prefix>/etc/hosts``, and its DNS is
``<prefix>/etc/resolv.conf`` (which OSSEC's make install copies there), not
the host's.  Measured: with the name in the agent's /etc/hosts alone,
agentd logs "getaddrinfo: Temporary failure in name resolution" and never
connects.  So the name is put in both here, /etc/hosts for ossec-ar and
``<prefix>/etc/hosts`` for the agent daemon.  Both are the agent's own: its
/etc is the copy that tests/ossec.py binds over /etc in the agent's mount
namespaces, never the machine's.  The name ends in ``.invalid``, which no
DNS resolves (RFC 6761), and the agent's network namespace reaches no
resolver anyway.

The manager's response for ``agent_control -b`` here is firewall-drop0
(no timeout): execd keeps no timeout entry for it, so it runs every request
for the manager's address, however many came before, and a block made
through it is lifted by the test, never by execd.
"""

import json
import os
import re

import pytest

import ossec
import ossec_pair
from ossec import read, wait_for
from test_ossec_pair import C_DATE, SSHD_FAILURE, agent_location

RESPONSE = "firewall-drop0"
MANAGER = ossec_pair.MANAGER_IP
# Names of the manager that no DNS resolves (RFC 6761's .invalid).
NAME = "ossec-manager.invalid"
# Unrelated addresses, one per use, each also the manager's (a /32) so that a
# connect from it shows whether the agent drops it.
UNRELATED = "192.0.2.40"
AFTER_ADDRESS, AFTER_NAME, AFTER_SOCKET, AFTER_UNPROTECTED = (
    "192.0.2.41", "192.0.2.42", "192.0.2.43", "192.0.2.44")
REFUSED = "the manager this agent reports to"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("pair")
    try:
        pair = ossec_pair.Pair(scratch, 3, attackers=(
            UNRELATED, AFTER_ADDRESS, AFTER_NAME, AFTER_SOCKET, AFTER_UNPROTECTED))
    except ossec.Missing as error:
        pytest.fail(str(error))
    try:
        pair.start()
        yield pair
    finally:
        left = pair.stop()
        assert left == [], "daemons killed after ossec-control stop: %s" % left


@pytest.fixture
def named_manager(pair):
    """The agent restarted with ``<server-hostname>`` NAME in its ossec.conf,
    the name in its /etc/hosts (ossec-ar's) and in ``<prefix>/etc/hosts``
    (the chrooted agent daemon's).  Yields the paths of both files and
    the first one's original bytes.  All is put back afterwards, and the
    agent restarted with ``<server-ip>``."""
    hosts = os.path.join(pair.agent.etc, "hosts")
    chroot_hosts = pair.agent.path("etc", "hosts")
    assert not os.path.lexists(chroot_hosts)
    with open(hosts, "rb") as f:
        original = f.read()
    line = ("%s %s\n" % (MANAGER, NAME)).encode()
    try:
        with open(hosts, "wb") as f:
            f.write(original + (b"\n" if original and not original.endswith(b"\n") else b"")
                    + line)
        with open(chroot_hosts, "wb") as f:
            f.write(line)
        os.chmod(chroot_hosts, 0o644)
        pair.configure_agent("<server-hostname>%s</server-hostname>" % NAME)
        pair.restart_agent(NAME)
        yield hosts, chroot_hosts, original
    finally:
        with open(hosts, "wb") as f:
            f.write(original)
        if os.path.lexists(chroot_hosts):
            os.unlink(chroot_hosts)
        pair.configure_agent()
        pair.restart_agent(MANAGER)


# what the agent and the manager say

def agent_lines(pair, pattern, seen):
    """The lines of the agent's active-responses.log after its first *seen*
    lines that match *pattern* in full, waited for."""
    regex = re.compile(pattern)
    return wait_for("line %r in the agent's active-responses.log" % pattern,
                    lambda: [line for line in pair.agent.ar_log()[seen:]
                             if regex.fullmatch(line)], 60, pair.context)


def outcome(pair, action, address, rest, seen):
    """The outcome line of firewall-drop.sh for *action* on *address* after
    the first *seen* lines of the agent's log: the run has ended.  *rest* is
    a regular expression for what follows the address."""
    (line,) = agent_lines(pair, r"%s %s/active-response/bin/firewall-drop\.sh: %s %s: %s" % (
        C_DATE, re.escape(pair.agent.prefix), action, re.escape(address), rest), seen)
    return line


def new_alerts(pair, rule, srcip, seen):
    """The manager's alerts *rule* for *srcip* after its first *seen*
    alerts, waited for."""
    return wait_for("alert %d for %s" % (rule, srcip),
                    lambda: [a for a in ossec.alerts(pair.manager)[seen:]
                             if (a.rule, a.srcip) == (rule, srcip)], 60, pair.context)


def firewall_blocks(pair, address):
    """The rules of the agent's network namespace that name *address*, as
    ``iptables -S`` and ``nft list ruleset`` print them."""
    word = re.compile(r"(?<![0-9.])%s(?![0-9]|\.[0-9])" % re.escape(address))
    lines = pair.agent_ns.rules() + pair.agent_ns.check(["nft", "list", "ruleset"]).splitlines()
    return [line for line in lines if word.search(line)]


def request(pair, address):
    """``agent_control -b`` *address* with our response, on our agent."""
    result = pair.agent_control("-b", address, "-f", RESPONSE, "-u", pair.agent_id)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Running active response '%s' on: %s" % (RESPONSE, pair.agent_id) in result.stdout
    return result


def refused_by_the_agent(pair, because):
    """``agent_control -b`` of the manager's own address: the agent's execd
    runs firewall-drop.sh, which refuses it *because* (its outcome line says
    so, exit 65), blocks nothing, and the manager raises 100612 for the
    line.  Returns that alert."""
    lines, alerts = len(pair.agent.ar_log()), len(ossec.alerts(pair.manager))
    request(pair, MANAGER)
    agent_lines(pair, r"%s %s/active-response/bin/firewall-drop\.sh add - %s "
                      r"\(from_the_server\) \(no_rule_id\)"
                % (C_DATE, re.escape(pair.agent.prefix), re.escape(MANAGER)), lines)
    line = outcome(pair, "add", MANAGER, r".*", lines)
    try:
        assert re.fullmatch(r".*: refused: %s \(%s\) \(protect = manager\) \(exit 65\)"
                            % (re.escape(REFUSED), re.escape(because)), line), line
        assert firewall_blocks(pair, MANAGER) == []
    except AssertionError:
        lift(pair, MANAGER)         # the next tests need the agent reachable
        raise
    assert pair.connects_from(MANAGER) == "open"
    (refused,) = new_alerts(pair, 100612, MANAGER, alerts)
    assert refused.level == 5
    assert refused.location.endswith(" " + agent_location(pair)), refused.text
    assert refused.log == line, refused.text
    return refused


def protected_as_manager(pair):
    """What ``ossec-ar status`` on the agent lists under the manager
    protection: {address: reason}."""
    result = pair.agent.run([pair.agent.prefix + "/bin/ossec-ar", "status", "--json"],
                            netns=pair.agent_ns)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return {item["address"]: item["reason"]
            for item in json.loads(result.stdout)["protected"]["addresses"]
            if item["protection"] == "manager"}


def lift(pair, address):
    """Run the agent's firewall-drop.sh delete of *address* in the agent's
    namespaces, as its execd would: a block of the manager's address stops
    the manager's requests from reaching the agent."""
    lifted = pair.agent.run([pair.agent.prefix + "/active-response/bin/firewall-drop.sh",
                             "delete", "-", address], netns=pair.agent_ns)
    assert lifted.returncode == 0, (lifted.stdout, lifted.stderr)


def still_reporting(pair, address):
    """The agent is Active, and the whole loop still runs: an sshd failure
    from *address* read on the agent raises 5716 on the manager, whose
    response blocks *address* on the agent, whose line raises 601."""
    assert pair.agent_status() == "Active"
    lines, alerts = len(pair.agent.ar_log()), len(ossec.alerts(pair.manager))
    pair.sshd_failure(SSHD_FAILURE % address)
    for rule in (5716, 601):
        (raised,) = new_alerts(pair, rule, address, alerts)
        assert raised.location.endswith(agent_location(pair) if rule == 601 else
                                        "->" + pair.auth), raised.text
    outcome(pair, "add", address, r"blocked(: .*)? \(exit 0\)", lines)
    assert pair.connects_from(address) == "dropped"


# the cases

def test_the_manager_given_as_server_ip_is_refused(pair):
    conf = read(pair.agent.path("etc", "ossec.conf"))
    assert "<server-ip>%s</server-ip>" % MANAGER in conf and "<server-hostname>" not in conf
    where = "<server-ip> in %s/etc/ossec.conf" % pair.agent.prefix
    refused_by_the_agent(pair, where)
    assert protected_as_manager(pair) == {MANAGER: "manager (%s)" % where}
    still_reporting(pair, AFTER_ADDRESS)


def test_an_unrelated_address_is_still_blocked(pair):
    lines = len(pair.agent.ar_log())
    request(pair, UNRELATED)
    outcome(pair, "add", UNRELATED, r"blocked(: .*)? \(exit 0\)", lines)
    assert firewall_blocks(pair, UNRELATED) != []
    assert pair.connects_from(UNRELATED) == "dropped"


def test_with_protect_none_the_manager_is_blocked(pair):
    lines = len(pair.agent.ar_log())
    pair.agent.configure_ossec_ar("[allowlist]\nprotect = none\n")
    try:
        request(pair, MANAGER)
        outcome(pair, "add", MANAGER, r"blocked(: .*)? \(exit 0\)", lines)
        assert firewall_blocks(pair, MANAGER) != []
        assert pair.connects_from(MANAGER) == "dropped"
    finally:
        os.unlink(pair.agent.path("etc", "ossec-ar.conf"))
        lift(pair, MANAGER)
    outcome(pair, "delete", MANAGER, r"unblocked(: .*)? \(exit 0\)", lines)
    assert firewall_blocks(pair, MANAGER) == []
    assert pair.connects_from(MANAGER) == "open"
    still_reporting(pair, AFTER_UNPROTECTED)


def test_the_manager_given_by_a_name_in_etc_hosts_is_refused(pair, named_manager):
    assert "<server-hostname>%s</server-hostname>" % NAME in read(
        pair.agent.path("etc", "ossec.conf"))
    where = "<server-hostname> %s, in /etc/hosts" % NAME
    refused_by_the_agent(pair, where)
    assert protected_as_manager(pair) == {MANAGER: "manager (%s)" % where}
    still_reporting(pair, AFTER_NAME)


def test_the_manager_by_a_name_that_resolves_nowhere_is_covered_by_the_agents_socket(
        pair, named_manager):
    # The agent connected through the name; now no file holds it and no DNS
    # answers for it, in the agent's namespaces as in ossec-ar's.
    hosts, chroot_hosts, original = named_manager
    with open(hosts, "wb") as f:
        f.write(original)
    os.unlink(chroot_hosts)
    looked_up = pair.agent.run(["getent", "ahosts", NAME], netns=pair.agent_ns)
    assert looked_up.returncode == 2, (looked_up.stdout, looked_up.stderr)
    refused_by_the_agent(pair, "the agent daemon is connected to it")
    assert protected_as_manager(pair) == {
        MANAGER: "manager (the agent daemon's connection to port 1514)"}
    still_reporting(pair, AFTER_SOCKET)
