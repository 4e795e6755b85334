"""The Wazuh protocols (JSON lines, check_keys): 4.x (4.2 to 4.14) and 5.x,
played by tests/execd.py as Wazuh's C code does, against real iptables and
real files in private namespaces."""

import json
import os
import re
import subprocess
import time

import pytest

from execd import (CLOSE, SILENT, Execd, alert, from_manager_4, from_manager_5, printed)
from test_hostdeny import BIND_ETC, Etc
from test_iptables import said


@pytest.fixture
def install(iptables_install):
    """These tests read the iptables layout, so they choose it: ``auto``
    takes a set layout wherever nft or ipset is installed."""
    return iptables_install


WAZUH_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d active-response/bin/(\S+): (.*)$")
# The manager's ar_log_json decoder: this prematch, then JSON_Decoder on the
# rest of the line (ruleset/decoders/0010-active-response_decoders.xml @ v4.9.0).
AR_LOG_JSON = re.compile(rb"^\d\d\d\d/\d\d/\d\d \d\d:\d\d:\d\d active-response/bin/\S+: ")
CHECK_KEYS = (b'{"version":1,"origin":{"name":"firewall-drop","module":"active-response"},'
              b'"command":"check_keys","parameters":{"keys":["192.0.2.7"]}}\n')
EMPTY_CHAIN = ["-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"]
PROGRAM = "active-response/bin/firewall-drop"


def execd_in(netns, install, version="4", **kwargs):
    return Execd(install.prefix, version, wrap=netns.prefix(), **kwargs)


def logged(install):
    """[(program, message)] of the log, every line in Wazuh's format."""
    lines = install.log_lines()
    matches = [WAZUH_LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m.groups() for m in matches]


def log_bytes(install):
    with open(install.log_file, "rb") as f:
        return f.read()


def with_command(line, word):
    """*line* (a request) with its command replaced, as execd answers."""
    message = json.loads(line.decode("utf-8"))
    message["command"] = word
    return printed(message)


def raw(text):
    return text.encode()


def message(command="add", srcip="192.0.2.7", **fields):
    """A 4.x request line, printed as execd prints it."""
    request = from_manager_4(alert(srcip, **fields))
    request["command"] = command
    request["origin"]["module"] = "wazuh-execd"
    request["parameters"]["program"] = PROGRAM
    return printed(request)


def test_a_person_at_a_terminal_sees_the_outcome_line_and_stdout_is_unchanged(netns,
                                                                                install):
    """The Wazuh form run by hand, the request piped in and stderr a
    terminal: stdout carries the same check_keys line as under execd, and
    the terminal shows only the log's outcome line, without its date."""
    from test_cli import dateless, on_a_terminal
    request = message()
    lines = request + b"\n" + with_command(request, "continue") + b"\n"
    code, out, shown = on_a_terminal(netns.prefix() + [install.program("firewall-drop")],
                                     input=lines)
    assert (code, out) == (0, CHECK_KEYS)
    last = install.log_lines()[-1]
    assert ": add 192.0.2.7: blocked: iptables chain OSSEC" in last
    assert shown.splitlines() == [dateless(last, install)]
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in netns.rules()


# -- Wazuh 4.x --------------------------------------------------------------

def test_4x_add_with_continue_then_delete(netns, install):
    execd = execd_in(netns, install)
    run = execd.run(from_manager_4(alert()))
    assert (run.code, run.reply, run.rest, run.stderr) == (0, CHECK_KEYS, b"", b"")
    assert run.answer == with_command(run.request, "continue")
    assert run.queued == with_command(run.request, "delete")
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in netns.rules()
    [delete] = execd.expire()
    assert (delete.code, delete.rest, delete.stderr) == (0, b"", b"")   # no exchange
    assert netns.rules() == EMPTY_CHAIN
    assert logged(install) == [
        ("firewall-drop", run.request.decode()),
        ("firewall-drop", "add 192.0.2.7: blocked: iptables chain OSSEC (repaired: created "
                          "chain OSSEC, jump from INPUT, jump from FORWARD) (rule 5712, "
                          "alert 1326977549.1358625) (exit 0)"),
        ("firewall-drop", delete.request.decode()),
        ("firewall-drop", "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC "
                          "(rule 5712, alert 1326977549.1358625) (exit 0)")]


