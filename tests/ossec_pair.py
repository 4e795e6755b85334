"""A real OSSEC manager and real OSSEC agents talking to each other, all
built from the vendored source (tests/ossec.py: TARGET=server and
TARGET=agent, each with its own scratch install).

Each runs in a network namespace of its own.  With one agent the two are
joined by a veth pair; with more, each agent's veth ends in a bridge in
the manager's namespace.  The manager is 192.0.2.1, agent N (from 1) is
192.0.2.(N+1) and named agentN.  remoted needs an address other than
loopback, and an agent that is not connected drops its events without a
word, so :meth:`Pair.start` waits until the manager lists every agent as
Active and each holds the manager's ar.conf.

Each agent's key is made by the manager's ``manage_agents -a`` and
imported by the agent's ``manage_agents -i``, as an administrator would
(the non-interactive forms, read from src/addagent/ at 7f06fe0).  ossec-ar
is installed into every prefix by our ``make install``, and our decoders
and rules into the manager's, as the README says.  ``absent`` more agents
are added to the manager's client.keys and never started (agent_control
lists them as "Never connected").

The manager's addresses also carry, as /32s, the addresses that the tests
block on the agents, so that a block is checked with packets: a TCP
connect from that address to a listener in an agent's namespace.

``pair.agent``, ``agent_ns``, ``agent_id`` and ``auth`` are the first
agent's; ``pair.agents`` holds them all (:class:`Agent`).
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


def agent_ip(index):
    """The address of agent *index* (0 for the first)."""
    return "192.0.2.%d" % (2 + index)


def agent_name(index):
    return "agent%d" % (index + 1)
PORT = 8022
CONNECT_TIMEOUT = 2
START_SECONDS = 60

# The listener in the agent's namespace, and a connect to it from a given
# source address in the manager's: "open", "dropped" (no answer within the
# timeout, as a DROP rule gives) or what else happened.
LISTENER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], %d))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
""" % PORT

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


class Agent:
    """One agent of a :class:`Pair`: its install, name, address, id (from
    manage_agents), network namespace, the auth log its logcollector reads
    and the listener that packets are tested against."""

    def __init__(self, scratch, index, started=True):
        self.index = index
        self.name = agent_name(index)
        self.ip = agent_ip(index)
        self.started = started
        self.install = ossec.Ossec(os.path.join(scratch, "agent" if index == 0 else
                                                "agent%d" % (index + 1)), "agent") \
            if started else None
        self.auth = os.path.join(scratch, "auth.log" if index == 0 else
                                 "auth%d.log" % (index + 1))
        open(self.auth, "w").close()
        self.ns = None
        self.listener = None
        self.id = None


