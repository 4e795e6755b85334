"""The route backend on Linux (route-null.sh, route-null): blackhole routes
made by the real ip in private network namespaces, run through the
installed programs under the stock name route-null.sh.

make install links route-null.sh to our firewall-drop program;
``conftest.stock_name`` checks that it did.
"""

import json
import os
import subprocess

import pytest

from conftest import invocation, stock_name
from test_iptables import HOSTILE, said
from test_packets import CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, Pair

V4, V6 = "192.0.2.7", "2001:db8::7"
PREFIX = {V4: "192.0.2.7/32", V6: "2001:db8::7/128"}
NAME = "route-null.sh"
# What the other layouts of ours say of an address they do not hold: a
# delete the ledger cannot direct asks each of them.

@pytest.fixture
def program(install):
    return stock_name(install.bin, NAME)


def run(netns, program, *args):
    result = netns.run([program] + list(args))
    assert (result.stdout, result.stderr) == ("", "")
    return result.returncode


def outcome(install, name=NAME):
    lines = install.log_lines()
    assert len(lines) % 2 == 0
    return lines[-1].split("/%s: " % name, 1)[1]


def blackholes(netns, version=4):
    """Every blackhole route of the main table, ours and anyone's, as
    "<destination> proto <number>"."""
    out = netns.check(["ip", "-N", "-d", "-%d" % version, "route", "show", "table", "main",
                       "type", "blackhole"])
    found = []
    for line in out.splitlines():
        words = line.split()
        if words:
            # "6 192.0.2.7 proto 239 scope 0 ...": the type's number first
            found.append("%s proto %s" % (words[1], words[words.index("proto") + 1]))
    return sorted(found)


@pytest.mark.parametrize("address", [V4, V6])
def test_add_add_delete_delete(nft_netns, install, program, address):
    version = 6 if ":" in address else 4
    where = "blackhole route %s in table main" % PREFIX[address]
    args = ["-", address, "1326977549.1358625", "5712"]
    assert run(nft_netns, program, "add", *args) == 0
    assert outcome(install) == "add %s: blocked: %s (exit 0)" % (address, where)
    assert blackholes(nft_netns, version) == ["%s proto 239" % address]
    assert run(nft_netns, program, "add", *args) == 0
    assert outcome(install) == "add %s: already blocked: %s (exit 0)" % (address, where)
    assert len(blackholes(nft_netns, version)) == 1
    assert run(nft_netns, program, "delete", *args) == 0
    assert outcome(install) == "delete %s: unblocked: %s (exit 0)" % (address, where)
    assert blackholes(nft_netns, version) == []
    assert run(nft_netns, program, "delete", *args) == 0
    assert outcome(install) == ("delete %s: was not blocked: no block of ours in the ledger"
                                " (exit 0)" % address)
    lines = install.log_lines()
    assert len(lines) == 8
    assert [invocation(line) for line in lines[::2]] == [
        (NAME, action, address) for action in ("add", "add", "delete", "delete")]
    assert all(" %s " % program in line for line in lines[::2])


def test_the_route_is_a_blackhole_of_the_main_table_marked_as_ours(nft_netns, install,
                                                                   program):
    assert run(nft_netns, program, "add", "-", V4, "1.1", "1") == 0
    assert run(nft_netns, program, "add", "-", V6, "1.1", "1") == 0
    # type 6 = RTN_BLACKHOLE, protocol 239 (ours), in table 254 (main), and
    # in no other table
    for version, address in ((4, V4), (6, V6)):
        shown = nft_netns.check(["ip", "-N", "-d", "-%d" % version, "route", "show",
                                 "table", "all"])
        ours = [line.split() for line in shown.splitlines() if " %s " % address in line]
        assert len(ours) == 1, shown
        assert ours[0][:2] == ["6", address]
        assert ours[0][ours[0].index("table") + 1] == "254"
        assert ours[0][ours[0].index("proto") + 1] == "239"


@pytest.fixture
def pair():
    pair = Pair("nft")
    yield pair
    pair.close()


@pytest.mark.parametrize("server,client", [(SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)],
                         ids=["ipv4", "ipv6"])
def test_packets_are_dropped_after_add_and_flow_after_delete(pair, install, program,
                                                             server, client):
    assert pair.connects(server)
    assert pair.server.run([program, "add", "-", client, "1.1", "5712"]).returncode == 0
    assert not pair.connects(server)
    # No firewall was touched: the route alone drops the replies.
    assert "ossec" not in pair.server.check(["nft", "list", "ruleset"])
    assert pair.server.run([program, "delete", "-", client, "1.1", "5712"]).returncode == 0
    assert pair.connects(server)


