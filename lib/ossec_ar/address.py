"""Turn the untrusted ``$3`` into an address we are willing to block.

Only literal IPv4 and IPv6 addresses are accepted.  Names are refused rather
than resolved: a DNS lookup as root on a name an attacker chose would let the
attacker pick what we block.
"""

import ipaddress

from .exits import REFUSED, refused

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_IPV4_CHARS = frozenset("0123456789.")
_IPV6_CHARS = _HEX_DIGITS | frozenset(":.")

# 0.0.0.0/8 is "this network": never a real source address.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
# IPv4-compatible IPv6 (::a.b.c.d) is deprecated (RFC 4291) and never seen on
# the wire; tools also print it in two different ways.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def parse(text):
    """Return the normalised ``IPv4Address`` or ``IPv6Address`` in *text*.

    Raises :class:`~ossec_ar.exits.Stop` (exit 65) with a reason an
    administrator can act on when *text* is not an address we block.
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
    return address


def _parse_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4 or not all(parts):
        raise refused(REFUSED, "not an IPv4 address (want four dotted numbers)")
    # Python before 3.9.5 reads "010" as ten, inet_aton(3) and so iptables as
    # eight: refuse the ambiguity instead of guessing.
    if any(len(part) > 1 and part[0] == "0" for part in parts):
        raise refused(REFUSED, "ambiguous IPv4 address (leading zero)")
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise refused(REFUSED, "not an IPv4 address (a part is over 255)")


def _parse_ipv6(text):
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise refused(REFUSED, "not an IPv6 address")
    mapped = address.ipv4_mapped
    if mapped is not None:
        # ::ffff:a.b.c.d reaches the host as a.b.c.d.
        return mapped
    return address


def _check_blockable(address):
    if address.is_loopback:
        raise refused(REFUSED, "loopback address")
    if address.is_unspecified:
        raise refused(REFUSED, "unspecified address")
    if address.is_multicast:
        raise refused(REFUSED, "multicast address")
    if address.version == 4:
        if address == _BROADCAST:
            raise refused(REFUSED, "broadcast address")
        if address in _THIS_NETWORK:
            raise refused(REFUSED, "'this network' address (0.0.0.0/8)")
    elif address in _IPV4_COMPATIBLE:
        raise refused(REFUSED, "deprecated IPv4-compatible IPv6 address")
