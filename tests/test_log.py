import os
import re
import sys
import time

import pytest

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
        pass
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


class FakeSyslog:
    LOG_PID = 1
    LOG_AUTHPRIV = 80
    LOG_ERR = 3

    def __init__(self):
        self.messages = []

    def openlog(self, ident, option, facility):
        self.ident = ident

    def syslog(self, priority, message):
        self.messages.append((priority, message))


def test_unwritable_log_goes_to_syslog(fs, monkeypatch):
    # No logs directory at all: the open fails.
    fake = FakeSyslog()
    monkeypatch.setitem(sys.modules, "syslog", fake)
    writer = log.Log("/var/ossec/logs/active-responses.log", "firewall-drop")
    writer.write("invocation")
    writer.write("outcome")
    assert fake.ident == "firewall-drop"
    assert [p for p, _ in fake.messages] == [FakeSyslog.LOG_ERR] * 2
    pattern = (r"cannot write /var/ossec/logs/active-responses\.log "
               r"\(No such file or directory[^)]*\): %s$")
    assert re.match(pattern % "invocation", fake.messages[0][1])
    assert re.match(pattern % "outcome", fake.messages[1][1])


def test_full_disk_goes_to_syslog(fs, monkeypatch):
    fake = FakeSyslog()
    monkeypatch.setitem(sys.modules, "syslog", fake)
    fs.create_dir("/var/ossec/logs")
    fs.set_disk_usage(20)        # bytes: not even one line fits
    writer = log.Log("/var/ossec/logs/active-responses.log", "firewall-drop")
    writer.write("an invocation line")
    assert len(fake.messages) == 1
    assert "No space left on device" in fake.messages[0][1]
    assert fake.messages[0][1].endswith(": an invocation line")