def test_4x_request_is_what_execd_builds(nft_netns, install):
    run = execd_in(nft_netns, install).run(from_manager_4(alert()))
    request = json.loads(run.request)
    assert list(request) == ["version", "origin", "command", "parameters"]
    assert request["origin"] == {"name": "node01", "module": "wazuh-execd"}
    assert request["command"] == "add"
    assert list(request["parameters"]) == ["extra_args", "alert", "program"]
    assert request["parameters"]["program"] == PROGRAM


def test_4x_abort_means_done_without_acting(nft_netns, install):
    execd = execd_in(nft_netns, install)
    assert execd.run(from_manager_4(alert())).code == 0
    rules = nft_netns.rules()
    again = execd.run(from_manager_4(alert(alert_id="1326977600.2000")))
    assert (again.code, again.reply) == (0, CHECK_KEYS)
    assert again.answer == with_command(again.request, "abort")
    assert again.queued is None and len(execd.pending) == 1
    assert nft_netns.rules() == rules
    assert logged(install)[3][1] == (
        "add 192.0.2.7: already blocked: execd answered abort to check_keys: its block of "
        "192.0.2.7 is still pending (rule 5712, alert 1326977600.2000) (exit 0)")
    assert [run.code for run in execd.expire()] == [0]
    assert nft_netns.rules() == EMPTY_CHAIN


@pytest.mark.parametrize("version,manager", [("4", lambda ip: from_manager_4(alert(ip))),
                                              ("5", lambda ip: from_manager_5(ip))])
def test_each_address_gets_its_own_key(nft_netns, install, version, manager):
    # What we answer in check_keys gives execd a key per address: a second
    # address is not taken for the first one's pending block.
    execd = execd_in(nft_netns, install, version)
    first, second = execd.run(manager("192.0.2.7")), execd.run(manager("192.0.2.8"))
    assert [first.code, second.code] == [0, 0]
    assert [key for key, _, _ in execd.pending] == ["firewall-drop-192.0.2.7",
                                                    "firewall-drop-192.0.2.8"]
    assert {"-A OSSEC -s 192.0.2.7/32 -j DROP",
            "-A OSSEC -s 192.0.2.8/32 -j DROP"} <= set(nft_netns.rules())
    assert [run.code for run in execd.expire()] == [0, 0]
    assert nft_netns.rules() == EMPTY_CHAIN


ADDRESSES = {"ipAddress": ("data", "win", "eventdata", "ipAddress"),
             "destinationIp": ("data", "win", "eventdata", "destinationIp"),
             "srcip": ("data", "srcip")}


@pytest.mark.parametrize("present,blocked", [
    # 4.9 and later: ipAddress, then destinationIp, then data.srcip.
    (("ipAddress", "destinationIp", "srcip"), "ipAddress"),
    (("destinationIp", "srcip"), "destinationIp"),
    (("ipAddress", "srcip"), "ipAddress"),
    # 4.2 reads data.srcip only, which is all that non-Windows alerts have.
    (("srcip",), "srcip"),
], ids=["all three", "destinationIp before srcip", "ipAddress before srcip", "4.2 srcip"])
def test_4x_address_lookup_order(nft_netns, install, present, blocked):
    addresses = {"ipAddress": "192.0.2.1", "destinationIp": "192.0.2.2", "srcip": "192.0.2.3"}
    value = alert(srcip=None)
    for name in present:
        node = value
        for key in ADDRESSES[name][:-1]:
            node = node.setdefault(key, {})
        node[ADDRESSES[name][-1]] = addresses[name]
    run = execd_in(nft_netns, install).run(from_manager_4(value))
    assert run.code == 0
    assert json.loads(run.reply)["parameters"]["keys"] == [addresses[blocked]]
    blocks = [rule for rule in nft_netns.rules() if rule.startswith("-A OSSEC -s")]
    assert blocks == ["-A OSSEC -s %s/32 -j DROP" % addresses[blocked]]