class Pair:
    """A manager and *agents* agents under *scratch*, with the stock
    responses timing out after *seconds*.  ``agent_id`` is the id
    manage_agents gave the first agent.  Call :meth:`start`, then always
    :meth:`stop`."""

    def __init__(self, scratch, seconds, attackers=(), agents=1, absent=0):
        require_root()
        self.scratch = str(scratch)
        self.seconds = seconds
        self.manager = ossec.Ossec(os.path.join(self.scratch, "manager"), "server")
        self.agents = [Agent(self.scratch, index) for index in range(agents)]
        self.absent = [Agent(self.scratch, agents + index, started=False)
                       for index in range(absent)]
        self.manager_ns = None
        self.attackers = tuple(attackers)
        self._install()

    # the first agent, as the one-agent tests know it

    @property
    def agent(self):
        return self.agents[0].install

    @property
    def agent_ns(self):
        return self.agents[0].ns

    @property
    def agent_id(self):
        return self.agents[0].id

    @property
    def auth(self):
        return self.agents[0].auth

    # set-up

    def _install(self):
        for install in [self.manager] + [agent.install for agent in self.agents]:
            install.install_ossec_ar()
        self.manager.install_rules()
        stock = read(self.manager.path("etc", "ossec.conf"))
        rules = re.search(r"<rules>.*?</rules>", stock, re.S).group(0)
        with open(self.manager.path("etc", "ossec.conf"), "w") as f:
            f.write(MANAGER_CONF % {"rules": rules, "seconds": self.seconds})
        for agent in self.agents:
            self.configure_agent(agent=agent)
            # OSSEC's installer makes logs/active-responses.log for
            # TARGET=local and server, not for agent, and our programs make
            # it at their first run.  A file that logcollector cannot open
            # when it starts is given up on at its first check of the
            # files, 64 rounds of 2 s later ("File not available, ignoring
            # it": each <localfile> starts with 360 errors, more than
            # open_attempts; config/localfile-config.c, logcollector.c), and
            # is not read again until logcollector restarts: measured, none
            # of the agent's responses then reached the manager.  So the
            # agent's log is made here, before the agent starts, as the
            # server's installer makes it.
            self._make_log(agent.install)
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
        subprocess.run(["ip", "netns", "add", self.manager_ns.name], check=True)
        self.manager_ns.check(["ip", "link", "set", "lo", "up"])
        # One agent: a veth pair; more: each agent's veth in a bridge.
        bridged = len(self.agents) > 1
        if bridged:
            self.manager_ns.check(["ip", "link", "add", "br0", "type", "bridge"])
        manager_dev = "br0" if bridged else "veth0"
        for agent in self.agents:
            agent.ns = Netns("oar-a%d-%s" % (agent.index, tag))
            subprocess.run(["ip", "netns", "add", agent.ns.name], check=True)
            agent.ns.check(["ip", "link", "set", "lo", "up"])
            near = "veth%d" % (2 * agent.index)
            self.manager_ns.check(["ip", "link", "add", near, "type", "veth", "peer", "name",
                                   "veth1", "netns", agent.ns.name])
            if bridged:
                self.manager_ns.check(["ip", "link", "set", near, "master", "br0"])
                self.manager_ns.check(["ip", "link", "set", near, "up"])
            agent.ns.check(["ip", "addr", "add", agent.ip + "/24", "dev", "veth1"])
            agent.ns.check(["ip", "link", "set", "veth1", "up"])
        # The manager's own address first: it is the one its replies to the
        # agents come from, and their sockets are connected to it.
        self.manager_ns.check(["ip", "addr", "add", MANAGER_IP + "/24", "dev", manager_dev])
        self.manager_ns.check(["ip", "link", "set", manager_dev, "up"])
        for address in self.attackers:
            self.manager_ns.check(["ip", "addr", "add", address + "/32", "dev", manager_dev])
        for agent in self.agents:
            agent.listener = subprocess.Popen(
                agent.ns.prefix() + [sys.executable, "-c", LISTENER, agent.ip],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, universal_newlines=True)
            assert agent.listener.stdout.readline() == "ready\n", "the listener did not start"

    def _add_agent(self, agent):
        """The manager's manage_agents -a, -e; the agent's manage_agents -i
        (an absent agent is only added)."""
        bin_m = self.manager.prefix + "/bin/manage_agents"
        added = self.manager.run([bin_m, "-j", "-a", agent.ip, "-n", agent.name])
        reply = _json(added.stdout)
        assert reply["error"] == 0, (added.stdout, added.stderr)
        agent.id = re.match(r"^Agent added with ID (\d+)$", reply["response"]).group(1)
        if not agent.started:
            return
        extracted = self.manager.run([bin_m, "-j", "-e", agent.id])
        reply = _json(extracted.stdout)
        assert reply["error"] == 0, (extracted.stdout, extracted.stderr)
        key = reply["response"]
        # -i asks to confirm (OSSEC_ACTION_CONFIRMED answers) and then waits
        # for Enter.
        install = agent.install
        imported = install.run([install.prefix + "/bin/manage_agents", "-i", key],
                               env={"OSSEC_ACTION_CONFIRMED": "y"}, input="\n")
        assert imported.returncode == 0, (imported.stdout, imported.stderr)
        manager_key = [line for line in read(self.manager.path("etc", "client.keys"))
                       .splitlines() if line.startswith(agent.id + " ")]
        agent_key = read(install.path("etc", "client.keys")).splitlines()
        assert agent_key == manager_key and agent_key[0].startswith(
            "%s %s %s " % (agent.id, agent.name, agent.ip)), (manager_key, agent_key)

    def start(self):
        self._network()
        for agent in self.agents + self.absent:
            self._add_agent(agent)
        code, out = self.manager.control("start", self.manager_ns)
        assert code == 0, out
        for agent in self.agents:
            code, out = agent.install.control("start", agent.ns)
            assert code == 0, out
        for agent in self.agents:
            wait_for("connection of %s to the manager" % agent.name,
                     lambda: self._connected(agent), START_SECONDS, self.context)
            wait_for("ar.conf on %s with %s" % (agent.name, ", ".join(self.ar_names())),
                     lambda: self._has_ar_conf(agent), START_SECONDS, self.context)
            wait_for("logcollector on %s reading both files" % agent.name,
                     lambda: self._reading(agent=agent), START_SECONDS, self.context)

    def configure_agent(self, client="<server-ip>%s</server-ip>" % MANAGER_IP, agent=None):
        """Write an agent's ossec.conf (the first agent's by default), with
        *client* in its ``<client>`` (by default the manager's address as
        ``<server-ip>``).  The agent reads it when it starts: see
        :meth:`restart_agent`."""
        agent = agent or self.agents[0]
        with open(agent.install.path("etc", "ossec.conf"), "w") as f:
            f.write(AGENT_CONF % {"client": client, "prefix": agent.install.prefix,
                                  "auth": agent.auth})

    def restart_agent(self, server):
        """``ossec-control restart`` on the first agent, then wait as
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

    def _connected(self, agent):
        log = read(agent.install.path("logs", "ossec.log"))
        return ("Connected to server %s, port 1514." % MANAGER_IP in log
                and self.agent_status(agent) == "Active")

    def _has_ar_conf(self, agent):
        names = {line.split(" - ", 1)[0] for line in read(
            agent.install.path("etc", "shared", "ar.conf")).splitlines()}
        return set(self.ar_names()) <= names

    def _reading(self, log=None, agent=None):
        agent = agent or self.agents[0]
        if log is None:
            log = read(agent.install.path("logs", "ossec.log"))
        return all("Analyzing file: '%s'" % path in log for path in (
            agent.install.prefix + "/logs/active-responses.log", agent.auth))

    # the manager's tools

    def agent_control(self, *args):
        """The manager's agent_control, in the manager's namespaces."""
        return self.manager.run([self.manager.prefix + "/bin/agent_control"] + list(args),
                                netns=self.manager_ns, timeout=60)

    def agent_status(self, agent=None):
        """What ``agent_control -l`` says of an agent (the first by
        default): "Active", "Disconnected", "Never connected"... (None if
        not listed)."""
        agent = agent or self.agents[0]
        listing = self.agent_control("-l").stdout
        match = re.search(r"^\s*ID: %s, Name: %s, IP: %s, (.+?)\s*$"
                          % (agent.id, agent.name, re.escape(agent.ip)), listing, re.M)
        return match.group(1) if match else None

    # what happens on the agents

    def sshd_failure(self, line, agent=None):
        with open((agent or self.agents[0]).auth, "a") as f:
            f.write(line + "\n")

    def connects_from(self, address, agent=None):
        """A TCP connect from *address* (on the manager) to an agent (the
        first by default)."""
        agent = agent or self.agents[0]
        result = self.manager_ns.run([sys.executable, "-c", CONNECT, agent.ip, address],
                                     timeout=CONNECT_TIMEOUT + 30)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def context(self):
        text = "manager's ossec.log:\n%s\n" % read(
            self.manager.path("logs", "ossec.log"))[-3000:]
        for agent in self.agents:
            text += ("%s's ossec.log:\n%s\n%s's active-responses.log:\n%s\n" % (
                agent.name, read(agent.install.path("logs", "ossec.log"))[-3000:],
                agent.name, read(agent.install.path("logs", "active-responses.log"))[-2000:]))
        return text + "manager's alerts:\n%s" % ossec.alerts(self.manager)[-10:]

    # the end

    def stop(self):
        """Stop the agents, then the manager, whatever state they are in;
        daemons still running after ossec-control stop are killed by their
        pid files (checked to be this install's) and named in the returned
        list.  The namespaces go last."""
        left = []
        try:
            try:
                for agent in self.agents:
                    if agent.ns is not None:
                        prefix = "agent " if agent.index == 0 else agent.name + " "
                        left += [prefix + name for name in agent.install.stop(agent.ns)]
            finally:
                if self.manager_ns is not None:
                    left += ["manager " + name for name in self.manager.stop(self.manager_ns)]
        finally:
            for agent in self.agents:
                if agent.listener is not None:
                    agent.listener.kill()
                    agent.listener.wait()
            for ns in [agent.ns for agent in self.agents] + [self.manager_ns]:
                if ns is not None:
                    subprocess.run(["ip", "netns", "delete", ns.name], check=False)
        return left
