"""The ledger: records, replay, compaction, and its faults (a torn tail, a
damaged line, a full disk, a process killed mid-write)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from ossec_ar import ledger

PATH = "/var/ossec/var/ossec-ar/firewall-drop.ledger"


@pytest.fixture
def fs(fs):
    """The fake file system with the install's prefix, as on every agent."""
    fs.create_dir("/var/ossec")
    return fs


def add(prefix, address, op="add", backend="iptables"):
    assert ledger.record(prefix, "firewall-drop", op, address, backend, "5712", "1.1") is None


def test_records_replay_to_the_blocks_in_force(fs):
    add("/var/ossec", "192.0.2.7")
    add("/var/ossec", "192.0.2.8")
    add("/var/ossec", "192.0.2.7")                       # again: keeps its first time
    add("/var/ossec", "192.0.2.8", op="delete", backend="-")
    records, skipped = ledger.read(PATH)
    assert skipped == [] and [r.op for r in records] == ["add", "add", "add", "delete"]
    blocks = ledger.in_force(records)
    assert list(blocks) == ["192.0.2.7"]
    assert blocks["192.0.2.7"].time == records[0].time
    assert (blocks["192.0.2.7"].backend, blocks["192.0.2.7"].rule,
            blocks["192.0.2.7"].alert) == ("iptables", "5712", "1.1")
    assert oct(os.stat(PATH).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(PATH)).st_mode & 0o777) == "0o700"


def test_hostile_ids_are_escaped_and_read_back(fs):
    assert ledger.record("/var/ossec", "host-deny", "add", "192.0.2.7", "/etc/hosts.deny",
                         "57 12\n", "1.1\\x20 \xff") is None
    (entry,), skipped = ledger.read("/var/ossec/var/ossec-ar/host-deny.ledger")
    assert skipped == []
    assert (entry.rule, entry.alert) == ("57 12\n", "1.1\\x20 \xff")
    with open("/var/ossec/var/ossec-ar/host-deny.ledger", "rb") as f:
        assert f.read().count(b"\n") == 1


def test_a_torn_tail_is_skipped_and_the_next_record_is_whole(fs):
    add("/var/ossec", "192.0.2.7")
    with open(PATH, "ab") as f:
        f.write(b"1 1764290000.000 add firewall-drop 192.0.2.")     # killed here
    records, skipped = ledger.read(PATH)
    assert [r.address for r in records] == ["192.0.2.7"]
    assert skipped == [(2, "torn (no end of line)")]
    add("/var/ossec", "192.0.2.9")
    records, skipped = ledger.read(PATH)
    assert [r.address for r in records] == ["192.0.2.7", "192.0.2.9"]
    assert len(skipped) == 1 and skipped[0][1].startswith("damaged")


def test_a_damaged_line_costs_only_itself(fs):
    for n in range(1, 4):
        add("/var/ossec", "192.0.2.%d" % n)
    with open(PATH, "rb") as f:
        lines = f.read().split(b"\n")
    lines[1] = lines[1].replace(b"192.0.2.2", b"192.0.2.6")       # a flipped digit
    with open(PATH, "wb") as f:
        f.write(b"\n".join(lines))
    records, skipped = ledger.read(PATH)
    assert [r.address for r in records] == ["192.0.2.1", "192.0.2.3"]
    assert skipped == [(2, "damaged (checksum)")]


def test_a_full_disk_fails_the_record_not_the_file(fs):
    add("/var/ossec", "192.0.2.7")
    with open(PATH, "rb") as f:
        before = f.read()
    fs.set_disk_usage(len(before) + 20)                # room for less than a record
    problem = ledger.record("/var/ossec", "firewall-drop", "add", "192.0.2.8", "iptables")
    assert problem.startswith("ledger %s not written: No space left on device" % PATH)
    with open(PATH, "rb") as f:
        assert f.read() == before                       # cut back, nothing half-written


