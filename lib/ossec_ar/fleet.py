"""ossec-ar fleet: on an OSSEC manager, what every agent blocks, and lifting
it from there.

    ossec-ar fleet [--all] [--agent ID|NAME] [--address IP] [--since WHEN]
    ossec-ar fleet unblock IP (--agent ID|NAME ... | --everywhere)
                              [--wait SECONDS] [--since WHEN]

The agents send their active-responses.log to the manager (the
``<localfile>`` the README asks for), and our rules turn each outcome line
into an alert (100611 to 100615).  The table is built from those alerts
alone (``alerts``): an invocation line (rules 601-606) is written before
the work is done and says nothing of how it ended.

One row per agent, address and program (firewall-drop's names, host-deny's;
unblock lifts both), in the state its last outcome left:

    blocked   blocked, or already blocked
    failed    the last add or delete failed: the address may or may not be
              blocked (100611)
    refused   the agent refused the address (100612); a refusal changes
              nothing, so it never hides an earlier block
    lifted    unblocked, or was not blocked (a delete, or unblock.sh)
    not ours  not ours, left: the delete (or unblock.sh) found that the
              block is someone else's and left it (100615); the address may
              still be blocked there, but not by us

By default only blocked and failed rows are shown; ``--all`` shows every
one.  ``fleet unblock`` runs the manager's own ``agent_control -b IP -f
<the unblock response> -u <id>`` for each agent, and with ``--wait`` reads
alerts.log for each agent's answer.
"""

import argparse
import json
import os
import sys
import time

from . import alerts, exits, log, safefile
from . import address as addresses
from .commands import run as run_command

DEFAULT_SINCE = 7 * 86400
SHOWN = ("blocked", "failed")
STATES = ("blocked", "failed", "refused", "lifted", "not ours")
# The states a delete (or unblock.sh) leaves: our block is no more.
ENDED = ("lifted", "not ours")
# The answers of an agent that fleet unblock --wait takes for done: it
# lifted the address, found nothing of ours, or left a block not ours.
ANSWERED = (exits.UNBLOCKED, exits.NOT_BLOCKED, exits.NOT_OURS)
AGENT_CONTROL_SECONDS = 60
POLL_SECONDS = 0.2
# Between two agents' requests.  analysisd drops an event whose line is
# the same as one of the last three it read, whatever agent sent it
# (analysisd/analysisd_stages.c, LastMsg_Stats, at 7f06fe0): two agents
# with the same prefix that lift the same address in the same second
# write the same outcome line, and only the first reaches alerts.log.
# Seen with two real agents; requests this far apart are run in
# different seconds.
SEND_SPACING = 1.5
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
                 "%Y-%m-%dT%H:%M:%S")
# What to add to the manager's ossec.conf when it has no unblock response
# (README, "Lifting a block from the manager").
UNBLOCK_SNIPPET = """<command>
  <name>unblock</name>
  <executable>unblock.sh</executable>
  <expect>srcip</expect>
  <timeout_allowed>no</timeout_allowed>
</command>

<active-response>
  <command>unblock</command>
  <location>local</location>
  <rules_id>999999</rules_id>
</active-response>"""


# --- the command line ----------------------------------------------------------

def register(sub, common):
    """Add ``fleet`` (and ``fleet unblock``) to ossec-ar's subcommands."""
    step = sub.add_parser("fleet", parents=[common], help="on an OSSEC manager: each "
                          "agent's blocks, from our outcomes in alerts.log (blocked and "
                          "failed rows; --all for every row)")
    step.add_argument("--all", action="store_true", help="every row: also the refused, "
                      "the lifted and the not ours")
    step.add_argument("--agent", metavar="ID|NAME", help="only this agent")
    step.add_argument("--address", metavar="IP", help="only this address")
    _since_option(step)
    inner = step.add_subparsers(dest="fleet_command", metavar="unblock")
    lift = inner.add_parser("unblock", parents=[common], help="lift IP on the agents "
                            "that block it (--everywhere) or on the named ones, through "
                            "agent_control and the unblock response")
    lift.add_argument("unblock_address", metavar="IP", help="the IPv4 or IPv6 address")
    whom = lift.add_mutually_exclusive_group(required=True)
    whom.add_argument("--agent", dest="agents", action="append", metavar="ID|NAME",
                      help="this agent (repeat for more)")
    whom.add_argument("--everywhere", action="store_true", help="every agent whose row "
                      "for IP is blocked or failed")
    lift.add_argument("--wait", metavar="SECONDS", type=_seconds, help="wait up to this "
                      "long for each agent's outcome in alerts.log")
    _since_option(lift)
    step.set_defaults(handler=command)