def test_4x_a_field_that_is_not_a_string_is_passed_over(nft_netns, install):
    # As cJSON_IsString does in get_srcip_from_json (4.9 and later).
    value = alert(srcip="192.0.2.3")
    value["data"]["win"] = {"eventdata": {"ipAddress": 3221225985, "destinationIp": None}}
    run = execd_in(nft_netns, install).run(from_manager_4(value))
    assert run.code == 0
    assert json.loads(run.reply)["parameters"]["keys"] == ["192.0.2.3"]


def test_4x_windows_ip_that_is_no_address_does_not_fall_back(nft_netns, install):
    # A logon from the machine itself has ipAddress "-": 4.9 takes it and
    # fails, 4.14 finds no address; neither blocks data.srcip.
    value = alert(srcip="192.0.2.3")
    value["data"]["win"] = {"eventdata": {"ipAddress": "-"}}
    run = execd_in(nft_netns, install).run(from_manager_4(value))
    assert (run.code, run.reply) == (65, None)
    assert run.queued is None
    assert nft_netns.rules() == []
    assert logged(install)[1][1].startswith("add -: refused: no address given")


def test_4x_windows_event_address_ipv6(nft_netns, install):
    run = execd_in(nft_netns, install).run(from_manager_4(alert(
        "2001:db8::7", where=("data", "win", "eventdata", "ipAddress"))))
    assert run.code == 0
    assert json.loads(run.reply)["parameters"]["keys"] == ["2001:db8::7"]
    assert "-A OSSEC -s 2001:db8::7/128 -j DROP" in nft_netns.rules("ip6tables")


# -- Wazuh 5.x --------------------------------------------------------------

def test_5x_enable_with_continue_then_disable(netns, install):
    execd = execd_in(netns, install, "5")
    run = execd.run(from_manager_5())
    assert run.request.endswith(b',"command":"enable"}')
    assert (run.code, run.reply, run.rest, run.stderr) == (0, CHECK_KEYS, b"", b"")
    assert run.answer == run.request[:-len(b'"enable"}')] + b'"continue"}'
    assert run.queued == run.request[:-len(b'"enable"}')] + b'"disable"}'
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in netns.rules()
    [disable] = execd.expire()
    assert (disable.code, disable.rest, disable.stderr) == (0, b"", b"")
    assert netns.rules() == EMPTY_CHAIN
    assert logged(install) == [
        ("firewall-drop", run.request.decode()),
        ("firewall-drop", "add 192.0.2.7: blocked: iptables chain OSSEC (repaired: created "
                          "chain OSSEC, jump from INPUT, jump from FORWARD) (rule -, "
                          "alert -) (exit 0)"),
        ("firewall-drop", disable.request.decode()),
        ("firewall-drop", "delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC "
                          "(rule -, alert -) (exit 0)")]


def test_5x_abort_means_done_without_acting(nft_netns, install):
    execd = execd_in(nft_netns, install, "5")
    assert execd.run(from_manager_5()).code == 0
    rules = nft_netns.rules()
    again = execd.run(from_manager_5())
    assert (again.code, again.reply) == (0, CHECK_KEYS)
    assert again.answer.endswith(b',"command":"abort"}') and again.queued is None
    assert nft_netns.rules() == rules
    assert logged(install)[3][1].startswith("add 192.0.2.7: already blocked: execd "
                                            "answered abort to check_keys")


def test_5x_stateless_queues_no_disable(nft_netns, install):
    execd = execd_in(nft_netns, install, "5")
    run = execd.run(from_manager_5(kind="stateless", timeout=None))
    assert (run.code, run.reply, run.queued) == (0, CHECK_KEYS, None)
    assert run.answer.endswith(b',"command":"continue"}')
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    assert execd.pending == []


