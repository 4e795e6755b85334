"""The flock-based lock, with real processes."""

import os
import signal
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


WAITER = """
import sys
sys.path.insert(0, sys.argv[2])
from ossec_ar.lock import FileLock
with FileLock(sys.argv[1], 60):
    print("got", flush=True)
"""


def blocked_in_the_kernel(pid):
    """True if /proc/locks shows *pid* waiting for a flock (a '->' line)."""
    # e.g. "1: -> FLOCK  ADVISORY  WRITE 4272 fe:00:2146629 0 EOF"
    with open("/proc/locks") as locks:
        return any(fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid)
                   for fields in (line.split() for line in locks) if len(fields) > 5)


def test_a_waiter_waits_in_the_kernel_and_takes_the_lock_when_it_is_let_go(tmp_path):
    # A waiter that polled would sleep between tries, leaving the lock idle
    # (a burst of 200 runs took half as long again); one that waits in
    # flock is queued by the kernel and handed the lock on release.
    path = str(tmp_path / "x.lock")
    holder = hold(path, 60)
    library = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
    waiter = subprocess.Popen([sys.executable, "-c", WAITER, path, library],
                              stdout=subprocess.PIPE, universal_newlines=True)
    try:
        for _ in range(1000):                     # a bound, not a measure: 10 s
            if blocked_in_the_kernel(waiter.pid):
                break
            time.sleep(0.01)
        assert blocked_in_the_kernel(waiter.pid), open("/proc/locks").read()
        assert waiter.poll() is None
        holder.kill()
        holder.wait()
        assert waiter.stdout.readline() == "got\n"
        assert waiter.wait(10) == 0
    finally:
        for process in (holder, waiter):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_the_wait_leaves_no_timer_and_puts_the_alarm_handler_back(tmp_path):
    def theirs(signum, frame):
        raise AssertionError("our timer fired into the caller's handler")

    path = str(tmp_path / "x.lock")
    previous = signal.signal(signal.SIGALRM, theirs)
    try:
        holder = hold(path, 30)
        try:
            with pytest.raises(exits.Stop):               # the time runs out
                with FileLock(path, 0.2):
                    pass
            assert signal.getsignal(signal.SIGALRM) is theirs
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        finally:
            holder.kill()
            holder.wait()
        holder = hold(path, 0.3)
        with FileLock(path, 30):                          # the lock comes first
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        holder.wait()
        assert signal.getsignal(signal.SIGALRM) is theirs
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous)


TIMED_WAITER = """
import sys
sys.path.insert(0, sys.argv[2])
from ossec_ar import exits
from ossec_ar.lock import FileLock
try:
    with FileLock(sys.argv[1], 0.3):
        print("got", flush=True)
except exits.Stop as stop:
    print(stop.code, stop.reason, flush=True)
"""


def test_the_wait_ends_even_when_the_caller_blocked_sigalrm(tmp_path):
    # The signal mask is inherited through exec: a caller that blocked
    # SIGALRM must not turn the bounded wait into a hang.
    path = str(tmp_path / "x.lock")
    holder = hold(path, 60)
    library = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
    try:
        waiter = subprocess.run(
            [sys.executable, "-c", TIMED_WAITER, path, library], stdout=subprocess.PIPE,
            universal_newlines=True, timeout=30,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM]))
    finally:
        holder.kill()
        holder.wait()
    assert waiter.stdout == "75 lock %s still held by another run after 0.3s\n" % path
