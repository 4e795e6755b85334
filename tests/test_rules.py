"""The OSSEC decoder and rules shipped in rules/, against the programs' own
outcome lines.

No OSSEC manager runs here, so the decoder's OS_Regex patterns and the
rules' OS_Match patterns are translated to Python's re following OSSEC's
regex syntax page (docs/syntax/regex: \\w is A-Z, a-z, 0-9, '-' and '@';
\\s is a space; \\. is any character; + and *; ^, $ and | between whole
patterns).  OSSEC's engine takes the shortest match of a + where the rest
matches and backtracks only a few steps, Python's re the longest: every
pattern is checked both ways, and both must give the same fields.
"""

import os
import re
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import ROOT
from decoder import AR_LOG_PARENT, decode
from fakebsd import FakeHost

_CLASSES = {"w": "[A-Za-z0-9@-]", "W": "[^A-Za-z0-9@-]", "d": "[0-9]", "D": "[^0-9]",
            "s": " ", "S": "[^ ]", "t": "\t", ".": ".",
            "p": "[" + re.escape("()*+,-.:;<=>?[]!\"'#$%&|{}") + "]"}
_ESCAPED = "()\\$|"


def _split(pattern):
    """The alternatives of a pattern: '|' not escaped by a backslash."""
    parts, current, i = [], "", 0
    while i < len(pattern):
        if pattern[i] == "\\":
            current += pattern[i:i + 2]
            i += 2
            continue
        if pattern[i] == "|":
            parts.append(current)
            current = ""
        else:
            current += pattern[i]
        i += 1
    return parts + [current]


def os_regex(pattern, lazy):
    """A Python regex for an OS_Regex pattern, shortest or longest matches."""
    alternatives = []
    for text in _split(pattern):
        out, i = "", 0
        if text.startswith("^"):
            out, i = "^", 1
        end = text.endswith("$") and not text.endswith("\\$")
        body = text[:-1] if end else text
        while i < len(body):
            char = body[i]
            if char == "\\":
                code = body[i + 1]
                if code in _CLASSES:
                    out += _CLASSES[code]
                elif code in _ESCAPED:
                    out += re.escape(code)
                else:
                    raise ValueError("OS_Regex has no \\%s" % code)
                i += 2
                if i < len(body) and body[i] in "+*":
                    out += body[i] + ("?" if lazy else "")
                    i += 1
                continue
            if char in "+*":
                raise ValueError("a modifier that follows no \\ expression")
            out += char if char in "()" else re.escape(char)
            i += 1
        alternatives.append("(?:%s%s)" % (out, "$" if end else ""))
    return re.compile("|".join(alternatives))


def os_match(pattern, text):
    """OS_Match: literal strings, ^ and $ anchors, '|' between them."""
    for alternative in pattern.split("|"):
        start, end = alternative.startswith("^"), alternative.endswith("$")
        word = alternative[1 if start else 0:-1 if end else None]
        if (start and end and text == word or start and not end and text.startswith(word)
                or end and not start and text.endswith(word)
                or not start and not end and word in text):
            return True
    return False


def elements(name):
    with open(os.path.join(ROOT, "rules", name)) as f:
        return ElementTree.fromstring("<root>%s</root>" % f.read())


DECODER = elements("ossec-ar_decoders.xml").find("decoder")
RULES = {int(rule.get("id")): rule for rule in elements("ossec-ar_rules.xml").iter("rule")}


def decode_outcome(line, lazy):
    """The fields our decoder gives *line*, or None if it does not decode."""
    parent = AR_LOG_PARENT.match(line)
    if not parent or DECODER.find("parent").text != "ar_log":
        return None
    rest = line[parent.end():]
    if not os_regex(DECODER.find("prematch").text, lazy).search(rest):
        return None
    found = os_regex(DECODER.find("regex").text, lazy).search(rest)
    if not found:
        return {}
    names = [name.strip() for name in DECODER.find("order").text.split(",")]
    return dict(zip(names, found.groups()))


