"""execd starts one process per alert, and every pending delete at once when
it stops: 250 concurrent adds, then 201 concurrent deletes, real processes."""

import collections
import json
import sys

import pytest

from conftest import invocation


@pytest.fixture
def install(iptables_install):
    """These tests read the iptables layout, so they choose it: ``auto``
    takes a set layout wherever nft or ipset is installed."""
    return iptables_install


DISTINCT = ["198.51.100.%d" % i for i in range(1, 101)] + [
    "203.0.113.%d" % i for i in range(1, 101)]
SHARED = "192.0.2.7"

# Runs inside the namespace: start every process before waiting for any.
BURST = """
import json, subprocess, sys
program, action = sys.argv[1], sys.argv[2]
procs = [subprocess.Popen([program, action, "-", ip, "1.%d" % n, "5712"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
         for n, ip in enumerate(sys.argv[3:])]
print(json.dumps([[p.wait()] + [s.decode() for s in p.communicate()] for p in procs]))
"""


def burst(netns, install, action, addresses):
    out = netns.check([sys.executable, "-c", BURST, install.program(), action] + addresses)
    return json.loads(out)


def test_burst_of_adds_then_deletes(netns, install):
    adds = DISTINCT + [SHARED] * 50
    results = burst(netns, install, "add", adds)
    assert results == [[0, "", ""]] * len(adds)
    rules = netns.rules()
    assert rules[:3] == ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]
    blocked = collections.Counter(rule.split()[3] for rule in rules[3:])
    assert blocked == {ip + "/32": 1 for ip in DISTINCT + [SHARED]}

    lines = install.log_lines()
    assert len(lines) == 2 * len(adds)
    invocations = [invocation(line) for line in lines if invocation(line)]
    assert collections.Counter(ip for _, _, ip in invocations) == collections.Counter(adds)
    # "<argv0>: add <ip>: <status>: <detail> (exit 0)"
    statuses = collections.Counter(line.split("firewall-drop.sh: ", 1)[1].split(": ")[1]
                                   for line in lines if "firewall-drop.sh: " in line)
    assert statuses == {"blocked": 201, "already blocked": 49}

    deletes = DISTINCT + [SHARED]
    results = burst(netns, install, "delete", deletes)
    assert results == [[0, "", ""]] * len(deletes)
    assert netns.rules() == ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]
    unblocked = [line for line in install.log_lines()[2 * len(adds):]
                 if line.endswith(": unblocked: iptables: removed 1 from OSSEC (exit 0)")]
    assert len(unblocked) == len(deletes)
