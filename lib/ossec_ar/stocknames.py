"""Put our programs under the names execd runs, and give the names back.

Our programs are installed as ``ossec-ar-firewall-drop`` and
``ossec-ar-host-deny`` in ``active-response/bin``.  The names that agents'
configurations use, ``firewall-drop.sh`` and ``host-deny.sh`` (OSSEC, Wazuh
before 4.2) and ``firewall-drop`` and ``host-deny`` (Wazuh 4.2 and later),
become symbolic links to them.  A stock file found under one of those names
is kept beside it as ``<name>.stock`` and put back by ``restore``.

``make install`` and the RPM's scriptlets and triggers run this file as a
script; the .deb gets the same result from dpkg-divert instead.  Standard
library only, no imports from the package: it runs before the package is
complete and after it is gone.

    python3 -I stocknames.py link|restore|orphaned <active-response/bin directory>

``orphaned`` is for the RPM, after the agent's package was erased: the
stock files it kept belong to nothing any more and are deleted, and the
links that the erase took with the agent's files are made again.
"""

import os
import sys

# name execd runs -> our program
LINKS = {
    "firewall-drop.sh": "ossec-ar-firewall-drop",
    "firewall-drop": "ossec-ar-firewall-drop",
    "host-deny.sh": "ossec-ar-host-deny",
    "host-deny": "ossec-ar-host-deny",
}
STOCK_SUFFIX = ".stock"


def link(bindir):
    """Make every name a link to our program, keeping what was there."""
    for name, target in sorted(LINKS.items()):
        path = os.path.join(bindir, name)
        if _is_our_link(path, target):
            continue
        if os.path.lexists(path):
            # A stock file, new or upgraded by the agent's package: the newest
            # one is what ``restore`` must give back.
            os.replace(path, path + STOCK_SUFFIX)
        temporary = os.path.join(bindir, ".%s.ossec-ar-link" % name)
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, path)


def restore(bindir):
    """Remove our links and put the stock files back where they were."""
    for name, target in sorted(LINKS.items()):
        path = os.path.join(bindir, name)
        if _is_our_link(path, target):
            os.unlink(path)
        stock = path + STOCK_SUFFIX
        if os.path.lexists(stock) and not os.path.lexists(path):
            os.replace(stock, path)


def orphaned(bindir):
    """Delete the kept stock files, whose package is gone, and link again."""
    for name in sorted(LINKS):
        stock = os.path.join(bindir, name + STOCK_SUFFIX)
        if os.path.lexists(stock):
            os.unlink(stock)
    link(bindir)


def _is_our_link(path, target):
    return os.path.islink(path) and os.readlink(path) == target


def main(argv):
    actions = {"link": link, "restore": restore, "orphaned": orphaned}
    if len(argv) != 3 or argv[1] not in actions:
        sys.stderr.write("usage: %s link|restore|orphaned <active-response/bin directory>\n"
                         % argv[0])
        return 64
    actions[argv[1]](argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
