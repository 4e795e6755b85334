"""Put our programs under the names execd runs, and give the names back.

Our programs are installed as ``ossec-ar-firewall-drop``,
``ossec-ar-host-deny`` and ``ossec-ar-unblock`` in ``active-response/bin``.
The names that agents' configurations use (``NAMES_OF_PROGRAM`` below)
become symbolic links to them.  A stock file found under one of those names
is kept beside it as ``<name>.stock`` and put back by ``restore``.

This file holds the one list of those names.  ``make install`` and the
RPM's scriptlets and triggers run it as a script; the .deb's maintainer
scripts, which divert the names with dpkg-divert instead, get the list from
it when the package is built (``names`` and ``programs``).  Standard
library only, no imports from the package: it runs before the package is
complete and after it is gone.

    python3 -I stocknames.py link|restore|orphaned <active-response/bin directory>
    python3 -I stocknames.py names|programs

``orphaned`` is for the RPM, after the agent's package was erased: the
stock files it kept belong to nothing any more and are deleted, and the
links that the erase took with the agent's files are made again.
``names`` and ``programs`` print the names, and our programs, on one line.
"""

import os
import sys

# Our programs, each with the names execd runs it by.  OSSEC's names end in
# .sh (OSSEC's src/Makefile, install-common; Wazuh before 4.2 too), Wazuh
# 4.2 and later's do not (Wazuh's src/init/inst-functions.sh, InstallCommon).
# Under firewall-drop the program uses the configured backend; under the
# others, the firewall the name says (BACKEND_OF_NAME in firewall.py).
NAMES_OF_PROGRAM = {
    "ossec-ar-firewall-drop": (
        "firewall-drop.sh", "firewall-drop",
        "firewalld-drop.sh", "firewalld-drop",
        "nftables-drop.sh",                         # OSSEC only
        "route-null.sh", "route-null",
        "pf.sh", "pf",                              # the BSDs and macOS
        "ipfw.sh", "ipfw",
        "ipfw_mac.sh",                              # OSSEC only, macOS
        "npf.sh", "npf",
    ),
    "ossec-ar-host-deny": ("host-deny.sh", "host-deny"),
    # No agent ships these names: ours alone, linked the same way.
    "ossec-ar-unblock": ("unblock.sh", "unblock"),
}
# name execd runs -> our program
LINKS = {name: program
         for program, its_names in NAMES_OF_PROGRAM.items() for name in its_names}
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


def names():
    return " ".join(sorted(LINKS))


def programs():
    return " ".join(sorted(NAMES_OF_PROGRAM))


USAGE = ("usage: %s link|restore|orphaned <active-response/bin directory>\n"
         "       %s names|programs\n")


def main(argv):
    actions = {"link": link, "restore": restore, "orphaned": orphaned}
    listings = {"names": names, "programs": programs}
    if len(argv) == 3 and argv[1] in actions:
        actions[argv[1]](argv[2])
    elif len(argv) == 2 and argv[1] in listings:
        sys.stdout.write(listings[argv[1]]() + "\n")
    else:
        sys.stderr.write(USAGE % (argv[0], argv[0]))
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
