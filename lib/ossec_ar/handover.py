"""Removal strands no ban: ``ossec-ar hand-over``.

When ossec-ar is removed (``dpkg -r``, ``rpm -e``, ``make uninstall``; not
on an upgrade), the names execd runs go back to the stock scripts that
``stocknames`` kept as ``<name>.stock``.  The deletes that execd has still
to send for our blocks will then run those scripts, which know nothing of
our layouts: a block left in ``table inet ossec`` would stay until reboot.
So, before the files go, each block that the ledger holds in force is

- **handed over**: put in the form that the restored stock script's delete
  lifts, when that script is one we recognise (``KNOWN``):

  ========================  ===================================================
  OSSEC 2.8.3               ``-s IP -j DROP`` in INPUT and FORWARD (iptables,
                            ip6tables for IPv6)
  OSSEC 3.7.0 to 4.2.0      the same in INPUT, and in FORWARD when forwarding
                            is on (their delete touches FORWARD only then)
  OSSEC main (7f06fe0)      ``-s IP -j DROP`` in chain OSSEC, jumped to from
                            INPUT and FORWARD
  route-null.sh             a ``reject`` route (net-tools' ``route add IP
                            reject``), IPv4 only
  host-deny.sh              the hosts.deny line, which is already the stock
                            form (2.8.3's: IPv4 only)
  ========================  ===================================================

- or **lifted**, when no stock script will be restored under a name that
  may send its delete, when one of them is not a script we recognise, or
  when they lift different forms.

Then our layouts are removed whole (``table inet <nft_table>``, the ipsets
and their iptables rules, our iptables chain and its jumps, the routes of
our protocol number, firewalld's permanent ipsets of ours), which lifts
what was not handed over, and the ledger records a delete for each block.
Our chain is kept when the stock script restored is main's and the chain
is its ``OSSEC``: it is then that script's own chain.

A stock script is recognised by its code: the SHA-256 of its lines, each
stripped, without blank lines and comments (so that a changed comment or
indentation does not matter, and any other change does).

Which names may send a block's delete: execd runs the executables that
``etc/shared/ar.conf`` lists (``<command> - <executable> - <timeout>``,
written by the manager).  firewall-drop.sh and firewall-drop may have made
a block in any backend; nftables-drop.sh, firewalld-drop.sh and route-null
only in their own.  Without ar.conf every name that may have made it is
counted, so that nothing is handed to a form that one of them cannot lift.

The stock forms are Linux's: elsewhere every firewall block is lifted
through the backends' own deletes (their layouts stay, empty).  Nothing is
done, nor logged, for a prefix where no program of ours ever ran (no state
directory): ``make uninstall`` of a fresh install touches no firewall.
"""

import hashlib
import os
import stat
import tempfile

from . import address as addresses
from . import atomicfile, backends, hostsfile, ledger, log, nfnetlink, safefile, state, system
from .backends.iptables import HOOKS, TOOLS, Table, _drop_rule
from .exits import TEMPFAIL, UNAVAILABLE, Stop, failed
from .firewall import BACKEND_OF_NAME
from .stocknames import LINKS, NAMES_OF_PROGRAM, STOCK_SUFFIX

AR_CONF = os.path.join("etc", "shared", "ar.conf")
_SCRIPT_LIMIT = 1 << 20
_FORWARDING = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


class Form:
    """What a stock script's delete lifts: *kind* is how it is made
    (iptables, route, hosts), *versions* the families it can lift."""

    def __init__(self, key, kind, label, versions=(4, 6), forward=None, chain=None):
        self.key = key
        self.kind = kind
        self.label = label
        self.versions = versions
        self.forward = forward          # iptables: "always", "when on", or None (chain)
        self.chain = chain

    def tools(self, version):
        """The tools that make this form, and that the stock delete runs."""
        if self.kind == "iptables":
            return (TOOLS[version],)
        if self.kind == "route":
            return ("ip", "route")
        return ()


FORMS = {form.key: form for form in (
    Form("hooks", "iptables", "-s IP -j DROP in INPUT and FORWARD", forward="always"),
    Form("hooks-when-forwarding", "iptables",
         "-s IP -j DROP in INPUT, and FORWARD when forwarding is on", forward="when on"),
    Form("chain", "iptables", "-s IP -j DROP in chain OSSEC", chain="OSSEC"),
    Form("reject-route", "route", "reject route", versions=(4,)),
    Form("hosts", "hosts", "its hosts.deny line, as it is"),
    Form("hosts-ipv4", "hosts", "its hosts.deny line, as it is", versions=(4,)),
)}

