"""A host of another system, for firewall-drop.sh: fake firewall tools
(tests/fakes/, each saying which manual page it follows) installed in a
root-owned directory, and ossec-ar's configuration pointed at them and at
the system's name.  That configuration file is the only way to move
either, so the installed program runs exactly as it would there."""

import json
import os
import shutil
import subprocess
import sys

from ossec_ar.backends import REGISTRY

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes")


# The fakes of each firewall whose tools are the same on every system it
# runs on (one fake in tests/fakes/ for each tool its registry line names).
TOOLS = {name: REGISTRY[name].tools[4] for name in ("pf", "ipfw", "npf", "ipfilter",
                                                     "genfilt")}


# What every host of these systems has, whatever its firewall: the tools the
# protections read (the host's own addresses, its default gateways).
PROTECTION_TOOLS = ("ifconfig", "netstat")

# The host's own addresses on em0, a primary and a secondary one of each
# family (initial_state's "ifconfig"), and its default gateways ("route").
OWN = ["198.51.100.10", "198.51.100.11", "2001:db8:ffff::10", "2001:db8:ffff::11"]
GATEWAYS = {4: "198.51.100.1", 6: "2001:db8:ffff::1"}


def tools(firewall, system):
    """The fakes that a host of *system* has for *firewall*: the tools its
    backend's registry line names there (one fake in tests/fakes/ each)."""
    table = REGISTRY[firewall].tools_of(system)
    return sorted(set(table[4] + table[6]))


AIX_DEFAULT_RULE = ["1", "permit", "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", "no", "udp",
                    "eq", "4001", "eq", "4001", "both", "both", "no", "all packets", "0",
                    "all", "0", "", "", "Default Rule"]


def initial_state():
    """Every fake's state on a host where its firewall is loaded and on."""
    return {
        "pf": {"loaded": True, "enabled": True, "anchors": {}, "states": {},
               "rules": ["pass in all flags S/SA keep state",
                         "block drop in quick from <ossec_fwtable> to any"],
               "tables": {"": {"ossec_fwtable": []}}},
        "sysctl": {"net.inet.ip.fw.enable": "1"},
        "ipfw": {"loaded": True, "tables": {}, "rules": []},
        "npf": {"loaded": True, "active": True, "tables": {"ossec_blacklist": []},
                "types": {"ossec_blacklist": "ipset"}},
        "ipf": {"loaded": True, "running": True, "rules4": [], "rules6": []},
        "aix": {"devices": {"ipsec_v4": "Available", "ipsec_v6": "Available"},
                "table": {"4": [list(AIX_DEFAULT_RULE)], "6": []},
                "active": {"4": [list(AIX_DEFAULT_RULE)], "6": []}},
        # The interfaces of ifconfig(8), in its order.
        "ifconfig": {"interfaces": [
            {"name": "em0", "addresses": [
                "198.51.100.10/24", "198.51.100.11/24", "fe80::5054:ff:fe12:3456/64",
                "2001:db8:ffff::10/64", "2001:db8:ffff::11/64"]},
            {"name": "lo0", "loopback": True, "addresses": [
                "127.0.0.1/8", "::1/128", "fe80::1/64"]}]},
        # The routing table of route(8) and netstat(1): the host's own
        # default routes; "system" is set by FakeHost (ifconfig reads it too).
        "route": {"system": None, "routes": [
            {"dst": "0.0.0.0", "plen": 0, "gateway": "198.51.100.1", "flags": "UGS",
             "iface": "em0"},
            {"dst": "::", "plen": 0, "gateway": "2001:db8:ffff::1", "flags": "UGS",
             "iface": "em0"}]},
    }


class FakeHost:
    """A system *name* with the fakes of *firewalls* in *directory*; with
    *install* None, the fakes alone, for a backend loaded in the test."""

    # The program that run() and start() invoke, under that name.
    program = "firewall-drop.sh"

    def __init__(self, install, directory, name, firewalls, settings=""):
        self.install = install
        self.directory = str(directory)
        self.name = name
        os.makedirs(self.directory)
        os.chmod(self.directory, 0o755)
        for tool in sorted(set(PROTECTION_TOOLS).union(
                *(tools(firewall, name) for firewall in firewalls))):
            self._copy(tool)
        shutil.copy(os.path.join(FAKES, "fakelib.py"), self.directory)
        state = initial_state()
        state["route"]["system"] = name
        self.save(state)
        self.configure(settings)

    def configure(self, settings=""):
        if self.install is None:
            return
        self.install.configure("[system]\nname = %s\ntool_dirs = %s\n%s"
                               % (self.name, self.directory, settings))

    def _copy(self, tool):
        with open(os.path.join(FAKES, tool)) as f:
            text = f.read()
        # The fakes run with the test's interpreter, whatever the machine's is.
        text = text.replace("#!/usr/bin/python3", "#!" + sys.executable, 1)
        path = os.path.join(self.directory, tool)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)

    def state(self):
        with open(os.path.join(self.directory, "state.json")) as f:
            return json.load(f)

    def save(self, state):
        with open(os.path.join(self.directory, "state.json"), "w") as f:
            json.dump(state, f)

    def change(self, section, **values):
        state = self.state()
        state[section].update(values)
        self.save(state)

    def fail(self, tool, words, code, message):
        """Make *tool* fail with *code* and *message* when called with *words*."""
        state = self.state()
        state.setdefault("fail", {})[tool] = [words, code, message]
        self.save(state)

    def calls(self):
        """The argv of every fake call so far, and forget them."""
        path = os.path.join(self.directory, "calls.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            calls = [json.loads(line) for line in f]
        os.unlink(path)
        return calls

    def argvs(self):
        return [call["argv"] for call in self.calls()]

    def run(self, *args):
        """Run the installed program (firewall-drop.sh unless the host says
        otherwise); return its exit code."""
        return self.run_program(self.program, *args)

    def run_program(self, name, *args):
        argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
        result = subprocess.run([self.install.program(name)] + argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=120)
        assert (result.stdout, result.stderr) == (b"", b"")
        return result.returncode

    def start(self, *args):
        return subprocess.Popen([self.install.program(self.program)] + list(args),
                                stdin=subprocess.DEVNULL)

    def outcome(self):
        lines = self.install.log_lines()
        assert len(lines) % 2 == 0
        return lines[-1].split("/%s: " % self.program, 1)[1]
