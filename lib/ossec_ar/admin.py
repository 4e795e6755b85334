"""ossec-ar: the administrator's command for the active responses' blocks.

    ossec-ar status                         what is installed, usable, locked
    ossec-ar list                           the blocks, held against the firewall
    ossec-ar unblock IP                     lift a block now
    ossec-ar restore [--dry-run]            re-apply blocks the firewall lost
    ossec-ar expire --older-than D [--dry-run]
                                            lift blocks older than D

Output is for people; ``--json`` gives the same data for scripts.  Exit
codes are the programs' own (README, "Exit codes").  Changes take the same
locks as firewall-drop.sh and host-deny.sh, and are logged to
active-responses.log like theirs, as ``<prefix>/bin/ossec-ar``.
"""

import argparse
import fcntl
import ipaddress
import json
import os
import re
import sys
import time

from . import __version__, atomicfile, backends, commands, config, exits, hostsfile
from . import address as addresses
from . import hostdeny, ledger, log, platform, safefile
from .firewall import PROGRAM as FIREWALL
from .hostdeny import PROGRAM as HOSTDENY
from .lock import FileLock, lock_file

PROGRAMS = (FIREWALL, HOSTDENY)
PROBES = {4: ipaddress.ip_address("192.0.2.1"), 6: ipaddress.ip_address("2001:db8::1")}
# Each firewall tool, the arguments that make it print its version, and
# what it means when that fails (firewall-cmd asks the daemon over D-Bus).
TOOLS = (("iptables", ("--version",), None), ("ip6tables", ("--version",), None),
         ("nft", ("--version",), None), ("ipset", ("--version",), None),
         ("firewall-cmd", ("--version",), "firewalld is not running"),
         ("pfctl", None, None), ("ipfw", None, None), ("npfctl", None, None),
         ("ipf", ("-V",), None), ("genfilt", None, None))
_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Parser(argparse.ArgumentParser):
    """Usage errors are exit 64, like the programs', not argparse's 2."""

    def error(self, message):
        raise exits.refused(exits.USAGE, message)


class Result:
    def __init__(self, data, text, code=exits.OK):
        self.data, self.text, self.code = data, text, code


class Host:
    """Everything a subcommand needs: where we are installed, the settings,
    the system, and the log."""

    def __init__(self, prefix, argv0, strict=True):
        self.prefix = prefix
        self.argv0 = os.path.abspath(argv0)
        try:
            self.settings = config.load(config.config_path(prefix))
        except exits.Stop:
            if strict:
                raise
            self.settings = config.Settings()      # status reports the problem
        self.system = platform.settle(self.settings)
        self.style = hostsfile.style_for(self.system)
        self.log_file = os.path.join(prefix, "logs", "active-responses.log")

    def lock(self, program):
        wait = (self.settings.lock_wait if program == FIREWALL
                else self.settings.host_deny_lock_wait)
        return FileLock(lock_file(self.prefix, program), wait)

    def log(self, args, action, address, status, detail, code):
        from .cli import outcome_line
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
        if os.geteuid() != 0:
            raise exits.failed(exits.NOPERM, "must run as root (effective uid %d)"
                               % os.geteuid())
        host = Host(prefix, argv[0], strict=args.handler is not status)
        result = args.handler(host, args)
    except exits.Stop as stop:
        _print_error(stop, as_json)
        return stop.code
    except Exception as error:          # a bug: say where, exit 70
        from .cli import internal_error
        _print_error(exits.failed(exits.INTERNAL, internal_error(error)), as_json)
        return exits.INTERNAL
    if args.json:
        print(json.dumps(result.data, indent=2, sort_keys=True))
    elif result.text:
        print(result.text)
    return result.code


