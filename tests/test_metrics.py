"""ossec-ar metrics: Prometheus' text format, checked by the real promtool
(Debian's prometheus package, which tools/setup installs for these tests),
from real blocks in private network namespaces; and its --output, which
replaces the file atomically and refuses what the ossec user plants."""

import calendar
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import require_root, state_file
from ossec_ar import ledger
from test_admin import admin

PROMTOOL = "/usr/bin/promtool"
UID = GID = 61234           # an unprivileged user: the ossec user, or the collector's
LOG_TAIL = 1 << 20


@pytest.fixture
def install(install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    return install


def promtool(text):
    """``promtool check metrics`` of *text*: (exit code, what it said)."""
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    return result.returncode, result.stdout


def metrics(netns, install, *args):
    """ossec-ar metrics' output, run in UTC: Wazuh's dates are local time."""
    result = netns.run([os.path.join(install.prefix, "bin", "ossec-ar"), "metrics"]
                       + list(args), env=UTC_ENV)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def samples(text):
    """{(name, ((label, value), ...)): value} of the text's samples."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        assert match, line
        labels = tuple(sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or "")))
        found[match.group(1), labels] = float(match.group(3))
    return found


UTC_ENV = {"PATH": os.environ["PATH"], "TZ": "UTC"}


def program(install, netns, *args):
    """firewall-drop.sh's exit code; its log lines dated in UTC."""
    return netns.run([install.program()] + list(args), env=UTC_ENV).returncode


def in_force(name="firewall-drop", backend="nftables"):
    return ("ossec_ar_blocks_in_force", (("backend", backend), ("program", name)))


# promtool with 0, 1 and 10,000 blocks

def test_promtool_accepts_the_metrics_with_no_blocks(nft_netns, install):
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    found = samples(text)
    assert found[("ossec_ar_ledger_size_bytes", (("program", "firewall-drop"),))] == 0
    assert not [key for key in found if key[0].startswith("ossec_ar_blocks_")]
    for name in ("in_force", "lost", "unknown", "not_ours"):
        assert "# TYPE ossec_ar_blocks_%s gauge\n" % name in text


def test_promtool_accepts_the_metrics_with_one_block(nft_netns, install):
    assert program(install, nft_netns, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    assert samples(text)[in_force()] == 1


@pytest.mark.time_bound(600)
def test_promtool_accepts_the_metrics_with_ten_thousand_blocks(nft_netns, install, tmp_path):
    assert program(install, nft_netns, "add", "-", "198.19.0.1", "1.1", "5712") == 0
    more = ["198.18.%d.%d" % (n // 256, n % 256) for n in range(1, 10000)]
    script = tmp_path / "elements.nft"
    script.write_text("add element inet ossec v4 { %s }\n" % ", ".join(more))
    nft_netns.check(["nft", "-f", str(script)])
    path = state_file(install.prefix, "firewall-drop.ledger")
    now = time.time()
    with open(path, "a") as f:
        for address in more:
            f.write(ledger.Record(now, "add", "firewall-drop", address, "nftables").line())
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    found = samples(text)
    assert found[in_force()] == 10000
    assert found[("ossec_ar_ledger_size_bytes", (("program", "firewall-drop"),))] == \
        os.path.getsize(path)


# the values

def test_blocks_found_not_ours_are_counted_apart(nft_netns, install):
    """The ledger's ``found`` records (an add found the address blocked by
    someone else) count as not ours, never as lost nor in force, and never
    as the oldest block."""
    assert program(install, nft_netns, "add", "-", "192.0.2.1", "1.1", "5712") == 0
    nft_netns.check(["nft", "add element inet ossec v4 { 198.51.100.78 }"])
    long_ago = time.time() - 3 * 3600
    for name, address, backend in (("firewall-drop", "198.51.100.77", "nftables"),
                                   ("firewall-drop", "198.51.100.78", "nftables"),
                                   ("host-deny", "192.0.2.79", "/etc/hosts.deny")):
        with open(state_file(install.prefix, name + ".ledger"), "a") as f:
            f.write(ledger.Record(long_ago, "found", name, address, backend).line())
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    found = samples(text)
    assert {key: value for key, value in found.items()
            if key[0].startswith("ossec_ar_blocks_")} == {
        in_force(): 1,
        ("ossec_ar_blocks_not_ours", (("backend", "nftables"),
                                      ("program", "firewall-drop"))): 2,
        ("ossec_ar_blocks_not_ours", (("backend", "/etc/hosts.deny"),
                                      ("program", "host-deny"))): 1}
    assert found[("ossec_ar_oldest_block_age_seconds", (("program", "firewall-drop"),))] < 3600
    assert "# HELP ossec_ar_blocks_not_ours Blocks that an add found already made by " \
        "someone else" in text



def test_a_prefix_counts_through_the_addresses_that_hold_it(nft_netns, install):
    """With ipv6_prefix, every address the ledger holds counts once, in its
    prefix's state, and the prefix is not counted again; a prefix that only
    the host shows counts as one unknown block."""
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n")
    for address in ("2001:db8:1:2::7", "2001:db8:1:2::8", "2001:db8:1:2::9", "2001:db8::5",
                    "192.0.2.1"):
        assert program(install, nft_netns, "add", "-", address, "1.1", "5712") == 0
    nft_netns.check(["nft", "add element inet ossec v6p64 { 2001:db8:9:9:: }"])  # unknown
    nft_netns.check(["nft", "delete element inet ossec v6p64 { 2001:db8:: }"])    # lost
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    found = samples(text)
    labels = (("backend", "nftables"), ("program", "firewall-drop"))
    assert {key: value for key, value in found.items()
            if key[0].startswith("ossec_ar_blocks_")} == {
        in_force(): 4,
        ("ossec_ar_blocks_lost", labels): 1,
        ("ossec_ar_blocks_unknown", labels): 1}


UTC_FAILED = "Thu Jan 19 13:52:29 UTC 2012"
WAZUH_REFUSED = "2021/05/01 10:00:00"


def test_the_values_of_known_blocks_lost_blocks_and_failures(nft_netns, install):
    bin_path = install.program()
    with open(install.log_file, "w") as f:
        # A failure dated in C's format, a refusal in Wazuh's; then lines
        # that only look like outcomes: an invocation line whose argument
        # the attacker wrote, and a line of another program.
        f.write("%s %s: add 192.0.2.50: failed: the lock was held (exit 75)\n"
                % (UTC_FAILED, bin_path))
        f.write("%s active-response/bin/firewall-drop: add 192.0.2.51: refused: loopback "
                "address (exit 65)\n" % WAZUH_REFUSED)
        f.write("Fri Jan 20 13:52:29 UTC 2012 %s add - x:\\x20failed:\\x20(exit\\x2075) 1 2\n"
                % bin_path)
    before = time.time()
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert program(install, nft_netns, "add", "-", address, "1.1", "5712") == 0
    after = time.time()
    nft_netns.check(["nft", "delete element inet ossec v4 { 192.0.2.2 }"])      # lost
    nft_netns.check(["nft", "add element inet ossec v4 { 198.51.100.9 }"])      # unknown
    text = metrics(nft_netns, install)
    assert promtool(text) == (0, "")
    found = samples(text)
    assert found[in_force()] == 2
    assert found[("ossec_ar_blocks_lost", (("backend", "nftables"),
                                           ("program", "firewall-drop")))] == 1
    assert found[("ossec_ar_blocks_unknown", (("backend", "nftables"),
                                              ("program", "firewall-drop")))] == 1
    age = found[("ossec_ar_oldest_block_age_seconds", (("program", "firewall-drop"),))]
    assert 0 <= age <= time.time() - before + 1
    assert found[("ossec_ar_last_failed_timestamp_seconds", ())] == calendar.timegm(
        (2012, 1, 19, 13, 52, 29, 0, 0, 0))
    assert found[("ossec_ar_last_refused_timestamp_seconds", ())] == calendar.timegm(
        (2021, 5, 1, 10, 0, 0, 0, 0, 0))
    ledgers = os.path.join(install.prefix, "var", "ossec-ar")
    assert found[("ossec_ar_ledger_size_bytes", (("program", "firewall-drop"),))] == \
        os.path.getsize(os.path.join(ledgers, "firewall-drop.ledger"))
    assert found[("ossec_ar_ledger_size_bytes", (("program", "host-deny"),))] == 0

    # Real outcomes now: a refusal and a failure (a configuration that is
    # broken for adds), both later than anything above.
    assert program(install, nft_netns, "add", "-", "127.0.0.1", "1.1", "5712") == 65
    found = samples(metrics(nft_netns, install))
    refused = found[("ossec_ar_last_refused_timestamp_seconds", ())]
    assert int(before) <= refused <= time.time() + 1
    assert found[("ossec_ar_last_failed_timestamp_seconds", ())] < after
    install.configure("[firewall-drop]\nbackend = frob\n")
    assert program(install, nft_netns, "add", "-", "192.0.2.9", "1.1", "5712") == 78
    install.configure("[firewall-drop]\nbackend = nftables\n")
    found = samples(metrics(nft_netns, install))
    assert int(before) <= found[("ossec_ar_last_failed_timestamp_seconds", ())] <= \
        time.time() + 1


def test_a_log_of_a_gigabyte_is_read_no_further_back_than_its_last_mebibyte(nft_netns,
                                                                            install):
    line = "%s %s: add 192.0.2.%d: %s: reason (exit %d)\n"
    size = 1 << 30
    with open(install.log_file, "w") as f:
        f.write(line % (UTC_FAILED, install.program(), 1, "failed", 75))   # at its start
        f.truncate(size - LOG_TAIL - 200)
        f.seek(0, os.SEEK_END)
        # Just before the last MiB: never read.
        f.write(line % (UTC_FAILED, install.program(), 2, "failed", 75))
        f.truncate(size - 1000)
        f.seek(0, os.SEEK_END)
        # (The sparse gap reads as NUL bytes, one "line" with the one above.)
        f.write("\n" + line % ("Sat Jan 21 13:52:29 UTC 2012", install.program(), 3,
                               "refused", 65))
    assert os.path.getsize(install.log_file) < size
    found = samples(metrics(nft_netns, install))
    assert ("ossec_ar_last_failed_timestamp_seconds", ()) not in found
    assert found[("ossec_ar_last_refused_timestamp_seconds", ())] == calendar.timegm(
        (2012, 1, 21, 13, 52, 29, 0, 0, 0))
    help_text = admin(nft_netns, install, "metrics", "--help").stdout
    assert "the last MiB of active-responses.log at most" in " ".join(help_text.split())


# --output

def test_output_replaces_the_file_atomically_in_a_directory_of_another_user(
        nft_netns, install, tmp_path):
    require_root()
    directory = tmp_path / "textfile"
    directory.mkdir()
    os.chown(str(directory), UID, GID)
    target = str(directory / "ossec-ar.prom")
    assert admin(nft_netns, install, "metrics", "--output", target).stdout == ""
    first = os.stat(target)
    assert program(install, nft_netns, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    result = admin(nft_netns, install, "metrics", "--output", target)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    second = os.stat(target)
    assert second.st_ino != first.st_ino                # a new file, renamed into place
    assert (stat.S_IMODE(second.st_mode), second.st_uid) == (0o644, 0)
    assert sorted(os.listdir(str(directory))) == ["ossec-ar.prom"]     # no temporary left
    with open(target) as f:
        text = f.read()
    assert promtool(text) == (0, "")
    assert samples(text)[in_force()] == 1


def as_unprivileged(script, *args):
    return subprocess.run(["/usr/bin/python3", "-c", script] + list(args), user=UID,
                          group=GID, extra_groups=[], timeout=30,
                          stdin=subprocess.DEVNULL).returncode


@pytest.fixture
def open_tmp():
    """A directory under /tmp that the unprivileged user can reach (pytest's
    own are root's, mode 0700)."""
    top = tempfile.mkdtemp(dir="/tmp", prefix="ossec-ar-metrics.")
    os.chmod(top, 0o755)
    yield pathlib.Path(top)
    shutil.rmtree(top)


@pytest.mark.parametrize("planted", ["fifo", "symlink"])
def test_output_refuses_what_the_ossec_user_planted(nft_netns, install, open_tmp, planted):
    require_root()
    tmp_path = open_tmp
    directory = tmp_path / "logs"
    directory.mkdir()
    os.chown(str(directory), UID, GID)
    target = str(directory / "ossec-ar.prom")
    victim = tmp_path / "root-only"
    victim.write_text("root's own\n")
    plant = ("import os, sys; os.mkfifo(sys.argv[1])" if planted == "fifo" else
             "import os, sys; os.symlink(sys.argv[2], sys.argv[1])")
    assert as_unprivileged(plant, target, str(victim)) == 0
    result = admin(nft_netns, install, "metrics", "--output", target)
    assert result.returncode == 74
    assert result.stdout == ""
    kind = "a FIFO" if planted == "fifo" else "a symbolic link"
    assert result.stderr == "ossec-ar: failed: cannot write %s: is %s, not a regular file; " \
        "nothing written (exit 74)\n" % (target, kind)
    info = os.lstat(target)
    assert (stat.S_ISFIFO if planted == "fifo" else stat.S_ISLNK)(info.st_mode)
    assert victim.read_text() == "root's own\n"
    assert sorted(os.listdir(str(directory))) == ["ossec-ar.prom"]
