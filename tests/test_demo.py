"""tools/demo: a real block and unblock in throwaway namespaces, shown as
the backend that made the block keeps it."""

import os
import re
import subprocess

import pytest

from conftest import ROOT, require_root

# How each Linux backend's outcome line names where the block went.
WHERE = {"nftables": "nftables table inet ossec, set v4", "ipset": "ipset ossec4",
         "iptables": "iptables chain OSSEC", "firewalld": "firewalld ipset ossec4"}


def section(output, title):
    """The demo's step that starts with *title*, up to the next one."""
    return output.split("\n== " + title, 1)[1].split("\n== ", 1)[0]


def listing(step, backend):
    """What the step shows of *backend*'s layout."""
    return step.split("the %s layout (" % backend, 1)[1].split("\n  attacker ", 1)[0]


@pytest.mark.time_bound(600)
def test_the_demo_shows_the_layout_that_the_ledger_records():
    require_root()
    result = subprocess.run([os.path.join(ROOT, "tools", "demo")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=540)
    out = result.stdout
    assert result.returncode == 0, out
    made = re.search(r"\n  the ledger records the block in: (\S+)\n", out).group(1)
    # The log the demo ends with says the same backend made the block.
    blocked = re.search(r"/firewall-drop\.sh: add 192\.0\.2\.7: blocked: (.*) \(exit 0\)\n",
                        out).group(1)
    assert blocked.startswith(WHERE[made]), (made, blocked)

    before = section(out, "before: ")
    assert "ossec-ar status: an add would use %s\n" % made in before
    assert "192.0.2.7" not in listing(before, made)
    assert "agent port 22: connected" in before

    added = section(out, "execd runs: ")
    assert "exit code 0" in added
    assert "192.0.2.7" in listing(added, made)
    assert "agent port 22: no answer (dropped)" in added

    deleted = section(out, "execd runs the same with delete")
    assert "exit code 0" in deleted
    assert "192.0.2.7" not in listing(deleted, made)
    assert "agent port 22: connected" in deleted
