#!/usr/bin/python3
"""make bench: what one firewall-drop.sh run costs, against the raw commands.

Runs as root in private network namespaces (``unshare -n``), once with
iptables-nft and once with iptables-legacy, on a copy installed by
``make install``.  Every figure of a table comes from the same run, and the
ratios are what to read: these machines are noisy.

  raw add     the iptables commands our add issues, run back to back
  ours add    firewall-drop.sh add (steady state: chain and jumps exist)
  stock add   the commands the stock scripts run for one add (OSSEC 4.x
              with its chain, and 2.8), emulated in tools/bench.py
  python      /usr/bin/python3 -IS -c pass, the interpreter alone

Then, with iptables-nft only, the scale table: for each backend, N bans
are loaded in one bulk transaction (iptables-restore, nft -f, ipset
restore; for firewalld, its permanent configuration and one reload), and
single adds through firewall-drop.sh are timed on top; each figure is the
median add at N as a ratio to the median add at N = 10.  ``--no-scale``
skips the scale table.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 40
BURST = 200
SCALE = (10, 1000, 10000, 100000)
SCALE_RUNS = 7

# Our own emulations of the commands each stock script runs for one IPv4 add
# on Linux, in order, so that their cost can be measured beside ours.
STOCK_MAIN = r"""#!/bin/sh
# OSSEC 4.x (main): dedicated chain, checked with -L and -C, no -w.
uname >/dev/null
cd "$(dirname "$0")"
name=$(basename "$0")
echo "$(date) $0 $1 $2 $3 $4 $5" >> ./active-responses.log
mkdir ./fw-lock && echo $$ > ./fw-lock/pid
/usr/sbin/iptables -n -L OSSEC >/dev/null 2>&1 || /usr/sbin/iptables -N OSSEC
/usr/sbin/iptables -C INPUT -j OSSEC >/dev/null 2>&1 || /usr/sbin/iptables -I INPUT -j OSSEC
v4=$(cat /proc/sys/net/ipv4/ip_forward)
v6=$(cat /proc/sys/net/ipv6/conf/all/forwarding)
if [ "$v4" != 0 ] || [ "$v6" != 0 ]; then
    /usr/sbin/iptables -C FORWARD -j OSSEC >/dev/null 2>&1 || /usr/sbin/iptables -I FORWARD -j OSSEC
