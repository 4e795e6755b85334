"""make bench, the fleet rows: ``ossec-ar fleet`` on a manager's alerts.

A scratch install of ours (make install, PREFIX=/var/ossec under a DESTDIR)
gets ALERTS alerts over the last six and a half days, in OSSEC's layout:
``logs/alerts/<YYYY>/<Mon>/ossec-alerts-<DD>.log``, each past day gzipped
as monitord leaves it (zlib's default level, as OSSEC's gzwrite), today's
plain with ``alerts.log`` as its second name.  The mix: sshd failures
(5716), web attacks (31104), the stock active-response rules (601-604),
and ours (100611-100614) for 50 agents, most blocks lifted later.  Each
run is our installed ``bin/ossec-ar`` as a new process; its wall time and
peak RSS come from wait4(2).  The ``--since 1h`` run is also traced
(strace, openat) to list the alerts files it opened: none of a day before
the one an hour ago fell in (yesterday's, just after midnight) may be
among them.
"""

import gzip
import os
import random
import subprocess
import sys
import time

ALERTS = 1000000
AGENTS = 50
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SPAN = int(6.5 * 86400)
AGENT_LOG = "/var/ossec/logs/active-responses.log"
BIN = "/var/ossec/active-response/bin/"
WEB_PATH = "/index.php?page=../../../../etc/passwd&q=" + "A" * 560


def c_date(seconds):
    return time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime(seconds))


def day_path(alerts_dir, seconds):
    tm = time.localtime(seconds)
    return os.path.join(alerts_dir, "%d" % tm.tm_year, MONTHS[tm.tm_mon - 1],
                        "ossec-alerts-%02d.log" % tm.tm_mday)


class Writer:
    """Alerts into their day's file: past days through gzip, today plain."""

    def __init__(self, alerts_dir, today):
        self.alerts_dir = alerts_dir
        self.today = today
        self.day = self.path = self.out = None
        self.sizes = {}
        self.count = 0

    def write(self, seconds, text):
        path = day_path(self.alerts_dir, seconds)
        if path != self.day:
            self.close()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.day = self.path = path
            if path == self.today:
                self.out = open(path, "wb")
            else:
                self.path = path + ".gz"
                # gzopen(3)'s "w", as monitord's: zlib's default level, 6.
                self.out = gzip.open(self.path, "wb", compresslevel=6)
        self.out.write(text)
        self.count += 1

    def close(self):
        if self.out is not None:
            self.out.close()
            self.sizes[self.path] = os.path.getsize(self.path)
            self.out = None


def alert(number, seconds, groups, location, rule, level, description, line, srcip,
          user=None):
    tm = time.localtime(seconds)
    text = ("** Alert %d.%d: - %s\n%d %s %02d %02d:%02d:%02d %s\nRule: %d (level %d) -> '%s'\n"
            "Src IP: %s\n" % (seconds, number, groups, tm.tm_year, MONTHS[tm.tm_mon - 1],
                              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, location, rule,
                              level, description, srcip))
    if user:
        text += "User: %s\n" % user
    return (text + line + "\n\n").encode()


OURS = {"blocked": (100613, 2, "active_response_blocked", "ossec-ar: an address was blocked "
                    "(or already was)"),
        "unblocked": (100614, 2, "active_response_unblocked", "ossec-ar: an address was "
                      "unblocked (or was not blocked)"),
        "failed": (100611, 10, "active_response_failed", "ossec-ar: an active response "
                   "failed; the address may not be blocked"),
        "refused": (100612, 5, "active_response_refused", "ossec-ar: an active response "
                    "refused its request")}


