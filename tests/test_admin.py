"""ossec-ar, the administrator's command, against the real firewall in
private network namespaces (and a private /etc for hosts.deny)."""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import AFTER_2262, PYTHON, Install, make_install, state_file
from test_iptables import outcome, run
from test_packets import CLIENT_V4, SERVER_V4, Pair


@pytest.fixture
def install(iptables_install):
    """These tests read the iptables layout, so they choose it: ``auto``
    takes a set layout wherever nft or ipset is installed."""
    return iptables_install


OURS = "-A OSSEC -s %s/32 -j DROP"


def admin(netns, install, *args, etc=None):
    """Run ossec-ar in *netns* (and over a copy of /etc, if given)."""
    program = os.path.join(install.prefix, "bin", "ossec-ar")
    argv = [program] + list(args)
    if etc:
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
                'mount --bind "$0" /etc; exec "$@"', etc] + argv
    return netns.run(argv)


def listing(netns, install, etc=None):
    result = admin(netns, install, "list", "--json", etc=etc)
    assert (result.returncode, result.stderr) == (0, "")
    return {(row["program"], row["address"]): row for row in json.loads(result.stdout)["blocks"]}


def test_list_holds_the_ledger_against_the_firewall(nft_netns, install):
    before = time.time()
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1326977549.1358625", "5712") == 0
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "31151") == 0
    rows = listing(nft_netns, install)
    row = rows["firewall-drop", "192.0.2.7"]
    assert (row["state"], row["backend"], row["where"], row["rule"], row["alert"]) == (
        "in force", "iptables", "iptables", "5712", "1326977549.1358625")
    assert before - 1 < row["since"] <= time.time()
    assert rows["firewall-drop", "2001:db8::7"]["state"] == "in force"
    nft_netns.check(["iptables", "-F", "OSSEC"])                      # a firewall reload
    nft_netns.check(["iptables", "-A", "OSSEC", "-s", "198.51.100.9", "-j", "DROP"])
    rows = listing(nft_netns, install)
    assert rows["firewall-drop", "192.0.2.7"]["state"] == "lost"
    assert rows["firewall-drop", "2001:db8::7"]["state"] == "in force"
    assert rows["firewall-drop", "198.51.100.9"]["state"] == "unknown"
    text = admin(nft_netns, install, "list").stdout.splitlines()
    assert text[0].split() == ["ADDRESS", "PROGRAM", "STATE", "BACKEND", "SINCE", "RULE",
                               "ALERT"]
    assert any(line.split()[:4] == ["192.0.2.7", "firewall-drop", "lost", "iptables"]
               for line in text)


def test_restore_brings_back_what_a_flush_lost_and_packets_drop_again(install):
    pair = Pair("nft")
    try:
        program = install.program()
        assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "5712"]).returncode == 0
        assert not pair.connects(SERVER_V4)
        pair.server.check(["iptables", "-F"])              # every rule gone
        pair.server.check(["iptables", "-X", "OSSEC"])
        assert pair.connects(SERVER_V4)
        dry = admin(pair.server, install, "restore", "--dry-run")
        assert dry.returncode == 0
        assert dry.stdout.startswith("would restore %s (firewall-drop, since " % CLIENT_V4)
        assert pair.connects(SERVER_V4)                    # a dry run changes nothing
        result = admin(pair.server, install, "restore")
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.startswith("%s (firewall-drop): blocked: iptables chain OSSEC"
                                        % CLIENT_V4)
        assert not pair.connects(SERVER_V4)
        assert install.log_lines()[-1].endswith(
            "/bin/ossec-ar: restore -: restored: %s firewall-drop: blocked (exit 0)"
            % CLIENT_V4)
        assert admin(pair.server, install, "restore").stdout == "nothing to restore\n"
    finally:
        pair.close()


def age_ledger(install, program, seconds):
    """Make every record of *program*'s ledger *seconds* older, checksums
    and all, as if the blocks had been made that long ago."""
    from ossec_ar import ledger
    path = os.path.join(install.prefix, "var", "ossec-ar", program + ".ledger")
    records, skipped = ledger.read(path)
    assert skipped == []
    for entry in records:
        entry.time -= seconds
    with open(path, "w") as f:
        f.write("".join(entry.line() for entry in records))


def test_expire_lifts_only_the_old_blocks(nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "5712") == 0
    age_ledger(install, "firewall-drop", 3 * 3600)             # three hours ago
    assert run(nft_netns, install, "add", "-", "192.0.2.2", "1.1", "5712") == 0
    dry = admin(nft_netns, install, "expire", "--older-than", "2h", "--dry-run", "--json")
    assert [row["address"] for row in json.loads(dry.stdout)["expire"]] == ["192.0.2.1"]
    assert OURS % "192.0.2.1" in nft_netns.rules()
    result = admin(nft_netns, install, "expire", "--older-than", "7200")
    assert (result.returncode, result.stderr) == (0, "")
    rules = nft_netns.rules()
    assert OURS % "192.0.2.1" not in rules and OURS % "192.0.2.2" in rules
    assert list(listing(nft_netns, install)) == [("firewall-drop", "192.0.2.2")]
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: expire -: unblocked: 192.0.2.1 firewall-drop: unblocked (exit 0)")


def test_unblock_lifts_everywhere_and_the_later_delete_finds_nothing(nft_netns, install,
                                                                     etc_copy):
    deny = os.path.join(etc_copy, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# admin\n")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    result = nft_netns.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                            'mount --bind "$0" /etc; exec "$@"', etc_copy,
                            install.program("host-deny.sh"), "add", "-", "192.0.2.7", "1.1",
                            "5712"])
    assert result.returncode == 0
    rows = listing(nft_netns, install, etc=etc_copy)
    assert rows["host-deny", "192.0.2.7"]["state"] == "in force"
    assert rows["host-deny", "192.0.2.7"]["where"] == "/etc/hosts.deny"
    result = admin(nft_netns, install, "unblock", "192.0.2.7", etc=etc_copy)
    assert (result.returncode, result.stderr) == (0, "")
    assert OURS % "192.0.2.7" not in nft_netns.rules()
    with open(deny) as f:
        assert f.read() == "# admin\n"
    line = install.log_lines()[-1]
    assert "/bin/ossec-ar: delete 192.0.2.7: unblocked: firewall-drop: unblocked: " in line
    assert "; host-deny: unblocked: /etc/hosts.deny (exit 0)" in line
    assert listing(nft_netns, install, etc=etc_copy) == {}
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "5712") == 0
    assert outcome(install).startswith("delete 192.0.2.7: was not blocked: ")


