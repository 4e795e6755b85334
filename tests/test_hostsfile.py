"""Our lines in hosts.deny and FreeBSD's hosts.allow: pure byte logic."""

import ipaddress
import random

import pytest

import tcpd
from ossec_ar import hostsfile
from ossec_ar.address import parse as IP
from ossec_ar.address import parse_prefix, prefix_of
from ossec_ar.hostsfile import HOSTS_ALLOW, HOSTS_DENY, add, delete, members, style_for


def test_style_per_system():
    assert style_for("FreeBSD") is HOSTS_ALLOW
    for system in ("Linux", "SunOS", "AIX", "NetBSD", "OpenBSD", "Darwin"):
        assert style_for(system) is HOSTS_DENY
    assert (HOSTS_DENY.path, HOSTS_ALLOW.path) == ("/etc/hosts.deny", "/etc/hosts.allow")


def test_lines_as_the_stock_script_writes_them():
    assert HOSTS_DENY.line(IP("192.0.2.7")) == b"ALL:192.0.2.7"
    assert HOSTS_DENY.line(IP("2001:db8::7")) == b"ALL:[2001:db8::7]"
    assert HOSTS_ALLOW.line(IP("192.0.2.7")) == b"ALL : 192.0.2.7 : deny"
    assert HOSTS_ALLOW.line(IP("2001:db8::7")) == b"ALL : [2001:db8::7] : deny"


def test_prefix_lines_as_hosts_access_spells_a_network():
    prefix = prefix_of(IP("2001:db8:1:2::7"), 64)
    assert HOSTS_DENY.line(prefix) == b"ALL:[2001:db8:1:2::]/64"
    assert HOSTS_ALLOW.line(prefix) == b"ALL : [2001:db8:1:2::]/64 : deny"
    # The network's normal form, host bits clear, whatever the length.
    assert HOSTS_DENY.line(prefix_of(IP("2001:db8:1:2::7"), 57)) == b"ALL:[2001:db8:1::]/57"
    assert HOSTS_DENY.line(prefix_of(IP("2001:db8:1:2:ab:cd:ef:7"), 127)) == \
        b"ALL:[2001:db8:1:2:ab:cd:ef:6]/127"


ADMIN = (b"# /etc/hosts.deny: list of hosts that are _not_ allowed to access the system.\n"
         b"#\n"
         b"\n"
         b"sshd: 1.2.3.4\n"
         b"ALL:1x2y3z4\n"
         b"ALL:11.2.3.4\n"
         b"ALL:1.2.3.40\n"
         b"# ALL:1.2.3.4\n"
         b"ALL:1.2.3.4 EXCEPT x\n"
         b"ALL: 1.2.3.4\n"
         b"in.telnetd: ALL\n")


def test_add_appends_one_line_and_keeps_every_other_byte():
    new = add(ADMIN, IP("1.2.3.4"), HOSTS_DENY)
    assert new == ADMIN + b"ALL:1.2.3.4\n"


def test_add_is_idempotent_and_near_misses_do_not_count():
    once = add(ADMIN, IP("1.2.3.4"), HOSTS_DENY)
    assert add(once, IP("1.2.3.4"), HOSTS_DENY) is None


def test_delete_removes_exactly_our_lines_for_that_address():
    blocked = ADMIN + b"ALL:1.2.3.4\nALL:5.6.7.8\nALL:1.2.3.4\r\n"
    new, removed = delete(blocked, IP("1.2.3.4"), HOSTS_DENY)
    assert removed == 2
    assert new == ADMIN + b"ALL:5.6.7.8\n"


def test_delete_of_an_absent_address_changes_nothing():
    new, removed = delete(ADMIN, IP("1.2.3.4"), HOSTS_DENY)
    assert (new, removed) == (ADMIN, 0)


def test_crlf_file_keeps_crlf():
    data = b"# comment\r\nsshd: 10.0.0.1\r\n"
    new = add(data, IP("192.0.2.7"), HOSTS_DENY)
    assert new == data + b"ALL:192.0.2.7\r\n"
    assert delete(new, IP("192.0.2.7"), HOSTS_DENY) == (data, 1)


