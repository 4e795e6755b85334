"""The README is a front page, and the reference is in docs/: nothing of the
README of 0.2.0 was lost on the way (each of its headings is still a heading
of README.md or of a file in docs/), every relative link resolves, to a
file and to a heading in it, and every file in docs/ is linked from the
front page."""

import os
import re

import pytest

from conftest import ROOT

# The headings of README.md before it became a front page (issue 23).
OLD_HEADINGS = [
    "ossec-ar", "The two commands", "Vendored files", "Install", "Checking the install",
    "Removing ossec-ar", "ossec.conf", "Firewall backends", "Other systems", "Wazuh agents",
    "The ossec-ar command", "Firewall reloads", "Expiring blocks on a schedule",
    "Metrics for Prometheus", "Lifting a block from the manager",
    "Alerts on failed responses", "Configuration", "Protections: the host is never cut off",
    "The log", "Files opened as root, and who may write them", "Exit codes", "Layout"]
FRONT_PAGE_LINES = 300


def documents():
    """{path relative to the repository: text} of README.md and docs/*.md."""
    found = {"README.md": None}
    found.update({"docs/" + name: None for name in os.listdir(os.path.join(ROOT, "docs"))
                  if name.endswith(".md")})
    for path in found:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            found[path] = f.read()
    return found


def headings(text):
    """The headings of a Markdown text, outside fenced code."""
    found, fenced = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            match = re.match(r"^#{1,6} (.+?)\s*#*$", line)
            if match:
                found.append(match.group(1))
    return found


def anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces made hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def links(text):
    """The link targets of a Markdown text, outside code."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_the_front_page_is_at_most_300_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= FRONT_PAGE_LINES


def test_every_heading_of_the_old_readme_is_still_there():
    found = set()
    for text in documents().values():
        found.update(headings(text))
    assert [heading for heading in OLD_HEADINGS if heading not in found] == []


@pytest.mark.parametrize("path", sorted(documents()))
def test_every_relative_link_resolves(path):
    texts = documents()
    broken = []
    for target in links(texts[path]):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue                                    # http:, mailto:
        file, _, fragment = target.partition("#")
        where = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(os.path.join(ROOT, where)):
            broken.append("%s: no file %s" % (target, where))
            continue
        if fragment and where.endswith(".md"):
            with open(os.path.join(ROOT, where), encoding="utf-8") as f:
                anchors = {anchor(h) for h in headings(f.read())}
            if fragment not in anchors:
                broken.append("%s: no heading #%s in %s" % (target, fragment, where))
    assert broken == []


def test_the_front_page_links_every_file_in_docs():
    texts = documents()
    linked = {os.path.normpath(target.partition("#")[0]) for target in links(texts["README.md"])}
    assert sorted(path for path in texts if path.startswith("docs/")
                  and path not in linked) == []