def test_5x_document_with_its_own_command_is_read_as_cjson_reads_it(nft_netns, install):
    # execd appends "command":"enable" after the document's own member;
    # Wazuh's programs read the first one (cJSON), and so do we: nothing is
    # done, so no disable is ever queued that could be read as an enable.
    run = execd_in(nft_netns, install, "5").run(from_manager_5(Command="ls"))
    assert b'"Command":"ls"' in run.request and run.request.endswith(b'"command":"enable"}')
    assert (run.code, run.reply, run.queued) == (64, None, None)
    assert nft_netns.rules() == []
    assert logged(install)[1][1] == ("- -: usage: unknown command ls (expected add, "
                                     "delete, enable or disable) (exit 64)")


# -- both -------------------------------------------------------------------

@pytest.mark.parametrize("reply,reason", [
    (lambda line: with_command(line, "frobnicate"),
     "execd answered frobnicate to check_keys; expected continue or abort"),
    (b"not json", "input is not valid JSON"),
    (b'{"version":"1","origin":{},"command":"continue","parameters":{}}',
     "'version' is not a number"),
    # A 5.x answer (no version) to a 4.x request.
    (b'{"wazuh":{},"source":{"ip":"192.0.2.7"},"command":"continue"}',
     "'version' is not a number"),
    (CLOSE, "no answer to check_keys: end of input"),
], ids=["frobnicate", "not json", "version", "5.x answer", "close"])
def test_4x_any_other_answer_refuses(nft_netns, install, reply, reason):
    run = execd_in(nft_netns, install).run(from_manager_4(alert()), reply)
    assert (run.code, run.reply) == (64, CHECK_KEYS)
    assert nft_netns.rules() == []
    outcome = logged(install)[1][1]
    assert outcome.startswith("add 192.0.2.7: usage: " + reason)
    assert outcome.endswith("(exit 64)")


@pytest.mark.parametrize("reply,reason", [
    (lambda line: line[:-len(b'"enable"}')] + b'"frobnicate"}',
     "execd answered frobnicate to check_keys; expected continue or abort"),
    # A 4.x answer (no wazuh object) to a 5.x request.
    (b'{"version":1,"origin":{},"command":"continue","parameters":{}}',
     "'wazuh' is not an object"),
], ids=["frobnicate", "4.x answer"])
def test_5x_any_other_answer_refuses(nft_netns, install, reply, reason):
    run = execd_in(nft_netns, install, "5").run(from_manager_5(), reply)
    assert (run.code, run.reply) == (64, CHECK_KEYS)
    assert nft_netns.rules() == []
    assert logged(install)[1][1].startswith("add 192.0.2.7: usage: " + reason)


def test_no_answer_ends_within_the_bound(nft_netns, install):
    run = execd_in(nft_netns, install).run(from_manager_4(alert()), SILENT)
    assert (run.code, run.reply) == (75, CHECK_KEYS)
    assert 5 <= run.seconds < 60          # the 5 s bound, and no hang
    assert nft_netns.rules() == []
    assert logged(install)[1][1] == (
        "add 192.0.2.7: failed: no answer to check_keys from execd within 5s (rule 5712, "
        "alert 1326977549.1358625) (exit 75)")


def test_silent_execd_ends_within_the_bound(nft_netns, install):
    # No request line at all, stdin left open.
    proc = subprocess.Popen(nft_netns.prefix() + [PROGRAM], cwd=install.prefix,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    start = time.monotonic()
    assert proc.wait(20) == 75
    assert 5 <= time.monotonic() - start < 60
    proc.stdin.close()
    assert logged(install) == [
        ("firewall-drop", "(no request read)"),
        ("firewall-drop", "- -: failed: no request from execd within 5s (exit 75)")]


def test_the_sh_name_serves_both_forms(nft_netns, install):
    execd = execd_in(nft_netns, install, ar_conf={"firewall-drop600": ("firewall-drop.sh", 600)})
    run = execd.run(from_manager_4(alert()))
    assert run.code == 0
    assert json.loads(run.reply)["origin"]["name"] == "firewall-drop.sh"
    assert nft_netns.run([install.program(), "delete", "-", "192.0.2.7"]).returncode == 0
    assert nft_netns.rules() == EMPTY_CHAIN


@pytest.mark.parametrize("version,manager", [
    ("4", lambda: from_manager_4(alert(), "host-deny600")),
    ("5", lambda: from_manager_5(executable="host-deny"))])
def test_host_deny_through_the_protocol(etc_copy, install, version, manager):
    etc = Etc(etc_copy, install)
    etc.write(b"# admin\n")
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
            BIND_ETC + '\nexec "$@"', "sh"]
    execd = Execd(install.prefix, version, wrap=wrap, env=dict(os.environ, ETC=etc_copy))
    run = execd.run(manager())
    assert run.code == 0
    assert json.loads(run.reply)["origin"] == {"name": "host-deny",
                                               "module": "active-response"}
    assert etc.read() == b"# admin\nALL:192.0.2.7\n"
    assert [delete.code for delete in execd.expire()] == [0]
    assert etc.read() == b"# admin\n"
    assert [line[1].split(" (rule")[0] for line in logged(install)[1::2]] == [
        "add 192.0.2.7: blocked: /etc/hosts.deny", "delete 192.0.2.7: unblocked: "
                                                   "/etc/hosts.deny"]


