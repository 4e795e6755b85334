"""make deb and make rpm: the packages built, checked by lintian and rpmlint,
installed into scratch roots with dpkg --root and rpm --root (maintainer
scripts, scriptlets and triggers included), beside a stand-in for the
agent's own package, and the installed programs run from there."""

import gzip
import os
import shutil
import stat
import subprocess

import pytest

import ossec
from conftest import ROOT, Install, make_install
from ossec_ar import __version__ as VERSION        # the version's one source
from ossec_ar.stocknames import LINKS              # every name (test_stocknames checks it)
from scratchroot import ScratchRoot

BIN = "/var/ossec/active-response/bin"
NAMES = tuple(sorted(LINKS))
TARGET = LINKS
PROGRAMS = tuple(sorted(set(LINKS.values())))
# The names the agent's stand-in package owns: all but unblock's, which no
# agent ships.
AGENT_NAMES = tuple(name for name in NAMES if LINKS[name] != "ossec-ar-unblock")


def stock_text(version):
    return "#!/bin/sh\n# the agent's own script, version %s\n" % version


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """make deb rpm, once, and stand-ins for the agent's package (wazuh-agent
    1 and 2), which owns the agent's names, in both formats."""
    subprocess.run(["make", "-s", "-C", ROOT, "deb", "rpm"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    top = tmp_path_factory.mktemp("agent-packages")
    packages = {"deb": os.path.join(ROOT, "build", "ossec-ar_%s_all.deb" % VERSION),
                "rpm": os.path.join(ROOT, "build", "ossec-ar-%s-1.noarch.rpm" % VERSION),
                "srpm": os.path.join(ROOT, "build", "ossec-ar-%s-1.src.rpm" % VERSION)}
    for version in ("1", "2"):
        packages["agent-deb-" + version] = _agent_deb(str(top), version)
        packages["agent-rpm-" + version] = _agent_rpm(str(top), version)
    return packages


def _agent_files(tree, version):
    bindir = os.path.join(tree, BIN.lstrip("/"))
    os.makedirs(bindir)
    os.chmod(bindir, 0o750)
    for name in AGENT_NAMES + ("restart-wazuh",):
        with open(os.path.join(bindir, name), "w") as f:
            f.write(stock_text(version))
        os.chmod(os.path.join(bindir, name), 0o750)


def _agent_deb(top, version):
    tree = os.path.join(top, "deb-%s" % version)
    _agent_files(tree, version)
    os.makedirs(os.path.join(tree, "DEBIAN"))
    with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
        f.write("Package: wazuh-agent\nVersion: %s\nArchitecture: all\n"
                "Maintainer: test <test@example.org>\nDescription: stand-in agent\n"
                % version)
    out = os.path.join(top, "wazuh-agent_%s_all.deb" % version)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", tree, out], check=True,
                   stdout=subprocess.PIPE)
    return out


def _agent_rpm(top, version):
    topdir = os.path.join(top, "rpm-%s" % version)
    files = os.path.join(topdir, "files")
    _agent_files(files, version)
    os.makedirs(os.path.join(topdir, "SPECS"))
    spec = os.path.join(topdir, "SPECS", "agent.spec")
    listed = "".join("%%attr(0750,root,root) %s/%s\n" % (BIN, n)
                     for n in AGENT_NAMES + ("restart-wazuh",))
    with open(spec, "w") as f:
        f.write("Name: wazuh-agent\nVersion: %s\nRelease: 1\nSummary: stand-in agent\n"
                "License: GPL-2.0-only\nBuildArch: noarch\n%%description\nstand-in\n"
                "%%install\ncp -a %s/. %%{buildroot}/\n"
                "%%files\n%%dir %%attr(0750,root,root) %s\n%s"
                % (version, files, BIN, listed))
    subprocess.run(["rpmbuild", "-bb", "--nodeps", "--define", "_topdir " + topdir, spec],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return os.path.join(topdir, "RPMS", "noarch", "wazuh-agent-%s-1.noarch.rpm" % version)


def read(root, path):
    with open(root.path(path)) as f:
        return f.read()


def assert_ours(root):
    """Every name is a link to our program; the programs root:ossec 0750."""
    for name in NAMES:
        path = root.path(BIN + "/" + name)
        assert os.path.islink(path) and os.readlink(path) == TARGET[name], name
    gid = root.group_id("ossec")
    assert gid is not None
    assert len(PROGRAMS) == 3
    for program in [BIN + "/" + name for name in PROGRAMS] + ["/var/ossec/bin/ossec-ar"]:
        info = os.stat(root.path(program))
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, gid, 0o750)
    cache = root.path("/var/ossec/lib/ossec_ar/__pycache__")
    assert any(name.startswith("cli.") for name in os.listdir(cache))


def assert_stock(root, version, where=""):
    """The agent's files of *version* under its names (+ *where*)."""
    for name in AGENT_NAMES:
        path = root.path(BIN + "/" + name + where)
        assert not os.path.islink(path)
        assert read(root, BIN + "/" + name + where) == stock_text(version), name


def assert_gone(root):
    for name in os.listdir(root.path(BIN)) if os.path.isdir(root.path(BIN)) else []:
        assert "ossec-ar" not in name and not name.endswith(".stock"), name
    assert not os.path.exists(root.path("/var/ossec/lib/ossec_ar"))
    assert not os.path.exists(root.path("/var/ossec/bin/ossec-ar"))


# lintian and rpmlint

def test_lintian_is_clean(built):
    result = subprocess.run(["lintian", "--pedantic", "-I", built["deb"]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    tags = [line for line in result.stdout.splitlines() if line[:3] in
            ("E: ", "W: ", "I: ", "P: ", "X: ", "O: ", "N: ")]
    assert (result.returncode, tags) == (0, [])


def test_rpmlint_is_clean(built):
    """The binary and the source package, with the project's filters."""
    result = subprocess.run(["rpmlint", "-c", os.path.join(ROOT, "packaging", "rpmlint.toml"),
                             built["rpm"], built["srpm"]], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, result.stdout
    assert "2 packages and 0 specfiles checked; 0 errors, 0 warnings" in result.stdout


# The version

def test_both_packages_carry_the_version_of_the_source(built):
    deb = subprocess.run(["dpkg-deb", "--field", built["deb"], "Version"], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    rpm = subprocess.run(["rpm", "-qp", "--qf", "%{VERSION} %{RELEASE}", built["rpm"]],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert (deb, rpm) == (VERSION + "\n", VERSION + " 1")


def test_a_version_the_changelogs_and_pages_do_not_name_builds_nothing(tmp_path):
    """A copy of the tree whose __init__.py says 9.8.7: make deb and make
    rpm name each file that still says otherwise (the spec's Version among
    them), and build nothing."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("Makefile", "lib", "man", "packaging"):
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy
        copy(os.path.join(ROOT, name), str(tree / name))
    init = tree / "lib" / "ossec_ar" / "__init__.py"
    text = init.read_text()
    assert '\n__version__ = "%s"\n' % VERSION in text
    init.write_text(text.replace('__version__ = "%s"' % VERSION, '__version__ = "9.8.7"'))
    for target in ("deb", "rpm"):
        result = subprocess.run(["make", "-s", "-C", str(tree), target],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True)
        assert result.returncode != 0
        where = "the version is '9.8.7' (lib/ossec_ar/__init__.py)"
        assert result.stdout.splitlines()[:6] == [
            "packaging/ossec-ar.spec: Version is %s, %s" % (VERSION, where),
            "packaging/debian/changelog: the latest entry is %s, %s" % (VERSION, where),
            "packaging/ossec-ar.spec: the latest %%changelog entry is %s-1, %s and the "
            "release 1" % (VERSION, where),
            "man/firewall-drop.sh.8: its .TH line does not name ossec-ar 9.8.7, " + where,
            "man/host-deny.sh.8: its .TH line does not name ossec-ar 9.8.7, " + where,
            "man/ossec-ar.8: its .TH line does not name ossec-ar 9.8.7, " + where]
        assert not (tree / "build").exists()


# .deb

def test_deb_alone_install_remove_purge_reinstall(built, tmp_path):
    root = ScratchRoot(tmp_path)
    root.dpkg("-i", built["deb"])
    assert_ours(root)
    assert root.chroot(["dpkg-divert", "--list", "ossec-ar"]) \
        .stdout.count("diversion of") == len(NAMES)
    root.dpkg("--remove", "ossec-ar")
    assert_gone(root)
    assert not os.path.lexists(root.path(BIN + "/firewall-drop.sh"))
    assert root.chroot(["dpkg-divert", "--list", "ossec-ar"]).stdout == ""
    root.dpkg("--purge", "ossec-ar")
    listing = root.chroot(["dpkg-statoverride", "--list"], check=False)
    assert (listing.returncode, listing.stdout) == (1, "")      # 1: nothing listed
    root.dpkg("-i", built["deb"])
    assert_ours(root)


def test_deb_diverts_the_agents_files_through_its_upgrades(built, tmp_path):
    root = ScratchRoot(tmp_path)
    root.dpkg("-i", built["agent-deb-1"])
    assert_stock(root, "1")
    root.dpkg("-i", built["deb"])
    assert_ours(root)
    assert_stock(root, "1", ".stock")
    root.dpkg("-i", built["agent-deb-2"])               # the agent is upgraded
    assert_ours(root)
    assert_stock(root, "2", ".stock")
    # route-null, say, as much as firewall-drop: its new file is the .stock.
    assert read(root, BIN + "/route-null.stock") == stock_text("2")
    assert read(root, BIN + "/restart-wazuh") == stock_text("2")
    root.dpkg("-i", built["deb"])                       # ours again (reinstall)
    assert_ours(root)
    root.dpkg("--remove", "ossec-ar")
    assert_stock(root, "2")
    assert not any(n.endswith(".stock") for n in os.listdir(root.path(BIN)))
    root.dpkg("-i", built["deb"])
    assert_ours(root)
    assert_stock(root, "2", ".stock")
    root.dpkg("--purge", "ossec-ar")
    assert_stock(root, "2")


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_stock_files_no_package_owns_are_kept_and_put_back(built, tmp_path, kind):
    """OSSEC installed from source: its scripts belong to no package.  Under
    every name, unblock's too (the mechanism does not care that no agent
    ships them), they are kept as .stock and come back on removal."""
    root = ScratchRoot(tmp_path)
    os.makedirs(root.path(BIN))
    for name in NAMES:
        with open(root.path(BIN + "/" + name), "w") as f:
            f.write("from source: %s\n" % name)
    if kind == "deb":
        root.dpkg("-i", built["deb"])
    else:
        root.rpm("--initdb")
        root.rpm("-i", "--nodeps", built["rpm"])
    assert_ours(root)
    for name in NAMES:
        assert read(root, BIN + "/" + name + ".stock") == "from source: %s\n" % name
    if kind == "deb":
        root.dpkg("--remove", "ossec-ar")
    else:
        root.rpm("-e", "ossec-ar")
    assert sorted(os.listdir(root.path(BIN))) == sorted(NAMES)
    for name in NAMES:
        assert not os.path.islink(root.path(BIN + "/" + name))
        assert read(root, BIN + "/" + name) == "from source: %s\n" % name


def ossec_make_install(root):
    """OSSEC's own make install (TARGET=local, /var/ossec), of the vendored
    source built by tests/ossec.py, run chrooted in the scratch root as an
    administrator installing OSSEC from source runs it.  It copies the
    host's /etc/localtime and /etc/resolv.conf into /var/ossec/etc: any will
    do here."""
    source = os.path.dirname(ossec.built_source("local"))
    os.makedirs(root.path("/etc"), exist_ok=True)
    for name in ("localtime", "resolv.conf"):
        open(root.path("/etc/" + name), "ab").close()
    root.run(["sh", "-c", 'mkdir -p "$0/tmp/ossec-source" && mount --bind "$1" '
              '"$0/tmp/ossec-source" && exec chroot "$0" make -C /tmp/ossec-source/src '
              'TARGET=local PREFIX=/var/ossec install', root.root, source])


def ossec_ar(root, *args):
    """The installed ossec-ar, chrooted, in a new network namespace."""
    return root.run(["unshare", "-n", "chroot", root.root, "/var/ossec/bin/ossec-ar"]
                    + list(args), check=False)


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_a_reinstall_keeps_what_ossecs_installer_wrote_and_removal_gives_it_back(
        built, tmp_path, kind):
    """OSSEC from source, then the package; OSSEC's make install run again
    writes its scripts over our links (status: exit 72, each named); the
    package installed again keeps each new script as <name>.stock, in place
    of the older kept one, and its removal gives back the new scripts byte
    for byte."""
    root = ScratchRoot(tmp_path)
    ossec_make_install(root)
    theirs = sorted(name for name in NAMES if os.path.lexists(root.path(BIN + "/" + name)))
    assert theirs == sorted(name for name in NAMES if name.endswith(".sh")
                            and name != "unblock.sh")

    def install():
        if kind == "deb":
            root.dpkg("-i", built["deb"])
        else:
            root.rpm("-U", "--replacepkgs", "--nodeps", built["rpm"])
    if kind == "rpm":
        root.rpm("--initdb")
    install()
    assert_ours(root)
    assert ossec_ar(root, "status").returncode == 0
    for name in theirs:                  # the kept files: an older release's
        with open(root.path(BIN + "/" + name + ".stock"), "w") as f:
            f.write("# the older %s\n" % name)
    ossec_make_install(root)
    new = {}
    for name in theirs:
        with open(root.path(BIN + "/" + name), "rb") as f:
            new[name] = f.read()
        assert new[name].startswith(b"#!/bin/sh"), name
    status = ossec_ar(root, "status")
    assert status.returncode == 72
    assert ["  %s: a regular file of %d bytes" % (name, len(new[name])) for name in theirs] \
        == [line for line in status.stdout.splitlines() if line.endswith(" bytes")]
    install()                            # the package again, as an upgrade would
    assert_ours(root)
    for name in theirs:
        with open(root.path(BIN + "/" + name + ".stock"), "rb") as f:
            assert f.read() == new[name], name
    assert ossec_ar(root, "status").returncode == 0
    if kind == "deb":
        root.dpkg("--remove", "ossec-ar")
    else:
        root.rpm("-e", "ossec-ar")
    for name in theirs:
        path = root.path(BIN + "/" + name)
        assert not os.path.islink(path), name
        with open(path, "rb") as f:
            assert f.read() == new[name], name
    assert not any(n.endswith(".stock") for n in os.listdir(root.path(BIN)))


# .rpm

def test_rpm_alone_install_erase_reinstall(built, tmp_path):
    root = ScratchRoot(tmp_path)
    root.rpm("--initdb")
    root.rpm("-i", "--nodeps", built["rpm"])
    assert_ours(root)
    root.rpm("-e", "ossec-ar")
    assert_gone(root)
    assert not os.path.lexists(root.path(BIN + "/firewall-drop.sh"))
    root.rpm("-i", "--nodeps", built["rpm"])
    assert_ours(root)
    root.rpm("-U", "--replacepkgs", "--nodeps", built["rpm"])     # an upgrade in place
    assert_ours(root)


def test_rpm_keeps_its_names_through_the_agents_upgrade_and_erase(built, tmp_path):
    root = ScratchRoot(tmp_path)
    root.rpm("--initdb")
    root.rpm("-i", "--nodeps", built["agent-rpm-1"])
    assert_stock(root, "1")
    root.rpm("-i", "--nodeps", built["rpm"])
    assert_ours(root)
    assert_stock(root, "1", ".stock")
    root.rpm("-U", "--nodeps", built["agent-rpm-2"])      # its files land on the names
    assert_ours(root)                                     # and the trigger relinks
    assert_stock(root, "2", ".stock")
    assert read(root, BIN + "/route-null.stock") == stock_text("2")
    root.rpm("-e", "ossec-ar")
    assert_stock(root, "2")
    assert not any(n.endswith(".stock") for n in os.listdir(root.path(BIN)))
    root.rpm("-i", "--nodeps", built["rpm"])
    assert_ours(root)
    root.rpm("-e", "wazuh-agent")                         # the agent goes first
    assert_ours(root)
    assert not any(n.endswith(".stock") for n in os.listdir(root.path(BIN)))
    root.rpm("-e", "ossec-ar")
    assert_gone(root)


# The same files, whichever way they came

def tree(top, bases):
    """{path: (kind and mode, content)} below *bases*, .pyc files by name only
    (they hold build times) and manual pages decompressed."""
    entries = {}
    for base in bases:
        for directory, dirs, files in os.walk(os.path.join(top, base.lstrip("/"))):
            for name in dirs + files:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                content = None
                if stat.S_ISLNK(info.st_mode):
                    content = os.readlink(path)
                elif stat.S_ISREG(info.st_mode) and not name.endswith(".pyc"):
                    with open(path, "rb") as f:
                        content = f.read()
                    if name.endswith(".gz"):
                        content = gzip.decompress(content)
                entries["/" + os.path.relpath(path, top)] = (info.st_mode, content)
    return entries


def test_makefile_deb_and_rpm_install_the_same_files(built, tmp_path):
    """The same paths, kinds, modes, links and contents under /var/ossec,
    /usr/share/man and /usr/share/ossec-ar.  /usr/share/doc differs by
    design (each distribution's own copyright and changelog files)."""
    made = make_install(str(tmp_path / "make"))[:-len("/var/ossec")]
    deb, rpm = ScratchRoot(tmp_path / "deb"), ScratchRoot(tmp_path / "rpm")
    deb.dpkg("-i", built["deb"])
    rpm.rpm("--initdb")
    rpm.rpm("-i", "--nodeps", built["rpm"])
    ours = ("/var/ossec",)
    shared = ("/share/man/man8", "/share/ossec-ar",       # under /usr, in the overlays
              "/share/bash-completion/completions")
    by_make = tree(made, ours)
    by_make.update(tree(os.path.join(made, "usr"), shared))
    by_deb = tree(deb.root, ours)
    by_deb.update(tree(os.path.join(deb.top, "usr-upper"), shared))
    by_rpm = tree(rpm.root, ours)
    by_rpm.update(tree(os.path.join(rpm.top, "usr-upper"), shared))
    # The state that the packages' ossec-ar adopt made (a staging DESTDIR
    # adopts nothing): not a file of theirs.
    for by_package in (by_deb, by_rpm):
        state = [path for path in by_package if path == "/var/ossec/var"
                 or path.startswith("/var/ossec/var/ossec-ar")]
        assert "/var/ossec/var/ossec-ar/adopted" in state
        for path in state:
            del by_package[path]
    # make install's own list of the directories it made, for make
    # uninstall; the packages' databases do that job for them.
    assert by_make.pop("/var/ossec/lib/ossec_ar/installed-dirs")[1].startswith(b"/usr\n")
    assert sorted(by_deb) == sorted(by_make) == sorted(by_rpm)
    assert by_deb == by_make == by_rpm
    assert len([p for p in by_make if p.endswith(".pyc")]) > 20


# The installed programs work

@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_installed_programs_block_and_unblock(built, tmp_path, kind, nft_netns, etc_copy):
    root = ScratchRoot(tmp_path)
    if kind == "deb":
        root.dpkg("-i", built["deb"])
    else:
        root.rpm("--initdb")
        root.rpm("-i", "--nodeps", built["rpm"])
    os.makedirs(root.path("/var/ossec/logs"))           # the agent's own directory
    # The checks below read the iptables layout, so they choose it.
    Install(root.path("/var/ossec"), backend="iptables").configure("")
    log = root.path("/var/ossec/logs/active-responses.log")
    program = root.path(BIN + "/firewall-drop.sh")
    for action, status, rules in (("add", "blocked", ["-A OSSEC -s 192.0.2.7/32 -j DROP"]),
                                  ("delete", "unblocked", [])):
        result = nft_netns.run([program, action, "-", "192.0.2.7", "1.1", "5712"])
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        with open(log) as f:
            outcome = f.read().splitlines()[-1]
        assert "/firewall-drop.sh: %s 192.0.2.7: %s: iptables" % (action, status) in outcome
        assert outcome.endswith("(exit 0)")
        assert [r for r in nft_netns.rules() if "192.0.2.7" in r] == rules
    deny = os.path.join(etc_copy, "hosts.deny")
    with open(deny, "w") as f:
        f.write("# admin\n")
    host_deny = root.path(BIN + "/host-deny")              # the Wazuh 4.2+ name
    for action, content in (("add", "# admin\nALL:192.0.2.8\n"), ("delete", "# admin\n")):
        result = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-ec",
             'mount --bind "$0" /etc; exec "$@"', etc_copy, host_deny, action, "-",
             "192.0.2.8"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
        with open(deny) as f:
            assert f.read() == content


# The unit that restores blocks after a firewall reload

@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_the_reload_unit_is_installed_enabled_and_taken_back(built, tmp_path, kind):
    """Enabled on install even with no systemd running (a chroot, an image
    being built), so that it starts at the next boot; started only where
    systemd runs (not here).  Removal takes the unit and its links."""
    root = ScratchRoot(tmp_path)
    if kind == "deb":
        root.dpkg("-i", built["deb"])
    else:
        root.rpm("--initdb")
        root.rpm("-i", "--nodeps", built["rpm"])
    # /lib is /usr/lib in the scratch root, whose /usr is an overlay.
    unit = os.path.join(root.top, "usr-upper", "lib", "systemd", "system",
                        "ossec-ar-restore.service")
    with open(os.path.join(ROOT, "examples", "ossec-ar-restore.service")) as f, \
            open(unit) as g:
        assert g.read() == f.read()
    links = [root.path("/etc/systemd/system/%s.wants/ossec-ar-restore.service" % wanted)
             for wanted in ("multi-user.target", "nftables.service", "firewalld.service")]
    for link in links:
        assert os.readlink(link) in ("/lib/systemd/system/ossec-ar-restore.service",
                                     "/usr/lib/systemd/system/ossec-ar-restore.service")
    if kind == "deb":
        root.dpkg("--purge", "ossec-ar")
    else:
        root.rpm("-e", "ossec-ar")
    assert not os.path.lexists(unit)
    assert not any(os.path.lexists(link) for link in links)


# Removal hands the blocks over (lib/ossec_ar/handover.py; the forms and
# the packets are in test_handover.py): on removal, not on an upgrade.

def agent_with_stock_script(root):
    """OSSEC 3.7.0's firewall-drop.sh from source (no package owns it),
    the ar.conf that runs it, logs/, and the alternatives that make
    iptables iptables in the chroot."""
    from test_handover import stock
    os.makedirs(root.path(BIN))
    with open(root.path(BIN + "/firewall-drop.sh"), "wb") as f:
        f.write(stock("3.7.0"))
    os.chmod(root.path(BIN + "/firewall-drop.sh"), 0o750)
    os.makedirs(root.path("/var/ossec/etc/shared"))
    with open(root.path("/var/ossec/etc/shared/ar.conf"), "w") as f:
        f.write("firewall-drop600 - firewall-drop.sh - 600\n")
    os.makedirs(root.path("/var/ossec/logs"))
    shutil.copytree("/etc/alternatives", root.path("/etc/alternatives"), symlinks=True)
    return stock("3.7.0")


HANDED_OVER = ("firewall-drop: 1 handed over (1 to firewall-drop.sh (OSSEC 3.7.0 to 4.2.0): "
               "-s IP -j DROP in INPUT, and FORWARD when forwarding is on), 0 lifted")


def assert_still_ours(netns):
    assert "192.0.2.7" in netns.check(["nft", "list", "set", "inet", "ossec", "v4"])
    assert not [rule for rule in netns.rules() if "192.0.2.7" in rule]


def assert_handed_over(root, netns, output, text):
    assert HANDED_OVER in output.splitlines()
    assert "host-deny: 0 handed over, 0 lifted" in output.splitlines()
    assert "table inet ossec" not in netns.check(["nft", "list", "tables"])
    assert [rule for rule in netns.rules() if "192.0.2.7" in rule] == [
        "-A INPUT -s 192.0.2.7/32 -j DROP"]
    with open(root.path(BIN + "/firewall-drop.sh"), "rb") as f:
        assert f.read() == text                     # the stock script is back
    scratch = root.path("/tmp")
    result = netns.run([root.path(BIN + "/firewall-drop.sh"), "delete", "-", "192.0.2.7"],
                       cwd=scratch)                 # its delete, as execd runs it
    assert result.returncode == 0
    assert not [rule for rule in netns.rules() if "192.0.2.7" in rule]


def test_deb_removal_hands_the_blocks_over_and_an_upgrade_does_not(built, tmp_path,
                                                                     nft_netns):
    """prerm runs ``ossec-ar hand-over`` on remove only: a reinstall (prerm
    upgrade) keeps our table; dpkg -r hands the block to the restored
    3.7.0 script's form; dpkg -P then removes var/ossec-ar/."""
    root = ScratchRoot(tmp_path, outer=nft_netns.prefix())
    text = agent_with_stock_script(root)
    root.dpkg("-i", built["deb"])
    result = nft_netns.run([root.path(BIN + "/firewall-drop.sh"), "add", "-", "192.0.2.7"])
    assert result.returncode == 0
    assert_still_ours(nft_netns)
    upgrade = root.dpkg("-i", built["deb"]).stdout
    assert "handed over" not in upgrade
    assert_still_ours(nft_netns)
    assert_handed_over(root, nft_netns, root.dpkg("--remove", "ossec-ar").stdout, text)
    assert os.path.isdir(root.path("/var/ossec/var/ossec-ar"))
    root.dpkg("--purge", "ossec-ar")
    assert not os.path.lexists(root.path("/var/ossec/var/ossec-ar"))
    assert os.path.isdir(root.path("/var/ossec/logs"))            # the agent's


def test_rpm_erase_hands_the_blocks_over_and_an_upgrade_does_not(built, tmp_path, nft_netns):
    """%preun runs ``ossec-ar hand-over`` when $1 is 0 (an erase), not on
    an upgrade ($1 is 1)."""
    root = ScratchRoot(tmp_path, outer=nft_netns.prefix())
    text = agent_with_stock_script(root)
    root.rpm("--initdb")
    root.rpm("-i", "--nodeps", built["rpm"])
    result = nft_netns.run([root.path(BIN + "/firewall-drop.sh"), "add", "-", "192.0.2.7"])
    assert result.returncode == 0
    upgrade = root.rpm("-U", "--replacepkgs", "--nodeps", built["rpm"]).stdout
    assert "handed over" not in upgrade
    assert_still_ours(nft_netns)
    assert_handed_over(root, nft_netns, root.rpm("-e", "ossec-ar").stdout, text)


def test_deb_removal_stops_when_the_hand_over_fails(built, tmp_path, nft_netns):
    """A ledger that root alone could not have written: prerm fails, dpkg
    keeps the package installed, and the block stays in our table."""
    root = ScratchRoot(tmp_path, outer=nft_netns.prefix())
    agent_with_stock_script(root)
    root.dpkg("-i", built["deb"])
    nft_netns.run([root.path(BIN + "/firewall-drop.sh"), "add", "-", "192.0.2.7"])
    os.chmod(root.path("/var/ossec/var/ossec-ar/firewall-drop.ledger"), 0o666)
    result = root.dpkg("--remove", "ossec-ar", check=False)
    assert result.returncode != 0
    assert "ossec-ar: its blocks were not handed over (see above), so it stays installed" \
        in result.stdout
    assert "(exit 78)" in result.stdout
    assert_ours(root)
    assert_still_ours(nft_netns)
