"""ossec-ar: the administrator's command for the active responses' blocks.

    ossec-ar status                         what is installed, usable, locked
    ossec-ar list                           the blocks, held against the firewall
    ossec-ar unblock IP                     lift a block now
    ossec-ar restore [--dry-run]            re-apply blocks the firewall lost
    ossec-ar expire --older-than D [--dry-run]
                                            lift blocks older than D
    ossec-ar firewalld-setup                make the firewalld layout (reloads)
    ossec-ar hand-over [--dry-run]          before removal: blocks to the stock
                                            scripts' forms, or lifted (handover)

Output is for people; ``--json`` gives the same data for scripts.  Exit
codes are the programs' own (README, "Exit codes").  Every change goes
through the programs' own objects (``program``), under their locks, and is
logged to active-responses.log like theirs, as ``<prefix>/bin/ossec-ar``.
"""

import argparse
import fcntl
import json
import os
import sys
import time

from . import __version__, backends, config, exits, ledger, log, protect, safefile
from . import address as addresses
from .address import Address
from .firewall import FirewallDrop
from .hostdeny import HostDeny
from .lock import lock_file
from .program import combined, lift, nothing_there, require_root

PROBE = Address("192.0.2.1", 4, bytes((192, 0, 2, 1)))
_ASCII_DIGITS = frozenset("0123456789")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Parser(argparse.ArgumentParser):
    """Usage errors are exit 64, like the programs', not argparse's 2."""

    def error(self, message):
        raise exits.refused(exits.USAGE, message)


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
        require_root()
        host = Host(prefix, argv[0], strict=args.handler not in (status, unblock, expire,
                                                                     hand_over))
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
    step = sub.add_parser("firewalld-setup", parents=[common], help="make the firewalld "
                          "ipsets of firewall-drop and bind them to the drop zone; "
                          "reloads firewalld once (an add never does)")
    step.set_defaults(handler=firewalld_setup)
    step = sub.add_parser("hand-over", parents=[common], help="before ossec-ar is removed "
                          "(the packages and make uninstall run it): hand each block to the "
                          "form that the restored stock script's delete lifts, or lift it; "
                          "remove our layouts")
    step.add_argument("--dry-run", action="store_true", help="only print what it would do")
    step.set_defaults(handler=hand_over)
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
    if as_json:
        print(json.dumps({"error": stop.reason, "exit": stop.code}, sort_keys=True))
    else:
        sys.stderr.write("ossec-ar: %s: %s (exit %d)\n" % (stop.status, stop.reason,
                                                           stop.code))


# status

