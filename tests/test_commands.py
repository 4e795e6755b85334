"""The fork/exec runner, with real processes."""

import os
import time

import pytest

from ossec_ar import commands


@pytest.fixture(autouse=True, params=["posix_spawn", "fork"])
def start(request, monkeypatch):
    """Every test runs with both ways of starting a command: posix_spawn
    (Python 3.8+) and the fork/exec that Python 3.6 and 3.7 use."""
    assert commands._posix_spawn is not None
    if request.param == "fork":
        monkeypatch.setattr(commands, "_posix_spawn", None)
    return request.param


def test_output_and_exit_code():
    result = commands.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert result.returncode == 3
    assert result.output.splitlines() == ["out", "err"]
    assert not result.ok
    assert result.describe() == "`/bin/sh -c echo out; echo err >&2; exit 3` exited 3: out / err"


def test_clean_environment_and_stdin(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/tmp/evil")
    result = commands.run(["/usr/bin/env"], 10)
    assert result.ok
    assert sorted(result.output.splitlines()) == [
        "LC_ALL=C", "PATH=/usr/sbin:/sbin:/usr/bin:/bin"]
    result = commands.run(["/bin/sh", "-c", "cat; echo end"], 10)
    assert result.output.splitlines() == ["end"]


def test_input_is_fed_on_stdin_then_end_of_file():
    rules = b"@1 block in quick from 192.0.2.7/32 to any\n"
    result = commands.run(["/bin/sh", "-c", "cat; echo end"], 10, input=rules)
    assert result.output.splitlines() == [rules.decode().strip(), "end"]


def test_input_larger_than_a_pipe_promises_is_refused():
    with pytest.raises(ValueError):
        commands.run(["/bin/cat"], 10, input=b"x" * (commands.MAX_INPUT + 1))


def test_tools_are_found_only_in_the_chosen_directories(tmp_path):
    tool = tmp_path / "pfctl"
    tool.write_text("#!/bin/sh\necho \"$PATH\"\n")
    tool.chmod(0o755)
    assert commands.Tools().find("pfctl") is None
    chosen = commands.Tools([str(tmp_path)])
    assert chosen.find("pfctl") == str(tool)
    assert chosen.find("sh") is None                 # the defaults are gone
    assert chosen.run([str(tool)], 10).output == str(tmp_path) + "\n"


def test_signals_are_default_in_the_child():
    import signal
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)   # as execd leaves it
    try:
        result = commands.run(["/bin/sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"],
                              10)
    finally:
        signal.signal(signal.SIGHUP, old)
    ignored = int(result.output.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGHUP - 1))
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_timeout_kills_the_command():
    start = time.monotonic()
    result = commands.run(["/bin/sleep", "300"], 0.5)
    assert time.monotonic() - start < 60      # killed, not waited for
    assert result.returncode is None
    assert result.describe() == "`/bin/sleep 300` timed out"


def test_missing_executable_is_127_with_the_reason():
    result = commands.run(["/nonexistent/iptables", "-S"], 10)
    assert result.returncode == 127
    assert result.output == "cannot execute: No such file or directory"


def test_killed_command_is_reported():
    result = commands.run(["/bin/sh", "-c", "kill -9 $$"], 10)
    assert result.returncode == -9
    assert "was killed by signal 9" in result.describe()


def test_no_descriptor_leaks():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        commands.run(["/bin/true"], 10)
    assert len(os.listdir("/proc/self/fd")) == before


def test_no_other_descriptor_reaches_the_tool():
    inherited = os.open("/dev/null", os.O_RDONLY)      # as execd might leave one
    os.set_inheritable(inherited, True)
    try:
        result = commands.run(["/bin/ls", "/proc/self/fd"], 10)
    finally:
        os.close(inherited)
    assert sorted(result.output.split()) == ["0", "1", "2", "3"]   # 3: ls's own listing


def test_find_tool_uses_only_the_fixed_directories(monkeypatch):
    monkeypatch.setenv("PATH", "/tmp/evil")
    assert commands.Tools().find("sh") in ("/usr/bin/sh", "/bin/sh")
    assert commands.Tools().find("no-such-tool-here") is None
