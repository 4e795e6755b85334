"""Removal strands no ban (lib/ossec_ar/handover.py): ``make uninstall``
hands each block in force to the form that the restored stock script's
delete lifts, or lifts it, and removes our layouts.  Proved with packets
between two namespaces (test_packets.py), with the real stock scripts that
OSSEC released (their delete run as execd would), and with the real
iptables, ip6tables, nft, ipset and ip in the namespace.  The .deb's and
the .rpm's maintainer scripts are in test_packages.py."""

import os
import shutil
import subprocess
import tarfile

import pytest

import ossec
from conftest import ROOT, Install, make_install, require_root
from ossec_ar import handover, ledger
from test_packets import (CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, Pair,
                          more_client_addresses)

# The stock scripts as OSSEC released them (tests/vendor/README.md).
from vendored import STOCK_DIR, STOCK_VERSIONS as VERSIONS  # noqa: E402
WHICH = {"2.8.3": "OSSEC 2.8.3", "3.7.0": "OSSEC 3.7.0 to 4.2.0",
         "4.2.0": "OSSEC 3.7.0 to 4.2.0", "main-7f06fe0": "OSSEC main"}
FORM = {"2.8.3": "-s IP -j DROP in INPUT and FORWARD",
        "3.7.0": "-s IP -j DROP in INPUT, and FORWARD when forwarding is on",
        "4.2.0": "-s IP -j DROP in INPUT, and FORWARD when forwarding is on",
        "main-7f06fe0": "-s IP -j DROP in chain OSSEC"}
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def stock(version, name="firewall-drop.sh"):
    with open(os.path.join(STOCK_DIR, version, name), "rb") as f:
        return f.read()


def from_tarball(name):
    """A script of OSSEC's source (7f06fe0): route-null.sh, nftables-drop.sh."""
    with tarfile.open(ossec.TARBALL) as tar:
        return tar.extractfile("ossec-hids-%s/active-response/%s" % (ossec.VERSION,
                                                                    name)).read()


class Agent:
    """ossec-ar installed by make install over an agent's active-response
    directory holding *scripts* ({name: content}), with the ar.conf that
    makes execd run *commands* (the executables)."""

    def __init__(self, top, scripts, commands=("firewall-drop.sh",)):
        self.destdir = str(top)
        self.prefix = self.destdir + "/var/ossec"
        self.bin = os.path.join(self.prefix, "active-response", "bin")
        for sub in ("active-response/bin", "logs", "etc/shared"):
            os.makedirs(os.path.join(self.prefix, sub))
        for name, content in scripts.items():
            with open(os.path.join(self.bin, name), "wb") as f:
                f.write(content)
            os.chmod(os.path.join(self.bin, name), 0o750)
        if commands is not None:
            with open(os.path.join(self.prefix, "etc", "shared", "ar.conf"), "w") as f:
                f.writelines("%s%d - %s - 600\n" % (name.split(".")[0], i, name)
                             for i, name in enumerate(commands))
        make_install(self.destdir)
        self.scratch = os.path.join(self.destdir, "cwd")   # the stock scripts' lock dir
        os.makedirs(self.scratch)

    def configure(self, backend):
        install = Install(self.prefix, backend)
        if backend:
            install.configure("")
        elif os.path.exists(install.config_file):
            os.unlink(install.config_file)

    def add(self, ns, address, name="firewall-drop.sh"):
        result = ns.run([os.path.join(self.bin, name), "add", "-", address, "1.1", "5712"])
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), address

    def uninstall(self, ns):
        return ns.run(["make", "-s", "-C", ROOT, "uninstall", "DESTDIR=" + self.destdir,
                       "PREFIX=/var/ossec"])

    def ossec_ar(self, ns, *args):
        return ns.run([os.path.join(self.prefix, "bin", "ossec-ar")] + list(args))

    def stock_delete(self, ns, address, name="firewall-drop.sh"):
        """The restored script's delete, as execd runs it (its own PATH)."""
        path = os.path.join(self.bin, name)
        assert not os.path.islink(path)
        result = ns.run([path, "delete", "-", address, "1.1", "5712"], cwd=self.scratch,
                        env=dict(os.environ, PATH=PATH), timeout=60)
        assert result.returncode == 0, (result.stdout, result.stderr)

    def log(self):
        with open(os.path.join(self.prefix, "logs", "active-responses.log")) as f:
            return f.read().splitlines()

    def in_force(self, program="firewall-drop"):
        records, _ = ledger.read(os.path.join(self.prefix, "var", "ossec-ar",
                                              program + ".ledger"))
        return ledger.in_force(records)


@pytest.fixture
def pair():
    require_root()
    made = Pair("nft")
    yield made
    made.close()


@pytest.fixture(params=["nft", "legacy"])
def any_pair(request):
    require_root()
    made = Pair(request.param)
    yield made
    made.close()


