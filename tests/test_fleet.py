"""ossec-ar fleet on a manager's alerts files: the rows each outcome leaves,
the rotated files, and hostile or broken input.

The alerts are written here in the layout of OSSEC's analysisd
(src/analysisd/alerts/log.c, OS_Log, at 7f06fe0), and the real manager's
own alerts are read by tests/test_ossec_fleet.py.  The command is our
installed ``bin/ossec-ar`` under a scratch prefix, run as root as an
administrator runs it.  Every time is relative to now, and every day file
is named by the local date of its alerts, so nothing depends on the date
or the time zone.
"""

import gzip
import json
import os
import random
import shutil
import subprocess
import time

import pytest

from conftest import make_install
from ossec_ar import alerts, fleet
from ossec_ar.log import c_date

AGENT_PREFIX = "/var/ossec"
LOG = AGENT_PREFIX + "/logs/active-responses.log"
BIN = AGENT_PREFIX + "/active-response/bin/"
AGENTS = {"agent1": ("001", "192.0.2.2"), "agent2": ("002", "192.0.2.3")}
KEY = "c2VjcmV0" * 8
# rule, level and groups of our rules for each outcome word
OURS = {"blocked": (100613, 2, "active_response_blocked"),
        "already blocked": (100613, 2, "active_response_blocked"),
        "unblocked": (100614, 2, "active_response_unblocked"),
        "was not blocked": (100614, 2, "active_response_unblocked"),
        "not ours, left": (100615, 2, "active_response_left"),
        "failed": (100611, 10, "active_response_failed"),
        "refused": (100612, 5, "active_response_refused"),
        "usage": (100612, 5, "active_response_refused")}
NOW = time.time()


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    return make_install(str(tmp_path_factory.mktemp("fleet")))