def test_missing_final_newline():
    data = b"# admin\nsshd: 10.0.0.1"
    new = add(data, IP("192.0.2.7"), HOSTS_DENY)
    # Our line goes before the unterminated last line, which stays as it was.
    assert new == b"# admin\nALL:192.0.2.7\nsshd: 10.0.0.1"
    assert delete(new, IP("192.0.2.7"), HOSTS_DENY) == (data, 1)
    assert add(b"sshd: 10.0.0.1", IP("192.0.2.7"), HOSTS_DENY) == (
        b"ALL:192.0.2.7\nsshd: 10.0.0.1")
    # A file whose last line is ours, without a newline (written by hand).
    assert delete(b"sshd: 10.0.0.1\nALL:192.0.2.7", IP("192.0.2.7"), HOSTS_DENY) == (
        b"sshd: 10.0.0.1\n", 1)
    # The administrator's last line keeps its missing newline on delete.
    assert delete(b"ALL:192.0.2.7\nsshd: 10.0.0.1", IP("192.0.2.7"), HOSTS_DENY) == (
        b"sshd: 10.0.0.1", 1)


def test_empty_and_missing_file():
    assert add(None, IP("192.0.2.7"), HOSTS_DENY) == b"ALL:192.0.2.7\n"
    assert add(b"", IP("192.0.2.7"), HOSTS_DENY) == b"ALL:192.0.2.7\n"
    assert delete(None, IP("192.0.2.7"), HOSTS_DENY) == (b"", 0)


def test_non_ascii_and_binary_bytes_survive():
    data = b"# caf\xc3\xa9 \xff\xfe\x00 admin notes\nsshd: ALL\n"
    new = add(data, IP("192.0.2.7"), HOSTS_DENY)
    assert new == data + b"ALL:192.0.2.7\n"
    assert delete(new, IP("192.0.2.7"), HOSTS_DENY) == (data, 1)


@pytest.mark.parametrize("line,address", [
    (b"ALL:[2001:db8::7]", "2001:db8::7"),
    (b"ALL:[2001:DB8:0::7]", "2001:db8::7"),         # stock writes what it was given
    (b"ALL:[::ffff:192.0.2.7]", "192.0.2.7"),
    (b"ALL:192.0.2.7  ", "192.0.2.7"),               # trailing blanks
])
def test_stock_ipv6_and_variants_are_recognised(line, address):
    assert delete(line + b"\n", IP(address), HOSTS_DENY) == (b"", 1)


@pytest.mark.parametrize("style,line", [
    (HOSTS_DENY, b"ALL:2001:db8::21"),
    (HOSTS_DENY, b"ALL:2001:DB8:0:0::21\r"),
    (HOSTS_ALLOW, b"ALL : 2001:db8::21 : deny"),
])
def test_wazuhs_unbracketed_ipv6_is_removed_but_is_no_block(style, line):
    """Wazuh's host-deny writes IPv6 without brackets (host-deny.c @ v4.2.0
    to v4.14.7).  tcpd does not read that as the address, so it is not a
    block: an add writes our bracketed line; a delete removes both."""
    address = IP("2001:db8::21")
    data = b"# admin\n" + line + b"\n"
    assert members(data, style) == set()
    added = add(data, address, style)
    assert added is not None and style.line(address) in added
    assert delete(added, address, style) == (b"# admin\n", 2)
    assert delete(data, IP("2001:db8::22"), style) == (data, 0)


@pytest.mark.parametrize("line", [
    b"ALL:[192.0.2.7]", b"ALL:[2001:db8::7", b"ALL:192.0.2.7/32",
    b"ALL:192.0.2.", b" ALL:192.0.2.7", b"all:192.0.2.7", b"ALL : 192.0.2.7 : deny",
])
def test_lines_that_are_not_ours_for_that_address(line):
    for address in ("192.0.2.7", "2001:db8::7"):
        assert delete(line + b"\n", IP(address), HOSTS_DENY) == (line + b"\n", 0)


