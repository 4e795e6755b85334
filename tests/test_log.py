import os
import re
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from ossec_ar import log

# The stock decoder's date: Www Mmm d|dd HH:MM:SS ZONE YYYY.
C_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"[ 1-3]\d \d\d:\d\d:\d\d [A-Za-z]+ \d{4}$")

# A whole log line: the date, one space, the text.
DATED_LINE = re.compile("^(?P<date>" + C_DATE.pattern[1:-1] + ") (?P<text>.*)$")

# 2012-01-09 12:52:29 UTC: a one-digit day, as in the contract's example month.
MOMENT = 1326113549


@pytest.fixture
def zone(monkeypatch):
    def set_zone(tz, lang="C"):
        monkeypatch.setenv("TZ", tz)
        monkeypatch.setenv("LANG", lang)
        monkeypatch.setenv("LC_ALL", lang)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("tz,expected", [
    ("UTC", "Mon Jan  9 12:52:29 UTC 2012"),
    ("Europe/Berlin", "Mon Jan  9 13:52:29 CET 2012"),
    ("America/New_York", "Mon Jan  9 07:52:29 EST 2012"),
    ("Asia/Kolkata", "Mon Jan  9 18:22:29 IST 2012"),
    # zones whose abbreviation is numeric fall back to UTC
    ("Asia/Dubai", "Mon Jan  9 12:52:29 UTC 2012"),
    ("America/Sao_Paulo", "Mon Jan  9 12:52:29 UTC 2012"),
    ("<+0330>-3:30", "Mon Jan  9 12:52:29 UTC 2012"),
    ("Etc/GMT-14", "Mon Jan  9 12:52:29 UTC 2012"),
])
def test_c_date_whatever_the_zone(zone, tz, expected):
    zone(tz)
    assert log.c_date(MOMENT) == expected
    assert C_DATE.match(expected)


@pytest.mark.parametrize("lang", ["de_DE.UTF-8", "en_US.UTF-8", "fr_FR", "ja_JP.UTF-8",
                                  "C.UTF-8", "tr_TR.UTF-8"])
def test_c_date_whatever_the_locale(zone, lang):
    zone("Europe/Berlin", lang)
    import locale
    try:
        locale.setlocale(locale.LC_ALL, "")   # as if the process had set it
    except locale.Error:
        pytest.fail("the locale %s is missing (tools/setup makes it): the date would be "
                    "tested in C" % lang)
    try:
        assert log.c_date(MOMENT) == "Mon Jan  9 13:52:29 CET 2012"
    finally:
        locale.setlocale(locale.LC_ALL, "C")


def test_two_digit_day_and_summer_time(zone):
    zone("Europe/Berlin")
    assert log.c_date(1340000000) == "Mon Jun 18 08:13:20 CEST 2012"


@pytest.mark.parametrize("text,expected", [
    ("192.0.2.7", "192.0.2.7"),
    ("(from_the_server)", "(from_the_server)"),
    ("a b", "a\\x20b"),
    ("x\nFri Jan 1 00:00:00 UTC 2021 forged", "x\\x0aFri\\x20Jan\\x201\\x2000:00:00"
     "\\x20UTC\\x202021\\x20forged"),
    ("\r\t\x00\x1b[31m", "\\x0d\\x09\\x00\\x1b[31m"),
    ("back\\slash", "back\\\\slash"),
    ("\u2028\u202e\x85", "\\u2028\\u202e\\x85"),
    ("caf\u00e9", "caf\u00e9"),
    (os.fsdecode(b"\xff\xfe"), "\\xff\\xfe"),
])
def test_escape(text, expected):
    assert log.escape(text) == expected


def test_escape_bounds_huge_arguments():
    out = log.escape("A" * 10240)
    assert out == "A" * log.MAX_FIELD + "...(10240 bytes)"


