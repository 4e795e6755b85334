"""End to end with the real OSSEC daemons (local install, built from the
vendored source): sshd failures in a monitored file make analysisd and execd
run our firewall-drop.sh and host-deny.sh, analysisd reads what they logged
in active-responses.log and raises the stock alerts 601-604 and ours.

Everything runs in private namespaces (tests/ossec.py): the daemons in a
network namespace of ours, with a copy of /etc.  The daemons are stopped at
the end, whatever happened.
"""

import os
import re
import time

import pytest

import ossec
from ossec import read, wait_for
from conftest import delete_netns, new_netns

BLOCK_SECONDS = 3
SSHD_FAILURE = "Jan 19 13:52:29 web1 sshd[4242]: Failed password for root from %s port 51234 ssh2"
# The checks below read the iptables layout, so the tests choose it
# (auto takes nftables where nft is installed).
BACKEND = "[firewall-drop]\nbackend = iptables\n"
LOCK_WAIT = BACKEND + "lock_wait = 1\n"

CONF = """<ossec_config>
  <global>
    <email_notification>no</email_notification>
  </global>
  %(rules)s
  <syscheck><disabled>yes</disabled></syscheck>
  <rootcheck><disabled>yes</disabled></rootcheck>
  <alerts>
    <log_alert_level>1</log_alert_level>
    <email_alert_level>16</email_alert_level>
  </alerts>
  <command>
    <name>firewall-drop</name>
    <executable>firewall-drop.sh</executable>
    <expect>srcip</expect>
    <timeout_allowed>yes</timeout_allowed>
  </command>
  <command>
    <name>host-deny</name>
    <executable>host-deny.sh</executable>
    <expect>srcip</expect>
    <timeout_allowed>yes</timeout_allowed>
  </command>
  <active-response>
    <command>firewall-drop</command>
    <location>local</location>
    <rules_id>5716</rules_id>
    <timeout>%(seconds)d</timeout>
  </active-response>
  <active-response>
    <command>host-deny</command>
    <location>local</location>
    <rules_id>5716</rules_id>
    <timeout>%(seconds)d</timeout>
  </active-response>
  <localfile>
    <log_format>syslog</log_format>
    <location>%(prefix)s/logs/active-responses.log</location>
  </localfile>
  <localfile>
    <log_format>syslog</log_format>
    <location>%(auth)s</location>
  </localfile>
</ossec_config>
"""


class Daemons:
    def __init__(self, install, netns, auth, terminal):
        self.install = install
        self.netns = netns
        self.auth = auth
        self.terminal = terminal        # the pseudo-terminal they were started from

    def shown(self):
        """What reached the terminal ossec-control start ran on so far."""
        os.set_blocking(self.terminal, False)
        shown = b""
        while True:
            try:
                chunk = os.read(self.terminal, 4096)
            except OSError:             # nothing more now, or no writer left
                break
            if not chunk:
                break
            shown += chunk
        return shown.decode("utf-8", "replace")

    def alerts(self):
        return ossec.alerts(self.install)

    def alert(self, rule, srcip, seconds=60):
        return wait_for("alert %d for %s" % (rule, srcip),
                        lambda: [a for a in self.alerts() if (a.rule, a.srcip) == (rule, srcip)],
                        seconds, self.context)[0]

    def outcome(self, program, action, address, status):
        """Wait for the outcome line of a run: the run has ended."""
        text = "/%s: %s %s: %s" % (program, action, address, status)
        return wait_for("outcome line %r" % text,
                        lambda: [line for line in self.install.ar_log() if text in line],
                        60, self.context)[0]

    def sshd_failure(self, address):
        with open(self.auth, "a") as f:
            f.write(SSHD_FAILURE % address + "\n")

    def firewall(self):
        return self.netns.rules("iptables")

    def hosts_deny(self):
        return read(os.path.join(self.install.etc, "hosts.deny")).splitlines()

    def context(self):
        return ("ossec.log:\n%s\nactive-responses.log:\n%s\nalerts:\n%s"
                % (read(self.install.path("logs", "ossec.log"))[-3000:],
                   "\n".join(self.install.ar_log()[-10:]), self.alerts()[-10:]))


def _ready(install, auth):
    log = read(install.path("logs", "ossec.log"))
    return all(text in log for text in (
        "ossec-logcollector: INFO: Started",
        "Analyzing file: '%s/logs/active-responses.log'" % install.prefix,
        "Analyzing file: '%s'" % auth))


