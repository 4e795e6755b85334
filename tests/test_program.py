"""One path for every change: the programs and ossec-ar decide under the
same locks, from what the ledger says inside them.  Through the installed
programs, against real nftables (``auto``'s choice here) in private
network namespaces."""

import json
import os
import time
import random
import sys

import pytest

from conftest import state_file

ADDRESSES = ["192.0.2.%d" % n for n in range(1, 21)]
# Runs the rest of the command line with a copy of /etc (the first word) over /etc.
PRIVATE_ETC = ["unshare", "-m", "--propagation", "private", "sh", "-ec",
               'mount --bind "$0" /etc; exec "$@"']

# Runs inside the namespace: *count* operations over the addresses in a
# random order, at most 40 running at once, each a real process: the
# programs' add and delete, ossec-ar's restore, unblock and expire, and
# "lose" (an element removed by hand, as a reload would).  Then one last
# restore, and every exit code.
RACE = r"""
import json, random, subprocess, sys, time
prefix, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
addresses = sys.argv[4:]
program = prefix + "/active-response/bin/firewall-drop.sh"
admin = prefix + "/bin/ossec-ar"
rng = random.Random(seed)
kinds = ["add"] * 35 + ["delete"] * 30 + ["restore"] * 8 + ["unblock"] * 10 + \
        ["expire"] * 5 + ["lose"] * 12
ops = [(rng.choice(kinds), rng.choice(addresses)) for _ in range(count)]
codes, running = [], []
def start(n, kind, address):
    if kind in ("add", "delete"):                # each op its own alert id
        argv = [program, kind, "-", address, "1.%d" % n, "5712"]
    elif kind == "restore":
        argv = [admin, "restore"]
    elif kind == "unblock":
        argv = [admin, "unblock", address]
    elif kind == "expire":
        argv = [admin, "expire", "--older-than", "1s"]
    else:
        argv = ["/usr/sbin/nft", "delete element inet ossec v4 { %s }" % address]
    return kind, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
for n, (kind, address) in enumerate(ops):
    while len(running) >= 40:
        for item in running[:]:
            if item[1].poll() is not None:
                running.remove(item)
                codes.append((item[0], item[1].returncode))
        time.sleep(0.001)
    running.append(start(n, kind, address))
for kind, proc in running:
    codes.append((kind, proc.wait()))
final = subprocess.run([admin, "restore"], stdout=subprocess.PIPE).returncode
print(json.dumps({"codes": codes, "final": final,
                  "kinds": {"1.%d" % n: kind for n, (kind, _) in enumerate(ops)}}))
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_order_of_concurrent_changes_leaves_a_block_its_delete_lifted(nft_netns, install,
                                                                        etc_copy, seed):
    install.configure("[firewall-drop]\nlock_wait = 120\n[host-deny]\nlock_wait = 120\n")
    # ossec-ar's unblock and expire also look at hosts.deny: a private /etc.
    result = json.loads(nft_netns.check(PRIVATE_ETC + [etc_copy, sys.executable, "-c", RACE,
                                                       install.prefix, str(seed), "1000"]
                                        + ADDRESSES))
    # ("lose" is nft's own delete, which fails when the element is gone.)
    assert {code for kind, code in result["codes"] if kind != "lose"} == {0}
    assert len(result["codes"]) == 1000 and result["final"] == 0
    listing = json.loads(admin(nft_netns, install, "list", "--json")[1])
    firewall = {row["address"]: row["state"] for row in listing["blocks"]
                if row["program"] == "firewall-drop"}
    # The ledger and the firewall agree on every address: each in force is
    # blocked, and nothing is blocked that the ledger says was lifted.
    assert set(firewall.values()) <= {"in force"}, firewall
    in_force = set(firewall)
    blocked = set(nft_elements(nft_netns))
    assert blocked == in_force
    # ...and the ledger's own last word on each address says the same.
    from ossec_ar import ledger
    records, skipped = ledger.read(os.path.join(install.prefix, "var", "ossec-ar",
                                                "firewall-drop.ledger"))
    assert skipped == []
    last = {}
    for entry in records:
        last[entry.address] = entry.op
    assert {address for address, op in last.items() if op == "add"} == blocked
    assert len(set(last)) > 10              # most addresses went through it
    # Whoever wrote an add (an add, or restore re-applying a block), it
    # carries the alert id of an add: restore never brought back a block
    # that a delete had lifted.
    adds = [entry.alert for entry in records if entry.op == "add"]
    assert {result["kinds"].get(alert, "?") for alert in adds} == {"add"}


def admin(netns, install, *args):
    # UTF-8 whatever the test's locale: an argument may come back in a message.
    result = netns.run([os.path.join(install.prefix, "bin", "ossec-ar")] + list(args),
                       encoding="utf-8", errors="surrogateescape")
    return result.returncode, result.stdout, result.stderr


def nft_elements(netns):
    out = netns.check(["nft", "-j", "list", "set", "inet", "ossec", "v4"])
    sets = [item["set"] for item in json.loads(out)["nftables"] if "set" in item]
    return sorted(sets[0].get("elem", []))


def run(netns, install, *args):
    result = netns.run([install.program()] + list(args))
    assert (result.stdout, result.stderr) == ("", "")
    return result.returncode


def test_restore_refuses_an_allowlisted_address(nft_netns, install):
    assert run(nft_netns, install, "add", "-", "192.0.2.5", "1.1", "5712") == 0
    assert run(nft_netns, install, "add", "-", "192.0.2.6", "1.1", "5712") == 0
    nft_netns.check(["nft", "flush set inet ossec v4"])               # a reload
    install.configure("[allowlist]\naddresses = 192.0.2.5\n")
    code, out, err = admin(nft_netns, install, "restore", "--json")
    assert (code, err) == (65, ""), (out, err)
    results = {r["address"]: r for r in json.loads(out)["restored"]}
    assert results["192.0.2.5"]["status"] == "refused"
    assert results["192.0.2.5"]["detail"] == "192.0.2.5 is on the allowlist (192.0.2.5)"
    assert results["192.0.2.6"]["status"] == "blocked"
    assert nft_elements(nft_netns) == ["192.0.2.6"]
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: restore -: failed: 192.0.2.5 firewall-drop: refused; 192.0.2.6 "
        "firewall-drop: blocked (exit 65)")


FORGED = ["127.0.0.1", "0.0.0.0", "224.0.0.1", "::1", "10.0.0.0/8", "not-an-ip",
          "192.0.2.07", "ff02::1"]


def forge(install, program, addresses, **fields):
    """Records with valid checksums, as someone who could write the ledger
    (root, or a bug) might leave them."""
    from ossec_ar import ledger
    path = state_file(install.prefix, program + ".ledger")
    with open(path, "a") as f:
        for n, text in enumerate(addresses):
            entry = ledger.Record(1764290000.0 + n, "add", program, text,
                                  fields.get("backend", "nftables"), fields.get("rule", "5712"),
                                  fields.get("alert", "1.1"))
            f.write(entry.line())
    os.chmod(path, 0o600)


def test_forged_ledger_records_are_reported_and_never_applied(nft_netns, install, etc_copy):
    deny = os.path.join(etc_copy, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# admin\n")
    forge(install, "firewall-drop", FORGED)
    forge(install, "host-deny", FORGED, backend="/etc/hosts.deny")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "5712") == 0
    with_etc = PRIVATE_ETC + [etc_copy, os.path.join(install.prefix, "bin", "ossec-ar")]
    listing = nft_netns.run(with_etc + ["list", "--json"])
    assert (listing.returncode, listing.stderr) == (0, "")
    data = json.loads(listing.stdout)
    assert [(r["program"], r["address"]) for r in data["blocks"]] == [
        ("firewall-drop", "192.0.2.7")]
    for program in ("firewall-drop", "host-deny"):
        for text in FORGED:
            assert any(note.startswith("ledger ") and "%s.ledger: record for %s skipped: "
                       % (program, text) in note for note in data["notes"]), (text, data)
    restore = nft_netns.run(with_etc + ["restore"])
    assert restore.returncode == 0 and restore.stdout.startswith("nothing to restore\n")
    assert restore.stdout.count("skipped") == 2 * len(FORGED)      # and says why
    assert nft_elements(nft_netns) == ["192.0.2.7"]
    assert nft_netns.check(["nft", "list", "set", "inet", "ossec", "v6"]).count("::1") == 0
    with open(deny) as f:
        assert f.read() == "# admin\n"
    expire = nft_netns.run(with_etc + ["expire", "--older-than", "1s", "--json"])
    assert expire.returncode == 0
    assert json.loads(expire.stdout)["expire"] == []          # nothing to lift


HOSTILE = "\x1b[2J\x1b[H\r\nFAKE 10.0.0.1 firewall-drop in force\x07"


def test_list_escapes_what_it_shows_a_person_and_json_keeps_it(nft_netns, install):
    forge(install, "firewall-drop", ["192.0.2.9"], backend=HOSTILE, rule=HOSTILE,
          alert=HOSTILE)
    code, text, err = admin(nft_netns, install, "list")
    assert (code, err) == (0, "")
    rows = text.splitlines()
    assert len(rows) == 2                       # the header and one row, no fake row
    assert not any(ch in text for ch in "\x1b\r\x07")
    assert "\\x1b[2J\\x1b[H\\x0d\\x0aFAKE" in rows[1]
    code, out, err = admin(nft_netns, install, "list", "--json")
    [row] = json.loads(out)["blocks"]
    assert (row["rule"], row["alert"], row["backend"]) == (HOSTILE, HOSTILE, HOSTILE)


@pytest.mark.parametrize("duration,code", [("30s", 0), ("600", 0), ("30m", 0), ("2w", 0),
                                           ("١٢", 64), ("12x", 64), ("0", 64), ("s", 64),
                                           ("-5", 64), ("1.5h", 64), ("１２", 64)])
def test_expire_takes_ascii_digits_with_every_unit(nft_netns, install, duration, code):
    result = admin(nft_netns, install, "expire", "--older-than", duration, "--dry-run")
    assert result[0] == code, result
    if code:
        assert "is not a duration" in result[2]


# Tool calls, counted by wrappers in a root-owned tool directory that log
# each call and run the real tool.
WRAPPER = '#!/bin/sh\necho "%s $*" >> "%s"\nexec %s "$@"\n'


@pytest.fixture
def counted(tmp_path, install):
    tools = tmp_path / "tools"
    tools.mkdir()
    os.chmod(str(tmp_path), 0o755)
    calls = str(tmp_path / "calls")
    for name in ("nft", "ipset", "iptables", "ip6tables", "iptables-restore",
                 "ip6tables-restore", "firewall-cmd"):
        real = "/usr/sbin/" + name if os.path.exists("/usr/sbin/" + name) else \
            "/usr/bin/" + name
        path = tools / name
        path.write_text(WRAPPER % (name, calls, real))
        path.chmod(0o755)

    def configure(backend):
        install.configure("[system]\ntool_dirs = %s\n[firewall-drop]\nbackend = %s\n"
                          % (tools, backend))

    def taken():
        if not os.path.exists(calls):
            return []
        with open(calls) as f:
            lines = [line.split(" ", 1)[0] for line in f.read().splitlines()]
        os.unlink(calls)
        return lines
    return configure, taken


@pytest.mark.parametrize("backend,add,again,delete", [
    ("nftables", [], [], []),                     # netlink alone: no nft run
    ("ipset", ["ipset", "iptables-restore"], ["ipset", "iptables-restore"], ["ipset"]),
    ("iptables", ["iptables", "iptables"], ["iptables"], ["iptables", "iptables"]),
])
def test_an_add_is_at_most_two_calls_and_a_delete_goes_where_the_ledger_says(
        nft_netns, install, counted, backend, add, again, delete):
    configure, taken = counted
    configure(backend)
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0  # the layout
    taken()
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert taken() == add
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert install.log_lines()[-1].split(": ")[2] == "already blocked"
    assert taken() == again                     # from the tool's own answer
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert taken() == delete                    # only the backend that blocked it


def test_a_ban_of_the_old_layout_is_still_found_by_its_delete(nft_netns, install, counted):
    configure, taken = counted
    configure("iptables")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    configure("auto")                           # auto now takes nftables
    assert run(nft_netns, install, "add", "-", "192.0.2.8", "1.1", "1") == 0
    assert nft_elements(nft_netns) == ["192.0.2.8"]
    code, out, _ = admin(nft_netns, install, "list", "--json")
    assert {(r["address"], r["state"], r["where"]) for r in json.loads(out)["blocks"]} == {
        ("192.0.2.7", "in force", "iptables"), ("192.0.2.8", "in force", "nftables")}
    taken()
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert install.log_lines()[-1].endswith(
        ": delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC (exit 0)")
    assert set(taken()) == {"iptables"}         # the ledger said where
    # A ban the ledger never saw is not ours: no tool is asked, it stays.
    nft_netns.check(["iptables", "-w", "-I", "INPUT", "-s", "192.0.2.9", "-j", "DROP"])
    assert run(nft_netns, install, "delete", "-", "192.0.2.9", "1.1", "1") == 0
    assert install.log_lines()[-1].endswith(
        ": delete 192.0.2.9: was not blocked: no block of ours in the ledger (exit 0)")
    assert taken() == []
    assert "-A INPUT -s 192.0.2.9/32 -j DROP" in nft_netns.rules()


def test_a_fresh_address_on_the_netlink_path_is_logged_blocked(nft_netns, install, counted):
    configure, taken = counted
    configure("nftables")
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0  # the layout
    taken()
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    assert taken() == []                        # netlink alone: the fast path
    assert install.log_lines()[-1].endswith(
        ": add 192.0.2.7: blocked: nftables table inet ossec, set v4 (exit 0)")
    assert nft_elements(nft_netns) == ["192.0.2.1", "192.0.2.7"]


@pytest.mark.parametrize("chain", ["INPUT", "OSSEC"])
def test_a_delete_leaves_a_copy_the_ledger_does_not_hold(nft_netns, install, chain):
    """The ledger says nftables, whose set lost the address (a reload); a
    rule of the same form in INPUT, or in our iptables chain, that no add
    of ours made (nor adopt found at install) is someone else's: the delete
    lifts only what the ledger holds, and says it was not there."""
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0  # auto: nftables
    assert nft_elements(nft_netns) == ["192.0.2.7"]
    nft_netns.check(["nft", "delete element inet ossec v4 { 192.0.2.7 }"])
    if chain == "OSSEC":
        nft_netns.check(["iptables", "-w", "-N", "OSSEC"])
    nft_netns.check(["iptables", "-w", "-A", chain, "-s", "192.0.2.7", "-j", "DROP"])
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert install.log_lines()[-1].endswith(
        ": delete 192.0.2.7: was not blocked: nftables table inet ossec, set v4 (exit 0)")
    assert "-A %s -s 192.0.2.7/32 -j DROP" % chain in nft_netns.rules()


# iptables that does everything but remove a rule.
FAILING_DELETE = """#!/bin/sh
case " $* " in *" -D "*) echo "iptables: refused for the test" >&2; exit 1;; esac
exec /usr/sbin/iptables "$@"
"""


def test_a_delete_that_fails_in_one_of_two_layouts_says_what_it_removed(
        nft_netns, install, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    tools.chmod(0o755)                  # tool_dirs: root's, writable by nobody else
    for name in ("nft", "ip6tables"):
        os.symlink("/usr/sbin/" + name, str(tools / name))
    (tools / "iptables").write_text(FAILING_DELETE)
    (tools / "iptables").chmod(0o755)

    def use(backend):
        install.configure("[system]\ntool_dirs = %s\n[firewall-drop]\nbackend = %s\n"
                          % (tools, backend))
    use("iptables")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    use("nftables")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0
    rule = "-A OSSEC -s 192.0.2.7/32 -j DROP"
    assert rule in nft_netns.rules() and nft_elements(nft_netns) == ["192.0.2.7"]
    # The ledger holds both: nftables's delete works, iptables's fails.
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 75
    text = install.log_lines()[-1].split("/firewall-drop.sh: ", 1)[1]
    assert text.startswith("delete 192.0.2.7: failed: `%s/iptables -w " % tools), text
    assert text.endswith(" -D OSSEC -s 192.0.2.7/32 -j DROP` exited 1: iptables: refused "
                         "for the test; removed from nftables table inet ossec, set v4 "
                         "(exit 75)"), text
    assert rule in nft_netns.rules() and nft_elements(nft_netns) == []
    # Not recorded as lifted: the next delete still knows where to look.
    install.configure("")
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert install.log_lines()[-1].endswith(
        ": delete 192.0.2.7: unblocked: iptables: removed 1 from OSSEC (exit 0)")
    assert rule not in nft_netns.rules()


IMPORTS = r"""
import subprocess, sys
result = subprocess.run([sys.argv[1], "-IS", "-X", "importtime"] + sys.argv[2:],
                        stderr=subprocess.PIPE, universal_newlines=True)