def _parser():
    parser = Parser(prog="ossec-ar", description="See, lift, restore and expire the "
                    "blocks of firewall-drop.sh and host-deny.sh.  Run as root.",
                    epilog="Exit codes: 0 done, 64 usage, 65 refused address, 69 no "
                    "usable firewall, 74 I/O error, 75 a lock or a tool failed, 77 not "
                    "root, 78 broken configuration.")
    parser.add_argument("--version", action="version", version="ossec-ar " + __version__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    step = sub.add_parser("status", parents=[common], help="the platform, the backend "
                          "auto would choose, the tools, the configuration, the log, the "
                          "ledgers and the locks")
    step.set_defaults(handler=status)
    step = sub.add_parser("list", parents=[common], help="every address blocked, held "
                          "against the firewall and hosts.deny")
    step.set_defaults(handler=list_blocks)
    step = sub.add_parser("unblock", parents=[common], help="lift one address from every "
                          "firewall layout of ours and from hosts.deny")
    step.add_argument("address", help="the IPv4 or IPv6 address")
    step.set_defaults(handler=unblock)
    step = sub.add_parser("restore", parents=[common], help="re-apply the blocks that the "
                          "ledger holds and the firewall lost")
    step.add_argument("--dry-run", action="store_true", help="only print them")
    step.set_defaults(handler=restore)
    step = sub.add_parser("expire", parents=[common], help="lift the blocks older than a "
                          "duration (for deletes that never came)")
    step.add_argument("--older-than", required=True, metavar="DURATION", type=_duration,
                      help="seconds, or a number followed by s, m, h, d or w")
    step.add_argument("--dry-run", action="store_true", help="only print them")
    step.set_defaults(handler=expire)
    return parser


def _duration(text):
    found = _DURATION.match(text)
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError("%r is not a duration (say 600, 30m, 12h, 7d)"
                                         % text)
    return int(found.group(1)) * _UNITS[found.group(2)]


def _print_error(stop, as_json):
    if as_json:
        print(json.dumps({"error": stop.reason, "exit": stop.code}, sort_keys=True))
    else:
        sys.stderr.write("ossec-ar: %s: %s (exit %d)\n" % (stop.status, stop.reason,
                                                           stop.code))


# status

def status(host, args):
    data = {"platform": host.system, "prefix": host.prefix,
            "backend": {"configured": host.settings.backend, "auto": _auto_choice(host)},
            "tools": _tools(), "config": _config_state(host.prefix),
            "log": {"path": host.log_file, "writable": _writable(host.log_file)},
            "ledgers": [], "locks": []}
    for program in PROGRAMS:
        data["ledgers"].append(_ledger_state(host.prefix, program))
        try:
            path = lock_file(host.prefix, program)
            state = _lock_state(path)
        except exits.Stop as stop:
            path, state = "-", stop.reason
        data["locks"].append({"program": program, "path": path, "state": state})
    auto = data["backend"]["auto"]
    lines = ["platform: %s (prefix %s)" % (host.system, host.prefix),
             "backend: %s; auto would choose %s" % (host.settings.backend,
                                                     auto["choice"] or "nothing (exit 69)")]
    lines += ["  %s: %s" % (item["backend"], item["state"]) for item in auto["tried"]]
    lines.append("tools:")
    lines += ["  %-13s %s" % (tool["name"], (tool["path"] + "  " + tool["version"]).strip()
                              if tool["path"] else "not found") for tool in data["tools"]]
    conf = data["config"]
    lines.append("config: %s: %s" % (conf["path"], conf["state"]))
    lines.append("log: %s (%s)" % (host.log_file, _yes(data["log"]["writable"], "writable")))
    for item in data["ledgers"]:
        if item["problem"]:
            lines.append("ledger %s: %s" % (item["program"], item["problem"]))
            continue
        lines.append("ledger %s: %s: %d records, %d skipped (%s)" % (
            item["program"], item["path"], item["records"], item["skipped"],
            _yes(item["writable"], "writable")))
    for item in data["locks"]:
        lines.append("lock %s: %s" % (item["program"], item["state"]))
    return Result(data, "\n".join(lines))


def _auto_choice(host):
    tried, choice = [], None
    for name in backends.AUTOMATIC.get(host.system, ()):
        backend = backends.load(name, host.settings)
        reason = backend.missing(PROBES[4])
        if reason is None and hasattr(backend, "inactive"):
            reason = backend.inactive(PROBES[4])
        tried.append({"backend": name, "state": reason or "usable"})
        if reason is None and choice is None:
            choice = name
    return {"choice": choice, "tried": tried}


def _tools():
    found = []
    for name, version_args, failing in TOOLS:
        path = commands.find_tool(name)
        version = ""
        if path and version_args:
            result = commands.run([path] + list(version_args), 30)
            first = (result.output.strip().splitlines() or [""])[0]
            version = first if result.ok else "(%s)" % (
                failing or "version unknown: %s" % first)
        found.append({"name": name, "path": path, "version": version})
    return found


def _config_state(prefix):
    path = config.config_path(prefix)
    if not os.path.exists(path):
        return {"path": path, "state": "absent (the defaults apply)", "parses": True}
    try:
        config.load(path)
    except exits.Stop as stop:
        return {"path": path, "state": stop.reason, "parses": False}
    return {"path": path, "state": "parses", "parses": True}


def _writable(path):
    if os.path.exists(path):
        return os.access(path, os.W_OK)
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return os.access(parent, os.W_OK)


def _ledger_state(prefix, program):
    item = {"program": program, "path": "-", "records": 0, "skipped": 0,
            "writable": False, "problem": None}
    try:
        item["path"] = ledger.ledger_path(prefix, program)
        records, skipped = ledger.read_trusted(prefix, program)
    except exits.Stop as stop:
        item["problem"] = stop.reason
        return item
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
    data = {"blocks": rows, "notes": notes}
    return Result(data, _table(rows, notes))


def _reconcile(host):
    """Rows for every block the ledgers hold or the firewall shows, marked
    "in force", "lost" (ledger only) or "unknown" (firewall only)."""
    rows, notes = [], []
    for program in PROGRAMS:
        path = ledger.ledger_path(host.prefix, program)
        records, skipped = ledger.read_trusted(host.prefix, program)
        notes += ["ledger %s: skipped line %d: %s" % (path, number, reason)
                  for number, reason in skipped]
        held = ledger.in_force(records)
        present, where = _present(host, program, notes)
        for text, entry in sorted(held.items()):
            address = ipaddress.ip_address(text)
            rows.append(_row(program, address, entry, where.get(address), present))
        for address in sorted(present - {ipaddress.ip_address(a) for a in held},
                              key=_order):
            rows.append(_row(program, address, None, where.get(address), present))
    return rows, notes


def _present(host, program, notes):
    """(addresses the firewall or hosts file blocks, {address: where})."""
    where = {}
    if program == HOSTDENY:
        data = atomicfile.read(atomicfile.resolve(host.style.path))
        for address in hostsfile.members(data, host.style):
            where[address] = host.style.path
        return set(where), where
    for name, (_, systems) in backends.REGISTRY.items():
        if host.system not in systems:
            continue
        backend = backends.load(name, host.settings)
        for version, probe in PROBES.items():
            if backend.missing(probe) is not None:
                continue
            try:
                members = backend.members(version)
            except exits.Stop as stop:
                notes.append("%s: cannot list: %s" % (name, stop.reason))
                continue
            for address in members:
                where.setdefault(address, []).append(name)
    return set(where), {a: ", ".join(w) for a, w in where.items()}


def _row(program, address, entry, where, present):
    state = ("in force" if address in present else "lost") if entry else "unknown"
    return {"program": program, "address": str(address), "state": state,
            "backend": (entry.backend if entry else "-"), "where": where or "-",
            "since": entry.time if entry else None,
            "since_text": _when(entry.time) if entry else "-",
            "rule": entry.rule if entry else "-", "alert": entry.alert if entry else "-"}


def _order(address):
    return (address.version, address)


def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _table(rows, notes):
    if not rows:
        lines = ["no blocks"]
    else:
        header = ("ADDRESS", "PROGRAM", "STATE", "BACKEND", "SINCE", "RULE", "ALERT")
        body = [(r["address"], r["program"], r["state"], r["where"] if r["state"] !=
                 "lost" else r["backend"], r["since_text"], r["rule"], r["alert"])
                for r in rows]
        widths = [max(len(str(line[i])) for line in [header] + body) for i in range(7)]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()
                 for line in [header] + body]
    return "\n".join(lines + ["note: " + note for note in notes])


