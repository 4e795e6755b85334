import pytest

from ossec_ar import address, exits

ACCEPTED = [
    ("192.0.2.7", "192.0.2.7"),
    ("10.0.0.1", "10.0.0.1"),
    ("1.0.0.0", "1.0.0.0"),
    ("::ffff:192.0.2.7", "192.0.2.7"),                  # mapped becomes IPv4
    ("::FFFF:C000:0207", "192.0.2.7"),
    ("2001:DB8:0:0:0:0:0:7", "2001:db8::7"),            # normalised
    ("2001:db8::7", "2001:db8::7"),
    ("64:ff9b::192.0.2.7", "64:ff9b::c000:207"),
]

REFUSED = [
    ("", "no address given"),
    ("-", "no address given"),
    ("-j", "starts with '-'"),
    ("-1.2.3.4", "starts with '-'"),
    ("example.com", "names are never resolved"),
    ("localhost", "names are never resolved"),
    ("1.2.3.4; reboot", "names are never resolved"),
    ("$(reboot)", "names are never resolved"),
    ("`id`", "names are never resolved"),
    ("1.2.3.4/24", "names are never resolved"),
    ("1.2.3.4 -j ACCEPT", "names are never resolved"),
    ("1.2.3.4\n", "names are never resolved"),
    ("fe80::1%eth0", "names are never resolved"),
    ("[2001:db8::1]", "names are never resolved"),
    ("1.2.3", "want four dotted numbers"),
    ("1.2.3.4.5", "want four dotted numbers"),
    ("1..3.4", "want four dotted numbers"),
    ("010.0.0.1", "leading zero"),
    ("1.2.3.256", "over 255"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "this network"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("::192.0.2.7", "IPv4-compatible"),
    ("169.254.169.254", "link-local address (169.254.0.0/16)"),   # cloud metadata
    ("169.254.0.0", "link-local address (169.254.0.0/16)"),
    ("169.254.255.255", "link-local address (169.254.0.0/16)"),
    ("::ffff:169.254.169.254", "link-local address (169.254.0.0/16)"),
    ("fe80::1", "link-local address (fe80::/10)"),                # an IPv6 router
    ("FE80::1", "link-local address (fe80::/10)"),
    ("febf:ffff::1", "link-local address (fe80::/10)"),
    ("1:2:3:4:5:6:7:8:9", "not an IPv6 address"),
    ("12345::", "not an IPv6 address"),
    ("\udcff\udcfe", "names are never resolved"),
    ("1" * 10000, "want four dotted numbers"),
]


@pytest.mark.parametrize("text,expected", ACCEPTED)
def test_accepted_addresses_are_normalised(text, expected):
    assert str(address.parse(text)) == expected


LINK_LOCAL = [
    ("169.254.169.254", "169.254.169.254"),
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("169.254.0.1", "169.254.0.1"),
    ("fe80::1", "fe80::1"),
    ("FE80:0::0:1", "fe80::1"),
    ("febf::7", "febf::7"),
]


@pytest.mark.parametrize("text,expected", LINK_LOCAL)
def test_link_local_is_refused_for_an_add_but_read_for_a_lift(text, expected):
    # A block of one made by an earlier version must stay liftable.
    with pytest.raises(exits.Stop) as info:
        address.parse(text)
    assert info.value.code == exits.REFUSED
    assert info.value.reason.startswith("link-local address (")
    found = address.parse(text, lifting=True)
    assert found.text == expected
    with pytest.raises(exits.Stop) as info:
        address.check_addable(found)
    assert info.value.code == exits.REFUSED


@pytest.mark.parametrize("text", ["169.253.255.255", "169.255.0.0", "fec0::1", "fe7f::1",
                                  "168.254.1.1", "170.254.1.1"])
def test_the_borders_of_link_local_are_blocked(text):
    assert address.parse(text).text == text


@pytest.mark.parametrize("text,reason", [("127.0.0.1", "loopback"), ("::", "unspecified"),
                                         ("ff02::1", "multicast"), ("x", "names")])
def test_lifting_keeps_every_other_refusal(text, reason):
    with pytest.raises(exits.Stop) as info:
        address.parse(text, lifting=True)
    assert reason in info.value.reason


@pytest.mark.parametrize("text,reason", REFUSED)
def test_refused_addresses_say_why(text, reason):
    with pytest.raises(exits.Stop) as info:
        address.parse(text)
    assert info.value.code == exits.REFUSED == 65
    assert info.value.status == "refused"
    assert reason in info.value.reason


# -- the same verdicts as ipaddress --------------------------------------------
#
# address.parse reads addresses without the ipaddress module (see its
# docstring).  reference() is the rule written with ipaddress, as it was
# before: both must give the same verdict, the same reason and the same
# normal form on every input below.

import ipaddress
import random

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_COMPATIBLE = ipaddress.ip_network("::/96")


def reference(text):
    """("ok", normal form) or ("refused", reason), by ipaddress."""
    try:
        if text in ("", "-"):
            return "refused", "no address given"
        if text[0] == "-":
            return "refused", "not an IP address (starts with '-')"
        chars = set(text)
        if ":" in chars and chars <= set("0123456789abcdefABCDEF:."):
            try:
                found = ipaddress.IPv6Address(text)
            except ValueError:
                return "refused", "not an IPv6 address"
            if found.ipv4_mapped is not None:
                found = found.ipv4_mapped
        elif chars <= set("0123456789."):
            parts = text.split(".")
            if len(parts) != 4 or not all(parts):
                return "refused", "not an IPv4 address (want four dotted numbers)"
            if any(len(part) > 1 and part[0] == "0" for part in parts):
                return "refused", "ambiguous IPv4 address (leading zero)"
            try:
                found = ipaddress.IPv4Address(text)
            except ValueError:
                return "refused", "not an IPv4 address (a part is over 255)"
        else:
            return "refused", "not an IP address (names are never resolved)"
        for test, reason in ((found.is_loopback, "loopback address"),
                             (found.is_unspecified, "unspecified address"),
                             (found.is_multicast, "multicast address")):
            if test:
                return "refused", reason
        if found.version == 4:
            if found == ipaddress.IPv4Address("255.255.255.255"):
                return "refused", "broadcast address"
            if found in _THIS_NETWORK:
                return "refused", "'this network' address (0.0.0.0/8)"
        elif found in _COMPATIBLE:
            return "refused", "deprecated IPv4-compatible IPv6 address"
        if found.is_link_local:
            return "refused", "link-local address (%s)" % (
                "169.254.0.0/16" if found.version == 4 else "fe80::/10")
        return "ok", str(found)
    except Exception as error:                 # the reference must not fail
        raise AssertionError("reference failed on %r: %r" % (text, error))


def fast(text):
    try:
        return "ok", address.parse(text).text
    except exits.Stop as stop:
        return "refused", stop.reason


def edge_cases():
    """Hand-picked: the borders of every refusal and of the syntax."""
    cases = [value for value, _ in ACCEPTED] + [value for value, _ in REFUSED]
    for first in (0, 1, 9, 10, 99, 100, 126, 127, 128, 223, 224, 239, 240, 254, 255, 256):
        cases += ["%d.0.0.0" % first, "%d.255.255.255" % first, "%d.1.2.3" % first]
    for second in (253, 254, 255):
        cases += ["169.%d.0.0" % second, "169.%d.255.255" % second]
    cases += ["fe7f:ffff::", "fe80::", "fe80::1", "febf:ffff::1", "fec0::", "::ffff:169.254.1.1"]
    cases += ["255.255.255.254", "255.255.255.255", "0.0.0.1", "00.1.2.3", "1.2.3.00",
              "1.2.3.4.", ".1.2.3", "1.2.3..4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4",
              "4294967295", "0x7f.0.0.1", "1e3.0.0.1", "١.٢.٣.٤", "１.２.３.４"]
    for prefix in ("", "::", "::ffff:", "::FFFF:", "0:0:0:0:0:ffff:", "::ffff:0:", "64:ff9b::"):
        cases += [prefix + v4 for v4 in ("127.0.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1",
                                         "255.255.255.255", "192.0.2.7", "1.2.3.04",
                                         "1.2.3", "1.2.3.256", "01.2.3.4")]
    cases += ["::", "::1", "::2", "1::", "::ffff", "::ffff:0", "::ffff:0:0", "ff00::",
              "feff::", "ff02::1", "fe80::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
              "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", ":1::", "1:::2",
              "12345::", "00001::", "0001::", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4",
              "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4::", "::1.2.3.4:5", "0:0:0:0:0:0:0:0",
              "0:0:0:0:0:0:0:1", "0:0:1:0:0:1:0:0", "1:0:0:1:0:0:0:1", "1:0:0:0:1:0:0:1",
              "2001:db8:0:0:1:0:0:1", "2001:0:0:1::1", "2001:DB8::", "2001:db8::0:1",
              "a:b:c:d:e:f:0:0", "0:a:0:b:0:c:0:d", ":", "::::", "::ffff:1.2.3.4:",
              "[::1]", "::1%lo", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8"]
    return cases


def random_cases(rng, count):
    hexes = "0123456789abcdefABCDEF"
    for _ in range(count):
        kind = rng.randrange(6)
        if kind == 0:                                    # dotted quads, some broken
            parts = [str(rng.choice((rng.randrange(256), rng.randrange(1000))))
                     for _ in range(rng.choice((3, 4, 4, 4, 5)))]
            if rng.random() < 0.1:
                parts[rng.randrange(len(parts))] = "0" + parts[0]
            yield ".".join(parts)
        elif kind in (1, 2):                             # eight groups, maybe compressed
            groups = ["".join(rng.choice(hexes) for _ in range(rng.randrange(0, 5)))
                      or "0" for _ in range(8)]
            if rng.random() < 0.5:
                groups = ["0" if rng.random() < 0.5 else g for g in groups]
            text = ":".join(groups)
            if rng.random() < 0.6:
                start = rng.randrange(8)
                end = rng.randrange(start, 9)
                text = ":".join(groups[:start]) + "::" + ":".join(groups[end:])
            yield text
        elif kind == 3:                                  # embedded IPv4
            head = rng.choice(("::", "::ffff:", "::FFFF:", "1::", "64:ff9b::", "::ffff:0:",
                               "1:2:3:4:5:6:"))
            yield head + ".".join(str(rng.randrange(300)) for _ in range(4))
        elif kind == 4:                                  # one special range, bytes at random
            packed = bytearray(rng.getrandbits(8) for _ in range(16))
            zeros = rng.randrange(13)
            packed[:zeros] = bytes(zeros)
            if rng.random() < 0.3:
                packed[0] = 0xff
            yield str(ipaddress.IPv6Address(bytes(packed)))
        else:                                            # anything at all
            alphabet = "0123456789abcdefABCDEF:.-[]%/ xg"
            yield "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 45)))


def test_the_same_verdicts_as_ipaddress_on_tens_of_thousands_of_inputs():
    rng = random.Random(20261201)
    cases = edge_cases() + list(random_cases(rng, 24000))
    assert len(cases) >= 20000
    differences = [(text, fast(text), reference(text)) for text in cases
                   if fast(text) != reference(text)]
    assert differences == []
    verdicts = {reference(text)[0] for text in cases}
    assert verdicts == {"ok", "refused"}            # both kinds were exercised
    reasons = {reference(text)[1] for text in cases if reference(text)[0] == "refused"}
    assert len(reasons) >= 12                       # every refusal, more or less