def alert(fields):
    """(rule id, level) of the deepest of our rules that matches, after 600."""
    matched, parent = None, 600
    while True:
        children = [rid for rid, rule in RULES.items()
                    if int(rule.find("if_sid").text) == parent and _matches(rule, fields)]
        if not children:
            return matched
        parent = children[0]
        matched = (parent, int(RULES[parent].get("level")))


def _matches(rule, fields):
    for option in ("extra_data", "status", "action", "srcip"):
        wanted = rule.find(option)
        if wanted is not None and not os_match(wanted.text, fields.get(option) or ""):
            return False
    return True


@pytest.fixture(scope="module")
def outcome_lines(tmp_path_factory, installed_prefix):
    """Real outcome lines: firewall-drop.sh on a (fake) FreeBSD host whose
    pfctl works, then fails; refusals from both programs."""
    from conftest import Install
    install = Install(installed_prefix)
    install.reset()
    host = FakeHost(install, tmp_path_factory.mktemp("rules") / "sbin", "FreeBSD", ["pf"])
    lines = {}
    for key, program, args in (
            ("blocked", "firewall-drop.sh", ["add", "-", "192.0.2.7", "1.1", "5712"]),
            ("already", "firewall-drop.sh", ["add", "-", "192.0.2.7", "1.1", "5712"]),
            ("unblocked", "firewall-drop.sh", ["delete", "-", "192.0.2.7", "1.1", "5712"]),
            ("refused", "firewall-drop.sh", ["add", "-", "127.0.0.1", "1.1", "5712"]),
            ("refused-host-deny", "host-deny.sh", ["add", "-", "not-an-ip", "1.1", "5712"])):
        host.run_program(program, *args)
        lines[key] = install.log_lines()[-1]
    host.fail("pfctl", "-T add", 1, "pfctl: /dev/pf: Permission denied")
    for key, address in (("failed", "192.0.2.8"), ("failed-v6", "2001:db8::8")):
        host.run_program("firewall-drop.sh", "add", "-", address, "1.1", "5712")
        lines[key] = install.log_lines()[-1]
    install.reset()
    return lines


@pytest.mark.parametrize("lazy", [True, False], ids=["shortest", "longest"])
def test_failures_alert_at_level_10_naming_program_address_and_reason(outcome_lines, lazy):
    for key, address in (("failed", "192.0.2.8"), ("failed-v6", "2001:db8::8")):
        line = outcome_lines[key]
        assert line.endswith("(exit 75)")
        fields = decode_outcome(line, lazy)
        assert fields == {"extra_data": "firewall-drop.sh", "action": "add", "srcip": address,
                          "status": "failed", "id": "75",
                          "data": line.split(": failed: ", 1)[1][:-len(" (exit 75)")]}
        assert "Permission denied" in fields["data"]
        assert alert(fields) == (100611, 10)
        assert decode(line) is None               # never an invocation (rules 601-604)


@pytest.mark.parametrize("lazy", [True, False], ids=["shortest", "longest"])
def test_refusals_alert_lower(outcome_lines, lazy):
    for key, program, address, reason in (
            ("refused", "firewall-drop.sh", "127.0.0.1", "loopback address"),
            ("refused-host-deny", "host-deny.sh", "not-an-ip", "not an IP address")):
        fields = decode_outcome(outcome_lines[key], lazy)
        assert (fields["extra_data"], fields["srcip"], fields["status"], fields["id"]) == (
            program, address, "refused", "65")
        assert reason in fields["data"]
        assert alert(fields) == (100612, 5)
    assert int(RULES[100612].get("level")) < 7 <= int(RULES[100611].get("level"))


@pytest.mark.parametrize("lazy", [True, False], ids=["shortest", "longest"])
def test_successful_runs_raise_nothing(outcome_lines, lazy):
    for key in ("blocked", "already", "unblocked"):
        fields = decode_outcome(outcome_lines[key], lazy)
        assert alert(fields or {}) in (None, (100610, 0)), key


def test_the_translation_refuses_what_os_regex_lacks():
    with pytest.raises(ValueError):
        os_regex(r"^[a-z]+", lazy=True)
    with pytest.raises(ValueError):
        os_regex(r"^a+", lazy=True)
    assert os_regex(r"^\d+ \(x\)$|^y", lazy=False).match("12 (x)")