def _since_option(parser):
    parser.add_argument("--since", metavar="DATE|DURATION", type=_since, help="only "
                        "outcomes since then: a local date (2026-12-01, 2026-12-01 "
                        "13:00) or a duration back from now (30m, 12h, 7d); default 7d")


def _seconds(text):
    if not text or not all("0" <= ch <= "9" for ch in text):
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    return int(text)


def _since(text):
    """``("ago", seconds)`` or ``("at", epoch)``, resolved when the command
    runs (``since_time``)."""
    from .admin import _duration
    for form in _DATE_FORMATS:
        try:
            return ("at", time.mktime(time.strptime(text, form)))
        except (ValueError, OverflowError):
            continue
    try:
        return ("ago", _duration(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("%r is neither a date (2026-12-01, 2026-12-01 "
                                         "13:00) nor a duration (30m, 12h, 7d)" % text)


def since_time(since, now):
    if since is None:
        return now - DEFAULT_SINCE
    kind, value = since
    return now - value if kind == "ago" else value


def command(host, args):
    if getattr(args, "fleet_command", None) == "unblock":
        return unblock(host, args)
    return listing(host, args)


# --- the table -------------------------------------------------------------------

class Row:
    """One agent's block of one address by one program (``family``)."""

    __slots__ = ("state", "program", "backend", "prefix", "outcome", "since")

    def __init__(self, state, program, outcome):
        self.state = state
        self.program = program          # the name that made the block, as logged
        self.backend = "-"
        self.prefix = None              # the IPv6 prefix blocked for it (ipv6_prefix)
        self.outcome = outcome          # the last outcome: rule, alert, detail
        self.since = outcome.time


class Table:
    """The rows, from outcomes fed oldest first.  Without *keep_all*, rows
    that no longer show (lifted, refused, not ours) are not kept: memory
    grows with what is blocked, not with the alerts read."""

    def __init__(self, keep_all=False):
        self.keep_all = keep_all
        self._rows = {}     # (agent, agent ip, host, address) -> {family: Row}

    def add(self, outcome):
        key = (outcome.agent, outcome.agent_ip, outcome.host, outcome.address)
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = {}
        state = outcome.state
        if outcome.family == alerts.UNBLOCK and state in ENDED:
            # unblock.sh lifts every block of ours of the address there
            # (or leaves what is not ours): its word is every row's.
            for name in list(rows):
                self._set(rows, name, rows[name].program, state, outcome)
            if not rows:
                self._set(rows, alerts.UNBLOCK, outcome.program, state, outcome)
        else:
            row = rows.get(outcome.family)
            if state == "refused":
                if row is None:     # nothing was changed: an earlier row stands
                    self._set(rows, outcome.family, outcome.program, state, outcome)
            elif state == "blocked" and row is not None and row.state == "blocked":
                row.outcome = outcome   # already blocked: blocked since the first
            else:
                self._set(rows, outcome.family, outcome.program, state, outcome)
                if state == "blocked":
                    row = rows[outcome.family]
                    row.prefix, row.backend = _prefix_and_backend(outcome.detail)
        if not rows:
            del self._rows[key]

    def _set(self, rows, name, program, state, outcome):
        if not self.keep_all and state not in SHOWN:
            rows.pop(name, None)
            return
        row = rows.get(name)
        if row is None:
            rows[name] = Row(state, program, outcome)
            return
        row.state, row.outcome, row.since = state, outcome, outcome.time

    def rows(self):
        """(key, Row) for every row kept."""
        for key, rows in self._rows.items():
            for row in rows.values():
                yield key, row


def _prefix_and_backend(detail):
    """(the IPv6 prefix or None, the layout) of a block, from the detail of
    our blocked line: the layout is its first word (``iptables chain
    OSSEC``, ``nftables table inet ossec, set v4``, ``/etc/hosts.deny``),
    after the prefix that an add with ``ipv6_prefix`` names first
    (``2001:db8:1:2::/64 in nftables ...``, ``by 2001:db8:1:2::/64 in
    ...`` when it was already blocked)."""
    words = detail.split(" ", 3)
    prefix = None
    if words[0] == "by":
        words = words[1:]
    if len(words) > 2 and words[1] == "in" and addresses.parse_prefix(words[0]):
        prefix, detail = words[0], " ".join(words[2:])
    word = detail.split(" ", 1)[0].rstrip(",;:")
    return prefix, word or "-"


class Agents:
    """The manager's agents by name, from ``etc/client.keys`` (``ID NAME
    IP KEY``; a line or a name starting with ``#`` is a removed agent), as
    remoted names them in the alerts' locations."""

    def __init__(self, prefix, notes):
        self.by_name = {}
        path = os.path.join(prefix, "etc", "client.keys")
        try:
            data, info = safefile.read_file(path, 1 << 24)
        except OSError as error:
            notes.append("%s: cannot be read: %s; agent IDs are shown as -"
                         % (path, error.strerror))
            return
        if data is None:
            return
        reason = safefile.untrusted(path, info, prefix)
        if reason:
            notes.append("%s is not trusted (%s); agent IDs are shown as -" % (path, reason))
            return
        for line in data.split(b"\n"):
            if not line or line[:1] in (b"#", b" "):
                continue
            parts = line.split(b" ", 3)
            if len(parts) < 4 or parts[1][:1] == b"#":
                continue
            self.by_name[alerts._text(parts[1])] = alerts._text(parts[0])

    def id_of(self, key):
        agent, _, host, _ = key
        if agent is None:
            return "000"                # the manager's own log
        return self.by_name.get(agent, "-")


def read_table(prefix, since, notes, keep_all=False, wanted=None):
    """The :class:`Table` of every outcome since *since* (seconds since the
    epoch) whose ``wanted(outcome)`` is true, and the files read."""
    table = Table(keep_all)
    seen, read = set(), []
    since_day = time.localtime(since)[:3]
    paths = [path for path, _ in alerts.day_files(prefix, since_day, notes)]
    paths.append(alerts.live_file(prefix))
    for path in paths:
        before = len(seen)
        for outcome in alerts.read_outcomes(path, notes, seen):
            if outcome.time >= since and (wanted is None or wanted(outcome)):
                table.add(outcome)
        if len(seen) > before:
            read.append(path)
        elif path == paths[-1] and not os.path.lexists(path):
            notes.append("%s: not found (is this an OSSEC manager?)" % path)
    return table, read


# --- fleet -----------------------------------------------------------------------

def listing(host, args):
    notes = []
    now = time.time()
    since = since_time(args.since, now)
    agents = Agents(host.prefix, notes)
    wanted = _filter(args, agents)
    table, read = read_table(host.prefix, since, notes, args.all, wanted)
    rows = [_row_data(agents, key, row) for key, row in table.rows()
            if args.all or row.state in SHOWN]
    rows.sort(key=_order)
    code = exits.IOERR if any(_unreadable(note) for note in notes) else exits.OK
    _tell(notes)
    data = {"rows": rows, "since": int(since), "sources": read, "notes": notes,
            "exit": code}
    return _result(data, _table_text(rows, since), code)


def _filter(args, agents):
    address = None
    if args.address is not None:
        address = addresses.parse(args.address, lifting=True).text
    agent = args.agent

    def wanted(outcome):
        if address is not None and outcome.address != address:
            return False
        if agent is not None:
            key = (outcome.agent, outcome.agent_ip, outcome.host, None)
            name = outcome.agent if outcome.agent is not None else outcome.host
            return agent in (name, agents.id_of(key))
        return True
    return wanted if address is not None or agent is not None else None


def _unreadable(note):
    return ": cannot be read: " in note or ": unreadable after " in note or \
        ": cannot be listed: " in note or ": not found " in note


def _row_data(agents, key, row):
    agent, agent_ip, host, address = key
    outcome = row.outcome
    return {"agent_id": agents.id_of(key), "agent": agent if agent is not None else host,
            "agent_ip": agent_ip if agent is not None else "-", "address": address,
            "program": row.program, "backend": row.backend, "prefix": row.prefix,
            "state": row.state,
            "outcome": outcome.status, "by": outcome.program, "since": row.since,
            "since_text": _when(row.since), "rule": outcome.rule, "alert": outcome.alert_id,
            "exit": outcome.exit, "detail": outcome.detail}


def _order(row):
    parsed = addresses.host(row["address"])
    return (row["agent_id"], row["agent"], parsed is None,
            (parsed.version, parsed.packed) if parsed else (0, row["address"].encode(
                "utf-8", "surrogateescape")), row["program"])


def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


HEADER = ("AGENT", "NAME", "ADDRESS", "PROGRAM", "BACKEND", "STATE", "SINCE", "RULE", "ALERT")


def _table_text(rows, since):
    """The rows for a person: each field that came from an alert escaped
    as one word (log.escape), so that a name or an address can neither
    move the cursor nor shift a column."""
    if not rows:
        return "no rows since %s" % _when(since)
    body = [(r["agent_id"], log.escape(r["agent"]), log.escape(r["address"]),
             log.escape(r["program"]), log.escape(r["backend"]), r["state"], r["since_text"],
             str(r["rule"]), r["alert"]) for r in rows]
    return _columns([HEADER] + body)


def _columns(lines):
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(line, widths))
                     .rstrip() for line in lines)


