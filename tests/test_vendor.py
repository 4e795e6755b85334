"""The repository stands alone: the upstream files the tests and the
benchmark use are in tests/vendor/ (the OSSEC source, the stock scripts),
each checked against tests/vendor/SHA256SUMS before use, and a clone with
nothing beside it builds OSSEC, runs the stock scripts and the benchmark
from them."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import ossec
import vendored
from conftest import ROOT, require_root

BENCH = os.path.join(ROOT, "tools", "bench.py")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The smallest bench: 10 bans, iptables-nft only, one run of each operation
# (about 20 s: stock 4.2.0's delete of an absent address takes 15).
SMALL_BENCH = ["--no-scale", "--no-firewalld", "--no-bursts", "--flavours", "nft",
               "--runs", "1", "--min-runs", "1", "--absent-runs", "1"]


def test_every_vendored_file_is_listed_and_matches():
    """SHA256SUMS lists the tarball, LICENSE and both scripts of each stock
    version; every file matches; coreutils' sha256sum reads the same file
    and agrees; and the tarball is the one the OSSEC builds use."""
    sums = vendored.listed()
    wanted = {"LICENSE", os.path.basename(vendored.OSSEC_TARBALL)} | {
        "stock-ar/%s/%s" % (version, name)
        for version in vendored.STOCK_VERSIONS for name in vendored.STOCK_NAMES}
    assert set(sums) == wanted
    assert vendored.problems() == []
    result = subprocess.run(["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"],
                            cwd=vendored.VENDOR, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    assert (result.returncode, result.stdout) == (0, "")
    assert ossec.TARBALL == vendored.OSSEC_TARBALL
    assert os.path.dirname(ossec.TARBALL) == os.path.join(ROOT, "tests", "vendor")


def test_git_keeps_the_vendored_files_byte_for_byte():
    """git stores them as they are: no end-of-line conversion (``-text``,
    tests/vendor/.gitattributes) and no filter applies, and the tarball is
    a plain blob (no LFS pointer), so a clone has the bytes SHA256SUMS
    lists."""
    names = sorted(vendored.listed())
    result = subprocess.run(["git", "-c", "safe.directory=*", "check-attr", "text", "eol",
                             "filter", "--"] + names, cwd=vendored.VENDOR,
                            stdout=subprocess.PIPE, universal_newlines=True, check=True)
    attributes = {}
    for line in result.stdout.splitlines():
        name, attribute, value = line.split(": ")
        attributes.setdefault(name, {})[attribute] = value
    assert attributes == {name: {"text": "unset", "eol": "unspecified",
                                 "filter": "unspecified"} for name in names}
    with open(vendored.OSSEC_TARBALL, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"                  # gzip, not a pointer file


def vendor_copy(top):
    """A copy of tests/vendored.py and tests/vendor/ under *top*/tests."""
    tests = os.path.join(str(top), "tests")
    os.makedirs(tests)
    shutil.copy2(os.path.join(ROOT, "tests", "vendored.py"), tests)
    shutil.copytree(vendored.VENDOR, os.path.join(tests, "vendor"))
    return tests


def flip_last_byte(path):
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))


def test_the_setup_check_refuses_a_changed_a_missing_and_an_unlisted_file(tmp_path):
    """``tests/vendored.py check``, the step of tools/setup: exit 0 on the
    files as listed; exit 1, with one line for each problem, for a tarball
    one bit off, a stock script gone and a file SHA256SUMS does not list."""
    tests = vendor_copy(tmp_path)
    check = [sys.executable, os.path.join(tests, "vendored.py"), "check"]
    result = subprocess.run(check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    vendor = os.path.join(tests, "vendor")
    tarball = os.path.join(vendor, "ossec-hids-7f06fe0.tar.gz")
    flip_last_byte(tarball)
    os.unlink(os.path.join(vendor, "stock-ar", "2.8.3", "host-deny.sh"))
    with open(os.path.join(vendor, "stock-ar", "extra.sh"), "w") as f:
        f.write("#!/bin/sh\n")
    result = subprocess.run(check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    sums = os.path.join(vendor, "SHA256SUMS")
    listed = vendored.listed()
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "tests/vendored.py: %s has SHA-256 %s, not the %s that %s lists for "
        "ossec-hids-7f06fe0.tar.gz: refused"
        % (tarball, vendored.sha256(tarball), listed["ossec-hids-7f06fe0.tar.gz"], sums),
        "tests/vendored.py: %s is absent (it belongs to the repository: "
        "tests/vendor/stock-ar/2.8.3/host-deny.sh)"
        % os.path.join(vendor, "stock-ar", "2.8.3", "host-deny.sh"),
        "tests/vendored.py: stock-ar/extra.sh is not listed in %s" % sums]


def test_the_ossec_build_refuses_a_changed_tarball(tmp_path, monkeypatch):
    """tests/ossec.py builds nothing from a tarball that is not the listed
    one: build() raises Missing naming it, before the cache is touched."""
    tests = vendor_copy(tmp_path)
    vendor = os.path.join(tests, "vendor")
    tarball = os.path.join(vendor, "ossec-hids-7f06fe0.tar.gz")
    flip_last_byte(tarball)
    monkeypatch.setattr(vendored, "VENDOR", vendor)
    monkeypatch.setattr(vendored, "SUMS", os.path.join(vendor, "SHA256SUMS"))
    monkeypatch.setattr(ossec, "TARBALL", tarball)
    cache = str(tmp_path / "cache")
    monkeypatch.setattr(ossec, "CACHE", cache)
    with pytest.raises(ossec.Missing) as error:
        ossec.build("local")
    assert str(error.value).startswith("the vendored OSSEC source: %s has SHA-256 " % tarball)
    assert str(error.value).endswith(" for ossec-hids-7f06fe0.tar.gz: refused")
    assert not os.path.exists(cache)


def test_the_bench_refuses_a_changed_stock_script(tmp_path):
    """tools/bench.py --stock with a 4.2.0 firewall-drop.sh one bit off
    stops before measuring anything, naming the file, exit 1."""
    require_root()
    stock = str(tmp_path / "stock-ar")
    shutil.copytree(vendored.STOCK_DIR, stock)
    flip_last_byte(os.path.join(stock, "4.2.0", "firewall-drop.sh"))
    result = subprocess.run([sys.executable, BENCH, "--stock", stock] + SMALL_BENCH,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=240)
    assert result.returncode == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("tools/bench.py: ")
    assert last.endswith("/stock-4.2.0/active-response/bin/firewall-drop.sh has SHA-256 %s, "
                         "not the %s that %s lists for stock-ar/4.2.0/firewall-drop.sh: refused"
                         % (vendored.sha256(os.path.join(stock, "4.2.0", "firewall-drop.sh")),
                            vendored.listed()["stock-ar/4.2.0/firewall-drop.sh"],
                            vendored.SUMS))
    assert "stock: %s (reference 4.2.0)" % stock in result.stdout
    assert "====" not in result.stdout                  # nothing measured


# The rules each stock firewall-drop.sh leaves for 192.0.2.7, in a namespace
# with forwarding off (a new one's default): 2.8.3 adds to FORWARD anyway;
# main's makes its OSSEC chain and INPUT's jump, which its delete keeps.
STOCK_RULES = {
    "2.8.3": (["-A INPUT -s 192.0.2.7/32 -j DROP", "-A FORWARD -s 192.0.2.7/32 -j DROP"], []),
    "3.7.0": (["-A INPUT -s 192.0.2.7/32 -j DROP"], []),
    "4.2.0": (["-A INPUT -s 192.0.2.7/32 -j DROP"], []),
    "main-7f06fe0": (["-N OSSEC", "-A INPUT -j OSSEC", "-A OSSEC -s 192.0.2.7/32 -j DROP"],
                     ["-N OSSEC", "-A INPUT -j OSSEC"]),
}


@pytest.mark.parametrize("version", vendored.STOCK_VERSIONS)
def test_each_vendored_stock_firewall_drop_blocks_and_lifts(version, nft_netns, tmp_path):
    """Each vendored stock firewall-drop.sh, run as execd runs it (from its
    active-response/bin/, PATH only; its lock in a working directory of
    its own): add writes its rules, delete removes them, both exit 0, and
    its log beside it has its two invocation lines."""
    home = tmp_path / ("stock-" + version)
    bin_dir, logs, cwd = home / "active-response" / "bin", home / "logs", home / "cwd"
    for path in (bin_dir, logs, cwd):
        path.mkdir(parents=True)
    program = str(bin_dir / "firewall-drop.sh")
    shutil.copy2(vendored.stock_script(version, "firewall-drop.sh"), program)
    vendored.verify(program, "stock-ar/%s/firewall-drop.sh" % version)
    added, deleted = STOCK_RULES[version]
    for action, rules in (("add", added), ("delete", deleted)):
        result = nft_netns.run(["env", "-i", "PATH=" + PATH, program, action, "-", "192.0.2.7"],
                               cwd=str(cwd))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), action
        assert nft_netns.rules() == rules, action
    # "<date> $0 $1 $2 $3 $4 $5": the date is in the machine's zone.
    lines = (logs / "active-responses.log").read_text().splitlines()
    assert [line.endswith(" %s %s - 192.0.2.7  " % (program, action))
            for line, action in zip(lines, ("add", "delete"))] == [True, True], lines
    assert len(lines) == 2, lines
    assert os.listdir(str(cwd)) == []                   # its lock, taken and given back


def git(*argv, **kwargs):
    # The checkout may belong to another user than root (CI's): git refuses
    # such a repository unless told it is safe.
    return subprocess.run(("git", "-c", "safe.directory=*") + argv, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, **kwargs).stdout


@pytest.mark.time_bound(600)
def test_a_clone_with_nothing_beside_it_builds_ossec_runs_stock_and_bench(tmp_path):
    """A ``git clone`` of the commit checked out (uncommitted changes are not
    in it), alone in a fresh directory: no ../shared, no .cache.  There,
    the set-up's check passes; pytest runs a test of the real OSSEC agent
    (built into the clone's own .cache from the clone's tarball: its
    build.json names the listed checksum) and the stock-script tests; and
    tools/bench.py --help and the smallest bench run with every vendored
    stock version measured."""
    require_root()
    head = git("-C", ROOT, "rev-parse", "HEAD").strip()
    top = tmp_path / "alone"
    top.mkdir()
    clone = str(top / "ossec-ar")
    git("clone", "--quiet", "--no-checkout", ROOT, clone)
    git("-C", clone, "checkout", "--quiet", "--detach", head)
    assert os.listdir(str(top)) == ["ossec-ar"]
    assert not os.path.exists(os.path.join(clone, "..", "shared"))
    assert not os.path.exists(os.path.join(clone, ".cache"))
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root"}

    def run(argv, timeout):
        return subprocess.run(argv, cwd=clone, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)

    result = run(["/usr/bin/python3", "tests/vendored.py", "check"], 60)
    assert (result.returncode, result.stdout) == (0, "")

    # The outer run's .venv (pytest and pyfakefs; the project itself is
    # never installed in it) runs the clone's tests from the clone's tree.
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "--basetemp", str(tmp_path / "inner"),
                  "tests/test_install.py::test_a_real_ossec_agents_stock_scripts_are_kept_and_put_back",
                  "tests/test_vendor.py::test_each_vendored_stock_firewall_drop_blocks_and_lifts"],
                 420)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("5 passed"), result.stdout
    with open(os.path.join(clone, ".cache", "ossec", "7f06fe0-agent", "build.json")) as f:
        assert json.load(f)["tarball_sha256"] == vendored.listed()["ossec-hids-7f06fe0.tar.gz"]

    result = run([sys.executable, "tools/bench.py", "--help"], 60)
    assert result.returncode == 0
    assert "(tests/vendor/stock-ar)" in " ".join(result.stdout.split())
    result = run([sys.executable, "tools/bench.py"] + SMALL_BENCH, 300)
    assert result.returncode == 0, result.stdout
    stock = os.path.join(clone, "tests", "vendor", "stock-ar")
    assert "stock: %s (reference 4.2.0)" % stock in result.stdout.splitlines()
    assert "ABSENT" not in result.stdout
    assert ("operation, 10 bans | ours auto (nftables) ms | stock 4.2.0 ms | stock 2.8.3 ms "
            "| stock main-7f06fe0 ms") in result.stdout.splitlines()