print(result.returncode)
print("\n".join(line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line))
"""


@pytest.mark.parametrize("program,backend,args", [
    ("firewall-drop.sh", "nftables", ["add", "-", "192.0.2.7", "1.1", "1"]),
    ("firewall-drop.sh", "nftables", ["delete", "-", "192.0.2.7", "1.1", "1"]),
    ("host-deny.sh", None, ["add", "-", "192.0.2.7", "1.1", "1"]),
    ("host-deny.sh", None, ["delete", "-", "192.0.2.7", "1.1", "1"]),
])
def test_the_hot_path_imports_only_what_it_uses(nft_netns, install, etc_copy, program,
                                                backend, args):
    """Every run pays for its imports: no ipaddress (the allowlist and
    ossec-ar use it), no json, no backend module but the one used."""
    from conftest import PYTHON
    argv = [sys.executable, "-c", IMPORTS, PYTHON, install.program(program)] + args
    if program == "host-deny.sh":
        argv = PRIVATE_ETC + [etc_copy] + argv
    if args[0] == "delete":             # of a block the ledger knows
        nft_netns.check(argv[:-len(args)] + ["add"] + args[1:])
    code, *modules = nft_netns.check(argv).splitlines()
    assert code == "0"
    backends = {m for m in modules if m.startswith("ossec_ar.backends.")} - {
        "ossec_ar.backends.base"}
    assert backends == ({"ossec_ar.backends." + backend} if backend else set())
    assert not {"ipaddress", "json", "re", "subprocess", "argparse", "enum"} & set(modules)


@pytest.mark.parametrize("lifter", ["delete", "unblock.sh", "ossec-ar unblock", "expire"])
def test_an_element_someone_else_put_in_our_set_is_found_and_left(nft_netns, install,
                                                                   lifter):
    """An element added to our nftables set by hand after install: the add
    finds it (not ours, recorded ``found``); list says so; restore never
    puts it back; every lifting of ours leaves it, and says so."""
    assert run(nft_netns, install, "add", "-", "192.0.2.1", "1.1", "1") == 0  # the layout
    nft_netns.check(["nft", "add element inet ossec v4 { 192.0.2.7 }"])
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.2", "5712") == 0
    assert install.log_lines()[-1].endswith(
        ": add 192.0.2.7: already blocked: nftables table inet ossec, set v4; not ours: its"
        " delete will leave it (exit 0)")
    code, out, _ = admin(nft_netns, install, "list", "--json")
    assert code == 0
    assert {r["address"]: r["state"] for r in json.loads(out)["blocks"]} == {
        "192.0.2.1": "in force", "192.0.2.7": "not ours"}
    nft_netns.check(["nft", "flush set inet ossec v4"])       # a reload loses both
    code, out, _ = admin(nft_netns, install, "restore")
    assert code == 0 and nft_elements(nft_netns) == ["192.0.2.1"]
    nft_netns.check(["nft", "add element inet ossec v4 { 192.0.2.7 }"])
    if lifter == "delete":
        assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.2", "5712") == 0
    elif lifter == "unblock.sh":
        assert nft_netns.run([install.program("unblock.sh"), "add", "-", "192.0.2.7", "1.3",
                              "100610"]).returncode == 0
    elif lifter == "ossec-ar unblock":
        assert admin(nft_netns, install, "unblock", "192.0.2.7")[0] == 0
    else:
        time.sleep(1.1)             # older than a second, whatever the machine's speed
        code, out, _ = admin(nft_netns, install, "expire", "--older-than", "1", "--dry-run")
        assert code == 0 and "would leave, not ours: 192.0.2.7 (firewall-drop, since " in out
        assert "would lift 192.0.2.1 (firewall-drop, since " in out
        assert admin(nft_netns, install, "expire", "--older-than", "1")[0] == 0
    assert "not ours, left" in install.log_lines()[-1]
    assert "firewall-drop: not ours, left" in install.log_lines()[-1] or \
        ": delete 192.0.2.7: not ours, left: nftables: blocked by someone else" in \
        install.log_lines()[-1]
    assert "192.0.2.7" in nft_elements(nft_netns)


def test_a_delete_lifts_ours_and_names_what_it_left(nft_netns, install):
    """Ours in nftables, someone else's rule in our iptables chain met by
    a later add under backend iptables: the delete lifts the one, leaves
    the other, and says both."""
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.1", "1") == 0   # auto: nftables
    nft_netns.check(["iptables", "-w", "-N", "OSSEC"])
    nft_netns.check(["iptables", "-w", "-A", "OSSEC", "-s", "192.0.2.7", "-j", "DROP"])
    install.configure("[firewall-drop]\nbackend = iptables\n")
    assert run(nft_netns, install, "add", "-", "192.0.2.7", "1.2", "1") == 0
    assert "; not ours: its delete will leave it" in install.log_lines()[-1]
    assert run(nft_netns, install, "delete", "-", "192.0.2.7", "1.1", "1") == 0
    assert install.log_lines()[-1].endswith(
        ": delete 192.0.2.7: unblocked: nftables table inet ossec, set v4; left in place, not"
        " ours: iptables (exit 0)")
    assert nft_elements(nft_netns) == []
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()


FAILING_LIST = """#!/bin/sh
case " $* " in *" -S"*) echo "iptables: refused for the test" >&2; exit 1;; esac
exec /usr/sbin/iptables "$@"
"""


def test_adopt_that_cannot_list_a_layout_fails_unmarked_and_its_rerun_completes(
        nft_netns, install, tmp_path):
    """Install's adopt with iptables' listing failing: what could be read is
    recorded, the run is 75 with a line naming what was not, and it is not
    marked done, so that running it again adopts the rest, nothing twice."""
    tools = tmp_path / "tools"
    tools.mkdir()
    tools.chmod(0o755)
    for name in ("nft", "ip6tables"):
        os.symlink("/usr/sbin/" + name, str(tools / name))
    (tools / "iptables").write_text(FAILING_LIST)
    (tools / "iptables").chmod(0o755)
    nft_netns.check(["iptables", "-w", "-I", "INPUT", "-s", "192.0.2.9", "-j", "DROP"])
    nft_netns.check(["ip6tables", "-w", "-I", "INPUT", "-s", "2001:db8::9", "-j", "DROP"])
    install.configure("[system]\ntool_dirs = %s\n" % tools)
    code, out, err = admin(nft_netns, install, "adopt")
    assert code == 75
    line = install.log_lines()[-1]
    assert ": adopt -: failed: adopted firewall-drop: 1; host-deny: 0; not done: iptables:" \
           " cannot list: " in line and "refused for the test" in line
    assert line.endswith("run ossec-ar adopt again (exit 75)")
    marker = os.path.join(install.prefix, "var", "ossec-ar", "adopted")
    assert not os.path.exists(marker)
    install.configure("")
    code, out, _ = admin(nft_netns, install, "--json", "adopt")
    assert code == 0 and os.path.exists(marker)
    assert json.loads(out)["adopted"] == [
        {"program": "firewall-drop", "address": "192.0.2.9", "where": "iptables:INPUT"}]


def test_adopt_with_the_lock_held_is_75_and_records_nothing(nft_netns, install):
    from conftest import state_file
    from test_iptables import hold_lock, release
    nft_netns.check(["iptables", "-w", "-I", "INPUT", "-s", "192.0.2.9", "-j", "DROP"])
    install.configure("[firewall-drop]\nlock_wait = 0.5\n")
    lock = state_file(install.prefix, "firewall-drop.lock")
    holder = hold_lock(lock)
    try:
        code, _, _ = admin(nft_netns, install, "adopt")
    finally:
        release(holder)
    assert code == 75
    assert install.log_lines()[-1].endswith(
        ": adopt -: failed: lock %s still held by another run after 0.5s (exit 75)" % lock)
    assert not os.path.exists(os.path.join(install.prefix, "var", "ossec-ar", "adopted"))
    assert not os.path.exists(os.path.join(install.prefix, "var", "ossec-ar",
                                           "firewall-drop.ledger"))
