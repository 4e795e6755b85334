#!/usr/bin/python3
"""make bench: our installed programs against the real stock scripts.

Ours: installed by ``make install`` (PREFIX=/var/ossec under a scratch
DESTDIR), once for each backend, so that each install's
``etc/ossec-ar.conf`` can choose one (``auto`` for the auto rows).  Each
run is ``<prefix>/active-response/bin/firewall-drop.sh`` (or host-deny.sh)
with cwd ``/`` and an environment of PATH only, as execd gives; every run's
outcome line in its log is checked against what the operation must say
(blocked, already blocked, unblocked, was not blocked), and the bench stops
if it does not.

Stock: the scripts in ``tests/vendor/stock-ar/<version>/``, each checked
against ``tests/vendor/SHA256SUMS`` (a file that differs is refused) and copied
to ``<scratch>/stock-<version>/active-response/bin/`` (their log is then
``<scratch>/stock-<version>/logs/active-responses.log``, the path they
derive from $0) and run from ``<scratch>/stock-<version>/cwd``, where their
``mkdir $PWD/fw-drop`` lock lands.  Every ratio is ours / stock 4.2.0.

Everything runs as root in private namespaces: network (one per side, so
that each side holds only its own N bans), mount (a copy of /etc bound
over /etc, a tmpfs on /run: no xtables lock, D-Bus or firewalld of the
machine's), and pid (no process of the machine's is seen).  One pass runs
with iptables-nft, one with iptables-legacy (bound over xtables-nft-multi).
IP forwarding is off in every namespace (the kernel's default for a new
one), so stock 4.2.0 touches INPUT only.

A block is one number N of bans: each side gets N bans loaded in bulk in
its own layout (iptables-restore, nft -f, ipset restore; firewalld: its
permanent configuration and one reload), then the sides take turns, one
round at a time (ours auto, ours iptables, ..., stock, ours auto, ...):
add a fresh address, add it again (a present address), delete it; then,
in rounds of their own, delete an address that is absent.  Figures are
medians.  Slow sides run fewer rounds (spread over the block, at least
--min-runs, within --budget seconds each), and stock 4.2.0's delete of an
absent address, which retries for about 15 s, runs --absent-runs times at
10 bans and once at larger N; the runs column says how many each median
has.  Stock's add of a present address inserts a second rule and its
delete removes one, so each stock round leaves one rule more than it found.

The fleet rows (issue 21, tools/bench_fleet.py): ``ossec-ar fleet`` over
1,000,000 alerts of a manager, its wall time and peak RSS, and the files
that ``--since 1h`` opens.

The IPv6 prefix rows (issue 22), ours against ours: the add of a fresh
IPv6 address with ``ipv6_prefix = 64`` (its /64 blocked, a fresh one each
time) against the add of one with the default 128, nftables, at 10 and
10,000 IPv6 bans of each kind loaded in bulk, the two taking turns round by
round; each add's delete runs untimed so that N stays N.

The protections (issue 20) have rows of their own, ours against ours: the
add and delete of an unprotected address on a small host (a veth to a
gateway in a namespace of its own, a default route through it for each
family, a resolv.conf, the agent's ossec.conf naming a manager), on the
same with 100,000 IPv4 routes more, and on the same with 5,000 addresses
of each family more on its interface, the three taking turns round by
round; each large host's median is given as a ratio to the small one's.
"""

import argparse
import collections
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import vendored  # noqa: E402  (tests/vendored.py: the vendored files and their checksums)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_fleet  # noqa: E402  (the fleet rows: ossec-ar fleet on a manager's alerts)

STOCK_DIR = vendored.STOCK_DIR
REFERENCE = "4.2.0"
OTHER_STOCK = ("2.8.3", "main-7f06fe0")
BACKENDS = ("auto", "iptables", "nftables", "ipset")
SCALE = (10, 1000, 10000, 100000)
HOSTS_DENY_LINES = (10, 10000)
# The 50 addresses stay banned (above the 10) while the 200 come and go.
BURSTS = (("add", 50), ("add", 200), ("delete", 200))
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# The protections' rows: the large hosts, and the backend they use.
PROTECT_ROUTES = 100000
PROTECT_ADDRESSES = 5000        # of each family
PROTECT_BACKEND = "nftables"
# The prefix rows: the IPv6 bans, and the backend they use.
PREFIX_SCALE = (10, 10000)
PREFIX_BACKEND = "nftables"
BURST_LIMIT = 300           # seconds a stock burst may take before it is stopped
FIREWALLD_RELOAD_LIMIT = 600

# (operation, action, the status our outcome line must give)
OPERATIONS = (("add", "add", "blocked"),
              ("add present", "add", "already blocked"),
              ("delete", "delete", "unblocked"),
              ("delete absent", "delete", "was not blocked"))
ROUND = OPERATIONS[:3]      # one address: add, add again, delete
ABSENT = OPERATIONS[3:]


