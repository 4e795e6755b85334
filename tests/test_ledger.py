"""The ledger: records, replay, compaction, and its faults (a torn tail, a
damaged line, a full disk, a process killed mid-write)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, require_root
# Compaction imports atomicfile when it first runs.  Imported here, it is
# patched by pyfakefs for every test; first imported inside one test, it
# would keep that test's fake file system, and a later test's compaction
# would rewrite a ledger nobody reads (test_many_live_blocks... never
# compacted when this file ran alone).
from ossec_ar import atomicfile, exits, ledger  # noqa: F401 (atomicfile)

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
    with open(PATH, "rb") as f:
        first = f.readline()
    # Compacted (to more than LIMIT: every block is live), and still past
    # LIMIT: a ledger that compacted whenever it was would be rewritten now.
    assert first.startswith(b"# compacted to ") and int(first.split()[-1]) > 2048, first
    size = os.path.getsize(PATH)
    assert size > 2048
    inode = os.stat(PATH).st_ino
    add("/var/ossec", "192.0.2.1")
    assert os.stat(PATH).st_ino == inode                # appended, not rewritten
    assert os.path.getsize(PATH) > size
    records, skipped = ledger.read(PATH)
    assert skipped == [] and len(records) == 61


# Adds records for ever, each to an address of its own (so that a
# compaction keeps them all), with the round and its number as the alert.
# With "tear", the 6th record's write(2) stops half-way and waits for the
# kill: a record torn for certain, as a crash can leave it.  LIMIT is small
# so that the ledger is compacted during the test.
WRITER = """
import os, sys, time
sys.path.insert(0, %r)
from ossec_ar import ledger
prefix, round_, tear = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tear"
ledger.LIMIT = 4096
whole_write = os.write

