"""The run's shape: invocation line, outcome line, exit code (in-process)."""

import os

import pytest

from conftest import invocation
from ossec_ar import cli, exits

ARGV0 = "/var/ossec/active-response/bin/firewall-drop.sh"
LOG = "/var/ossec/logs/active-responses.log"


@pytest.fixture
def ossec(fs):
    fs.create_dir("/var/ossec/active-response/bin")
    fs.create_dir("/var/ossec/logs")
    return fs


def run(argv, respond):
    code = cli.main("firewall-drop", [ARGV0] + argv, "/var/ossec", respond)
    with open(LOG) as f:
        return code, f.read().splitlines()


def blocked(prefix, request):
    return "blocked", request.address, "iptables chain OSSEC"


def test_two_lines_and_exit_0(ossec):
    code, lines = run(["add", "-", "192.0.2.7", "1326977549.1358625", "5712", "(web1)",
                       "10.0.0.5->/var/log/secure"], blocked)
    assert code == 0
    assert len(lines) == 2
    assert lines[0].endswith(" " + ARGV0 + " add - 192.0.2.7 1326977549.1358625 5712")
    assert lines[1].endswith(" " + ARGV0 + ": add 192.0.2.7: blocked: iptables chain OSSEC"
                             " (exit 0)")


def test_missing_arguments_keep_the_stock_field_count(ossec):
    code, lines = run(["add"], blocked)
    assert code == 64
    assert lines[0].endswith(ARGV0 + " add    ")
    assert lines[1].endswith(ARGV0 + ": add -: usage: no IP address argument; expected: "
                             "add|delete USER IP [ALERT_ID [RULE_ID [LOCATION...]]] (exit 64)")


def test_forged_line_cannot_be_injected(ossec):
    forged = "x 1.1 600\nThu Jan 19 13:52:29 CET 2012 " + ARGV0 + " delete - 192.0.2.9 1.1 1"
    code, lines = run(["add", "-", forged, "1.1", "5712"], blocked)
    assert len(lines) == 2
    # The whole argument stays one token of the add line; no delete appears
    # (and the real ossec-logtest agrees: test_ossec_rules.py).
    program, action, source = invocation(lines[0])
    assert (program, action) == ("firewall-drop.sh", "add")
    assert source.startswith("x\\x201.1\\x20600\\x0aThu")
    assert invocation(lines[1]) is None


@pytest.mark.parametrize("failure,status", [
    (exits.refused(exits.REFUSED, "loopback address"), "refused"),
    (exits.failed(exits.TEMPFAIL, "`iptables -w 60 -S` exited 4: busy"), "failed"),
    (exits.failed(exits.UNAVAILABLE, "no usable firewall tool"), "failed"),
    (exits.failed(exits.NOPERM, "must run as root"), "failed"),
    (exits.failed(exits.CONFIG, "configuration x line 2: y"), "failed"),
])
def test_failures_become_one_outcome_line(ossec, failure, status):
    def respond(prefix, request):
        raise failure
    code, lines = run(["add", "-", "192.0.2.7", "1.1", "2"], respond)
    assert code == failure.code
    assert lines[1].endswith(": add 192.0.2.7: %s: %s (exit %d)"
                             % (status, failure.reason, failure.code))


def test_internal_error_is_exit_70_with_a_one_line_summary(ossec):
    def respond(prefix, request):
        {}["missing"]
    code, lines = run(["delete", "-", "192.0.2.7"], respond)
    assert code == exits.INTERNAL == 70
    assert len(lines) == 2
    assert lines[1].endswith(": delete 192.0.2.7: failed: internal error: KeyError: "
                             "'missing' at test_cli.py:%d in respond (exit 70)"
                             % (respond.__code__.co_firstlineno + 1))


@pytest.mark.parametrize("error,what", [
    (MemoryError(), "out of memory"),
    # What CPython raises when an import fails for want of memory (seen
    # under `prlimit --as` in test_resources).
    (SystemError("error return without exception set"),
     "out of memory (the interpreter failed: error return without exception set)"),
    (OSError(24, "Too many open files"), "Too many open files"),
])
def test_short_of_resources_is_exit_75(ossec, error, what):
    def respond(prefix, request):
        raise error
    code, lines = run(["add", "-", "192.0.2.7", "1.1", "2"], respond)
    assert code == exits.TEMPFAIL == 75
    assert lines[1].endswith(": add 192.0.2.7: failed: the system is short of resources: "
                             "%s at test_cli.py:%d in respond (exit 75)"
                             % (what, respond.__code__.co_firstlineno + 1))