# -- the logged request line ------------------------------------------------

@pytest.mark.parametrize("version", ["4", "5"])
def test_logged_request_is_the_request_as_received(nft_netns, install, version):
    # A web access log: quotes, a backslash, a tab.  execd's line escapes
    # them inside JSON strings; the log must keep those bytes, or the
    # manager's JSON decoder fails and rules 651-654 never fire.
    text = 'GET /a\\b?q="x"\tHTTP/1.1 "curl/8"'
    if version == "4":
        message = from_manager_4(alert(full_log=text, data={"url": '/a\\b?q="x"'}))
    else:
        message = from_manager_5(message=text, url={"original": '/a\\b?q="x"'})
    execd = execd_in(nft_netns, install, version)
    run = execd.run(message)
    assert run.code == 0
    assert b'\\"x\\"\\t' in run.request and b"\\\\b" in run.request
    [delete] = execd.expire()
    lines = log_bytes(install).split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5
    for line, sent in ((lines[0], run.request), (lines[2], delete.request)):
        prematch = AR_LOG_JSON.match(line)
        assert prematch, line
        assert line[prematch.end():] == sent
        decoded = json.loads(line[prematch.end():].decode("utf-8"))
        assert decoded == json.loads(sent.decode("utf-8"))
    if version == "4":
        # What rules 651 and 652 compare (ruleset/rules/0015-ossec_rules.xml @ v4.9.0).
        assert [json.loads(line[AR_LOG_JSON.match(line).end():])["command"]
                for line in (lines[0], lines[2])] == ["add", "delete"]
        assert json.loads(lines[0][AR_LOG_JSON.match(lines[0]).end():])[
            "parameters"]["program"] == PROGRAM


FORGED = "active-response/bin/firewall-drop: forged"
BREAKS = [
    # (what ends or splits a line, exit code of a request holding it raw in a string)
    (b"\r", 64), (b"\x0b", 64), (b"\x0c", 64), (b"\x1c", 64), (b"\x1d", 64), (b"\x1e", 64),
    (b"\x00", 64), (b"\x85", 64),                   # a raw NUL; a byte that is not UTF-8
    (u"\u0085".encode(), 0), (u"\u2028".encode(), 0), (u"\u2029".encode(), 0),
]
LINE_ENDS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00]")


@pytest.mark.parametrize("brk,code", BREAKS, ids=[repr(b) for b, _ in BREAKS])
def test_no_request_can_forge_a_log_line(nft_netns, install, brk, code):
    forged = b"sshd" + brk + b"2000/01/01 00:00:00 " + FORGED.encode()
    line = message(full_log="PLACE").replace(b"PLACE", forged)
    execd = execd_in(nft_netns, install)
    run = execd.exchange(PROGRAM, line, lambda reply: with_command(line, "continue"))
    assert run.code == code
    data = log_bytes(install)
    assert brk not in data
    text = data.decode("utf-8")                 # the log stays UTF-8
    # Two lines, whatever a reader takes for a line end.
    assert LINE_ENDS.findall(text) == ["\n", "\n"] and text.endswith("\n")
    escape = "\\x%02x" % brk[0] if brk == b"\x85" else "\\u%04x" % ord(brk.decode("utf-8"))
    first = text.splitlines()[0]
    assert text.count(FORGED) == 1 and "sshd%s2000/01/01 00:00:00 %s" % (escape, FORGED) in first
    if code == 0:
        # Inside a JSON string the escape means the same character.
        logged_json = first[AR_LOG_JSON.match(first.encode()).end():]
        assert json.loads(logged_json) == json.loads(line.decode("utf-8"))
        assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()


