"""Protections (issue 20): an add never blocks the host's own addresses, its
default gateways, its resolvers or its manager, on real kernel state in
private network namespaces (no fakes on Linux).

The protected host is a namespace with two interfaces, each a veth whose
peer sits in a second namespace (the LAN), secondary addresses, two IPv4
default routes (different interfaces and metrics) and one with two next
hops, and two IPv6 default routes.  Each program runs as execd runs it,
through ``test_attacks.Agent``: a private mount namespace with a copy of
/etc (so resolv.conf and /etc/hosts are the test's) and a real install.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import delete_netns, new_netns
from execd import Execd, alert, from_manager_4
from test_attacks import BOUND, as_attacker, drop_agent, make_agent
from test_packets import CONNECT, SERVER

HOST = {4: ["10.99.0.1", "10.99.0.2", "10.98.0.1"], 6: ["2001:db8:99::1", "2001:db8:98::1"]}
GATEWAYS = {4: ["10.99.0.254", "10.98.0.254", "10.99.0.250", "10.98.0.250"],
            6: ["2001:db8:99::fe", "2001:db8:98::fe"]}
RESOLVERS = {4: ["10.99.0.53"], 6: ["2001:db8:99::53"]}
MANAGERS = {4: ["10.99.0.40"], 6: ["2001:db8:99::40"]}
REASONS = {"self": "one of the host's own addresses (protect = self)",
           "gateways": "the host's default gateway (default via %s) (protect = gateways)",
           "resolvers": "a resolver in /etc/resolv.conf (protect = resolvers)",
           "manager": "the manager this agent reports to (<%s> in %s) (protect = manager)"}
RESOLV_CONF = ("# written by the test\nsearch example.test\n"
               "nameserver 10.99.0.53\nnameserver 2001:db8:99::53\n"
               "nameserver resolver.example\nnameserver fe80::1%v0\n"
               "nameserver 2001:db8:99::153%v0\nnameserver 999.1.2.3\nnameserver\n"
               "options edns0\n")
OSSEC_CONF = ("<ossec_config>\n  <client>\n    <server-ip>10.99.0.40</server-ip>\n"
              "    <!-- <server-ip>10.99.0.41</server-ip> -->\n  </client>\n"
              "  <client><server><address>2001:db8:99::40</address><port>1514</port>"
              "</server></client>\n</ossec_config>\n")
REMOTE = "203.0.113.9"                  # reached through the default gateway
ON_LINK = "10.99.0.7"                   # on the LAN, not a gateway
LAYOUTS = {"nftables": ("firewall-drop.sh", "nftables"), "ipset": ("firewall-drop.sh", "ipset"),
           "iptables": ("firewall-drop.sh", "iptables"), "route": ("route-null.sh", None),
           "hosts.deny": ("host-deny.sh", None)}


class Host:
    """The protected host: an agent (test_attacks) whose namespace has the
    interfaces, routes, resolv.conf and ossec.conf above."""

    def __init__(self, backend):
        self.agent = make_agent("ossec")
        self.agent.install.configure("[firewall-drop]\nbackend = %s\n" % (backend or "auto"))
        self.netns = self.agent.netns
        self.lan = new_netns()
        for index, (mine, theirs, net4, net6) in enumerate(
                (("v0", "v1", "10.99.0", "2001:db8:99"), ("w0", "w1", "10.98.0", "2001:db8:98"))):
            self.netns.check(["ip", "link", "add", mine, "type", "veth", "peer", "name", theirs,
                              "netns", self.lan.name])
            self.netns.check(["ip", "addr", "add", net4 + ".1/24", "dev", mine])
            self.netns.check(["ip", "-6", "addr", "add", net6 + "::1/64", "dev", mine, "nodad"])
            self.netns.check(["ip", "link", "set", mine, "up"])
            self.lan.check(["ip", "addr", "add", net4 + ".254/24", "dev", theirs])
            self.lan.check(["ip", "link", "set", theirs, "up"])
        self.netns.check(["ip", "addr", "add", "10.99.0.2/24", "dev", "v0"])   # secondary
        for route in (["default", "via", "10.99.0.254", "dev", "v0", "metric", "100"],
                      ["default", "via", "10.98.0.254", "dev", "w0", "metric", "200"],
                      ["default", "metric", "300", "nexthop", "via", "10.99.0.250", "dev", "v0",
                       "nexthop", "via", "10.98.0.250", "dev", "w0"]):
            self.netns.check(["ip", "route", "add"] + route)
        self.netns.check(["ip", "-6", "route", "add", "default", "via", "2001:db8:99::fe",
                          "dev", "v0", "metric", "100"])
        self.netns.check(["ip", "-6", "route", "add", "default", "via", "2001:db8:98::fe",
                          "dev", "w0", "metric", "200"])
        self.write_etc("resolv.conf", RESOLV_CONF)
        self.write(os.path.join("etc", "ossec.conf"), OSSEC_CONF)

    def write_etc(self, name, text):
        path = os.path.join(self.agent.etc, name)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(text)

    def write(self, relative, text):
        path = self.agent.path(relative)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(text)

    def run(self, name, action, address, **kwargs):
        return self.agent.run(name, action, "-", address, "1326977549.1358625", "5712",
                              **kwargs)

    def outcome(self):
        return self.agent.log_lines()[-1].split(": ", 1)[1]

    def layouts(self):
        """Everything any layout holds now: nftables, iptables and ip6tables,
        ipsets, blackhole routes, hosts.deny."""
        check = self.netns.check
        deny = os.path.join(self.agent.etc, "hosts.deny")
        with open(deny, "rb") if os.path.exists(deny) else open(os.devnull, "rb") as f:
            text = f.read()
        return {"nft": check(["nft", "list", "ruleset"]),
                "iptables": check(["iptables-save"]) + check(["ip6tables-save"]),
                "ipset": check(["ipset", "list"]),
                "routes": check(["ip", "route", "show", "table", "all", "type", "blackhole"]) +
                check(["ip", "-6", "route", "show", "table", "all", "type", "blackhole"]),
                "hosts.deny": text}

    def close(self):
        delete_netns(self.lan)
        drop_agent(self.agent)


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request):
    name, backend = LAYOUTS[request.param]
    host = Host(backend)
    host.program = name
    host.layout = request.param
    yield host
    host.close()


@pytest.fixture
def host():
    host = Host("nftables")
    host.program = "firewall-drop.sh"
    yield host
    host.close()


def expected_reason(protection, address):
    if protection == "gateways":
        return REASONS["gateways"] % ("w0" if address.startswith(("10.98.", "2001:db8:98:"))
                                      or address == "10.98.0.250" else "v0")
    if protection == "manager":
        tag = "server-ip" if ":" not in address else "address"
        return REASONS["manager"] % (tag, "/var/ossec/etc/ossec.conf")
    return REASONS[protection]


PROTECTED = [(protection, address) for protection, table in
             (("self", HOST), ("gateways", GATEWAYS), ("resolvers", RESOLVERS),
              ("manager", MANAGERS)) for version in (4, 6) for address in table[version]]


def test_every_protected_address_is_refused_in_every_layout_and_still_deleted(layout):
    before = layout.layouts()
    for protection, address in PROTECTED:
        run = layout.run(layout.program, "add", address)
        assert run["code"] == 65, (address, layout.agent.log_lines()[-2:])
        reason = expected_reason(protection, address).replace(
            "/var/ossec", layout.agent.prefix)
        assert layout.outcome() == "add %s: refused: %s (exit 65)" % (address, reason)
    assert layout.layouts() == before
    for _, address in PROTECTED:
        run = layout.run(layout.program, "delete", address)
        assert run["code"] == 0
        assert ("delete %s: was not blocked" % address) in layout.outcome()
    # The protections are what refused: unrelated addresses, on the LAN and
    # remote, are blocked in the same layout.
    for address in (REMOTE, ON_LINK, "2001:db8:99::7"):
        assert layout.run(layout.program, "add", address)["code"] == 0
        assert ("add %s: blocked: " % address) in layout.outcome()
    assert layout.layouts() != before
    for address in (REMOTE, ON_LINK, "2001:db8:99::7"):
        assert layout.run(layout.program, "delete", address)["code"] == 0
        assert ("delete %s: unblocked: " % address) in layout.outcome()


@pytest.mark.parametrize("protection", ["self", "gateways", "resolvers", "manager"])
def test_each_protection_turned_off_alone_lets_its_addresses_be_blocked(host, protection):
    others = " ".join(name for name in ("self", "gateways", "resolvers", "manager")
                      if name != protection)
    host.agent.install.configure("[firewall-drop]\nbackend = nftables\n[allowlist]\n"
                                 "protect = %s\n" % others)
    for name, address in PROTECTED:
        if name != protection or (name == "self"):
            continue
        assert host.run("firewall-drop.sh", "add", address)["code"] == 0, address
        assert host.outcome().startswith("add %s: blocked: nftables" % address)
        assert host.run("firewall-drop.sh", "delete", address)["code"] == 0
        assert host.outcome().startswith("delete %s: unblocked: nftables" % address)
    for name, address in PROTECTED:
        if name != protection:
            assert host.run("firewall-drop.sh", "add", address)["code"] == 65


def test_protect_none_blocks_the_gateway_and_packets_prove_it(host):
    """The refusal is the protection's doing: with ``protect = none`` the
    gateway is blocked (its answers dropped), and lifted again."""
    listener = subprocess.Popen(["ip", "netns", "exec", host.lan.name, sys.executable, "-c",
                                 SERVER], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert listener.stdout.readline() == "ready\n"

        def connects():
            return host.netns.run([sys.executable, "-c", CONNECT, "10.99.0.254"]).returncode == 0

        assert connects()
        assert host.run("firewall-drop.sh", "add", "10.99.0.254")["code"] == 65
        assert connects()
        host.agent.install.configure("[firewall-drop]\nbackend = nftables\n[allowlist]\n"
                                     "protect = none\n")
        assert host.run("firewall-drop.sh", "add", "10.99.0.254")["code"] == 0
        assert host.outcome().startswith("add 10.99.0.254: blocked: nftables")
        assert not connects()
        assert host.run("firewall-drop.sh", "delete", "10.99.0.254")["code"] == 0
        assert connects()
    finally:
        listener.kill()
        listener.wait()


def test_an_address_added_between_two_runs_is_protected_on_the_next(host):
    assert host.run("firewall-drop.sh", "add", "10.99.0.9")["code"] == 0
    assert host.run("firewall-drop.sh", "delete", "10.99.0.9")["code"] == 0
    host.netns.check(["ip", "addr", "add", "10.99.0.9/24", "dev", "v0"])
    assert host.run("firewall-drop.sh", "add", "10.99.0.9")["code"] == 65
    assert "(protect = self)" in host.outcome()
    # IPv6: an address still in duplicate address detection, and one on an
    # interface that is down, have no local route; they are protected too.
    host.netns.check(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:97::1/64", "dev", "d0"])
    host.netns.check(["ip", "-6", "addr", "add", "2001:db8:99::77/64", "dev", "v0"])
    for address in ("2001:db8:97::1", "2001:db8:99::77"):
        assert host.run("firewall-drop.sh", "add", address)["code"] == 65, address
        assert "(protect = self)" in host.outcome()
    # And a gateway that appears later.
    host.netns.check(["ip", "route", "add", "default", "via", "10.99.0.8", "metric", "50"])
    assert host.run("firewall-drop.sh", "add", "10.99.0.8")["code"] == 65
    assert "(protect = gateways)" in host.outcome()


def test_a_gateway_reached_through_itself_onlink_is_protected(host):
    host.netns.check(["ip", "route", "add", "default", "via", "172.31.1.1", "dev", "v0",
                      "onlink", "metric", "10"])
    assert host.run("firewall-drop.sh", "add", "172.31.1.1")["code"] == 65
    assert host.outcome().startswith("add 172.31.1.1: refused: the host's default gateway")


def test_wazuh_request_for_the_gateway_is_refused_and_asks_execd_nothing(host):
    execd = Execd(host.agent.prefix, "4", wrap=host.netns.prefix() + [
        "unshare", "-m", "--propagation", "private", "sh", "-c",
        'mount --bind "$0" /etc && exec "$@"', host.agent.etc])
    run = execd.run(from_manager_4(alert("10.99.0.254")))
    assert (run.code, run.reply, run.queued) == (65, None, None)      # no check_keys
    assert execd.pending == []
    assert host.agent.log_lines()[-1].endswith(
        "add 10.99.0.254: refused: the host's default gateway (default via v0) "
        "(protect = gateways) (rule 5712, alert 1326977549.1358625) (exit 65)")


def test_status_lists_every_protected_address_with_its_reason(host):
    status = host.agent._run([host.agent.path("bin/ossec-ar"), "status", "--json"])
    assert status["code"] == 0
    data = json.loads(status["stdout"])["protected"]
    assert data["protect"] == ["self", "gateways", "resolvers", "manager"]
    listed = {(item["address"], item["protection"]): item["reason"]
              for item in data["addresses"]}
    assert listed[("10.99.0.254", "gateways")] == "gateway (default via v0)"
    assert listed[("10.98.0.254", "gateways")] == "gateway (default via w0)"
    assert listed[("10.99.0.250", "gateways")] == "gateway (default via v0)"
    assert listed[("10.98.0.250", "gateways")] == "gateway (default via w0)"
    assert listed[("2001:db8:98::fe", "gateways")] == "gateway (default via w0)"
    assert listed[("10.99.0.2", "self")] == "own address (on v0)"
    assert listed[("2001:db8:98::1", "self")] == "own address (on w0)"
    assert listed[("10.99.0.53", "resolvers")] == "resolver (/etc/resolv.conf)"
    assert listed[("10.99.0.40", "manager")] == \
        "manager (<server-ip> in %s/etc/ossec.conf)" % host.agent.prefix
    assert ("10.99.0.41", "manager") not in listed          # in a comment
    for protection, address in PROTECTED:
        assert (address, protection) in listed
    text = host.agent._run([host.agent.path("bin/ossec-ar"), "status"])
    lines = text["stdout"].splitlines()
    assert "protected (protect = self gateways resolvers manager): %d addresses" \
        % len(data["addresses"]) in lines
    assert "  %-39s %s" % ("10.99.0.254", "gateway (default via v0)") in lines


def test_status_with_protect_none_says_so(host):
    host.agent.install.configure("[allowlist]\nprotect = none\n")
    status = host.agent._run([host.agent.path("bin/ossec-ar"), "status"])
    assert "protected (protect = none): none; only the allowlist is refused" in \
        status["stdout"].splitlines()


# Bad input to the protections' sources: never a hang, a traceback or a
# failure of an unrelated add.

def added(host, address=REMOTE):
    run = host.run("firewall-drop.sh", "add", address)
    assert run["code"] == 0 and run["seconds"] < BOUND, (run, host.agent.log_lines()[-2:])
    assert host.outcome().startswith("add %s: blocked: " % address)
    assert "Traceback" not in "".join(host.agent.log_lines())
    host.run("firewall-drop.sh", "delete", address)
    return host.agent.log_lines()[-3]


def test_resolv_conf_that_is_a_fifo_is_not_read(host):
    path = os.path.join(host.agent.etc, "resolv.conf")
    os.unlink(path)
    os.mkfifo(path, 0o644)
    line = added(host)
    assert line.endswith("; protection 'resolvers' unavailable: /etc/resolv.conf is not a "
                         "regular file (exit 0)")
    assert host.run("firewall-drop.sh", "add", "10.99.0.53")["code"] == 0


def test_resolv_conf_huge_binary_and_garbage(host):
    # 10 MB: the first 64 KiB are read, so a resolver listed first is
    # protected and one listed after 10 MB of garbage is not.
    garbage = bytes(range(256)) * 40000
    with open(os.path.join(host.agent.etc, "resolv.conf"), "wb") as f:
        f.write(b"nameserver 10.99.0.53\n\x00\xff binary\nnameserver \xc3\x28\n" + garbage
                + b"\nnameserver 10.99.0.54\n")
    assert host.run("firewall-drop.sh", "add", "10.99.0.53")["code"] == 65
    added(host)
    added(host, "10.99.0.54")


def test_resolv_conf_names_scope_ids_and_garbage(host):
    # RESOLV_CONF has a name, a link-local with a scope id, a global one
    # with a scope id, 999.1.2.3 and an empty nameserver line.
    assert host.run("firewall-drop.sh", "add", "2001:db8:99::153")["code"] == 65
    assert "(protect = resolvers)" in host.outcome()
    added(host)


def test_resolv_conf_missing_is_no_protection_and_no_note(host):
    os.unlink(os.path.join(host.agent.etc, "resolv.conf"))
    line = added(host)
    assert "protection" not in line


@pytest.mark.parametrize("case", ["not xml", "50 MB", "entity bomb"])
def test_bad_ossec_conf_never_hangs_nor_fails_an_add(host, case):
    path = host.agent.path("etc/ossec.conf")
    with open(path, "w", encoding="latin-1") as f:
        if case == "not xml":
            f.write("\x00\xff<<<client <client><server-ip>10.99.0.40</server-ip></client>\n"
                    "<client <<<>>> ]]> <client><server-ip>10.99.0.41")
        elif case == "50 MB":
            f.write("<ossec_config><client><server-ip>10.99.0.40</server-ip></client>")
            f.write(" " * (50 << 20))
        else:
            f.write('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
                    + "".join('<!ENTITY lol%d "%s">\n' % (i, ("&lol%d;" % (i - 1) if i else
                                                              "&lol;") * 10)
                              for i in range(10))
                    + ']>\n<ossec_config><client><server-ip>&lol9;</server-ip>'
                    '<server-hostname>&lol9;</server-hostname></client></ossec_config>\n')
    line = added(host)
    if case == "50 MB":
        assert line.endswith("; protection 'manager' unavailable: %s is larger than 1048576 "
                             "bytes (exit 0)" % path)
        assert host.run("firewall-drop.sh", "add", "10.99.0.40")["code"] == 0
    elif case == "not xml":
        # Read as text: the closed <client> names its server, the unclosed
        # one nothing.
        assert host.run("firewall-drop.sh", "add", "10.99.0.40")["code"] == 65
        added(host, "10.99.0.41")
    else:
        assert "protection" not in line


def test_a_wazuh_ossec_conf_planted_as_a_symlink_or_fifo_is_not_followed(host):
    # Wazuh's etc/ is its user's: make this agent's so, and plant as that uid.
    agent = host.agent
    etc = agent.path("etc")
    os.chown(etc, 61234, 61234)
    os.chmod(etc, 0o770)
    conf = agent.path("etc/ossec.conf")
    os.unlink(conf)
    with open(os.path.join(agent.etc, "ossec-ar.conf"), "w") as f:
        f.write("[firewall-drop]\nbackend = nftables\n")
    for plant, words in (("os.symlink('/etc/shadow', sys.argv[1])",
                          "Too many levels of symbolic links"),
                         ("os.mkfifo(sys.argv[1], 0o666)", "is not a regular file")):
        if os.path.lexists(conf):
            os.unlink(conf)
        assert as_attacker("import os, sys; " + plant, conf) == 0
        line = added(host)
        assert "protection 'manager' unavailable: %s" % conf in line and words in line, line


def test_unknown_protection_is_exit_78_with_file_line_and_word(host):
    host.agent.install.configure("[firewall-drop]\nbackend = nftables\n[allowlist]\n"
                                 "protect = self gateway\n")
    run = host.run("firewall-drop.sh", "add", REMOTE)
    assert run["code"] == 78
    assert host.outcome().endswith(
        "add %s: failed: configuration %s line 4: protect: unknown protection 'gateway' "
        "(known: self, gateways, resolvers, manager; or none alone) (exit 78)"
        % (REMOTE, host.agent.install.config_file))
    # A delete is never stopped by the configuration.
    assert host.run("firewall-drop.sh", "delete", "10.99.0.254")["code"] == 0


def test_restore_refuses_a_block_that_became_protected(host):
    assert host.run("firewall-drop.sh", "add", "10.99.0.9")["code"] == 0
    host.netns.check(["nft", "flush", "ruleset"])
    host.netns.check(["ip", "addr", "add", "10.99.0.9/24", "dev", "v0"])
    run = host.agent._run([host.agent.path("bin/ossec-ar"), "restore"])
    assert run["code"] == 65, run
    assert "one of the host's own addresses (protect = self)" in run["stdout"] + run["stderr"]
    assert "10.99.0.9" not in host.netns.check(["nft", "list", "ruleset"])


def test_unblock_is_not_affected(host):
    run = host.agent._run([host.agent.path("bin/ossec-ar"), "unblock", "10.99.0.254"])
    assert run["code"] == 0, run
