"""The OSSEC decoders and rules shipped in rules/, in the real ossec-logtest
built from the vendored source, on lines that our installed programs really
wrote into a real OSSEC install.

Two installs of OSSEC (tests/ossec.py), both with ossec-ar's programs: one
with our decoders and rules appended to local_decoder.xml and
local_rules.xml exactly as the README says, one without them (the stock
decoding, to compare against).  The programs run in private namespaces:
firewall-drop.sh against the real iptables of a network namespace of ours,
host-deny.sh on a copy of /etc.  Every run has its own LANG and TZ.  Each
outcome line is also checked with its date replaced by two fixed ones (a day
under 10, which the C format pads with a space, and one over 9), so that
nothing depends on today's date.
"""

import os
import re
import xml.etree.ElementTree as ElementTree

import pytest

import ossec
from conftest import delete_netns, new_netns, stock_name
from ossec_ar.cli import outcome_line
from ossec_ar.exits import NOT_OURS

# One per run, in turn: what execd may hand down.
ENVIRONMENTS = [
    {"LANG": "C", "TZ": "UTC"},
    {"LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8", "TZ": "Europe/Berlin"},
    {"LANG": "en_US.UTF-8", "TZ": "America/New_York"},
    {"LANG": "fr_FR.UTF-8", "TZ": "Asia/Dubai"},        # tzdata writes +04: logged as UTC
    {"LANG": "ja_JP.UTF-8", "TZ": "Asia/Kolkata"},
]
FIXED_DATES = ["Mon Jan  9 13:52:29 CET 2012", "Sat Dec 19 03:04:05 UTC 2026"]
C_DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "
                    r"[A-Za-z]+ [0-9]{4} ")
BIN = "/var/ossec/active-response/bin/"
FORGED = ("x 1.1 600\nThu Jan 19 13:52:29 CET 2012 " + BIN
          + "firewall-drop.sh delete - 192.0.2.9 1.1 1")
EMPTY_TOOLS = "[system]\ntool_dirs = %s\n"
ALLOWLIST = "[allowlist]\naddresses = 192.0.2.10, 2001:db8:a::/48\n"
LOCK_WAIT = "[firewall-drop]\nlock_wait = 1\n[host-deny]\nlock_wait = 1\n"
PREFIX = "[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"


class Run:
    """One run of an installed program and the two lines it logged."""

    def __init__(self, key, program, args, status, code, setup=None):
        self.key = key
        self.program = program
        self.args = args
        self.status = status
        self.code = code
        self.setup = setup or {}
        self.invocation = self.outcome = None

    @property
    def action(self):
        return self.args[0] if self.args and self.args[0] in ("add", "delete") else "-"

    @property
    def address(self):
        return self.args[2] if len(self.args) > 2 else "-"


def _four(program, address, tag):
    args = ["-", address, "1326977549.1358625", "5712"]
    return [Run("%s-%s-blocked" % (tag, address), program, ["add"] + args, "blocked", 0),
            Run("%s-%s-already" % (tag, address), program, ["add"] + args,
                "already blocked", 0),
            Run("%s-%s-unblocked" % (tag, address), program, ["delete"] + args,
                "unblocked", 0),
            Run("%s-%s-notblocked" % (tag, address), program, ["delete"] + args,
                "was not blocked", 0)]