def options(argv):
    parser = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30,
                        help="rounds per block: the most runs of each operation (30)")
    parser.add_argument("--min-runs", type=int, default=3,
                        help="the fewest runs of a slow side's operation (3)")
    parser.add_argument("--budget", type=float, default=15.0,
                        help="seconds a side may spend on a block's rounds before it "
                             "runs fewer of them (15)")
    parser.add_argument("--absent-runs", type=int, default=3,
                        help="runs of stock's 15 s delete of an absent address at 10 bans "
                             "(3; once at larger N)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each block this many times; the ratio column then "
                             "gives each repetition's ratio (1)")
    parser.add_argument("--no-scale", action="store_true",
                        help="10 bans only (host-deny keeps both sizes: it is quick)")
    parser.add_argument("--no-firewalld", action="store_true", help="skip the firewalld rows")
    parser.add_argument("--firewalld-max", type=int, default=SCALE[-1],
                        help="the largest N for firewalld (%d): its bulk load and "
                             "reload take about a minute at 100,000" % SCALE[-1])
    parser.add_argument("--no-bursts", action="store_true", help="skip the bursts")
    parser.add_argument("--no-fleet", action="store_true",
                        help="skip the fleet rows (ossec-ar fleet over 1,000,000 alerts)")
    parser.add_argument("--only-fleet", action="store_true",
                        help="the fleet rows only")
    parser.add_argument("--no-protections", action="store_true",
                        help="skip the protections' rows (an add on a small host against "
                             "one with %s routes, one with %s addresses of each family)"
                        % ("{:,}".format(PROTECT_ROUTES), "{:,}".format(PROTECT_ADDRESSES)))
    parser.add_argument("--no-prefix", action="store_true",
                        help="skip the IPv6 prefix rows (the add with ipv6_prefix = 64 "
                             "against the add of an address alone)")
    parser.add_argument("--flavours", default="nft,legacy",
                        help="iptables flavours to run, in order (nft,legacy); the bursts, "
                             "host-deny, the protections and firewalld run in the first only")
    parser.add_argument("--stock", default=STOCK_DIR,
                        help="where the stock scripts are, one directory per version "
                             "(tests/vendor/stock-ar); each must be the file that "
                             "tests/vendor/SHA256SUMS lists for its version")
    parser.add_argument("--inside", nargs=3, metavar=("FLAVOUR", "SCRATCH", "FIRST"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.flavours = [f for f in args.flavours.split(",") if f]
    if not set(args.flavours) <= {"nft", "legacy"} or not args.flavours:
        parser.error("--flavours takes nft, legacy or both")
    return args


# ---------------------------------------------------------------- outside

def main(argv):
    args = options(argv)
    if args.inside:
        return inside(args)
    if os.geteuid() != 0:
        sys.exit("make bench needs root (it works in private namespaces)")
    started = time.monotonic()
    print_machine()
    scratch = tempfile.mkdtemp(prefix="ossec-ar-bench-")
    try:
        if not args.only_fleet:
            firewalls(scratch, args, argv)
        if not args.no_fleet:
            bench_fleet.run(install(scratch, "fleet", "auto"), scratch, table, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nmake bench took %.0f s" % (time.monotonic() - started))


def firewalls(scratch, args, argv):
    """The programs' rows, in private namespaces, one pass per flavour."""
    prepare(scratch, args)
    for index, flavour in enumerate(args.flavours):
        mount = ""
        if flavour == "legacy":
            mount = ("mount --bind /usr/sbin/xtables-legacy-multi "
                     "/usr/sbin/xtables-nft-multi && ")
        inner = [sys.executable, os.path.abspath(__file__), "--inside", flavour, scratch,
                 "yes" if index == 0 else "no"] + argv
        subprocess.run(["unshare", "--net", "--mount", "--propagation", "private",
                        "--pid", "--fork", "--mount-proc",
                        "sh", "-c", mount + 'exec "$@"', "sh"] + inner, check=True)


def print_machine():
    def first_line(argv):
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True).stdout
        except OSError as error:
            return "(%s)" % error.strerror
        return out.strip().splitlines()[0] if out.strip() else "?"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print("machine: Linux %s, %d CPUs, load average %s" % (
        platform.release(), os.cpu_count(), load))
    print("python: bench %s; ours run by /usr/bin/python3 -IS (%s)" % (
        platform.python_version(), first_line(["/usr/bin/python3", "--version"])))
    print("tools: %s; %s; %s; firewalld %s" % (
        first_line(["/usr/sbin/iptables", "-V"]), first_line(["/usr/sbin/nft", "-v"]),
        first_line(["/usr/sbin/ipset", "-v"]),
        first_line(["dpkg-query", "-W", "-f", "${Version}", "firewalld"])))


def prepare(scratch, args):
    stock_dir = args.stock
    """Our installs (one per backend) and the stock copies, in scratch."""
    backends = list(BACKENDS) + ([] if args.no_firewalld else ["firewalld"])
    for backend in backends:
        install(scratch, backend, backend)
    if not args.no_prefix:
        for length in (64, 128):
            install(scratch, "prefix%d" % length, PREFIX_BACKEND,
                    "ipv6_prefix = %d\n" % length)
    if not args.no_protections:
        prefix = install(scratch, "protect", PROTECT_BACKEND)
        with open(os.path.join(prefix, "etc", "ossec.conf"), "w") as f:
            f.write(AGENT_CONF)
    if not os.path.isfile(os.path.join(stock_dir, REFERENCE, "firewall-drop.sh")):
        print("STOCK SCRIPTS ABSENT: %s not found; measuring our own rows only, "
              "with no ratio" % os.path.join(stock_dir, REFERENCE))
        return
    print("stock: %s (reference %s)" % (stock_dir, REFERENCE))
    for version in (REFERENCE,) + OTHER_STOCK:
        source = os.path.join(stock_dir, version)
        if not os.path.isdir(source):
            print("stock %s: not found in %s, left out" % (version, stock_dir))
            continue
        home = os.path.join(scratch, "stock-" + version)
        bin_dir = os.path.join(home, "active-response", "bin")
        os.makedirs(bin_dir)
        os.makedirs(os.path.join(home, "logs"))
        os.makedirs(os.path.join(home, "cwd"))
        for name in ("firewall-drop.sh", "host-deny.sh"):
            copy = os.path.join(bin_dir, name)
            shutil.copyfile(os.path.join(source, name), copy)
            os.chmod(copy, 0o750)
            # The copy that runs is the one checked: a file that is not the
            # release its row names is refused.
            try:
                vendored.verify(copy, "stock-ar/%s/%s" % (version, name))
            except vendored.Mismatch as error:
                sys.exit("tools/bench.py: %s" % error)


def install(scratch, name, backend, extra=""):
    """Our install in <scratch>/ours-<name>, configured for *backend* and
    the [firewall-drop] lines *extra*: its prefix."""
    destdir = os.path.join(scratch, "ours-" + name)
    subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + destdir,
                    "PREFIX=/var/ossec"], check=True, stdout=subprocess.DEVNULL)
    prefix = destdir + "/var/ossec"
    for sub in ("logs", "etc"):
        os.makedirs(os.path.join(prefix, sub), mode=0o750, exist_ok=True)
    config = os.path.join(prefix, "etc", "ossec-ar.conf")
    with open(config, "w") as f:
        f.write("[firewall-drop]\nbackend = %s\n%s" % (backend, extra))
    os.chmod(config, 0o640)
    return prefix


