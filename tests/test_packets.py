"""Proof with packets: a TCP connect works, fails after add, works after delete.

Two namespaces made by the test, joined by a veth pair, with documentation
addresses (RFC 5737, RFC 3849) that exist only inside them.
"""

import subprocess
import sys
import uuid

import pytest

from conftest import Netns, require_root

SERVER_V4, CLIENT_V4 = "192.0.2.1", "192.0.2.7"
SERVER_V6, CLIENT_V6 = "2001:db8::1", "2001:db8::7"
PORT = 8022

SERVER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", %d))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
""" % PORT

# argv: the server's address, and optionally the client's source address.
CONNECT = """
import socket, sys
source = (sys.argv[2], 0) if len(sys.argv) > 2 else None
try:
    socket.create_connection((sys.argv[1], %d), timeout=1, source_address=source).close()
except OSError:
    sys.exit(1)
""" % PORT


def joined_namespaces(server, client):
    """Make *server* and *client* (Netns) and join them with a veth pair
    carrying the documentation addresses above."""
    for ns in (server, client):
        subprocess.run(["ip", "netns", "add", ns.name], check=True)
        ns.check(["ip", "link", "set", "lo", "up"])
    server.check(["ip", "link", "add", "veth0", "type", "veth", "peer", "name",
                  "veth1", "netns", client.name])
    for ns, v4, v6, dev in ((server, SERVER_V4, SERVER_V6, "veth0"),
                            (client, CLIENT_V4, CLIENT_V6, "veth1")):
        ns.check(["ip", "addr", "add", v4 + "/24", "dev", dev])
        ns.check(["ip", "addr", "add", v6 + "/64", "dev", dev, "nodad"])
        ns.check(["ip", "link", "set", dev, "up"])


def more_client_addresses(server, client, addresses):
    """Give *client* the IPv6 *addresses* (each with its /64) beside its
    own, and *server* a route to 2001:db8::/32 through the veth pair, so
    that it answers them (test_prefix_packets.py: other prefixes)."""
    for address in addresses:
        client.check(["ip", "addr", "add", address + "/64", "dev", "veth1", "nodad"])
    server.check(["ip", "-6", "route", "add", "2001:db8::/32", "dev", "veth0"])


class Pair:
    def __init__(self, flavour):
        tag = uuid.uuid4().hex[:8]
        self.server = Netns("oar-s-" + tag, flavour)
        self.client = Netns("oar-c-" + tag)
        joined_namespaces(self.server, self.client)
        self.listener = subprocess.Popen(
            ["ip", "netns", "exec", self.server.name, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, universal_newlines=True)
        assert self.listener.stdout.readline() == "ready\n"

    def connects(self, address, source=None):
        """Whether the client's TCP connect to *address* (from *source*, an
        address of the client's) completes."""
        return self.client.run([sys.executable, "-c", CONNECT, address]
                               + ([source] if source else [])).returncode == 0

    def close(self):
        self.listener.kill()
        self.listener.wait()
        for ns in (self.server, self.client):
            subprocess.run(["ip", "netns", "delete", ns.name], check=False)


@pytest.fixture(params=["nft", "legacy"])
def pair(request):
    require_root()
    pair = Pair(request.param)
    yield pair
    pair.close()


@pytest.mark.parametrize("server,client", [(SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)],
                         ids=["ipv4", "ipv6"])
def test_block_and_unblock_with_packets(pair, install, server, client):
    assert pair.connects(server)
    program = install.program()
    assert pair.server.run([program, "add", "-", client, "1.1", "5712"]).returncode == 0
    assert not pair.connects(server)
    assert pair.server.run([program, "delete", "-", client, "1.1", "5712"]).returncode == 0
    assert pair.connects(server)
    assert len(install.log_lines()) == 4


def test_only_the_blocked_address_loses_access(pair, install):
    program = install.program()
    assert pair.server.run([program, "add", "-", "192.0.2.99", "1.1", "1"]).returncode == 0
    assert pair.connects(SERVER_V4)
    assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert not pair.connects(SERVER_V4)
    assert pair.connects(SERVER_V6)          # the client's other address is not blocked


@pytest.mark.parametrize("lifter", ["delete", "unblock.sh", "ossec-ar unblock"])
def test_an_administrators_drop_in_input_outlives_our_block_and_its_lifting(pair, install,
                                                                             lifter):
    """The administrator's own ``-s IP -j DROP`` in INPUT, made after
    install (so not adopted): our add, and every lifting of ours, leave it;
    the packets say so."""
    install.configure("[firewall-drop]\nbackend = iptables\n")
    pair.server.check(["iptables", "-w", "-I", "INPUT", "-s", CLIENT_V4, "-j", "DROP"])
    assert not pair.connects(SERVER_V4)
    program = install.program()
    assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "5712"]).returncode == 0
    if lifter == "delete":
        argv = [program, "delete", "-", CLIENT_V4, "1.1", "5712"]
    elif lifter == "unblock.sh":
        argv = [install.program("unblock.sh"), "add", "-", CLIENT_V4, "1.2", "100610"]
    else:
        argv = [install.prefix + "/bin/ossec-ar", "unblock", CLIENT_V4]
    result = pair.server.run(argv)
    assert (result.returncode, result.stderr) == (0, "")
    assert "unblocked: " in install.log_lines()[-1]          # ours went
    assert "-A INPUT -s %s/32 -j DROP" % CLIENT_V4 in pair.server.rules()
    assert not pair.connects(SERVER_V4)                        # theirs stays
    pair.server.check(["iptables", "-w", "-D", "INPUT", "-s", CLIENT_V4, "-j", "DROP"])
    assert pair.connects(SERVER_V4)


def test_a_stock_block_from_before_install_is_lifted_by_its_delete(pair, install):
    install.configure("[firewall-drop]\nbackend = iptables\n")
    for chain in ("INPUT", "FORWARD"):              # firewall-drop.sh 2.8.3's add
        pair.server.check(["iptables", "-w", "-I", chain, "-s", CLIENT_V4, "-j", "DROP"])
    assert len(install.adopt(pair.server)) == 2
    assert not pair.connects(SERVER_V4)
    program = install.program()
    assert pair.server.run([program, "delete", "-", CLIENT_V4, "1.1", "5712"]).returncode == 0
    assert pair.connects(SERVER_V4)
    assert [rule for rule in pair.server.rules() if CLIENT_V4 in rule] == []
