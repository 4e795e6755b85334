"""The firewalld backend against a real firewalld.

firewalld and its own system D-Bus run in a private mount namespace (a
tmpfs on /run, a scratch copy of /etc/firewalld over the real one) inside a
network namespace made for the test, so nothing permanent or running leaks
onto the machine.  Commands enter it with nsenter.  firewalld writes its
pid file in that private /run, which is how the programs know it runs
(systemd, which starts it with --nopid, has its own sign: see
lib/ossec_ar/system.py).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import Netns, require_root
from test_packets import (CLIENT_V4, CLIENT_V6, CONNECT, PORT, SERVER, SERVER_V4, SERVER_V6,
                          joined_namespaces)

START = """
mount -t tmpfs none /run
mkdir -p /run/dbus
mount --bind "$FIREWALLD_ETC" /etc/firewalld
dbus-daemon --system --nofork --nopidfile &
while [ ! -S /run/dbus/system_bus_socket ]; do sleep 0.05; done
firewalld --nofork --log-target file --log-file /run/firewalld.log &
echo $$
wait
"""


class Firewalld:
    def __init__(self):
        require_root()
        tag = uuid.uuid4().hex[:8]
        self.server = Netns("oar-fw-" + tag)
        self.client = Netns("oar-fc-" + tag)
        self.etc = tempfile.mkdtemp(prefix="oar-firewalld-")
        shutil.rmtree(self.etc)
        shutil.copytree("/etc/firewalld", self.etc, symlinks=True)
        joined_namespaces(self.server, self.client)
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.server.name, "unshare", "-m", "--propagation",
             "private", "sh", "-c", START], stdout=subprocess.PIPE,
            env=dict(os.environ, FIREWALLD_ETC=self.etc), start_new_session=True)
        self.pid = int(self.holder.stdout.readline())
        deadline = time.monotonic() + 60
        while self.run(["firewall-cmd", "--state"]).stdout.strip() != "running":
            assert time.monotonic() < deadline, "firewalld did not start"
            time.sleep(0.2)
        self.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])   # the test service
        self.listener = subprocess.Popen(self.enter() + [sys.executable, "-c", SERVER],
                                         stdout=subprocess.PIPE, universal_newlines=True)
        assert self.listener.stdout.readline() == "ready\n"

    def enter(self):
        return ["nsenter", "-t", str(self.pid), "-m", "-n"]

    def run(self, argv):
        return subprocess.run(self.enter() + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)

    def check(self, argv):
        result = self.run(argv)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result.stdout

    def entries(self, name, permanent=False):
        scope = ["--permanent"] if permanent else []
        return sorted(self.check(["firewall-cmd"] + scope + ["--ipset=" + name,
                                                              "--get-entries"]).split())

    def connects(self, address, source=None):
        return self.client.run([sys.executable, "-c", CONNECT, address]
                               + ([source] if source else [])).returncode == 0

    def close(self):
        self.listener.kill()
        self.listener.wait()
        os.killpg(self.holder.pid, signal.SIGKILL)   # sh, dbus-daemon, firewalld
        self.holder.wait()
        for ns in (self.server, self.client):
            subprocess.run(["ip", "netns", "delete", ns.name], check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


@pytest.fixture
def firewalld():
    instance = Firewalld()
    yield instance
    instance.close()


def outcome(install):
    return install.log_lines()[-1].split("/firewall-drop.sh: ", 1)[1]


def test_auto_uses_firewalld_and_blocks_survive_reload(firewalld, install):
    program = install.program()
    make_layout(firewalld)
    for server, client, name in ((SERVER_V4, CLIENT_V4, "ossec4"),
                                 (SERVER_V6, CLIENT_V6, "ossec6")):
        assert firewalld.connects(server)
        assert firewalld.run([program, "add", "-", client, "1.1", "1"]).returncode == 0
        assert outcome(install).startswith("add %s: blocked: firewalld ipset %s in zone drop"
                                           % (client, name))
        assert firewalld.entries(name) == [client]
        assert firewalld.entries(name, permanent=True) == [client]
        assert not firewalld.connects(server)
        firewalld.check(["firewall-cmd", "--reload"])
        firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])  # runtime, lost too
        assert firewalld.entries(name) == [client]                    # kept
        assert not firewalld.connects(server)
        assert firewalld.run([program, "add", "-", client, "1.1", "1"]).returncode == 0
        assert outcome(install) == ("add %s: already blocked: firewalld ipset %s in zone "
                                    "drop (exit 0)" % (client, name))
        assert firewalld.run([program, "delete", "-", client, "1.1", "1"]).returncode == 0
        assert outcome(install).startswith("delete %s: unblocked: " % client)
        assert "firewalld ipset %s" % name in outcome(install)
        assert firewalld.entries(name) == firewalld.entries(name, permanent=True) == []
        assert firewalld.connects(server)
        assert firewalld.run([program, "delete", "-", client, "1.1", "1"]).returncode == 0
        assert outcome(install).startswith("delete %s: was not blocked: " % client)
    # Nothing of ours outside the namespace's own copy of /etc/firewalld.
    assert {"ossec4.xml", "ossec6.xml"} <= set(os.listdir(os.path.join(firewalld.etc,
                                                                       "ipsets")))
    assert not os.path.exists("/etc/firewalld/ipsets/ossec4.xml")


def test_ossec_ar_firewalld_setup_makes_the_layout_with_its_one_reload(firewalld, install):
    import os.path
    admin = os.path.join(install.prefix, "bin", "ossec-ar")
    result = firewalld.run([admin, "firewalld-setup"])
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "firewalld: ipsets ossec4 and ossec6 bound to zone drop; firewalld reloaded\n", "")
    assert firewalld.check(["firewall-cmd", "--zone=drop", "--list-sources"]).split() == [
        "ipset:ossec4", "ipset:ossec6"]
    firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])   # lost by the reload
    assert firewalld.run([install.program(), "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: firewalld ipset ossec4 in zone drop "
                                "(exit 0)")
    assert not firewalld.connects(SERVER_V4)
    assert firewalld.run([admin, "firewalld-setup"]).returncode == 0     # again: no change
    assert firewalld.entries("ossec4") == [CLIENT_V4]


def test_delete_reaches_firewalld_even_when_another_backend_is_chosen(firewalld, install):
    program = install.program()
    make_layout(firewalld)
    assert firewalld.run([program, "add", "-", "192.0.2.9", "1.1", "1"]).returncode == 0
    install.configure("[firewall-drop]\nbackend = iptables\n")
    assert firewalld.run([program, "delete", "-", "192.0.2.9", "1.1", "1"]).returncode == 0
    assert "firewalld ipset ossec4" in outcome(install)
    assert firewalld.entries("ossec4") == firewalld.entries("ossec4", permanent=True) == []


def test_nftables_backend_bans_survive_a_firewalld_reload(firewalld, install):
    # Our own table is not firewalld's to rebuild: for very many bans on a
    # firewalld host, backend = nftables stays flat and holds across reloads.
    install.configure("[firewall-drop]\nbackend = nftables\n")
    program = install.program()
    assert firewalld.connects(SERVER_V4)
    assert firewalld.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert not firewalld.connects(SERVER_V4)
    firewalld.check(["firewall-cmd", "--reload"])
    firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])
    assert "table inet ossec" in firewalld.check(["nft", "list", "tables"])
    assert not firewalld.connects(SERVER_V4)
    assert firewalld.run([program, "delete", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert firewalld.connects(SERVER_V4)


@pytest.mark.parametrize("name", ["firewalld-drop.sh", "firewalld-drop"])
def test_the_firewalld_drop_names_use_firewalld_whatever_the_configuration_says(
        firewalld, install, name):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    program = install.program(name)
    make_layout(firewalld)
    assert firewalld.connects(SERVER_V4)
    assert firewalld.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert install.log_lines()[-1].split("/%s: " % name, 1)[1].startswith(
        "add %s: blocked: firewalld ipset ossec4 in zone drop" % CLIENT_V4)
    assert firewalld.entries("ossec4") == [CLIENT_V4]
    assert not firewalld.connects(SERVER_V4)
    assert firewalld.run([program, "delete", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert firewalld.entries("ossec4") == []
    assert firewalld.connects(SERVER_V4)


# -- An add never reloads firewalld; a drop zone that accepts is refused ----

DIRECT_RULE = ["ipv4", "filter", "INPUT", "0", "-s", "198.51.100.1", "-j", "DROP"]


def make_layout(firewalld):
    """Our layout, made by hand as an administrator would (with the one
    reload that makes permanent ipsets live), then the test service's port."""
    for name, family in (("ossec4", "inet"), ("ossec6", "inet6")):
        firewalld.check(["firewall-cmd", "--permanent", "--new-ipset=" + name,
                         "--type=hash:ip", "--option=family=" + family,
                         "--option=maxelem=1048576"])
        firewalld.check(["firewall-cmd", "--permanent", "--zone=drop",
                         "--add-source=ipset:" + name])
    firewalld.check(["firewall-cmd", "--reload"])
    firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])