class Manager:
    """The manager's logs/alerts and etc/client.keys under *prefix*, empty
    at the start of each test; ``alerts`` counts the alerts written, for
    their ids."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.dir = alerts.alerts_dir(prefix)
        self.live = alerts.live_file(prefix)
        self.number = 0
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        etc = os.path.join(prefix, "etc")
        os.makedirs(etc, exist_ok=True)
        keys = os.path.join(etc, "client.keys")
        with open(keys, "w") as f:
            for name, (number, ip) in sorted(AGENTS.items()):
                f.write("%s %s %s %s\n" % (number, name, ip, KEY))
            f.write("003 #removed any %s\n" % KEY)
        os.chmod(keys, 0o440)

    def alert(self, seconds, rule, level, groups, location, line, srcip=None, after=()):
        """One alert as analysisd writes it, with *after* as the lines of
        earlier events that a counting rule adds."""
        self.number += 1
        tm = time.localtime(seconds)
        text = "** Alert %d.%d: - %s,\n%d %s %02d %02d:%02d:%02d %s\n" % (
            seconds, self.number, groups, tm.tm_year, alerts.MONTHS[tm.tm_mon - 1],
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, location)
        text += "Rule: %d (level %d) -> 'a rule'\n" % (rule, level)
        if srcip is not None:
            text += "Src IP: %s\n" % srcip
        return text + line + "\n" + "".join(extra + "\n" for extra in after) + "\n"

    def outcome(self, seconds, agent, program, action, address, status, detail="", code=0,
                srcip=None):
        """An alert of our rules for one outcome line of *agent* (None: the
        manager's own log)."""
        rule, level, group = OURS[status]
        if agent is None:
            location = "manager->/var/ossec/logs/active-responses.log"
        else:
            location = "(%s) %s->%s" % (agent, AGENTS.get(agent, ("", "192.0.2.99"))[1], LOG)
        line = "%s %s%s: %s %s: %s%s (exit %d)" % (
            c_date(seconds), BIN, program, action, address, status,
            ": " + detail if detail else "", code)
        return self.alert(seconds, rule, level, "ossec,active_response,ossec-ar," + group,
                          location, line, srcip=address if srcip is None else srcip)

    def write(self, path, text, mode="w"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode + "b") as f:
            f.write(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)

    def day_file(self, seconds, gz=False):
        tm = time.localtime(seconds)
        return os.path.join(self.dir, "%d" % tm.tm_year, alerts.MONTHS[tm.tm_mon - 1],
                            "ossec-alerts-%02d.log%s" % (tm.tm_mday, ".gz" if gz else ""))

    def fleet(self, *args, code=0):
        result = subprocess.run([os.path.join(self.prefix, "bin", "ossec-ar"), "fleet"]
                                + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        return result

    def rows(self, *args, code=0):
        result = self.fleet("--json", *args, code=code)
        return json.loads(result.stdout), result.stderr

    def table(self, *args):
        """(agent id, agent, address, program, state) of each row."""
        document, _ = self.rows(*args)
        return [(r["agent_id"], r["agent"], r["address"], r["program"], r["state"])
                for r in document["rows"]]


@pytest.fixture
def manager(prefix):
    return Manager(prefix)


SSH = "syslog,sshd,authentication_failed"


def sshd(manager, seconds, agent, text, srcip="203.0.113.5", after=()):
    """An sshd alert from *agent* whose log line holds *text*."""
    return manager.alert(seconds, 5716, 5, SSH, "(%s) %s->/var/log/auth.log" % (
        agent, AGENTS[agent][1]), "Dec  1 20:24:27 web1 sshd[42]: Failed password for %s "
        "from %s port 22 ssh2" % (text, srcip), srcip=srcip, after=after)


# --- rows ------------------------------------------------------------------------

def test_each_outcome_leaves_its_state_field_by_field(manager):
    t = NOW - 3600
    m = manager
    text = "".join([
        m.outcome(t, "agent1", "firewall-drop.sh", "add", "192.0.2.7", "blocked",
                  "nftables table inet ossec, set v4"),
        m.outcome(t + 1, "agent1", "host-deny.sh", "add", "192.0.2.7", "blocked",
                  "/etc/hosts.deny"),
        # already blocked: still blocked since the first outcome
        m.outcome(t + 2, "agent1", "firewall-drop.sh", "add", "192.0.2.7", "already blocked",
                  "nftables table inet ossec, set v4"),
        # a refusal changes nothing: the block stands
        m.outcome(t + 3, "agent1", "firewall-drop.sh", "add", "192.0.2.7", "refused",
                  "on the allowlist", 65),
        m.outcome(t + 4, "agent2", "firewall-drop", "add", "2001:db8::7", "blocked",
                  "iptables chain OSSEC"),
        m.outcome(t + 5, "agent2", "firewall-drop.sh", "add", "192.0.2.8", "failed",
                  "lock /var/ossec/var/ossec-ar/firewall-drop.lock still held by another run "
                  "after 1s", 75),
        m.outcome(t + 6, "agent2", "route-null.sh", "add", "192.0.2.9", "blocked",
                  "route blackhole"),
        m.outcome(t + 7, "agent2", "route-null.sh", "delete", "192.0.2.9", "unblocked",
                  "route blackhole"),
        m.outcome(t + 8, "agent1", "firewall-drop.sh", "add", "127.0.0.1", "refused",
                  "loopback address", 65),
        # unblock.sh lifts both programs' blocks of the address
        m.outcome(t + 9, "agent2", "host-deny.sh", "add", "192.0.2.10", "blocked",
                  "/etc/hosts.deny"),
        m.outcome(t + 10, "agent2", "firewall-drop.sh", "add", "192.0.2.10", "blocked",
                  "iptables chain OSSEC"),
        m.outcome(t + 11, "agent2", "unblock.sh", "add", "192.0.2.10", "unblocked",
                  "firewall-drop: unblocked: iptables chain OSSEC; host-deny: unblocked: "
                  "/etc/hosts.deny"),
        m.outcome(t + 12, None, "firewall-drop.sh", "add", "198.51.100.7", "blocked",
                  "ipset ossec4"),
    ])
    m.write(m.live, text)
    document, stderr = m.rows()
    assert stderr == ""
    assert document["notes"] == [] and document["exit"] == 0
    assert document["sources"] == [m.live]
    assert set(document) == {"rows", "since", "sources", "notes", "exit"}
    assert int(NOW) - 7 * 86400 - 5 <= document["since"] <= time.time() - 7 * 86400
    rows = document["rows"]
    assert [(r["agent_id"], r["agent"], r["address"], r["program"], r["state"])
            for r in rows] == [
        ("000", "manager", "198.51.100.7", "firewall-drop.sh", "blocked"),
        ("001", "agent1", "192.0.2.7", "firewall-drop.sh", "blocked"),
        ("001", "agent1", "192.0.2.7", "host-deny.sh", "blocked"),
        ("002", "agent2", "192.0.2.8", "firewall-drop.sh", "failed"),
        ("002", "agent2", "2001:db8::7", "firewall-drop", "blocked")]
    first = rows[1]
    assert set(first) == {"agent_id", "agent", "agent_ip", "address", "program", "backend",
                          "prefix", "state", "outcome", "by", "since", "since_text", "rule",
                          "alert", "exit", "detail"}
    assert first == {"agent_id": "001", "agent": "agent1", "agent_ip": "192.0.2.2",
                     "address": "192.0.2.7", "program": "firewall-drop.sh",
                     "backend": "nftables", "prefix": None, "state": "blocked",
                     "outcome": "already blocked",
                     "by": "firewall-drop.sh", "since": int(t),
                     "since_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(t))),
                     "rule": 100613, "alert": "%d.3" % (t + 2), "exit": 0,
                     "detail": "nftables table inet ossec, set v4"}
    failed = rows[3]
    assert (failed["backend"], failed["rule"], failed["exit"], failed["outcome"]) == (
        "-", 100611, 75, "failed")
    assert failed["detail"].startswith("lock ")
    assert rows[2]["backend"] == "/etc/hosts.deny"
    assert rows[0]["agent_ip"] == "-"

    every = [(r["agent_id"], r["address"], r["program"], r["state"], r["by"])
             for r in m.rows("--all")[0]["rows"]]
    assert every == [
        ("000", "198.51.100.7", "firewall-drop.sh", "blocked", "firewall-drop.sh"),
        ("001", "127.0.0.1", "firewall-drop.sh", "refused", "firewall-drop.sh"),
        ("001", "192.0.2.7", "firewall-drop.sh", "blocked", "firewall-drop.sh"),
        ("001", "192.0.2.7", "host-deny.sh", "blocked", "host-deny.sh"),
        ("002", "192.0.2.8", "firewall-drop.sh", "failed", "firewall-drop.sh"),
        ("002", "192.0.2.9", "route-null.sh", "lifted", "route-null.sh"),
        ("002", "192.0.2.10", "firewall-drop.sh", "lifted", "unblock.sh"),
        ("002", "192.0.2.10", "host-deny.sh", "lifted", "unblock.sh"),
        ("002", "2001:db8::7", "firewall-drop", "blocked", "firewall-drop")]

    # The text table: a header, one line per row.
    lines = m.fleet().stdout.splitlines()
    assert lines[0].split() == ["AGENT", "NAME", "ADDRESS", "PROGRAM", "BACKEND", "STATE",
                                "SINCE", "RULE", "ALERT"]
    assert lines[2].split() == ["001", "agent1", "192.0.2.7", "firewall-drop.sh", "nftables",
                                "blocked"] + first["since_text"].split() + ["100613",
                                                                            first["alert"]]
    assert len(lines) == 6


NOT_OURS_DETAIL = ("iptables chain OSSEC: blocked by someone else (found by the add of "
                   "1326977549.1358625), left in place")


def test_a_delete_that_left_a_block_not_ours(manager):
    """"not ours, left" (100615): the delete found the block is someone
    else's and left it.  Our block is no more: the row is "not ours",
    shown with --all only (as lifted), never a target of --everywhere."""
    t = NOW - 3600
    m = manager
    m.write(m.live, "".join([
        # An add that found the address blocked by someone else, then its delete.
        m.outcome(t, "agent1", "firewall-drop.sh", "add", "198.51.100.77", "already blocked",
                  "iptables chain OSSEC: someone else's"),
        m.outcome(t + 1, "agent1", "firewall-drop.sh", "delete", "198.51.100.77",
                  "not ours, left", NOT_OURS_DETAIL),
        # Our host-deny block and the firewall's not ours: unblock.sh's word
        # is every row's.
        m.outcome(t + 2, "agent2", "host-deny.sh", "add", "2001:db8::77", "blocked",
                  "/etc/hosts.deny"),
        m.outcome(t + 3, "agent2", "unblock.sh", "add", "2001:db8::77", "not ours, left",
                  "firewall-drop: not ours, left: iptables chain OSSEC; host-deny: not ours, "
                  "left: /etc/hosts.deny"),
        # unblock.sh where no outcome of ours was seen: a row of its own.
        m.outcome(t + 4, "agent2", "unblock.sh", "add", "192.0.2.77", "not ours, left",
                  "firewall-drop: not ours, left: iptables chain OSSEC"),
        # Not ours, then blocked by us again: blocked since then.
        m.outcome(t + 5, "agent1", "host-deny.sh", "delete", "192.0.2.78", "not ours, left",
                  "/etc/hosts.deny"),
        m.outcome(t + 6, "agent1", "host-deny.sh", "add", "192.0.2.78", "blocked",
                  "/etc/hosts.deny"),
    ]))
    assert m.table() == [("001", "agent1", "192.0.2.78", "host-deny.sh", "blocked")]
    document, stderr = m.rows("--all")
    assert (stderr, document["notes"], document["exit"]) == ("", [], 0)
    rows = document["rows"]
    assert [(r["agent_id"], r["address"], r["program"], r["state"], r["outcome"], r["by"],
             r["rule"]) for r in rows] == [
        ("001", "192.0.2.78", "host-deny.sh", "blocked", "blocked", "host-deny.sh", 100613),
        ("001", "198.51.100.77", "firewall-drop.sh", "not ours", "not ours, left",
         "firewall-drop.sh", 100615),
        ("002", "192.0.2.77", "unblock.sh", "not ours", "not ours, left", "unblock.sh",
         100615),
        ("002", "2001:db8::77", "host-deny.sh", "not ours", "not ours, left", "unblock.sh",
         100615)]
    left = rows[1]
    assert (left["detail"], left["exit"], left["since"], left["alert"]) == (
        NOT_OURS_DETAIL, 0, int(t + 1), "%d.2" % (t + 1))
    assert rows[0]["since"] == int(t + 6)
    # The text table says it in the STATE column.
    lines = m.fleet("--all", "--address", "198.51.100.77").stdout.splitlines()
    assert lines[1].split()[:7] == ["001", "agent1", "198.51.100.77", "firewall-drop.sh",
                                    "iptables", "not", "ours"]


def test_fleet_unblock_wait_takes_not_ours_left_for_an_answer(manager):
    """What ``fleet unblock --wait`` does with each agent's outcome, read
    by the real Follower from alerts.log as it grows: "not ours, left" is
    an answer (exit 0 when all answered), with its detail kept."""
    m = manager
    m.write(m.live, m.outcome(NOW - 60, "agent1", "firewall-drop.sh", "add", "192.0.2.77",
                              "blocked", "iptables chain OSSEC"))
    follower = alerts.Follower(m.prefix)
    try:
        assert follower.notes == []
        results = [{"agent_id": agent_id, "agent": name, "result": "sent", "detail": "",
                    "seconds": None, "alert": None, "sent": time.monotonic()}
                   for name, (agent_id, _) in sorted(AGENTS.items())]
        detail = ("firewall-drop: not ours, left: iptables chain OSSEC; host-deny: was not "
                  "blocked: /etc/hosts.deny")
        m.write(m.live, m.outcome(NOW, "agent1", "unblock.sh", "add", "192.0.2.77",
                                  "not ours, left", detail)
                + m.outcome(NOW, "agent2", "unblock.sh", "add", "192.0.2.77", "unblocked",
                            "firewall-drop: unblocked: iptables chain OSSEC"), mode="a")
        fleet._wait(follower, results, fleet.addresses.parse("192.0.2.77"), 30)
    finally:
        follower.close()
    assert [(r["agent"], r["result"], r["detail"], r["alert"]) for r in results] == [
        ("agent1", "not ours, left", detail, "%d.2" % NOW),
        ("agent2", "unblocked", "", "%d.3" % NOW)]
    assert all(r["result"] in fleet.ANSWERED for r in results)
    assert "sent" not in results[0]


PREFIX_WHERE = "nftables table inet ossec, set v6p64"


def test_prefix_blocks_are_rows_of_their_addresses_with_the_prefix_named(manager):
    """With ipv6_prefix, the outcome lines name the prefix before the
    layout ("blocked: 2001:db8:1:2::/64 in nftables ...", "already
    blocked: by ..."): each address is a row of its own, in the state its
    own outcomes leave, with its prefix and the layout the prefix went to;
    the delete that kept the prefix for another address lifts only its own
    row."""
    t = NOW - 3600
    m = manager
    m.write(m.live, "".join([
        m.outcome(t, "agent1", "firewall-drop.sh", "add", "2001:db8:1:2::7", "blocked",
                  "2001:db8:1:2::/64 in " + PREFIX_WHERE),
        m.outcome(t + 1, "agent1", "firewall-drop", "add", "2001:db8:1:2::8",
                  "already blocked", "by 2001:db8:1:2::/64 in " + PREFIX_WHERE),
        m.outcome(t + 2, "agent1", "host-deny.sh", "add", "2001:db8:1:2::9", "blocked",
                  "2001:db8:1:2::/64 in /etc/hosts.deny"),
        m.outcome(t + 3, "agent1", "firewall-drop.sh", "delete", "2001:db8:1:2::7",
                  "unblocked", "2001:db8:1:2::7; prefix 2001:db8:1:2::/64 kept for 1 other "
                  "(nftables)"),
        # An address alone, its prefix refused: no prefix named first.
        m.outcome(t + 4, "agent2", "firewall-drop.sh", "add", "2001:db8:5::7", "blocked",
                  "nftables table inet ossec, set v6; 2001:db8:5::/64 not blocked whole: it "
                  "holds 2001:db8:5::1, an address of this host; the address alone is"),
    ]))
    document, stderr = m.rows()
    assert (stderr, document["notes"], document["exit"]) == ("", [], 0)
    assert [(r["agent"], r["address"], r["program"], r["state"], r["backend"], r["prefix"])
            for r in document["rows"]] == [
        ("agent1", "2001:db8:1:2::8", "firewall-drop", "blocked", "nftables",
         "2001:db8:1:2::/64"),
        ("agent1", "2001:db8:1:2::9", "host-deny.sh", "blocked", "/etc/hosts.deny",
         "2001:db8:1:2::/64"),
        ("agent2", "2001:db8:5::7", "firewall-drop.sh", "blocked", "nftables", None)]
    lifted = [r for r in m.rows("--all")[0]["rows"] if r["address"] == "2001:db8:1:2::7"]
    assert [(r["state"], r["outcome"]) for r in lifted] == [("lifted", "unblocked")]
    lines = m.fleet().stdout.splitlines()
    assert lines[1].split()[2:6] == ["2001:db8:1:2::8", "firewall-drop", "nftables",
                                     "blocked"]


def test_filters_by_agent_address_and_since(manager):
    m = manager
    m.write(m.live, "".join([
        m.outcome(NOW - 3 * 3600, "agent1", "firewall-drop.sh", "add", "192.0.2.7", "blocked",
                  "iptables chain OSSEC"),
        m.outcome(NOW - 2 * 3600, "agent2", "firewall-drop.sh", "add", "2001:db8::7",
                  "blocked", "iptables chain OSSEC"),
        m.outcome(NOW - 60, "agent2", "firewall-drop.sh", "add", "192.0.2.7", "blocked",
                  "iptables chain OSSEC"),
        m.outcome(NOW - 8 * 86400, "agent1", "firewall-drop.sh", "add", "192.0.2.99",
                  "blocked", "iptables chain OSSEC"),
    ]))
    assert [r[2] for r in m.table()] == ["192.0.2.7", "192.0.2.7", "2001:db8::7"]
    assert [r[:3] for r in m.table("--agent", "agent2")] == [
        ("002", "agent2", "192.0.2.7"), ("002", "agent2", "2001:db8::7")]
    assert [r[:3] for r in m.table("--agent", "001")] == [("001", "agent1", "192.0.2.7")]
    assert [r[:3] for r in m.table("--address", "2001:DB8:0::7")] == [
        ("002", "agent2", "2001:db8::7")]
    assert [r[:3] for r in m.table("--since", "90m")] == [("002", "agent2", "192.0.2.7")]
    assert [r[2] for r in m.table("--since", "10d")] == [
        "192.0.2.7", "192.0.2.99", "192.0.2.7", "2001:db8::7"]
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW - 150 * 60))
    assert [r[2] for r in m.table("--since", date)] == ["192.0.2.7", "2001:db8::7"]
    assert m.table("--agent", "nobody") == []
    for bad in (["--since", "yesterday"], ["--since", "0"], ["--address", "example.com"]):
        result = m.fleet(*bad, code=64 if bad[0] == "--since" else 65)
        assert result.stdout == "", bad


