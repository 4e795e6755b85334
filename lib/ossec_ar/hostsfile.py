"""Our lines in tcp_wrappers files, and where they go.

Two styles, as the stock host-deny.sh writes them:

``hosts.deny`` (every system but FreeBSD)
    ``ALL:192.0.2.7`` or ``ALL:[2001:db8::7]``, at the end of the file
    (before its last rule if that is not ended as tcpd ends a line).
``hosts.allow`` (FreeBSD, whose tcpd reads only this file)
    ``ALL : 192.0.2.7 : deny``.  The file is first-match and FreeBSD's
    default one ends in ``ALL : ALL : allow``, so our lines go before the
    first rule of the file (after its opening comments), in the order added.

A whole IPv6 network (``ipv6_prefix``, an :class:`~ossec_ar.address.Prefix`)
is written in either style as hosts_access(5) spells one (FreeBSD's and
Debian's manual pages), the network in brackets and its length after them:
``ALL:[2001:db8:1:2::]/64``, which matches every address whose first 64 bits
are those (``[2001:db8:1:2::/64]`` would match nothing).  Such a line is read
back as that prefix, never as the address it starts with, so a prefix and
an address inside it are never taken for each other's line; and the stock
script never wrote one, so none is adopted.

The file is read as tcp_wrappers reads it (its xgets): only a newline ends
a line, so a lone CR is a byte of the line; a backslash right before the
newline joins the next line to this one, comments included (before CRLF it
does not).  A line is ours only if it is exactly one of these forms for one
address and a rule of its own: not the continuation of the line before it.
Comments, other services' lines, lines that merely contain the address and
continuation lines are the administrator's and are never touched.  One more form is removed by
a delete, but never written nor counted as a block: Wazuh's own host-deny
writes IPv6 without brackets (``ALL:2001:db8::21``, and ``ALL : 2001:db8::21
: deny`` on FreeBSD; src/active-response/host-deny.c @ v4.2.0 to v4.14.7),
which tcpd reads as other fields, so it blocks nothing, but an agent moved
from Wazuh's program to ours must not keep those lines for ever.  The file is handled as
bytes, line ends included, so every byte that is not ours stays as it was.
"""

from .address import Prefix, parse_prefix
from .address import host as literal


class Style:
    def __init__(self, path, before, after, at_top):
        self.path = path
        self._before = before        # text before the address
        self._after = after          # text after it
        self._head = before.encode("ascii")
        self._tail = after.encode("ascii")
        # A line with more colons than these has an IPv6 form for its host.
        self._colons = self._head.count(b":") + self._tail.count(b":")
        self.at_top = at_top

    def line(self, address):
        return (self._before + _host(address) + self._after).encode("ascii")

    def ours(self, data, address, bare_ipv6=False):
        """The (start, end) byte spans of the lines of ours for *address*.

        A long file is not read line by line in Python: a line of ours
        either starts with the whole line we would write, byte for byte,
        or has a colon in its host (an IPv6 form; ``::ffff:a.b.c.d`` makes
        that an IPv4 address too).  The first is found by searching the
        bytes; the second is ruled out by one pass over them, and only a
        file that has such lines is scanned line by line.
        """
        whole = self.line(address)
        if _colon_hosts(data, self._colons):
            return self._scan(data, whole, address, bare_ipv6)
        spans = []
        at = data.find(whole)
        while at >= 0:
            start = _line_start(data, at)
            end = _line_end(data, at)
            if not _continues(data, start) and self.blocks(data[start:end], address, bare_ipv6):
                spans.append((start, end))
            at = data.find(whole, end)
        return spans

    def _scan(self, data, whole, address, bare_ipv6):
        spans = []
        for start, line, continued in _physical(data):
            if (not continued and (whole in line or line.count(b":") > self._colons)
                    and self.blocks(line, address, bare_ipv6)):
                spans.append((start, start + len(line)))
        return spans

    def blocks(self, line, address, bare_ipv6=False):
        """True if *line* is one of ours for *address* (see address_of).

        Decided on the bytes where they suffice, which is for nearly every
        line of a long file: a line that does not start as ours cannot be,
        and a host with neither ``[`` nor ``:`` is an IPv4 literal, ours
        only if it is byte for byte the address's one normal form.
        """
        if not line.startswith(self._head):
            return False
        text = line.rstrip(b"\r\n \t")
        if not text.endswith(self._tail):
            return False
        host = text[len(self._head):len(text) - len(self._tail)]
        if b"[" not in host and b":" not in host:
            return host == address.text.encode("ascii")
        return self.address_of(line, bare_ipv6) == address

    def address_of(self, line, bare_ipv6=False):
        """The address a line of ours blocks (a :class:`Prefix` for a
        network's line), or None for any other line.

        With *bare_ipv6*, also the address of Wazuh's unbracketed IPv6 form
        (for deletes only: that line blocks nothing).
        """
        try:
            text = line.decode("ascii").rstrip("\r\n \t")
        except UnicodeDecodeError:
            return None
        if not (text.startswith(self._before) and text.endswith(self._after)):
            return None
        host = text[len(self._before):len(text) - len(self._after)]
        return _parse_host(host, bare_ipv6)


HOSTS_DENY = Style("/etc/hosts.deny", "ALL:", "", at_top=False)
HOSTS_ALLOW = Style("/etc/hosts.allow", "ALL : ", " : deny", at_top=True)


