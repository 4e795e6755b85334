"""The Wazuh 4.2+ protocol (JSON lines, check_keys), played by tests/execd.py
against real iptables and real files in private namespaces."""

import json
import os
import re

import pytest

from execd import Execd, message
from test_hostdeny import BIND_ETC, Etc

WAZUH_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d active-response/bin/(\S+): (.*)$")
CHECK_KEYS = (b'{"version":1,"origin":{"name":"firewall-drop","module":"active-response"},'
              b'"command":"check_keys","parameters":{"keys":["192.0.2.7"]}}\n')


def execd_in(netns, install, name="firewall-drop"):
    return Execd(install.prefix, name, wrap=netns.prefix())


def logged(install):
    """[(program, message)] of the log, every line in Wazuh's format."""
    lines = install.log_lines()
    matches = [WAZUH_LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m.groups() for m in matches]


def test_add_with_continue_then_delete(netns, install):
    execd = execd_in(netns, install)
    request = message("add")
    run = execd.add(request, "continue")
    assert (run.code, run.reply, run.rest, run.stderr) == (0, CHECK_KEYS, b"", b"")
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in netns.rules()
    run = execd.delete(message("delete"))
    assert (run.code, run.rest, run.stderr) == (0, b"", b"")     # no exchange on delete
    assert netns.rules() == ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]
    assert logged(install) == [
        ("firewall-drop", request.decode()),
        ("firewall-drop", "add 192.0.2.7: blocked: iptables chain OSSEC (repaired: created "
                          "chain OSSEC, jump from INPUT, jump from FORWARD) (rule 5712, "
                          "alert 1326977549.1358625) (exit 0)"),
        ("firewall-drop", message("delete").decode()),
        ("firewall-drop", "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC "
                          "(rule 5712, alert 1326977549.1358625) (exit 0)")]


def test_abort_means_done_without_acting(nft_netns, install):
    run = execd_in(nft_netns, install).add(message("add"), "abort")
    assert (run.code, run.reply) == (0, CHECK_KEYS)
    assert nft_netns.rules() == []
    assert logged(install)[1][1] == (
        "add 192.0.2.7: already blocked: execd answered abort to check_keys: its block of "
        "192.0.2.7 is still pending (rule 5712, alert 1326977549.1358625) (exit 0)")


@pytest.mark.parametrize("reply_with,code,reason", [
    ("frobnicate", 64, "execd answered frobnicate to check_keys; expected continue or abort"),
    (b"not json", 64, "input is not valid JSON"),
    (b'{"version":"1","origin":{},"command":"continue","parameters":{}}', 64,
     "'version' is not a number"),
    ("close", 64, "no answer to check_keys: end of input"),
])
def test_any_other_answer_refuses(nft_netns, install, reply_with, code, reason):
    run = execd_in(nft_netns, install).add(message("add"), reply_with)
    assert (run.code, run.reply) == (code, CHECK_KEYS)
    assert nft_netns.rules() == []
    outcome = logged(install)[1][1]
    assert outcome.startswith("add 192.0.2.7: refused: " + reason)
    assert outcome.endswith("(exit %d)" % code)


def test_no_answer_ends_within_the_bound(nft_netns, install):
    run = execd_in(nft_netns, install).add(message("add"), None)
    assert (run.code, run.reply) == (75, CHECK_KEYS)
    assert 5 <= run.seconds < 10
    assert nft_netns.rules() == []
    assert logged(install)[1][1] == (
        "add 192.0.2.7: failed: no answer to check_keys from execd within 5s (rule 5712, "
        "alert 1326977549.1358625) (exit 75)")


def test_silent_execd_ends_within_the_bound(nft_netns, install):
    # No request line at all, stdin left open.
    import subprocess
    import time
    proc = subprocess.Popen(nft_netns.prefix() + ["active-response/bin/firewall-drop"],
                            cwd=install.prefix, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.monotonic()
    assert proc.wait(20) == 75
    assert 5 <= time.monotonic() - start < 10
    proc.stdin.close()
    assert logged(install) == [
        ("firewall-drop", "(no request read)"),
        ("firewall-drop", "- -: failed: no request from execd within 5s (exit 75)")]


def test_wazuh_5_commands_and_source_ip(nft_netns, install):
    execd = execd_in(nft_netns, install)
    run = execd.add(message("enable", where=("source", "ip")), "continue")
    assert (run.code, run.reply) == (0, CHECK_KEYS)
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    run = execd.delete(message("disable", where=("source", "ip")))
    assert run.code == 0
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" not in nft_netns.rules()


def test_windows_event_address(nft_netns, install):
    run = execd_in(nft_netns, install).add(
        message("add", srcip="2001:db8::7", where=("data", "win", "eventdata",
                                                     "ipAddress")), "continue")
    assert run.code == 0
    assert json.loads(run.reply)["parameters"]["keys"] == ["2001:db8::7"]
    assert "-A OSSEC -s 2001:db8::7/128 -j DROP" in nft_netns.rules("ip6tables")


def test_the_sh_name_serves_both_forms(nft_netns, install):
    run = execd_in(nft_netns, install, "firewall-drop.sh").add(message("add"), "continue")
    assert run.code == 0
    assert json.loads(run.reply)["origin"]["name"] == "firewall-drop.sh"
    assert nft_netns.run([install.program(), "delete", "-", "192.0.2.7"]).returncode == 0
    assert nft_netns.rules() == ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]