# ---------------------------------------------------------------- inside

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def new_netns():
    """A fresh network namespace, as a descriptor (the process ends up in it)."""
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    return os.open("/proc/self/ns/net", os.O_RDONLY)


def enter(netns):
    if libc.setns(netns, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET)")


def inside(args):
    flavour, scratch, first = args.inside
    first = first == "yes"
    private_run_and_etc(scratch)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    stock_present = os.path.isdir(os.path.join(scratch, "stock-" + REFERENCE))
    version = run_out(["/usr/sbin/iptables", "-V"]).strip()
    progress("%s: the layouts" % version)
    addresses = Addresses()
    ours = [Ours(b, scratch, new_netns()) for b in BACKENDS]
    stock = Stock(REFERENCE, scratch, new_netns()) if stock_present else None
    others = [Stock(v, scratch, new_netns()) for v in OTHER_STOCK
              if stock_present and os.path.isdir(os.path.join(scratch, "stock-" + v))]
    enter(home)
    for side in ours + others:
        side.make_layout(addresses)
    scale = (SCALE[0],) if args.no_scale else SCALE
    rows, notes, extra, by_n = [], [], None, {}
    for n in scale:
        progress("%s: %s bans" % (version, grouped(n)))
        sides = ours + ([stock] if stock else []) + (others if n == SCALE[0] else [])
        for side in sides:
            side.fill(n, addresses)
        absent_runs = {side: 0 for side in others}
        if stock:
            absent_runs[stock] = args.absent_runs if n == SCALE[0] else 1
        block = measure(sides, args, absent_runs, addresses)
        by_n[n] = block
        for side in ours:
            rows += comparison_rows("%s, %s bans" % (side.label(), grouped(n)),
                                    block, side, stock)
        if others and n == SCALE[0]:
            extra = others_table(block, ours[0], stock, others)
        if first and n == SCALE[0] and not args.no_bursts:
            progress("%s: bursts" % version)
            rows += bursts(ours[0], stock, addresses, notes)
    if first:
        progress("%s: host-deny" % version)
        rows += host_deny(ours[0], scratch, stock, args, addresses, notes)
    widened = None
    if first and not args.no_prefix:
        progress("%s: IPv6 prefixes" % version)
        widened = prefix_rows(scratch, args)
        enter(home)
    guarded = None
    if first and not args.no_protections:
        progress("%s: protections" % version)
        guarded = protections(scratch, args, addresses)
    enter(home)
    if first and not args.no_firewalld and flavour == "nft":
        progress("%s: firewalld" % version)
        rows += firewalld(scratch, stock, args, addresses, scale, by_n, notes)
    print("\n==== %s ====" % version)
    if not stock:
        print("STOCK SCRIPTS ABSENT (%s): our own rows only, no ratio" % args.stock)
    print("ratio = ours / stock %s (medians, ms); runs = ours/stock%s" % (
        REFERENCE, "; one ratio per repetition" if args.repeat > 1 else ""))
    print("(fewer than %d runs: a slow side within its %g s budget, or stock's 15 s "
          "delete absent)" % (args.runs, args.budget))
    print(table(("operation", "ours ms", "stock %s ms" % REFERENCE, "ratio", "runs"), rows))
    for note in notes:
        print(note)
    if extra:
        print("\nthe other stock versions, in the same 10-ban block (medians, ms)")
        print(extra)
    if len(scale) > 1:
        print("\nours at N bans / ours at 10 bans, %s (the issue's target: 100,000 within 1.2)"
              % version)
        print(scale_table(ours, by_n, scale))
    if widened:
        print("\nIPv6 prefixes, ours %s: the add of a fresh IPv6 address with ipv6_prefix = 64 "
              "(a fresh /64) / with 128, in the same rounds (medians, ms; the issue's target: "
              "within 1.1)" % PREFIX_BACKEND)
        print(widened)
    if guarded:
        print("\nprotections, ours %s: the add (protections checked) and delete (none) of an "
              "unprotected address\non a large host / on the small host, in the same rounds "
              "(medians, ms; the issue's target: the add within 1.2)" % PROTECT_BACKEND)
        print(guarded)
    sys.stdout.flush()
    return 0