def style_for(system):
    return HOSTS_ALLOW if system == "FreeBSD" else HOSTS_DENY


def add(data, address, style):
    """New file content with *address* blocked, or None if it already is."""
    data = data or b""
    if style.ours(data, address):
        return None
    line = style.line(address) + _newline(data)
    at = _first_rule(data, style) if style.at_top else None
    if at is None:
        at = _last_rule(data)
    return data[:at] + line + data[at:]


def delete_each(data, targets, style):
    """(new content, number of lines removed): one line of ours for each
    of *targets* (addresses, prefixes), so that one write lifts them all:
    a run killed half-way leaves them all, or none, in place."""
    removed = 0
    for target in targets:
        data, count = delete(data, target, style, copies=1)
        removed += count
    return data, removed


def delete(data, address, style, copies=None):
    """(new content, number of lines removed): every line of ours for
    *address*, or only *copies* of them (a copy that an administrator
    wrote beside ours stays)."""
    if not data:
        return b"", 0
    kept, start = [], 0
    spans = style.ours(data, address, bare_ipv6=True)
    if copies is not None and copies < len(spans):
        # Ours is the copy an add would have written: the first where adds
        # go at the top, else the last.
        spans = spans[:copies] if style.at_top else spans[len(spans) - copies:]
    for first, end in spans:
        kept.append(data[start:first])
        start = end
    kept.append(data[start:])
    return b"".join(kept), len(spans)


def members(data, style, bare_ipv6=False):
    """The addresses and prefixes that lines of ours in *data* block (with
    *bare_ipv6*, also the addresses of Wazuh's unbracketed IPv6 lines, which
    block nothing)."""
    found = (style.address_of(line, bare_ipv6) for _, line, continued
             in _physical(data or b"") if not continued)
    return {address for address in found if address is not None}


# Every byte but a colon and the newline, the one byte that ends a line.
_NOT_COLON_OR_EOL = bytes(byte for byte in range(256) if byte not in b":\n")


def _colon_hosts(data, colons):
    """True if some line of *data* has more than *colons* colons."""
    return b":" * (colons + 1) in data.translate(None, _NOT_COLON_OR_EOL)


def _line_start(data, at):
    return data.rfind(b"\n", 0, at) + 1


def _line_end(data, at):
    """Where the line holding byte *at* ends, its newline included."""
    end = data.find(b"\n", at)
    return len(data) if end < 0 else end + 1


def _continues(data, start):
    """True if the line starting at *start* is the continuation of the one
    before it (which ends in a backslash and its newline)."""
    return data[max(start - 2, 0):start] == b"\\\n"


def _physical(data):
    """(start, line, continued) for each line of *data*, newline included."""
    start, continued = 0, False
    while start < len(data):
        end = _line_end(data, start)
        line = data[start:end]
        yield start, line, continued
        continued = line.endswith(b"\\\n")
        start = end


def _rule_start(data, start):
    """Where the rule holding the line that starts at *start* begins."""
    while start and _continues(data, start):
        start = _line_start(data, start - 1)
    return start


def _last_rule(data):
    """Where our line goes to be the last rule of a file.

    At the end, if tcpd ends the file's last line there (a newline with
    no backslash before it).  Otherwise (no newline at the end, or a
    backslash before the last one), before the rule that last line is
    part of: ending that line for tcpd would change what it does (Debian's
    tcpd denies every client that reaches a line without a newline), and
    our line after it would be its continuation.  Every rule of hosts.deny
    denies, so the order changes nothing.
    """
    return _rule_start(data, _line_start(data, len(data)))


def _newline(data):
    """The file's own line end: CRLF if its first line has one."""
    end = _line_end(data, 0)
    return b"\r\n" if data[end - 2:end] == b"\r\n" else b"\n"


def _first_rule(data, style):
    """Where hosts.allow's first rule that is not ours begins, or None.

    A rule is what tcpd reads as one line: a line and its continuations.
    """
    rule = None                  # [start, first line, whole text, line count]
    for start, line, continued in _physical(data):
        if continued:
            rule[2] += line
            rule[3] += 1
            continue
        if rule is not None and _is_rule(rule, style):
            return rule[0]
        rule = [start, line, line, 1]
    if rule is not None and _is_rule(rule, style):
        return rule[0]
    return None


def _is_rule(rule, style):
    """True unless *rule* is blank, a comment (all of it) or ours."""
    _, first, text, count = rule
    text = text.replace(b"\\\n", b"").strip()
    if not text or text.startswith(b"#"):
        return False
    return count > 1 or style.address_of(first) is None


def _host(address):
    if isinstance(address, Prefix):
        return "[%s]/%d" % (address.network, address.length)
    return "[%s]" % address.text if address.version == 6 else address.text


def _parse_host(host, bare_ipv6=False):
    if host.startswith("[") and "]/" in host:
        # [network]/length: an IPv6 prefix with its host bits clear, or
        # none of ours (an IPv4 network in brackets, a /128, junk).
        network, _, length = host[1:].partition("]")
        return parse_prefix(network + length)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if "." in host and ":" not in host:
            return None
    elif ":" in host and not bare_ipv6:
        return None                   # tcpd reads bare IPv6 as host:port junk
    return literal(host)