# The code digests (see code_digest) of the stock scripts we recognise, and
# the form each one's delete lifts.  The scripts are in tests' vendored
# copies; test_handover.py checks each digest against them.
KNOWN = {
    # firewall-drop.sh: OSSEC 2.8.3; 3.7.0 and 4.2.0 (the same code);
    # main at 7f06fe0 (OSSEC_FW_CHAIN, which execd never sets, is OSSEC).
    "c835f72ecc357f3769b066d4aac28be457de9bf5e2113ca2b6c0d458a95e3ff0":
        ("hooks", "OSSEC 2.8.3"),
    "93763836685e7ff9d944dfcc28360f9014be06f5783831fcd660e1a244cdd8e6":
        ("hooks-when-forwarding", "OSSEC 3.7.0 to 4.2.0"),
    "1235afb0108dff798fc58fddc12260447ff7135147999fafc456063c7901d7b4":
        ("chain", "OSSEC main"),
    # route-null.sh of OSSEC (7f06fe0): route add|del IP reject, on Linux.
    "50e6cea95a33ef6b5d86cd2efbad60a86241e9e4c3f671bd8e5158e60e1dbc60":
        ("reject-route", "OSSEC"),
    # host-deny.sh: 2.8.3 refuses an address without a dot (IPv6), and its
    # delete (``TMP_FILE = ...``, a command, not an assignment) empties
    # hosts.deny whole: its own bug, which lifts our lines with the rest.
    "d18839147e699ca07fd7052c4c59cb41f17af7e269a2d542efe38be276aa63b4":
        ("hosts-ipv4", "OSSEC 2.8.3"),
    # 3.7.0, 4.2.0 and main: ALL:IP, ALL:[IPv6].
    "2b0222d78b10f203154ee70c5de2675458c2119423a4d3f68f53b8c92b65cdda":
        ("hosts", "OSSEC 3.7.0 to main"),
}

_PROGRAM_FILES = {"firewall-drop": "ossec-ar-firewall-drop", "host-deny": "ossec-ar-host-deny"}


def code_digest(data):
    """SHA-256 of a script's code: its lines stripped, blank lines and
    comment lines (the shebang too) left out."""
    lines = [line.strip() for line in data.split(b"\n")]
    code = [line for line in lines if line and not line.startswith(b"#")]
    return hashlib.sha256(b"\n".join(code)).hexdigest()


def restored(bindir, name):
    """The file that will be under *name* once our links are gone, as
    ``stocknames.restore`` leaves it (the .deb's diversions do the same):
    the kept ``<name>.stock`` where the name is our link, else what is
    there (a stock file written over our link stays).  None: nothing."""
    path = os.path.join(bindir, name)
    stock = path + STOCK_SUFFIX
    if os.path.islink(path) and os.readlink(path) == LINKS[name]:
        return stock if os.path.lexists(stock) else None
    if os.path.lexists(path):
        return path
    return stock if os.path.lexists(stock) else None