def torn_write(fd, data):
    whole_write(fd, data[:len(data) // 2])
    print("torn", flush=True)
    time.sleep(600)

n = 0
while True:
    n += 1
    if tear and n == 6:
        ledger.os.write = torn_write
    ledger.record(prefix, "firewall-drop", "add", "10.%%d.%%d.%%d" %% (
        round_, n >> 8 & 255, n & 255), "iptables", "5712", "%%d.%%d" %% (round_, n))
    if n == 5:                  # whatever the machine's speed, 5 per round
        print("ready", flush=True)
"""


def test_a_process_killed_mid_write_loses_at_most_that_record(tmp_path):
    prefix = str(tmp_path)
    path = ledger.ledger_path(prefix, "firewall-drop")
    kept = []                   # the alerts of every record read so far
    torn = 0
    for round_ in range(20):
        tear = round_ % 2 == 1
        writer = subprocess.Popen([sys.executable, "-c", WRITER % os.path.join(ROOT, "lib"),
                                   prefix, str(round_), "tear" if tear else "run"],
                                  stdout=subprocess.PIPE)
        try:
            assert writer.stdout.readline() == b"ready\n"
            if tear:
                assert writer.stdout.readline() == b"torn\n"
            else:
                time.sleep(0.02 + round_ * 0.003)       # killed wherever it is
        finally:                # the writer never outlives the test
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        records, skipped = ledger.read(path)
        alerts = [entry.alert for entry in records]
        # Every record of every earlier run is there, in order ...
        assert alerts[:len(kept)] == kept
        # ... and this run's are its first ones, none missing: only the
        # record being written when it was killed can be lost.
        mine = alerts[len(kept):]
        assert mine == ["%d.%d" % (round_, n) for n in range(1, len(mine) + 1)]
        assert len(mine) >= 5
        assert all(reason in ("torn (no end of line)", "damaged (checksum)")
                   for _, reason in skipped), skipped
        if tear:
            # The half-written 6th record is the file's last line, and torn.
            assert len(mine) == 5
            assert "torn (no end of line)" in [reason for _, reason in skipped], skipped
            with open(path, "rb") as f:
                assert not f.read().endswith(b"\n")
            torn += 1
        kept = alerts
    assert torn == 10
    with open(path, "rb") as f:
        assert f.readline().startswith(b"# compacted to ")     # compacted on the way


# ------------------------------------------------- who may have written it

NOT_ROOT = 61234


def ledger_file(path, records, uid=0, gid=0, mode=0o600):
    with open(path, "wb") as f:
        f.write("".join(entry.line() for entry in records).encode())
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def old_records():
    return [ledger.Record(1700000000.0, "add", "firewall-drop", "192.0.2.1", "iptables",
                          "5712", "1.1"),
            ledger.Record(1700000001.0, "add", "firewall-drop", "192.0.2.2", "iptables",
                          "5712", "1.2"),
            ledger.Record(1700000002.0, "delete", "firewall-drop", "192.0.2.2")]


def old_place(prefix, uid=0, gid=0, mode=0o750):
    """var/db, as version 0.1 made it (root's, 0750) unless told otherwise."""
    directory = os.path.join(prefix, "var", "db")
    os.makedirs(directory)
    os.chown(directory, uid, gid)
    os.chmod(directory, mode)
    return ledger.legacy_path(prefix, "firewall-drop")


def addresses(records):
    return [entry.address for entry in records]


@pytest.mark.parametrize("how", ["owned by another user", "writable by its group",
                                 "writable by anyone", "at the old place, another user's"])
def test_ossec_ar_reads_no_ledger_root_did_not_write(tmp_path, how):
    require_root()
    prefix = str(tmp_path)
    if how.startswith("at the old place"):
        path = old_place(prefix)
    else:
        path = ledger.ledger_path(prefix, "firewall-drop")
    ledger_file(path, old_records())
    assert addresses(ledger.read_trusted(prefix, "firewall-drop")[0]) == [
        "192.0.2.1", "192.0.2.2", "192.0.2.2"]                  # root's: read
    if how == "writable by its group":
        os.chmod(path, 0o620)
        reason = "is writable by its group (mode 0620)"
    elif how == "writable by anyone":
        os.chmod(path, 0o602)
        reason = "is writable by any user (mode 0602)"
    else:
        os.chown(path, NOT_ROOT, NOT_ROOT)
        reason = "is owned by uid %d, not root" % NOT_ROOT
    if how.startswith("at the old place"):
        # var/db is the ossec or wazuh group's: a file there that root did
        # not write is ignored, with a note, and stops nothing.
        notes = []
        assert ledger.read_trusted(prefix, "firewall-drop", notes) == ([], [])
        assert notes == ["version 0.1's ledger ignored: %s %s; it is used only if root "
                         "alone could have written it" % (path, reason)]
        return
    with pytest.raises(exits.Stop) as info:
        ledger.read_trusted(prefix, "firewall-drop")
    assert info.value.code == exits.CONFIG == 78
    assert info.value.reason == "ledger not trusted: %s %s" % (path, reason)


@pytest.mark.parametrize("planted", ["the group's user's file", "root's, group-writable"])
def test_a_file_planted_at_the_old_place_is_not_adopted(tmp_path, planted):
    """Wazuh makes var/db root:wazuh 0770: whoever holds the group can put
    a file at the 0.1 ledger's name.  It must not become our ledger."""
    require_root()
    prefix = str(tmp_path)
    old = old_place(prefix, gid=NOT_ROOT, mode=0o770)
    forged = [ledger.Record(1700000000.0, "add", "firewall-drop", "203.0.113.66",
                            "iptables", "5712", "1.1")]
    if planted == "the group's user's file":
        ledger_file(old, forged, uid=NOT_ROOT, gid=NOT_ROOT, mode=0o644)
    else:
        ledger_file(old, forged, gid=NOT_ROOT, mode=0o660)
    with open(old, "rb") as f:
        before = f.read()
    assert ledger.record(prefix, "firewall-drop", "add", "192.0.2.7", "iptables") is None
    assert addresses(ledger.read_trusted(prefix, "firewall-drop")[0]) == ["192.0.2.7"]
    with open(old, "rb") as f:
        assert f.read() == before                   # left where it was, as it was


def test_the_first_record_carries_a_0_1_ledger_over(tmp_path):
    """Version 0.1 kept the ledger, root's, in var/db: its records are
    read until a run moves it, and the first record moves it whole."""
    require_root()
    prefix = str(tmp_path)
    old = old_place(prefix)
    ledger_file(old, old_records())
    records, skipped = ledger.read_trusted(prefix, "firewall-drop")
    assert skipped == [] and [entry.line() for entry in records] == [
        entry.line() for entry in old_records()]
    assert ledger.record(prefix, "firewall-drop", "add", "192.0.2.3", "iptables") is None
    assert not os.path.lexists(old)
    records, skipped = ledger.read(ledger.ledger_path(prefix, "firewall-drop"))
    assert skipped == []
    assert [entry.line() for entry in records[:3]] == [entry.line() for entry in old_records()]
    assert addresses(records) == ["192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"]
    blocks = ledger.in_force(ledger.read_trusted(prefix, "firewall-drop")[0])
    assert sorted(blocks) == ["192.0.2.1", "192.0.2.3"]
    assert blocks["192.0.2.1"].time == 1700000000.0          # since 0.1's add


@pytest.mark.parametrize("directory,mode,who", [
    ("var/ossec-ar", 0o770, "its group"), ("var/ossec-ar", 0o707, "any user"),
    ("var", 0o775, "its group"), ("var/db", 0o770, "its group")],
    ids=["var-ossec-ar 0770", "var-ossec-ar 0707", "var 0775", "var-db 0770"])
def test_a_ledger_under_a_directory_others_can_write_is_not_trusted(tmp_path, directory,
                                                                   mode, who):
    """Root's directories, but writable by others and not sticky: whoever
    can write them can swap the ledger, so it is neither read nor
    written (var/db: a 0.1 ledger there is neither read nor moved)."""
    require_root()
    prefix = str(tmp_path)
    path = ledger.ledger_path(prefix, "firewall-drop")
    if directory == "var/db":
        ledger_file(old_place(prefix), old_records())
    else:
        ledger_file(path, old_records())
    place = os.path.join(prefix, directory)
    os.chmod(place, mode)
    reason = "%s is writable by %s (mode %04o)" % (place, who, mode)
    if directory == "var/db":
        old = ledger.legacy_path(prefix, "firewall-drop")
        notes = []
        assert ledger.read_trusted(prefix, "firewall-drop", notes) == ([], [])
        assert notes == ["version 0.1's ledger ignored: %s; it is used only if root alone "
                         "could have written it" % reason]
        assert ledger.record(prefix, "firewall-drop", "add", "192.0.2.3", "iptables") is None
        assert addresses(ledger.read(path)[0]) == ["192.0.2.3"]     # not moved
        assert addresses(ledger.read(old)[0]) == addresses(old_records())
    else:
        with pytest.raises(exits.Stop) as info:
            ledger.read_trusted(prefix, "firewall-drop")
        assert info.value.code == 78
        assert info.value.reason.startswith("unsafe state directory: %s;" % reason)
        problem = ledger.record(prefix, "firewall-drop", "add", "192.0.2.3", "iptables")
        assert problem.startswith("ledger not written: unsafe state directory: %s;" % reason)
        assert addresses(ledger.read(path)[0]) == addresses(old_records())