# unblock, restore, expire

def unblock(host, args):
    address = addresses.parse(args.address)
    results = [_lift(host, program, address) for program in PROGRAMS]
    return _report(host, ["unblock", str(address)], "delete", str(address), results)


def _lift(host, program, address):
    """(program, status, detail, code) of removing *address* for *program*."""
    try:
        with host.lock(program):
            if program == FIREWALL:
                status, detail = _firewall_delete(host, address)
            else:
                status, detail = hostdeny.change(host.style, "delete", address)
            problem = ledger.record(host.prefix, program, "delete", address)
    except exits.Stop as stop:
        return program, stop.status, stop.reason, stop.code
    return program, status, detail + ("; " + problem if problem else ""), exits.OK


def _firewall_delete(host, address):
    try:
        return backends.delete_everywhere(host.settings, host.system, address)
    except exits.Stop as stop:
        if stop.code != exits.UNAVAILABLE:
            raise
        # No firewall tool of ours on this host: none of our layouts exists.
        return "was not blocked", stop.reason


def _report(host, args, action, address, results):
    """Log and summarise the per-program results of one change."""
    code = max(code for _, _, _, code in results)
    statuses = [status for _, status, _, _ in results]
    if code != exits.OK:
        status = "failed"
    elif "unblocked" in statuses or "blocked" in statuses:
        status = "unblocked" if action == "delete" else "blocked"
    else:
        status = statuses[0] if len(set(statuses)) == 1 else "done"
    detail = "; ".join("%s: %s: %s" % (program, st, text) for program, st, text, _ in results)
    host.log(args, action, address, status, detail, code)
    data = {"action": action, "address": address, "status": status, "exit": code,
            "programs": [{"program": p, "status": s, "detail": d, "exit": c}
                         for p, s, d, c in results]}
    text = "%s %s: %s\n%s" % (action, address, status, "\n".join(
        "  %s: %s: %s" % (p, s, d) for p, s, d, _ in results))
    return Result(data, text, code)


