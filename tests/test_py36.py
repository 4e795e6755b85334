"""Every file the programs load must run on Python 3.6 (RHEL 8, SLES 15)."""

import ast
import glob
import os
import re

import pytest

from conftest import ROOT

SOURCES = sorted(glob.glob(os.path.join(ROOT, "lib", "**", "*.py"), recursive=True)
                 + glob.glob(os.path.join(ROOT, "active-response", "bin", "*")))

# APIs added after 3.6 that are easy to reach for.
NEWER_APIS = [
    (r"\bcapture_output\s*=", "subprocess capture_output (3.7)"),
    (r"\btext\s*=\s*True", "subprocess text= (3.7)"),
    (r"\bimport dataclasses|\bfrom dataclasses\b", "dataclasses (3.7)"),
    (r"from __future__ import annotations", "postponed annotations (3.7)"),
    (r"\btime_ns\(|\bmonotonic_ns\(", "time.*_ns (3.7)"),
    (r"\bnullcontext\b", "contextlib.nullcontext (3.7)"),
    (r"\basyncio\.run\(", "asyncio.run (3.7)"),
    (r"\bbreakpoint\(", "breakpoint (3.7)"),
    (r"\bimportlib\.resources\b", "importlib.resources (3.7)"),
    (r"\bos\.posix_spawn\(", "os.posix_spawn (3.8) without a fallback"),
    (r"\bcached_property\b", "functools.cached_property (3.8)"),
    (r"\bshlex\.join\b", "shlex.join (3.8)"),
    (r"\.removeprefix\(|\.removesuffix\(", "str.removeprefix (3.9)"),
    (r"\bmath\.prod\b|\bmath\.isqrt\b", "math.prod/isqrt (3.8)"),
    (r"\bfromisoformat\b", "fromisoformat (3.7)"),
    (r"\bwaitstatus_to_exitcode\b", "os.waitstatus_to_exitcode (3.9)"),
    (r"\bis_relative_to\b", "PurePath.is_relative_to (3.9)"),
]


def test_sources_found():
    names = {os.path.basename(path) for path in SOURCES}
    assert {"firewall-drop.sh", "cli.py", "iptables.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_parses_as_python_36(path):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    ast.parse(source, filename=path, feature_version=(3, 6))
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith("#"))
    for pattern, api in NEWER_APIS:
        assert not re.search(pattern, code), "%s uses %s" % (path, api)


def test_the_check_catches_a_newer_construct():
    with pytest.raises(SyntaxError):
        ast.parse("if (n := 1): pass", feature_version=(3, 6))
