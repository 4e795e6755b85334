"""Out of descriptors, memory or processes, and descriptors closed on
entry: the installed programs answer with the documented code (75, a
temporary failure) or do their job, in both protocols; never 70, 78, a
traceback or exit 1 from our code, and the outcome line is written
whenever the log could be opened."""

import os
import re
import subprocess
import uuid

import pytest

from test_wazuh import WAZUH_LINE, message, with_command

ADDRESS = "192.0.2.7"
# A request and, ahead of time, execd's answer to our check_keys line.
REQUEST = message("add", srcip=ADDRESS)
WAZUH_INPUT = REQUEST + b"\n" + with_command(REQUEST, "continue") + b"\n"
OUR_CODE = re.compile(r"ossec_ar|active-response/bin/")


def run(netns, install, form, wrap=(), name=None):
    """One add of ADDRESS through *form* ("ossec" or "wazuh"), wrapped."""
    if form == "ossec":
        argv = [install.program(name or "firewall-drop.sh"), "add", "-", ADDRESS, "1.1",
                "5712"]
        data = b""
    else:
        # As Wazuh's execd runs it: a relative path from the install directory.
        argv = ["active-response/bin/" + (name or "firewall-drop")]
        data = WAZUH_INPUT
    return subprocess.run(netns.prefix() + list(wrap) + argv, input=data, cwd=install.prefix,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def check_run(result, install, form):
    """What every run must show, whatever it ran out of."""
    lines = install.log_lines()
    stderr = result.stderr.decode("utf-8", "replace")
    assert not OUR_CODE.search(stderr), stderr       # no traceback from our code
    if lines:
        assert len(lines) == 2, lines                # one invocation, one outcome
        assert lines[1].endswith("(exit %d)" % result.returncode)
        if form == "wazuh":
            assert all(WAZUH_LINE.match(line) for line in lines), lines
    assert result.returncode in (0, 75), (result.returncode, stderr, lines)
    return lines


@pytest.mark.parametrize("form", ["ossec", "wazuh"])
def test_out_of_descriptors_is_75_or_done(nft_netns, install, form):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    codes = {}
    for limit in range(4, 24):
        install.reset()
        install.configure("[firewall-drop]\nbackend = iptables\n")
        result = run(nft_netns, install, form, ["prlimit", "--nofile=%d:%d" % (limit, limit),
                                                "--"])
        lines = check_run(result, install, form)
        codes[limit] = result.returncode
        if result.returncode == 75:
            assert lines and "Too many open files" in lines[1], lines
        else:
            assert "-A OSSEC -s %s/32 -j DROP" % ADDRESS in nft_netns.rules()
            nft_netns.check(["iptables", "-w", "-F", "OSSEC"])
    # The smallest limits fail, the larger ones work: both paths were taken.
    assert codes[4] == 75 and codes[23] == 0, codes


def test_out_of_processes_is_75(nft_netns, install):
    """A pids cgroup that holds the program alone: it cannot start a tool."""
    group = "/sys/fs/cgroup/pids/oar-" + uuid.uuid4().hex[:10]
    os.mkdir(group)
    try:
        with open(os.path.join(group, "pids.max"), "w") as f:
            f.write("1")
        install.configure("[firewall-drop]\nbackend = iptables\n")
        for form in ("ossec", "wazuh"):
            install.reset()
            install.configure("[firewall-drop]\nbackend = iptables\n")
            enter = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group]
            argv = ([install.program(), "add", "-", ADDRESS, "1.1", "5712"] if form == "ossec"
                    else ["active-response/bin/firewall-drop"])
            result = subprocess.run(enter + nft_netns.prefix() + argv,
                                    input=b"" if form == "ossec" else WAZUH_INPUT,
                                    cwd=install.prefix, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, timeout=60)
            lines = check_run(result, install, form)
            assert result.returncode == 75
            assert lines[1].split(": failed: ", 1)[1].startswith(
                "cannot run /usr/sbin/iptables: Resource temporarily unavailable"), lines
    finally:
        os.rmdir(group)
    assert nft_netns.rules() == []


