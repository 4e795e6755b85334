"""ossec-ar: the administrator's command for the active responses' blocks.

    ossec-ar status                         what is installed, usable, locked;
                                            exit 0 only when all is well
    ossec-ar list                           the blocks, held against the firewall
    ossec-ar unblock IP                     lift a block now
    ossec-ar restore [--since-boot] [--dry-run]
                                            re-apply blocks the firewall lost
    ossec-ar expire --older-than D [--dry-run]
                                            lift blocks older than D
    ossec-ar firewalld-setup                make the firewalld layout (reloads)
    ossec-ar relink                         link the names execd runs to us again
    ossec-ar adopt                          at install: the stock scripts' blocks
                                            there now are recorded as ours (adopt)
    ossec-ar hand-over [--dry-run]          before removal: blocks to the stock
                                            scripts' forms, or lifted (handover)
    ossec-ar metrics [--output FILE]        the blocks and the last failures in
                                            Prometheus' text format (metrics)
    ossec-ar fleet [unblock IP]             on an OSSEC manager: every agent's
                                            blocks, and lifting them (fleet)

Output is for people; ``--json`` (before or after the command) gives the
same data for scripts.  A reader that stops reading (``ossec-ar list |
head -1``) ends the command as it ends coreutils' tools: by SIGPIPE, with
nothing on stderr.  Exit codes are the programs' own (README, "Exit
codes").  Every change goes through the programs' own objects
(``program``), under their locks, and is logged to active-responses.log
like theirs, as ``<prefix>/bin/ossec-ar``.
"""

import argparse
import fcntl
import json
import os
import signal
import stat
import sys
import time

from . import __version__, backends, config, exits, ledger, log, protectlist, safefile
from . import fleet, stocknames
from . import address as addresses
from .address import Address
from .firewall import FirewallDrop
from .hostdeny import HostDeny
from .lock import lock_file
from .program import combined, lift, require_root

PROBE = Address("192.0.2.1", 4, bytes((192, 0, 2, 1)))
PROBES = {4: PROBE, 6: Address("2001:db8::1", 6, bytes((0x20, 1, 0xd, 0xb8)) + bytes(11)
                               + bytes((1,)))}
_ASCII_DIGITS = frozenset("0123456789")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Parser(argparse.ArgumentParser):
    """Usage errors are exit 64, like the programs', not argparse's 2, and
    carry the usage line of the command they are about."""

    def error(self, message):
        stop = exits.usage(message)
        stop.usage_line = self.format_usage().strip()
        raise stop

    def _print_message(self, message, file=None):
        # --help and --version, through the same writer as all our output.
        if message:
            write(message, file or sys.stderr)


class Result:
    def __init__(self, data, text, code=exits.OK):
        self.data, self.text, self.code = data, text, code


class Host:
    """Everything a subcommand needs: the programs, their settings and
    system, and the log."""

    def __init__(self, prefix, argv0, strict=True):
        self.prefix = prefix
        self.argv0 = os.path.abspath(argv0)
        # Lifting must always be possible: unblock and expire go on with the
        # defaults, and their log line says so; status reports the problem.
        self.config_problem = None
        if strict:
            settings = config.load(config.config_path(prefix))
        else:
            settings, self.config_problem = config.load_for_lifting(prefix)
        self.programs = [FirewallDrop(prefix, settings), HostDeny(prefix, settings)]
        self.settings = settings
        self.system = self.programs[0].system
        self.log_file = os.path.join(prefix, "logs", "active-responses.log")

    def log(self, args, action, address, status, detail, code):
        from .cli import outcome_line
        if self.config_problem:
            detail += "; " + config.set_aside(self.config_problem)
        writer = log.Log(self.log_file, "ossec-ar")
        try:
            writer.write(" ".join([log.escape(self.argv0)] + [log.escape(a) for a in args]))
            writer.write(outcome_line(log.escape(self.argv0), action, address, status,
                                      detail, code))
        finally:
            writer.close()


def main(argv, prefix):
    parser = _parser()
    as_json = "--json" in argv[1:]
    try:
        args = parser.parse_args(argv[1:])
        as_json = getattr(args, "json", False)
        require_root()
        host = Host(prefix, argv[0], strict=args.handler not in (
            status, unblock, expire, relink, adopt, hand_over, fleet.command))
        result = args.handler(host, args)
    except exits.Stop as stop:
        _print_error(stop, as_json)
        return stop.code
    except Exception as error:          # a bug: say where, exit 70
        from .cli import internal_error
        _print_error(exits.failed(exits.INTERNAL, internal_error(error)), as_json)
        return exits.INTERNAL
    if as_json:
        write(json.dumps(result.data, indent=2, sort_keys=True) + "\n", sys.stdout)
    elif result.text:
        write(result.text + "\n", sys.stdout)
    return result.code