def _tell(notes):
    """Notes go to stderr, as they are found, for text and JSON alike."""
    from .admin import write
    for note in notes:
        write("ossec-ar fleet: note: %s\n" % log.printable(note), sys.stderr)


def _result(data, text, code):
    from .admin import Result
    return Result(data, text, code)


# --- fleet unblock ---------------------------------------------------------------

def unblock(host, args):
    address = addresses.parse(args.unblock_address, lifting=True)
    prefix = host.prefix
    notes = []
    response = unblock_response(prefix)
    listed = agent_list(prefix)
    if args.agents:
        targets = [_named(wanted, listed) for wanted in args.agents]
    else:
        targets = _blocking(host, args, address, listed, notes)
    _tell(notes)
    logged = ["fleet", "unblock", address.text] + (
        ["--everywhere"] if args.everywhere else
        [word for name in args.agents for word in ("--agent", name)])
    if not targets:
        text = "no agent blocks %s (since %s)" % (address.text, _when(
            since_time(args.since, time.time())))
        return _result({"address": address.text, "response": response, "agents": [],
                        "notes": notes, "exit": exits.OK}, text, exits.OK)
    follower = alerts.Follower(prefix) if args.wait else None
    try:
        results, last = [], None
        for agent in targets:
            if last is not None and agent["id"] != "000":
                time.sleep(max(0.0, last + SEND_SPACING - time.monotonic()))
            results.append(_send(prefix, response, address, agent))
            if results[-1]["sent"] is not None:
                last = results[-1]["sent"]
        if follower is not None:
            _tell(follower.notes)
            _wait(follower, results, address, args.wait)
    finally:
        if follower is not None:
            follower.close()
    done = ANSWERED if args.wait else ("sent",)
    code = exits.OK if all(r["result"] in done for r in results) else exits.TEMPFAIL
    status = ("failed" if code else exits.UNBLOCKED if args.wait else "requested")
    host.log(logged, "delete", address.text, status, "; ".join(
        "%s %s: %s" % (r["agent_id"], r["agent"], r["result"]) for r in results), code)
    text = "unblock %s through %s:\n%s" % (address.text, response, _columns(
        [("AGENT", "NAME", "RESULT", "SECONDS")]
        + [(r["agent_id"], log.escape(r["agent"]), r["result"] + (
            ": " + log.printable(r["detail"]) if r["detail"] else ""),
            "-" if r["seconds"] is None else "%.1f" % r["seconds"]) for r in results]))
    return _result({"address": address.text, "response": response, "agents": results,
                    "notes": notes, "exit": code}, text, code)