@pytest.mark.parametrize("args,code,message", [
    (["unblock", "192.0.2.7;reboot"], 65, "not an IP address"),
    (["unblock", "127.0.0.1"], 65, "loopback address"),
    (["unblock"], 64, "the following arguments are required: address"),
    (["expire", "--older-than", "soon"], 64, "'soon' is not a duration"),
    (["expire"], 64, "the following arguments are required: --older-than"),
    (["block", "192.0.2.7"], 64, "invalid choice: 'block'"),
    ([], 64, "the following arguments are required: COMMAND"),
])
def test_bad_input_is_refused_and_changes_nothing(nft_netns, install, args, code, message):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    rules, log = nft_netns.rules(), install.log_lines()
    result = admin(nft_netns, install, *args)
    assert result.returncode == code
    assert result.stdout == "" and message in result.stderr
    assert result.stderr.endswith("(exit %d)\n" % code)
    # A usage error gives the usage line of what was mistyped, and says usage.
    lines = result.stderr.splitlines()
    if code == 64:
        assert len(lines) == 2 and lines[0].startswith("usage: ossec-ar ")
        assert lines[1].startswith("ossec-ar: usage: ")
    else:
        assert len(lines) == 1 and lines[0].startswith("ossec-ar: refused: ")
    assert (nft_netns.rules(), install.log_lines()) == (rules, log)


@pytest.mark.parametrize("args,usage,message", [
    (["block", "192.0.2.7"], "usage: ossec-ar [-h] [--version] [--json] COMMAND ...",
     "argument COMMAND: invalid choice: 'block' (choose from 'status', 'list', 'unblock', "
     "'restore', 'expire', 'firewalld-setup', 'relink', 'adopt', 'hand-over', 'metrics', 'fleet')"),
    (["expire", "--older-than", "soon"],
     "usage: ossec-ar expire [-h] [--json] --older-than DURATION [--dry-run]",
     "argument --older-than: 'soon' is not a duration (say 600, 30s, 30m, 12h, 7d)"),
    (["list", "--frob"], "usage: ossec-ar [-h] [--version] [--json] COMMAND ...",
     "unrecognized arguments: --frob"),
])
def test_a_usage_error_prints_the_usage_line_and_says_usage(nft_netns, install, args, usage,
                                                             message):
    result = admin(nft_netns, install, *args)
    assert (result.returncode, result.stdout) == (64, "")
    assert result.stderr == "%s\nossec-ar: usage: %s (exit 64)\n" % (usage, message)
    # The same for scripts, before or after the command.
    for where in (0, len(args)):
        result = admin(nft_netns, install, *(args[:where] + ["--json"] + args[where:]))
        assert (result.returncode, result.stderr) == (64, "")
        assert json.loads(result.stdout) == {"error": message, "exit": 64, "usage": usage}


@pytest.mark.parametrize("command", [["list"], ["status"], ["restore", "--dry-run"],
                                     ["expire", "--older-than", "1h", "--dry-run"]])
def test_json_is_taken_before_or_after_the_command(nft_netns, install, command):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    after = admin(nft_netns, install, *(command + ["--json"]))
    before = admin(nft_netns, install, *(["--json"] + command))
    both = admin(nft_netns, install, *(["--json"] + command + ["--json"]))
    for result in (after, before, both):
        assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(both.stdout)
    if command == ["list"]:
        assert [row["address"] for row in json.loads(after.stdout)["blocks"]] == ["192.0.2.7"]
    text = admin(nft_netns, install, *command)
    assert (text.returncode, text.stderr) == (0, "")
    with pytest.raises(ValueError):
        json.loads(text.stdout)


def test_broken_configuration_is_78_but_status_reports_it(nft_netns, install):
    install.configure("[firewall-drop]\nbakend = iptables\n")
    result = admin(nft_netns, install, "list")
    assert result.returncode == 78 and "unknown key 'bakend'" in result.stderr
    result = admin(nft_netns, install, "status", "--json")
    assert result.returncode == 78                      # status's health check
    state = json.loads(result.stdout)
    assert state["config"]["parses"] is False
    assert "unknown key 'bakend'" in state["config"]["state"]