# -- hostile requests -------------------------------------------------------

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
     65, "no address in the alert (looked at alert.data.win.eventdata.ipAddress, "
         "alert.data.win.eventdata.destinationIp, alert.data.srcip)"),
    (raw('{"version":1,"origin":{},"command":"add","parameters":{"alert":{"data":'
         '{"srcip":3221225991}}}}'), 64, "'alert.data.srcip' is not a string"),
    (message("add", srcip="192.0.2.7; reboot"), 65, "not an IP address"),
    (message("add", srcip="$(touch /tmp/pwned)"), 65, "not an IP address"),
    (message("add", srcip="-j"), 65, "not an IP address (starts with '-')"),
    (message("add", srcip="127.0.0.1"), 65, "loopback address"),
    (message("add", srcip="192.0.2.7\n"), 65, "not an IP address"),
    (raw('{"version":1,"origin":{},"command":"add\\u0000","parameters":{}}'), 64,
     "unknown command add\\x00 (expected"),
    (raw('{"version":NaN,"origin":{},"command":"add","parameters":{}}'), 64,
     "input is not valid JSON"),
    # 5.x words ask for 5.x's shape, and 4.x words for 4.x's.
    (raw('{"version":1,"origin":{},"command":"enable","parameters":{"alert":{"source":'
         '{"ip":"192.0.2.7"}}}}'), 64, "'wazuh' is not an object"),     # our old guess
    (raw('{"source":{"ip":"192.0.2.7"},"command":"enable"}'), 64, "'wazuh' is not an object"),
    (raw('{"wazuh":[],"source":{"ip":"192.0.2.7"},"command":"enable"}'), 64,
     "'wazuh' is not an object"),
    (raw('{"wazuh":{},"source":{"ip":"192.0.2.7"},"command":"add"}'), 64,
     "'version' is not a number"),
    (raw('{"wazuh":{},"command":"enable"}'), 65, "no address in the alert (looked at "
                                                 "source.ip)"),
    (raw('{"wazuh":{},"source":{"ip":["192.0.2.7"]},"command":"enable"}'), 64,
     "'source.ip' is not a string"),
    (raw('{"wazuh":{},"source":{"ip":"192.0.2.7"},"command":"flush","command":"enable"}'),
     64, "unknown command flush"),                                       # the first counts
    (raw('{"wazuh":{},"source":{"ip":"127.0.0.1"},"command":"enable"}'), 65,
     "loopback address"),
]


@pytest.mark.parametrize("line,code,reason", HOSTILE_JSON,
                         ids=[str(i) for i in range(len(HOSTILE_JSON))])
def test_hostile_json_is_refused_and_changes_nothing(nft_netns, install, line, code,
                                                     reason):
    run = execd_in(nft_netns, install).exchange(
        PROGRAM, line, lambda reply: with_command(line, "continue"), timeout=15)
    assert (run.code, run.reply, run.stderr) == (code, None, b"")   # nothing sent
    assert nft_netns.rules() == [] and nft_netns.rules("ip6tables") == []
    assert not os.path.exists("/tmp/pwned")
    lines = install.log_lines()
    assert len(lines) == 2 and all(len(line) < 70000 for line in lines)
    program, outcome = WAZUH_LINE.match(lines[1]).groups()
    assert said(code) + reason in outcome
    assert outcome.endswith("(exit %d)" % code)


# -- lone surrogates: "\ud800" is valid JSON text but no Unicode text ----------