def scenarios():
    fw, hd, rn = "firewall-drop.sh", "host-deny.sh", "route-null.sh"
    ids = ["1.1", "5712"]
    runs = []
    for address in ("192.0.2.7", "2001:db8::7"):
        runs += _four(fw, address, "fw") + _four(hd, address, "hd")
    # route-null.sh, the stock name of the route backend: a real blackhole
    # route in the namespace; its invocation lines are rules 605 and 606.
    for address in ("192.0.2.13", "2001:db8::13"):
        runs += _four(rn, address, "rn")
    runs += [
        Run("rn-locked", rn, ["add", "-", "192.0.2.14"] + ids, "failed", 75,
            {"config": LOCK_WAIT, "lock": "firewall-drop"}),
        # The other names we install: the same outcome lines.
        Run("fw-without-sh", "firewall-drop", ["add", "-", "198.51.100.7"] + ids, "blocked", 0),
        Run("hd-own-name", "ossec-ar-host-deny", ["add", "-", "198.51.100.8"] + ids,
            "blocked", 0),
        Run("fw-loopback", fw, ["add", "-", "127.0.0.1"] + ids, "refused", 65),
        Run("fw-not-ip", fw, ["add", "-", "not-an-ip"] + ids, "refused", 65),
        Run("fw-forged", fw, ["add", "-", FORGED] + ids, "refused", 65),
        Run("fw-allowlisted", fw, ["add", "-", "192.0.2.10"] + ids, "refused", 65,
            {"config": ALLOWLIST}),
        Run("fw-unknown-action", fw, ["block", "-", "192.0.2.7"] + ids, "usage", 64),
        Run("fw-no-address", fw, ["add"], "usage", 64),
        Run("fw-broken-config", fw, ["add", "-", "192.0.2.7"] + ids, "failed", 78,
            {"config": "[firewall-drop]\nbackend = carrier-pigeon\n"}),
        Run("hd-loopback-v6", hd, ["add", "-", "::1"] + ids, "refused", 65),
        Run("hd-allowlisted-v6", hd, ["add", "-", "2001:db8:a::1"] + ids, "refused", 65,
            {"config": ALLOWLIST}),
        Run("fw-no-tool", fw, ["add", "-", "192.0.2.8"] + ids, "failed", 69,
            {"empty_tools": True}),
        Run("fw-no-tool-v6", fw, ["add", "-", "2001:db8::8"] + ids, "failed", 69,
            {"empty_tools": True}),
        # The ledger says iptables holds it, and iptables is not there.
        Run("fw-no-tool-delete", fw, ["delete", "-", "192.0.2.8"] + ids, "failed", 69,
            {"empty_tools": True, "owned": ("firewall-drop", "192.0.2.8", "iptables")}),
        Run("fw-locked", fw, ["add", "-", "192.0.2.8"] + ids, "failed", 75,
            {"config": LOCK_WAIT, "lock": "firewall-drop"}),
        Run("fw-locked-v6", fw, ["delete", "-", "2001:db8::8"] + ids, "failed", 75,
            {"config": LOCK_WAIT, "lock": "firewall-drop"}),
        Run("hd-read-only", hd, ["add", "-", "192.0.2.9"] + ids, "failed", 74,
            {"etc_readonly": True}),
        Run("hd-read-only-v6", hd, ["add", "-", "2001:db8::9"] + ids, "failed", 74,
            {"etc_readonly": True}),
        Run("hd-locked", hd, ["add", "-", "192.0.2.9"] + ids, "failed", 75,
            {"config": LOCK_WAIT, "lock": "host-deny"}),
        # ipv6_prefix: the /64 blocked for ::7, found blocked for ::8, kept
        # by the delete of ::7 for ::8, lifted by the delete of ::8.
        Run("fw-prefix-blocked", fw, ["add", "-", "2001:db8:1:2::7"] + ids, "blocked", 0,
            {"config": PREFIX}),
        Run("fw-prefix-already", fw, ["add", "-", "2001:db8:1:2::8"] + ids, "already blocked",
            0, {"config": PREFIX}),
        Run("fw-prefix-kept", fw, ["delete", "-", "2001:db8:1:2::7"] + ids, "unblocked", 0,
            {"config": PREFIX}),
        Run("fw-prefix-lifted", fw, ["delete", "-", "2001:db8:1:2::8"] + ids, "unblocked", 0,
            {"config": PREFIX}),
        # unblock.sh, as agent_control runs it, and as a rule would.
        Run("ub-unblocked", "unblock.sh", ["add", "-", "198.51.100.7", "(from_the_server)",
                                           "(no_rule_id)"], "unblocked", 0),
        Run("ub-nothing", "unblock.sh", ["add", "-", "192.0.2.7"] + ids, "was not blocked", 0),
        Run("ub-locked", "unblock.sh", ["add", "-", "2001:db8::9"] + ids, "failed", 75,
            {"config": LOCK_WAIT, "lock": "host-deny"}),
        Run("ub-loopback", "unblock.sh", ["add", "-", "127.0.0.1"] + ids, "refused", 65),
        Run("ub-wazuh-name", "unblock", ["add", "-", "not-an-ip"] + ids, "refused", 65),
    ]
    # Every stock name of one firewall: its invocation line, and a refusal
    # that needs no firewall at all.
    runs += [Run("name-" + name, name, ["add", "-", "127.0.0.1"] + ids, "refused", 65)
             for name in ("firewalld-drop.sh", "nftables-drop.sh", "route-null.sh", "pf.sh",
                          "ipfw.sh", "ipfw_mac.sh", "npf.sh", "firewalld-drop", "route-null",
                          "pf", "ipfw", "npf")]
    return runs


