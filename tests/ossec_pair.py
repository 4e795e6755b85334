"""A real OSSEC manager and a real OSSEC agent talking to each other, both
built from the vendored source (tests/ossec.py: TARGET=server and
TARGET=agent, each with its own prefix and scratch install).

Each runs in a network namespace of its own, and the two are joined by a
veth pair: the manager is 192.0.2.1, the agent 192.0.2.2.  remoted needs an
address other than loopback, and an agent that is not connected drops its
events without a word, so :meth:`Pair.start` waits until the manager lists
the agent as Active and the agent holds the manager's ar.conf.

The agent's key is made by the manager's ``manage_agents -a`` and imported
by the agent's ``manage_agents -i``, as an administrator would (the
non-interactive forms, read from src/addagent/ at 7f06fe0).  ossec-ar is
installed into both prefixes by our ``make install``, and our decoders and
rules into the manager's, as the README says.

The manager's addresses also carry, as /32s, the addresses that the tests
block on the agent, so that a block is checked with packets: a TCP connect
from that address to a listener in the agent's namespace.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

import ossec
from conftest import Netns, require_root
from ossec import read, wait_for

MANAGER_IP, AGENT_IP = "192.0.2.1", "192.0.2.2"
AGENT_NAME = "agent1"
PORT = 8022
CONNECT_TIMEOUT = 2
START_SECONDS = 60

# The listener in the agent's namespace, and a connect to it from a given
# source address in the manager's: "open", "dropped" (no answer within the
# timeout, as a DROP rule gives) or what else happened.
LISTENER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("%s", %d))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
""" % (AGENT_IP, PORT)

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], %d), timeout=%d,
                             source_address=(sys.argv[2], 0)).close()
except socket.timeout:
    print("dropped")
except OSError as error:
    print(error)
else:
    print("open")