def test_host_deny_through_the_protocol(etc_copy, install):
    etc = Etc(etc_copy, install)
    etc.write(b"# admin\n")
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh"]
    execd = Execd(install.prefix, "host-deny", wrap=wrap,
                  env=dict(os.environ, ETC=etc_copy))
    run = execd.add(message("add"), "continue")
    assert run.code == 0
    assert json.loads(run.reply)["origin"] == {"name": "host-deny",
                                               "module": "active-response"}
    assert etc.read() == b"# admin\nALL:192.0.2.7\n"
    assert execd.delete(message("delete")).code == 0
    assert etc.read() == b"# admin\n"
    assert [line[1].split(" (rule")[0] for line in logged(install)[1::2]] == [
        "add 192.0.2.7: blocked: /etc/hosts.deny", "delete 192.0.2.7: unblocked: "
                                                   "/etc/hosts.deny"]


def raw(text):
    return text.encode()


HOSTILE_JSON = [
    # (request line, exit code, reason at the start of the outcome's detail)
    (b"[" * 30000 + b"]" * 30000, 64, "input is not valid JSON"),
    (b"x" * (64 * 1024 + 10), 64, "request is longer than 65536 bytes"),
    (message("add", srcip="1" * 60000), 65, "not an IPv4 address"),
    (b'{"version":1,"origin":{},"command":"add","parameters":{"alert":{"data":{"srcip":'
     b'"caf\xe9"}}}}', 64, "input is not UTF-8"),
    (message("add")[:-20], 64, "input is not valid JSON"),           # truncated
    (b"", 64, "input is not valid JSON"),
    (b"[]", 64, "input is not a JSON object"),
    (b"null", 64, "input is not a JSON object"),
    (raw('{"version":"1","origin":{},"command":"add","parameters":{}}'), 64,
     "'version' is not a number"),
    (raw('{"version":true,"origin":{},"command":"add","parameters":{}}'), 64,
     "'version' is not a number"),
    (raw('{"version":1,"command":"add","parameters":{}}'), 64, "'origin' is not an object"),
    (raw('{"version":1,"origin":[],"command":"add","parameters":{}}'), 64,
     "'origin' is not an object"),
    (raw('{"version":1,"origin":{},"command":7,"parameters":{}}'), 64,
     "'command' is not a string"),
    (raw('{"version":1,"origin":{},"command":"add","parameters":"x"}'), 64,
     "'parameters' is not an object"),
    (raw('{"version":1,"origin":{},"command":"flush","parameters":{}}'), 64,
     "unknown command flush"),
    (raw('{"version":1,"origin":{},"command":"add","parameters":{}}'), 64,
     "'parameters.alert' is not an object"),
    (raw('{"version":1,"origin":{},"command":"add","parameters":{"alert":{"data":{}}}}'),
     65, "no address in the alert (looked at alert.data.srcip, "
         "alert.data.win.eventdata.ipAddress, alert.source.ip)"),
    (raw('{"version":1,"origin":{},"command":"add","parameters":{"alert":{"data":'
         '{"srcip":3221225991}}}}'), 64, "'alert.data.srcip' is not a string"),
    (message("add", srcip="192.0.2.7; reboot"), 65, "not an IP address"),
    (message("add", srcip="$(touch /tmp/pwned)"), 65, "not an IP address"),
    (message("add", srcip="-j"), 65, "not an IP address (starts with '-')"),
    (message("add", srcip="127.0.0.1"), 65, "loopback address"),
    (message("add", srcip="192.0.2.7\n"), 65, "not an IP address"),
    (raw('{"version":1,"origin":{},"command":"add\\u0000","parameters":{}}'), 64,
     "unknown command add\\x00 (expected"),
]


@pytest.mark.parametrize("line,code,reason", HOSTILE_JSON,
                         ids=[str(i) for i in range(len(HOSTILE_JSON))])
def test_hostile_json_is_refused_and_changes_nothing(nft_netns, install, line, code,
                                                     reason):
    run = execd_in(nft_netns, install).add(line, "continue", timeout=15)
    assert (run.code, run.reply, run.stderr) == (code, None, b"")   # nothing sent
    assert nft_netns.rules() == [] and nft_netns.rules("ip6tables") == []
    assert not os.path.exists("/tmp/pwned")
    lines = install.log_lines()
    assert len(lines) == 2 and all(len(line) < 70000 for line in lines)
    program, outcome = WAZUH_LINE.match(lines[1]).groups()
    assert ": refused: " + reason in outcome
    assert outcome.endswith("(exit %d)" % code)
