"""The bookkeeping of tools/bench.py (make bench): which rounds a slow side
runs, how our outcome lines are read, how rows and tables come out.  The
measuring itself is not a test; these are the parts that can be wrong
without anyone seeing it in the figures."""

import importlib.util
import os
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name):
    """tools/<name>.py as a module (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools",
                                                                      name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _tool("bench")
bench_fleet = _tool("bench_fleet")


@pytest.mark.parametrize("rounds", [1, 7, 30])
def test_a_side_runs_exactly_the_rounds_it_wants_the_first_included(rounds):
    for wanted in range(rounds + 1):
        chosen = [r for r in range(rounds) if bench.participates(r, wanted, rounds)]
        assert len(chosen) == wanted
        if wanted:
            assert chosen[0] == 0
            # Spread over the block, not bunched at its start.
            gaps = [b - a for a, b in zip(chosen, chosen[1:])]
            assert all(gap <= -(-rounds // wanted) for gap in gaps)
            assert rounds - 1 - chosen[-1] < -(-rounds // wanted)


def test_runs_within_the_budget_between_the_fewest_and_the_most():
    args = bench.options(["--budget", "15", "--min-runs", "3"])
    assert bench.runs_for(0.05, args, 30) == 30
    assert bench.runs_for(1.0, args, 30) == 15
    assert bench.runs_for(14.0, args, 30) == 3
    assert bench.runs_for(2.0, args, 2) == 2


@pytest.mark.parametrize("line, action, status", [
    ("Tue Dec  1 20:31:08 UTC 2026 /p/active-response/bin/firewall-drop.sh: add 10.0.0.4: "
     "blocked: iptables chain OSSEC (exit 0)", "add", "blocked"),
    ("Tue Dec  1 20:31:08 UTC 2026 /p/active-response/bin/firewall-drop.sh: add 10.0.0.4: "
     "already blocked: nftables table inet ossec, set v4 (exit 0)", "add", "already blocked"),
    ("Tue Dec  1 20:31:08 UTC 2026 /p/active-response/bin/host-deny.sh: delete 10.0.0.4: "
     "was not blocked (exit 0)", "delete", "was not blocked"),
    ("Tue Dec  1 20:31:08 UTC 2026 /p/active-response/bin/firewall-drop.sh delete - "
     "10.0.0.4 1.1 1", "delete", None),
])
def test_the_status_is_read_from_our_outcome_line(line, action, status):
    assert bench.outcome(line, action, "10.0.0.4") == status
    assert bench.outcome(line, action, "10.0.0.40") is None


def test_the_backend_is_the_first_word_of_the_detail():
    line = ("Tue Dec  1 20:31:08 UTC 2026 /p/firewall-drop.sh: add 172.16.0.2: blocked: "
            "ipset ossec4 (exit 0)")
    assert bench.outcome_detail(line, "add", "172.16.0.2", "blocked") == "ipset"


def test_addresses_are_distinct_hosts_and_never_a_bulk_ban():
    addresses = bench.Addresses()
    fresh = [addresses.fresh() for _ in range(3000)]
    absent = [addresses.absent() for _ in range(3000)]
    bans = {bench.Addresses.ban(i) for i in range(100000)}
    assert len(set(fresh) | set(absent)) == 6000
    assert not (set(fresh) | set(absent)) & bans
    assert all(a.split(".")[-1] not in ("0", "255") for a in fresh + absent)
    assert all(a.startswith("172.") for a in fresh) and all(a.startswith("198.1") for a in absent)


def test_a_row_gives_both_medians_the_ratio_and_the_runs():
    row = bench.comparison_row("x", [[0.010, 0.020, 0.030]], [[0.040, 0.040]])
    assert row == ("x", "20.0", "40.0", "0.50", "3/2")


def test_a_row_without_stock_has_no_ratio():
    assert bench.comparison_row("x", [[0.010]], []) == ("x", "10.0", "-", "-", "1/-")


def test_with_repetitions_the_ratio_is_given_for_each():
    row = bench.comparison_row("x", [[0.010], [0.030]], [[0.020], [0.020]])
    assert row == ("x", "20.0", "20.0", "0.50 1.50", "2/2")


def test_small_ratios_keep_two_figures_and_long_times_no_decimals():
    assert bench.format_ratio(0.0011234) == "0.0011"
    assert bench.format_ratio(13.386) == "13.39"
    assert bench.format_ms(15.0321) == "15032"
    assert bench.format_ms(0.0123) == "12.3"


def test_the_table_is_aligned_and_reads_as_markdown():
    text = bench.table(("operation", "ours ms", "ratio"),
                       [("add", "22.3", "1.70"), ("delete absent", "17.0", "0.0011")])
    lines = text.splitlines()
    assert lines[0] == "operation     | ours ms |  ratio"
    assert lines[1] == "------------- | ------: | -----:"
    assert lines[3] == "delete absent |    17.0 | 0.0011"
    assert len({len(line) for line in lines}) == 1


def test_the_protections_rows_run_by_default():
    assert not bench.options([]).no_protections
    assert bench.options(["--no-protections"]).no_protections


def test_the_prefix_rows_run_by_default():
    assert not bench.options([]).no_prefix
    assert bench.options(["--no-prefix"]).no_prefix


def test_the_prefix_rows_add_fresh_addresses_each_in_a_prefix_of_its_own():
    from ossec_ar import address
    sides = [bench.Widened.__new__(bench.Widened) for _ in (64, 128)]
    for side, length in zip(sides, (64, 128)):
        side.length, side.count = length, 0
    wide = [address.prefix_of(address.parse(sides[0].fresh()), 64) for _ in range(300)]
    alone = [address.parse(sides[1].fresh()) for _ in range(300)]
    assert len(set(wide)) == len(set(alone)) == 300
    assert not set(p.network for p in wide) & {"2001:db8:c:%x::" % i for i in range(1, 10001)}


def test_unprotected_addresses_are_distinct_and_none_is_protected_or_loaded():
    unprotected = bench.Unprotected(bench.Addresses())
    made = {kind: [getattr(unprotected, method)() for _ in range(2000)]
            for kind, method in bench.Unprotected.KINDS}
    every = [a for addresses in made.values() for a in addresses]
    assert len(set(every)) == len(every)
    link = made["on the link"]
    assert all(a.startswith("100.64.") and a.split(".")[-1] not in ("0", "255") for a in link)
    protected = set(bench.GATEWAYS) | {"100.64.0.1", "100.64.0.53", "192.0.2.10"}
    assert not protected & set(every)
    # Never on the large hosts' routes (20.0.0.0/24 on) or their own addresses.
    assert all(a.startswith("172.") for a in made["remote"])
    assert all(a.startswith("2001:db8:ac::") for a in made["remote IPv6"])


class FakeSide:
    def __init__(self, host):
        self.host = host
        self.runs = []

    def run(self, action, address):
        self.runs.append((action, address))
        return 0.010 if self.host == "small host" else 0.012

    def check(self, action, address, status):
        assert status == {"add": "blocked", "delete": "unblocked"}[action]


def test_the_protections_hosts_take_turns_and_each_large_one_has_its_rows():
    sides = [FakeSide("small host"), FakeSide("100,000 routes"), FakeSide("5,000 addresses")]
    args = bench.options(["--runs", "4", "--repeat", "2"])
    samples = bench.guarded_rounds(sides, bench.Unprotected(bench.Addresses()), args)
    for side in sides:
        # An add and a delete of each address, each address once.
        assert [action for action, _ in side.runs] == ["add", "delete"] * 24
        assert len({address for _, address in side.runs}) == 24
    rows = bench.guarded_rows(sides, samples)
    assert [row[0] for row in rows[:6]] == [
        "100,000 routes: add, remote", "100,000 routes: delete, remote",
        "100,000 routes: add, on the link", "100,000 routes: delete, on the link",
        "100,000 routes: add, remote IPv6", "100,000 routes: delete, remote IPv6"]
    assert len(rows) == 12 and rows[6][0] == "5,000 addresses: add, remote"
    assert rows[0][1:] == ("12.0", "10.0", "1.20 1.20", "8/8")


@pytest.mark.parametrize("hours_into_today", [0.3, 5])
def test_since_1h_may_open_the_day_an_hour_ago_fell_in_and_no_older(hours_into_today):
    """Just after midnight, fleet --since 1h needs yesterday's file; the
    day before is still too old.  (The clone's bench failed at 00:18.)"""
    today = time.mktime((2026, 12, 6, 0, 0, 0, 0, 0, -1))
    now = today + hours_into_today * 3600
    day = {n: bench_fleet.day_path("/a", today - n * 86400 + 3600) for n in range(3)}
    older = [day[2] + ".gz", day[1] + ".gz"]
    opened = older + [day[0]]
    wrong = bench_fleet.too_old(opened, older, "/a", now - 3600)
    assert wrong == ([day[2] + ".gz"] if hours_into_today < 1 else older)