def runtime_rules_kept(firewalld):
    ports = firewalld.check(["firewall-cmd", "--list-ports"]).split()
    direct = firewalld.check(["firewall-cmd", "--direct", "--get-all-rules"])
    return "%d/tcp" % PORT in ports and "198.51.100.1" in direct


def test_an_add_never_reloads_firewalld(firewalld, install):
    program = install.program()
    firewalld.check(["firewall-cmd", "--direct", "--add-rule"] + DIRECT_RULE)
    result = firewalld.run([program, "add", "-", CLIENT_V4, "1.1", "1"])
    assert runtime_rules_kept(firewalld)
    assert result.returncode == 75
    assert outcome(install) == (
        "add 192.0.2.7: failed: firewalld has no ipset ossec4 in its running configuration: "
        "make the layout with `ossec-ar firewalld-setup` (it reloads firewalld once; an add "
        "never does) (exit 75)")
    assert firewalld.connects(SERVER_V4)
    make_layout(firewalld)
    firewalld.check(["firewall-cmd", "--direct", "--add-rule"] + DIRECT_RULE)
    assert firewalld.run([program, "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    assert outcome(install) == ("add 192.0.2.7: blocked: firewalld ipset ossec4 in zone drop "
                                "(exit 0)")
    assert runtime_rules_kept(firewalld)
    assert not firewalld.connects(SERVER_V4)
    assert firewalld.entries("ossec4", permanent=True) == [CLIENT_V4]


def test_a_drop_zone_that_accepts_is_refused(firewalld, install):
    program = install.program()
    make_layout(firewalld)
    firewalld.check(["firewall-cmd", "--permanent", "--zone=drop", "--set-target=ACCEPT"])
    firewalld.check(["firewall-cmd", "--reload"])
    firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])
    result = firewalld.run([program, "add", "-", CLIENT_V4, "1.1", "1"])
    assert firewalld.connects(SERVER_V4)
    assert result.returncode == 75
    assert outcome(install) == (
        "add 192.0.2.7: failed: firewalld zone drop has target ACCEPT, so our ipsets bound "
        "to it accept: set it back with `firewall-cmd --permanent --zone=drop "
        "--set-target=DROP` and reload firewalld (exit 75)")
    assert firewalld.entries("ossec4") == []