def _agent_control(prefix, args):
    return run_command([os.path.join(prefix, "bin", "agent_control")] + list(args),
                       AGENT_CONTROL_SECONDS)


def unblock_response(prefix):
    """The name (``unblock0``) that ``agent_control -L`` lists for a
    response whose command is unblock.sh (or unblock, Wazuh 4.2+'s name).
    None: exit 78 with the blocks to add."""
    result = _agent_control(prefix, ["-L"])
    if not result.ok:
        raise exits.failed(exits.UNAVAILABLE, "cannot list the responses: %s"
                           % result.describe())
    for line in result.output.splitlines():
        line = line.strip()
        if not line.startswith("Response name: "):
            continue
        name, _, command_name = line[len("Response name: "):].partition(", command: ")
        if command_name in ("unblock.sh", "unblock"):
            return name
    raise exits.failed(exits.CONFIG, "no unblock response on this manager (agent_control "
                       "-L lists none whose command is unblock.sh); add these to "
                       "%s/etc/ossec.conf and restart OSSEC:\n%s" % (prefix, UNBLOCK_SNIPPET))


def agent_list(prefix):
    """``agent_control -j -l``: [{"id", "name", "ip", "status"}], the
    manager (000) first."""
    result = _agent_control(prefix, ["-j", "-l"])
    text = result.output
    try:
        start = text.index("{")
        document = json.JSONDecoder().raw_decode(text[start:])[0]
        listed = [agent for agent in document["response"]
                  if isinstance(agent, dict) and isinstance(agent.get("id"), str)]
    except (ValueError, KeyError, TypeError):
        raise exits.failed(exits.UNAVAILABLE, "cannot list the agents: %s"
                           % result.describe())
    return listed