def _run(install, netns, run, env, empty_tools):
    config = run.setup.get("config")
    if run.setup.get("empty_tools"):
        config = EMPTY_TOOLS % empty_tools
    if config:
        install.configure_ossec_ar(config)
    argv = [BIN + run.program] + run.args
    if "owned" in run.setup:
        from ossec_ar import ledger
        program, address, where = run.setup["owned"]
        assert ledger.record(install.path(), program, "add", address, where) is None
    if "lock" in run.setup:
        path = install.path("var", "ossec-ar", "%s.lock" % run.setup["lock"])
        with ossec.held_lock(path):
            result = install.run(argv, netns=netns, env=env)
    else:
        result = install.run(argv, netns=netns, env=env,
                             etc_readonly=run.setup.get("etc_readonly", False))
    if config:
        os.unlink(install.path("etc", "ossec-ar.conf"))
    assert (result.returncode, result.stdout, result.stderr) == (run.code, "", ""), run.key
    run.invocation, run.outcome = install.ar_log()[-2:]


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    try:
        stock = ossec.Ossec(tmp_path_factory.mktemp("ossec-stock"))
        ours = ossec.Ossec(tmp_path_factory.mktemp("ossec-ours"))
    except ossec.Missing as error:
        pytest.fail(str(error))
    for install in (stock, ours):
        install.install_ossec_ar()
        # OSSEC installs a route-null.sh; make install keeps it as .stock
        stock_name(install.path("active-response", "bin"), "route-null.sh")
    ours.install_rules()
    return stock, ours


@pytest.fixture(scope="module")
def runs(installs, tmp_path_factory):
    """Every scenario, run for real in the install with our rules."""
    _, ours = installs
    empty_tools = str(tmp_path_factory.mktemp("empty-tools"))
    os.chmod(empty_tools, 0o755)
    netns = new_netns("nft")
    try:
        done = scenarios()
        for number, run in enumerate(done):
            _run(ours, netns, run, ENVIRONMENTS[number % len(ENVIRONMENTS)], empty_tools)
    finally:
        delete_netns(netns)
    return done


def redated(line):
    """*line* as written, then with each of the fixed dates."""
    assert C_DATE.match(line), line
    return [line] + [C_DATE.sub(date + " ", line, count=1) for date in FIXED_DATES]


def outcome_events(install, runs):
    """(run, event) for every outcome line and its redated copies."""
    lines = [(run, line) for run in runs for line in redated(run.outcome)]
    events = install.logtest([line for _, line in lines])
    return [(run, event) for (run, _), event in zip(lines, events)]


def expected_fields(run, line):
    """The fields of an outcome line, from the README's format
    ``<argv0>: <action> <address>: <status>[: <detail>] (exit <code>)``."""
    head = "%s%s: %s %s: %s" % (BIN, run.program, run.action, _escaped(run.address),
                                 run.status)
    tail = " (exit %d)" % run.code
    rest = line.split(head, 1)[1]
    assert rest.endswith(tail), line
    detail = rest[:-len(tail)]
    assert detail == "" or detail.startswith(": "), line
    return {"program": run.program, "action": run.action, "srcip": _escaped(run.address),
            "status": run.status, "extra_data": detail[2:], "id": str(run.code)}


def _escaped(address):
    return address.replace(" ", "\\x20").replace("\n", "\\x0a")