@pytest.fixture
def daemons(tmp_path):
    try:
        install = ossec.Ossec(tmp_path / "ossec")
    except ossec.Missing as error:
        pytest.fail(str(error))
    install.install_ossec_ar()
    install.configure_ossec_ar(BACKEND)
    install.install_rules()
    auth = str(tmp_path / "auth.log")
    open(auth, "w").close()
    stock = read(install.path("etc", "ossec.conf"))
    rules = re.search(r"<rules>.*?</rules>", stock, re.S).group(0)
    with open(install.path("etc", "ossec.conf"), "w") as f:
        f.write(CONF % {"rules": rules, "seconds": BLOCK_SECONDS, "prefix": install.prefix,
                        "auth": auth})
    netns = new_netns("nft")
    # Started from a terminal, as an administrator types ossec-control
    # start: what execd's children could write there is read back.
    terminal, slave = os.openpty()
    try:
        try:
            code, _ = install.control("start", netns, terminal=slave)
        finally:
            os.close(slave)
        daemons = Daemons(install, netns, auth, terminal)
        assert code == 0, daemons.shown()
        wait_for("logcollector reading both files", lambda: _ready(install, auth), 60,
                 lambda: read(install.path("logs", "ossec.log"))[-3000:])
        yield daemons
    finally:
        left = install.stop(netns)
        delete_netns(netns)
        os.close(terminal)
        assert left == [], "daemons killed after ossec-control stop: %s" % left


def test_sshd_failures_are_blocked_lifted_and_alerted(daemons):
    # An sshd failure: analysisd's rule 5716 makes execd run both programs,
    # and analysisd reads their invocation lines back (601, 603).
    daemons.sshd_failure("192.0.2.7")
    blocked = daemons.alert(601, "192.0.2.7")
    assert blocked.description == "Host Blocked by firewall-drop.sh Active Response"
    assert re.search(r" /var/ossec/active-response/bin/firewall-drop\.sh add - 192\.0\.2\.7 "
                     r"[0-9]+\.[0-9]+ 5716$", blocked.log), blocked.text
    daemons.alert(603, "192.0.2.7")
    daemons.outcome("firewall-drop.sh", "add", "192.0.2.7", "blocked")
    daemons.outcome("host-deny.sh", "add", "192.0.2.7", "blocked")
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in daemons.firewall()
    assert "ALL:192.0.2.7" in daemons.hosts_deny()
    seen = time.monotonic()

    # execd lifts a block when it wakes up after the timeout; it wakes for
    # the next request (or after 90 s of quiet).  Its clock counts whole
    # seconds and the block must be older than the timeout: wait 2 s more.
    time.sleep(max(0.0, seen + BLOCK_SECONDS + 2 - time.monotonic()))
    daemons.sshd_failure("192.0.2.8")
    daemons.alert(602, "192.0.2.7")
    daemons.alert(604, "192.0.2.7")
    daemons.outcome("firewall-drop.sh", "delete", "192.0.2.7", "unblocked")
    daemons.outcome("host-deny.sh", "delete", "192.0.2.7", "unblocked")
    assert not [rule for rule in daemons.firewall() if "192.0.2.7" in rule]
    assert "ALL:192.0.2.7" not in daemons.hosts_deny()
    daemons.alert(601, "192.0.2.8")

    # A forced failure: our lock held, so firewall-drop.sh gives up after 1 s.
    daemons.install.configure_ossec_ar(LOCK_WAIT)
    with ossec.held_lock(daemons.install.path("var", "ossec-ar", "firewall-drop.lock")):
        daemons.sshd_failure("192.0.2.9")
        failed = daemons.alert(100611, "192.0.2.9")
    assert failed.level == 10
    assert failed.log.endswith(
        " /var/ossec/active-response/bin/firewall-drop.sh: add 192.0.2.9: failed: lock "
        "/var/ossec/var/ossec-ar/firewall-drop.lock still held by another run after 1s "
        "(exit 75)"), failed.text
    assert "-A OSSEC -s 192.0.2.9/32 -j DROP" not in daemons.firewall()
    # host-deny.sh has a lock of its own.
    daemons.alert(603, "192.0.2.9")
    daemons.outcome("host-deny.sh", "add", "192.0.2.9", "blocked")
    assert "ALL:192.0.2.9" in daemons.hosts_deny()

    # Ours above level 0 only while the lock was held (the delete of
    # 192.0.2.8 may have come then too); nothing was refused.
    ours = [alert for alert in daemons.alerts() if alert.rule in (100611, 100612)]
    assert ours and all(alert.rule == 100611 and "still held by another run" in alert.log
                        for alert in ours), ours

    # Every run above had execd's descriptors, /dev/null (its daemon start
    # put it on 0, 1 and 2), though ossec-control ran on a terminal: no
    # outcome line, nothing of ours, reached that terminal.
    shown = daemons.shown()
    assert "ossec-control" in shown or "Started" in shown, shown   # it is that terminal
    assert "active-response" not in shown and "(exit " not in shown, shown