def lines(result):
    assert (result.returncode, result.stderr) == (0, ""), (result.stdout, result.stderr)
    return result.stdout.splitlines()


def with_address(ns, address, tool):
    return [rule for rule in ns.rules(tool) if " %s/" % address in rule]


def assert_no_layout_of_ours(ns, main_chain=False):
    """No table inet ossec, no ipsets, no rule that uses them, no chain
    OSSEC (unless it is the restored main script's), no route of our
    protocol, in either family."""
    assert "table inet ossec" not in ns.check(["nft", "list", "tables"])
    assert ns.check(["ipset", "list", "-n"]) == ""
    for tool in ("iptables", "ip6tables"):
        rules = ns.rules(tool)
        assert not [rule for rule in rules if "match-set" in rule], rules
        if not main_chain:
            assert not [rule for rule in rules if "OSSEC" in rule], rules
    for family in ("-4", "-6"):
        assert ns.check(["ip", family, "route", "show", "table", "all", "proto", "239"]) == ""


# Each stock version restored, with packets

@pytest.mark.parametrize("version", VERSIONS)
def test_each_stock_version_gets_the_blocks_and_its_delete_lifts_them(pair, tmp_path,
                                                                       version):
    """Blocked before removal (in our nftables table), still blocked after
    (in the stock form), and lifted by the restored script's own delete."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock(version)})
    for server, client in ((SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)):
        assert pair.connects(server)
        agent.add(pair.server, client)
        assert not pair.connects(server)
    assert "table inet ossec" in pair.server.check(["nft", "list", "tables"])
    line = "firewall-drop: 2 handed over (2 to firewall-drop.sh (%s): %s), 0 lifted" % (
        WHICH[version], FORM[version])
    assert lines(agent.uninstall(pair.server)) == [line, "host-deny: 0 handed over, 0 lifted"]
    assert not pair.connects(SERVER_V4) and not pair.connects(SERVER_V6)
    main = version.startswith("main")
    assert_no_layout_of_ours(pair.server, main_chain=main)
    with open(os.path.join(agent.bin, "firewall-drop.sh"), "rb") as f:
        assert f.read() == stock(version)                       # restored
    # Exactly what the stock add would have made: its delete removes one copy.
    # A new namespace forwards nothing, so 3.7.0 and later leave FORWARD alone.
    for address, tool, bits in ((CLIENT_V4, "iptables", "/32"), (CLIENT_V6, "ip6tables",
                                                                  "/128")):
        drop = "-s %s%s -j DROP" % (address, bits)
        expected = {"2.8.3": ["-A INPUT " + drop, "-A FORWARD " + drop],
                    "main-7f06fe0": ["-A OSSEC " + drop]}.get(version, ["-A INPUT " + drop])
        assert sorted(with_address(pair.server, address, tool)) == sorted(expected)
        if main:
            assert {"-N OSSEC", "-A INPUT -j OSSEC", "-A FORWARD -j OSSEC"} <= set(
                pair.server.rules(tool))
    assert agent.in_force() == {}                               # deletes recorded
    assert agent.log()[-1].endswith("/bin/ossec-ar: hand-over -: done: %s; host-deny: 0 "
                                    "handed over, 0 lifted (exit 0)" % line)
    for server, client in ((SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)):
        agent.stock_delete(pair.server, client)
        assert pair.connects(server)
    assert not with_address(pair.server, CLIENT_V4, "iptables")
    assert not with_address(pair.server, CLIENT_V6, "ip6tables")
    # The stock delete found each rule at the first try.
    assert not [line for line in agent.log() if "Unable to run" in line]


@pytest.mark.parametrize("version", ["3.7.0", "4.2.0"])
def test_a_forwarding_host_gets_forward_rules_from_3_7_0_on(pair, tmp_path, version):
    """Their add and delete touch FORWARD when forwarding is on: so does
    the hand-over, and their delete lifts both rules."""
    pair.server.check(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    agent = Agent(tmp_path, {"firewall-drop.sh": stock(version)})
    agent.add(pair.server, CLIENT_V4)
    lines(agent.uninstall(pair.server))
    drop = "-s %s/32 -j DROP" % CLIENT_V4
    assert sorted(with_address(pair.server, CLIENT_V4, "iptables")) == [
        "-A FORWARD " + drop, "-A INPUT " + drop]
    assert not pair.connects(SERVER_V4)
    agent.stock_delete(pair.server, CLIENT_V4)
    assert with_address(pair.server, CLIENT_V4, "iptables") == []
    assert pair.connects(SERVER_V4)


@pytest.mark.parametrize("backend", ["ipset", "iptables"])
def test_every_layout_is_handed_over_and_removed(any_pair, tmp_path, backend):
    """The set layout and the chain layout (under iptables-nft and
    iptables-legacy) go the same way as nftables' table.  Copies of the
    stock rule that an administrator put in INPUT after install (two) are
    theirs: ours is handed over beside them, and after the stock delete
    lifted ours, theirs still block."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock("2.8.3")})
    agent.configure(backend)
    agent.add(any_pair.server, CLIENT_V4)
    agent.add(any_pair.server, CLIENT_V6)
    for _ in range(2):
        any_pair.server.check(["iptables", "-I", "INPUT", "-s", CLIENT_V4, "-j", "DROP"])
    assert not any_pair.connects(SERVER_V4) and not any_pair.connects(SERVER_V6)
    assert lines(agent.uninstall(any_pair.server))[0].startswith(
        "firewall-drop: 2 handed over (2 to firewall-drop.sh (OSSEC 2.8.3): ")
    assert_no_layout_of_ours(any_pair.server)
    assert sorted(with_address(any_pair.server, CLIENT_V4, "iptables")) == [
        "-A FORWARD -s %s/32 -j DROP" % CLIENT_V4] + 3 * [
        "-A INPUT -s %s/32 -j DROP" % CLIENT_V4]
    assert not any_pair.connects(SERVER_V4) and not any_pair.connects(SERVER_V6)
    for server, client in ((SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)):
        agent.stock_delete(any_pair.server, client)
    assert any_pair.connects(SERVER_V6)
    assert with_address(any_pair.server, CLIENT_V4, "iptables") == 2 * [
        "-A INPUT -s %s/32 -j DROP" % CLIENT_V4]
    assert not any_pair.connects(SERVER_V4)             # the administrator's