@pytest.mark.parametrize("text,expected", [
    ("A" * 256, "A" * 256),
    ("A" * 257, "A" * 256 + "...(257 bytes)"),
    # Bytes, not characters: 128 two-byte characters are 256 bytes.
    ("\u00e9" * 128, "\u00e9" * 128),
    ("\u00e9" * 128 + "A", "\u00e9" * 128 + "...(257 bytes)"),
], ids=["256", "257", "256-utf8", "257-utf8"])
def test_escape_keeps_256_bytes_and_cuts_the_257th(text, expected):
    assert log.escape(text) == expected


class WriteCounter:
    """The os module as log.py sees it, with each write(2) recorded."""

    def __init__(self):
        self.writes = []

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        self.writes.append(bytes(data))
        return os.write(fd, data)


def test_each_line_is_one_write_with_its_newline(tmp_path, monkeypatch):
    """Concurrent runs append to the same O_APPEND log: a line split over
    two writes could have another run's line between its halves."""
    counter = WriteCounter()
    monkeypatch.setattr(log, "os", counter)
    path = tmp_path / "active-responses.log"
    writer = log.Log(str(path), "firewall-drop", date=lambda: "Mon Jan  9 12:52:29 UTC 2012")
    writer.write("/var/ossec/active-response/bin/firewall-drop.sh add - 192.0.2.7 1.1 5712")
    writer.write("x" * 5000)
    writer.close()
    assert counter.writes == [
        b"Mon Jan  9 12:52:29 UTC 2012 /var/ossec/active-response/bin/firewall-drop.sh add - "
        b"192.0.2.7 1.1 5712\n",
        b"Mon Jan  9 12:52:29 UTC 2012 " + b"x" * 5000 + b"\n"]
    assert path.read_bytes() == b"".join(counter.writes)


def test_log_appends_whole_lines(fs):
    fs.create_dir("/var/ossec/logs")
    fs.create_dir("/var/ossec/active-response/bin")
    path = log.log_path("/var/ossec/active-response/bin/firewall-drop.sh")
    writer = log.Log(path, "firewall-drop")
    writer.write("first")
    writer.write("second")
    writer.close()
    with open("/var/ossec/logs/active-responses.log") as f:
        lines = f.read().splitlines()
    # The date has a space-padded day ("Dec  1"), so it is matched, not split.
    dated = [DATED_LINE.match(line) for line in lines]
    assert all(dated), lines
    assert [m.group("text") for m in dated] == ["first", "second"]
    assert all(C_DATE.match(m.group("date")) for m in dated)
    assert oct(os.stat("/var/ossec/logs/active-responses.log").st_mode & 0o777) == "0o660"


class SyslogCatcher:
    """Stands in for log.send_to_syslog in the pyfakefs tests (there is no
    socket in a fake file system); the real sender is tested below."""

    def __init__(self):
        self.messages = []

    def __call__(self, ident, text):
        self.messages.append((ident, text))


@pytest.fixture
def syslog_calls(monkeypatch):
    catcher = SyslogCatcher()
    monkeypatch.setattr(log, "send_to_syslog", catcher)
    return catcher.messages


def test_unwritable_log_goes_to_syslog(fs, syslog_calls):
    # No logs directory at all: the open fails.
    writer = log.Log("/var/ossec/logs/active-responses.log", "firewall-drop")
    writer.write("invocation")
    writer.write("outcome")
    assert [ident for ident, _ in syslog_calls] == ["firewall-drop"] * 2
    pattern = (r"cannot write /var/ossec/logs/active-responses\.log "
               r"\(No such file or directory[^)]*\): %s$")
    assert re.match(pattern % "invocation", syslog_calls[0][1])
    assert re.match(pattern % "outcome", syslog_calls[1][1])


def test_full_disk_goes_to_syslog(fs, syslog_calls):
    fs.create_dir("/var/ossec/logs")
    fs.set_disk_usage(20)        # bytes: not even one line fits
    writer = log.Log("/var/ossec/logs/active-responses.log", "firewall-drop")
    writer.write("an invocation line")
    assert len(syslog_calls) == 1
    assert "No space left on device" in syslog_calls[0][1]
    assert syslog_calls[0][1].endswith(": an invocation line")