def test_analysisd_and_logtest_accept_our_files(installs):
    _, ours = installs
    for program in ("ossec-analysisd", "ossec-logtest"):
        result = ours.run([ours.prefix + "/bin/" + program, "-t"])
        assert result.returncode == 0, (program, result.stderr)
        assert "ERROR" not in result.stderr, (program, result.stderr)


def test_failed_lines_raise_100611_with_every_field(installs, runs):
    _, ours = installs
    failed = [run for run in runs if run.status == "failed"]
    assert {run.code for run in failed} == {69, 74, 75, 78}
    assert {run.program for run in failed} == {"firewall-drop.sh", "host-deny.sh",
                                               "route-null.sh", "unblock.sh"}
    for run, event in outcome_events(ours, failed):
        assert (event.rule, event.level, event.decoder) == (100611, 10, "ar_log"), event
        assert event.fields == expected_fields(run, event.full), event
        assert event.fields["extra_data"], event             # the reason is there


def test_refused_lines_raise_100612_with_every_field(installs, runs):
    _, ours = installs
    refused = [run for run in runs if run.status in ("usage", "refused")]
    # A usage error says usage, an address we never block says refused.
    assert {(run.status, run.code) for run in refused} == {("usage", 64), ("refused", 65)}
    for run, event in outcome_events(ours, refused):
        assert (event.rule, event.level, event.decoder) == (100612, 5, "ar_log"), event
        assert event.fields == expected_fields(run, event.full), event


# The rule and level of each successful outcome, and the group that names it
# in the alert's header (ossec-ar fleet reads states from those groups).
SUCCESS_RULES = {"blocked": (100613, 2), "already blocked": (100613, 2),
                 "unblocked": (100614, 2), "was not blocked": (100614, 2)}


def test_successful_lines_raise_logged_rules_below_the_mail_level(installs, runs):
    """Every outcome reaches alerts.log: blocked and already blocked raise
    100613, unblocked and was not blocked 100614, both at level 2, logged
    by OSSEC's default log_alert_level (1), below its default
    email_alert_level (7)."""
    _, ours = installs
    done = [run for run in runs if run.code == 0]
    assert {run.status for run in done} == set(SUCCESS_RULES)
    assert {run.program for run in done} >= {"firewall-drop.sh", "host-deny.sh",
                                              "route-null.sh", "unblock.sh"}
    for run, event in outcome_events(ours, done):
        assert (event.rule, event.level, event.decoder) == SUCCESS_RULES[run.status] + (
            "ar_log",), event
        assert 1 <= event.level < 7, event
        assert event.fields == expected_fields(run, event.full), event


def test_every_outcome_raises_a_logged_rule_of_ours(installs, runs):
    """No outcome line stops at 100610 (level 0, never logged)."""
    _, ours = installs
    for run, event in outcome_events(ours, runs):
        assert event.rule in (100611, 100612, 100613, 100614, 100615), (run.key, event)
        assert event.level >= 1, (run.key, event)


def test_the_rules_groups_name_each_outcome(installs):
    """The groups of our rules, as the installed local_rules.xml defines
    them: the alerts' header carries them, and fleet reads them."""
    _, ours = installs
    with open(ours.path("rules", "local_rules.xml"), "rb") as f:
        text = f.read().decode("utf-8")
    start = text.index("<group name=\"ossec,active_response,ossec-ar,\">")
    # Ours is appended last: its group ends the file.
    group = ElementTree.fromstring(text[start:text.rindex("</group>") + len("</group>")])
    groups = {int(rule.get("id")): (int(rule.get("level")),
                                    (rule.findtext("group") or "").strip())
              for rule in group.findall("rule")}
    assert groups == {100610: (0, ""), 100611: (10, "active_response_failed,"),
                      100612: (5, "active_response_refused,"),
                      100613: (2, "active_response_blocked,"),
                      100614: (2, "active_response_unblocked,"),
                      100615: (2, "active_response_left,")}