# -- Is firewalld running? A pid file is only a hint -----------------------

FIREWALLD_CMDLINE = b"/usr/bin/python3\0/usr/sbin/firewalld\0--nofork\0"


@pytest.mark.parametrize("uid,comm,cmdline,running", [
    (0, b"firewalld\n", FIREWALLD_CMDLINE, True),
    (0, b"firewalld\n", b"/usr/sbin/firewalld\0--nofork\0", True),
    (1000, b"firewalld\n", FIREWALLD_CMDLINE, False),         # anyone's process
    (0, b"firewalld\n", b"/usr/bin/sleep\0" b"100\0", False),  # renamed by prctl
    (0, b"sshd\n", b"/usr/sbin/sshd\0", False),                 # the pid reused
    (1000, b"firewalld\n", b"/home/u/firewalld\0", False),
], ids=["root's python script", "root's program", "another uid's", "root's, renamed",
        "another daemon", "another uid's program of that name"])
def test_a_pid_file_counts_only_for_roots_firewalld(fs, uid, comm, cmdline, running):
    from ossec_ar import system
    fs.create_file("/run/firewalld.pid", contents="4242\n")
    fs.create_file("/proc/4242/comm", contents=comm)
    fs.create_file("/proc/4242/cmdline", contents=cmdline)
    os.chown("/proc/4242", uid, uid)
    assert system.daemon_running("firewalld") is running