def progress(text):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def private_run_and_etc(scratch):
    """A tmpfs on /run and a copy of /etc over /etc, in our mount namespace."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "bench-run", "/run"], check=True)
    etc = os.path.join(tempfile.mkdtemp(prefix="etc-", dir=scratch), "etc")
    subprocess.run(["cp", "-a", "/etc", etc], check=True)
    # /etc/ossec-ar.conf would override each install's own configuration.
    if os.path.lexists(os.path.join(etc, "ossec-ar.conf")):
        os.unlink(os.path.join(etc, "ossec-ar.conf"))
        print("(the machine's /etc/ossec-ar.conf is left out of the bench's copy of /etc)")
    subprocess.run(["mount", "--bind", etc, "/etc"], check=True)


def run_out(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, universal_newlines=True,
                          check=True, **kwargs).stdout


def feed(argv, text):
    subprocess.run(argv, input=text.encode(), check=True, stdout=subprocess.DEVNULL)


def grouped(n):
    return "{:,}".format(n)


class Addresses:
    """Distinct IPv4 addresses: bulk bans 10.0.0.0/8 by index, fresh ones
    from 172.16.0.0/12, absent ones (never added) from 198.18.0.0/15."""

    def __init__(self):
        self.fresh_count = 0
        self.absent_count = 0

    @staticmethod
    def ban(i):
        return "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)

    def fresh(self):
        self.fresh_count += 1
        return self._host(0xAC100000, self.fresh_count)

    def absent(self):
        self.absent_count += 1
        return self._host(0xC6120000, self.absent_count)

    @staticmethod
    def _host(base, k):
        # 254 hosts per /24: no .0 or .255.
        value = base + (k // 254 << 8) + k % 254 + 1
        return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


class Side:
    """One program run in its own network namespace."""
    expected_rc = {"add": (0,), "delete": (0,)}

    def __init__(self, netns):
        self.netns = netns

    def run(self, action, address):
        enter(self.netns)
        start = time.perf_counter()
        done = subprocess.run([self.program, action, "-", address, "1.1", "1"],
                              cwd=self.cwd, env=ENV, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        if done.returncode not in self.expected_rc[action]:
            sys.exit("%s %s %s: exit %d" % (self.name, action, address, done.returncode))
        return elapsed

    def check(self, action, address, status):
        pass

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")


class Ours(Side):
    def __init__(self, backend, scratch, netns, program="firewall-drop.sh", name=None):
        super().__init__(netns)
        self.backend = backend
        self.prefix = os.path.join(scratch, "ours-" + (name or backend), "var", "ossec")
        self.program = os.path.join(self.prefix, "active-response", "bin", program)
        self.log = os.path.join(self.prefix, "logs", "active-responses.log")
        self.cwd = "/"
        self.name = "ours " + backend
        self.layout = None

    def label(self):
        if self.backend == "auto":
            return "auto (%s)" % self.layout
        return self.backend

    def check(self, action, address, status):
        found = outcome(last_line(self.log), action, address)
        if found != status:
            sys.exit("%s %s %s: the log says %r, not %r:\n%s" % (
                self.name, action, address, found, status, last_line(self.log)))

    def make_layout(self, addresses):
        """One add makes our layout; the log says which one it is."""
        sentinel = addresses.fresh()
        self.run("add", sentinel)
        self.layout = outcome_detail(last_line(self.log), "add", sentinel, "blocked")
        if self.backend not in ("auto", self.layout):
            sys.exit("%s: configured %s, the log says %s" % (self.name, self.backend,
                                                             self.layout))
        self.run("delete", sentinel)
        self.check("delete", sentinel, "unblocked")

    def fill(self, n, addresses):
        enter(self.netns)
        bans = [addresses.ban(i) for i in range(n)]
        if self.layout == "iptables":
            subprocess.run(["/usr/sbin/iptables", "-w", "-F", "OSSEC"], check=True)
            feed(["/usr/sbin/iptables-restore", "-w", "--noflush"],
                 "*filter\n" + "".join("-A OSSEC -s %s/32 -j DROP\n" % a for a in bans)
                 + "COMMIT\n")
        elif self.layout == "nftables":
            subprocess.run(["/usr/sbin/nft", "flush set inet ossec v4"], check=True)
            feed(["/usr/sbin/nft", "-f", "-"],
                 "add element inet ossec v4 { %s }\n" % ", ".join(bans))
        elif self.layout == "ipset":
            subprocess.run(["/usr/sbin/ipset", "flush", "ossec4"], check=True)
            feed(["/usr/sbin/ipset", "restore", "-exist"],
                 "".join("add ossec4 %s\n" % a for a in bans))
        else:
            sys.exit("%s: no bulk load for the %s layout" % (self.name, self.layout))


class Stock(Side):
    def __init__(self, version, scratch, netns, program="firewall-drop.sh"):
        super().__init__(netns)
        self.version = version
        home = os.path.join(scratch, "stock-" + version)
        self.program = os.path.join(home, "active-response", "bin", program)
        self.log = os.path.join(home, "logs", "active-responses.log")
        self.cwd = os.path.join(home, "cwd")
        self.name = "stock " + version

    def make_layout(self, addresses):
        # main-7f06fe0 makes its OSSEC chain and INPUT's jump on its first add.
        sentinel = addresses.fresh()
        self.run("add", sentinel)
        self.run("delete", sentinel)

    def fill(self, n, addresses):
        """N bans in the script's own layout: INPUT (4.2.0, forwarding off),
        INPUT and FORWARD (2.8.3, which ignores forwarding), its OSSEC chain
        (main-7f06fe0)."""
        enter(self.netns)
        chains = {"2.8.3": ("INPUT", "FORWARD"), "main-7f06fe0": ("OSSEC",)}.get(
            self.version, ("INPUT",))
        lines = ["*filter"]
        for chain in chains:
            subprocess.run(["/usr/sbin/iptables", "-w", "-F", chain], check=True)
            lines += ["-A %s -s %s/32 -j DROP" % (chain, addresses.ban(i)) for i in range(n)]
        feed(["/usr/sbin/iptables-restore", "-w", "--noflush"], "\n".join(lines + ["COMMIT", ""]))


def last_line(path):
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 8192))
        lines = f.read().decode("utf-8", "replace").splitlines()
    return lines[-1] if lines else ""


def outcome(line, action, address):
    """The status of our outcome line for this action and address, or None."""
    marker = ": %s %s: " % (action, address)
    if marker not in line:
        return None
    rest = line.split(marker, 1)[1]
    for end in (": ", " (exit"):
        rest = rest.split(end, 1)[0]
    return rest


def outcome_detail(line, action, address, status):
    """The first word of the outcome's detail: the backend that did it."""
    marker = ": %s %s: %s: " % (action, address, status)
    if marker not in line:
        sys.exit("no outcome line %r in the log: %s" % (marker, line))
    return line.split(marker, 1)[1].split()[0]


# ---------------------------------------------------------------- measuring