# --- the files -------------------------------------------------------------------

def _story(m):
    """Alerts over the last two days: yesterday's blocks, today's lifts."""
    texts = []
    for hours, agent, action, address, status in (
            (30, "agent1", "add", "192.0.2.7", "blocked"),
            (29, "agent2", "add", "192.0.2.8", "blocked"),
            (28, "agent2", "add", "192.0.2.9", "blocked"),
            (27, "agent1", "add", "192.0.2.11", "failed"),
            (3, "agent2", "delete", "192.0.2.8", "unblocked"),
            (2, "agent1", "add", "192.0.2.12", "blocked"),
            (1, "agent2", "add", "192.0.2.9", "already blocked")):
        seconds = NOW - hours * 3600
        texts.append((seconds, m.outcome(seconds, agent, "firewall-drop.sh", action,
                                         address, status, "iptables chain OSSEC",
                                         75 if status == "failed" else 0)))
    return texts


def _rows_without_sources(document):
    """The document without the files read and without ``since``, the
    start of the window, which moves with the clock between two runs."""
    return {key: value for key, value in document.items() if key not in ("sources", "since")}


def test_rotated_days_give_the_table_of_one_file(manager):
    m = manager
    story = _story(m)
    m.write(m.live, "".join(text for _, text in story))
    whole = m.rows("--all")[0]
    assert len(whole["rows"]) == 5

    # As OSSEC leaves them: each past day gzipped, today's file with
    # alerts.log as its second name.
    m = Manager(m.prefix)
    m.number = 0
    by_day = {}
    for seconds, text in story:
        by_day.setdefault(m.day_file(seconds), []).append(text)
    today = m.day_file(NOW)
    for path, texts in by_day.items():
        if path == today:
            m.write(path, "".join(texts))
        else:
            m.write(path + ".gz", gzip.compress("".join(texts).encode()))
    if today not in by_day:
        m.write(today, "")
    os.link(today, m.live)
    rotated = m.rows("--all")[0]
    assert _rows_without_sources(rotated) == _rows_without_sources(whole)
    # Read oldest first, alerts.log not twice.
    expected = [path + ".gz" if path != today else path for path in by_day]
    if today not in by_day:
        expected.append(today)
    assert rotated["sources"] == expected
    assert m.live not in rotated["sources"] and today in rotated["sources"]
    assert all(path.endswith(".gz") for path in rotated["sources"][:-1])

    # A day's .gz still being written beside its plain file: the plain one.
    yesterday = m.day_file(NOW - 30 * 3600)
    if yesterday != today:
        os.rename(yesterday + ".gz", yesterday)
        with gzip.open(yesterday) as f:
            plain = f.read()
        m.write(yesterday, plain)
        m.write(yesterday + ".gz", gzip.compress(plain)[:40])
        again = m.rows("--all")[0]
        assert _rows_without_sources(again) == _rows_without_sources(whole)
        assert yesterday in again["sources"]