def test_out_of_memory_is_75_or_done(nft_netns, install):
    """Address-space limits from where the interpreter cannot even start to
    where the block is done.  Below some limit Python fails before any of
    our code runs; above it, our code answers."""
    install.configure("[firewall-drop]\nbackend = iptables\n")

    def attempt(kib):
        install.reset()
        install.configure("[firewall-drop]\nbackend = iptables\n")
        result = run(nft_netns, install, "ossec", ["prlimit", "--as=%d" % (kib * 1024), "--"])
        stderr = result.stderr.decode("utf-8", "replace")
        assert not OUR_CODE.search(stderr), stderr
        lines = install.log_lines()
        if result.returncode not in (0, 75):
            # The interpreter (or the dynamic loader, which may just crash)
            # gave up before our code could write anything.
            assert lines == [], (kib, result.returncode, stderr)
            return "interpreter"
        check_run(result, install, "ossec")
        if result.returncode == 0:
            nft_netns.check(["iptables", "-w", "-F", "OSSEC"])
            return "done"
        return "75"

    # The smallest limit at which the block is done, by bisection...
    low, high = 4 * 1024, 256 * 1024
    assert attempt(low) == "interpreter" and attempt(high) == "done"
    while high - low > 64:
        middle = (low + high) // 2
        if attempt(middle) == "done":
            high = middle
        else:
            low = middle
    # ...then every step below it, down past where the interpreter fails.
    seen = [attempt(kib) for kib in range(high, max(high - 4096, 4096), -64)]
    assert "75" in seen and "interpreter" in seen, seen


def test_closed_descriptors_on_entry_never_make_the_log_stdout(nft_netns, install):
    # execd with stdout closed: check_keys goes to /dev/null, never into the log.
    install.configure("[firewall-drop]\nbackend = iptables\n")
    result = run(nft_netns, install, "wazuh", ["sh", "-c", 'exec 1>&- 2>&-; exec "$@"', "sh"])
    lines = check_run(result, install, "wazuh")
    assert result.returncode == 0 and result.stdout == b""
    assert [WAZUH_LINE.match(line).group(2) for line in lines] == [
        REQUEST.decode(), "add %s: blocked: iptables chain OSSEC (repaired: created chain "
        "OSSEC, jump from INPUT, jump from FORWARD) (rule 5712, alert "
        "1326977549.1358625) (exit 0)" % ADDRESS]
    # All three closed: the request reads as end of input, refused in the log.
    install.reset()
    install.configure("[firewall-drop]\nbackend = iptables\n")
    result = run(nft_netns, install, "wazuh", ["sh", "-c", 'exec 0<&- 1>&- 2>&-; exec "$@"',
                                               "sh"])
    lines = check_run(result, install, "wazuh") if result.returncode in (0, 75) else \
        install.log_lines()
    assert result.returncode == 64
    assert lines[1].endswith("- -: usage: no request: end of input (exit 64)"), lines
    # The OSSEC form with all three closed writes its two lines as usual.
    install.reset()
    install.configure("[firewall-drop]\nbackend = iptables\n")
    result = run(nft_netns, install, "ossec", ["sh", "-c", 'exec 0<&- 1>&- 2>&-; exec "$@"',
                                               "sh"])
    lines = check_run(result, install, "ossec")
    assert result.returncode == 0 and len(lines) == 2


def test_host_deny_out_of_descriptors_is_75_or_done(install, etc_copy):
    """host-deny's read-modify-write of hosts.deny, at every descriptor
    limit from where nothing can open to where the line is written: 75
    with its line, or done; the file whole either way."""
    deny = os.path.join(etc_copy, "hosts.deny")
    private = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
               'mount --bind "$0" /etc; exec "$@"', etc_copy]
    codes = {}
    for limit in range(4, 24):
        install.reset()
        with open(deny, "w") as f:
            f.write("# the administrator's\nALL: 198.51.100.1\n")
        result = subprocess.run(private + ["prlimit", "--nofile=%d:%d" % (limit, limit), "--",
                                           install.program("host-deny.sh"), "add", "-",
                                           ADDRESS, "1.1", "5712"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        lines = check_run(result, install, "ossec")
        codes[limit] = result.returncode
        with open(deny) as f:
            text = f.read()
        if result.returncode == 75:
            assert lines and "Too many open files" in lines[1], (limit, lines)
            assert text == "# the administrator's\nALL: 198.51.100.1\n"
        else:
            assert text == "# the administrator's\nALL: 198.51.100.1\nALL:%s\n" % ADDRESS
    assert codes[4] == 75 and codes[23] == 0, codes