def test_our_chain_named_ossec_becomes_main_scripts_own(any_pair, tmp_path):
    """Main's script uses a chain OSSEC of its own: ours, of that name, is
    left to it with the blocks in it, and its delete lifts them."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock("main-7f06fe0")})
    agent.configure("iptables")
    agent.add(any_pair.server, CLIENT_V4)
    before = any_pair.server.rules()
    assert "-A OSSEC -s %s/32 -j DROP" % CLIENT_V4 in before
    lines(agent.uninstall(any_pair.server))
    assert any_pair.server.rules() == before
    assert not any_pair.connects(SERVER_V4)
    agent.stock_delete(any_pair.server, CLIENT_V4)
    assert any_pair.connects(SERVER_V4)
    assert with_address(any_pair.server, CLIENT_V4, "iptables") == []


def test_route_null_gets_a_reject_route_and_ipv6_is_lifted(pair, tmp_path):
    """route-null.sh's delete (route del IP reject) lifts the reject route
    the hand-over puts in place of our blackhole route; it cannot do IPv6
    (net-tools reads the address as a host name), so that one is lifted."""
    agent = Agent(tmp_path, {"route-null.sh": from_tarball("route-null.sh"),
                             "firewall-drop.sh": stock("3.7.0")},
                  commands=("firewall-drop.sh", "route-null.sh"))
    for server, client in ((SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)):
        agent.add(pair.server, client, "route-null.sh")
        assert not pair.connects(server)
    assert lines(agent.uninstall(pair.server)) == [
        "firewall-drop: 1 handed over (1 to route-null.sh (OSSEC): reject route), 1 lifted "
        "(1: route-null.sh (OSSEC) cannot lift an IPv6 address)",
        "host-deny: 0 handed over, 0 lifted"]
    assert_no_layout_of_ours(pair.server)
    assert pair.server.check(["ip", "-4", "route", "show", "table", "main", "type",
                              "unreachable"]) == "unreachable %s scope host \n" % CLIENT_V4
    assert not pair.connects(SERVER_V4)
    assert pair.connects(SERVER_V6)
    agent.stock_delete(pair.server, CLIENT_V4, "route-null.sh")
    assert pair.connects(SERVER_V4)
    assert pair.server.check(["ip", "-4", "route", "show", "table", "main", "type",
                              "unreachable"]) == ""


# Nothing to hand over to: lifted

@pytest.mark.parametrize("restored", ["none", "changed", "not in ar.conf"])
def test_blocks_are_lifted_when_no_known_stock_script_comes_back(pair, tmp_path, restored):
    """Every layout in use (nftables, ipset, the iptables chain, routes; both
    families): with no stock script to restore, one whose code was changed,
    or names that ar.conf does not list, every block is lifted and every
    layout removed, and so are the stock forms of those blocks (a rule in
    INPUT, a reject route), as our delete would.  A dry run first changes
    nothing."""
    scripts, commands = {}, ("firewall-drop.sh", "route-null.sh")
    reason = {"none": "no stock firewall-drop.sh will be restored",
              "changed": "the firewall-drop.sh to be restored is not a stock script we know",
              "not in ar.conf": "no name that may have made it is in etc/shared/ar.conf"}
    route_reason = "no stock route-null.sh will be restored"
    if restored == "changed":
        scripts["firewall-drop.sh"] = stock("3.7.0").replace(b"-D INPUT", b"-D OSSEC-X")
    if restored == "not in ar.conf":
        scripts = {"firewall-drop.sh": stock("3.7.0"),
                   "route-null.sh": from_tarball("route-null.sh")}
        commands = ("host-deny.sh",)
        route_reason = reason[restored]
    agent = Agent(tmp_path, scripts, commands)
    for backend, last in (("iptables", "51"), ("ipset", "52")):
        agent.configure(backend)
        agent.add(pair.server, "192.0.2." + last)
        agent.add(pair.server, "2001:db8::" + last)
    agent.configure(None)                                   # auto: nftables
    # What the stock scripts left before ossec-ar came (adopted at install,
    # each copy: the stock add ran twice), which our delete lifts too.
    for _ in range(2):
        pair.server.check(["iptables", "-I", "INPUT", "-s", CLIENT_V4, "-j", "DROP"])
    pair.server.check(["/sbin/route", "add", "192.0.2.53", "reject"])
    pair.server.run(["rm", "-f", os.path.join(agent.prefix, "var", "ossec-ar", "adopted")])
    assert agent.ossec_ar(pair.server, "adopt").returncode == 0
    agent.add(pair.server, CLIENT_V4)
    agent.add(pair.server, CLIENT_V6)
    agent.add(pair.server, "192.0.2.53", "route-null.sh")
    agent.add(pair.server, "2001:db8::53", "route-null.sh")
    assert not pair.connects(SERVER_V4) and not pair.connects(SERVER_V6)
    line = "firewall-drop: 0 handed over, 8 lifted (6: %s; 2: %s)" % (reason[restored],
                                                                      route_reason)
    if restored == "not in ar.conf":
        line = "firewall-drop: 0 handed over, 8 lifted (8: %s)" % reason[restored]
    before = {tool: pair.server.rules(tool) for tool in ("iptables", "ip6tables")}
    assert lines(agent.ossec_ar(pair.server, "hand-over", "--dry-run")) == [
        line + " (dry run: nothing changed)",
        "host-deny: 0 handed over, 0 lifted (dry run: nothing changed)"]
    assert {tool: pair.server.rules(tool) for tool in before} == before
    assert not pair.connects(SERVER_V4) and not pair.connects(SERVER_V6)
    assert len(agent.in_force()) == 8
    assert lines(agent.uninstall(pair.server)) == [line, "host-deny: 0 handed over, 0 lifted"]
    assert pair.connects(SERVER_V4) and pair.connects(SERVER_V6)
    assert_no_layout_of_ours(pair.server)
    for tool in ("iptables", "ip6tables"):
        assert pair.server.rules(tool) == []
    assert pair.server.check(["ip", "-4", "route", "show", "table", "main", "type",
                              "unreachable"]) == ""
    assert agent.in_force() == {}


def test_a_failed_hand_over_stops_the_uninstall(pair, tmp_path):
    """A ledger that someone other than root could have written says
    nothing we can trust: exit 78, and nothing is removed (the links, our
    programs and the block stay) until the cause is removed."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock("2.8.3")})
    agent.add(pair.server, CLIENT_V4)
    path = os.path.join(agent.prefix, "var", "ossec-ar", "firewall-drop.ledger")
    os.chmod(path, 0o666)
    result = agent.uninstall(pair.server)
    assert result.returncode != 0
    assert "ossec-ar: failed: ledger not trusted: " in result.stderr
    assert "(exit 78)" in result.stderr
    assert os.readlink(os.path.join(agent.bin, "firewall-drop.sh")) == \
        "ossec-ar-firewall-drop"
    assert not pair.connects(SERVER_V4)
    os.chmod(path, 0o600)
    assert lines(agent.uninstall(pair.server))[0].startswith("firewall-drop: 1 handed over")
    assert not pair.connects(SERVER_V4)