# What each outcome of a prefix block says after its status word: the
# decoder takes it whole as extra_data, the address stays srcip.
PREFIX_DETAILS = {
    "fw-prefix-blocked": "2001:db8:1:2::/64 in nftables table inet ossec, set v6p64",
    "fw-prefix-already": "by 2001:db8:1:2::/64 in nftables table inet ossec, set v6p64",
    "fw-prefix-kept": "2001:db8:1:2::7; prefix 2001:db8:1:2::/64 kept for 1 other (nftables)",
    "fw-prefix-lifted": "2001:db8:1:2::/64 from nftables table inet ossec, set v6p64"}


def test_prefix_outcomes_decode_as_any_with_the_address_as_srcip(installs, runs):
    """ipv6_prefix's outcome lines name the prefix only after the status:
    blocked and already blocked raise 100613, the delete that keeps the
    prefix for another address and the one that lifts it 100614, each with
    the address it was run for as srcip, never the prefix."""
    _, ours = installs
    done = [run for run in runs if run.key in PREFIX_DETAILS]
    assert len(done) == 4
    for run, event in outcome_events(ours, done):
        assert (event.rule, event.fields["status"], event.fields["srcip"]) == (
            SUCCESS_RULES[run.status][0], run.status, run.address), event
        assert event.fields["extra_data"].split(" (repaired: ")[0] == \
            PREFIX_DETAILS[run.key], event
        assert event.fields == expected_fields(run, event.full), event


# "not ours, left": a delete (or unblock.sh) that found the block is someone
# else's, as the ledger says (its add found the address already blocked by
# something not ours), and left it.  The lines are made here by the
# programs' own writer of outcome lines (cli.outcome_line), with the status
# word they use: (program, action, address, detail).
NOT_OURS_LINES = [
    ("firewall-drop.sh", "delete", "198.51.100.77",
     "iptables chain OSSEC: blocked by someone else (found by the add of "
     "1326977549.1358625), left in place"),
    ("firewall-drop.sh", "delete", "2001:db8::77", "nftables table inet ossec, set v6: "
     "someone else's, left"),
    ("host-deny.sh", "delete", "192.0.2.77", "/etc/hosts.deny: the line is not ours"),
    ("route-null.sh", "delete", "192.0.2.78", "blackhole route 192.0.2.78/32 in table "
     "main, not ours, left (exit 0) x"),
    ("unblock.sh", "add", "192.0.2.79", "firewall-drop: not ours, left: iptables chain "
     "OSSEC; host-deny: not ours, left: /etc/hosts.deny"),
    ("firewall-drop", "delete", "192.0.2.80", ""),
    ("ossec-ar-host-deny", "delete", "2001:db8::80", "/etc/hosts.deny"),
]


def not_ours_lines():
    """(fields expected, line) for each of NOT_OURS_LINES on each fixed date."""
    found = []
    for program, action, address, detail in NOT_OURS_LINES:
        line = outcome_line(BIN + program, action, address, NOT_OURS, detail, 0)
        fields = {"program": program, "action": action, "srcip": address,
                  "status": "not ours, left", "extra_data": detail, "id": "0"}
        found += [(fields, "%s %s" % (date, line)) for date in FIXED_DATES]
    return found


def test_not_ours_left_raises_100615_with_every_field(installs):
    """A delete that left a block not ours raises 100615 (level 2, logged,
    no mail), whose status field is the whole word, its comma and space
    included; the detail may hold the word again."""
    stock, ours = installs
    expected = not_ours_lines()
    events = ours.logtest([line for _, line in expected])
    for (fields, line), event in zip(expected, events):
        assert (event.rule, event.level, event.decoder) == (100615, 2, "ar_log"), event
        assert event.fields == fields, event
        assert event.fields["status"] == "not ours, left"
    # Without our files: a bare ar_log line, as every outcome line.
    for event in stock.logtest([line for _, line in expected]):
        assert (event.rule, event.level, event.fields) == (600, 0, {}), event


