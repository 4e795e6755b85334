"""Atomic replacement of an administrator's file: pyfakefs and real files."""

import errno
import os
import stat

import pytest

from ossec_ar import atomicfile, exits

ORIGINAL = b"# admin\nsshd: 10.0.0.1\n"


def entries(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def etc(fs):
    fs.create_file("/etc/hosts.deny", contents=ORIGINAL)
    os.chmod("/etc/hosts.deny", 0o640)
    return fs


def test_replace_keeps_mode_and_leaves_nothing_else(etc):
    atomicfile.replace("/etc/hosts.deny", b"new\n")
    assert atomicfile.read("/etc/hosts.deny") == b"new\n"
    assert stat.S_IMODE(os.stat("/etc/hosts.deny").st_mode) == 0o640
    assert entries("/etc") == ["hosts.deny"]


def test_missing_file_is_created_0644(fs):
    fs.create_dir("/etc")
    assert atomicfile.read("/etc/hosts.deny") is None
    atomicfile.replace("/etc/hosts.deny", b"ALL:192.0.2.7\n")
    assert stat.S_IMODE(os.stat("/etc/hosts.deny").st_mode) == 0o644
    assert atomicfile.read("/etc/hosts.deny") == b"ALL:192.0.2.7\n"


def test_symlink_is_edited_at_its_target_and_kept(fs):
    fs.create_file("/etc/tcpd/hosts.deny", contents=ORIGINAL)
    os.symlink("tcpd/hosts.deny", "/etc/hosts.deny")
    target = atomicfile.resolve("/etc/hosts.deny")
    assert target == "/etc/tcpd/hosts.deny"
    atomicfile.replace(target, b"new\n")
    assert os.readlink("/etc/hosts.deny") == "tcpd/hosts.deny"
    with open("/etc/hosts.deny", "rb") as through_the_link:
        assert through_the_link.read() == b"new\n"
    assert entries("/etc/tcpd") == ["hosts.deny"]


def test_disk_full_leaves_the_original_and_no_temp_file(etc):
    etc.set_disk_usage(len(ORIGINAL) + 10)
    with pytest.raises(exits.Stop) as info:
        atomicfile.replace("/etc/hosts.deny", ORIGINAL + b"ALL:192.0.2.7\n" * 10)
    assert info.value.code == exits.IOERR == 74
    assert info.value.reason.startswith("cannot write /etc/.hosts.deny.ossec-ar-")
    assert "No space left on device" in info.value.reason
    assert info.value.reason.endswith("; /etc/hosts.deny left as it was")
    assert atomicfile.read("/etc/hosts.deny") == ORIGINAL
    assert entries("/etc") == ["hosts.deny"]


@pytest.mark.parametrize("call,step", [
    ("fsync", "sync /etc/.hosts.deny.ossec-ar-"),
    ("rename", "rename /etc/.hosts.deny.ossec-ar-"),
    ("fchmod", "copy owner, mode and label to /etc/.hosts.deny.ossec-ar-"),
])
def test_a_failing_step_leaves_the_original_and_no_temp_file(etc, monkeypatch, call, step):
    def fail(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, call, fail)
    with pytest.raises(exits.Stop) as info:
        atomicfile.replace("/etc/hosts.deny", b"new\n")
    assert info.value.code == 74
    assert info.value.reason.startswith("cannot " + step)
    assert "Input/output error; /etc/hosts.deny left as it was" in info.value.reason
    monkeypatch.undo()
    assert atomicfile.read("/etc/hosts.deny") == ORIGINAL
    assert entries("/etc") == ["hosts.deny"]


def test_directory_sync(etc, monkeypatch):
    real_fsync = os.fsync
    synced = []

    def fsync(fd):
        synced.append(fd)
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    atomicfile.replace("/etc/hosts.deny", b"new\n")
    assert len(synced) == 2                    # the new file, then the directory


@pytest.mark.parametrize("code,fails", [(errno.EINVAL, False), (errno.EIO, True)])
def test_directory_sync_errors(etc, monkeypatch, code, fails):
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:                    # the directory
            raise OSError(code, os.strerror(code))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    if fails:
        with pytest.raises(exits.Stop) as info:
            atomicfile.replace("/etc/hosts.deny", b"new\n")
        assert info.value.code == 74
        assert info.value.reason == ("/etc/hosts.deny was replaced, but syncing /etc "
                                     "failed: Input/output error")
    else:
        atomicfile.replace("/etc/hosts.deny", b"new\n")   # unsupported: not a failure
    monkeypatch.undo()
    assert atomicfile.read("/etc/hosts.deny") == b"new\n"


def test_unwritable_directory_leaves_the_original(etc):
    from pyfakefs.helpers import get_uid, set_uid
    os.chmod("/etc", 0o555)
    uid = get_uid()
    set_uid(1000)            # pyfakefs: act as an unprivileged user
    try:
        with pytest.raises(exits.Stop) as info:
            atomicfile.replace("/etc/hosts.deny", b"new\n")
    finally:
        set_uid(uid)
    assert info.value.code == 74
    assert info.value.reason.startswith("cannot create /etc/.hosts.deny.ossec-ar-")
    assert "permission denied" in info.value.reason.lower()
    assert atomicfile.read("/etc/hosts.deny") == ORIGINAL


def test_unreadable_file_is_exit_74(etc):
    from pyfakefs.helpers import get_uid, set_uid
    os.chmod("/etc/hosts.deny", 0o000)
    uid = get_uid()
    set_uid(1000)
    try:
        with pytest.raises(exits.Stop) as info:
            atomicfile.read("/etc/hosts.deny")
    finally:
        set_uid(uid)
    assert info.value.code == 74
    assert info.value.reason.lower().startswith("cannot read /etc/hosts.deny: permission denied")


def test_leftovers_of_a_killed_run_are_removed(etc):
    etc.create_file("/etc/.hosts.deny.ossec-ar-0123456789ab.4242", contents=b"ALL:")
    etc.create_file("/etc/.hosts.deny.swp", contents=b"an editor's")
    atomicfile.replace("/etc/hosts.deny", b"new\n")
    assert entries("/etc") == [".hosts.deny.swp", "hosts.deny"]


def test_real_files_keep_owner_group_mode_and_selinux_label(tmp_path):
    path = str(tmp_path / "hosts.deny")
    with open(path, "wb") as f:
        f.write(ORIGINAL)
    os.chown(path, 0, 4)
    os.chmod(path, 0o604)
    label = b"system_u:object_r:etc_t:s0\x00"
    os.setxattr(path, "security.selinux", label)
    os.setxattr(path, "user.note", b"not copied: only the label is")
    before = os.stat(path)
    atomicfile.replace(path, b"new\n")
    after = os.stat(path)
    assert before.st_ino != after.st_ino                      # a new file...
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (0, 4, 0o604)
    assert os.getxattr(path, "security.selinux") == label      # ...with the label
    assert entries(str(tmp_path)) == ["hosts.deny"]


def test_real_file_without_label_gets_none(tmp_path):
    path = str(tmp_path / "hosts.deny")
    with open(path, "wb") as f:
        f.write(ORIGINAL)
    atomicfile.replace(path, b"new\n")
    with pytest.raises(OSError) as info:
        os.getxattr(path, "security.selinux")
    assert info.value.errno == errno.ENODATA