@pytest.mark.parametrize("planted", ["symlink", "fifo", "hard link", "directory"])
def test_a_planted_log_is_refused_and_goes_to_syslog(tmp_path, syslog_calls, planted):
    logs = tmp_path / "logs"
    logs.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    path = logs / "active-responses.log"
    if planted == "symlink":
        os.symlink(str(victim), str(path))
    elif planted == "fifo":
        os.mkfifo(str(path))
    elif planted == "hard link":
        os.link(str(victim), str(path))
    else:
        path.mkdir()
    writer = log.Log(str(path), "firewall-drop")
    writer.write("an invocation line")
    writer.close()
    assert victim.read_bytes() == b"precious\n"
    kind = {"symlink": "a symbolic link", "fifo": "a FIFO", "directory": "a directory",
            "hard link": "has 2 names"}[planted]
    assert len(syslog_calls) == 1 and kind in syslog_calls[0][1], syslog_calls
    assert syslog_calls[0][1].endswith(": an invocation line")


def test_a_new_log_gets_the_owner_of_logs_and_mode_0660(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    os.chown(str(logs), 4321, 4322)
    old = os.umask(0o077)
    try:
        writer = log.Log(str(logs / "active-responses.log"), "firewall-drop")
        writer.write("a line")
        writer.close()
    finally:
        os.umask(old)
    info = os.stat(str(logs / "active-responses.log"))
    assert (info.st_uid, info.st_gid, oct(info.st_mode & 0o7777)) == (4321, 4322, "0o660")


def catch_syslog(path, kind=socket.SOCK_DGRAM):
    catcher = socket.socket(socket.AF_UNIX, kind)
    catcher.bind(path)
    if kind == socket.SOCK_STREAM:
        catcher.listen(1)
    catcher.settimeout(10)
    return catcher


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM],
                         ids=["datagram", "stream"])
def test_syslog_message_goes_to_the_first_socket_there(tmp_path, monkeypatch, kind):
    path = str(tmp_path / "log")
    catcher = catch_syslog(path, kind)
    monkeypatch.setattr(log, "SYSLOG_SOCKETS", (str(tmp_path / "absent"), path))
    log.send_to_syslog("firewall-drop", "cannot write x (y): a line")
    if kind == socket.SOCK_STREAM:
        connection, _ = catcher.accept()
        connection.settimeout(10)
        data = connection.recv(4096)
        connection.close()
    else:
        data = catcher.recv(4096)
    catcher.close()
    # <PRI> is facility authpriv (10) * 8 + err (3) = 83.
    assert re.match(r"^<83>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d firewall-drop\[%d\]: "
                    r"cannot write x \(y\): a line%s$"
                    % (os.getpid(), "\x00" if kind == socket.SOCK_STREAM else ""),
                    data.decode()), data


# Fills a datagram socket that nobody reads, then sends through it as the
# log's fallback does: a blocking sender would wait here for ever.
STALLED = """
import os, socket, sys
sys.path.insert(0, sys.argv[1])
from ossec_ar import log
path = sys.argv[2]
stalled = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
stalled.bind(path)
filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
filler.setblocking(False)
sent = 0
try:
    while True:
        filler.sendto(b"x" * 512, path)
        sent += 1
except BlockingIOError:
    pass
log.SYSLOG_SOCKETS = (path,)
for _ in range(100):
    log.send_to_syslog("firewall-drop", "a line")
print(sent)
"""


def test_syslog_never_waits_for_a_stalled_daemon(tmp_path):
    result = subprocess.run([sys.executable, "-c", STALLED, os.path.join(ROOT, "lib"),
                             str(tmp_path / "log")], stdout=subprocess.PIPE, timeout=60)
    assert result.returncode == 0
    assert int(result.stdout) > 0           # the socket really was full