def test_an_administrators_blackhole_routes_are_never_touched(nft_netns, install,
                                                              program):
    nft_netns.check(["ip", "route", "add", "blackhole", "192.0.2.99/32"])
    nft_netns.check(["ip", "-6", "route", "add", "blackhole", "2001:db8::99/128"])
    nft_netns.check(["ip", "route", "add", "blackhole", "192.0.2.0/24", "proto", "static"])
    theirs = (blackholes(nft_netns, 4), blackholes(nft_netns, 6))
    for address in ("192.0.2.99", "2001:db8::99"):          # never ours: no delete lifts it
        assert run(nft_netns, program, "delete", "-", address, "1.1", "1") == 0
        assert outcome(install).startswith("delete %s: was not blocked: " % address)
    for address in (V4, V6):
        assert run(nft_netns, program, "add", "-", address, "1.1", "1") == 0
        assert run(nft_netns, program, "delete", "-", address, "1.1", "1") == 0
    assert (blackholes(nft_netns, 4), blackholes(nft_netns, 6)) == theirs
    # Their blackhole for the very address blocks it already, and stays theirs.
    nft_netns.check(["ip", "route", "add", "blackhole", "192.0.2.7/32", "proto", "static"])
    assert run(nft_netns, program, "add", "-", V4, "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.7: already blocked: blackhole route "
                                "192.0.2.7/32 in table main, not ours (blackhole 192.0.2.7"
                                " proto static); not ours: its delete will leave it (exit 0)")
    assert run(nft_netns, program, "delete", "-", V4, "1.1", "1") == 0
    assert outcome(install).startswith("delete 192.0.2.7: not ours, left: route: ")
    assert "192.0.2.7 proto 4" in blackholes(nft_netns, 4)
    result = subprocess.run(
        ["ip", "netns", "exec", nft_netns.name, os.path.join(install.prefix, "bin", "ossec-ar"),
         "list", "--json"], stdout=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0
    assert json.loads(result.stdout)["blocks"] == []


def test_a_route_to_the_host_that_is_not_ours_is_exit_75_and_kept(nft_netns, install,
                                                                   program):
    nft_netns.check(["ip", "route", "add", "192.0.2.7/32", "dev", "lo"])
    before = nft_netns.check(["ip", "route", "show", "table", "main"])
    assert run(nft_netns, program, "add", "-", V4, "1.1", "1") == 75
    assert outcome(install) == ("add 192.0.2.7: failed: a route to 192.0.2.7/32 that is not"
                                " ours is in table main (192.0.2.7 dev lo scope link); it was"
                                " left as it is (exit 75)")
    assert run(nft_netns, program, "delete", "-", V4, "1.1", "1") == 0
    assert outcome(install).startswith("delete 192.0.2.7: was not blocked: ")
    assert nft_netns.check(["ip", "route", "show", "table", "main"]) == before


def test_the_stock_scripts_reject_route_is_lifted_by_a_delete(nft_netns, install, program):
    """route-null.sh ran net-tools' `route add IP reject`: the real one here.
    One there at install is adopted, and its delete lifts it; one made
    later is someone else's."""
    stock = ["route", "add", "192.0.2.9", "reject"]
    nft_netns.check(stock)
    stock_where = "the stock route-null.sh's unreachable route 192.0.2.9/32 in table main"
    admin = os.path.join(install.prefix, "bin", "ossec-ar")
    listed = nft_netns.run([admin, "list", "--json"])
    assert [(row["address"], row["state"], row["where"]) for row in
            json.loads(listed.stdout)["blocks"]] == [("192.0.2.9", "unknown", "route")]
    assert install.adopt(nft_netns) == [
        {"program": "firewall-drop", "address": "192.0.2.9", "where": "route:stock"}]
    assert run(nft_netns, program, "delete", "-", "192.0.2.9", "1.1", "1") == 0
    assert outcome(install) == "delete 192.0.2.9: unblocked: %s (exit 0)" % stock_where
    assert "192.0.2.9" not in nft_netns.check(["ip", "route", "show", "table", "all"])
    # Made after install, by hand: an add finds it, not ours; its delete leaves it.
    nft_netns.check(stock)
    assert run(nft_netns, program, "add", "-", "192.0.2.9", "1.1", "1") == 0
    assert outcome(install) == ("add 192.0.2.9: already blocked: %s; not ours: its delete"
                                " will leave it (exit 0)" % stock_where)
    assert run(nft_netns, program, "delete", "-", "192.0.2.9", "1.1", "1") == 0
    assert outcome(install) == ("delete 192.0.2.9: not ours, left: route: blocked by someone"
                                " else (found there by an add, rule 1, alert 1.1), left in"
                                " place (exit 0)")
    assert "192.0.2.9" in nft_netns.check(["ip", "route", "show", "table", "all"])


def test_ossec_ar_lists_the_blocks_as_route(nft_netns, install, program):
    for address in (V4, V6):
        assert run(nft_netns, program, "add", "-", address, "1.1", "5712") == 0
    admin = os.path.join(install.prefix, "bin", "ossec-ar")
    result = nft_netns.run([admin, "list", "--json"])
    assert (result.returncode, result.stderr) == (0, "")
    rows = {row["address"]: (row["state"], row["backend"], row["where"])
            for row in json.loads(result.stdout)["blocks"]}
    assert rows == {V4: ("in force", "route", "route"), V6: ("in force", "route", "route")}
    nft_netns.check(["ip", "route", "flush", "table", "main"])
    result = nft_netns.run([admin, "restore"])
    assert result.returncode == 0
    assert result.stdout == ("%s (firewall-drop): blocked: blackhole route %s in table main\n"
                             % (V4, PREFIX[V4]))
    assert blackholes(nft_netns, 4) == ["%s proto 239" % V4]


def test_backend_route_in_the_configuration_works_the_same(nft_netns, install):
    install.configure("[firewall-drop]\nbackend = route\nroute_proto = 77\n")
    for address in (V4, V6):
        where = "blackhole route %s in table main" % PREFIX[address]
        result = nft_netns.run([install.program(), "add", "-", address, "1.1", "1"])
        assert result.returncode == 0
        assert outcome(install, "firewall-drop.sh") == "add %s: blocked: %s (exit 0)" % (
            address, where)
    assert blackholes(nft_netns, 4) == ["%s proto 77" % V4]
    assert nft_netns.check(["ip", "-N", "-6", "route", "show", "proto", "77"]).split()[1] == V6
    assert "ossec" not in nft_netns.check(["nft", "list", "ruleset"])
    for address in (V4, V6):
        result = nft_netns.run([install.program(), "delete", "-", address, "1.1", "1"])
        assert result.returncode == 0
        assert outcome(install, "firewall-drop.sh").startswith("delete %s: unblocked: "
                                                               "blackhole route " % address)
    assert blackholes(nft_netns, 4) == blackholes(nft_netns, 6) == []
    install.configure("[firewall-drop]\nbackend = route\nroute_proto = 3\n")
    result = nft_netns.run([install.program(), "add", "-", V4, "1.1", "1"])
    assert result.returncode == 78
    assert "route_proto: '3' is not a routing protocol number from 5 to 255" in outcome(
        install, "firewall-drop.sh")


@pytest.fixture
def recorded_ip(tmp_path, install):
    """A tool directory whose ip records its argv and runs the real one;
    the configuration points route-null.sh at it first."""
    tools = tmp_path / "tools"
    tools.mkdir()
    os.chmod(str(tools), 0o755)
    calls = tmp_path / "calls"
    wrapper = tools / "ip"
    wrapper.write_text('#!/bin/sh\necho "$*" >> %s\nexec /usr/sbin/ip "$@"\n' % calls)
    os.chmod(str(wrapper), 0o755)
    install.configure("[system]\ntool_dirs = %s /usr/sbin /sbin /usr/bin /bin\n" % tools)

    def taken():
        if not calls.exists():
            return []
        lines = calls.read_text().splitlines()
        calls.unlink()
        return lines
    return taken


def test_a_delete_is_one_ip_call_or_none(nft_netns, install, program,
                                                          recorded_ip):
    assert run(nft_netns, program, "delete", "-", V4, "1.1", "1") == 0
    assert recorded_ip() == []          # nothing of ours in the ledger: no call at all
    assert run(nft_netns, program, "add", "-", V4, "1.1", "1") == 0
    assert recorded_ip() == ["-4 route add blackhole 192.0.2.7/32 table main proto 239"]
    assert run(nft_netns, program, "delete", "-", V4, "1.1", "1") == 0
    assert recorded_ip() == ["-4 -force -batch -"]


@pytest.fixture
def bare_netns():
    """A namespace whose loopback was never brought up: its kernel has no
    main table yet."""
    import uuid
    from conftest import Netns, delete_netns
    namespace = Netns("oar-" + uuid.uuid4().hex[:10])
    subprocess.run(["ip", "netns", "add", namespace.name], check=True)
    yield namespace
    delete_netns(namespace)


@pytest.mark.parametrize("address", [V4, V6])
def test_a_delete_where_the_main_table_was_never_made_is_not_blocked(bare_netns, install,
                                                                     program, address):
    # ip says "FIB table does not exist": no route of ours there either.
    for name in (program, install.program()):
        assert run(bare_netns, name, "delete", "-", address, "1.1", "1") == 0
        assert install.log_lines()[-1].split(": ", 2)[2].startswith("was not blocked: ")


@pytest.mark.parametrize("args,code,reason", HOSTILE,
                         ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_input_is_refused_before_any_tool_runs(nft_netns, install, program,
                                                       recorded_ip, args, code, reason):
    before = (nft_netns.check(["ip", "route", "show", "table", "all"]),
              nft_netns.check(["ip", "-6", "route", "show", "table", "all"]))
    argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
    assert run(nft_netns, program, *argv) == code
    assert recorded_ip() == []
    assert (nft_netns.check(["ip", "route", "show", "table", "all"]),
            nft_netns.check(["ip", "-6", "route", "show", "table", "all"])) == before
    assert not os.path.exists("/tmp/pwned")
    lines = install.log_lines()
    assert len(lines) == 2 and said(code) in lines[1] and reason in lines[1]
    assert lines[1].endswith("(exit %d)" % code)


# -- ipv6_prefix: a prefix's blackhole route beside the /128 routes ----------
#
# The backend alone, handed the Prefix the program hands it (packets:
# test_prefix_packets.py).

NET, INSIDE = "2001:db8:1:2::/64", "2001:db8:1:2::7"


def test_a_prefix_is_a_blackhole_route_of_its_length_listed_back_as_the_prefix(nft_netns):
    from conftest import backend_steps
    where = "blackhole route %s in table main" % NET
    assert backend_steps(nft_netns.run, "route", "add " + NET, "add " + NET, "add " + INSIDE,
                         "members 6", "members 4") == [
        "blocked: " + where, "already blocked: " + where,
        "blocked: blackhole route %s/128 in table main" % INSIDE,
        "%s Address('%s')" % (NET, INSIDE), ""]
    assert blackholes(nft_netns, 6) == ["%s proto 239" % NET, "%s proto 239" % INSIDE]
    # The prefix's delete leaves the /128, and the /128's the prefix.
    assert backend_steps(nft_netns.run, "route", "delete " + NET, "delete " + NET,
                         "members 6") == [
        "unblocked: " + where, "was not blocked: " + where, "Address('%s')" % INSIDE]
    assert blackholes(nft_netns, 6) == ["%s proto 239" % INSIDE]
    assert backend_steps(nft_netns.run, "route", "add " + NET, "delete " + INSIDE,
                         "delete " + INSIDE, "members 6") == [
        "blocked: " + where,
        "unblocked: blackhole route %s/128 in table main" % INSIDE,
        "was not blocked: blackhole route %s/128 in table main" % INSIDE, NET]
    assert blackholes(nft_netns, 6) == ["%s proto 239" % NET]


def test_a_prefix_delete_leaves_an_administrators_routes(nft_netns):
    from conftest import backend_steps
    for destination in ("2001:db8:1::/48", "2001:db8:1:2::/80", "2001:db8:1:3::/64"):
        nft_netns.check(["ip", "-6", "route", "add", "blackhole", destination,
                         "proto", "static"])
    theirs = blackholes(nft_netns, 6)
    assert backend_steps(nft_netns.run, "route", "add " + NET, "members 6", "delete " + NET,
                         "delete 2001:db8:1:3::/64", "members 6") == [
        "blocked: blackhole route %s in table main" % NET, NET,
        "unblocked: blackhole route %s in table main" % NET,
        "was not blocked: blackhole route 2001:db8:1:3::/64 in table main", ""]
    assert blackholes(nft_netns, 6) == theirs
    # Their blackhole of the very prefix blocks it already, and stays theirs.
    nft_netns.check(["ip", "-6", "route", "add", "blackhole", NET, "proto", "static"])
    assert backend_steps(nft_netns.run, "route", "add " + NET, "delete " + NET) == [
        "already blocked: blackhole route %s in table main, not ours (blackhole %s dev lo "
        "proto static metric 1024 pref medium)" % (NET, NET),
        "was not blocked: blackhole route %s in table main" % NET]
    assert "%s proto 4" % NET in blackholes(nft_netns, 6)