@pytest.mark.parametrize("fails", ["as_stop", "outcome_line"])
def test_memory_gone_even_for_the_outcome_is_the_prepared_line(ossec, monkeypatch, fails):
    """Short of memory, putting the failure into words can fail in turn
    (test_resources saw a run end after its invocation line): the outcome
    line made at the start is written instead, and the exit code is 75."""
    def respond(prefix, request):
        raise MemoryError()

    def no_memory(*args):
        raise MemoryError()
    real = cli.outcome_line
    if fails == "outcome_line":         # the prepared line is made first, then none
        made = []

        def outcome_line(*args):
            if made:
                raise MemoryError()
            made.append(args)
            return real(*args)
        monkeypatch.setattr(cli, "outcome_line", outcome_line)
    else:
        monkeypatch.setattr(cli, "as_stop", no_memory)
    code, lines = run(["add", "-", "192.0.2.7", "1.1", "2"], respond)
    assert code == 75
    assert len(lines) == 2 and invocation(lines[0]) == ("firewall-drop.sh", "add",
                                                        "192.0.2.7")
    assert lines[1].endswith(ARGV0 + ": add 192.0.2.7: failed: the system is short of "
                             "resources: out of memory (exit 75)")


def test_memory_gone_before_the_log_was_opened_writes_nothing(ossec, monkeypatch):
    monkeypatch.setattr(cli, "invocation_line", lambda *args: (_ for _ in ()).throw(
        MemoryError()))
    with pytest.raises(MemoryError):        # the executable's guard: exit 75
        cli.main("firewall-drop", [ARGV0, "add", "-", "192.0.2.7"], "/var/ossec",
                 lambda prefix, request: None)
    assert not os.path.exists(LOG)


def test_unknown_action_is_escaped_once(ossec):
    code, lines = run(["add\nx\\y", "-", "192.0.2.7"], blocked)
    assert code == 64
    assert lines[0].endswith(" add\\x0ax\\\\y - 192.0.2.7  ")
    assert ": - 192.0.2.7: usage: unknown action add\\x0ax\\\\y; expected:" in lines[1]


def test_tool_output_with_newlines_stays_on_one_line(ossec):
    def respond(prefix, request):
        raise exits.failed(exits.TEMPFAIL, "tool said\nFri Jan 1 forged\x1b[0m")
    _, lines = run(["add", "-", "192.0.2.7"], respond)
    assert len(lines) == 2
    assert lines[1].endswith("failed: tool said\\x0aFri Jan 1 forged\\x1b[0m (exit 75)")


@pytest.mark.parametrize("detail,shown", [
    # Printable text with a backslash: shown as is, a reader could not
    # tell the tool's own "\\x0a" from an escaped newline.
    ("C:\\x0aforged \\ x", "C:\\\\x0aforged \\\\ x"),
    ("C:\\x0a\nforged", "C:\\\\x0a\\x0aforged"),
], ids=["printable", "with-a-newline"])
def test_a_backslash_in_the_detail_is_doubled(ossec, detail, shown):
    def respond(prefix, request):
        return "unblocked", request.address, detail
    code, lines = run(["delete", "-", "192.0.2.7"], respond)
    assert (code, len(lines)) == (0, 2)
    assert lines[1].endswith(": delete 192.0.2.7: unblocked: %s (exit 0)" % shown)


def test_relative_argv0_is_made_absolute(ossec, monkeypatch):
    monkeypatch.chdir("/var/ossec")
    code = cli.main("firewall-drop", ["active-response/bin/firewall-drop.sh", "add", "-",
                                      "192.0.2.7"], "/var/ossec", blocked)
    assert code == 0
    with open(LOG) as f:
        assert " " + ARGV0 + " add - 192.0.2.7  " in f.read()


def test_run_moves_to_the_root_directory(ossec, monkeypatch):
    monkeypatch.chdir("/var/ossec/logs")
    run(["add", "-", "192.0.2.7"], blocked)
    assert os.getcwd() == "/"


def test_nothing_on_stdout_or_stderr(ossec, capfd):
    run(["add", "-", "192.0.2.7"], blocked)
    run(["frob"], blocked)
    assert capfd.readouterr() == ("", "")


# A person at a terminal: a usage error says so on stderr, with the usage line.

