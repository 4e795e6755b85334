"""The upstream files the tests and the benchmark use, carried in
``tests/vendor/`` (its README.md says where each comes from and under what
licence), and their checksums.

Every file there but README.md, SHA256SUMS and .gitattributes is listed in SHA256SUMS (the
format of ``sha256sum``).  Nothing uses one without :func:`verify`, which
refuses a file whose SHA-256 is not the listed one.

``python3 tests/vendored.py check`` (run by tools/setup before anything is
built) checks them all: exit 0 if every listed file is present and
matches and no file is unlisted, 1 otherwise, with one line per problem on
stderr.
"""

import hashlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(ROOT, "tests", "vendor")
SUMS = os.path.join(VENDOR, "SHA256SUMS")
# Ours, not upstream's: not in SHA256SUMS.
OWN = ("README.md", "SHA256SUMS", ".gitattributes")

OSSEC_VERSION = "7f06fe0"
OSSEC_TARBALL = os.path.join(VENDOR, "ossec-hids-%s.tar.gz" % OSSEC_VERSION)
STOCK_DIR = os.path.join(VENDOR, "stock-ar")
# Oldest first; 3.7.0 and 4.2.0 are the same files.
STOCK_VERSIONS = ("2.8.3", "3.7.0", "4.2.0", "main-7f06fe0")
STOCK_NAMES = ("firewall-drop.sh", "host-deny.sh")


class Mismatch(Exception):
    """A vendored file is absent, unlisted or not the one listed."""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listed():
    """SHA256SUMS as {path relative to tests/vendor: hex digest}."""
    sums = {}
    with open(SUMS) as f:
        for number, line in enumerate(f, 1):
            digest, sep, name = line.rstrip("\n").partition("  ")
            if not sep or len(digest) != 64 or not name or name in sums:
                raise Mismatch("%s:%d: not a sha256sum line: %r" % (SUMS, number, line))
            sums[name] = digest
    return sums


def relative(path):
    rel = os.path.relpath(os.path.abspath(path), VENDOR)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise Mismatch("%s is not in %s" % (path, VENDOR))
    return rel


def verify(path, expected=None):
    """The SHA-256 of *path* (a file of tests/vendor/), after checking it
    against SHA256SUMS; :class:`Mismatch` if it differs.  *expected* names
    the entry to check against (``stock-ar/4.2.0/firewall-drop.sh``) when
    *path* is a copy elsewhere."""
    name = expected or relative(path)
    sums = listed()
    if name not in sums:
        raise Mismatch("%s is not listed in %s" % (name, SUMS))
    if not os.path.isfile(path):
        raise Mismatch("%s is absent (it belongs to the repository: tests/vendor/%s)"
                       % (path, name))
    found = sha256(path)
    if found != sums[name]:
        raise Mismatch("%s has SHA-256 %s, not the %s that %s lists for %s: refused"
                       % (path, found, sums[name], SUMS, name))
    return found


def stock_script(version, name):
    """The path of the stock *name* of *version*, verified."""
    path = os.path.join(STOCK_DIR, version, name)
    verify(path)
    return path


def problems():
    """Every problem with tests/vendor/, as lines (none: all is well)."""
    try:
        sums = listed()
    except (OSError, Mismatch) as error:
        return [str(error)]
    found = []
    for name in sorted(sums):
        try:
            verify(os.path.join(VENDOR, name), name)
        except Mismatch as error:
            found.append(str(error))
    for top, dirs, files in os.walk(VENDOR):
        dirs.sort()
        for file in sorted(files):
            name = os.path.relpath(os.path.join(top, file), VENDOR)
            if name not in sums and name not in OWN:
                found.append("%s is not listed in %s" % (name, SUMS))
    return found


def main(argv):
    if argv[1:] != ["check"]:
        print("usage: tests/vendored.py check", file=sys.stderr)
        return 64
    found = problems()
    for line in found:
        print("tests/vendored.py: %s" % line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