def status(host, args):
    data = {"platform": host.system.name, "prefix": host.prefix,
            "backend": {"configured": host.settings.backend, "auto": _auto_choice(host)},
            "tools": _tools(host), "config": _config_state(host.prefix),
            "log": {"path": host.log_file, "writable": _writable(host.log_file)},
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
    lines.append("tools:")
    lines += ["  %-17s %s" % (tool["name"], (tool["path"] + "  " + tool["version"]).strip()
                              if tool["path"] else "not found") for tool in data["tools"]]
    lines += ["layout %s: %s" % (item["backend"], item["state"]) for item in data["layouts"]]
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
    return Result(data, "\n".join(lines))


def _protected(host):
    """What the protections cover now (see ``protect``): each address
    once per protection, with the reason an add of it is refused."""
    settings = host.settings
    rows, notes = protect.listing(settings.protect, host.prefix, host.system)
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
    "in force", "lost" (ledger only) or "unknown" (host only).  A block
    dated after now (the clock was ahead when it was recorded) is noted:
    expire takes it for old, or it would outlive every expiry."""
    rows, notes = [], []
    try:
        now = ledger.now()
    except exits.Stop as stop:
        now = ledger.LAST_TIME
        notes.append(stop.reason)
    for program in host.programs:
        for address, entry, where in program.blocks(notes):
            rows.append(_row(program, address, entry, where))
            if entry is not None and entry.time > now:
                notes.append("ledger %s: the block of %s is dated in the future (the "
                             "clock was ahead when it was written, or is behind now): "
                             "expire counts it as old"
                             % (ledger.ledger_path(host.prefix, program.name), address))
    return rows, notes


def _row(program, address, entry, where):
    """A block's row.  "unknown": the host shows it and the ledger does not
    know it, or the ledger holds it where it cannot be checked now (its
    tool is gone), so that it is neither called lost nor restored."""
    if entry is None or not where and (entry.backend, address.version) in program.unchecked:
        state = "unknown"
    else:
        state = "in force" if where else "lost"
    return {"program": program.name, "address": address.text, "state": state,
            "backend": (entry.backend if entry else "-"), "where": where or "-",
            "since": entry.time if entry else None,
            "since_text": _when(entry.time) if entry else "-",
            "rule": entry.rule if entry else "-", "alert": entry.alert if entry else "-"}


def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _table(rows, notes):
    """The rows for a person: every field from the ledger escaped, so that
    none can move the cursor, clear the screen or start a line of its own."""
    if not rows:
        lines = ["no blocks"]
    else:
        header = ("ADDRESS", "PROGRAM", "STATE", "BACKEND", "SINCE", "RULE", "ALERT")
        body = [tuple(log.printable(value) for value in (
                    r["address"], r["program"], r["state"],
                    r["where"] if r["state"] != "lost" else r["backend"], r["since_text"],
                    r["rule"], r["alert"])) for r in rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(7)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
                 for line in [header] + body]
    return "\n".join(lines + ["note: " + log.printable(note) for note in notes])


# unblock, restore, expire

def unblock(host, args):
    address = addresses.parse(args.address, lifting=True)
    results = lift(host.programs, address)
    return _report(host, ["unblock", address.text], "delete", address.text, results)


def _change(program, change, address, lifting=False):
    """(program, status, detail, code) of one program's change, or None
    when it found nothing to do."""
    try:
        outcome = change(address)
    except exits.Stop as stop:
        if lifting and nothing_there(program, address, stop):
            # No firewall tool of ours here, nothing in the ledger.
            return program.name, exits.NOT_BLOCKED, stop.reason, exits.OK
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
    lost = [row for row in rows if row["state"] == "lost"]
    return _apply(host, args, "restore", lost, notes, "would restore", "nothing to restore",
                  "restored", lambda program, address: program.restore(address), False)


def expire(host, args):
    now = ledger.now()
    before = now - args.older_than
    rows, notes = _reconcile(host)
    old = [row for row in rows if row["since"] is not None
           and not before <= row["since"] <= now]
    return _apply(host, args, "expire", old, notes, "would lift",
                  "nothing older than %ds" % args.older_than, exits.UNBLOCKED,
                  lambda program, address: program.expire(address, before), True,
                  ["--older-than", str(args.older_than)])


def _apply(host, args, key, rows, notes, verb, nothing, done, change, lifting, logged=()):
    """restore and expire: each candidate decided again by its program,
    under its lock, from what the ledger says then; a dry run only shows."""
    if args.dry_run or not rows:
        lines = ["%s %s (%s, since %s)" % (verb, r["address"], r["program"], r["since_text"])
                 for r in rows] or [nothing]
        return Result({"dry_run": args.dry_run, key: rows, "notes": notes},
                      "\n".join(lines + ["note: " + log.printable(n) for n in notes]))
    programs = {program.name: program for program in host.programs}
    results = []
    for row in rows:
        program = programs[row["program"]]
        outcome = _change(program, lambda address: change(program, address),
                          addresses.parse(row["address"], lifting=True), lifting)
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
    with program.lock():
        program._load("firewalld").create_layout()
    text = ("firewalld: ipsets %s and %s bound to zone drop; firewalld reloaded"
            % (host.settings.option("ipset_v4", "ossec4"),
               host.settings.option("ipset_v6", "ossec6")))
    return Result({"firewalld_setup": text}, text)


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