def test_an_install_where_nothing_of_ours_ran_touches_no_firewall(pair, tmp_path):
    """No state directory: no block of ours can exist, and a table of that
    name is someone else's (another install's): it stays."""
    agent = Agent(tmp_path, {})
    pair.server.check(["nft", "add", "table", "inet", "ossec"])
    assert lines(agent.uninstall(pair.server)) == [
        "firewall-drop: 0 handed over, 0 lifted (no program of ours ran here)",
        "host-deny: 0 handed over, 0 lifted (no program of ours ran here)"]
    assert "table inet ossec" in pair.server.check(["nft", "list", "tables"])
    assert not os.path.exists(os.path.join(agent.prefix, "var", "ossec-ar"))


@pytest.mark.parametrize("backend,version", [("ipset", None), ("iptables", None),
                                             ("route", None), ("iptables", "main-7f06fe0")])
def test_prefix_blocks_are_lifted_and_the_prefixes_layout_removed(pair, tmp_path, backend,
                                                                  version):
    """``ipv6_prefix``'s layouts (the ipset of prefixes and its rules, a
    prefix's rule in our chain, its blackhole route) go with the rest; in
    our chain left to main's script, the prefix's rule goes from it."""
    from test_packets import more_client_addresses
    inside = "2001:db8:1:2::99"
    more_client_addresses(pair.server, pair.client, (inside,))
    agent = Agent(tmp_path, {"firewall-drop.sh": stock(version)} if version else {})
    Install(agent.prefix, backend).configure("[firewall-drop]\nipv6_prefix = 64\n")
    agent.add(pair.server, "2001:db8:1:2::7")
    assert not pair.connects(SERVER_V6, inside)
    assert lines(agent.uninstall(pair.server)) == [
        "firewall-drop: 0 handed over, 1 lifted (1: an IPv6 prefix (ipv6_prefix): no stock "
        "script lifts one)", "host-deny: 0 handed over, 0 lifted"]
    assert_no_layout_of_ours(pair.server, main_chain=bool(version))
    if version:
        assert pair.server.rules("ip6tables") == ["-N OSSEC", "-A INPUT -j OSSEC",
                                                  "-A FORWARD -j OSSEC"]
    assert pair.connects(SERVER_V6, inside)
    assert agent.in_force() == {}