def _named(wanted, listed):
    for agent in listed:
        if wanted in (agent["id"], agent.get("name")):
            return agent
    raise exits.usage("no agent %s: agent_control -l lists %s" % (
        log.printable(wanted), ", ".join("%s (%s)" % (a["id"], a.get("name"))
                                         for a in listed) or "none"))


def _blocking(host, args, address, listed, notes):
    """The agents whose row for *address* is blocked or failed."""
    agents = Agents(host.prefix, notes)
    since = since_time(args.since, time.time())
    table, _ = read_table(host.prefix, since, notes,
                          wanted=lambda outcome: outcome.address == address.text)
    targets, seen = [], set()
    by_id = {agent["id"]: agent for agent in listed}
    for key, row in table.rows():
        agent_id = agents.id_of(key)
        if agent_id in seen:
            continue
        seen.add(agent_id)
        if agent_id in by_id:
            targets.append(by_id[agent_id])
        else:
            notes.append("agent %s blocks %s but is not in client.keys any more: not sent"
                         % (log.escape(key[0] or key[2]), address.text))
    targets.sort(key=lambda agent: agent["id"])
    return targets


def _send(prefix, response, address, agent):
    result = {"agent_id": agent["id"], "agent": agent.get("name", "-"), "result": None,
              "detail": "", "seconds": None, "alert": None, "sent": None}
    status = agent.get("status", "")
    if agent["id"] == "000":
        result.update(result="not sent", detail="agent_control cannot reach the manager's "
                      "own execd: run ossec-ar unblock %s here" % address.text)
    elif not status.startswith("Active"):
        result.update(result="disconnected", detail="agent_control -l says %s; not sent"
                      % status)
    else:
        ran = _agent_control(prefix, ["-b", address.text, "-f", response, "-u", agent["id"]])
        if ran.ok:
            result.update(result="sent", sent=time.monotonic())
        else:
            result.update(result="failed", detail=ran.describe())
    return result


def _wait(follower, results, address, seconds):
    """Each sent request's outcome, from alerts.log, until *seconds* pass."""
    pending = {r["agent"]: r for r in results if r["result"] == "sent"}
    deadline = time.monotonic() + seconds
    while pending:
        for outcome in follower.poll():
            row = pending.get(outcome.agent)
            if row is None or outcome.family != alerts.UNBLOCK or \
                    outcome.address != address.text:
                continue
            del pending[outcome.agent]
            row.update(result=outcome.status, detail="" if outcome.state == "lifted"
                       else outcome.detail, alert=outcome.alert_id,
                       seconds=round(time.monotonic() - row["sent"], 1))
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for row in pending.values():
        row.update(result="no answer", detail="no outcome in alerts.log within %ds" % seconds)
    for row in results:
        row.pop("sent", None)