def with_surrogate(line, place=b"PLACE"):
    """*line* with *place* replaced by a JSON escape of a lone surrogate."""
    assert line.count(place) == 1
    return line.replace(place, b"\\ud800")


@pytest.mark.parametrize("srcip", ["PLACE", "192.0.2.7PLACE", "PLACE192.0.2.7"])
def test_a_lone_surrogate_in_the_address_is_a_refused_address(nft_netns, install, srcip):
    line = with_surrogate(message("add", srcip=srcip))
    run = execd_in(nft_netns, install).exchange(
        PROGRAM, line, lambda reply: with_command(line, "continue"), timeout=15)
    assert (run.code, run.reply, run.stderr) == (65, None, b"")
    assert nft_netns.rules() == [] and nft_netns.rules("ip6tables") == []
    data = log_bytes(install)
    data.decode("utf-8")                                   # the log stays UTF-8
    lines = install.log_lines()
    assert len(lines) == 2 and lines[0].endswith(line.decode())
    program, outcome = WAZUH_LINE.match(lines[1]).groups()
    assert outcome.startswith("add ") and ": refused: not an IP" in outcome
    assert "\\ud800" in outcome and outcome.endswith("(exit 65)")


@pytest.mark.parametrize("field", ["rule", "alert_id", "full_log", "agent"])
def test_a_lone_surrogate_elsewhere_never_stops_a_delete(nft_netns, install, field):
    execd = execd_in(nft_netns, install)
    assert execd.run(from_manager_4(alert())).code == 0
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    value = alert(**({field: "PLACE"} if field != "agent" else {}))
    if field == "agent":
        value["agent"]["name"] = "PLACE"
    request = from_manager_4(value)
    request["command"] = "delete"
    request["origin"]["module"] = "wazuh-execd"
    request["parameters"]["program"] = PROGRAM
    line = with_surrogate(printed(request))
    delete = execd.delete(PROGRAM, line)
    assert (delete.code, delete.rest, delete.stderr) == (0, b"", b"")
    assert nft_netns.rules() == EMPTY_CHAIN
    log_bytes(install).decode("utf-8")                     # the log stays UTF-8
    entries = logged(install)
    assert len(entries) == 4 and entries[2][1] == line.decode()
    assert entries[3][1].startswith("delete 192.0.2.7: unblocked: iptables: removed 1 "
                                    "from OSSEC")
    assert entries[3][1].endswith("(exit 0)")
    if field in ("rule", "alert_id"):
        # Shown as the request wrote it (the backslash escaped, as in any id).
        assert "\\\\ud800" in entries[3][1]
    # The ledger holds the delete: nothing is left in force.
    from ossec_ar import ledger
    path = os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    records, skipped = ledger.read(path)
    assert skipped == [] and [r.op for r in records] == ["add", "delete"]
    assert ledger.in_force(records) == {}


# -- control characters in the logged request line --------------------------

CONTROLS = [
    # (raw in a string of the request, exit code: JSON allows DEL and C1 raw)
    (b"\x1b[2J\x1b]0;title\x07", 64), (b"\x07", 64), (b"\x08", 64), (b"\x01", 64),
    (b"\x1f", 64), (b"\x7f", 0), (u"\u009b2J".encode(), 0), (u"\u0090".encode(), 0),
]
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


@pytest.mark.parametrize("ctl,code", CONTROLS, ids=[repr(c) for c, _ in CONTROLS])
def test_control_characters_are_logged_as_json_escapes(nft_netns, install, ctl, code):
    line = message(full_log="PLACE").replace(b"PLACE", b"sshd" + ctl + b"x")
    execd = execd_in(nft_netns, install)
    run = execd.exchange(PROGRAM, line, lambda reply: with_command(line, "continue"))
    assert run.code == code
    data = log_bytes(install)
    assert RAW_CONTROL.search(data) is None            # nothing raw reaches the log
    first = data.decode("utf-8").splitlines()[0]
    logged_json = first[AR_LOG_JSON.match(first.encode()).end():]
    # Still JSON for the manager's decoder, and the same value as sent.
    value = json.loads(logged_json)
    assert value["parameters"]["alert"]["full_log"] == "sshd" + ctl.decode() + "x"
    escapes = "".join("\\u%04x" % ord(ch) if ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f
                      else ch for ch in ctl.decode())
    assert "sshd%sx" % escapes in logged_json
    if code == 0:
        assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
        assert logged(install)[1][1].startswith("add 192.0.2.7: blocked: ")
    else:
        assert nft_netns.rules() == []
        assert ": usage: input is not valid JSON" in logged(install)[1][1]


