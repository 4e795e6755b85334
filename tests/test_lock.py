"""The flock-based lock, with real processes."""

import os
import subprocess
import sys
import time

import pytest

from ossec_ar import exits
from ossec_ar.lock import FileLock, lock_file

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold(path, seconds):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, str(seconds)],
                              stdout=subprocess.PIPE, universal_newlines=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_lock_files_live_in_our_root_only_directory(tmp_path):
    old = os.umask(0)
    try:
        path = lock_file(str(tmp_path), "x")
        with FileLock(path, 1):
            assert os.path.exists(path)
    finally:
        os.umask(old)
    assert path == str(tmp_path / "var" / "ossec-ar" / "x.lock")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"


def test_held_lock_times_out_with_exit_75(tmp_path):
    path = str(tmp_path / "x.lock")
    holder = hold(path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(exits.Stop) as info:
            with FileLock(path, 0.5):
                pass
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert 0.5 <= waited < 30
    assert info.value.code == exits.TEMPFAIL == 75
    assert info.value.reason == "lock %s still held by another run after 0.5s" % path


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    path = str(tmp_path / "x.lock")
    holder = hold(path, 30)
    holder.kill()
    holder.wait()
    # Free at once: a lock that may not wait at all is taken.
    with FileLock(path, 0):
        pass


def test_waits_for_a_holder_that_finishes(tmp_path):
    path = str(tmp_path / "x.lock")
    holder = hold(path, 0.3)
    with FileLock(path, 10):
        assert holder.poll() is not None or holder.wait(5) == 0
    holder.wait()


def test_unopenable_lock_file_is_exit_75(tmp_path):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(exits.Stop) as info:
        with FileLock(str(blocker / "run" / "x.lock"), 1):
            pass
    assert info.value.code == 75
    assert info.value.reason.startswith("cannot open lock file ")
    assert "Not a directory" in info.value.reason or "File exists" in info.value.reason


def test_symlinked_lock_file_is_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep")
    os.symlink(str(target), str(tmp_path / "x.lock"))
    with pytest.raises(exits.Stop):
        with FileLock(str(tmp_path / "x.lock"), 1):
            pass
    assert target.read_text() == "keep"
