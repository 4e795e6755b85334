"""The manual pages: each renders without a warning from groff, and
ossec-ar(8) covers every command and option of the real parser and every
exit code.  (make version-check checks their versions; lintian, in
test_packages, checks them installed.)"""

import os
import re
import subprocess

import pytest

from conftest import ROOT
from ossec_ar import admin, exits

PAGES = ("firewall-drop.sh.8", "host-deny.sh.8", "ossec-ar.8")


def page(name):
    with open(os.path.join(ROOT, "man", name)) as f:
        return f.read()


def section(text, title):
    return text.split("\n.SH %s\n" % title, 1)[1].split("\n.SH ", 1)[0]


@pytest.mark.parametrize("name", PAGES)
def test_the_page_renders_without_warnings(name):
    result = subprocess.run(["groff", "-man", "-t", "-ww", "-z",
                             os.path.join(ROOT, "man", name)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60,
                            env={"LC_ALL": "C", "PATH": os.environ["PATH"]})
    assert (result.returncode, result.stderr) == (0, "")


def parser_commands():
    parser = admin._parser()
    action = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    return {name: sorted(option for a in sub._actions for option in a.option_strings
                         if option.startswith("--"))
            for name, sub in action.choices.items()}


def roff(text):
    """Roff's escaped hyphens as plain ones."""
    return text.replace("\\-", "-")


def entries(text):
    """{tag's first word: the tagged paragraph} of a section's .TP list."""
    found = {}
    for chunk in ("\n" + text).split("\n.TP\n")[1:]:
        found[chunk.split("\n", 1)[0].split()[1].strip('"')] = chunk
    return found


def test_every_command_and_its_options_are_in_ossec_ar_8():
    commands = entries(roff(section(page("ossec-ar.8"), "COMMANDS")))
    assert sorted(commands) == sorted(parser_commands())
    for command, options in parser_commands().items():
        for option in options:
            if option not in ("--help", "--json"):      # OPTIONS: every command's
                assert option in commands[command], (command, option)
    options = roff(section(page("ossec-ar.8"), "OPTIONS"))
    for option in ("--json", "--help", "--version"):
        assert option in options


def test_every_exit_code_is_in_ossec_ar_8():
    status = section(page("ossec-ar.8"), "EXIT STATUS")
    listed = sorted(int(code) for code in re.findall(r"^\.TP\n\.B (\d+)$", status, re.M))
    codes = sorted(value for name, value in vars(exits).items()
                   if name.isupper() and isinstance(value, int))
    assert listed == codes