# host-deny

def in_etc(ns, etc, argv, **kwargs):
    """*argv* in the namespace with *etc* (a copy) bound over /etc."""
    return ns.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc && exec "$@"', etc] + list(argv), **kwargs)


@pytest.mark.parametrize("version", ["none", "2.8.3", "3.7.0"])
def test_hosts_deny_lines_are_the_stock_form(pair, tmp_path, etc_copy, version):
    scripts = {} if version == "none" else {"host-deny.sh": stock(version, "host-deny.sh")}
    agent = Agent(tmp_path, scripts, commands=("host-deny.sh",))
    deny = os.path.join(etc_copy, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# the administrator's\nALL:198.51.100.1\n")
    # The administrator's line, met by an add: not ours, never handed over nor lifted.
    for address in (CLIENT_V4, CLIENT_V6, "198.51.100.1"):
        result = in_etc(pair.server, etc_copy, [os.path.join(agent.bin, "host-deny.sh"),
                                                "add", "-", address])
        assert result.returncode == 0
    ours = "ALL:%s\nALL:[%s]\n" % (CLIENT_V4, CLIENT_V6)
    with open(deny) as f:
        assert f.read() == "# the administrator's\nALL:198.51.100.1\n" + ours
    result = in_etc(pair.server, etc_copy, ["make", "-s", "-C", ROOT, "uninstall",
                                            "DESTDIR=" + agent.destdir, "PREFIX=/var/ossec"])
    said = {"none": "host-deny: 0 handed over, 2 lifted (2: no stock host-deny.sh will be "
                    "restored)",
            "2.8.3": "host-deny: 1 handed over (1 to host-deny.sh (OSSEC 2.8.3): its "
                     "hosts.deny line, as it is), 1 lifted (1: host-deny.sh (OSSEC 2.8.3) "
                     "cannot lift an IPv6 address)",
            "3.7.0": "host-deny: 2 handed over (2 to host-deny.sh (OSSEC 3.7.0 to main): its "
                     "hosts.deny line, as it is), 0 lifted"}[version]
    assert lines(result) == ["firewall-drop: 0 handed over, 0 lifted", said]
    left = {"none": "", "2.8.3": "ALL:%s\n" % CLIENT_V4, "3.7.0": ours}[version]
    with open(deny) as f:
        assert f.read() == "# the administrator's\nALL:198.51.100.1\n" + left
    assert agent.in_force("host-deny") == {}
    if version == "3.7.0":
        for address in (CLIENT_V4, CLIENT_V6):
            result = in_etc(pair.server, etc_copy, [os.path.join(agent.bin, "host-deny.sh"),
                                                    "delete", "-", address],
                            cwd=agent.scratch, env=dict(os.environ, PATH=PATH))
            assert result.returncode == 0
        with open(deny) as f:
            assert f.read() == "# the administrator's\nALL:198.51.100.1\n"


# The decisions, without a firewall

@pytest.mark.parametrize("version", VERSIONS)
def test_each_vendored_stock_script_is_recognised(tmp_path, version):
    for name in ("firewall-drop.sh", "host-deny.sh"):
        path = str(tmp_path / name)
        with open(path, "wb") as f:
            f.write(stock(version, name))
        form, which = handover.recognise(path)
        if name == "firewall-drop.sh":
            assert (form.label, which) == (FORM[version], WHICH[version])
        else:
            assert which == ("OSSEC 2.8.3" if version == "2.8.3" else "OSSEC 3.7.0 to main")
            assert form.versions == ((4,) if version == "2.8.3" else (4, 6))


def test_recognised_by_code_not_by_comments_or_indentation(tmp_path):
    original = stock("3.7.0")
    path = str(tmp_path / "script")
    for text, known in ((original, True),
                        (original.replace(b"# Author: cgzones", b"# patched by a distro"),
                         True),
                        (original.replace(b"\n   ", b"\n\t").replace(b"\n", b"\r\n"), True),
                        (original + b"\n# one more comment\n\n", True),
                        (original.replace(b"sleep $COUNT;", b"sleep 1;"), False),
                        (from_tarball("nftables-drop.sh"), False), (b"", False)):
        with open(path, "wb") as f:
            f.write(text)
        assert (handover.recognise(path) is not None) == known
    os.unlink(path)
    os.symlink("ossec-ar-firewall-drop", path)          # not a regular script
    assert handover.recognise(path) is None


def test_the_script_to_be_restored_is_what_stocknames_restore_leaves(tmp_path):
    bindir = str(tmp_path)
    name = os.path.join(bindir, "firewall-drop.sh")
    assert handover.restored(bindir, "firewall-drop.sh") is None
    os.symlink("ossec-ar-firewall-drop", name)
    assert handover.restored(bindir, "firewall-drop.sh") is None
    with open(name + ".stock", "w") as f:
        f.write("kept")
    assert handover.restored(bindir, "firewall-drop.sh") == name + ".stock"
    os.unlink(name)                                     # written over: it stays
    with open(name, "w") as f:
        f.write("new")
    assert handover.restored(bindir, "firewall-drop.sh") == name


def test_names_in_use_come_from_ar_conf(tmp_path):
    prefix = str(tmp_path)
    assert handover.names_in_use(prefix) is None
    os.makedirs(os.path.join(prefix, "etc", "shared"))
    with open(os.path.join(prefix, "etc", "shared", "ar.conf"), "w") as f:
        f.write("restart-ossec0 - restart-ossec.sh - 0\n"
                "firewall-drop600 - firewall-drop.sh - 600\n"
                "firewall-drop0 - firewall-drop - 0\nbroken line\n")
    assert handover.names_in_use(prefix) == {"restart-ossec.sh", "firewall-drop.sh",
                                             "firewall-drop"}


def test_a_block_goes_to_one_form_only_if_every_name_that_may_delete_it_lifts_it(tmp_path):
    """nftables-drop.sh may have made a block of nftables, and its stock
    script (which adds to an administrator's own set) is not one we know:
    such a block is lifted, while an ipset block, which only firewall-drop.sh
    makes, is handed over.  Under backend = route, firewall-drop.sh makes
    routes too, and its form is not route-null.sh's."""
    from ossec_ar.address import parse
    from ossec_ar.commands import Tools
    from ossec_ar.config import Settings
    bindir = str(tmp_path)
    for name, text in (("firewall-drop.sh", stock("3.7.0")),
                       ("nftables-drop.sh", from_tarball("nftables-drop.sh")),
                       ("route-null.sh", from_tarball("route-null.sh"))):
        with open(os.path.join(bindir, name), "wb") as f:
            f.write(text)
    address = parse("192.0.2.7")

    def decide(held, in_use, backend="auto"):
        decider = handover.Decider("firewall-drop", Settings(backend=backend), "Linux",
                                   Tools(), bindir, in_use)
        return decider.decide(address, held)
    both = {"firewall-drop.sh", "nftables-drop.sh", "route-null.sh"}
    assert decide(["nftables"], both) == (
        None, "the nftables-drop.sh to be restored is not a stock script we know")
    assert decide(["ipset"], both)[0] == (("firewall-drop.sh",), "hooks-when-forwarding")
    assert decide(["nftables"], {"firewall-drop.sh"})[0] == (
        ("firewall-drop.sh",), "hooks-when-forwarding")
    assert decide(["route"], both)[0] == (("route-null.sh",), "reject-route")
    assert decide(["route"], both, backend="route") == (
        None, "the stock scripts that may delete it (firewall-drop.sh, route-null.sh) lift "
              "different forms")
    # Without ar.conf, every name that may have made it counts.
    assert decide(["ipset"], None) == (None, "no stock firewall-drop will be restored")
    decider = handover.Decider("firewall-drop", Settings(), "FreeBSD", Tools(), bindir,
                               {"firewall-drop.sh"})
    assert decider.decide(address, ["pf"]) == (
        None, "the stock scripts' firewall forms are Linux's only")


def test_a_tool_the_form_needs_must_be_here(tmp_path):
    from ossec_ar.address import parse
    from ossec_ar.commands import Tools
    from ossec_ar.config import Settings
    with open(os.path.join(str(tmp_path), "firewall-drop.sh"), "wb") as f:
        f.write(stock("2.8.3"))
    empty = str(tmp_path / "no-tools")
    os.makedirs(empty)
    decider = handover.Decider("firewall-drop", Settings(), "Linux", Tools([empty]),
                               str(tmp_path), {"firewall-drop.sh"})
    assert decider.decide(parse("2001:db8::7"), ["nftables"]) == (
        None, "ip6tables, which firewall-drop.sh needs, is not here")



# firewalld

def test_firewalld_blocks_are_handed_over_and_its_ipsets_of_ours_removed(tmp_path):
    """Under a real firewalld (test_firewalld.py): the block goes to the
    stock form in iptables, our ipsets are emptied in the running firewall
    and gone from its permanent configuration (whose entries would come
    back at its next start), and the stock delete lifts the block."""
    from test_firewalld import Firewalld, make_layout
    firewalld = Firewalld()
    try:
        make_layout(firewalld)
        agent = Agent(tmp_path, {"firewall-drop.sh": stock("2.8.3")})
        assert firewalld.run([os.path.join(agent.bin, "firewall-drop.sh"), "add", "-",
                              CLIENT_V4]).returncode == 0
        assert firewalld.entries("ossec4", permanent=True) == [CLIENT_V4]
        assert not firewalld.connects(SERVER_V4)
        result = firewalld.run(["make", "-s", "-C", ROOT, "uninstall",
                                "DESTDIR=" + agent.destdir, "PREFIX=/var/ossec"])
        assert lines(result)[0] == ("firewall-drop: 1 handed over (1 to firewall-drop.sh "
                                    "(OSSEC 2.8.3): -s IP -j DROP in INPUT and FORWARD), "
                                    "0 lifted")
        assert not firewalld.connects(SERVER_V4)
        assert firewalld.entries("ossec4") == []
        permanent = firewalld.check(["firewall-cmd", "--permanent", "--get-ipsets"]).split()
        assert "ossec4" not in permanent and "ossec6" not in permanent
        assert "ipset:ossec4" not in firewalld.check(["firewall-cmd", "--permanent",
                                                      "--zone=drop", "--list-sources"])
        delete = subprocess.run(firewalld.enter() + [os.path.join(agent.bin,
                                                                  "firewall-drop.sh"),
                                                     "delete", "-", CLIENT_V4],
                                cwd=agent.scratch, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert delete.returncode == 0
        assert firewalld.connects(SERVER_V4)
    finally:
        firewalld.close()


def test_firewalld_permanent_ipsets_go_when_firewalld_is_not_running(nft_netns, tmp_path):
    """firewalld stopped: its permanent configuration would bring our
    ipsets' entries back at its next start, so firewall-offline-cmd takes
    them out (in a copy of /etc/firewalld bound over it)."""
    etc = str(tmp_path / "firewalld")
    shutil.copytree("/etc/firewalld", etc, symlinks=True)

    def offline(*argv):
        return nft_netns.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                              'mount --bind "$0" /etc/firewalld && exec "$@"', etc]
                             + list(argv))
    for name, family in (("ossec4", "inet"), ("ossec6", "inet6")):
        for words in (["--new-ipset=" + name, "--type=hash:ip", "--option=family=" + family],
                      ["--zone=drop", "--add-source=ipset:" + name]):
            assert offline("firewall-offline-cmd", *words).returncode == 0
    assert offline("firewall-offline-cmd", "--ipset=ossec4",
                   "--add-entry=" + CLIENT_V4).returncode == 0
    agent = Agent(tmp_path / "agent", {})
    agent.add(nft_netns, CLIENT_V4)                       # nftables: firewalld is not running
    result = offline("make", "-s", "-C", ROOT, "uninstall", "DESTDIR=" + agent.destdir,
                     "PREFIX=/var/ossec")
    assert lines(result)[0] == ("firewall-drop: 0 handed over, 1 lifted (1: no stock "
                                "firewall-drop.sh will be restored)")
    assert not {"ossec4.xml", "ossec6.xml"} & set(os.listdir(os.path.join(etc, "ipsets")))
    with open(os.path.join(etc, "zones", "drop.xml")) as f:
        assert "ossec" not in f.read()