FREEBSD_DEFAULT = (b"#\n# hosts.allow access control file for \"tcp wrapped\" applications.\n"
                   b"#\n\n# Start by allowing everything (this prevents the rest of the file\n"
                   b"# from working, so remove it when you need protection).\n"
                   b"ALL : ALL : allow\n\n# Rules\nsshd : localhost : allow\n")


def test_freebsd_lines_go_before_the_first_rule_in_the_order_added():
    one = add(FREEBSD_DEFAULT, IP("192.0.2.7"), HOSTS_ALLOW)
    two = add(one, IP("2001:db8::7"), HOSTS_ALLOW)
    head, tail = FREEBSD_DEFAULT.split(b"ALL : ALL : allow\n")
    assert two == (head + b"ALL : 192.0.2.7 : deny\nALL : [2001:db8::7] : deny\n"
                   b"ALL : ALL : allow\n" + tail)
    assert add(two, IP("192.0.2.7"), HOSTS_ALLOW) is None
    assert delete(two, IP("192.0.2.7"), HOSTS_ALLOW)[0] == (
        head + b"ALL : [2001:db8::7] : deny\nALL : ALL : allow\n" + tail)
    assert delete(delete(two, IP("192.0.2.7"), HOSTS_ALLOW)[0], IP("2001:db8::7"),
                  HOSTS_ALLOW) == (FREEBSD_DEFAULT, 1)


def test_freebsd_file_with_only_comments_gets_our_line_at_the_end():
    assert add(b"# nothing yet\n", IP("192.0.2.7"), HOSTS_ALLOW) == (
        b"# nothing yet\nALL : 192.0.2.7 : deny\n")


def test_freebsd_ignores_hosts_deny_forms():
    data = b"ALL:192.0.2.7\nALL : ALL : allow\n"
    assert delete(data, IP("192.0.2.7"), HOSTS_ALLOW) == (data, 0)
    # ALL:192.0.2.7 is a rule of the administrator's here, and the first one.
    assert add(data, IP("192.0.2.7"), HOSTS_ALLOW) == (
        b"ALL : 192.0.2.7 : deny\nALL:192.0.2.7\nALL : ALL : allow\n")


def test_freebsd_insertion_keeps_a_missing_final_newline():
    # Our line goes at the top, so the administrator's last line is not ours
    # to end.
    assert add(b"sshd : ALL : allow", IP("192.0.2.7"), HOSTS_ALLOW) == (
        b"ALL : 192.0.2.7 : deny\nsshd : ALL : allow")



# ------------------------------------------------ the file as tcpd reads it
#
# tcp_wrappers reads with fgets: only a newline ends a line (a lone CR is a
# byte of the line, which tcpd then splits on as on a blank); a backslash
# right before the newline joins the next line to this one, in a comment
# too; a backslash before CRLF does not.  A last line with no newline makes
# Debian's tcpd deny every client that reaches it (tcpdmatch shows it).

@pytest.mark.parametrize("data,at", [
    (b"sshd: 10.0.0.1 \\\n", 0),                           # continued into nothing
    (b"# admin\nsshd: 10.0.0.1\\\n", 8),
    (b"# admin\nsshd: 10.0.0.1 \\\n  10.0.0.2", 8),         # continued, no newline
    (b"# admin\nsshd: 10.0.0.1 \\\n\\\n", 8),
    (b"sshd: 10.0.0.1\n# note \\\n", 15),                   # a comment continues too
    (b"sshd: 10.0.0.1\nin.telnetd: 10.0.0.2\r", 15),        # a lone CR ends nothing
    (b"sshd: 10.0.0.1 \\\n\n", None),                       # ended by an empty line
    (b"sshd: 10.0.0.1 \\\r\n", None),                       # no continuation
    (b"sshd: 10.0.0.1\rin.telnetd: 10.0.0.2\n", None),
])
def test_our_line_never_continues_another_one(data, at):
    """It goes at the end, or, when the file's last line is not ended as
    tcpd ends a line, before the line that begins the last rule: every byte
    of the administrator's stays as it was, and a delete restores them."""
    address = IP("192.0.2.7")
    new = add(data, address, HOSTS_DENY)
    newline = b"\r\n" if b"\r\n" in data.split(b"\n", 1)[0] + b"\n" else b"\n"
    at = len(data) if at is None else at
    assert new == data[:at] + b"ALL:192.0.2.7" + newline + data[at:]
    assert address in members(new, HOSTS_DENY)
    assert delete(new, address, HOSTS_DENY) == (data, 1)