# -- status, list and restore see a firewalld layout that no longer holds ---

def admin(firewalld, install, *args):
    return firewalld.run([os.path.join(install.prefix, "bin", "ossec-ar")] + list(args))


def ours(text):
    """*text* without the ipset backend's notes (see states)."""
    return "".join(line for line in text.splitlines(True)
                   if not line.startswith("note: ipset: "))


def states(firewalld, install):
    import json
    result = admin(firewalld, install, "list", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    # (firewalld's ipsets are kernel sets of our names here, which the
    # ipset backend notes and leaves uncounted.)
    return {row["address"]: row["state"] for row in data["blocks"]}, [
        note for note in data["notes"] if not note.startswith("ipset: ")]


def test_an_ipset_no_longer_bound_to_the_drop_zone_is_bound_again_by_restore_without_reload(
        firewalld, install):
    make_layout(firewalld)
    assert firewalld.run([install.program(), "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    for scope in ([], ["--permanent"]):
        firewalld.check(["firewall-cmd"] + scope + ["--zone=drop",
                                                    "--remove-source=ipset:ossec4"])
    firewalld.check(["firewall-cmd", "--direct", "--add-rule"] + DIRECT_RULE)
    assert firewalld.connects(SERVER_V4)         # the block no longer holds
    status = admin(firewalld, install, "status").stdout
    assert ("layout firewalld: broken: ipset ossec4 is not a source of zone drop in the "
            "running firewall (`firewall-cmd --zone=drop --add-source=ipset:ossec4`) nor in "
            "the permanent configuration (`firewall-cmd --permanent --zone=drop "
            "--add-source=ipset:ossec4`) (repaired by ossec-ar restore, without a reload)\n"
            ) in status
    assert states(firewalld, install) == ({CLIENT_V4: "unknown"}, [
        "firewalld: ipset ossec4 is not a source of zone drop in the running firewall: its "
        "entries are not counted as blocks"])
    restored = admin(firewalld, install, "restore")
    assert (restored.returncode, ours(restored.stdout)) == (
        0, "nothing to restore\nnote: firewalld: repaired: ipset ossec4 bound to zone drop "
           "in the running firewall and in the permanent configuration\n")
    assert runtime_rules_kept(firewalld)        # no reload
    assert not firewalld.connects(SERVER_V4)
    for scope in ([], ["--permanent"]):
        assert "ipset:ossec4" in firewalld.check(
            ["firewall-cmd"] + scope + ["--zone=drop", "--list-sources"]).split()
    assert states(firewalld, install) == ({CLIENT_V4: "in force"}, [])
    assert "layout firewalld: whole\n" in admin(firewalld, install, "status").stdout
    assert ours(admin(firewalld, install, "restore").stdout) == "nothing to restore\n"


def test_a_drop_zone_that_accepts_is_broken_for_status_and_list_and_left_by_restore(
        firewalld, install):
    make_layout(firewalld)
    assert firewalld.run([install.program(), "add", "-", CLIENT_V4, "1.1", "1"]).returncode == 0
    firewalld.check(["firewall-cmd", "--permanent", "--zone=drop", "--set-target=ACCEPT"])
    firewalld.check(["firewall-cmd", "--reload"])
    firewalld.check(["firewall-cmd", "--add-port=%d/tcp" % PORT])
    firewalld.check(["firewall-cmd", "--direct", "--add-rule"] + DIRECT_RULE)
    assert firewalld.connects(SERVER_V4)         # the block no longer holds
    fix = ("zone drop has target ACCEPT, so our ipsets bound to it accept "
           "(`firewall-cmd --permanent --zone=drop --set-target=DROP`, then reload firewalld)")
    status = admin(firewalld, install, "status").stdout
    assert "layout firewalld: broken: %s (ossec-ar restore leaves it: it needs a reload)\n" % (
        fix) in status
    assert states(firewalld, install) == ({CLIENT_V4: "unknown"}, [
        "firewalld: " + fix + ": its entries are not counted as blocks"])
    restored = admin(firewalld, install, "restore")
    assert (restored.returncode, ours(restored.stdout)) == (
        0, "nothing to restore\nnote: firewalld: left as it is: %s\nnote: firewalld: %s: its "
           "entries are not counted as blocks\n" % (fix, fix))
    assert runtime_rules_kept(firewalld)        # no reload
    assert firewalld.connects(SERVER_V4)
    assert firewalld.check(["firewall-cmd", "--permanent", "--zone=drop",
                            "--get-target"]).strip() == "ACCEPT"


# -- ipv6_prefix: the prefixes' hash:net ipset ------------------------------
#
# The backend alone, handed the Prefix the program hands it (packets:
# test_prefix_packets.py).

NET, INSIDE = "2001:db8:1:2::/64", "2001:db8:1:2::7"


def test_prefixes_go_into_a_hash_net_ipset_that_firewalld_setup_makes_with_ipv6_prefix(
        firewalld, install):
    from conftest import backend_steps
    make_layout(firewalld)                  # made before ipv6_prefix: no such ipset
    assert backend_steps(firewalld.run, "firewalld", "add " + NET, "members 6") == [
        "failed: firewalld has no ipset ossec6-net in its running configuration: make the "
        "layout with `ossec-ar firewalld-setup`, with ipv6_prefix set in the configuration "
        "(it reloads firewalld once; an add never does)", ""]
    assert "layout firewalld: whole\n" in admin(firewalld, install, "status").stdout
    install.configure("[firewall-drop]\nipv6_prefix = 64\n")
    result = admin(firewalld, install, "firewalld-setup")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "firewalld: ipsets ossec4, ossec6 and ossec6-net bound to zone drop; firewalld "
           "reloaded\n", "")
    for scope in ([], ["--permanent"]):
        assert firewalld.check(["firewall-cmd"] + scope + ["--zone=drop", "--list-sources"]
                               ).split() == ["ipset:ossec4", "ipset:ossec6", "ipset:ossec6-net"]
    info = firewalld.check(["firewall-cmd", "--info-ipset=ossec6-net"])
    assert "  type: hash:net\n" in info
    assert "family=inet6" in info and "maxelem=1048576" in info
    where = "firewalld ipset %s in zone drop"
    assert backend_steps(firewalld.run, "firewalld", "add " + NET, "add " + NET,
                         "add " + INSIDE, "members 6", "members 4") == [
        "blocked: " + where % "ossec6-net", "already blocked: " + where % "ossec6-net",
        "blocked: " + where % "ossec6", "%s Address('%s')" % (NET, INSIDE), ""]
    assert firewalld.entries("ossec6-net") == firewalld.entries("ossec6-net", True) == [NET]
    assert firewalld.entries("ossec6") == firewalld.entries("ossec6", True) == [INSIDE]
    assert "layout firewalld: whole\n" in admin(firewalld, install, "status").stdout
    # The prefix's delete leaves the /128, and the /128's the prefix.
    assert backend_steps(firewalld.run, "firewalld", "delete " + NET, "delete " + NET,
                         "members 6", "add " + NET, "delete " + INSIDE, "delete " + INSIDE,
                         "members 6") == [
        "unblocked: firewalld ipset ossec6-net", "was not blocked: firewalld ipset ossec6-net",
        "Address('%s')" % INSIDE, "blocked: " + where % "ossec6-net",
        "unblocked: firewalld ipset ossec6", "was not blocked: firewalld ipset ossec6", NET]
    assert firewalld.entries("ossec6-net") == firewalld.entries("ossec6-net", True) == [NET]
    assert firewalld.entries("ossec6") == firewalld.entries("ossec6", True) == []
