"""ossec-ar's bash completion (completion/ossec-ar.bash), run by the real
bash: the commands and options of the real parser, and for unblock the
addresses that the real ossec-ar lists."""

import os
import subprocess

import pytest

from conftest import ROOT
from ossec_ar import admin

COMPLETION = os.path.join(ROOT, "completion", "ossec-ar.bash")


def complete(words, netns=None, wordbreaks=None, line=None):
    """COMPREPLY for the command line *words* (the last one being
    completed), as bash fills COMP_* when Tab is pressed at the end of
    *line* (the words joined by spaces, unless given)."""
    line = " ".join(words) if line is None else line
    script = ('source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE=%s; '
              'COMP_POINT=${#COMP_LINE}; %s_ossec_ar; printf "%%s\\n" "${COMPREPLY[@]}"'
              % (_quoted(line), "" if wordbreaks is None else
                 "COMP_WORDBREAKS=%s; " % _quoted(wordbreaks)))
    argv = ["bash", "--norc", "-c", script, COMPLETION] + list(words)
    if netns is not None:
        argv = netns.prefix() + argv
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    return [line for line in result.stdout.splitlines() if line]


def _quoted(text):
    return "'%s'" % text.replace("'", "'\\''")


def commands():
    """{command: its long options} of ossec-ar's own parser."""
    parser = admin._parser()
    choices = [action for action in parser._actions
               if action.__class__.__name__ == "_SubParsersAction"][0].choices
    return {name: sorted(option for action in sub._actions
                         for option in action.option_strings if option.startswith("--"))
            for name, sub in choices.items()}


def test_un_completes_to_unblock():
    assert complete(["ossec-ar", "un"]) == ["unblock"]


def test_every_command_of_the_parser_and_no_other():
    assert sorted(complete(["ossec-ar", ""])) == sorted(commands())
    assert complete(["ossec-ar", "--json", "st"]) == ["status"]
    assert sorted(complete(["ossec-ar", "--"])) == ["--help", "--json", "--version"]


@pytest.mark.parametrize("command", sorted(commands()))
def test_each_commands_options_are_the_parsers(command):
    assert sorted(complete(["ossec-ar", command, "--"])) == commands()[command]


def test_a_file_after_output_and_nothing_after_older_than(tmp_path):
    (tmp_path / "ossec-ar.prom").write_text("")
    typed = str(tmp_path / "oss")
    assert complete(["ossec-ar", "metrics", "--output", typed]) == [
        str(tmp_path / "ossec-ar.prom")]
    assert complete(["ossec-ar", "expire", "--older-than", ""]) == []


def test_unblock_completes_the_addresses_that_list_shows(nft_netns, install):
    for address in ("192.0.2.7", "192.0.2.8", "2001:db8::7"):
        assert nft_netns.run([install.program(), "add", "-", address, "1.1", "1"]) \
            .returncode == 0
    ossec_ar = os.path.join(install.prefix, "bin", "ossec-ar")
    assert sorted(complete([ossec_ar, "unblock", ""], nft_netns)) == [
        "192.0.2.7", "192.0.2.8", "2001:db8::7"]
    assert complete([ossec_ar, "unblock", "192.0.2.8"], nft_netns) == ["192.0.2.8"]
    # bash splits "2001:db8::" at its colons: the answer is what follows the
    # last one typed, which bash puts after it.
    words = [ossec_ar, "unblock", "2001", ":", "db8", "::"]
    assert complete(words, nft_netns, wordbreaks=" \t\n\"'><=;|&(:",
                    line=ossec_ar + " unblock 2001:db8::") == ["7"]
    # Without a colon among the word breaks, the whole address.
    assert complete([ossec_ar, "unblock", "2001:db8::"], nft_netns,
                    wordbreaks=" \t\n\"'><=;|&(") == ["2001:db8::7"]


def test_unblock_completes_a_prefix_and_the_addresses_indented_under_it(nft_netns, install):
    install.configure("[firewall-drop]\nbackend = nftables\nipv6_prefix = 64\n")
    for address in ("2001:db8:1:2::7", "2001:db8:1:2::8"):
        assert nft_netns.run([install.program(), "add", "-", address, "1.1", "1"]) \
            .returncode == 0
    ossec_ar = os.path.join(install.prefix, "bin", "ossec-ar")
    assert complete([ossec_ar, "unblock", "2001:db8:1:2::"], nft_netns,
                    wordbreaks=" \t\n\"'><=;|&(") == [
        "2001:db8:1:2::/64", "2001:db8:1:2::7", "2001:db8:1:2::8"]
