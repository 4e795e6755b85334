"""Our lines in tcp_wrappers files, and where they go.

Two styles, as the stock host-deny.sh writes them:

``hosts.deny`` (every system but FreeBSD)
    ``ALL:192.0.2.7`` or ``ALL:[2001:db8::7]``, at the end of the file
    (before its last line if that has no newline).
``hosts.allow`` (FreeBSD, whose tcpd reads only this file)
    ``ALL : 192.0.2.7 : deny``.  The file is first-match and FreeBSD's
    default one ends in ``ALL : ALL : allow``, so our lines go before the
    first rule of the file (after its opening comments), in the order added.

A line is ours only if it is exactly one of these forms for one address;
comments, other services' lines and lines that merely contain the address
are the administrator's and are never touched.  One more form is removed by
a delete, but never written nor counted as a block: Wazuh's own host-deny
writes IPv6 without brackets (``ALL:2001:db8::21``, and ``ALL : 2001:db8::21
: deny`` on FreeBSD; src/active-response/host-deny.c @ v4.2.0 to v4.14.7),
which tcpd reads as other fields, so it blocks nothing, but an agent moved
from Wazuh's program to ours must not keep those lines for ever.  The file is handled as
bytes, line ends included, so every byte that is not ours stays as it was.
"""

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
            if self.blocks(data[start:end], address, bare_ipv6):
                spans.append((start, end))
            at = data.find(whole, end)
        return spans

    def _scan(self, data, whole, address, bare_ipv6):
        spans = []
        start = 0
        for line in _lines(data):
            end = start + len(line)
            if ((whole in line or line.count(b":") > self._colons)
                    and self.blocks(line, address, bare_ipv6)):
                spans.append((start, end))
            start = end
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
        """The address a line of ours blocks, or None for any other line.

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
    if not style.at_top:
        # At the end; but before a last line that has no newline, which
        # stays the administrator's last line, byte for byte.  Every line
        # of hosts.deny denies, so the order changes nothing.
        at = len(data)
        if data and not data.endswith((b"\n", b"\r")):
            at = _line_start(data, at)
        return data[:at] + line + data[at:]
    lines = _lines(data)
    lines.insert(_first_rule(lines, style), line)
    return b"".join(lines)


def delete(data, address, style):
    """(new content, number of lines removed)."""
    if not data:
        return b"", 0
    kept, start = [], 0
    spans = style.ours(data, address, bare_ipv6=True)
    for first, end in spans:
        kept.append(data[start:first])
        start = end
    kept.append(data[start:])
    return b"".join(kept), len(spans)


def members(data, style):
    """The addresses that lines of ours in *data* block."""
    found = (style.address_of(line) for line in _lines(data or b""))
    return {address for address in found if address is not None}


# Every byte but a colon and the two that end lines (bytes.splitlines
# ends a line at either).
_NOT_COLON_OR_EOL = bytes(byte for byte in range(256) if byte not in b":\r\n")


def _colon_hosts(data, colons):
    """True if some line of *data* has more than *colons* colons."""
    return b":" * (colons + 1) in data.translate(None, _NOT_COLON_OR_EOL)


def _line_start(data, at):
    return max(data.rfind(b"\n", 0, at), data.rfind(b"\r", 0, at)) + 1


def _line_end(data, at):
    """Where the line holding byte *at* ends, its line end included."""
    ends = [end for end in (data.find(b"\n", at), data.find(b"\r", at)) if end >= 0]
    if not ends:
        return len(data)
    end = min(ends)
    if data[end:end + 2] == b"\r\n":
        return end + 2
    return end + 1


def _lines(data):
    return data.splitlines(True) if data else []


def _newline(data):
    """The file's own line end: CRLF if its first line has one."""
    end = _line_end(data, 0)
    return b"\r\n" if data[end - 2:end] == b"\r\n" else b"\n"


def _first_rule(lines, style):
    """Where hosts.allow's first rule that is not ours is (or its end)."""
    for index, line in enumerate(lines):
        text = line.strip()
        if text and not text.startswith(b"#") and style.address_of(line) is None:
            return index
    return len(lines)


def _host(address):
    return "[%s]" % address.text if address.version == 6 else address.text


def _parse_host(host, bare_ipv6=False):
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if "." in host and ":" not in host:
            return None
    elif ":" in host and not bare_ipv6:
        return None                   # tcpd reads bare IPv6 as host:port junk
    return literal(host)