def test_a_status_only_like_not_ours_left_is_no_outcome(installs):
    """Our decoder reads only the statuses it knows: near misses of the new
    word decode to nothing, as an unknown status always did.  (OSSEC
    compiles decoders' and rules' PCRE2 caseless, at 7f06fe0: a change of
    case alone is no miss; fleet reads only the word as written.)"""
    _, ours = installs
    lines = ["%s %sfirewall-drop.sh: delete 192.0.2.77: %s: iptables chain OSSEC (exit 0)"
             % (FIXED_DATES[0], BIN, status)
             for status in ("not ours", "not ours left", "not ours,  left", "not ours, lef",
                            "not yours, left")]
    for event in ours.logtest(lines):
        assert (event.rule, event.level, event.fields) == (600, 0, {}), event


def test_outcome_lines_are_never_invocations_for_the_stock_rules(installs, runs):
    """Without our files, an outcome line is a bare ar_log line (rule 600,
    no fields): the colon after the program keeps the stock regex off it."""
    stock, _ = installs
    for _, event in outcome_events(stock, runs):
        assert (event.rule, event.level, event.fields) == (600, 0, {}), event


STOCK_RULES = {("firewall-drop.sh", "add"): 601, ("firewall-drop.sh", "delete"): 602,
               ("host-deny.sh", "add"): 603, ("host-deny.sh", "delete"): 604,
               ("route-null.sh", "add"): 605, ("route-null.sh", "delete"): 606}


def test_stock_rules_601_to_606_fire_exactly_as_without_our_files(installs, runs):
    stock, ours = installs
    # Also route-null.sh lines written here (our runs of it are in *runs*),
    # for IPv6 and with C dates the runs do not have.
    route_null = ["%s %sroute-null.sh %s - %s 1326977549.1358625 5712" % (date, BIN, action,
                                                                          address)
                  for date in FIXED_DATES for action in ("add", "delete")
                  for address in ("192.0.2.11", "2001:db8::11")]
    # Lines ar_log's prematch takes but its regex does not: no fields either way.
    odd = ["%s %sfirewall-drop.sh add - 192.0.2.12 (from_the_server) (no_rule_id)"
           % (FIXED_DATES[0], BIN),
           "%s %shost-deny.sh" % (FIXED_DATES[1], BIN)]
    ours_lines = [line for run in runs for line in redated(run.invocation)]
    lines = ours_lines + route_null + odd
    with_ours, without = ours.logtest(lines), stock.logtest(lines)
    for mine, theirs in zip(with_ours, without):
        assert (mine.rule, mine.level, mine.decoder, mine.fields) == (
            theirs.rule, theirs.level, theirs.decoder, theirs.fields), (mine, theirs)

    # And they are the right rules, with the address given.  An unknown
    # action or no address is no block, for the stock rules as for us; nor
    # is a name they do not know (firewall-drop without .sh).
    events = iter(with_ours)
    for run in runs:
        for event in [next(events) for _ in FIXED_DATES + [None]]:
            if run.key in ("fw-unknown-action", "fw-no-address", "ub-unblocked"):
                # (agent_control's "(from_the_server) (no_rule_id)" is no
                # alert id and no rule id: ar_log's regex reads nothing.)
                assert event.rule == 600, event
                continue
            rule = STOCK_RULES.get((run.program, run.action), 600)
            assert (event.rule, event.level) == (rule, 3 if rule != 600 else 0), event
            assert event.fields["action"] == run.program, event
            assert event.fields["srcip"] == _escaped(run.address), event
    for line, event in zip(route_null, events):
        address, action = line.split()[-3], line.split()[-5]
        assert (event.rule, event.fields["srcip"]) == (
            STOCK_RULES["route-null.sh", action], address), event
    assert [(event.rule, event.fields) for event in events] == [(600, {}), (600, {})]


def test_a_forged_argument_stays_one_field(installs, runs):
    """An argument carrying a newline and a whole invocation line is one
    escaped token of one line: OSSEC sees the add, never the delete."""
    _, ours = installs
    (run,) = [run for run in runs if run.key == "fw-forged"]
    assert "\n" not in run.invocation + run.outcome
    invocation, outcome = ours.logtest([run.invocation, run.outcome])
    assert invocation.rule == 601
    assert invocation.fields["srcip"].startswith("x\\x201.1\\x20600\\x0aThu")
    assert (outcome.rule, outcome.fields["srcip"]) == (100612, invocation.fields["srcip"])