fi
/usr/sbin/iptables -I OSSEC -s "$3" -j DROP
rm -rf ./fw-lock
"""

STOCK_28 = r"""#!/bin/sh
# OSSEC 2.8: straight into INPUT and FORWARD, IPv6 detected with grep.
uname >/dev/null
cd "$(dirname "$0")"
echo "$(date) $0 $1 $2 $3 $4 $5" >> ./active-responses.log
echo "$3" | grep -q ':' && exit 1
mkdir ./fw-lock && echo $$ > ./fw-lock/pid
/usr/sbin/iptables -I INPUT -s "$3" -j DROP
/usr/sbin/iptables -I FORWARD -s "$3" -j DROP
rm -rf ./fw-lock
"""


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        return measure(sys.argv[2], sys.argv[3], "--no-scale" not in sys.argv)
    if os.geteuid() != 0:
        sys.exit("make bench needs root (it works in private network namespaces)")
    destdir = tempfile.mkdtemp(prefix="ossec-ar-bench-")
    subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + destdir,
                    "PREFIX=/var/ossec"], check=True)
    prefix = destdir + "/var/ossec"
    os.makedirs(prefix + "/logs")
    for flavour in ("nft", "legacy"):
        mount = ""
        if flavour == "legacy":
            mount = ("mount --bind /usr/sbin/xtables-legacy-multi "
                     "/usr/sbin/xtables-nft-multi && ")
        subprocess.run(["unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
                        mount + 'exec "$@"', "sh", sys.executable, os.path.abspath(__file__),
                        "--inside", flavour, prefix] + sys.argv[1:2], check=True)
    subprocess.run(["rm", "-rf", destdir], check=True)


def timed(argv_list):
    """Wall time of running each argv in turn (one 'operation')."""
    start = time.perf_counter()
    for argv in argv_list:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    return time.perf_counter() - start


def address(n):
    return "10.%d.%d.%d" % (n >> 16 & 255, n >> 8 & 255, n & 255)


def measure(flavour, prefix, with_scale):
    program = prefix + "/active-response/bin/firewall-drop.sh"
    stock_main = script(prefix, "stock-main.sh", STOCK_MAIN)
    stock_28 = script(prefix, "stock-28.sh", STOCK_28)
    ipt = "/usr/sbin/iptables"
    subprocess.run([program, "add", "-", "10.255.255.254"], check=True)   # the layout
    raw_add, ours_add, raw_del, ours_del, python = [], [], [], [], []
    main_add, old_add = [], []
    for n in range(1, RUNS + 1):
        a, b = address(n), address(n + 100000)
        raw_add.append(timed([[ipt, "-w", "60", "-S"],
                              [ipt, "-w", "60", "-A", "OSSEC", "-s", a, "-j", "DROP"]]))
        ours_add.append(timed([[program, "add", "-", b, "1.1", "1"]]))
        raw_del.append(timed([[ipt, "-w", "60", "-S"],
                              [ipt, "-w", "60", "-D", "OSSEC", "-s", a, "-j", "DROP"]]))
        ours_del.append(timed([[program, "delete", "-", b, "1.1", "1"]]))
        main_add.append(timed([[stock_main, "add", "-", a, "1.1", "1"]]))
        subprocess.run([ipt, "-w", "-D", "OSSEC", "-s", a, "-j", "DROP"], check=True)
        old_add.append(timed([[stock_28, "add", "-", a, "1.1", "1"]]))
        for chain in ("INPUT", "FORWARD"):
            subprocess.run([ipt, "-w", "-D", chain, "-s", a, "-j", "DROP"], check=True)
        python.append(timed([["/usr/bin/python3", "-IS", "-c", "pass"]]))
    burst = burst_of_adds(program)
    base = statistics.median(raw_add)
    rows = [("raw add (iptables -S, -A)", raw_add), ("ours add", ours_add),
            ("raw delete (iptables -S, -D)", raw_del), ("ours delete", ours_del),
            ("stock 4.x-style add", main_add), ("stock 2.8-style add", old_add),
            ("python3 -IS -c pass", python)]
    version = subprocess.run([ipt, "-V"], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
    print("\n%s, median of %d runs; ratio = median / raw add" % (version, RUNS))
    print("%-30s %10s %8s" % ("operation", "ms", "ratio"))
    for name, samples in rows:
        median = statistics.median(samples)
        print("%-30s %10.2f %8.2f" % (name, median * 1000, median / base))
    print("%-30s %10.2f %8.2f   (%d concurrent adds, wall time; ratio to %d raw adds)"
          % ("burst of %d adds" % BURST, burst * 1000, burst / (BURST * base), BURST, BURST))
    ours = statistics.median(ours_add)
    print("ours add / stock 4.x-style add: %.2f;  ours add / stock 2.8-style add: %.2f"
          % (ours / statistics.median(main_add), ours / statistics.median(old_add)))
    if flavour == "nft" and with_scale:
        scale(prefix, program)


def fill_iptables(n):
    lines = ["*filter", ":OSSEC - [0:0]"]
    lines += ["-A OSSEC -s %s/32 -j DROP" % address(i) for i in range(n)]
    feed(["/usr/sbin/iptables-restore", "-w", "--noflush"], "\n".join(lines + ["COMMIT", ""]))


def fill_nftables(n):
    subprocess.run(["/usr/sbin/nft", "flush set inet ossec v4"], check=True)
    elements = ", ".join(address(i) for i in range(n))
    feed(["/usr/sbin/nft", "-f", "-"], "add element inet ossec v4 { %s }\n" % elements)


def fill_ipset(n):
    subprocess.run(["/usr/sbin/ipset", "flush", "ossec4"], check=True)
    feed(["/usr/sbin/ipset", "restore", "-exist"],
         "".join("add ossec4 %s\n" % address(i) for i in range(n)))


def feed(argv, text):
    subprocess.run(argv, input=text.encode(), check=True)


def scale(prefix, program):
    config = os.path.join(prefix, "etc", "ossec-ar.conf")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    # (backend, bulk fill, how to empty it again so the next row starts clean)
    fills = (("iptables", fill_iptables, ["/usr/sbin/iptables", "-w", "-F", "OSSEC"]),
             ("nftables", fill_nftables, ["/usr/sbin/nft", "flush set inet ossec v4"]),
             ("ipset", fill_ipset, ["/usr/sbin/ipset", "flush", "ossec4"]))
    print("\nscale: one add after N bans, median of %d adds, as a ratio to N = %d"
          % (SCALE_RUNS, SCALE[0]))
    print("%-10s" % "backend" + "".join("%14s" % ("N=%d" % n) for n in SCALE)
          + "%14s" % "ms at N=10")
    fresh = 1 << 22
    for backend, fill, empty in fills:
        with open(config, "w") as f:
            f.write("[firewall-drop]\nbackend = %s\n" % backend)
        subprocess.run([program, "add", "-", "10.255.255.253"], check=True)  # the layout
        medians = []
        for n in SCALE:
            fill(n)
            times = []
            for _ in range(SCALE_RUNS):
                fresh += 1
                times.append(timed([[program, "add", "-", address(fresh), "1.1", "1"]]))
            medians.append(statistics.median(times))
        subprocess.run(empty, check=True)
        print("%-10s" % backend + "".join("%14.2f" % (m / medians[0]) for m in medians)
              + "%14.2f" % (medians[0] * 1000))
    scale_firewalld(config, program, fresh)
    os.unlink(config)


FIREWALLD_RELOAD_LIMIT = 600


def running_entries(cmd):
    result = subprocess.run(cmd + ["--ipset=ossec4", "--get-entries"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return len(result.stdout.split()) if result.returncode == 0 else -1


def scale_firewalld(config, program, fresh):
    """The same for firewalld, started here (we are in private mount and
    network namespaces) with its own D-Bus and a scratch /etc/firewalld.
    Entries go in through the permanent configuration and one reload."""
    if not shutil.which("firewalld"):
        print("firewalld  (not installed: skipped)")
        return
    etc = tempfile.mkdtemp(prefix="ossec-ar-bench-firewalld-")
    shutil.rmtree(etc)
    shutil.copytree("/etc/firewalld", etc, symlinks=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", "/run"], check=True)
    os.makedirs("/run/dbus")
    subprocess.run(["mount", "--bind", etc, "/etc/firewalld"], check=True)
    daemons = subprocess.Popen(
        ["sh", "-c", "dbus-daemon --system --nofork --nopidfile & "
         "while [ ! -S /run/dbus/system_bus_socket ]; do sleep 0.05; done; "
         "exec firewalld --nofork --nopid --log-target file --log-file /run/fw.log"],
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        cmd = ["/usr/bin/firewall-cmd"]
        while subprocess.run(cmd + ["--state"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            time.sleep(0.2)
        with open(config, "w") as f:
            f.write("[firewall-drop]\nbackend = firewalld\n")
        subprocess.run([program, "add", "-", "10.255.255.253"], check=True)  # the layout
        medians, loaded, reloads = [], 0, []
        for n in SCALE:
            entries = "/run/entries"
            with open(entries, "w") as f:
                f.write("".join("%s\n" % address(i) for i in range(loaded, n)))
            subprocess.run(cmd + ["--permanent", "--ipset=ossec4",
                                  "--add-entries-from-file=" + entries],
                           check=True, stdout=subprocess.DEVNULL)
            # firewall-cmd gives up after D-Bus's 25 s reply timeout, while
            # firewalld goes on reloading: wait for the running ipset instead.
            start = time.monotonic()
            subprocess.run(cmd + ["--reload"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            while running_entries(cmd) < n:
                if time.monotonic() - start > FIREWALLD_RELOAD_LIMIT:
                    print("firewalld  reload with %d entries still unfinished after %d s:"
                          " stopped here" % (n, FIREWALLD_RELOAD_LIMIT))
                    break
                time.sleep(2)
            reloads.append("%d: %.0f s" % (n, time.monotonic() - start))
            if running_entries(cmd) < n:
                break
            loaded = n
            times = []
            for _ in range(SCALE_RUNS):
                fresh += 1
                times.append(timed([[program, "add", "-", address(fresh), "1.1", "1"]]))
            medians.append(statistics.median(times))
        print("%-10s" % "firewalld" + "".join("%14.2f" % (m / medians[0]) for m in medians)
              + "".join("%14s" % "-" for _ in SCALE[len(medians):])
              + "%14.2f" % (medians[0] * 1000))
        print("firewalld reload after the bulk load, by N: " + ", ".join(reloads))
    finally:
        os.killpg(daemons.pid, signal.SIGKILL)
        daemons.wait()
        subprocess.run(["umount", "/etc/firewalld"], check=False)
        subprocess.run(["umount", "/run"], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def script(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def burst_of_adds(program):
    start = time.perf_counter()
    procs = [subprocess.Popen([program, "add", "-", address(200000 + n), "1.1", "1"])
             for n in range(BURST)]
    if any(p.wait() for p in procs):
        sys.exit("a process of the burst failed")
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