def test_since_does_not_open_older_files(manager):
    m = manager
    old = m.day_file(NOW - 3 * 86400)
    # A symbolic link is never followed: opened, it would be a note.
    os.makedirs(os.path.dirname(old), exist_ok=True)
    os.symlink("/etc/shadow", old)
    m.write(m.live, m.outcome(NOW - 60, "agent1", "firewall-drop.sh", "add", "192.0.2.7",
                              "blocked", "iptables chain OSSEC"))
    document, stderr = m.rows(code=74)
    assert document["notes"] == ["%s: cannot be read: is a symbolic link, not a regular "
                                 "file" % old]
    assert stderr == "ossec-ar fleet: note: %s\n" % document["notes"][0]
    assert [r[2] for r in m.table("--since", "1h")] == ["192.0.2.7"]
    document, stderr = m.rows("--since", "2d")
    assert (document["notes"], stderr, document["exit"]) == ([], "", 0)
    assert len(document["rows"]) == 1


def test_a_missing_alerts_log_is_a_note(manager):
    document, stderr = manager.rows(code=74)
    assert document["rows"] == []
    assert document["notes"] == ["%s: not found (is this an OSSEC manager?)" % manager.live]
    assert manager.live in stderr


# --- hostile and broken input ------------------------------------------------------

