"""tcp_wrappers itself as the judge: Debian's tcpdmatch and tcpdchk (the
tcpd package, which tools/setup installs) run over the hosts.allow and
hosts.deny of one directory (their -d option reads ./hosts.allow and
./hosts.deny), through libwrap's own parser."""

import os
import subprocess
import tempfile

CLIENTS = ["10.0.0.1", "10.0.0.2", "10.0.0.9", "192.0.2.7"]
DAEMONS = ["sshd", "in.telnetd"]


def _run(argv, directory):
    result = subprocess.run(argv, cwd=directory, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert result.returncode == 0, (argv, result)
    return result.stdout.decode("ascii", "backslashreplace")


def verdict(directory, daemon, client):
    """'granted' or 'denied', as tcpdmatch predicts it."""
    last = _run(["tcpdmatch", "-d", daemon, client], directory).splitlines()[-1].split()
    assert last[0] == "access:" and last[1] in ("granted", "denied"), last
    return last[1]


def verdicts(directory, clients=CLIENTS, daemons=DAEMONS):
    return {(daemon, client): verdict(directory, daemon, client)
            for daemon in daemons for client in clients}


def rules(directory):
    """The rules tcpdchk -v reads, in order, each as (file, daemons,
    clients, access): the line numbers left out, so that a rule keeps its
    identity when lines are inserted before it."""
    found = []
    for block in _run(["tcpdchk", "-d", "-v"], directory).split(">>> Rule ")[1:]:
        head, *fields = block.strip("\n").split("\n")
        values = dict(field.split(":", 1) for field in fields if ":" in field)
        found.append((head.split()[0], values.get("daemons", "").strip(),
                      values.get("clients", "").strip(), values.get("access", "").strip()))
    return found


def judge(files, clients, daemon="sshd"):
    """({client: verdict}, rules) of tcp_wrappers files given as {name:
    bytes} (``hosts.deny``, ``hosts.allow``), written to a scratch
    directory: for files that live elsewhere (a pyfakefs /etc)."""
    with tempfile.TemporaryDirectory() as directory:
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        return ({client: verdict(directory, daemon, client) for client in clients},
                rules(directory))