def participates(round_index, wanted, rounds):
    """Whether a side that runs `wanted` of `rounds` rounds runs this one:
    exactly `wanted` rounds, the first included, spread evenly."""
    return (round_index * wanted // rounds) != ((round_index - 1) * wanted // rounds)


def runs_for(first_round_seconds, args, most):
    if first_round_seconds <= 0:
        return most
    return max(min(args.min_runs, most), min(most, int(args.budget / first_round_seconds)))


def measure(sides, args, absent_runs, addresses):
    """{(side, operation): [samples of repetition 1, of repetition 2, ...]}"""
    samples = collections.defaultdict(list)
    for _ in range(args.repeat):
        got = collections.defaultdict(list)
        rounds_of(sides, ROUND, args, {}, addresses, got)
        rounds_of(sides, ABSENT, args, absent_runs, addresses, got)
        for key, values in got.items():
            samples[key].append(values)
    return samples


def rounds_of(sides, operations, args, fixed, addresses, got):
    """Rounds of the operations on one address per side and round; the first
    round of each side sets how many it runs (within the budget)."""
    wanted = dict(fixed)
    for index in range(args.runs):
        for side in sides:
            if side in wanted and not participates(index, wanted[side], args.runs):
                continue
            address = addresses.absent() if operations is ABSENT else addresses.fresh()
            spent = 0.0
            for name, action, status in operations:
                seconds = side.run(action, address)
                side.check(action, address, status)
                got[side, name].append(seconds)
                spent += seconds
            if side not in wanted:
                wanted[side] = runs_for(spent, args, args.runs)


def median(values):
    return statistics.median(values) if values else None


def pooled(samples):
    return [v for repetition in samples for v in repetition]


def comparison_rows(prefix, block, ours, stock):
    rows = []
    for name, _, _ in OPERATIONS:
        mine = block.get((ours, name), [])
        theirs = block.get((stock, name), []) if stock else []
        rows.append(comparison_row("%s: %s" % (prefix, name), mine, theirs))
    return rows


def comparison_row(label, mine, theirs):
    """A row from per-repetition samples of both sides."""
    ours_ms, stock_ms = median(pooled(mine)), median(pooled(theirs))
    if ours_ms is None or stock_ms is None:
        ratio = "-"
    elif len(mine) > 1:
        ratio = " ".join(format_ratio(median(a) / median(b)) for a, b in zip(mine, theirs))
    else:
        ratio = format_ratio(ours_ms / stock_ms)
    runs = "%s/%s" % (len(pooled(mine)), len(pooled(theirs)) if theirs else "-")
    return (label, format_ms(ours_ms), format_ms(stock_ms), ratio, runs)


def format_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return "%.0f" % ms if ms >= 1000 else "%.1f" % ms


def format_ratio(ratio):
    return "%.2f" % ratio if ratio >= 0.1 else "%.2g" % ratio


def table(header, rows):
    """Plain text with | between columns, a Markdown table as it stands."""
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]

    def line(cells):
        out = [str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
               for i, cell in enumerate(cells)]
        return " | ".join(out).rstrip()
    rule = " | ".join(("-" * widths[0],) + tuple("-" * (w - 1) + ":" for w in widths[1:]))
    return "\n".join([line(header), rule] + [line(row) for row in rows])


def others_table(block, ours, stock, others):
    header = ("operation, 10 bans", "ours %s ms" % ours.label(), "stock %s ms" % REFERENCE) + \
        tuple("stock %s ms" % side.version for side in others)
    rows = []
    for name, _, _ in ROUND:
        rows.append(("%s" % name,) + tuple(
            format_ms(median(pooled(block.get((side, name), []))))
            for side in [ours, stock] + others))
    return table(header, rows)


def scale_table(ours, by_n, scale):
    header = ("backend: operation",) + tuple("%s bans" % grouped(n) for n in scale[1:]) + \
        ("ms at 10",)
    rows = []
    for side in ours:
        for name, _, _ in OPERATIONS:
            base = median(pooled(by_n[scale[0]].get((side, name), [])))
            cells = []
            for n in scale[1:]:
                value = median(pooled(by_n[n].get((side, name), [])))
                cells.append(format_ratio(value / base) if value and base else "-")
            rows.append(("%s: %s" % (side.label(), name),) + tuple(cells) + (format_ms(base),))
    return table(header, rows)


# ---------------------------------------------------------------- bursts

def occurrences(side, addresses):
    """How many times each address is banned in the side's namespace, in
    any layout: iptables rules with -s ADDR/32, elements of any nftables
    set, entries of any ipset."""
    enter(side.netns)
    wanted = set(addresses)
    counts = collections.Counter()
    for line in run_out(["/usr/sbin/iptables-save"]).splitlines():
        words = line.split()
        if words[:1] == ["-A"] and "-s" in words:
            source = words[words.index("-s") + 1].split("/")[0]
            if source in wanted:
                counts[source] += 1
    ruleset = json.loads(run_out(["/usr/sbin/nft", "-j", "list", "ruleset"]) or "{}")
    for item in ruleset.get("nftables", []):
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, str) and element in wanted:
                counts[element] += 1
    for line in run_out(["/usr/sbin/ipset", "save"]).splitlines():
        words = line.split()
        if words[:1] == ["add"] and len(words) > 2 and words[2] in wanted:
            counts[words[2]] += 1
    return counts


