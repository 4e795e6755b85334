"""The flock-based lock, with real processes."""

import fcntl
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


def held_by_us(path):
    """True if the lock on *path* is taken: another open file description
    of the same file cannot have it (flock locks belong to those)."""
    other = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(other)


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    path = str(tmp_path / "x.lock")
    holder = hold(path, 30)
    assert held_by_us(path)                         # by the holder, so far
    holder.kill()
    holder.wait()
    # Free at once: a lock that may not wait at all is taken, and held.
    with FileLock(path, 0):
        assert held_by_us(path)
    assert not held_by_us(path)                     # and let go


# A holder that writes a file as it lets the lock go (by exiting).
FINISHING_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
with open(sys.argv[3], "w") as f:
    f.write("finished")
"""


def test_waits_for_a_holder_that_finishes(tmp_path):
    path = str(tmp_path / "x.lock")
    finished = tmp_path / "finished"
    holder = subprocess.Popen([sys.executable, "-c", FINISHING_HOLDER, path, "0.3",
                               str(finished)], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with FileLock(path, 30):
            # Ours only once the holder was done: it wrote this first.
            assert finished.read_text() == "finished"
            assert held_by_us(path)
        assert holder.wait(30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        holder.stdout.close()


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


# Says which file it locked.
REPORTING_WAITER = """
import os, sys
sys.path.insert(0, sys.argv[2])
from ossec_ar.lock import FileLock
with FileLock(sys.argv[1], 60) as lock:
    print("got", os.fstat(lock._fd).st_ino, flush=True)
"""


def wait_until(condition):
    for _ in range(1000):                         # a bound, not a measure: 10 s
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_waiter_whose_lock_file_was_replaced_waits_for_the_holder_of_the_new_one(
        tmp_path):
    # While a run waits for the lock, the file is unlinked and another
    # made at its name, which another run then holds.  When the first file
    # is let go, the waiter must see that the name leads elsewhere and wait
    # for the new file's holder, not run alongside it.
    path = str(tmp_path / "x.lock")
    library = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
    first = hold(path, 60)
    old_file = os.stat(path).st_ino
    waiter = subprocess.Popen([sys.executable, "-c", REPORTING_WAITER, path, library],
                              stdout=subprocess.PIPE, universal_newlines=True)
    second = None
    try:
        assert wait_until(lambda: blocked_in_the_kernel(waiter.pid)), open("/proc/locks").read()
        os.unlink(path)
        second = hold(path, 60)
        new_file = os.stat(path).st_ino
        assert new_file != old_file         # the old one is still open: never reused
        first.kill()
        first.wait()
        # The old file is the waiter's now: it finds the name leads to the
        # new one, and waits in the kernel again (for the second holder).
        wait_until(lambda: blocked_in_the_kernel(waiter.pid) or waiter.poll() is not None)
        assert waiter.poll() is None, "ran alongside the new file's holder: %r" % (
            waiter.stdout.read(),)
        assert blocked_in_the_kernel(waiter.pid)
        second.kill()
        second.wait()
        assert waiter.stdout.readline() == "got %d\n" % new_file
        assert waiter.wait(10) == 0
    finally:
        for process in (first, second, waiter):
            if process is not None and process.poll() is None:
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