def write(text, stream):
    """Write *text* to *stream* now.  If its reader has gone (``| head -1``),
    end as coreutils' tools end: killed by SIGPIPE, with nothing on stderr
    (Python would print a traceback, then "Exception ignored" when it
    flushes at exit).  Every change was made and logged before any output,
    so nothing is left half done."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        reader_gone(stream)


def reader_gone(stream):
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stream.fileno())      # the interpreter's last flush finds a file
    os.close(null)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)      # not reached: the signal ends us


def _parser():
    parser = Parser(prog="ossec-ar", description="See, lift, restore and expire the "
                    "blocks of firewall-drop.sh and host-deny.sh.  Run as root.",
                    epilog="Exit codes: 0 done, 64 usage, 65 refused address, 69 no "
                    "usable firewall, 72 a name execd runs is not ours, 74 I/O error (status: "
                    "the log), 75 a lock or a tool failed, 77 not root, 78 broken "
                    "configuration.")
    parser.add_argument("--version", action="version", version="ossec-ar " + __version__)
    # --json before the command or after it: neither sets a default, so
    # that the command's parser never undoes the main one's.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for scripts")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    step = sub.add_parser("status", parents=[common], help="the platform, the backend "
                          "auto would choose, the tools, the configuration, the log, the "
                          "names execd runs, the ledgers and the locks; exits 0 only "
                          "when all is well, else with the first problem's code")
    step.set_defaults(handler=status)
    step = sub.add_parser("list", parents=[common], help="every address blocked, held "
                          "against the firewall and hosts.deny")
    step.set_defaults(handler=list_blocks)
    step = sub.add_parser("unblock", parents=[common], help="lift one address from every "
                          "firewall layout of ours and from hosts.deny; a prefix that "
                          "blocks it, with every address that holds the prefix")
    step.add_argument("address", help="the IPv4 or IPv6 address (with the IPv6 prefix "
                      "that blocks it, and every address that holds that prefix), or the "
                      "prefix itself, as list shows it (2001:db8:1:2::/64)")
    step.set_defaults(handler=unblock)
    step = sub.add_parser("restore", parents=[common], help="re-apply the blocks that the "
                          "ledger holds and the firewall lost")
    step.add_argument("--since-boot", action="store_true", help="only blocks made since "
                      "the system booted (execd's timers for older ones ended with the "
                      "reboot: restoring them would make them permanent)")
    step.add_argument("--dry-run", action="store_true", help="only print them")
    step.set_defaults(handler=restore)
    step = sub.add_parser("expire", parents=[common], help="lift the blocks older than a "
                          "duration (for deletes that never came)")
    step.add_argument("--older-than", required=True, metavar="DURATION", type=_duration,
                      help="seconds, or a number followed by s, m, h, d or w")
    step.add_argument("--dry-run", action="store_true", help="only print them")
    step.set_defaults(handler=expire)
    step = sub.add_parser("firewalld-setup", parents=[common], help="make the firewalld "
                          "ipsets of firewall-drop and bind them to the drop zone; "
                          "reloads firewalld once (an add never does)")
    step.set_defaults(handler=firewalld_setup)
    step = sub.add_parser("relink", parents=[common], help="make every name execd runs "
                          "a link to our program again, keeping a file found there as "
                          "<name>.stock (replacing the older one)")
    step.set_defaults(handler=relink)
    step = sub.add_parser("adopt", parents=[common], help="at install (the packages and "
                          "make install run it, once): record the stock scripts' blocks "
                          "there now as ours, so that their deletes lift them; a block of "
                          "that form made later is someone else's, and is left")
    step.set_defaults(handler=adopt)
    step = sub.add_parser("hand-over", parents=[common], help="before ossec-ar is removed "
                          "(the packages and make uninstall run it): hand each block to the "
                          "form that the restored stock script's delete lifts, or lift it; "
                          "remove our layouts")
    step.add_argument("--dry-run", action="store_true", help="only print what it would do")
    step.set_defaults(handler=hand_over)
    what = ("the blocks in force and lost, the oldest block's age, the ledgers' sizes "
            "and the time of the last failed and refused outcome (read from the last MiB "
            "of active-responses.log at most), in Prometheus' text format, for "
            "node_exporter's textfile collector")
    step = sub.add_parser("metrics", help=what, description=what[0].upper() + what[1:] + ".")
    step.add_argument("--output", metavar="FILE", help="write them to FILE (replaced "
                      "atomically; name it *.prom in the collector's directory) instead "
                      "of standard output")
    step.set_defaults(handler=metrics)
    fleet.register(sub, common)
    return parser


def _duration(text):
    """Seconds in ``600``, ``30s``, ``30m``, ``12h``, ``7d`` or ``2w``; ASCII
    digits only (int() would also read other scripts' digits)."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "")
    if not number or not set(number) <= _ASCII_DIGITS or int(number) == 0:
        raise argparse.ArgumentTypeError("%r is not a duration (say 600, 30s, 30m, 12h, "
                                         "7d)" % text)
    return int(number) * _UNITS[unit]


def _print_error(stop, as_json):
    usage = getattr(stop, "usage_line", None)
    if as_json:
        data = {"error": stop.reason, "exit": stop.code}
        if usage:
            data["usage"] = usage
        write(json.dumps(data, sort_keys=True) + "\n", sys.stdout)
    else:
        write("%sossec-ar: %s: %s (exit %d)\n" % (usage + "\n" if usage else "", stop.status,
                                                  stop.reason, stop.code), sys.stderr)


# status

def status(host, args):
    """What is installed, usable and locked; and a health check: exit 0
    only when nothing below is a problem, else the code of the first one
    (in the order of HEALTH), with every problem listed."""
    data = {"platform": host.system.name, "prefix": host.prefix,
            "backend": {"configured": host.settings.backend, "auto": _auto_choice(host),
                        "usable": _usable(host)},
            "tools": _tools(host), "config": _config_state(host.prefix),
            "log": _log_state(host.log_file), "names": _names_state(host.prefix),
            "layouts": _layouts(host), "ledgers": [], "locks": [],
            "protected": _protected(host)}
    for program in host.programs:
        data["ledgers"].append(_ledger_state(host.prefix, program.name))
        try:
            path = lock_file(host.prefix, program.name)
            state = _lock_state(path)
        except exits.Stop as stop:
            path, state = "-", stop.reason
        data["locks"].append({"program": program.name, "path": path, "state": state})
    auto = data["backend"]["auto"]
    lines = ["platform: %s (prefix %s)" % (host.system.name, host.prefix),
             "backend: %s; auto would choose %s" % (host.settings.backend,
                                                     auto["choice"] or "nothing (exit 69)")]
    lines += ["  %s: %s" % (item["backend"], item["state"]) for item in auto["tried"]]
    usable = data["backend"]["usable"]
    lines.append("an add would use: %s" % ", ".join(
        "%s for IPv%d" % (usable[family]["backend"] or "nothing", version)
        for version, family in ((4, "ipv4"), (6, "ipv6"))))
    lines.append("tools:")
    lines += ["  %-17s %s" % (tool["name"], (tool["path"] + "  " + tool["version"]).strip()
                              if tool["path"] else "not found") for tool in data["tools"]]
    lines += ["layout %s: %s" % (item["backend"], item["state"]) for item in data["layouts"]]
    conf = data["config"]
    lines.append("config: %s: %s" % (conf["path"], conf["state"]))
    lines.append("log: %s (%s)" % (host.log_file, "writable" if data["log"]["writable"]
                                   else "not writable: " + data["log"]["problem"]))
    names = data["names"]
    if names["note"]:
        lines.append("names: %s" % names["note"])
    else:
        lines.append("names: %d of %d are links to our programs (%s)" % (
            len(names["ours"]), len(stocknames.LINKS), names["directory"]))
        lines += ["  %s: %s" % (item["name"], item["is"]) for item in names["not_ours"]]
    for item in data["ledgers"]:
        if item["problem"]:
            lines.append("ledger %s: %s" % (item["program"], item["problem"]))
            continue
        lines.append("ledger %s: %s: %d records, %d skipped (%s)" % (
            item["program"], item["path"], item["records"], item["skipped"],
            _yes(item["writable"], "writable")))
        if item["note"]:
            lines.append("note: " + log.printable(item["note"]))
    for item in data["locks"]:
        lines.append("lock %s: %s" % (item["program"], item["state"]))
    protected = data["protected"]
    lines.append("protected (protect = %s): %s" % (
        " ".join(protected["protect"]) or "none",
        "%d addresses" % len(protected["addresses"]) if protected["protect"] else
        "none; only the allowlist is refused"))
    lines += ["  %-39s %s" % (item["address"], item["reason"])
              for item in protected["addresses"]]
    lines += ["  note: %s" % note for note in protected["notes"]]
    data["problems"] = _problems(data)
    data["exit"] = data["problems"][0]["exit"] if data["problems"] else exits.OK
    if data["problems"]:
        lines.append("health: %d problem%s (exit %d)" % (
            len(data["problems"]), "" if len(data["problems"]) == 1 else "s", data["exit"]))
        lines += ["  %s" % log.printable(item["problem"]) for item in data["problems"]]
    else:
        lines.append("health: ok (exit 0)")
    return Result(data, "\n".join(lines), data["exit"])


def _problems(data):
    """Every problem of a status, in the order whose first gives the exit
    code: the configuration (78), a backend for each family (69), the log
    (74), the names execd runs (72)."""
    problems = []
    conf = data["config"]
    if not conf["parses"]:
        problems.append({"exit": conf["exit"], "problem": conf["state"]})
    usable = data["backend"]["usable"]
    for version, family in ((4, "ipv4"), (6, "ipv6")):
        if usable[family]["backend"] is None:
            problems.append({"exit": exits.UNAVAILABLE, "problem": "no usable firewall for "
                             "IPv%d (%s): every add of such an address exits 69"
                             % (version, "; ".join(usable[family]["tried"]))})
    if data["log"]["problem"]:
        problems.append({"exit": exits.IOERR, "problem": "log %s: %s" % (
            data["log"]["path"], data["log"]["problem"])})
    for item in data["names"]["not_ours"]:
        path = os.path.join(data["names"]["directory"], item["name"])
        if item["is"].endswith(", which is missing"):
            text = "%s is %s: execd finds nothing to run (install ossec-ar again)" % (
                path, item["is"])
        else:
            text = "%s is %s, not our link to %s: execd runs %s (ossec-ar relink mends " \
                "it)" % (path, item["is"], item["program"],
                         "nothing there" if item["is"] == "absent" else "it, not ours")
        problems.append({"exit": exits.BYPASSED, "problem": text})
    return problems


def _usable(host):
    """For each family, the backend an add would use now (the configured
    one, or ``auto``'s first usable choice), or None, with why each one
    tried is not usable; read-only checks, as ``_auto_choice``."""
    program = host.programs[0]
    tools = host.system.tools
    try:
        names = program.choices()
    except exits.Stop as stop:
        return {family: {"backend": None, "tried": [stop.reason]}
                for family in ("ipv4", "ipv6")}
    found = {}
    for version, family in ((4, "ipv4"), (6, "ipv6")):
        tried, choice = [], None
        for name in names:
            entry = backends.REGISTRY[name]
            if host.system.name not in entry.systems:
                reason = "not a backend for %s" % host.system.name
            else:
                reason = entry.missing(tools, version, host.system.name)
            if reason is None:
                try:
                    reason = backends.load(name, host.settings, tools,
                                           host.system.name).inactive(PROBES[version])
                except exits.Stop as stop:
                    reason = stop.reason
            if reason is None:
                choice = name
                break
            tried.append("%s: %s" % (name, reason))
        found[family] = {"backend": choice, "tried": tried}
    return found


def _log_state(path):
    """Whether the runs can write their lines to the log: its directory
    there, and the log opened for appending as the programs open it (an
    open changes nothing), or creatable."""
    directory = os.path.dirname(path)
    item = {"path": path, "directory": directory, "writable": False, "problem": None}
    try:
        info = os.stat(directory)
    except OSError as error:
        item["problem"] = "its directory %s: %s; the runs' lines go to syslog" % (
            directory, error.strerror)
        return item
    if not stat.S_ISDIR(info.st_mode):
        item["problem"] = "%s is not a directory; the runs' lines go to syslog" % directory
        return item
    try:
        fd, _, _, _ = safefile.open_shared(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        if not os.access(directory, os.W_OK):
            item["problem"] = "cannot be created in %s; the runs' lines go to syslog" % (
                directory)
    except OSError as error:
        item["problem"] = "%s; the runs' lines go to syslog" % error.strerror
    else:
        os.close(fd)
    item["writable"] = item["problem"] is None
    return item


def _names_state(prefix):
    """Whether every name execd runs (``stocknames``) is our link.  In a
    directory without our programs (the source tree, where the names are
    the programs themselves) they are not checked."""
    directory = os.path.join(prefix, "active-response", "bin")
    item = {"directory": directory, "ours": [], "not_ours": [], "note": None}
    programs = sorted(stocknames.NAMES_OF_PROGRAM)
    if not any(os.path.lexists(os.path.join(directory, name)) for name in programs):
        item["note"] = "not checked: none of our programs (%s) is in %s" % (
            ", ".join(programs), directory)
        return item
    wrong = dict(stocknames.bypassed(directory))
    for name, program in sorted(stocknames.LINKS.items()):
        if name in wrong:
            item["not_ours"].append({"name": name, "is": wrong[name], "program": program})
        else:
            item["ours"].append(name)
    return item


def _protected(host):
    """What the protections cover now (see ``protect``): each address
    once per protection, with the reason an add of it is refused."""
    settings = host.settings
    rows, notes = protectlist.listing(settings.protect, host.prefix, host.system)
    return {"protect": list(settings.protect), "notes": notes,
            "addresses": [{"address": address.text, "protection": name, "reason": reason}
                          for address, name, reason in rows]}


def _auto_choice(host):
    """What ``auto`` would try, and why each is or is not usable (read-only
    checks only: nothing is changed)."""
    tried, choice = [], None
    tools = host.system.tools
    for name in backends.AUTOMATIC.get(host.system.name, ()):
        reason = backends.REGISTRY[name].missing(tools, 4, host.system.name)
        if reason is None:
            reason = backends.load(name, host.settings, tools,
                                   host.system.name).inactive(PROBE)
        tried.append({"backend": name, "state": reason or "usable"})
        if reason is None and choice is None:
            choice = name
    return {"choice": choice, "tried": tried}


def _layouts(host):
    """Each usable backend's word on its layout (those that check one)."""
    found = []
    tools = host.system.tools
    for entry in backends.on(host.system.name):
        if entry.missing(tools, 4, host.system.name) is None:
            state = backends.load(entry.name, host.settings, tools,
                                  host.system.name).layout_state()
            if state:
                found.append({"backend": entry.name, "state": state})
    return found


def _tools(host):
    """Every backend's tools, in the registry's order, with their versions."""
    found, seen = [], set()
    tools = host.system.tools
    for name, entry in backends.REGISTRY.items():
        backend = backends.module(name).Backend
        for tool in entry.every_tool():
            if tool in seen:
                continue
            seen.add(tool)
            path, version = tools.find(tool), ""
            if path and tool in backend.versions:
                result = tools.run([path] + list(backend.versions[tool]), 30)
                first = (result.output.strip().splitlines() or [""])[0]
                version = first if result.ok else "(%s)" % (
                    backend.down or "version unknown: %s" % first)
            found.append({"name": tool, "path": path, "version": version})
    return found


def _config_state(prefix):
    path = config.config_path(prefix)
    if not os.path.lexists(path):
        # Where a file would be trusted: never in Wazuh's etc/.
        if _wazuh_layout(prefix):
            path = config.SYSTEM_FILE
        return {"path": path, "state": "absent (the defaults apply)", "parses": True,
                "exit": exits.OK}
    try:
        config.load(path)
    except exits.Stop as stop:
        return {"path": path, "state": stop.reason, "parses": False, "exit": stop.code}
    return {"path": path, "state": "parses", "parses": True, "exit": exits.OK}


# Programs that only Wazuh installs in <prefix>/bin (4.2 and later; the
# modules daemon since 3.0).
_WAZUH_PROGRAMS = ("wazuh-control", "wazuh-agentd", "wazuh-execd", "wazuh-modulesd")


def _wazuh_layout(prefix):
    """A Wazuh agent's prefix: one of Wazuh's own programs in bin/, or an
    etc/ that others than root can change (Wazuh gives it to its user or
    group; OSSEC's is root's), where no configuration is ever trusted."""
    if any(os.path.lexists(os.path.join(prefix, "bin", name)) for name in _WAZUH_PROGRAMS):
        return True
    etc = os.path.join(prefix, "etc")
    return os.path.isdir(etc) and safefile.unsafe_directories(etc, etc) is not None


def _writable(path):
    if os.path.exists(path):
        return os.access(path, os.W_OK)
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return os.access(parent, os.W_OK)


def _ledger_state(prefix, program):
    item = {"program": program, "path": "-", "records": 0, "skipped": 0,
            "writable": False, "problem": None, "note": None}
    notes = []
    try:
        item["path"] = ledger.ledger_path(prefix, program)
        records, skipped = ledger.read_trusted(prefix, program, notes)
    except exits.Stop as stop:
        item["problem"] = stop.reason
        return item
    item["note"] = "; ".join(notes) or None
    item.update(records=len(records), skipped=len(skipped),
                writable=_writable(item["path"]))
    return item


def _lock_state(path):
    try:
        fd, _, _ = safefile.open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return "free (no lock file yet)"
    except OSError as error:
        return "unusable: %s" % error.strerror
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "free"
    except BlockingIOError:
        return "held by a running program"
    finally:
        os.close(fd)


def _yes(flag, word):
    return word if flag else "not " + word


# list

def list_blocks(host, args):
    rows, notes = _reconcile(host)
    return Result({"blocks": rows, "notes": notes}, _table(rows, notes))


def _reconcile(host):
    """Rows for every block the ledgers hold or the host shows, marked
    "in force", "lost" (ledger only), "unknown" (host only) or "not ours"
    (an add found it blocked by someone else, the ledger says).  A prefix
    the ledger holds is a row of its own (kind "prefix", with its
    holders), followed by the rows of its addresses, whose state is the
    prefix's.  A block dated after now (the clock was ahead when it was
    recorded) is noted: expire takes it for old, or it would outlive every
    expiry."""
    rows, notes = [], []
    try:
        now = ledger.now()
    except exits.Stop as stop:
        now = ledger.LAST_TIME
        notes.append(stop.reason)
    for program in host.programs:
        for block in program.blocks(notes):
            rows.append(_row(program, block))
            if block.holders is None and block.entry is not None and block.entry.time > now:
                notes.append("ledger %s: the block of %s is dated in the future (the "
                             "clock was ahead when it was written, or is behind now): "
                             "expire counts it as old"
                             % (ledger.ledger_path(host.prefix, program.name), block.target))
    return rows, notes


def _row(program, block):
    """A block's row.  "unknown": the host shows it and the ledger does not
    know it, or the ledger holds it where it cannot be checked now (its
    tool is gone), so that it is neither called lost nor restored.  "not
    ours": the ledger says an add found the address already blocked by
    something not ours, whatever the host shows now; it is never lost nor
    restored, and a delete leaves it.  An address whose block is a prefix
    is in force when its prefix is."""
    target, entry, where = block.target, block.entry, block.where
    if entry is not None and entry.op == "found":
        state = "not ours"
    elif entry is None or not where and (entry.backend, target.version) in program.unchecked:
        state = "unknown"
    else:
        state = "in force" if where else "lost"
    prefix = isinstance(target, addresses.Prefix)
    own = entry is not None and not prefix          # a prefix's entry is its first holder's
    return {"program": program.name, "address": target.text, "state": state,
            "kind": "prefix" if prefix else "address",
            "prefix": block.prefix.text if block.prefix else None,
            "holders": [holder.text for holder in block.holders or ()] if prefix else None,
            "backend": (entry.backend if entry else "-"), "where": where or "-",
            "since": entry.time if entry else None,
            "since_text": _when(entry.time) if entry else "-",
            "rule": entry.rule if own else "-", "alert": entry.alert if own else "-"}


def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _table(rows, notes):
    """The rows for a person: every field from the ledger escaped, so that
    none can move the cursor, clear the screen or start a line of its own.
    The addresses whose block is a prefix are indented under it."""
    if not rows:
        lines = ["no blocks"]
    else:
        header = ("ADDRESS", "PROGRAM", "STATE", "BACKEND", "SINCE", "RULE", "ALERT")
        body = [tuple(log.printable(value) for value in (
                    ("  " if r["prefix"] else "") + r["address"], r["program"], r["state"],
                    r["backend"] if r["state"] in ("lost", "not ours") else r["where"],
                    r["since_text"],
                    r["rule"], r["alert"])) for r in rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(7)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
                 for line in [header] + body]
    return "\n".join(lines + ["note: " + log.printable(note) for note in notes])


# unblock, restore, expire

def unblock(host, args):
    target = _unblock_target(args.address)
    results = lift(host.programs, target)
    return _report(host, ["unblock", target.text], "delete", target.text, results)


def _unblock_target(text):
    """The Address, or the IPv6 prefix (``2001:db8:1:2::/64``, as ``list``
    shows it), that unblock was given."""
    if "/" not in text:
        return addresses.parse(text, lifting=True)
    network = addresses.parse_prefix(text)
    if network is None:
        raise exits.refused(exits.REFUSED, "not an address, nor an IPv6 prefix as list shows "
                            "one (its first address and a length below 128, such as "
                            "2001:db8:1:2::/64)")
    return network


def _change(program, change, row):
    """(program, status, detail, code) of one program's change, or None
    when it found nothing to do."""
    try:
        outcome = change(row)
    except exits.Stop as stop:
        return program.name, stop.status, stop.reason, stop.code
    if outcome is None:
        return None
    status, detail = outcome
    return program.name, status, detail, exits.OK


def _report(host, args, action, address, results):
    """Log and summarise the per-program results of one change."""
    status, detail, code = combined(results, exits.UNBLOCKED if action == "delete"
                                    else exits.BLOCKED)
    host.log(args, action, address, status, detail, code)
    data = {"action": action, "address": address, "status": status, "exit": code,
            "programs": [{"program": p, "status": s, "detail": d, "exit": c}
                         for p, s, d, c in results]}
    text = "%s %s: %s\n%s" % (action, address, status, "\n".join(
        "  %s: %s: %s" % (p, s, d) for p, s, d, _ in results))
    if host.config_problem:
        data["note"] = config.set_aside(host.config_problem)
        text += "\nnote: " + log.printable(data["note"])
    return Result(data, text, code)


def restore(host, args):
    # A reload or a hand edit may have left a layout that adds do not check
    # whole (nftables' rules): first that, then what the ledger lost.
    repairs = []
    if not args.dry_run:
        for program in host.programs:
            program.verify(repairs)
    rows, notes = _reconcile(host)
    notes = repairs + notes
    # A lost prefix is restored once, for all its addresses.
    lost = [row for row in rows if row["state"] == "lost" and not row["prefix"]]
    if args.since_boot:
        booted, now, kept = boot_time(), time.time(), []
        made = {(row["program"], row["address"]): row["since"] for row in rows}
        for row in lost:
            # A prefix: if one of its addresses was blocked since the boot.
            times = [made.get((row["program"], holder)) for holder in row["holders"]] \
                if row["kind"] == "prefix" else [row["since"]]
            if any(when is not None and booted <= when <= now for when in times):
                kept.append(row)
        if len(kept) < len(lost):
            notes.append("%d lost blocks made before this boot (or dated in the future) "
                         "left alone: --since-boot" % (len(lost) - len(kept)))
        lost = kept
    return _apply(host, args, "restore", lost, notes, "would restore", "nothing to restore",
                  "restored", _restore_row, False)


def _restore_row(program, row):
    """Block a lost row's address again; a prefix through the first of its
    addresses that the ledger still holds (the others hold it as before)."""
    if row["kind"] != "prefix":
        return program.restore(addresses.parse(row["address"], lifting=True))
    for holder in row["holders"]:
        outcome = program.restore(addresses.parse(holder, lifting=True))
        if outcome is not None:
            return outcome
    return None


def boot_time():
    """When this system booted, in seconds since the epoch (Linux's btime:
    now less the time since boot, so it follows the clock as the ledger's
    times do).  Exit 74 where /proc/stat cannot tell."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return int(line.split()[1])
        problem = "no btime line"
    except (OSError, ValueError, IndexError) as error:
        problem = getattr(error, "strerror", None) or str(error)
    raise exits.failed(exits.IOERR, "--since-boot: cannot tell when the system booted from "
                       "/proc/stat: %s" % problem)


def expire(host, args):
    now = ledger.now()
    before = now - args.older_than
    rows, notes = _reconcile(host)
    old = [row for row in rows if row["kind"] == "address" and row["since"] is not None
           and not before <= row["since"] <= now]
    _prefix_fates(rows, old)
    return _apply(host, args, "expire", old, notes, "would lift",
                  "nothing older than %ds" % args.older_than, exits.UNBLOCKED,
                  lambda program, row: program.expire(
                      addresses.parse(row["address"], lifting=True), before), True,
                  ["--older-than", str(args.older_than)])


def _prefix_fates(rows, old):
    """Say in each of the *old* rows whose block is a prefix what lifting
    it, in their order, does to the prefix: kept for the addresses that
    still hold it (``prefix_kept_for``), or lifted with the last of them
    (``prefix_lifted``), as the deletes reference-count it."""
    holding = {(row["program"], row["address"]): set(row["holders"])
               for row in rows if row["kind"] == "prefix"}
    for row in old:
        holders = holding.get((row["program"], row["prefix"]))
        if holders is None or row["address"] not in holders:
            row["prefix_lifted"] = row["prefix_kept_for"] = None
            continue
        holders.discard(row["address"])
        row["prefix_kept_for"] = len(holders)
        row["prefix_lifted"] = not holders


def _dry_line(row, verb, lifting):
    if row.get("state") == "not ours" and lifting:
        verb = "would leave, not ours:"
    line = "%s %s (%s, since %s)" % (verb, row["address"], row["program"], row["since_text"])
    if row["kind"] == "prefix":
        count = len(row["holders"])
        line += " for %d address%s" % (count, "" if count == 1 else "es")
    elif row.get("prefix_lifted"):
        line += "; prefix %s lifted with it" % row["prefix"]
    elif row.get("prefix_kept_for"):
        count = row["prefix_kept_for"]
        line += "; prefix %s kept for %d other%s" % (row["prefix"], count,
                                                     "" if count == 1 else "s")
    return line


def _apply(host, args, key, rows, notes, verb, nothing, done, change, lifting, logged=()):
    """restore and expire: each candidate decided again by its program,
    under its lock, from what the ledger says then; a dry run only shows."""
    if args.dry_run or not rows:
        lines = [_dry_line(r, verb, lifting) for r in rows] or [nothing]
        return Result({"dry_run": args.dry_run, key: rows, "notes": notes},
                      "\n".join(lines + ["note: " + log.printable(n) for n in notes]))
    programs = {program.name: program for program in host.programs}
    results = []
    for row in rows:
        program = programs[row["program"]]
        outcome = _change(program, lambda row: change(program, row), row)
        if outcome is None:
            outcome = (program.name, "skipped", "no longer in the ledger", exits.OK)
        results.append({"address": row["address"], "program": outcome[0],
                        "status": outcome[1], "detail": outcome[2], "exit": outcome[3]})
    code = max(r["exit"] for r in results)
    summary = "; ".join("%s %s: %s" % (r["address"], r["program"], r["status"])
                        for r in results)
    host.log([key] + list(logged), key, "-", "failed" if code else done, summary, code)
    return Result({"dry_run": False, {"restore": "restored", "expire": "expired"}[key]:
                   results, "notes": notes},
                  "\n".join(["%s (%s): %s: %s" % (r["address"], r["program"], r["status"],
                                                 r["detail"]) for r in results]
                            + ["note: " + log.printable(n) for n in notes]), code)


def firewalld_setup(host, args):
    """The only place that reloads firewalld: a reload loses every
    runtime-only rule, so an add never makes the layout itself."""
    program = host.programs[0]
    reason = program._missing(backends.REGISTRY["firewalld"], 4)
    if reason:
        raise exits.failed(exits.UNAVAILABLE, "firewalld: " + reason)
    prefixes = host.settings.ipv6_prefix < 128      # the prefixes' ipset too
    with program.lock():
        firewalld = program._load("firewalld")
        firewalld.create_layout(prefixes)
    names = [firewalld.set_name(4), firewalld.set_name(6)] + (
        [firewalld.net_set_name()] if prefixes else [])
    text = ("firewalld: ipsets %s and %s bound to zone drop; firewalld reloaded"
            % (", ".join(names[:-1]), names[-1]))
    return Result({"firewalld_setup": text}, text)


def relink(host, args):
    """Every name execd runs made our link again (``stocknames.link``):
    a file found under one, which the agent's installer wrote over our
    link, is kept as ``<name>.stock`` in place of the older one, so that
    removing ossec-ar gives back what the agent last installed."""
    directory = os.path.join(host.prefix, "active-response", "bin")
    missing = [name for name in sorted(stocknames.NAMES_OF_PROGRAM)
               if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        raise exits.failed(exits.BYPASSED, "our programs are not in %s (%s missing): "
                           "nothing to link to; install ossec-ar again"
                           % (directory, ", ".join(missing)))
    done = stocknames.link(directory)
    rows = [{"name": name, "program": stocknames.LINKS[name], "kept": kept,
             "stock": name + stocknames.STOCK_SUFFIX if kept else None}
            for name, kept in done]
    lines = ["%s: %slinked to %s" % (row["name"], "kept %s as %s; " % (row["kept"], row["stock"])
                                     if row["kept"] else "", row["program"]) for row in rows]
    if rows:
        host.log(["relink"], "relink", "-", "relinked", "; ".join(lines), exits.OK)
    return Result({"directory": directory, "relinked": rows},
                  "\n".join(lines) or "every name is already our link (%s)" % directory)
def metrics(host, args):
    """Prometheus' text format (``metrics``): printed, or written to
    --output atomically, and then nothing printed (cron mails what a job
    prints).  Changes nothing, so it writes no log line: run every minute,
    it would fill the log."""
    from . import metrics as exposition
    rows, notes = _reconcile(host)
    sizes = {}
    for program in host.programs:
        try:
            sizes[program.name] = os.lstat(ledger.ledger_path(host.prefix,
                                                              program.name)).st_size
        except FileNotFoundError:
            sizes[program.name] = 0
        except (OSError, exits.Stop) as error:
            notes.append("ledger of %s: %s" % (program.name, getattr(
                error, "strerror", None) or getattr(error, "reason", error)))
    text = exposition.exposition(rows, sizes, exposition.last_outcomes(host.log_file),
                                 ledger.now())
    # Notes as comments, which every reader of the format skips.
    text = "".join("# note: %s\n" % log.printable(note) for note in notes) + text
    if args.output:
        exposition.publish(args.output, text)
        return Result({"output": os.path.abspath(args.output), "notes": notes}, "")
    return Result({"metrics": text, "notes": notes}, text.rstrip("\n"))


def adopt(host, args):
    """Install's adoption of the stock scripts' blocks (``adopt``)."""
    from . import adopt as adoption
    require_root()
    try:
        done, notes = adoption.adopt(host.prefix, host.programs)
    except exits.Stop as stop:
        host.log(["adopt"], "adopt", "-", stop.status, stop.reason, stop.code)
        raise
    if done is None:
        return Result({"adopted": None, "notes": notes},
                      "\n".join("note: " + log.printable(n) for n in notes))
    rows = [{"program": name, "address": address.text, "where": where}
            for name, found in done for address, where in found]
    summary = "; ".join("%s: %d" % (name, len(found)) for name, found in done)
    host.log(["adopt"], "adopt", "-", "done", "adopted " + summary, exits.OK)
    lines = ["adopted %s (%s, %s)" % (r["address"], r["program"], r["where"]) for r in rows]
    return Result({"adopted": rows, "notes": notes}, "\n".join(
        (lines or ["no stock block to adopt"]) + ["note: " + log.printable(n) for n in notes]))


def hand_over(host, args):
    """The removal's hand-over (``handover``): one line per program."""
    from . import handover
    logged = ["hand-over"]
    try:
        reports, ran = handover.hand_over(host, args.dry_run)
    except exits.Stop as stop:
        if not args.dry_run:
            host.log(logged, "hand-over", "-", stop.status, stop.reason, stop.code)
        raise
    text = handover.result_text(reports, ran, args.dry_run)
    data = {"dry_run": args.dry_run, "ran_here": ran,
            "programs": [report.data() for report in reports]}
    if ran and not args.dry_run:
        host.log(logged, "hand-over", "-", "done", "; ".join(r.line() for r in reports),
                 exits.OK)
    if host.config_problem:
        data["note"] = config.set_aside(host.config_problem)
        text += "\nnote: " + log.printable(data["note"])
    return Result(data, text)