""" % (PORT, CONNECT_TIMEOUT)

MANAGER_CONF = """<ossec_config>
  <global>
    <email_notification>no</email_notification>
  </global>
  %(rules)s
  <syscheck><disabled>yes</disabled></syscheck>
  <rootcheck><disabled>yes</disabled></rootcheck>
  <remote>
    <connection>secure</connection>
  </remote>
  <alerts>
    <log_alert_level>1</log_alert_level>
    <email_alert_level>16</email_alert_level>
  </alerts>
  <command>
    <name>firewall-drop</name>
    <executable>firewall-drop.sh</executable>
    <expect>srcip</expect>
    <timeout_allowed>yes</timeout_allowed>
  </command>
  <command>
    <name>host-deny</name>
    <executable>host-deny.sh</executable>
    <expect>srcip</expect>
    <timeout_allowed>yes</timeout_allowed>
  </command>
  <command>
    <name>unblock</name>
    <executable>unblock.sh</executable>
    <expect>srcip</expect>
    <timeout_allowed>no</timeout_allowed>
  </command>
  <!-- The stock responses, run on the agent whose event fired 5716. -->
  <active-response>
    <command>firewall-drop</command>
    <location>local</location>
    <rules_id>5716</rules_id>
    <timeout>%(seconds)d</timeout>
  </active-response>
  <active-response>
    <command>host-deny</command>
    <location>local</location>
    <rules_id>5716</rules_id>
    <timeout>%(seconds)d</timeout>
  </active-response>
  <!-- For agent_control -b only: rule 999999 does not exist, so these never
       fire, and analysisd still names them in ar.conf (firewall-drop600,
       firewall-drop0, unblock0: the command's name and the timeout).  execd
       keeps no timeout for firewall-drop0 (os_execd/execd.c), so it runs
       every request for it, the same address again included. -->
  <active-response>
    <command>firewall-drop</command>
    <location>local</location>
    <rules_id>999999</rules_id>
    <timeout>600</timeout>
  </active-response>
  <active-response>
    <command>firewall-drop</command>
    <location>local</location>
    <rules_id>999999</rules_id>
  </active-response>
  <active-response>
    <command>unblock</command>
    <location>local</location>
    <rules_id>999999</rules_id>
  </active-response>
</ossec_config>
"""

AGENT_CONF = """<ossec_config>
  <client>
    %(client)s
  </client>
  <syscheck><disabled>yes</disabled></syscheck>
  <rootcheck><disabled>yes</disabled></rootcheck>
  <!-- OSSEC's default does not read this log: the README's block. -->
  <localfile>
    <log_format>syslog</log_format>
    <location>%(prefix)s/logs/active-responses.log</location>
  </localfile>
  <localfile>
    <log_format>syslog</log_format>
    <location>%(auth)s</location>
  </localfile>
</ossec_config>
"""

# The names analysisd gives the responses above, as the agent's execd must
# find them in its ar.conf before a request can run.
AR_NAMES = ("firewall-drop%d", "host-deny%d", "firewall-drop600", "firewall-drop0",
            "unblock0")


def _json(text):
    """The JSON object at the start of *text*: manage_agents -j prints its
    answer, then (after -a) its farewell line."""
    return json.JSONDecoder().raw_decode(text.lstrip())[0]


class Pair:
    """A manager and an agent under *scratch*, with the stock responses
    timing out after *seconds*.  ``agent_id`` is the id manage_agents gave.
    Call :meth:`start`, then always :meth:`stop`."""

    def __init__(self, scratch, seconds, attackers=()):
        require_root()
        self.scratch = str(scratch)
        self.seconds = seconds
        self.manager = ossec.Ossec(os.path.join(self.scratch, "manager"), "server")
        self.agent = ossec.Ossec(os.path.join(self.scratch, "agent"), "agent")
        self.auth = os.path.join(self.scratch, "auth.log")
        open(self.auth, "w").close()
        self.manager_ns = self.agent_ns = None
        self.listener = None
        self.agent_id = None
        self.attackers = tuple(attackers)
        self._install()

    # set-up

    def _install(self):
        for install in (self.manager, self.agent):
            install.install_ossec_ar()
        self.manager.install_rules()
        stock = read(self.manager.path("etc", "ossec.conf"))
        rules = re.search(r"<rules>.*?</rules>", stock, re.S).group(0)
        with open(self.manager.path("etc", "ossec.conf"), "w") as f:
            f.write(MANAGER_CONF % {"rules": rules, "seconds": self.seconds})
        self.configure_agent()
        # OSSEC's installer makes logs/active-responses.log for TARGET=local
        # and server, not for agent, and our programs make it at their first
        # run.  A file that logcollector cannot open when it starts is given
        # up on at its first check of the files, 64 rounds of 2 s later
        # ("File not available, ignoring it": each <localfile> starts with
        # 360 errors, more than open_attempts; config/localfile-config.c,
        # logcollector.c), and is not read again until logcollector
        # restarts: measured, none of the agent's responses then reached the
        # manager.  So the agent's log is made here, before the agent
        # starts, as the server's installer makes it.
        self._make_log(self.agent)
        # The manager shares all of etc/shared with its agents (remoted's
        # merged.mg), 900 bytes a message with a second's pause every 30
        # (remoted/manager.c): OSSEC's 1.1 MB of rootcheck policies there
        # would take 40 s to reach the agent.  Only ar.conf, which analysisd
        # writes at start, is shared here.
        shared = self.manager.path("etc", "shared")
        for name in os.listdir(shared):
            os.unlink(os.path.join(shared, name))

    @staticmethod
    def _make_log(install):
        """logs/active-responses.log, empty, mode 0660, with the owner and
        group of logs/ (what OSSEC's installer gives it on a server)."""
        logs = os.stat(install.path("logs"))
        path = install.path("logs", "active-responses.log")
        with open(path, "x"):
            pass
        os.chown(path, logs.st_uid, logs.st_gid)
        os.chmod(path, 0o660)

    def _network(self):
        tag = uuid.uuid4().hex[:8]
        self.manager_ns = Netns("oar-m-" + tag)
        self.agent_ns = Netns("oar-a-" + tag)
        for ns in (self.manager_ns, self.agent_ns):
            subprocess.run(["ip", "netns", "add", ns.name], check=True)
            ns.check(["ip", "link", "set", "lo", "up"])
        self.manager_ns.check(["ip", "link", "add", "veth0", "type", "veth", "peer", "name",
                               "veth1", "netns", self.agent_ns.name])
        # The manager's own address first: it is the one its replies to the
        # agent come from, and the agent's socket is connected to it.
        for ns, address, dev in ((self.manager_ns, MANAGER_IP, "veth0"),
                                 (self.agent_ns, AGENT_IP, "veth1")):
            ns.check(["ip", "addr", "add", address + "/24", "dev", dev])
            ns.check(["ip", "link", "set", dev, "up"])
        for address in self.attackers:
            self.manager_ns.check(["ip", "addr", "add", address + "/32", "dev", "veth0"])
        self.listener = subprocess.Popen(
            self.agent_ns.prefix() + [sys.executable, "-c", LISTENER],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, universal_newlines=True)
        assert self.listener.stdout.readline() == "ready\n", "the listener did not start"

    def _add_agent(self):
        """The manager's manage_agents -a, -e; the agent's manage_agents -i."""
        bin_m = self.manager.prefix + "/bin/manage_agents"
        added = self.manager.run([bin_m, "-j", "-a", AGENT_IP, "-n", AGENT_NAME])
        reply = _json(added.stdout)
        assert reply["error"] == 0, (added.stdout, added.stderr)
        self.agent_id = re.match(r"^Agent added with ID (\d+)$", reply["response"]).group(1)
        extracted = self.manager.run([bin_m, "-j", "-e", self.agent_id])
        reply = _json(extracted.stdout)
        assert reply["error"] == 0, (extracted.stdout, extracted.stderr)
        key = reply["response"]
        # -i asks to confirm (OSSEC_ACTION_CONFIRMED answers) and then waits
        # for Enter.
        imported = self.agent.run([self.agent.prefix + "/bin/manage_agents", "-i", key],
                                  env={"OSSEC_ACTION_CONFIRMED": "y"}, input="\n")
        assert imported.returncode == 0, (imported.stdout, imported.stderr)
        manager_key = read(self.manager.path("etc", "client.keys")).splitlines()
        agent_key = read(self.agent.path("etc", "client.keys")).splitlines()
        assert agent_key == manager_key and agent_key[0].startswith(
            "%s %s %s " % (self.agent_id, AGENT_NAME, AGENT_IP)), (manager_key, agent_key)

    def start(self):
        self._network()
        self._add_agent()
        code, out = self.manager.control("start", self.manager_ns)
        assert code == 0, out
        code, out = self.agent.control("start", self.agent_ns)
        assert code == 0, out
        wait_for("connection to the manager", self._connected, START_SECONDS, self.context)
        wait_for("ar.conf on the agent with %s" % ", ".join(self.ar_names()),
                 self._has_ar_conf, START_SECONDS, self.context)
        wait_for("logcollector on the agent reading both files", self._reading,
                 START_SECONDS, self.context)

    def configure_agent(self, client="<server-ip>%s</server-ip>" % MANAGER_IP):
        """Write the agent's ossec.conf, with *client* in its ``<client>``
        (by default the manager's address as ``<server-ip>``).  The agent
        reads it when it starts: see :meth:`restart_agent`."""
        with open(self.agent.path("etc", "ossec.conf"), "w") as f:
            f.write(AGENT_CONF % {"client": client, "prefix": self.agent.prefix,
                                  "auth": self.auth})

    def restart_agent(self, server):
        """``ossec-control restart`` on the agent, then wait as
        :meth:`start` does: the new agentd connected to *server* (as
        ossec.conf names it: agentd logs the name), the manager listing the
        agent as Active, logcollector reading both files again."""
        log = self.agent.path("logs", "ossec.log")
        seen = len(read(log))
        code, out = self.agent.control("restart", self.agent_ns)
        assert code == 0, out
        wait_for("connection to the manager as %s after the restart" % server,
                 lambda: ("Connected to server %s, port 1514." % server in read(log)[seen:]
                          and self.agent_status() == "Active"),
                 START_SECONDS, self.context)
        wait_for("logcollector on the agent reading both files after the restart",
                 lambda: self._reading(read(log)[seen:]), START_SECONDS, self.context)

    def ar_names(self):
        return [name % self.seconds if "%" in name else name for name in AR_NAMES]

    def _connected(self):
        log = read(self.agent.path("logs", "ossec.log"))
        return ("Connected to server %s, port 1514." % MANAGER_IP in log
                and self.agent_status() == "Active")

    def _has_ar_conf(self):
        names = {line.split(" - ", 1)[0]
                 for line in read(self.agent.path("etc", "shared", "ar.conf")).splitlines()}
        return set(self.ar_names()) <= names

    def _reading(self, log=None):
        if log is None:
            log = read(self.agent.path("logs", "ossec.log"))
        return all("Analyzing file: '%s'" % path in log for path in (
            self.agent.prefix + "/logs/active-responses.log", self.auth))

    # the manager's tools

    def agent_control(self, *args):
        """The manager's agent_control, in the manager's namespaces."""
        return self.manager.run([self.manager.prefix + "/bin/agent_control"] + list(args),
                                netns=self.manager_ns, timeout=60)

    def agent_status(self):
        """What ``agent_control -l`` says of our agent: "Active",
        "Disconnected", "Never connected"... (None if not listed)."""
        listing = self.agent_control("-l").stdout
        match = re.search(r"^\s*ID: %s, Name: %s, IP: %s, (.+?)\s*$"
                          % (self.agent_id, AGENT_NAME, re.escape(AGENT_IP)), listing, re.M)
        return match.group(1) if match else None

    # what happens on the agent

    def sshd_failure(self, line):
        with open(self.auth, "a") as f:
            f.write(line + "\n")

    def connects_from(self, address):
        """A TCP connect from *address* (on the manager) to the agent."""
        result = self.manager_ns.run([sys.executable, "-c", CONNECT, AGENT_IP, address],
                                     timeout=CONNECT_TIMEOUT + 30)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def context(self):
        return ("manager's ossec.log:\n%s\nagent's ossec.log:\n%s\n"
                "agent's active-responses.log:\n%s\nmanager's alerts:\n%s"
                % (read(self.manager.path("logs", "ossec.log"))[-3000:],
                   read(self.agent.path("logs", "ossec.log"))[-3000:],
                   read(self.agent.path("logs", "active-responses.log"))[-2000:],
                   ossec.alerts(self.manager)[-10:]))

    # the end

    def stop(self):
        """Stop the agent, then the manager, whatever state they are in;
        daemons still running after ossec-control stop are killed by their
        pid files (checked to be this install's) and named in the returned
        list.  The namespaces go last."""
        left = []
        try:
            try:
                if self.agent_ns is not None:
                    left += ["agent " + name for name in self.agent.stop(self.agent_ns)]
            finally:
                if self.manager_ns is not None:
                    left += ["manager " + name for name in self.manager.stop(self.manager_ns)]
        finally:
            if self.listener is not None:
                self.listener.kill()
                self.listener.wait()
            for ns in (self.agent_ns, self.manager_ns):
                if ns is not None:
                    subprocess.run(["ip", "netns", "delete", ns.name], check=False)
        return left