@pytest.mark.parametrize("data", [
    b"sshd: 10.0.0.1 \\\nALL:192.0.2.7\n",
    b"sshd: 10.0.0.1\\\nALL:192.0.2.7",
    b"# was: \\\nALL:192.0.2.7\nsshd: 10.0.0.1\n",
    b"sshd: 10.0.0.1 \\\n\\\nALL:192.0.2.7\n",
    b"in.telnetd: 10.0.0.1\rALL:192.0.2.7\n",
    b"ALL:192.0.2.7\rin.telnetd: 10.0.0.1\n",
    b"sshd: 10.0.0.1 \\\nALL:[::ffff:192.0.2.7]\n",           # the line-by-line scan
    b"in.telnetd: [2001:db8::1]\rALL:192.0.2.7\n",
])
def test_a_line_that_is_no_rule_of_its_own_is_not_ours(data):
    """Another rule's continuation, or a piece of a line after or before a
    lone CR, is the administrator's: no block, never removed."""
    address = IP("192.0.2.7")
    assert delete(data, address, HOSTS_DENY) == (data, 0)
    assert address not in members(data, HOSTS_DENY)
    new = add(data, address, HOSTS_DENY)
    assert new is not None and address in members(new, HOSTS_DENY)
    assert delete(new, address, HOSTS_DENY) == (data, 1)


def test_carriage_returns_at_the_end_of_our_line_are_blanks_of_it():
    # tcpd splits on CR as on a blank: the whole line is our rule, and goes.
    data = b"# admin\nALL:192.0.2.7\r\r\nsshd: 10.0.0.1\n"
    assert IP("192.0.2.7") in members(data, HOSTS_DENY)
    assert delete(data, IP("192.0.2.7"), HOSTS_DENY) == (b"# admin\nsshd: 10.0.0.1\n", 1)


def test_a_backslash_before_crlf_continues_nothing():
    data = b"sshd: 10.0.0.1 \\\r\nALL:192.0.2.7\r\n"
    assert IP("192.0.2.7") in members(data, HOSTS_DENY)
    assert add(data, IP("192.0.2.7"), HOSTS_DENY) is None
    assert delete(data, IP("192.0.2.7"), HOSTS_DENY) == (b"sshd: 10.0.0.1 \\\r\n", 1)


def test_freebsd_first_rule_is_found_as_tcpd_reads_the_file(tmp_path):
    """A comment ending in a backslash swallows the next line: the
    administrator's ALL : ALL : allow below it is switched off, and must
    stay so.  tcpdmatch judges (Debian's tcpd reads hosts.allow's options)."""
    data = (b"# off for now: \\\nALL : ALL : allow\n# rules\nsshd : 10.0.0.1 : allow\n"
            b"in.telnetd : ALL : deny\n")
    (tmp_path / "hosts.allow").write_bytes(data)
    before = tcpd.verdicts(str(tmp_path))
    new = add(data, IP("192.0.2.7"), HOSTS_ALLOW)
    assert new == data.replace(b"sshd", b"ALL : 192.0.2.7 : deny\nsshd")
    (tmp_path / "hosts.allow").write_bytes(new)
    assert tcpd.verdicts(str(tmp_path)) == {
        probe: "denied" if probe[1] == "192.0.2.7" else verdict
        for probe, verdict in before.items()}
    assert before[("sshd", "192.0.2.7")] == "granted"
    assert delete(new, IP("192.0.2.7"), HOSTS_ALLOW) == (data, 1)


@pytest.mark.parametrize("data", [b"# only comments \\\n", b"# only comments\nsshd : x \\\n"])
def test_freebsd_file_without_a_rule_gets_our_line_as_a_rule(data):
    new = add(data, IP("192.0.2.7"), HOSTS_ALLOW)
    at = data.rindex(b"\n", 0, len(data) - 1) + 1 if data.count(b"\n") > 1 else 0
    assert new == data[:at] + b"ALL : 192.0.2.7 : deny\n" + data[at:]

