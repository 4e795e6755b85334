"""What every backend shares: its tools, one way to run them with one
timeout, the words of an outcome, and one way to read a tool's answer.

A backend module defines ``Backend(base.Backend)`` with:

``settings``
    ``{key: (default, parser)}``: its own keys in the configuration file's
    ``[firewall-drop]`` section, read as attributes of the same names.
``versions``
    ``{tool: args}`` that make its tools print their versions (``ossec-ar
    status``), and ``down``, what it means when that call fails (or None).
``add(address)``, ``delete(address)``
    Change the firewall; ``(status, detail)``, status one of the words
    below, detail where, for the log.  A failure raises ``exits.Stop``; a
    delete where our layout does not exist is NOT_BLOCKED, never a failure.
``delete_stock(address, places)`` (optional)
    Lift the stock scripts' blocks of *address* that ``ossec-ar adopt``
    recorded at *places* outside our layout (``INPUT``, ``stock``);
    ``stock_members(version)`` lists them for ``adopt``: {address: [places]}.
``members(version)``
    The addresses of that family held in our layout, for ``ossec-ar list``;
    :class:`Broken` where the layout is there but does not hold them.
``inactive(address)`` (optional)
    Why the firewall is not enabled, or None; asked before an add only (a
    disabled firewall's tables can still be emptied).

``missing`` comes from the registry line (the tools, a daemon).  A call
whose answer is simple is an :class:`Op`: the argv words, and the phrases
of its answers.  Backends run under the program's lock, so they may check
and then change.
"""

from .. import exits
from ..exits import (ALREADY_BLOCKED, BLOCKED, NOT_BLOCKED, TEMPFAIL, UNBLOCKED,
                     failed)

__all__ = ["Backend", "Op", "ALREADY_BLOCKED", "BLOCKED", "NOT_BLOCKED", "UNBLOCKED",
           "repaired"]

# Seconds a tool may run beyond our own lock wait, which iptables also
# waits for its xtables lock: past that, it is killed and the run fails.
GRACE = 30


class Backend:
    settings = {}
    versions = {}
    down = None

    def __init__(self, entry, settings, tools, sysname=None):
        self.name = entry.name
        self.entry = entry
        self.tools = tools
        self.sysname = sysname          # the host's system, as uname -s says
        self.wait = settings.lock_wait
        self.timeout = settings.lock_wait + GRACE
        for key, (default, _) in self.settings.items():
            setattr(self, key, settings.option(key, default))

    def missing(self, address):
        return self.entry.missing(self.tools, address.version, self.sysname)

    def inactive(self, address):
        return None

    def delete_stock(self, address, places):
        return NOT_BLOCKED, "%s: no stock place %s" % (self.name, ", ".join(places))

    def layout_members(self, version):
        """The members of our layout alone, for ``adopt``: ``members()``,
        unless that also lists stock blocks outside it.  Addresses only:
        no stock script blocked a network, so one there is not theirs."""
        from ..address import Address
        return {member for member in self.members(version) if isinstance(member, Address)}

    def stock_members(self, version):
        """{Address: [places]} of the stock scripts' blocks outside our
        layout; {} where the stock form is our layout itself."""
        return {}

    def verify(self):
        """Check the layout whole and repair it; None, or what was done.
        For ``ossec-ar restore``: a layout no add has met since it broke."""
        return None

    def layout_state(self):
        """For ``ossec-ar status``: whether the layout an add relies on is
        whole, read without changing anything; None where nobody checks."""
        return None

    def run(self, tool, *args, input=b""):
        """A ``commands.Result``; *input* goes to the tool's stdin."""
        path = self.tools.find(tool)
        if path is None:            # only a delete over netlink gets here without it
            raise exits.failed(exits.UNAVAILABLE, self.tools.not_found(tool))
        return self.tools.run([path] + list(args), self.timeout, input)

    def check(self, tool, *args, input=b"", harmless=()):
        """Like :meth:`run`, but a failure stops the run with exit 75, unless
        the output says one of the *harmless* phrases."""
        result = self.run(tool, *args, input=input)
        if not result.ok and not _says(result, harmless):
            raise failed(TEMPFAIL, result.describe())
        return result

    def sort(self, result, success, answers=()):
        """What the tool's *result* means.

        *answers* are ``(outcome, phrases)`` pairs, tried in order: the
        first outcome whose phrase the output contains (a status word, or a
        function of the backend and the result, which may raise).  Otherwise
        *success* when the tool succeeded, and exit 75 with its words when
        it failed.
        """
        for outcome, phrases in answers:
            if _says(result, phrases):
                return outcome(self, result) if callable(outcome) else outcome
        if result.ok:
            return success
        raise failed(TEMPFAIL, result.describe())


class Broken(exits.Stop):
    """Raised by ``members()`` where our layout exists but does not hold
    its elements as blocks (a set not of our making, a match gone): ``ossec-ar
    list`` then calls the blocks the ledger puts there "unknown", never "in
    force", and notes *reason*."""

    def __init__(self, reason):
        exits.Stop.__init__(self, TEMPFAIL, "failed", reason)


class Op:
    """One call whose answer is enough: its tool, its argv words (formatted
    with ``{address}`` and the backend's attributes), what success means,
    and its other answers (see :meth:`Backend.sort`)."""

    def __init__(self, tool, words, success, *answers):
        self.tool = tool
        self.words = words
        self.success = success
        self.answers = answers

    def __call__(self, backend, address):
        fields = dict(vars(backend), address=address)
        args = [word.format(**fields) for word in self.words]
        return backend.sort(backend.run(self.tool, *args), self.success, self.answers)


def repaired(parts):
    """What an add rewrote of our layout, for its outcome line, in the same
    words for every backend: `` (repaired: a, b)``, each part what was made
    or changed; "" when nothing was.  An administrator whose own rule or
    table of our name was rewritten reads it there, not only in a restore's
    notes."""
    return " (repaired: %s)" % ", ".join(parts) if parts else ""


def _says(result, phrases):
    return any(phrase in result.output for phrase in phrases)


def addresses(texts, version):
    """The single addresses of *version* among *texts*, written bare or with
    a full-length prefix as the tools list them.  Networks (we never add
    one) and anything else are skipped."""
    from ..address import host
    found = set()
    for text in texts:
        address = host(text)
        if address is not None and address.version == version:
            found.add(address)
    return found


def blocks(texts, version, widest=None):
    """Like :func:`addresses`, and for IPv6 also the networks written
    ``2001:db8:1:2::/64`` (``ipv6_prefix``'s blocks), as Prefix: a
    network is never taken for the address it starts with.  One wider
    than ``ipv6_prefix`` can block (a /*widest*, by default /48) is an
    administrator's, and left out."""
    from ..address import WIDEST_PREFIX, parse_prefix
    widest = WIDEST_PREFIX if widest is None else widest
    found = addresses(texts, version)
    if version == 6:
        found.update(prefix for prefix in map(parse_prefix, texts)
                     if prefix is not None and prefix.length >= widest)
    return found


def unusable(backend, result):
    """The tool says this kernel cannot do it: ``auto`` tries the next."""
    raise exits.Unusable("%s: %s" % (backend.name, result.describe()))