def restore(host, args):
    rows, notes = _reconcile(host)
    lost = [row for row in rows if row["state"] == "lost"]
    if args.dry_run or not lost:
        return _preview("restore", lost, args.dry_run, "would restore", "nothing to restore",
                        notes)
    results = []
    for row in lost:
        results.append(_reapply(host, row))
    code = max(r["exit"] for r in results)
    summary = "; ".join("%s %s: %s" % (r["address"], r["program"], r["status"])
                        for r in results)
    host.log(["restore"], "restore", "-", "failed" if code else "restored", summary, code)
    return Result({"dry_run": False, "restored": results, "notes": notes},
                  "\n".join("%s (%s): %s: %s" % (r["address"], r["program"], r["status"],
                                                r["detail"]) for r in results), code)


def _preview(key, rows, dry_run, verb, nothing, notes):
    """What a dry run would do, or that there is nothing to do."""
    lines = ["%s %s (%s, since %s)" % (verb, r["address"], r["program"], r["since_text"])
             for r in rows] or [nothing]
    return Result({"dry_run": dry_run, key: rows, "notes": notes},
                  "\n".join(lines + ["note: " + note for note in notes]))


def _reapply(host, row):
    address = ipaddress.ip_address(row["address"])
    program = row["program"]
    try:
        with host.lock(program):
            if program == FIREWALL:
                backend = _backend_for(host, row["backend"], address)
                status, detail = backend.add(address)
            else:
                status, detail = hostdeny.change(host.style, "add", address)
    except exits.Stop as stop:
        status, detail, code = stop.status, stop.reason, stop.code
    else:
        code = exits.OK
    return {"address": row["address"], "program": program, "status": status,
            "detail": detail, "exit": code}


def _backend_for(host, name, address):
    """The backend that made the block, if it is usable; else auto's choice."""
    if name in backends.REGISTRY:
        backend = backends.load(name, host.settings)
        if backend.missing(address) is None:
            return backend
    return backends.choose(host.settings, host.system, address)


def expire(host, args):
    limit = time.time() - args.older_than
    rows, notes = _reconcile(host)
    old = [row for row in rows if row["since"] is not None and row["since"] < limit
           and row["state"] != "unknown"]
    if args.dry_run or not old:
        return _preview("expire", old, args.dry_run, "would lift",
                        "nothing older than %ds" % args.older_than, notes)
    results = [_lift(host, row["program"], ipaddress.ip_address(row["address"]))
               for row in old]
    code = max(c for _, _, _, c in results)
    summary = "; ".join("%s %s: %s" % (row["address"], p, s)
                        for row, (p, s, _, _) in zip(old, results))
    host.log(["expire", "--older-than", str(args.older_than)], "expire", "-",
             "failed" if code else "unblocked", summary, code)
    data = {"dry_run": False, "expired": [
        {"address": row["address"], "program": p, "status": s, "detail": d, "exit": c}
        for row, (p, s, d, c) in zip(old, results)], "notes": notes}
    return Result(data, "\n".join("%s (%s): %s: %s" % (row["address"], p, s, d)
                                  for row, (p, s, d, _) in zip(old, results)), code)