# ------------------------------------------------ the byte search, differentially

def tcpd_lines(data):
    """*data* in lines as tcpd's fgets reads them: each up to a newline."""
    lines = data.split(b"\n") if data else []
    return [line + b"\n" for line in lines[:-1]] + [line for line in lines[-1:] if line]


def tcpd_rules(lines):
    """The lines grouped into what tcpd reads as one line each: a line that
    ends in a backslash and its newline is joined by the next one."""
    rules = []
    for index, line in enumerate(lines):
        if index and lines[index - 1].endswith(b"\\\n"):
            rules[-1].append(line)
        else:
            rules.append([line])
    return rules


def reference_add(data, address, style):
    """add() as a line-by-line reading: every rule tested in turn."""
    rules = tcpd_rules(tcpd_lines(data))
    if any(len(rule) == 1 and style.blocks(rule[0], address) for rule in rules):
        return None
    lines = tcpd_lines(data)
    newline = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    at = None
    if style.at_top:
        for index, rule in enumerate(rules):
            text = b"".join(rule).replace(b"\\\n", b"").strip()
            if (text and not text.startswith(b"#")
                    and (len(rule) > 1 or style.address_of(rule[0]) is None)):
                at = index
                break
    if at is None:
        ended = rules and rules[-1][-1].endswith(b"\n") and not rules[-1][-1].endswith(b"\\\n")
        at = len(rules) if ended or not rules else len(rules) - 1
    rules.insert(at, [style.line(address) + newline])
    return b"".join(b"".join(rule) for rule in rules)


def reference_delete(data, address, style):
    rules = tcpd_rules(tcpd_lines(data))
    kept = [rule for rule in rules
            if not (len(rule) == 1 and style.blocks(rule[0], address, bare_ipv6=True))]
    return b"".join(b"".join(rule) for rule in kept), len(rules) - len(kept)


# With IPv6 addresses of two colons (2001::7): their lines have no more
# colons than "ALL : [2001::7] : deny"'s, which the byte search must count.
# And IPv6 prefixes (ipv6_prefix), each holding or starting with some of them.
POOL = ["192.0.2.7", "192.0.2.70", "198.51.100.1", "2001:db8::7", "2001:db8::70", "2001:db8:0:1::",
        "2001::7", "2a00::1", "2001:db8::/64", "2001:db8:0:1::/64", "2001::/16"]


def target(text):
    """The Address or Prefix that *text* names."""
    return parse_prefix(text) or IP(text)


def prefix_fragments(style, text):
    """Lines that are ours for the prefix *text*, and its near misses: its
    network address alone, another length, the host bits set, the length
    inside the brackets (which tcpd matches with nothing), no brackets."""
    network, length = text.split("/")
    ours = style.line(target(text)).decode()
    head, tail = ours.split("[%s]/%s" % (network, length))
    exploded = ipaddress.ip_address(network).exploded
    inside = str(ipaddress.ip_address(network) + 7)
    return [ours, ours + " ", ours + "\t", "# " + ours, ours + "x", "x" + ours, " " + ours,
            head + "[%s]/%s" % (exploded.upper(), length) + tail,
            head + "[%s]/0%s" % (network, length) + tail,
            head + "[%s]/%d" % (network, int(length) + 1) + tail,
            head + "[%s]/%s" % (inside, length) + tail,
            head + "[%s]" % network + tail, head + "[%s]/128" % network + tail,
            head + "[%s/%s]" % (network, length) + tail, head + text + tail]