# -- ipv6_prefix = 64 in the JSON form ---------------------------------------

PREFIX = "2001:db8:1:2::/64"


@pytest.mark.parametrize("name", ["firewall-drop", "route-null", "host-deny"])
@pytest.mark.parametrize("version", ["4", "5"])
def test_with_ipv6_prefix_the_json_form_blocks_the_prefix_and_lifts_it_with_its_last_address(
        nft_netns, install, etc_copy, version, name):
    """Each address is its own key for execd (check_keys), so each add runs
    and queues its own delete; the prefix is blocked once, and the deletes
    lift it with the last address, as in the argv form."""
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"
                      "[host-deny]\nipv6_prefix = 64\n")
    with open(os.path.join(etc_copy, "hosts.deny"), "w") as f:
        f.write("# admin\n")
    wrap = nft_netns.prefix() + ["unshare", "-m", "--propagation", "private", "sh", "-ec",
                                 BIND_ETC + '\nexec "$@"', "sh"]
    env = dict(os.environ, ETC=etc_copy)
    execd = Execd(install.prefix, version, wrap=wrap, env=env,
                  ar_conf={"%s600" % name: (name, 600)})

    def request(address):
        if version == "4":
            return from_manager_4(alert(address), "%s600" % name)
        return from_manager_5(address, executable=name)
    runs = [execd.run(request(address)) for address in ("2001:db8:1:2::7", "2001:db8:1:2::8")]
    assert [(run.code, json.loads(run.reply)["parameters"]["keys"]) for run in runs] == [
        (0, ["2001:db8:1:2::7"]), (0, ["2001:db8:1:2::8"])]
    assert [key for key, _, _ in execd.pending] == ["%s-2001:db8:1:2::7" % name,
                                                    "%s-2001:db8:1:2::8" % name]
    ids = " (rule 5712, alert 1326977549.1358625)" if version == "4" else " (rule -, alert -)"
    outcomes = [message for program, message in logged(install)[1::2]]
    start = "add 2001:db8:1:2::7: blocked: %s in " % PREFIX
    assert outcomes[0].startswith(start), outcomes
    where = outcomes[0][len(start):].split(" (repaired: ")[0].split(ids)[0]
    assert outcomes[1] == "add 2001:db8:1:2::8: already blocked: by %s in %s%s (exit 0)" % (
        PREFIX, where, ids)
    program = "host-deny" if name == "host-deny" else "firewall-drop"
    listed = subprocess.run(wrap + [os.path.join(install.prefix, "bin", "ossec-ar"), "list",
                                    "--json"], env=env, stdout=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert [(row["address"], row["state"], row["holders"]) for row in json.loads(
        listed.stdout)["blocks"] if row["program"] == program and row["kind"] == "prefix"] == [
        (PREFIX, "in force", ["2001:db8:1:2::7", "2001:db8:1:2::8"])]
    assert [run.code for run in execd.expire()] == [0, 0]
    outcomes = [message for program, message in logged(install)[5::2]]
    assert outcomes[0].startswith("delete 2001:db8:1:2::7: unblocked: 2001:db8:1:2::7; prefix "
                                  "%s kept for 1 other (" % PREFIX), outcomes
    assert outcomes[1].startswith("delete 2001:db8:1:2::8: unblocked: %s from " % PREFIX)
    assert outcomes[1].endswith("%s (exit 0)" % ids)
    listed = subprocess.run(wrap + [os.path.join(install.prefix, "bin", "ossec-ar"), "list",
                                    "--json"], env=env, stdout=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert [row for row in json.loads(listed.stdout)["blocks"]
            if row["program"] == program] == []
