"""No test may depend on the date or the time zone: the tests that write,
read or decode dated lines run again here under libfaketime (faketime(1),
Debian's package) on a day 1 to 9 (the C date pads it: "Dec  5"), a day
10 to 31, and in a zone whose abbreviation is numeric ("+04", which the C
date replaces by UTC), each in a process of its own.

The clock is the real one shifted by a fixed offset, so that every
process sees the same time and it runs at its normal pace (the monotonic
clock is shifted with it: libfaketime 0.9.10 makes absolute sleeps on a
monotonic clock it does not fake fail with EINVAL).
"""

import calendar
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT

# Each test runs the dated tests again in a pytest of its own (about 16 s
# here), whose tests have the default bound each: a hang in one of them
# fails there, by its name, before this test's bound ends.
pytestmark = pytest.mark.time_bound(600)

# The tests whose lines carry a date: the log's formats, one run's lines,
# the ledger's times, ossec-ar's dates and durations, Wazuh's log format,
# and what the real ossec-logtest makes of lines written under that clock.
DATED = [
    "tests/test_log.py", "tests/test_cli.py", "tests/test_ledger.py",
    "tests/test_admin.py", "tests/test_ossec_rules.py",
    "tests/test_iptables.py::test_add_add_delete_delete_ipv4",
    "tests/test_wazuh.py::test_4x_add_with_continue_then_delete",
    "tests/test_wazuh.py::test_5x_enable_with_continue_then_disable",
    "tests/test_hostdeny.py::test_add_add_delete_delete",
]

# (moment in UTC, zone, what time.ctime() then starts with); noon, so that
# the day stays the same for the minutes a run takes.
CLOCKS = [
    ("2026-12-05 12:00:00", "UTC", "Sat Dec  5"),
    ("2026-12-25 12:00:00", "Europe/Berlin", "Fri Dec 25"),
    ("2026-12-05 12:00:00", "Asia/Dubai", "Sat Dec  5"),
]


def faked(moment, zone, argv):
    target = calendar.timegm(time.strptime(moment, "%Y-%m-%d %H:%M:%S"))
    offset = "%+d" % (target - int(time.time()))
    env = dict(os.environ, TZ=zone)
    return subprocess.run(["faketime", "-f", offset] + argv, env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=1800)


@pytest.mark.parametrize("moment,zone,day", CLOCKS, ids=[c[1] + " " + c[0][:10] for c in CLOCKS])
def test_dated_tests_pass_on_any_day_in_any_zone(moment, zone, day):
    # The fake clock is really in force, for the programs too.
    probe = faked(moment, zone, ["/usr/bin/python3", "-c", "import time; print(time.ctime())"])
    assert probe.stdout.startswith(day), probe.stdout
    result = faked(moment, zone, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                   + DATED)
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout.splitlines()[-1] and "skipped" not in result.stdout