def test_every_record_is_synced_before_record_returns(tmp_path, monkeypatch):
    """The program writes its outcome line when record returns: by then
    the record must be on disk, so that a crash cannot lose a block the
    log says was made."""
    synced = []

    def datasync(fd):
        info = os.fstat(fd)
        synced.append(((info.st_dev, info.st_ino), os.pread(fd, info.st_size + 1, 0)))
        os.fdatasync(fd)
    monkeypatch.setattr(ledger, "_datasync", datasync)
    prefix = str(tmp_path)
    path = os.path.join(prefix, "var", "ossec-ar", "firewall-drop.ledger")
    for count, address in enumerate(["192.0.2.7", "192.0.2.8"], 1):
        assert ledger.record(prefix, "firewall-drop", "add", address, "iptables") is None
        with open(path, "rb") as f:
            data = f.read()
        info = os.stat(path)
        # One sync for this record, after all of it was written to this file.
        assert len(synced) == count
        assert synced[-1] == ((info.st_dev, info.st_ino), data)
        records, skipped = ledger.parse(data)
        assert skipped == []
        assert [r.address for r in records] == ["192.0.2.7", "192.0.2.8"][:count]


def test_an_unwritable_place_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the directory should be")
    problem = ledger.record(str(tmp_path), "host-deny", "add", "192.0.2.7")
    assert problem == ("ledger not written: cannot create %s/var/ossec-ar: Not a directory"
                       % tmp_path)


def test_compaction_keeps_the_blocks_in_force_and_bounds_the_file(fs, monkeypatch):
    monkeypatch.setattr(ledger, "LIMIT", 4096)
    for round_ in range(40):
        add("/var/ossec", "192.0.2.1")                  # one block that stays
        add("/var/ossec", "198.51.100.%d" % round_)
        add("/var/ossec", "198.51.100.%d" % round_, op="delete", backend="-")
        assert os.path.getsize(PATH) < 4096 + 200
    records, skipped = ledger.read(PATH)
    assert skipped == []
    assert list(ledger.in_force(records)) == ["192.0.2.1"]
    assert len(records) < 60                            # compacted at least once
    first = ledger.in_force(records)["192.0.2.1"]
    add("/var/ossec", "192.0.2.1")
    assert ledger.in_force(ledger.read(PATH)[0])["192.0.2.1"].time == first.time


def test_many_live_blocks_are_not_rewritten_on_every_append(fs, monkeypatch):
    monkeypatch.setattr(ledger, "LIMIT", 2048)
    for n in range(60):                                 # about 4 KiB of live blocks
        add("/var/ossec", "198.51.100.%d" % n)
    size = os.path.getsize(PATH)
    inode = os.stat(PATH).st_ino
    add("/var/ossec", "192.0.2.1")
    assert os.stat(PATH).st_ino == inode                # appended, not rewritten
    assert os.path.getsize(PATH) > size


WRITER = """
import sys
sys.path.insert(0, %r)
from ossec_ar import ledger
n = 0
while True:
    n += 1
    ledger.record(sys.argv[1], "firewall-drop", "add", "10.%%d.%%d.%%d" %% (
        n >> 16 & 255, n >> 8 & 255, n & 255), "iptables", "5712", str(n))
    if n == 5:                  # whatever the machine's speed, 5 per round
        print("ready", flush=True)
"""


def test_a_process_killed_mid_write_loses_at_most_that_record(tmp_path):
    prefix = str(tmp_path)
    path = ledger.ledger_path(prefix, "firewall-drop")
    for round_ in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER % os.path.join(ROOT, "lib"),
                                   prefix], stdout=subprocess.PIPE)
        try:
            assert writer.stdout.readline() == b"ready\n"
            time.sleep(0.02 + round_ * 0.003)
        finally:                # the writer never outlives the test
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        records, skipped = ledger.read(path)
        # Every record of every earlier run is there; at most the last line
        # of this run is torn.
        assert all(number == len(records) + len(skipped) for number, _ in skipped), skipped
    assert len(records) >= 100                       # 5 a round at least
