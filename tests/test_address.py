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
    ("fe80::1", "fe80::1"),                             # link-local attackers exist
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
    ("1:2:3:4:5:6:7:8:9", "not an IPv6 address"),
    ("12345::", "not an IPv6 address"),
    ("\udcff\udcfe", "names are never resolved"),
    ("1" * 10000, "want four dotted numbers"),
]


@pytest.mark.parametrize("text,expected", ACCEPTED)
def test_accepted_addresses_are_normalised(text, expected):
    assert str(address.parse(text)) == expected


@pytest.mark.parametrize("text,reason", REFUSED)
def test_refused_addresses_say_why(text, reason):
    with pytest.raises(exits.Stop) as info:
        address.parse(text)
    assert info.value.code == exits.REFUSED == 65
    assert info.value.status == "refused"
    assert reason in info.value.reason