def fragments(style, text):
    """Lines that are ours for *text*, near misses, and the administrator's."""
    if "/" in text:
        return prefix_fragments(style, text)
    address = IP(text)
    ours = style.line(address).decode()
    head, tail = ours.split(text if address.version == 4 else "[" + text + "]")
    forms = [ours, ours + " ", ours + "\t", "# " + ours, ours + "x", "x" + ours,
             " " + ours, head + text.upper() + tail, head + " " + text + tail]
    if address.version == 6:
        long_form = str(ipaddress.ip_address(text).exploded)
        forms += [head + text + tail,                       # Wazuh's bare form
                  head + "[" + text + "]/64" + tail,         # a network, maybe a prefix
                  head + "[" + long_form + "]" + tail, head + "[" + long_form.upper() + "]" + tail]
        if not text.endswith(":"):                          # 2001::07, a leading zero
            forms.append(head + "[" + text[:text.rindex(":") + 1] + "0"
                         + text[text.rindex(":") + 1:] + "]" + tail)
    else:
        forms += [head + "[::ffff:" + text + "]" + tail, head + "[" + text + "]" + tail,
                  head + "::ffff:" + text + tail, head + text + ".0" + tail]
    return forms


OTHERS = ["", "#", "# ALL:ALL", "sshd: 192.0.2.7", "in.telnetd: ALL", "ALL : ALL : allow",
          "sshd : 10.0.0.0/8 : allow", "ALL:", "ALL:[", "ALL:[]", "ALL:ALL", "ALL : : deny",
          "ALL:12:00", "vsftpd: [2001:db8::]/32", "\xff\xfe", "sshd: 10.0.0.1 \\",
          "# note \\", "\\", "in.telnetd: 10.0.0.1\rALL:192.0.2.7", "ALL:192.0.2.7\r# x"]


def random_file(rng, style):
    lines = []
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.5:
            line = rng.choice(fragments(style, rng.choice(POOL)))
        else:
            line = rng.choice(OTHERS)
        lines.append(line.encode("utf-8", "surrogateescape") + rng.choice([b"\n", b"\n", b"\r\n", b"\r", b"\\\n", b" \\\n", b"\\\r\n"]))
    data = b"".join(lines)
    if data and rng.random() < 0.2:
        data = data.rstrip(b"\r\n")                 # no line end after the last line
    elif data and rng.random() < 0.1:
        data += b"\\\n"                             # continued into nothing
    return data


@pytest.mark.parametrize("style", [HOSTS_DENY, HOSTS_ALLOW], ids=["hosts.deny", "hosts.allow"])
def test_the_byte_search_decides_as_the_line_scan_does(style):
    # 5,000 files from a fixed seed: every one is added to and deleted
    # from, for every address of the pool, and must come out byte for byte
    # as the line-by-line reference makes it.
    rng = random.Random(15)
    searched = scanned = 0
    for _ in range(5000):
        data = random_file(rng, style)
        if hostsfile._colon_hosts(data, style._colons):
            scanned += 1
        else:
            searched += 1
        for text in POOL:
            address = target(text)
            assert add(data, address, style) == reference_add(data, address, style), (data, text)
            assert delete(data, address, style) == reference_delete(data, address, style), (data, text)
    # Both ways of finding lines were taken, many times.
    assert searched > 500 and scanned > 500, (searched, scanned)