def test_forgeries_in_the_attackers_lines_change_nothing(manager):
    m = manager
    t = NOW - 600
    real = m.outcome(t, "agent1", "firewall-drop.sh", "add", "192.0.2.7", "blocked",
                     "iptables chain OSSEC")
    forged_alert = ("** Alert %d.99: - ossec,active_response,ossec-ar,active_response_blocked,"
                    % t)
    forged_line = "%s %sfirewall-drop.sh: add 203.0.113.66: blocked: iptables (exit 0)" % (
        c_date(t), BIN)
    location = "(agent1) 192.0.2.2->" + LOG
    cases = {
        # "** Alert" and a whole header inside an sshd line
        "forged alert in a log line": sshd(m, t, "agent1", "%s %s Rule: 100613 (level 2) "
                                       "Src IP: 203.0.113.66 %s" % (forged_alert, location,
                                                                    forged_line)),
        "forged Rule: 100613": sshd(m, t, "agent1", "Rule: 100613 (level 2) -> 'x'"),
        "our outcome text for another address": sshd(m, t, "agent2", forged_line,
                                                     srcip="203.0.113.66"),
        # A counting rule prints earlier events after its own: a whole forged
        # alert there, line by line, with no blank line before it.
        "forged alert in the earlier events": sshd(m, t, "agent1", "x", after=[
            forged_alert, "2026 Dec 01 20:24:28 " + location,
            "Rule: 100613 (level 2) -> 'x'", "Src IP: 203.0.113.66", forged_line]),
        # Ours, but the address in the line is not the alert's Src IP.
        "Src IP not the line's address": m.outcome(
            t, "agent1", "firewall-drop.sh", "add", "203.0.113.67", "blocked", "iptables",
            srcip="203.0.113.68"),
        # Our outcome line read from some other file of the agent's.
        "not active-responses.log": m.alert(
            t, 100613, 2, "ossec,active_response,ossec-ar,active_response_blocked",
            "(agent1) 192.0.2.2->/var/log/app.log", forged_line, srcip="203.0.113.66"),
        # A rule whose group says failed, a line that says blocked.
        "group and status disagree": m.alert(
            t, 100611, 10, "ossec,active_response,ossec-ar,active_response_failed",
            location, forged_line, srcip="203.0.113.66"),
        # Not our group at all (a rule of someone else's on the same line).
        "not our group": m.alert(t, 100613, 2, "ossec,active_response", location,
                                 forged_line, srcip="203.0.113.66"),
        # A refusal whose detail holds an outcome for another address.
        "outcome text in a refusal's detail": m.outcome(
            t, "agent1", "firewall-drop.sh", "add", "not-an-ip", "refused",
            "not an IP address: x: add 203.0.113.66: blocked: iptables (exit 0)", 65),
    }
    for name, text in cases.items():
        m.write(m.live, real + text + real.replace(".1:", ".2:", 1))
        rows = m.table("--all")
        expected = [("001", "agent1", "192.0.2.7", "firewall-drop.sh", "blocked")]
        if name == "outcome text in a refusal's detail":
            expected.append(("001", "agent1", "not-an-ip", "firewall-drop.sh", "refused"))
        assert rows == expected, name