def generate(prefix):
    """The alerts, client.keys; returns (count of ours, the files' sizes,
    the newest day's file)."""
    alerts_dir = os.path.join(prefix, "logs", "alerts")
    os.makedirs(alerts_dir, exist_ok=True)
    agents = [("%03d" % (n + 1), "agent%02d" % (n + 1), "10.0.0.%d" % (n + 10))
              for n in range(AGENTS)]
    with open(os.path.join(prefix, "etc", "client.keys"), "w") as f:
        for number, name, ip in agents:
            f.write("%s %s %s %s\n" % (number, name, ip, "k" * 64))
    now = int(time.time())
    start = now - SPAN
    today = day_path(alerts_dir, now)
    writer = Writer(alerts_dir, today)
    chance = random.Random(21)
    blocked = []                    # (agent, address) blocked and not yet lifted
    ours = 0
    for number in range(ALERTS):
        seconds = start + number * SPAN // ALERTS
        agent = agents[chance.randrange(AGENTS)]
        where = "(%s) %s->" % (agent[1], agent[2])
        attacker = "198.%d.%d.%d" % (18 + chance.randrange(2), chance.randrange(256),
                                     chance.randrange(1, 255))
        kind = chance.random()
        if kind < 0.40:
            text = alert(number, seconds, "syslog,sshd,authentication_failed,",
                         where + "/var/log/auth.log", 5716, 5, "SSHD authentication failed.",
                         "%s web1 sshd[%d]: Failed password for invalid user admin from %s "
                         "port %d ssh2" % (time.strftime("%b %e %H:%M:%S",
                                                         time.localtime(seconds)),
                                           chance.randrange(99999), attacker,
                                           chance.randrange(1024, 65535)), attacker, "admin")
        elif kind < 0.70:
            text = alert(number, seconds, "web,accesslog,attack,",
                         where + "/var/log/nginx/access.log", 31104, 6,
                         "Common web attack.", '%s - - [05/Dec/2026:10:00:00 +0000] "GET %s '
                         'HTTP/1.1" 404 153 "-" "Mozilla/5.0 (X11; Linux x86_64)"'
                         % (attacker, WEB_PATH), attacker)
        elif kind < 0.85:
            rule = 601 + chance.randrange(4)
            program = "firewall-drop.sh" if rule < 603 else "host-deny.sh"
            action = "add" if rule % 2 else "delete"
            text = alert(number, seconds, "ossec,active_response,", where + AGENT_LOG, rule,
                         3, "Host %s by %s Active Response" % (
                             "Blocked" if action == "add" else "Unblocked", program),
                         "%s %s%s %s - %s %d.%d 5716" % (c_date(seconds), BIN, program,
                                                         action, attacker, seconds, number),
                         attacker)
        else:
            ours += 1
            if blocked and chance.random() < 0.45:
                # Lift one of the blocks in force (most are, in time).
                index = chance.randrange(len(blocked))
                agent, address = blocked[index]
                blocked[index] = blocked[-1]
                blocked.pop()
                where = "(%s) %s->" % (agent[1], agent[2])
                status, action, detail = "unblocked", "delete", "nftables table inet ossec, " \
                    "set v4"
            else:
                address = attacker
                roll = chance.random()
                if roll < 0.9:
                    status, action, detail = "blocked", "add", "nftables table inet ossec, " \
                        "set v4"
                    blocked.append((agent, address))
                elif roll < 0.97:
                    status, action, detail = "failed", "add", "lock /var/ossec/var/ossec-ar/" \
                        "firewall-drop.lock still held by another run after 5s"
                else:
                    status, action, detail = "refused", "add", "on the allowlist"
            rule, level, group, description = OURS[status]
            code = {"failed": 75, "refused": 65}.get(status, 0)
            text = alert(number, seconds, "ossec,active_response,ossec-ar,%s," % group,
                         where + AGENT_LOG, rule, level, description,
                         "%s %sfirewall-drop.sh: %s %s: %s: %s (exit %d)" % (
                             c_date(seconds), BIN, action, address, status, detail, code),
                         address)
        writer.write(seconds, text)
    writer.close()
    if not os.path.exists(today):
        open(today, "wb").close()
        writer.sizes[today] = 0
    live = os.path.join(alerts_dir, "alerts.log")
    if os.path.lexists(live):
        os.unlink(live)
    os.link(today, live)
    return ours, writer.sizes, today


def measure(argv):
    """(seconds, peak RSS in MiB, exit status, stdout lines) of one run."""
    started = time.monotonic()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    out = child.stdout.read()
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status) if hasattr(
        os, "waitstatus_to_exitcode") else status >> 8
    elapsed = time.monotonic() - started
    if err:
        sys.stderr.write(err.decode(errors="replace"))
    return elapsed, usage.ru_maxrss / 1024.0, child.returncode, out.count(b"\n")


def opened_alerts_files(argv, alerts_dir, scratch):
    """The alerts files that *argv* opens, from strace (None without it)."""
    trace = os.path.join(scratch, "fleet.strace")
    try:
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", trace] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    found = []
    with open(trace, errors="replace") as f:
        for line in f:
            if alerts_dir in line and "ENOENT" not in line and "O_DIRECTORY" not in line:
                path = line.split('"', 2)[1]
                if path not in found:
                    found.append(path)
    return found


def run(prefix, scratch, table, progress):
    progress("fleet: writing %s alerts" % "{:,}".format(ALERTS))
    ours, sizes, today = generate(prefix)
    alerts_dir = os.path.join(prefix, "logs", "alerts")
    total = sum(sizes.values())
    raw = sum(os.path.getsize(p) if not p.endswith(".gz") else _gz_size(p) for p in sizes)
    program = os.path.join(prefix, "bin", "ossec-ar")
    rows = []
    for label, args in (("fleet", []), ("fleet --json", ["--json"]),
                        ("fleet --all --json", ["--all", "--json"]),
                        ("fleet --since 1h", ["--since", "1h"])):
        progress("fleet: ossec-ar %s" % label)
        seconds, rss, code, lines = measure([program] + label.split()[:1] + args)
        rows.append(("ossec-ar " + label, "%.1f" % seconds, "%.0f" % rss, str(code),
                     "{:,}".format(lines)))
    hour_ago = time.time() - 3600
    opened = opened_alerts_files([program, "fleet", "--since", "1h"], alerts_dir, scratch)
    older = sorted(path for path in sizes if path != today)
    print("\nfleet: %s alerts over %.1f days, %s of ours; %d MB as written (%d MB on disk: "
          "%d past days gzipped, today plain, alerts.log its second name)" % (
              "{:,}".format(ALERTS), SPAN / 86400.0, "{:,}".format(ours), raw >> 20,
              total >> 20, len(older)))
    print("(the issue's target: under 30 s and under 100 MB peak RSS over 1,000,000 alerts)")
    print(table(("command", "seconds", "peak RSS MB", "exit", "lines out"), rows))
    if opened is None:
        print("--since 1h: strace not available, the files opened were not checked")
    else:
        wrong = too_old(opened, older, alerts_dir, hour_ago)
        print("--since 1h opened %s; older days' files opened: %s" % (
            ", ".join(os.path.relpath(p, alerts_dir) for p in opened) or "none",
            ", ".join(wrong) or "none"))
        if wrong:
            sys.exit("tools/bench.py: fleet --since 1h opened older files: %s" % wrong)
    return rows


def too_old(opened, older, alerts_dir, hour_ago):
    """The files of *opened* that ``--since 1h`` had no need of: the past
    days' (*older*) but the day an hour ago fell in, which it needs just
    after midnight."""
    needed = day_path(alerts_dir, hour_ago)
    return [path for path in opened if path in older and path not in (needed, needed + ".gz")]


def _gz_size(path):
    size = 0
    with gzip.open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                return size
            size += len(chunk)