def recognise(path):
    """(Form, which stock script) that the script at *path* lifts, or None.
    Opened without waiting (a FIFO there would block us for ever), and
    only a regular file is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = b""
        while len(data) <= _SCRIPT_LIMIT:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > _SCRIPT_LIMIT:
        return None
    known = KNOWN.get(code_digest(data))
    return (FORMS[known[0]], known[1]) if known else None


def names_in_use(prefix):
    """The executables that execd runs (etc/shared/ar.conf, which the
    agent's group may write: read as every such file is), or None when it
    cannot be read."""
    try:
        data, _ = safefile.read_file(os.path.join(prefix, AR_CONF), _SCRIPT_LIMIT)
    except OSError:
        return None
    if data is None:
        return None
    found = set()
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(" - ")
        if len(fields) >= 3:
            found.add(fields[1].strip())
    return found


def _stem(name):
    return name[:-3] if name.endswith(".sh") else name


def could_have_made(program, backend, settings):
    """The names of *program* that may have made a block of *backend*:
    firewall-drop.sh and firewall-drop any (route only where the
    configuration chooses it: auto never does), a name of one firewall
    only its own; every name for a backend we do not know."""
    names = list(NAMES_OF_PROGRAM[_PROGRAM_FILES[program]])
    if program != "firewall-drop" or backend not in backends.REGISTRY:
        return names
    general = [n for n in names if _stem(n) not in BACKEND_OF_NAME]
    own = [n for n in names if BACKEND_OF_NAME.get(_stem(n)) == backend]
    if backend == "route" and settings.backend != "route":
        return own
    return general + own


# The decisions

class Report:
    """What one program's hand-over does: {(names, form key): [Address]}
    handed over, {reason: [Address]} lifted."""

    def __init__(self, program):
        self.program = program
        self.handed = {}
        self.lifted = {}
        self.notes = []
        self.removed = []
        self.descriptions = {}          # (names, form key) -> "firewall-drop.sh (OSSEC 2.8.3)"
        self.blocks = []                # [(Address, [backends])] the ledger holds as ours
        self.left = []                  # [Address] it holds as someone else's (found)
        self.adopted = {}               # {Address: [stock places]} it holds as adopted
        self.prefixes = {}              # {Address: [Prefix]} its blocks of IPv6 prefixes
        self.lifted_set = set()

    def count(self, table):
        return sum(len(found) for found in table.values())

    def line(self, dry_run=False):
        handed, lifted = self.count(self.handed), self.count(self.lifted)
        text = "%s: %d handed over" % (self.program, handed)
        if handed:
            text += " (%s)" % "; ".join(
                "%d to %s: %s" % (len(found), self.descriptions[key], FORMS[key[1]].label)
                for key, found in self.handed.items())
        text += ", %d lifted" % lifted
        if lifted:
            text += " (%s)" % "; ".join("%d: %s" % (len(found), reason)
                                        for reason, found in self.lifted.items())
        return text + (" (dry run: nothing changed)" if dry_run else "")

    def data(self):
        return {"program": self.program,
                "handed_over": [{"to": self.descriptions[key], "form": FORMS[key[1]].label,
                                 "addresses": [a.text for a in found]}
                                for key, found in self.handed.items()],
                "lifted": [{"reason": reason, "addresses": [a.text for a in found]}
                           for reason, found in self.lifted.items()],
                "layouts_removed": self.removed, "notes": self.notes}


class Decider:
    """Where each block of one program goes, from the scripts that will be
    restored in *bindir* and the names execd runs."""

    def __init__(self, program, settings, sysname, tools, bindir, in_use):
        self.program = program
        self.settings = settings
        self.sysname = sysname
        self.tools = tools
        self.bindir = bindir
        self.in_use = in_use
        self._forms = {}

    def form_of(self, name):
        if name not in self._forms:
            path = restored(self.bindir, name)
            self._forms[name] = (path, recognise(path) if path else None)
        return self._forms[name]

    def decide(self, address, held):
        """((names, form key), description) to hand over to, or (None, reason)."""
        names = []
        for backend in held or ["-"]:
            names += [n for n in could_have_made(self.program, backend, self.settings)
                      if n not in names]
        if self.in_use is not None:
            names = [n for n in names if n in self.in_use]
            if not names:
                return None, "no name that may have made it is in %s" % AR_CONF
        forms = {}
        for name in names:
            path, found = self.form_of(name)
            if path is None:
                return None, "no stock %s will be restored" % name
            if found is None:
                return None, "the %s to be restored is not a stock script we know" % name
            forms[name] = found
        if len({form.key for form, _ in forms.values()}) > 1:
            return None, "the stock scripts that may delete it (%s) lift different forms" % (
                ", ".join(names))
        form, which = forms[names[0]]
        if form.kind != "hosts" and self.sysname != "Linux":
            return None, "the stock scripts' firewall forms are Linux's only"
        if address.version not in form.versions:
            return None, "%s (%s) cannot lift an IPv%d address" % (names[0], which,
                                                                  address.version)
        for tool in form.tools(address.version):
            if self.tools.find(tool) is None:
                return None, "%s, which %s needs, is not here" % (tool, names[0])
        return (tuple(names), form.key), "%s (%s)" % (", ".join(names), which)


def in_force(prefix, program):
    """([(Address, [backends of our blocks of it since its last delete, the
    latest first])] of the blocks the ledger holds, {Address: [stock
    places]} of the stock blocks outside our layout it holds as adopted, a
    place once for each copy (``iptables:INPUT`` gives INPUT), {Address:
    [Prefix]} of the IPv6 prefixes its blocks of ours hold (``ipv6_prefix``),
    and notes on what was skipped), from one reading of the ledger.  A
    block someone else made (``found``) has no backends: it is not ours to
    hand over or lift."""
    notes = []
    records, skipped = ledger.read_trusted(prefix, program, notes)
    notes += ["ledger: skipped line %d: %s" % (number, reason) for number, reason in skipped]
    blocks, places, prefixes = [], {}, {}
    for text, entries in ledger.standing(records).items():
        try:
            address = addresses.parse(text, lifting=True)
        except Stop as stop:
            notes.append("ledger: record for %s skipped: %s" % (text, stop.reason))
            continue
        ours = [entry for entry in reversed(entries) if entry.op in ledger.OURS]
        blocks.append((address, ledger.backends_of(ours)))
        held = {entry.prefix for entry in ours if entry.prefix != "-"}
        if held:
            prefixes[address] = sorted(filter(None, map(addresses.parse_prefix, held)))
        stock = [ledger.split_where(entry.backend)[1] for entry in entries
                 if entry.op == "adopt"]
        if any(stock):
            places[address] = [place for place in stock if place]
    return sorted(blocks, key=lambda item: item[0]), places, prefixes, notes


# The command

def hand_over(host, dry_run=False):
    """([Report] of each program, whether a program of ours ever ran here).
    Each program's part runs under its lock: no run of it changes the
    firewall or the ledger meanwhile."""
    prefix = host.prefix
    if not os.path.isdir(os.path.join(prefix, state.NAME)):
        return [Report(program.name) for program in host.programs], False
    bindir = os.path.join(prefix, "active-response", "bin")
    in_use = names_in_use(prefix)
    reports = []
    for program in host.programs:
        decider = Decider(program.name, host.settings, host.system.name, host.system.tools,
                          bindir, in_use)
        if dry_run:
            reports.append(_decide(program, decider))
            continue
        with program.lock():
            report = _decide(program, decider)
            _carry_out(host, program, decider, report)
            _record_deletes(prefix, program, report)
        reports.append(report)
    if not dry_run:
        _forget_adoption(prefix)
    return reports, True


def _forget_adoption(prefix):
    """What was handed over is in the stock forms again: an install after
    this removal adopts it anew (``adopt``), so the mark of the last
    adoption goes."""
    from .adopt import MARKER
    try:
        os.unlink(os.path.join(prefix, state.NAME, MARKER))
    except FileNotFoundError:
        pass


def _carry_out(host, program, decider, report):
    if program.name == "host-deny":
        _lift_from_hosts_file(program, report)      # a handed-over line stays
    elif host.system.name == "Linux":
        firewall = LinuxFirewall(host.settings, host.system.tools, host.system.name,
                                 os.path.join(host.prefix, state.NAME))
        firewall.adopted = report.adopted
        firewall.hand_over(report)          # first, so that no block pauses
        report.removed = firewall.remove_layouts(_keeps_chain(decider, firewall), report)
    else:
        for address, _ in report.blocks:      # nothing is handed over here
            program.unblock(address, ledger.adds_in_force(program.prefix, program.name,
                                                          address))


def _decide(program, decider):
    report = Report(program.name)
    blocks, report.adopted, report.prefixes, report.notes = in_force(program.prefix,
                                                                    program.name)
    report.blocks = [(address, held) for address, held in blocks if held]
    report.left = [address for address, held in blocks if not held]
    for address, held in report.blocks:
        if address in report.prefixes:
            key, why = None, "an IPv6 prefix (ipv6_prefix): no stock script lifts one"
        else:
            key, why = decider.decide(address, held)
        if key is None:
            report.lifted.setdefault(why, []).append(address)
        else:
            report.handed.setdefault(key, []).append(address)
            report.descriptions[key] = why
    report.lifted_set = {a for found in report.lifted.values() for a in found}
    return report


def _keeps_chain(decider, firewall):
    """Whether our chain is the restored main script's own: its name is
    OSSEC and firewall-drop.sh (or firewall-drop) will be main's."""
    if firewall.ipt.chain != FORMS["chain"].chain:
        return False
    names = could_have_made("firewall-drop", "iptables", decider.settings)
    for name in names:
        if decider.in_use is not None and name not in decider.in_use:
            continue
        path, found = decider.form_of(name)
        if found and found[0].key == "chain":
            return True
    return False


def _lift_from_hosts_file(program, report):
    """The lines of the lifted blocks out of hosts.deny, in one replace."""
    if not report.lifted_set:
        return
    style = program.style
    path = atomicfile.resolve(style.path)
    data = atomicfile.read(path)
    prefixes = {prefix for address in report.lifted_set
                for prefix in report.prefixes.get(address, ())}
    data, removed = hostsfile.delete_each(data, sorted(report.lifted_set) + sorted(prefixes),
                                          style)
    if removed:
        atomicfile.replace(path, data)


def _record_deletes(prefix, program, report):
    """One delete record for each block, in one write: the ledger holds
    nothing in force afterwards (a reinstall starts from what is there)."""
    now = ledger.now()
    lines = []
    for key, found in report.handed.items():
        where = "handed over to " + ", ".join(key[0])
        lines += [ledger.Record(now, "delete", program.name, a.text, where).line()
                  for a in found]
    lines += [ledger.Record(now, "delete", program.name, a.text, program.where_deleted).line()
              for a in sorted(report.lifted_set)]
    # Someone else's blocks stay where they are; the ledger forgets them.
    lines += [ledger.Record(now, "delete", program.name, a.text, "left, not ours").line()
              for a in report.left]
    if not lines:
        return
    try:
        path = ledger.ledger_path(prefix, program.name)
        ledger.adopt_legacy(prefix, program.name, path)
        ledger.append(path, "".join(lines).encode())
    except OSError as error:
        report.notes.append("ledger not written: %s" % error.strerror)


class LinuxFirewall:
    """The stock forms made, and our layouts removed, with the backends'
    own tools and settings (names of the table, sets, chain, protocol)."""

    def __init__(self, settings, tools, sysname, state_dir):
        self.tools = tools
        self.adopted = {}                   # {Address: [stock places]}: Report.adopted
        self.state_dir = state_dir          # root's alone: for a list of entries

        def load(name):
            return backends.load(name, settings, tools, sysname)
        self.ipt, self.nft, self.ipset, self.route = (
            load("iptables"), load("nftables"), load("ipset"), load("route"))
        self.firewalld = load("firewalld")

    # The stock forms

    def hand_over(self, report):
        routes = []
        for (names, key), found in report.handed.items():
            form = FORMS[key]
            if form.kind == "iptables":
                for version in (4, 6):
                    picked = [a for a in found if a.version == version]
                    if picked:
                        self._iptables_form(form, version, picked)
            elif form.kind == "route":
                routes += found
        if routes:
            self._reject_routes(routes)

    def _iptables_form(self, form, version, found):
        """Each address once more in each chain the stock delete lifts it
        from (its delete removes one copy), inserted at the top as the stock
        add does, unless the copy there is ours already (adopted): an
        administrator's identical rule stays beside ours, and stays after
        the stock delete."""
        table = Table(self.ipt, TOOLS[version])
        rules = table.rules()
        if form.chain:
            if form.chain not in rules:
                table.change("-N", form.chain)
                rules[form.chain] = []
            jump = ["-j", form.chain]
            for hook in HOOKS:
                if jump not in rules.get(hook, ()):
                    table.change("-I", hook, "1", *jump)
            chains = (form.chain,)
        elif form.forward == "always" or forwarding():
            chains = HOOKS
        else:
            chains = ("INPUT",)
        for address in found:
            drop = _drop_rule(address)
            ours = self.adopted.get(address, ())
            for chain in chains:
                there = drop in rules.get(chain, [])
                if not (there and (chain in ours or chain == form.chain)):
                    table.change("-I", chain, "1", *drop)

    def _reject_routes(self, found):
        """route-null.sh's route for each address (``route add IP reject``:
        unreachable, scope host, protocol boot), replacing ours in one step
        (the kernel keeps one route per prefix).  A route of another kind
        that is not ours (the administrator's) stays as it is."""
        listing = self.route.run("ip", "-4", "route", "show", "table", "main")
        if not listing.ok:
            raise failed(TEMPFAIL, listing.describe())
        there = {}
        for line in listing.output.splitlines():
            words = line.split()
            if not words:
                continue
            kind, destination = (words[0], words[1]) if words[0] in _ROUTE_TYPES else (
                "unicast", words[0])
            proto = words[words.index("proto") + 1] if "proto" in words else "boot"
            there.setdefault(destination.replace("/32", ""), (kind, proto))
        ours = ("blackhole", str(self.route.route_proto))
        lines = ["route replace unreachable %s/32 table main proto boot scope host\n" % a
                 for a in found if there.get(a.text, ours) == ours]
        self._ip_batch("-4", lines)

    def _ip_batch(self, family, lines):
        """``ip -batch -`` in pieces that fit the tools' input limit."""
        from .commands import MAX_INPUT
        while lines:
            piece = ""
            while lines and len(piece) + len(lines[0]) <= MAX_INPUT:
                piece += lines.pop(0)
            result = self.route.run("ip", family, "-batch", "-", input=piece.encode())
            if not result.ok:
                raise failed(TEMPFAIL, result.describe())

    # Our layouts

    def remove_layouts(self, keep_chain, report):
        """Remove every layout of ours on this host; what was removed."""
        removed = []
        removed += self._remove_nftables()
        firewalld_runs = system.daemon_running("firewalld")
        for version in (4, 6):
            if self.tools.find(TOOLS[version]) is not None:
                removed += self._remove_from_iptables(version, keep_chain, report)
        removed += self._remove_ipsets(firewalld_runs)
        removed += self._remove_routes(report)
        removed += self._remove_firewalld(firewalld_runs)
        return removed

    def _remove_nftables(self):
        name = self.nft.nft_table
        if self.tools.find("nft") is None:
            try:
                present = nfnetlink.table_flags(name) is not None
            except nfnetlink.NetlinkError:
                present = False
            if present:
                raise failed(UNAVAILABLE, "nftables table inet %s is there and nft is not: "
                             "install nft, or delete the table, then remove again" % name)
            return []
        result = self.nft.run("nft", "delete table inet %s" % name)
        if result.ok:
            return ["nftables table inet %s" % name]
        if any(phrase in result.output for phrase in _NFT_NOTHING):
            return []
        raise failed(TEMPFAIL, result.describe())

    def _remove_from_iptables(self, version, keep_chain, report):
        """The ipset backend's rules in INPUT and FORWARD (its set of
        prefixes' too), the stock form's rules of the lifted blocks there
        (as our delete removes them), then our chain and its jumps (or,
        where the chain is main's, the lifted blocks' rules in it, a
        prefix's included)."""
        removed = []
        table = Table(self.ipt, TOOLS[version])
        rules = table.rules()
        for name, _ in self.ipset.layout_sets(version):
            match = self.ipset._rule(name)
            for hook in HOOKS:
                for _ in range(rules.get(hook, []).count(match)):
                    table.change("-D", hook, *match)
                    removed.append("%s rule for ipset %s in %s" % (table.tool, name, hook))
        chain = self.ipt.chain
        # The lifted addresses, then the prefixes their blocks held (which
        # only our chain can hold: no stock script blocked one).
        prefixes = {prefix for address in report.lifted_set
                    for prefix in report.prefixes.get(address, ())}
        for address in sorted(report.lifted_set) + sorted(prefixes):
            if address.version != version:
                continue
            drop = _drop_rule(address)
            ours = [hook for hook in self.adopted.get(address, ()) if hook in HOOKS]
            for hook in HOOKS + ((chain,) if keep_chain else ()):
                # Our copies: each one adopted there, or ours in the kept chain.
                count = ours.count(hook) if hook in HOOKS else 1
                for _ in range(min(count, rules.get(hook, []).count(drop))):
                    table.change("-D", hook, *drop)
        if chain not in rules or keep_chain:
            return removed
        jump = ["-j", chain]
        for hook, hook_rules in sorted(rules.items()):
            for _ in range(hook_rules.count(jump)):
                table.change("-D", hook, *jump)
        table.change("-F", chain)
        table.change("-X", chain)
        return removed + ["%s chain %s" % (table.tool, chain)]

    def _remove_ipsets(self, firewalld_runs):
        """Our sets, unless firewalld runs: sets of those names are then
        its own (our firewalld layout's)."""
        if self.tools.find("ipset") is None or firewalld_runs:
            return []
        removed = []
        for name, _ in self.ipset.layout_sets(4) + self.ipset.layout_sets(6):
            result = self.ipset.run("ipset", "destroy", name)
            if result.ok:
                removed.append("ipset %s" % name)
            elif not any(phrase in result.output for phrase in _IPSET_NOTHING):
                raise failed(TEMPFAIL, result.describe())
        return removed

    def _remove_routes(self, report):
        """Every route of our protocol, and the stock reject routes of the
        lifted blocks (as our delete removes them)."""
        if self.tools.find("ip") is None:
            return []
        removed = []
        proto = str(self.route.route_proto)
        for family in ("-4", "-6"):
            before = self.route.run("ip", family, "route", "show", "table", "main",
                                    "proto", proto)
            result = self.route.run("ip", family, "route", "flush", "table", "main",
                                    "proto", proto)
            if not result.ok and not any(p in result.output for p in _ROUTE_NOTHING):
                raise failed(TEMPFAIL, result.describe())
            if before.ok and before.output.strip():
                removed.append("IPv%s routes of protocol %s" % (family[1], proto))
        lifted = {a.text for a in report.lifted_set
                  if a.version == 4 and "stock" in self.adopted.get(a, ())}
        if lifted:
            stock = self.route.run("ip", "-4", "route", "show", "table", "main", "type",
                                   "unreachable", "proto", "boot", "scope", "host")
            there = [line.split()[1] for line in stock.output.splitlines()
                     if stock.ok and len(line.split()) > 1]
            self._ip_batch("-4", ["route del unreachable %s/32 table main proto boot scope "
                                  "host\n" % address for address in there
                                  if address in lifted])
        return removed

    def _remove_firewalld(self, runs):
        """Our ipsets' entries out of the running firewalld, and the ipsets
        and their binding to the drop zone out of its permanent
        configuration (no reload: that would throw away every runtime
        rule; the emptied runtime ipsets go at the next one).  Where
        firewalld is not running, firewall-offline-cmd edits the permanent
        configuration, whose entries would come back at its next start."""
        from .backends.firewalld import ZONE
        removed = []
        if runs and self.tools.find("firewall-cmd"):
            tool = ["firewall-cmd"]
        elif self.tools.find("firewall-offline-cmd"):
            tool = ["firewall-offline-cmd"]
        else:
            return []
        for name in self.firewalld.layout_names():
            if tool == ["firewall-cmd"]:
                self._empty_runtime_ipset(name)
                permanent = ["--permanent"]
            else:
                permanent = []
                if not os.path.exists("/etc/firewalld/ipsets/%s.xml" % name):
                    continue
            self.firewalld.check(*(tool + permanent + ["--zone=" + ZONE,
                                                       "--remove-source=ipset:" + name]),
                                 harmless=("NOT_ENABLED", "INVALID_IPSET", "UNKNOWN_SOURCE"))
            result = self.firewalld.check(*(tool + permanent + ["--delete-ipset=" + name]),
                                          harmless=("INVALID_IPSET",))
            if result.ok:
                removed.append("firewalld ipset %s" % name)
        return removed

    def _empty_runtime_ipset(self, name):
        result = self.firewalld.run("firewall-cmd", "--ipset=" + name, "--get-entries")
        entries = result.output.split() if result.ok else []
        if not entries:
            return
        # The entries go through a file: one call, whatever their number.
        with tempfile.NamedTemporaryFile("w", prefix="entries-", dir=self.state_dir) as listing:
            listing.write("\n".join(entries) + "\n")
            listing.flush()
            self.firewalld.check("firewall-cmd", "--ipset=" + name,
                                 "--remove-entries-from-file=" + listing.name)


_ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw", "local",
                "broadcast", "multicast", "anycast", "nat")
_NFT_NOTHING = ("No such file or directory", "Protocol not supported",
                "Operation not supported")
_IPSET_NOTHING = ("does not exist", "Protocol not supported",
                  "Cannot open session to kernel")
_ROUTE_NOTHING = ("FIB table does not exist", "Address family not supported")


def forwarding():
    """Whether the 3.7.0 to 4.2.0 scripts touch FORWARD: one of the two
    forwarding switches is not 0 (a missing one counts as 0, as there)."""
    for path in _FORWARDING:
        try:
            with open(path) as f:
                if f.read().strip() != "0":
                    return True
        except OSError:
            continue
    return False


def result_text(reports, ran, dry_run):
    """One line per program, then a line for each note (a damaged ledger
    line, a record that is no address)."""
    lines = [report.line(dry_run) for report in reports]
    if not ran:
        lines = [line + " (no program of ours ran here)" for line in lines]
    lines += ["note: %s: %s" % (report.program, log.printable(note))
              for report in reports for note in report.notes]
    return "\n".join(lines)