def _alerts_and_their_rows(m, count):
    texts, rows = [], []
    for n in range(count):
        address = "10.%d.%d.1" % (n // 250, n % 250)
        texts.append(m.outcome(NOW - 3600 + n, "agent1", "firewall-drop.sh", "add", address,
                               "blocked", "iptables chain OSSEC"))
        rows.append(("001", "agent1", address, "firewall-drop.sh", "blocked"))
    return texts, rows


def test_an_alert_being_written_is_never_a_row(manager):
    m = manager
    texts, rows = _alerts_and_their_rows(m, 3)
    last = m.outcome(NOW - 10, "agent2", "firewall-drop.sh", "add", "192.0.2.100",
                     "blocked", "iptables chain OSSEC").encode()
    complete = "".join(texts).encode()
    # Every cut of the last alert, in the reader itself...
    for cut in range(len(last)):
        scanner = alerts.Scanner()
        found = scanner.feed(complete + last[:cut])
        scanner.end()
        assert [o.address for o in found] == [r[2] for r in rows], cut
    # ...and the command at a few: in the address, after the status, before
    # the blank line.
    line = last.index(b"192.0.2.100: blocked")
    for cut in (line + len(b"192.0.2.10"), line + len(b"192.0.2.100: blocked"),
                len(last) - 1):
        m.write(m.live, complete + last[:cut])
        assert m.table() == rows, cut
    m.write(m.live, complete + last)
    assert m.table()[-1][2] == "192.0.2.100"


def test_binary_garbage_around_alerts(manager):
    m = manager
    texts, rows = _alerts_and_their_rows(m, 20)
    noise = random.Random(21)
    chunks = []
    for text in texts:
        garbage = bytes(noise.getrandbits(8) for _ in range(noise.randrange(1, 3000)))
        # Fragments of headers in the garbage too.
        garbage += b"\n\n** Alert 1.1: - ossec-ar,\n\x00\xff" + text.encode()[:200]
        chunks.append(garbage + b"\n\n" + text.encode())
    m.write(m.live, b"".join(chunks) + os.urandom(4096))
    assert m.table() == rows


def test_a_2_gb_sparse_file(manager):
    m = manager
    texts, rows = _alerts_and_their_rows(m, 2)
    with open(m.live, "wb") as f:
        f.write(texts[0].encode())
        f.truncate(2 << 30)             # a 2 GiB hole
        f.seek(0, os.SEEK_END)
        f.write(b"\n\n" + texts[1].encode())
    assert os.stat(m.live).st_size > 2 << 30
    assert m.table() == rows


def test_a_gz_corrupt_half_way(manager):
    m = manager
    texts, rows = _alerts_and_their_rows(m, 4000)
    data = bytearray(gzip.compress("".join(texts).encode(), 6))
    middle = len(data) // 2
    data[middle:middle + 64] = random.Random(7).getrandbits(8 * 64).to_bytes(64, "big")
    old = m.day_file(NOW - 3 * 86400, gz=True)
    m.write(old, bytes(data))
    m.write(m.live, "")
    document, stderr = m.rows("--all", code=74)
    (note,) = document["notes"]
    assert note.startswith("%s: unreadable after " % old), note
    assert note.endswith("; the alerts before that were read"), note
    assert old in stderr
    shown = [(r["agent_id"], r["agent"], r["address"], r["program"], r["state"])
             for r in document["rows"]]
    # Those before the damage, in order, and nothing else (the addresses
    # sort as they were written).
    assert 100 < len(shown) < len(rows)
    assert shown == rows[:len(shown)]


def test_names_are_shown_escaped(manager):
    m = manager
    name = "web prod (\u00e9)\x1b[2J\udcff"
    m.write(m.live, m.outcome(NOW - 60, name, "firewall-drop.sh", "add", "192.0.2.7",
                              "blocked", "iptables chain OSSEC"))
    document, _ = m.rows()
    (row,) = document["rows"]
    # JSON gives the name as it is (a byte that is not UTF-8 as its
    # surrogate); it is no agent of client.keys.
    assert (row["agent_id"], row["agent"]) == ("-", name)
    lines = m.fleet().stdout.splitlines()
    assert lines[1].split()[:3] == ["-", "web\\x20prod\\x20(\u00e9)\\x1b[2J\\xff",
                                    "192.0.2.7"]
    assert "\x1b" not in m.fleet().stdout