def burst(side, action, addresses):
    """Wall time of one process per address, all started at once, and
    how many exited non-zero; stopped after BURST_LIMIT seconds."""
    enter(side.netns)
    start = time.perf_counter()
    procs = [subprocess.Popen([side.program, action, "-", a, "1.1", "1"], cwd=side.cwd,
                              env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for a in addresses]
    failed = stopped = 0
    for proc in procs:
        try:
            remaining = max(0.1, BURST_LIMIT - (time.perf_counter() - start))
            failed += proc.wait(timeout=remaining) != 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped += 1
    return time.perf_counter() - start, failed, stopped


def what_landed(side, action, addresses, failed, stopped):
    counts = occurrences(side, addresses)
    once = sum(1 for a in addresses if counts[a] == 1)
    more = sum(1 for a in addresses if counts[a] > 1)
    missing = sum(1 for a in addresses if counts[a] == 0)
    if action == "add":
        text = "%d of %d present once" % (once, len(addresses))
        if more:
            text += ", %d more than once" % more
        if missing:
            text += ", %d MISSING" % missing
    else:
        left = len(addresses) - missing
        text = "none left" if not left else "%d of %d STILL BANNED" % (left, len(addresses))
    if failed:
        text += ", %d exited non-zero" % failed
    if stopped:
        text += ", %d still running after %d s, killed" % (stopped, BURST_LIMIT)
    return text, (missing == 0 and more == 0) if action == "add" else missing == len(addresses)


def bursts(ours, stock, addresses, notes):
    """Concurrent runs on the 10-ban state: ours, then stock (all of its
    runs in one working directory, as execd's, so its lock is shared)."""
    rows = []
    notes.append("\nafter each burst (addresses counted in every layout of the namespace):")
    batch = {}
    for action, size in BURSTS:
        if action == "add":
            batch = {side: [addresses.fresh() for _ in range(size)]
                     for side in (ours, stock) if side}
        results = {}
        for side in (ours, stock):
            if side is None:
                continue
            offset = side.log_size()
            seconds, failed, stopped = burst(side, action, batch[side])
            text, good = what_landed(side, action, batch[side], failed, stopped)
            if side is stock:
                log = side.log_since(offset)
                for phrase in ("Killed process", "Unable kill", "Unable to run"):
                    if log.count(phrase):
                        text += "; %d '%s' lines in its log" % (log.count(phrase), phrase)
            elif not good or failed:
                text = "WRONG: " + text
            results[side] = seconds
            notes.append("  burst of %d %ss, %s: %s" % (size, action, side.name, text))
        label = "%s, 10 bans: burst of %d %ss, wall" % (ours.label(), size, action)
        rows.append(comparison_row(label, [[results[ours]]],
                                   [[results[stock]]] if stock else []))
    return rows


# ---------------------------------------------------------------- host-deny

def host_deny(ours_fw, scratch, stock_fw, args, addresses, notes):
    ours = Ours(ours_fw.backend, scratch, ours_fw.netns, program="host-deny.sh")
    stock = None
    if stock_fw:
        stock = Stock(REFERENCE, scratch, stock_fw.netns, program="host-deny.sh")
        # Its add of a present address says so and exits 1.
        stock.expected_rc = {"add": (0, 1), "delete": (0,)}
    rows = []
    for n in HOSTS_DENY_LINES:
        lines = "".join("ALL:%s\n" % addresses.ban(i) for i in range(n))
        with open("/etc/hosts.deny", "w") as f:
            f.write(lines)
        os.chmod("/etc/hosts.deny", 0o644)
        sides = [ours] + ([stock] if stock else [])
        block = measure(sides, args, {}, addresses)
        rows += comparison_rows("host-deny, %s lines" % grouped(n), block, ours, stock)
        with open("/etc/hosts.deny") as f:
            left = f.read()
        if left != lines:
            notes.append("host-deny, %s lines: hosts.deny is NOT as it was after the block "
                         "(%d lines instead of %d)" % (grouped(n), left.count("\n"), n))
    return rows


# ---------------------------------------------------------------- protections

# The agent's ossec.conf of the protections' install: a manager by address.
AGENT_CONF = """<ossec_config>
  <client>
    <server>
      <address>192.0.2.10</address>
      <port>1514</port>
      <protocol>tcp</protocol>
    </server>
  </client>
</ossec_config>
"""
RESOLV_CONF = "search bench.invalid\nnameserver 100.64.0.53\nnameserver fd00:64::53\n"
# The host's end of its link and the gateway's, for each family.
LINK = (("100.64.0.1/16", "100.64.0.254/16"), ("fd00:64::1/64", "fd00:64::fe/64"))
GATEWAYS = ("100.64.0.254", "fd00:64::fe")
GUARDED_OPERATIONS = (OPERATIONS[0], OPERATIONS[2])        # add, delete


class Unprotected:
    """Addresses that no protection covers, each used once: remote ones
    (through the default route), IPv4 and IPv6, and ones on the link."""
    KINDS = (("remote", "remote"), ("on the link", "on_link"), ("remote IPv6", "remote6"))

    def __init__(self, addresses):
        self.addresses = addresses
        self.counts = collections.Counter()

    def remote(self):
        return self.addresses.fresh()

    def on_link(self):
        self.counts["link"] += 1
        return Addresses._host(0x64400100, self.counts["link"])     # 100.64.1.1 on

    def remote6(self):
        self.counts["6"] += 1
        return "2001:db8:ac::%x" % self.counts["6"]


class Guarded(Ours):
    """Ours (the protections' install) on one host; the outcome line of
    every add must say that each protection was checked."""

    def __init__(self, host, scratch, netns):
        super().__init__(PROTECT_BACKEND, scratch, netns, name="protect")
        self.host = host

    def check(self, action, address, status):
        super().check(action, address, status)
        if "unavailable" in last_line(self.log):
            sys.exit("%s, %s: a protection was not checked:\n%s" % (
                self.name, self.host, last_line(self.log)))

    def refuses(self, address, words):
        """An add of *address* must be refused, with *words* in its reason."""
        enter(self.netns)
        done = subprocess.run([self.program, "add", "-", address, "1.1", "1"], cwd=self.cwd,
                              env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        line = last_line(self.log)
        if done.returncode != 65 or outcome(line, "add", address) != "refused" \
                or words not in line:
            sys.exit("%s, %s: the add of %s is not refused as %s (exit %d):\n%s" % (
                self.name, self.host, address, words, done.returncode, line))


def protected_host(name, extra):
    """A host in the network namespace bench-<name>, linked by a veth to
    its gateway in bench-<name>-gw: its addresses, a default route for
    each family, then the ip batch *extra*.  (descriptor, seconds *extra*
    took)."""
    host, gateway = "bench-" + name, "bench-%s-gw" % name
    for namespace in (host, gateway):
        subprocess.run(["ip", "netns", "add", namespace], check=True)
    feed(["ip", "-n", host, "-batch", "-"],
         "link set lo up\nlink add eth0 type veth peer name eth0 netns %s\n" % gateway)
    feed(["ip", "-n", gateway, "-batch", "-"],
         "link set lo up\n" + "".join("addr add %s dev eth0 nodad\n" % theirs
                                      if ":" in theirs else "addr add %s dev eth0\n" % theirs
                                      for _, theirs in LINK) + "link set eth0 up\n")
    feed(["ip", "-n", host, "-batch", "-"],
         "".join("addr add %s dev eth0 nodad\n" % mine if ":" in mine
                 else "addr add %s dev eth0\n" % mine for mine, _ in LINK)
         + "link set eth0 up\nroute add 0.0.0.0/0 via %s\nroute add ::/0 via %s\n" % GATEWAYS)
    start = time.monotonic()
    if extra:
        feed(["ip", "-n", host, "-batch", "-"], extra)
    seconds = time.monotonic() - start
    return os.open("/run/netns/" + host, os.O_RDONLY), seconds


def protections(scratch, args, addresses):
    """The add and delete of unprotected addresses on a small host, on
    one with PROTECT_ROUTES IPv4 routes more (/24s through the gateway)
    and on one with PROTECT_ADDRESSES addresses of each family more on its
    interface, round by round: the table of the large hosts' rows, each
    with its ratio to the small host's, and what the bench checked."""
    resolv = "/etc/resolv.conf"             # our copy of /etc's
    saved = resolv + ".bench-saved"
    if os.path.lexists(resolv):
        os.rename(resolv, saved)
    with open(resolv, "w") as f:
        f.write(RESOLV_CONF)
    gateway = GATEWAYS[0]
    routes = "".join("route add %d.%d.%d.0/24 via %s\n" % (20 + (i >> 16), i >> 8 & 255,
                                                            i & 255, gateway)
                     for i in range(PROTECT_ROUTES))
    own = "".join("addr add 10.200.%d.%d/32 dev eth0\n" % (i >> 8, i & 255)
                  for i in range(PROTECT_ADDRESSES)) + \
        "".join("addr add fd00:200::%x/128 dev eth0 nodad\n" % (i + 1)
                for i in range(PROTECT_ADDRESSES))
    hosts = (("small host", "small", ""),
             ("%s routes" % grouped(PROTECT_ROUTES), "routes", routes),
             ("%s addresses of each family" % grouped(PROTECT_ADDRESSES), "addresses", own))
    sides, loads = [], []
    try:
        for label, name, extra in hosts:
            netns, seconds = protected_host(name, extra)
            sides.append(Guarded(label, scratch, netns))
            if extra:
                loads.append("%s in %.1f s" % (label, seconds))
        enter(sides[1].netns)
        count = len(run_out(["ip", "-4", "route", "show"]).splitlines())
        if count < PROTECT_ROUTES:
            sys.exit("protections: %d IPv4 routes, not %d" % (count, PROTECT_ROUTES))
        enter(sides[2].netns)
        count = len(run_out(["ip", "-o", "addr", "show", "dev", "eth0"]).splitlines())
        if count < 2 * PROTECT_ADDRESSES:
            sys.exit("protections: %d addresses, not %d" % (count, 2 * PROTECT_ADDRESSES))
        unprotected = Unprotected(addresses)
        for side in sides:
            side.make_layout(addresses)
            for address in GATEWAYS:
                side.refuses(address, "default gateway")
            side.refuses("100.64.0.53", "resolver")
            side.refuses("192.0.2.10", "manager")
            side.refuses("10.200.0.7" if side is sides[2] else "100.64.0.1", "own addresses")
            enter(side.netns)
            route = run_out(["ip", "route", "get", unprotected.remote()])
            if "via %s " % gateway not in route:
                sys.exit("protections, %s: a remote address's route is %s" % (side.host, route))
        samples = guarded_rounds(sides, unprotected, args)
    finally:
        for side in sides:
            os.close(side.netns)
        for _, name, _ in hosts:
            for namespace in ("bench-" + name, "bench-%s-gw" % name):
                subprocess.run(["ip", "netns", "delete", namespace], stderr=subprocess.DEVNULL)
        os.unlink(resolv)
        if os.path.lexists(saved):
            os.rename(saved, resolv)
    return "\n".join([
        table(("host: operation, address", "ms", "small host ms", "ratio", "runs"),
              guarded_rows(sides, samples)),
        "(each host: a veth to its gateway, a default route for each family, resolv.conf "
        "and ossec.conf naming resolvers and a manager; loaded with ip -batch: %s; every "
        "host refused its gateways, a resolver, the manager and an own address)"
        % ", ".join(loads)])


def guarded_rows(sides, samples):
    """A row for each large host (the sides after the first), kind of
    address and operation, against the small host (the first side)."""
    rows = []
    for side in sides[1:]:
        for kind, _ in Unprotected.KINDS:
            for name, _, _ in GUARDED_OPERATIONS:
                rows.append(comparison_row("%s: %s, %s" % (side.host, name, kind),
                                           samples[side, kind, name],
                                           samples[sides[0], kind, name]))
    return rows


def guarded_rounds(sides, unprotected, args):
    """{(side, kind of address, operation): [samples of each repetition]}:
    in each round, every side adds and deletes an address of each kind,
    the sides in turn (whose turn is first goes round)."""
    samples = collections.defaultdict(list)
    for _ in range(args.repeat):
        got = collections.defaultdict(list)
        for index in range(args.runs):
            order = sides[index % len(sides):] + sides[:index % len(sides)]
            for kind, method in Unprotected.KINDS:
                for side in order:
                    address = getattr(unprotected, method)()
                    for name, action, status in GUARDED_OPERATIONS:
                        got[side, kind, name].append(side.run(action, address))
                        side.check(action, address, status)
        for key, values in got.items():
            samples[key].append(values)
    return samples


# ---------------------------------------------------------------- IPv6 prefixes

class Widened(Ours):
    """Ours with ipv6_prefix = *length*, adding fresh IPv6 addresses: with
    64, each in a /64 of its own (2001:db8:b:N::7), else 2001:db8:a::N."""

    def __init__(self, length, scratch):
        super().__init__(PREFIX_BACKEND, scratch, new_netns(), name="prefix%d" % length)
        self.length = length
        self.count = 0
        self.name = "ours ipv6_prefix = %d" % length

    def fresh(self):
        self.count += 1
        if self.length == 64:
            return "2001:db8:b:%x::7" % self.count
        return "2001:db8:a::%x" % self.count

    def fill(self, n, addresses):
        """N bans in the set an add uses: addresses, or /64s' first addresses."""
        enter(self.netns)
        name, form = ("v6p64", "2001:db8:c:%x::") if self.length == 64 else \
            ("v6", "2001:db8:c::%x")
        subprocess.run(["/usr/sbin/nft", "flush set inet ossec " + name], check=True)
        feed(["/usr/sbin/nft", "-f", "-"], "add element inet ossec %s { %s }\n" % (
            name, ", ".join(form % (i + 1) for i in range(n))))


def prefix_rows(scratch, args):
    """The add with ipv6_prefix = 64 against the add at 128, at each N of
    PREFIX_SCALE, round by round (whose turn is first goes round)."""
    sides = [Widened(64, scratch), Widened(128, scratch)]
    rows = []
    try:
        for side in sides:
            address = side.fresh()
            side.run("add", address)            # makes the layout (and v6p64)
            expected = ": blocked: " + ("2001:db8:b:1::/64 in " if side.length == 64
                                        else "nftables")
            if expected not in last_line(side.log):
                sys.exit("%s: the first add says %s" % (side.name, last_line(side.log)))
            side.run("delete", address)
        for n in PREFIX_SCALE:
            for side in sides:
                side.fill(n, None)
            got = collections.defaultdict(list)
            for index in range(args.runs):
                for side in sides[index % 2:] + sides[:index % 2]:
                    address = side.fresh()
                    got[side].append(side.run("add", address))
                    side.check("add", address, "blocked")
                    side.run("delete", address)
                    side.check("delete", address, "unblocked")
            rows.append(comparison_row("add, %s IPv6 bans" % grouped(n), [got[sides[0]]],
                                       [got[sides[1]]]))
    finally:
        for side in sides:
            os.close(side.netns)
    return table(("operation", "/64 ms", "/128 ms", "ratio", "runs"), rows)


# ---------------------------------------------------------------- firewalld

def firewalld(scratch, stock, args, addresses, scale, by_n, notes):
    """Ours with backend = firewalld against stock, per N, with a firewalld
    of our own (its own D-Bus on our /run, its permanent configuration in
    our copy of /etc, its own network namespace).  Last, because auto
    takes firewalld once it runs."""
    if not shutil.which("firewalld"):
        notes.append("\nfirewalld: not installed, its rows are left out")
        return []
    netns = new_netns()
    os.makedirs("/run/dbus", exist_ok=True)
    daemons = subprocess.Popen(
        ["sh", "-c", "dbus-daemon --system --nofork --nopidfile & "
         "while [ ! -S /run/dbus/system_bus_socket ]; do sleep 0.05; done; "
         "exec firewalld --nofork --log-target file --log-file /run/firewalld.log"],
        stderr=subprocess.DEVNULL, start_new_session=True)
    rows, reloads = [], []
    try:
        cmd = ["/usr/bin/firewall-cmd"]
        deadline = time.monotonic() + 120
        while subprocess.run(cmd + ["--state"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                sys.exit("firewalld did not start within 120 s (see /run/firewalld.log)")
            time.sleep(0.2)
        ours = Ours("firewalld", scratch, netns)
        ours.make_layout(addresses)
        loaded = 0
        for n in [n for n in scale if n <= args.firewalld_max]:
            start = time.monotonic()
            with open("/run/entries", "w") as f:
                f.write("".join("%s\n" % addresses.ban(i) for i in range(loaded, n)))
            subprocess.run(cmd + ["--permanent", "--ipset=ossec4",
                                  "--add-entries-from-file=/run/entries"],
                           check=True, stdout=subprocess.DEVNULL)
            # firewall-cmd gives up after D-Bus's 25 s reply timeout while
            # firewalld goes on reloading: wait for the running ipset.
            subprocess.run(cmd + ["--reload"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            while running_entries(cmd) < n:
                if time.monotonic() - start > FIREWALLD_RELOAD_LIMIT:
                    notes.append("firewalld: reload with %d entries unfinished after %d s, "
                                 "stopped there" % (n, FIREWALLD_RELOAD_LIMIT))
                    return rows
                time.sleep(1)
            reloads.append("%s: %.0f s" % (grouped(n), time.monotonic() - start))
            loaded = n
            sides = [ours]
            if stock:
                stock.fill(n, addresses)
                sides.append(stock)
            # Stock's 15 s delete of an absent address is not run again:
            # its row takes the figure of the firewall block of the same N.
            block = measure(sides, args, {stock: 0} if stock else {}, addresses)
            if stock:
                block[stock, "delete absent"] = by_n[n].get((stock, "delete absent"), [])
            rows += comparison_rows("firewalld, %s bans" % grouped(n), block, ours, stock)
        notes.append("\nfirewalld: bulk load and reload, by N: " + ", ".join(reloads))
        if stock:
            notes.append("firewalld rows, delete absent: stock's figure is the one of the "
                         "firewall block of the same N above")
    finally:
        os.killpg(daemons.pid, signal.SIGKILL)
        daemons.wait()
    return rows


def running_entries(cmd):
    result = subprocess.run(cmd + ["--ipset=ossec4", "--get-entries"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return len(result.stdout.split()) if result.returncode == 0 else -1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