def test_a_long_file_without_colon_hosts_is_searched_not_scanned(monkeypatch):
    data = b"".join(b"ALL:198.18.%d.%d\n" % (i // 256, i % 256) for i in range(10000))
    monkeypatch.setattr(hostsfile.Style, "_scan", lambda *args: pytest.fail("scanned"))
    assert add(data, IP("198.18.3.4"), HOSTS_DENY) is None
    assert add(data, IP("203.0.113.9"), HOSTS_DENY) == data + b"ALL:203.0.113.9\n"
    new, removed = delete(data, IP("198.18.3.4"), HOSTS_DENY)
    assert removed == 1 and new == data.replace(b"ALL:198.18.3.4\n", b"")


@pytest.mark.parametrize("style,spellings", [
    (HOSTS_DENY, [b"ALL:[2001::7]", b"ALL:[2001::07]", b"ALL:[2001:0::7]", b"ALL:2001::7",
                  b"ALL:2001::07"]),
    (HOSTS_ALLOW, [b"ALL : [2001::7] : deny", b"ALL : [2001::07] : deny",
                   b"ALL : 2001::7 : deny"]),
], ids=["hosts.deny", "hosts.allow"])
def test_an_ipv6_address_of_two_colons_is_found_in_every_spelling(style, spellings):
    """2001::7 has no more colons than the line's own (ALL:[2001::7] has
    three, as many as ALL:12:00:00): the byte search must still find it in
    every spelling, the stock one, another, and Wazuh's bare one (a
    delete removes that too), alone in a file or among IPv4 lines."""
    address = IP("2001::7")
    others = [IP("2a00::1"), IP("2001::70"), IP("192.0.2.7")]
    for spelling in spellings:
        bare = b"[" not in spelling
        for data in (spelling + b"\n", b"sshd: ALL\n" + spelling + b"\nALL:192.0.2.7\n"):
            assert delete(data, address, style) == (data.replace(spelling + b"\n", b""), 1), data
            for other in others:            # near misses are not it
                expected = int(style.line(other) + b"\n" in data)
                assert delete(data, other, style)[1] == expected, (data, other)
            if bare:                # blocks nothing: an add writes ours
                assert add(data, address, style) is not None
                assert address not in members(data, style)
            else:
                assert add(data, address, style) is None, data
                assert address in members(data, style)


# ------------------------------------------------ IPv6 prefixes (ipv6_prefix)
#
# A prefix is a target of its own: its line is never the line of an address
# inside it (its network address included) nor of another length, and the
# other way round.

NET = parse_prefix("2001:db8:1:2::/64")
NEIGHBOURS = [IP("2001:db8:1:2::"), IP("2001:db8:1:2::7"), parse_prefix("2001:db8:1::/48"),
              parse_prefix("2001:db8:1:2::/65"), parse_prefix("2001:db8:1:3::/64")]
BOTH = pytest.mark.parametrize("style", [HOSTS_DENY, HOSTS_ALLOW], ids=["hosts.deny", "hosts.allow"])


@BOTH
def test_a_prefix_is_added_once_and_read_back_as_that_prefix(style):
    data = b"# admin\n"
    new = add(data, NET, style)
    assert new == data + style.line(NET) + b"\n"
    assert add(new, NET, style) is None
    assert members(new, style) == members(new, style, bare_ipv6=True) == {NET}
    assert style.address_of(style.line(NET)) == NET
    for other in NEIGHBOURS:
        # Not blocked by the prefix's line, nor its line lifted by their delete.
        assert delete(new, other, style) == (new, 0)
        both = add(new, other, style)
        assert both == new + style.line(other) + b"\n"
        assert members(both, style) == {NET, other}
        assert add(both, NET, style) is None and add(both, other, style) is None
        assert delete(both, NET, style) == (data + style.line(other) + b"\n", 1)
        assert delete(both, other, style) == (new, 1)


@BOTH
def test_a_delete_of_one_copy_takes_one_line_of_that_prefix_and_nothing_else(style):
    ours = style.line(NET) + b"\n"
    others = b"".join(style.line(other) + b"\n" for other in NEIGHBOURS)
    data = b"# admin\n" + ours + others + ours
    # The copy an add would have written: the first at the top, else the last.
    kept = b"# admin\n" + others + ours if style.at_top else b"# admin\n" + ours + others
    assert delete(data, NET, style, copies=1) == (kept, 1)
    assert delete(data, NET, style) == (b"# admin\n" + others, 2)
    assert members(data, style) == {NET} | set(NEIGHBOURS)


def test_freebsd_prefix_lines_go_before_the_first_rule_in_the_order_added():
    one = add(FREEBSD_DEFAULT, IP("192.0.2.7"), HOSTS_ALLOW)
    two = add(one, NET, HOSTS_ALLOW)
    three = add(two, IP("2001:db8:1:2::7"), HOSTS_ALLOW)
    head, tail = FREEBSD_DEFAULT.split(b"ALL : ALL : allow\n")
    assert three == (head + b"ALL : 192.0.2.7 : deny\nALL : [2001:db8:1:2::]/64 : deny\n"
                     b"ALL : [2001:db8:1:2::7] : deny\nALL : ALL : allow\n" + tail)
    assert delete(three, NET, HOSTS_ALLOW, copies=1) == (
        head + b"ALL : 192.0.2.7 : deny\nALL : [2001:db8:1:2::7] : deny\n"
        b"ALL : ALL : allow\n" + tail, 1)


@pytest.mark.parametrize("line,prefix", [
    (b"ALL:[2001:db8:1:2::]/64", "2001:db8:1:2::/64"),
    (b"ALL:[2001:db8:1:2::]/64 \r", "2001:db8:1:2::/64"),          # trailing blanks
    (b"ALL:[2001:DB8:1:2:0:0:0:0]/64", "2001:db8:1:2::/64"),      # tcpd reads them alike
    (b"ALL:[2001:db8::]/48", "2001:db8::/48"),
    (b"ALL:[2001:db8:1:2:ab:cd:ef:6]/127", "2001:db8:1:2:ab:cd:ef:6/127"),
])
def test_prefix_lines_in_other_spellings_are_that_prefix(line, prefix):
    prefix = parse_prefix(prefix)
    assert HOSTS_DENY.address_of(line) == prefix
    assert members(line + b"\n", HOSTS_DENY) == {prefix}
    assert add(line + b"\n", prefix, HOSTS_DENY) is None
    assert delete(line + b"\n", prefix, HOSTS_DENY) == (b"", 1)


@pytest.mark.parametrize("line", [
    b"ALL:[2001:db8:1:2::7]/64",            # host bits set: not a line we write
    b"ALL:[2001:db8:1:2::/64]",             # tcpd matches nothing with it
    b"ALL:2001:db8:1:2::/64",               # no brackets: tcpd reads other fields
    b"ALL:[2001:db8:1:2::]/128", b"ALL:[2001:db8:1:2::]/0", b"ALL:[2001:db8:1:2::]/",
    b"ALL:[2001:db8:1:2::]/064",            # a length we never write (tcpd reads 64)
    b"ALL:[2001:db8:1:2::]/+64", b"ALL:[2001:db8:1:2::]/ 64", b"ALL:[2001:db8:1:2::]/64]",
    b"ALL:[2001:db8:1:2::]/ffff:ffff:ffff:ffff::", b"ALL:[2001:db8:1:2::]/64 EXCEPT x",
    b"ALL:[192.0.2.0]/24", b"ALL:[::ffff:192.0.2.0]/120", b"ALL : [2001:db8:1:2::]/64 : deny",
    b"sshd:[2001:db8:1:2::]/64", b"# ALL:[2001:db8:1:2::]/64",
])
def test_lines_that_are_no_prefix_of_ours(line):
    assert HOSTS_DENY.address_of(line) is None
    assert members(line + b"\n", HOSTS_DENY, bare_ipv6=True) == set()
    for other in [NET] + NEIGHBOURS:
        assert delete(line + b"\n", other, HOSTS_DENY) == (line + b"\n", 0)


PROBES = {"2001:db8:1:2::": "denied", "2001:db8:1:2::7": "denied", "2001:db8:1:2::99": "denied",
          "2001:db8:1:2:ffff:ffff:ffff:ffff": "denied", "2001:db8:1:3::1": "granted",
          "2001:db8:1:1:ffff:ffff:ffff:ffff": "granted", "2001:db8::7": "granted",
          "192.0.2.7": "granted"}


@BOTH
def test_tcpd_denies_the_whole_prefix_and_nothing_beside_it(tmp_path, style):
    """tcpdmatch judges our line, in hosts.deny and in FreeBSD's
    hosts.allow (Debian's tcpd reads its options): every address of the
    /64 denied, its neighbours as before; a delete gives all back."""
    data = FREEBSD_DEFAULT if style.at_top else ADMIN
    path = tmp_path / style.path.rsplit("/", 1)[1]
    path.write_bytes(data)
    before = tcpd.verdicts(str(tmp_path), clients=sorted(PROBES), daemons=["sshd"])
    assert set(before.values()) == {"granted"}
    new = add(data, NET, style)
    path.write_bytes(new)
    assert tcpd.verdicts(str(tmp_path), clients=sorted(PROBES), daemons=["sshd"]) == {
        ("sshd", client): verdict for client, verdict in PROBES.items()}
    path.write_bytes(delete(new, NET, style, copies=1)[0])
    assert path.read_bytes() == data
    assert tcpd.verdicts(str(tmp_path), clients=sorted(PROBES), daemons=["sshd"]) == before