def test_other_systems_lift_every_firewall_block_with_our_own_delete(install, tmp_path,
                                                                     nft_netns):
    """FreeBSD's pf (the fake of test_platforms.py): no stock firewall form
    there, so each block is lifted through the backend's own delete."""
    from test_platforms import V4, V6, copies, make_host
    host = make_host(install, tmp_path, "freebsd-pf")
    for address in (V4, V6):
        assert host.run("add", "-", address) == 0
        assert copies(host, "freebsd-pf", address) == 1
    result = nft_netns.run([os.path.join(install.prefix, "bin", "ossec-ar"), "hand-over"])
    assert lines(result) == [
        "firewall-drop: 0 handed over, 2 lifted (2: no stock firewall-drop.sh will be "
        "restored)", "host-deny: 0 handed over, 0 lifted"]
    assert [copies(host, "freebsd-pf", address) for address in (V4, V6)] == [0, 0]


def test_removal_then_reinstall_adopts_what_was_handed_over(pair, tmp_path):
    """The package's whole life, through the firewall: install (adopt),
    a block, removal (hand-over to 2.8.3's form, the adoption's mark gone),
    install again (adopt again): the delete execd still owes lifts it."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock("2.8.3")})
    agent.configure("iptables")
    assert agent.ossec_ar(pair.server, "adopt").returncode == 0
    marker = os.path.join(agent.prefix, "var", "ossec-ar", "adopted")
    assert os.path.exists(marker)
    agent.add(pair.server, CLIENT_V4)
    assert not pair.connects(SERVER_V4)
    lines(agent.uninstall(pair.server))
    assert not os.path.exists(marker)
    assert not pair.connects(SERVER_V4)                 # in the stock form now
    result = pair.server.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + agent.destdir,
                              "PREFIX=/var/ossec", "ADOPT=yes"])
    assert (result.returncode, result.stderr) == (0, ""), result
    assert os.path.exists(marker)
    agent.configure("iptables")
    result = pair.server.run([os.path.join(agent.bin, "firewall-drop.sh"), "delete", "-",
                              CLIENT_V4, "1.1", "5712"])
    assert result.returncode == 0
    assert agent.log()[-1].endswith(": delete %s: unblocked: iptables: removed 1 from INPUT,"
                                    " 1 from FORWARD (exit 0)" % CLIENT_V4)
    assert pair.connects(SERVER_V4)


@pytest.mark.parametrize("version", ["4.2.0", "main-7f06fe0"])
def test_a_prefix_block_is_lifted_at_removal_and_strands_nothing(pair, tmp_path, etc_copy,
                                                                 version):
    """No stock script lifts an IPv6 prefix: its blocks (firewall and
    hosts.deny) are lifted whole, the addresses' own /128 blocks handed
    over as ever."""
    agent = Agent(tmp_path, {"firewall-drop.sh": stock(version),
                             "host-deny.sh": stock("3.7.0", "host-deny.sh")},
                  commands=("firewall-drop.sh", "host-deny.sh"))
    config = Install(agent.prefix).config_file
    with open(config, "w") as f:
        f.write("[firewall-drop]\nipv6_prefix = 64\n[host-deny]\nipv6_prefix = 64\n")
    os.chmod(config, 0o640)
    deny = os.path.join(etc_copy, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# the administrator's\n")
    client = "2001:db8:1:2::7"          # the server's own /64 would not be blocked whole
    more_client_addresses(pair.server, pair.client, [client])
    assert pair.connects(SERVER_V6, client)
    for address in ("2001:db8:1:2::99", "2001:db8:1:2::98", CLIENT_V4):
        for name in ("firewall-drop.sh", "host-deny.sh"):
            result = in_etc(pair.server, etc_copy, [os.path.join(agent.bin, name), "add", "-",
                                                    address, "1.1", "5712"])
            assert (result.returncode, result.stderr) == (0, "")
    assert not pair.connects(SERVER_V6, client)     # in 2001:db8:1:2::/64
    assert pair.connects(SERVER_V6)
    with open(deny) as f:
        assert f.read() == "# the administrator's\nALL:[2001:db8:1:2::]/64\nALL:%s\n" % (
            CLIENT_V4)
    result = in_etc(pair.server, etc_copy, ["make", "-s", "-C", ROOT, "uninstall",
                                            "DESTDIR=" + agent.destdir, "PREFIX=/var/ossec"])
    why = "2: an IPv6 prefix (ipv6_prefix): no stock script lifts one"
    assert lines(result) == [
        "firewall-drop: 1 handed over (1 to firewall-drop.sh (%s): %s), 2 lifted (%s)" % (
            WHICH[version], FORM[version], why),
        "host-deny: 1 handed over (1 to host-deny.sh (OSSEC 3.7.0 to main): its hosts.deny"
        " line, as it is), 2 lifted (%s)" % why]
    assert pair.connects(SERVER_V6, client) and not pair.connects(SERVER_V4)
    assert_no_layout_of_ours(pair.server, main_chain=version.startswith("main"))
    assert not with_address(pair.server, "2001:db8:1:2::", "ip6tables")
    with open(deny) as f:
        assert f.read() == "# the administrator's\nALL:%s\n" % CLIENT_V4
    assert agent.in_force() == agent.in_force("host-deny") == {}
