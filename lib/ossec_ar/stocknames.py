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

``link`` run again (a second ``make install``, the RPM's scriptlets,
``ossec-ar relink``) makes the link again wherever a name is not ours, and
a stock file found there is newer than the kept one (OSSEC's installer
run again writes over our link): it becomes ``<name>.stock``, replacing
the older, so that ``restore`` gives back what the agent last installed.
``bypassed`` tells which names are not our links (``ossec-ar status``).

``orphaned`` is for the RPM, after the agent's package was erased: the
stock files it kept belong to nothing any more and are deleted, and the
links that the erase took with the agent's files are made again.
``names`` and ``programs`` print the names, and our programs, on one line.
"""

import os
import stat
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
    """Make every name a link to our program, keeping what was there.

    Returns ``[(name, what was kept)]`` for each name linked anew: what
    ``describe`` said of the file kept as ``<name>.stock``, or None when
    there was nothing to keep (no file; a link to the kept file itself or
    to one of our programs)."""
    done = []
    for name, target in sorted(LINKS.items()):
        path = os.path.join(bindir, name)
        if _is_our_link(path, target):
            continue
        kept = None
        if os.path.lexists(path):
            if _nothing_to_keep(bindir, path):
                os.unlink(path)
            else:
                # A stock file, new or upgraded by the agent's package or
                # written by OSSEC's installer: the newest one is what
                # ``restore`` must give back, so it replaces the kept one.
                kept = describe(path)
                os.replace(path, path + STOCK_SUFFIX)
        temporary = os.path.join(bindir, ".%s.ossec-ar-link" % name)
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, path)
        done.append((name, kept))
    return done


def _nothing_to_keep(bindir, path):
    """A link to the kept stock file itself, or to one of our programs:
    keeping it would lose the stock file, or give back a link to us."""
    if not os.path.islink(path):
        return False
    stock = path + STOCK_SUFFIX
    try:
        if os.path.exists(stock) and os.path.samefile(path, stock):
            return True
    except OSError:
        return False
    real = os.path.realpath(path)
    return any(real == os.path.realpath(os.path.join(bindir, program))
               for program in NAMES_OF_PROGRAM)


def bypassed(bindir):
    """``[(name, what it is)]`` for every name that is not our link to its
    program, or whose program is missing: execd would run something else
    there, or nothing."""
    found = []
    for name, target in sorted(LINKS.items()):
        path = os.path.join(bindir, name)
        if not _is_our_link(path, target):
            found.append((name, describe(path)))
        elif not os.path.exists(path):
            found.append((name, "a link to %s, which is missing" % target))
    return found


def describe(path):
    """What is at *path*, in words: ``a regular file of 1140 bytes``..."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except OSError as error:
        return "unreadable (%s)" % error.strerror
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        return "a link to %s%s" % (target, "" if os.path.exists(path) else " (dangling)")
    if stat.S_ISREG(info.st_mode):
        return "a regular file of %d bytes" % info.st_size
    if stat.S_ISDIR(info.st_mode):
        return "a directory"
    return "a special file (mode %06o)" % info.st_mode


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