def test_status_says_what_auto_would_choose_and_why(nft_netns, install):
    result = admin(nft_netns, install, "status", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    state = json.loads(result.stdout)
    assert state["platform"] == "Linux"
    # auto's order (README, Firewall backends): nft is installed here.
    assert state["backend"]["auto"]["choice"] == "nftables"
    assert state["backend"]["auto"]["tried"][0] == {"backend": "firewalld",
                                                   "state": "firewalld is not running"}
    tools = {tool["name"]: tool for tool in state["tools"]}
    assert tools["iptables"]["path"] == "/usr/sbin/iptables"
    assert tools["iptables"]["version"].startswith("iptables v")
    assert tools["pfctl"]["path"] is None
    # firewall-cmd has no version to give without its daemon: no D-Bus error.
    assert tools["firewall-cmd"]["version"] == "(firewalld is not running)"
    assert state["config"]["parses"] is True and state["log"]["writable"] is True
    assert all(lock["state"].startswith("free") for lock in state["locks"])
    text = admin(nft_netns, install, "status").stdout
    assert "backend: iptables; auto would choose nftables" in text


def test_status_sees_a_held_lock(nft_netns, install):
    import fcntl
    path = state_file(install.prefix, "host-deny.lock")
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(admin(nft_netns, install, "status", "--json").stdout)
    assert {l["program"]: l["state"] for l in state["locks"]}["host-deny"] == \
        "held by a running program"


def test_not_root_is_exit_77(nft_netns):
    # Group 0 can read the 0750 program, as the ossec group can.
    destdir = tempfile.mkdtemp(prefix="oar-")
    try:
        os.chmod(destdir, 0o755)
        copy = Install(make_install(destdir))
        result = nft_netns.run(["setpriv", "--reuid=65534", "--regid=0", "--clear-groups",
                                os.path.join(copy.prefix, "bin", "ossec-ar"), "list"])
        assert result.returncode == 77
        assert "must run as root (effective uid 65534)" in result.stderr
    finally:
        subprocess.run(["rm", "-rf", destdir], check=True)


def test_a_bug_is_exit_70_with_where_it_happened(tmp_path, monkeypatch, capsys):
    from ossec_ar import admin as module

    def broken(host, args):
        raise KeyError("oops")
    monkeypatch.setattr(module, "status", broken)
    assert module.main(["ossec-ar", "status"], str(tmp_path)) == 70
    err = capsys.readouterr().err
    assert err.startswith("ossec-ar: failed: internal error: KeyError: 'oops' at ")
    assert err.endswith("(exit 70)\n")


def test_list_says_which_ledger_lines_it_skipped(nft_netns, install):
    for n in (1, 2, 3):
        assert run(nft_netns, install, "add", "-", "192.0.2.%d" % n, "1.1", "5712") == 0
    path = os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    lines[0] = lines[0].replace(b" add ", b" adx ")                 # damaged
    with open(path, "wb") as f:
        f.write(b"\n".join(lines)[:-10])                          # and a torn tail
    result = admin(nft_netns, install, "list", "--json")
    data = json.loads(result.stdout)
    assert data["notes"] == ["ledger %s: skipped line 3: torn (no end of line)" % path,
                             "ledger %s: skipped line 1: damaged (checksum)" % path]
    states = {row["address"]: row["state"] for row in data["blocks"]}
    # The record that survives is in force; the firewall still has the others,
    # which the ledger no longer knows.
    assert states == {"192.0.2.2": "in force", "192.0.2.1": "unknown",
                      "192.0.2.3": "unknown"}
    assert "note: ledger %s: skipped line 1: damaged (checksum)" % path in \
        admin(nft_netns, install, "list").stdout


def test_list_never_reads_a_network_in_the_firewall_as_a_host(nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "5712") == 0
    # Put in our chains by hand: a network is nobody's block of one host
    # (10.0.0.0/8 is not 10.0.0.0); a single address is listed, as unknown.
    for tool, network, host in (("iptables", "10.0.0.0/8", "198.51.100.9/32"),
                                ("ip6tables", "2001:db8::/32", "2001:db8::9/128")):
        nft_netns.check([tool, "-w", "-A", "OSSEC", "-s", network, "-j", "DROP"])
        nft_netns.check([tool, "-w", "-A", "OSSEC", "-s", host, "-j", "DROP"])
    assert "-A OSSEC -s 10.0.0.0/8 -j DROP" in nft_netns.rules()
    result = admin(nft_netns, install, "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    states = {(row["program"], row["address"]): row["state"]
              for row in json.loads(result.stdout)["blocks"]}
    assert states == {("firewall-drop", "192.0.2.7"): "in force",
                      ("firewall-drop", "2001:db8::7"): "in force",
                      ("firewall-drop", "198.51.100.9"): "unknown",
                      ("firewall-drop", "2001:db8::9"): "unknown"}
    text = admin(nft_netns, install, "list").stdout
    assert "198.51.100.9" in text and "10.0.0.0" not in text and "2001:db8:: " not in text


# -- link-local blocks made by an earlier version ------------------------------

def plant(netns, install, address, ago=0, rule=True):
    """A block of *address* as an earlier version made it (they blocked
    link-local addresses): our rule in the chain and the ledger's record."""
    from ossec_ar import ledger
    if rule:
        tool = "ip6tables" if ":" in address else "iptables"
        netns.check([tool, "-w", "-A", "OSSEC", "-s", address, "-j", "DROP"])
    path = os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    with open(path, "a") as f:
        f.write(ledger.Record(time.time() - ago, "add", "firewall-drop", address,
                              "iptables", "5712", "1.1").line())


def ledger_text(install):
    with open(os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")) as f:
        return f.read()


def test_link_local_is_never_blocked_but_an_old_block_of_one_is_listed_and_lifted(
        nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "5712") == 0
    ours = (nft_netns.rules(), nft_netns.rules("ip6tables"))
    plant(nft_netns, install, "169.254.169.254")
    plant(nft_netns, install, "fe80::1")
    rules, rules6, ledger = nft_netns.rules(), nft_netns.rules("ip6tables"), ledger_text(install)
    for given, net in (("169.254.169.254", "169.254.0.0/16"),
                       ("::ffff:169.254.1.2", "169.254.0.0/16"),
                       ("169.254.1.2", "169.254.0.0/16"),
                       ("FE80::2", "fe80::/10"),
                       ("fe80::1", "fe80::/10")):
        assert run(nft_netns, install, "add", "-", given, "1.1", "5712") == 65
        assert outcome(install) == ("add %s: refused: link-local address (%s) (exit 65)"
                                    % (given, net))
    assert (nft_netns.rules(), nft_netns.rules("ip6tables"), ledger_text(install)) == (
        rules, rules6, ledger)
    rows = listing(nft_netns, install)
    assert {key: row["state"] for key, row in rows.items()} == {
        ("firewall-drop", "192.0.2.7"): "in force",
        ("firewall-drop", "2001:db8::7"): "in force",
        ("firewall-drop", "169.254.169.254"): "in force",
        ("firewall-drop", "fe80::1"): "in force"}
    # execd's delete, and the administrator's unblock, still lift them.
    assert run(nft_netns, install, "delete", "-", "169.254.169.254", "1.1", "5712") == 0
    assert outcome(install) == ("delete 169.254.169.254: unblocked: iptables: removed 1 "
                                "from OSSEC (exit 0)")
    result = admin(nft_netns, install, "unblock", "fe80::1")
    assert (result.returncode, result.stderr) == (0, "")
    assert "/bin/ossec-ar: delete fe80::1: unblocked: firewall-drop: unblocked: " in \
        install.log_lines()[-1]
    assert (nft_netns.rules(), nft_netns.rules("ip6tables")) == ours
    assert sorted(listing(nft_netns, install)) == [("firewall-drop", "192.0.2.7"),
                                                   ("firewall-drop", "2001:db8::7")]


def test_an_old_link_local_block_expires_and_is_never_restored(nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "5712") == 0
    plant(nft_netns, install, "169.254.1.2", ago=3 * 3600)
    plant(nft_netns, install, "fe80::7", rule=False)         # lost: a reload
    result = admin(nft_netns, install, "restore")
    assert result.returncode == 65
    assert "fe80::7 (firewall-drop): refused: link-local address (fe80::/10)" in \
        result.stdout
    assert "fe80::7" not in " ".join(nft_netns.rules("ip6tables"))
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: restore -: failed: fe80::7 firewall-drop: refused (exit 65)")
    result = admin(nft_netns, install, "expire", "--older-than", "2h")
    assert (result.returncode, result.stderr) == (0, "")
    assert "169.254" not in " ".join(nft_netns.rules())
    assert OURS % "192.0.2.7" in nft_netns.rules()
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: expire -: unblocked: 169.254.1.2 firewall-drop: unblocked (exit 0)")


# -- records dated in the future: the clock was ahead when they were written ----

def test_a_block_recorded_in_the_future_is_flagged_and_expired(nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "192.0.2.8", "1.1", "5712") == 0
    # 192.0.2.7 was blocked while the clock was a year ahead.
    path = os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    from ossec_ar import ledger
    records, skipped = ledger.read(path)
    assert skipped == [] and len(records) == 2
    records[0].time += 365 * 86400
    with open(path, "w") as f:
        f.write("".join(entry.line() for entry in records))
    result = admin(nft_netns, install, "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert [n for n in data["notes"] if "192.0.2.7" in n] == [
        "ledger %s: the block of 192.0.2.7 is dated in the future (the clock was ahead "
        "when it was written, or is behind now): expire counts it as old" % path]
    assert {row["address"]: row["state"] for row in data["blocks"]} == {
        "192.0.2.7": "in force", "192.0.2.8": "in force"}
    dry = admin(nft_netns, install, "expire", "--older-than", "2h", "--dry-run", "--json")
    assert [row["address"] for row in json.loads(dry.stdout)["expire"]] == ["192.0.2.7"]
    result = admin(nft_netns, install, "expire", "--older-than", "2h")
    assert (result.returncode, result.stderr) == (0, "")
    rules = nft_netns.rules()
    assert OURS % "192.0.2.7" not in rules and OURS % "192.0.2.8" in rules
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: expire -: unblocked: 192.0.2.7 firewall-drop: unblocked (exit 0)")
    assert list(listing(nft_netns, install)) == [("firewall-drop", "192.0.2.8")]


@pytest.mark.parametrize("stamp", ["1e300", "99999999999999999", "inf", "nan", "-inf"])
def test_a_time_no_clock_can_show_is_a_skipped_line_never_a_traceback(nft_netns, install,
                                                                      stamp):
    assert run(nft_netns, install, "add", "-", "192.0.2.8", "1.1", "5712") == 0
    path = os.path.join(install.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    import binascii
    body = "1 %s add firewall-drop 192.0.2.7 iptables 5712 1.1" % stamp
    with open(path, "a") as f:
        f.write("%s %08x\n" % (body, binascii.crc32(body.encode())))
    for args in (["list"], ["list", "--json"], ["expire", "--older-than", "1h"],
                 ["restore", "--dry-run"]):
        result = admin(nft_netns, install, *args)
        assert (result.returncode, result.stderr) == (0, ""), args
        assert "Traceback" not in result.stdout
        assert "skipped line 2: bad time" in result.stdout, args
    assert OURS % "192.0.2.8" in nft_netns.rules()                # nothing lost


CLOCK_PAST_2262 = ("the system clock is past 2262-04-11, later than Python can read it: "
                   "set the clock")


@pytest.mark.parametrize("args", [["list"], ["expire", "--older-than", "1h"]])
def test_a_clock_past_2262_is_a_line_never_a_traceback(nft_netns, install, args):
    # Python reads the clock as 64-bit nanoseconds: time.time() fails then.
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    rules, log = nft_netns.rules(), install.log_lines()
    result = nft_netns.run(AFTER_2262 + [os.path.join(install.prefix, "bin", "ossec-ar")]
                           + args)
    if args == ["list"]:                # shown as it is, with a note
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.splitlines()[1].split()[:3] == [
            "192.0.2.7", "firewall-drop", "in"]
        assert result.stdout.splitlines()[-1] == "note: " + CLOCK_PAST_2262
    else:                               # no age can be told: nothing is lifted
        assert (result.returncode, result.stdout) == (75, "")
        assert result.stderr == "ossec-ar: failed: %s (exit 75)\n" % CLOCK_PAST_2262
    assert (nft_netns.rules(), install.log_lines()) == (rules, log)


def test_a_0_1_ledger_root_did_not_write_is_ignored_with_a_note(nft_netns, install):
    """Wazuh's var/db is root:wazuh 0770: whatever its group leaves at the
    0.1 ledger's name is nobody's word but theirs, and stops nothing."""
    for name in ("firewall-drop.ledger", "host-deny.ledger"):
        path = os.path.join(install.prefix, "var", "ossec-ar", name)
        if os.path.lexists(path):
            os.unlink(path)
    db = os.path.join(install.prefix, "var", "db")
    made = not os.path.exists(db)
    os.makedirs(db, exist_ok=True)
    mode = os.stat(db).st_mode & 0o7777
    os.chmod(db, 0o770)
    old = os.path.join(db, "ossec-ar-firewall-drop.ledger")
    with open(old, "w") as f:
        f.write("1 1700000000.000 add firewall-drop 203.0.113.66 iptables 5712 1.1 00000000\n")
    try:
        reason = ("version 0.1's ledger ignored: %s is writable by its group (mode 0770); it "
                  "is used only if root alone could have written it" % db)
        for args in (["list"], ["expire", "--older-than", "1"], ["restore"]):
            result = admin(nft_netns, install, *args)
            assert (result.returncode, result.stderr) == (0, ""), (args, result)
            assert "note: " + reason in result.stdout.splitlines(), (args, result.stdout)
        result = admin(nft_netns, install, "list", "--json")
        data = json.loads(result.stdout)
        assert data["blocks"] == [] and reason in data["notes"]
        result = admin(nft_netns, install, "status", "--json")
        assert [item["note"] for item in json.loads(result.stdout)["ledgers"]] == [reason, None]
        with open(old) as f:
            assert "203.0.113.66" in f.read()          # left as it was
    finally:
        os.unlink(old)
        if made:
            os.rmdir(db)
        else:
            os.chmod(db, mode)


# Output cut short by its reader: as coreutils' tools, no traceback, nothing on stderr.

LOAD = """
import sys
sys.path.insert(0, sys.argv[1] + "/lib")
from ossec_ar import address, firewall
program = firewall.FirewallDrop(sys.argv[1])
for n in range(int(sys.argv[2])):
    text = "10.0.%d.%d" % (n // 200, n % 200 + 1)
    status, _ = program.add(address.parse(text), "5712", "1.%d" % n)
    assert status == "blocked", (text, status)
"""


def load_blocks(netns, install, count):
    """*count* blocks (10.0.0.1 and on), each added through the program's
    own object, as execd's runs add them (lock, firewall, ledger), without
    a process each."""
    netns.check([PYTHON, "-I", "-c", LOAD, install.prefix, str(count)])


def piped(netns, install, args, reader):
    """ossec-ar *args* with its stdout into *reader* (argv), no shell between:
    (ossec-ar's exit status, its stderr, what the reader printed)."""
    program = os.path.join(install.prefix, "bin", "ossec-ar")
    writer = subprocess.Popen(netns.prefix() + [program] + list(args),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    head = subprocess.Popen(reader, stdin=writer.stdout, stdout=subprocess.PIPE)
    writer.stdout.close()                   # the reader's alone now
    shown = head.communicate(timeout=120)[0]
    err = writer.stderr.read()
    writer.stderr.close()
    return writer.wait(timeout=120), err, shown


def to_a_closed_pipe(netns, install, args, stream="stdout"):
    """ossec-ar *args* with *stream* on a pipe that nobody will ever read:
    (exit status, what went to the other stream)."""
    program = os.path.join(install.prefix, "bin", "ossec-ar")
    read_end, write_end = os.pipe()
    os.close(read_end)                      # before ossec-ar has written anything
    other = {"stdout": "stderr", "stderr": "stdout"}[stream]
    try:
        result = subprocess.run(netns.prefix() + [program] + list(args),
                                stdin=subprocess.DEVNULL, timeout=120,
                                **{stream: write_end, other: subprocess.PIPE})
    finally:
        os.close(write_end)
    return result.returncode, getattr(result, other)


CUT_SHORT = (0, 141, -signal.SIGPIPE)       # as the shell shows it, or as Python does


def test_output_cut_short_by_its_reader_ends_quietly(nft_netns, install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    load_blocks(nft_netns, install, 1000)
    rows = listing(nft_netns, install)
    assert len(rows) == 1000 and {row["state"] for row in rows.values()} == {"in force"}
    age_ledger(install, "firewall-drop", 3 * 3600)
    nft_netns.check(["nft", "flush", "ruleset"])            # every block lost
    first = {("list",): "ADDRESS ", ("list", "--json"): "{", ("--json", "list"): "{",
             ("restore", "--dry-run"): "would restore 10.0.0.1 (firewall-drop, since ",
             ("restore", "--dry-run", "--json"): "{",
             ("expire", "--older-than", "1h", "--dry-run"): "would lift 10.0.0.1 ",
             ("status",): "platform: Linux", ("status", "--json"): "{"}
    for args, start in first.items():
        code, err, shown = piped(nft_netns, install, args, ["head", "-1"])
        assert (code in CUT_SHORT, err) == (True, b""), (args, code, err)
        assert shown.decode().startswith(start) and shown.count(b"\n") == 1, (args, shown)
    # A reader gone before the first byte: always cut short, never a traceback.
    for args in list(first) + [("--help",), ("restore", "--help")]:
        assert to_a_closed_pipe(nft_netns, install, args) == (-signal.SIGPIPE, b""), args
    # The same for what goes to stderr, when that is the pipe nobody reads.
    assert to_a_closed_pipe(nft_netns, install, ["block"], "stderr") == (-signal.SIGPIPE, b"")
    # Nothing was changed: every block still in the ledger, still lost.
    rows = listing(nft_netns, install)
    assert len(rows) == 1000 and {row["state"] for row in rows.values()} == {"lost"}


# -- blocks that an add found already made by someone else ---------------------

def found(install, program, address, backend, ago=0):
    """The ledger's record that an add of *program* found *address* already
    blocked by something not ours (op ``found``), appended as a program
    appends its records."""
    from ossec_ar import ledger
    with open(state_file(install.prefix, program + ".ledger"), "a") as f:
        f.write(ledger.Record(time.time() - ago, "found", program, address, backend,
                              "5712", "1.1").line())


def test_a_block_found_not_ours_is_listed_as_such_and_never_restored(nft_netns, install,
                                                                     etc_copy):
    deny = os.path.join(etc_copy, "hosts.deny")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "2001:db8::7", "1.1", "5712") == 0
    # Not on the host at all (a block of ours would be lost), in our own
    # chain (one of ours would be in force), and the administrator's own
    # line in hosts.deny: not ours, whatever the host shows.
    found(install, "firewall-drop", "198.51.100.77", "iptables", ago=3 * 3600)
    found(install, "firewall-drop", "2001:db8::78", "iptables")
    nft_netns.check(["ip6tables", "-w", "-A", "OSSEC", "-s", "2001:db8::78", "-j", "DROP"])
    found(install, "host-deny", "192.0.2.79", "/etc/hosts.deny")
    before = None
    if os.path.exists(deny):
        with open(deny) as f:
            before = f.read()
    try:
        with open(deny, "w") as f:
            f.write("# admin\nALL:192.0.2.79\n")
        rows = listing(nft_netns, install, etc=etc_copy)
        assert {key: row["state"] for key, row in rows.items()} == {
            ("firewall-drop", "192.0.2.7"): "in force",
            ("firewall-drop", "2001:db8::7"): "in force",
            ("firewall-drop", "198.51.100.77"): "not ours",
            ("firewall-drop", "2001:db8::78"): "not ours",
            ("host-deny", "192.0.2.79"): "not ours"}
        row = rows["firewall-drop", "198.51.100.77"]
        assert (row["backend"], row["where"], row["rule"], row["alert"]) == (
            "iptables", "-", "5712", "1.1")
        assert time.time() - 3 * 3600 - 60 < row["since"] < time.time() - 3 * 3600 + 60
        assert rows["firewall-drop", "2001:db8::78"]["where"] == "iptables"
        assert rows["host-deny", "192.0.2.79"]["where"] == "/etc/hosts.deny"
        text = admin(nft_netns, install, "list", etc=etc_copy).stdout.splitlines()
        assert [line.split()[:5] for line in text if line.startswith("198.51.100.77 ")] == [
            ["198.51.100.77", "firewall-drop", "not", "ours", "iptables"]]

        # Nothing to restore: not ours is never lost.
        rules, rules6 = nft_netns.rules(), nft_netns.rules("ip6tables")
        dry = admin(nft_netns, install, "restore", "--dry-run", "--json", etc=etc_copy)
        assert (dry.returncode, json.loads(dry.stdout)["restore"]) == (0, [])
        result = admin(nft_netns, install, "restore", etc=etc_copy)
        assert (result.returncode, result.stdout) == (0, "nothing to restore\n")
        assert (nft_netns.rules(), nft_netns.rules("ip6tables")) == (rules, rules6)
        with open(deny) as f:
            assert f.read() == "# admin\nALL:192.0.2.79\n"
    finally:
        if before is None:
            os.unlink(deny)
        else:
            with open(deny, "w") as f:
                f.write(before)


# -- IPv6 prefixes (ipv6_prefix): a prefix comes once, with its addresses ------

PREFIX = "2001:db8:1:2::/64"
PREFIX_CONFIG = "[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n"


def prefixes(netns):
    """The networks in nftables' set of /64 prefixes."""
    text = netns.check(["nft", "-j", "list", "set", "inet", "ossec", "v6p64"])
    items = json.loads(text)["nftables"][1]["set"].get("elem", [])
    return sorted(item if isinstance(item, str) else item["prefix"]["addr"] for item in items)


def prefix_ledger(install, program="firewall-drop"):
    from ossec_ar import ledger
    records, skipped = ledger.read(state_file(install.prefix, program + ".ledger"))
    assert skipped == []
    return [(r.op, r.address, r.prefix) for r in records]


def undated(text):
    """The lines of a dry run without their "(program, since ...)"."""
    import re
    return [re.sub(r" \(firewall-drop, since [0-9: -]+\)", "", line)
            for line in text.splitlines()]


def add_prefix_blocks(netns, install, *addresses):
    install.configure(PREFIX_CONFIG)
    for number, address in enumerate(addresses, 1):
        assert run(netns, install, "add", "-", address, "1.%d" % number, "5712") == 0


def test_list_shows_each_prefix_once_with_the_addresses_that_hold_it(nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::8", "2001:db8:1:2::7", "2001:db8::5",
                      "192.0.2.7")
    assert outcome(install) == "add 192.0.2.7: blocked: nftables table inet ossec, set v4 " \
        "(exit 0)"
    # A prefix no record holds, made by someone else: unknown, as an address is.
    nft_netns.check(["nft", "add element inet ossec v6p64 { 2001:db8:9:9:: }"])
    assert prefixes(nft_netns) == ["2001:db8:1:2::", "2001:db8:9:9::", "2001:db8::"]
    result = admin(nft_netns, install, "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    rows = json.loads(result.stdout)["blocks"]
    assert [(r["address"], r["kind"], r["state"], r["prefix"], r["holders"], r["where"])
            for r in rows] == [
        ("192.0.2.7", "address", "in force", None, None, "nftables"),
        ("2001:db8::/64", "prefix", "in force", None, ["2001:db8::5"], "nftables"),
        ("2001:db8::5", "address", "in force", "2001:db8::/64", None, "nftables"),
        (PREFIX, "prefix", "in force", None, ["2001:db8:1:2::7", "2001:db8:1:2::8"],
         "nftables"),
        ("2001:db8:1:2::7", "address", "in force", PREFIX, None, "nftables"),
        ("2001:db8:1:2::8", "address", "in force", PREFIX, None, "nftables"),
        ("2001:db8:9:9::/64", "prefix", "unknown", None, [], "nftables")]
    held = {r["address"]: r for r in rows}
    # The prefix's block began with its first address; its own rule and
    # alert are its addresses'.
    assert held[PREFIX]["since"] == held["2001:db8:1:2::8"]["since"]
    assert (held[PREFIX]["rule"], held[PREFIX]["alert"]) == ("-", "-")
    assert (held["2001:db8:1:2::7"]["rule"], held["2001:db8:1:2::7"]["alert"]) == (
        "5712", "1.2")
    # For a person: the prefix, then its addresses indented under it.
    text = admin(nft_netns, install, "list").stdout.splitlines()
    assert [line.split()[:3] for line in text[1:]] == [
        ["192.0.2.7", "firewall-drop", "in"], ["2001:db8::/64", "firewall-drop", "in"],
        ["2001:db8::5", "firewall-drop", "in"], [PREFIX, "firewall-drop", "in"],
        ["2001:db8:1:2::7", "firewall-drop", "in"], ["2001:db8:1:2::8", "firewall-drop", "in"],
        ["2001:db8:9:9::/64", "firewall-drop", "unknown"]]
    assert text[5].startswith("  2001:db8:1:2::7 ") and text[4].startswith(PREFIX + " ")
    # A reload that loses the prefixes: the prefix and its addresses are lost.
    nft_netns.check(["nft", "flush set inet ossec v6p64"])
    states = {(r["address"], r["kind"]): r["state"]
              for r in json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]}
    assert states == {("192.0.2.7", "address"): "in force",
                      ("2001:db8::/64", "prefix"): "lost", ("2001:db8::5", "address"): "lost",
                      (PREFIX, "prefix"): "lost", ("2001:db8:1:2::7", "address"): "lost",
                      ("2001:db8:1:2::8", "address"): "lost"}


def test_a_prefix_someone_else_made_is_listed_as_not_ours_with_the_address_found(
        nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8::5")         # the set of /64 prefixes
    nft_netns.check(["nft", "add element inet ossec v6p64 { 2001:db8:1:2:: }"])
    assert run(nft_netns, install, "add", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert outcome(install) == (
        "add 2001:db8:1:2::7: already blocked: by %s in nftables table inet ossec, set v6p64; "
        "not ours: its delete will leave it (exit 0)" % PREFIX)
    rows = [(r["address"], r["kind"], r["state"], r["prefix"], r["holders"])
            for r in json.loads(admin(nft_netns, install, "list", "--json").stdout)["blocks"]]
    assert rows == [("2001:db8::/64", "prefix", "in force", None, ["2001:db8::5"]),
                    ("2001:db8::5", "address", "in force", "2001:db8::/64", None),
                    (PREFIX, "prefix", "not ours", None, []),
                    ("2001:db8:1:2::7", "address", "not ours", PREFIX, None)]
    # Neither lost nor ours to lift: unblock leaves it.
    result = admin(nft_netns, install, "unblock", "2001:db8:1:2::7")
    assert (result.returncode, result.stderr) == (0, "")
    assert "firewall-drop: not ours, left: " in result.stdout
    assert prefixes(nft_netns) == ["2001:db8:1:2::", "2001:db8::"]


def test_unblock_of_an_address_releases_its_prefix_with_every_address_holding_it(
        nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7", "2001:db8:1:2::8",
                      "2001:db8:1:2::9", "2001:db8::5")
    result = admin(nft_netns, install, "unblock", "2001:db8:1:2::8")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[:2] == [
        "delete 2001:db8:1:2::8: unblocked",
        "  firewall-drop: unblocked: %s from nftables table inet ossec, set v6p64; released 3 "
        "addresses of %s" % (PREFIX, PREFIX)]
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: delete 2001:db8:1:2::8: unblocked: firewall-drop: unblocked: %s from "
        "nftables table inet ossec, set v6p64; released 3 addresses of %s; host-deny: was not "
        "blocked: no block of ours in the ledger (exit 0)" % (PREFIX, PREFIX))
    assert prefixes(nft_netns) == ["2001:db8::"]                 # removed once, the other kept
    # Each address has its delete record; the address asked for last.
    assert prefix_ledger(install)[4:] == [("delete", "2001:db8:1:2::7", "-"),
                                          ("delete", "2001:db8:1:2::9", "-"),
                                          ("delete", "2001:db8:1:2::8", "-")]
    assert [r["address"] for r in json.loads(
        admin(nft_netns, install, "list", "--json").stdout)["blocks"]] == [
        "2001:db8::/64", "2001:db8::5"]
    # The deletes execd still holds find nothing to do.
    for address in ("2001:db8:1:2::7", "2001:db8:1:2::9"):
        assert run(nft_netns, install, "delete", "-", address, "1.1", "5712") == 0
        assert outcome(install) == ("delete %s: was not blocked: no block of ours in the "
                                    "ledger (exit 0)" % address)


def test_unblock_takes_the_prefix_itself_or_an_address_inside_it(nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7", "2001:db8:1:2::8")
    result = admin(nft_netns, install, "unblock", PREFIX, "--json")
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert (data["action"], data["address"], data["status"]) == ("delete", PREFIX, "unblocked")
    assert data["programs"][0]["detail"] == (
        "%s from nftables table inet ossec, set v6p64; released 2 addresses of %s"
        % (PREFIX, PREFIX))
    assert data["programs"][1]["detail"] == "no address of ours holds %s in the ledger" % PREFIX
    assert install.log_lines()[-2].endswith("/bin/ossec-ar unblock %s" % PREFIX)
    assert prefixes(nft_netns) == []
    assert [op for op, _, _ in prefix_ledger(install)] == ["add", "add", "delete", "delete"]
    # An address the ledger never saw, dropped by a prefix it holds.
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7")
    result = admin(nft_netns, install, "unblock", "2001:db8:1:2::99")
    assert (result.returncode, result.stderr) == (0, "")
    assert "released 1 address of %s" % PREFIX in result.stdout
    assert prefixes(nft_netns) == []
    assert prefix_ledger(install)[-1] == ("delete", "2001:db8:1:2::7", "-")
    # Nothing held: nothing to do, as for an address.
    result = admin(nft_netns, install, "unblock", PREFIX)
    assert (result.returncode, result.stdout.splitlines()[0]) == (
        0, "delete %s: was not blocked" % PREFIX)


@pytest.mark.parametrize("given", ["2001:db8:1:2::7/64", "2001:db8:1:2::/128", "10.0.0.0/8",
                                   "2001:db8:1:2::/x", "/64"])
def test_unblock_refuses_what_is_no_prefix_of_ours(nft_netns, install, given):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7")
    log = install.log_lines()
    result = admin(nft_netns, install, "unblock", given)
    assert (result.returncode, result.stdout) == (65, "")
    assert result.stderr.startswith("ossec-ar: refused: not an address, nor an IPv6 prefix ")
    assert (prefixes(nft_netns), install.log_lines()) == (["2001:db8:1:2::"], log)


def test_expire_lifts_each_address_by_its_age_and_the_prefix_with_the_last(nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7", "2001:db8::5")
    age_ledger(install, "firewall-drop", 3 * 3600)
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::8")
    dry = admin(nft_netns, install, "expire", "--older-than", "2h", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert undated(dry.stdout) == [
        "would lift 2001:db8::5; prefix 2001:db8::/64 lifted with it",
        "would lift 2001:db8:1:2::7; prefix %s kept for 1 other" % PREFIX]
    data = json.loads(admin(nft_netns, install, "expire", "--older-than", "2h", "--dry-run",
                            "--json").stdout)
    assert [(r["address"], r["prefix"], r["prefix_lifted"], r["prefix_kept_for"])
            for r in data["expire"]] == [("2001:db8::5", "2001:db8::/64", True, 0),
                                         ("2001:db8:1:2::7", PREFIX, False, 1)]
    assert prefixes(nft_netns) == ["2001:db8:1:2::", "2001:db8::"]
    result = admin(nft_netns, install, "expire", "--older-than", "2h")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "2001:db8::5 (firewall-drop): unblocked: 2001:db8::/64 from nftables table inet ossec,"
        " set v6p64",
        "2001:db8:1:2::7 (firewall-drop): unblocked: 2001:db8:1:2::7; prefix %s kept for 1 "
        "other (nftables)" % PREFIX]
    assert prefixes(nft_netns) == ["2001:db8:1:2::"]              # held by ::8
    age_ledger(install, "firewall-drop", 3 * 3600)
    dry = admin(nft_netns, install, "expire", "--older-than", "2h", "--dry-run")
    assert dry.stdout.startswith("would lift 2001:db8:1:2::8 (firewall-drop, since ")
    assert dry.stdout.endswith("); prefix %s lifted with it\n" % PREFIX)
    result = admin(nft_netns, install, "expire", "--older-than", "2h")
    assert result.stdout == ("2001:db8:1:2::8 (firewall-drop): unblocked: %s from nftables "
                             "table inet ossec, set v6p64\n" % PREFIX)
    assert prefixes(nft_netns) == []


def test_restore_puts_a_lost_prefix_back_once_for_all_its_addresses(nft_netns, install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7", "2001:db8:1:2::8", "2001:db8::5")
    records = prefix_ledger(install)
    nft_netns.check(["nft", "flush set inet ossec v6p64"])            # a reload
    dry = admin(nft_netns, install, "restore", "--dry-run")
    assert undated(dry.stdout) == ["would restore 2001:db8::/64 for 1 address",
                                   "would restore %s for 2 addresses" % PREFIX]
    result = admin(nft_netns, install, "restore")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "2001:db8::/64 (firewall-drop): blocked: 2001:db8::/64 in nftables table inet ossec, "
        "set v6p64",
        "%s (firewall-drop): blocked: %s in nftables table inet ossec, set v6p64"
        % (PREFIX, PREFIX)]
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: restore -: restored: 2001:db8::/64 firewall-drop: blocked; %s "
        "firewall-drop: blocked (exit 0)" % PREFIX)
    assert prefixes(nft_netns) == ["2001:db8:1:2::", "2001:db8::"]
    # Recorded as the add was: one record for each prefix, with the prefix.
    assert prefix_ledger(install) == records + [("add", "2001:db8::5", "2001:db8::/64"),
                                                ("add", "2001:db8:1:2::7", PREFIX)]
    assert {r["state"] for r in json.loads(
        admin(nft_netns, install, "list", "--json").stdout)["blocks"]} == {"in force"}
    assert admin(nft_netns, install, "restore").stdout == "nothing to restore\n"
    # The prefix still goes with its last address.
    for address in ("2001:db8:1:2::7", "2001:db8:1:2::8"):
        assert run(nft_netns, install, "delete", "-", address, "1.1", "5712") == 0
    assert outcome(install) == ("delete 2001:db8:1:2::8: unblocked: %s from nftables table "
                                "inet ossec, set v6p64 (exit 0)" % PREFIX)
    assert prefixes(nft_netns) == ["2001:db8::"]


def test_restore_of_a_prefix_no_longer_allowed_whole_blocks_the_address_alone(nft_netns,
                                                                             install):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7")
    nft_netns.check(["nft", "flush set inet ossec v6p64"])            # a reload
    install.configure(PREFIX_CONFIG + "[allowlist]\naddresses = 2001:db8:1:2::99\n")
    result = admin(nft_netns, install, "restore")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "%s (firewall-drop): blocked: nftables table inet ossec, set v6; %s not blocked"
        " whole: %s holds addresses on the allowlist (2001:db8:1:2::99); the address alone"
        " is" % (PREFIX, PREFIX, PREFIX)]
    assert prefixes(nft_netns) == []
    assert prefix_ledger(install)[-1] == ("add", "2001:db8:1:2::7", "-")
    # Its delete lifts the address (and the prefix, were it back).
    assert run(nft_netns, install, "delete", "-", "2001:db8:1:2::7", "1.1", "5712") == 0
    assert outcome(install) == (
        "delete 2001:db8:1:2::7: unblocked: nftables table inet ossec, set v6 (exit 0)")
    assert nft_netns.check(["nft", "list", "set", "inet", "ossec", "v6"]).count("2001") == 0


def test_restore_since_boot_takes_a_prefix_one_of_whose_addresses_is_recent(nft_netns,
                                                                            install, tmp_path):
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::7", "2001:db8::5")
    age_ledger(install, "firewall-drop", 2 * 3600)
    add_prefix_blocks(nft_netns, install, "2001:db8:1:2::8")
    nft_netns.check(["nft", "flush set inet ossec v6p64"])
    # The system booted an hour ago, as the /proc/stat that restore reads
    # says (bound over the real one for this run alone): whatever the clock.
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3 4\nbtime %d\n" % (time.time() - 3600))
    result = nft_netns.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                            'mount --bind "$0" /proc/stat; exec "$@"', str(stat),
                            os.path.join(install.prefix, "bin", "ossec-ar"), "restore",
                            "--since-boot", "--json"])
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert [(r["address"], r["status"]) for r in data["restored"]] == [(PREFIX, "blocked")]
    assert data["notes"] == ["1 lost blocks made before this boot (or dated in the future) "
                             "left alone: --since-boot"]
    assert prefixes(nft_netns) == ["2001:db8:1:2::"]