def on_a_terminal(argv, stdin_too=False, input=None):
    """Run *argv* with stderr (and stdin, if asked) on a pseudo-terminal, or
    *input* on a pipe: (exit code, stdout, what the terminal showed)."""
    import subprocess
    master, slave = os.openpty()
    stdin = slave if stdin_too else subprocess.DEVNULL if input is None else None
    try:
        result = subprocess.run(argv, stdin=stdin, input=input,
                                stdout=subprocess.PIPE, stderr=slave, timeout=60)
    finally:
        os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:                 # EIO: the terminal has no writer left
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return result.returncode, result.stdout, shown.decode().replace("\r\n", "\n")


USAGE_LINES = ("usage: {0} add|delete USER IP [ALERT_ID [RULE_ID [LOCATION...]]]\n"
               "   or: {0} < REQUEST  (one JSON line, as Wazuh's execd sends it)\n")


def shown_lines(shown):
    return shown.splitlines()


def dateless(line, install):
    """The log's *line* without its date: from the program's path on."""
    return line[line.index(" " + install.prefix) + 1:]


@pytest.mark.parametrize("name", ["firewall-drop.sh", "host-deny.sh", "unblock.sh"])
def test_a_usage_error_on_a_terminal_shows_the_usage_line(install, name):
    code, out, shown = on_a_terminal([install.program(name), "block", "-", "192.0.2.7"])
    outcome = ("usage: unknown action block; expected: add|delete USER IP [ALERT_ID "
               "[RULE_ID [LOCATION...]]] (exit 64)")
    assert (code, out) == (64, b"")
    lines = install.log_lines()
    assert len(lines) == 2                          # one invocation, one outcome
    assert lines[1].endswith("/%s: - 192.0.2.7: %s" % (name, outcome))
    # The usage lines, then the log's outcome line without its date.
    assert shown == USAGE_LINES.format(name) + dateless(lines[1], install) + "\n"


def test_no_arguments_at_a_terminal_is_a_usage_error_not_a_wait(install):
    # No arguments is Wazuh's form, but execd writes into a pipe, never a
    # terminal: a person is typing, and is told at once.
    code, out, shown = on_a_terminal([install.program()], stdin_too=True)
    assert (code, out) == (64, b"")
    reason = ("no arguments, and standard input is a terminal, not a request from execd; "
              "expected: add|delete USER IP [ALERT_ID [RULE_ID [LOCATION...]]]")
    lines = install.log_lines()
    assert len(lines) == 2
    assert lines[0].endswith("/firewall-drop.sh: (no request read)")
    assert lines[1].endswith("/firewall-drop.sh: - -: usage: %s (exit 64)" % reason)
    assert shown == (USAGE_LINES.format("firewall-drop.sh")
                     + "%s/firewall-drop.sh: - -: usage: %s (exit 64)\n" % (install.bin, reason))


def outcomes_by_hand(install, netns):
    """An add, a refusal and a failure of firewall-drop.sh, as a person runs
    them: [(argv, exit code it must give, what the log's outcome ends with)]."""
    program = netns.prefix() + [install.program()]
    return [
        (program + ["add", "-", "192.0.2.91", "1", "1"], 0, ": add 192.0.2.91: blocked: "),
        (program + ["add", "-", "127.0.0.1", "1", "1"], 65,
         ": add 127.0.0.1: refused: loopback address (exit 65)"),
        (program + ["add", "-", "192.0.2.92", "1", "1"], 78, " (exit 78)"),
    ]


def test_a_run_by_hand_shows_its_outcome_line_on_the_terminal(install, nft_netns):
    """A person at a terminal sees exactly one line, the log's outcome line
    without its date, for an add, a refusal and a failure; stdout stays
    empty."""
    for argv, expected, ending in outcomes_by_hand(install, nft_netns):
        if expected == 78:
            install.configure("[firewall-drop]\nbackend = frob\n")
        code, out, shown = on_a_terminal(argv)
        last = install.log_lines()[-1]
        assert (code, out) == (expected, b""), shown
        assert ending in last
        assert shown_lines(shown) == [dateless(last, install)]
        assert shown.startswith(install.program() + ": add ")


@pytest.mark.parametrize("stderr", ["pipe", "devnull"])
def test_a_run_without_a_terminal_writes_nothing(install, nft_netns, stderr):
    """Under execd, cron or a pipe: zero bytes on stdout and stderr, for
    the same three runs."""
    import subprocess
    for argv, expected, ending in outcomes_by_hand(install, nft_netns):
        if expected == 78:
            install.configure("[firewall-drop]\nbackend = frob\n")
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE if stderr == "pipe" else
                                subprocess.DEVNULL, timeout=60)
        assert result.returncode == expected
        assert ending in install.log_lines()[-1]
        assert (result.stdout, result.stderr) == (b"", b"" if stderr == "pipe" else None)
