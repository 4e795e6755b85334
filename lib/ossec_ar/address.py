"""Turn the untrusted ``$3`` into an address we are willing to block.

Only literal IPv4 and IPv6 addresses are accepted.  Names are refused rather
than resolved: a DNS lookup as root on a name an attacker chose would let the
attacker pick what we block.

This runs on every run, so it does without the ``ipaddress`` module (2.5 ms
to import, a fifth of a run): dotted quads are read here, IPv6 by the
built-in ``inet_pton``, and the refusals are tests on the address's bytes.
``tests/test_address.py`` holds it against ``ipaddress`` on tens of
thousands of inputs: the same verdict, the same reason, the same normal form.
"""

import _socket

from .exits import REFUSED, Stop, refused

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_IPV4_CHARS = _DIGITS | frozenset(".")
_IPV6_CHARS = _HEX_DIGITS | frozenset(":.")
_MAPPED = bytes(10) + b"\xff\xff"            # ::ffff:0:0/96, IPv4 as IPv6
_COMPATIBLE = bytes(12)                      # ::/96, deprecated (RFC 4291)


class Address:
    """An IPv4 or IPv6 address in its normal form (``text``), its family
    (``version``) and its bytes (``packed``).  Equal, hashed and ordered by
    family and bytes, IPv4 first."""

    __slots__ = ("text", "version", "packed")

    def __init__(self, text, version, packed):
        self.text = text
        self.version = version
        self.packed = packed

    @property
    def max_prefixlen(self):
        return 32 if self.version == 4 else 128

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Address(%r)" % self.text

    def __eq__(self, other):
        return isinstance(other, Address) and self.packed == other.packed

    def __hash__(self):
        return hash(self.packed)

    def __lt__(self, other):
        return (self.version, self.packed, self.max_prefixlen) < \
            (other.version, other.packed, getattr(other, "length", 129))


# The widest prefix ``ipv6_prefix`` blocks: a /48 is what one site is
# given; anything wider takes in a provider's customers.  A wider network
# in a layout of ours is an administrator's, never a block of ours.
WIDEST_PREFIX = 48


class Prefix:
    """An IPv6 network blocked whole (``ipv6_prefix``): ``text`` is
    ``2001:db8:1:2::/64``, ``network`` its first address as text,
    ``packed`` that address's bytes, ``length`` the prefix length.  A
    backend is handed one where it would be handed an :class:`Address`;
    ``version`` is 6.  Never equal to an Address, and ordered after the
    address it starts with."""

    __slots__ = ("text", "network", "packed", "length")
    version = 6
    max_prefixlen = 128

    def __init__(self, packed, length):
        whole, bits = divmod(length, 8)
        tail = bytes([packed[whole] & (0xff00 >> bits) & 0xff]) if bits else b""
        self.packed = (packed[:whole] + tail).ljust(16, b"\0")
        self.length = length
        self.network = _ipv6_text(self.packed)
        self.text = "%s/%d" % (self.network, length)

    def __contains__(self, address):
        """True if the single *address* is inside this prefix."""
        return self.holds(address.packed)

    def holds(self, packed):
        """True if the address bytes *packed* lie inside this prefix: the
        bytes compared, no object made (a host may hold thousands of
        addresses).  IPv4 bytes never do."""
        if len(packed) != 16:
            return False
        whole, bits = divmod(self.length, 8)
        if packed[:whole] != self.packed[:whole]:
            return False
        return not bits or packed[whole] & (0xff00 >> bits) & 0xff == self.packed[whole]

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Prefix(%r)" % self.text

    def __eq__(self, other):
        return isinstance(other, Prefix) and (self.packed, self.length) == \
            (other.packed, other.length)

    def __hash__(self):
        return hash((self.packed, self.length))

    def __lt__(self, other):
        return (self.version, self.packed, self.length) < \
            (other.version, other.packed, getattr(other, "length", 129))


def prefix_of(address, length):
    """The /*length* prefix that holds the IPv6 *address*; *address*
    itself for IPv4 (never widened) or a length of 128."""
    if address.version != 6 or length >= 128:
        return address
    return Prefix(address.packed, length)


def parse_prefix(text):
    """The :class:`Prefix` written as *text* (``2001:db8:1:2::/64``, as a
    ledger record or a tool lists it), or None if it is not one: an IPv6
    network address with its host bits clear and a length below 128."""
    network, slash, length = text.partition("/")
    if not slash or not set(length) <= _DIGITS or length[:1] in ("", "0") \
            or ":" not in network:
        return None
    if set(network) - _HEX_DIGITS - set(":"):
        return None
    try:
        packed = _socket.inet_pton(_socket.AF_INET6, network)
    except (OSError, ValueError):
        return None
    if not 0 < int(length) < 128:
        return None
    prefix = Prefix(packed, int(length))
    return prefix if prefix.packed == packed else None


def parse(text, lifting=False):
    """Return the normalised :class:`Address` in *text*.

    Raises :class:`~ossec_ar.exits.Stop` (exit 65) with a reason an
    administrator can act on when *text* is not an address we block.
    ``::ffff:a.b.c.d`` is the IPv4 address, which is how it reaches us.

    With *lifting* (a delete, an unblock, an expiry, a ledger read back)
    a link-local address is let through: earlier versions blocked them,
    and such a block must stay liftable.  Adds pass through
    :func:`check_addable` as well.
    """
    if text in ("", "-"):
        raise refused(REFUSED, "no address given")
    if text[0] == "-":
        raise refused(REFUSED, "not an IP address (starts with '-')")
    chars = set(text)
    if ":" in chars and chars <= _IPV6_CHARS:
        address = _parse_ipv6(text)
    elif chars <= _IPV4_CHARS:
        address = _parse_ipv4(text)
    else:
        raise refused(REFUSED, "not an IP address (names are never resolved)")
    _check_blockable(address)
    if not lifting:
        check_addable(address)
    return address


def check_addable(address):
    """Refuse (65) what may be lifted but never blocked anew: a link-local
    address.  Nothing from the internet comes from one, and blocking one
    cuts the host off from its cloud's metadata service (169.254.169.254:
    its credentials) or from its IPv6 router (fe80::/10)."""
    packed = address.packed
    if address.version == 4:
        if packed[0] == 169 and packed[1] == 254:
            raise refused(REFUSED, "link-local address (169.254.0.0/16)")
    elif packed[0] == 0xfe and packed[1] & 0xc0 == 0x80:
        raise refused(REFUSED, "link-local address (fe80::/10)")


def host(text):
    """The single address a firewall tool or a hosts file lists
    (``192.0.2.7``, ``192.0.2.7/32``, ``2001:db8::7/128``), or None for a
    network or anything else.  No refusals: this reads what is there
    (``::ffff:a.b.c.d`` as the IPv4 address, as :func:`parse` does)."""
    text, slash, length = text.partition("/")
    chars = set(text)
    try:
        if ":" in chars and chars <= _IPV6_CHARS:
            address = _parse_ipv6(text)
        elif chars and chars <= _IPV4_CHARS:
            address = _parse_ipv4(text)
        else:
            return None
    except (OSError, ValueError, Stop):
        return None
    if slash and length != str(address.max_prefixlen):
        return None
    return address


def _parse_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4 or not all(parts):
        raise refused(REFUSED, "not an IPv4 address (want four dotted numbers)")
    # Python before 3.9.5 reads "010" as ten, inet_aton(3) and so iptables as
    # eight: refuse the ambiguity instead of guessing.
    if any(len(part) > 1 and part[0] == "0" for part in parts):
        raise refused(REFUSED, "ambiguous IPv4 address (leading zero)")
    numbers = [int(part) for part in parts]
    if any(number > 255 for number in numbers):
        raise refused(REFUSED, "not an IPv4 address (a part is over 255)")
    return Address(".".join(parts), 4, bytes(numbers))


def _parse_ipv6(text):
    # The dotted tail of an embedded IPv4 address follows the rules above
    # whatever the C library says (some read a leading zero as octal).
    tail = text.rpartition(":")[2]
    if "." in tail and any(len(part) > 1 and part[0] == "0" for part in tail.split(".")):
        raise refused(REFUSED, "not an IPv6 address")
    try:
        packed = _socket.inet_pton(_socket.AF_INET6, text)
    except (OSError, ValueError):
        raise refused(REFUSED, "not an IPv6 address")
    if packed[:12] == _MAPPED:
        # ::ffff:a.b.c.d reaches the host as a.b.c.d.
        v4 = packed[12:]
        return Address("%d.%d.%d.%d" % tuple(v4), 4, v4)
    return Address(_ipv6_text(packed), 6, packed)


def _ipv6_text(packed):
    """RFC 5952's form: lower case, no leading zeros, the first longest run
    of two or more zero groups as ``::``."""
    groups = [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]
    best, best_length, start = -1, 1, -1
    for i, group in enumerate(groups + [1]):
        if group == 0 and start < 0:
            start = i
        elif group != 0 and start >= 0:
            if i - start > best_length:
                best, best_length = start, i - start
            start = -1
    words = ["%x" % group for group in groups]
    if best < 0:
        return ":".join(words)
    return ":".join(words[:best]) + "::" + ":".join(words[best + best_length:])


def _check_blockable(address):
    packed = address.packed
    if address.version == 4:
        first = packed[0]
        if first == 127:
            raise refused(REFUSED, "loopback address")
        if packed == b"\0\0\0\0":
            raise refused(REFUSED, "unspecified address")
        if 224 <= first <= 239:
            raise refused(REFUSED, "multicast address")
        if packed == b"\xff\xff\xff\xff":
            raise refused(REFUSED, "broadcast address")
        if first == 0:
            raise refused(REFUSED, "'this network' address (0.0.0.0/8)")
        return
    if packed == bytes(15) + b"\1":
        raise refused(REFUSED, "loopback address")
    if packed == bytes(16):
        raise refused(REFUSED, "unspecified address")
    if packed[0] == 0xff:
        raise refused(REFUSED, "multicast address")
    if packed[:12] == _COMPATIBLE:
        # ::a.b.c.d is never seen on the wire; tools also print it two ways.
        raise refused(REFUSED, "deprecated IPv4-compatible IPv6 address")
