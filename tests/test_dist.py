"""make dist and the RPM spec on its own; what the packages give besides the
programs (the licence, the README, /usr/sbin/ossec-ar, a warning when the
agent's logs/ is missing); byte-code for the shebang's interpreter only; an
erase that leaves nothing of ours; make version-check.

The packages are installed into scratch roots as tests/test_packages.py
does (dpkg --root and rpm --root, scripts included)."""

import gzip
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from conftest import PYTHON, ROOT
from ossec_ar import __version__ as VERSION        # the version's one source
from scratchroot import ScratchRoot
from test_packages import BIN, _agent_rpm
from test_pythons import INTERPRETERS

SPEC = "packaging/ossec-ar.spec"
TOP = "ossec-ar-%s" % VERSION
RPM = "ossec-ar-%s-1.noarch.rpm" % VERSION
SRPM = "ossec-ar-%s-1.src.rpm" % VERSION
NO_LOGS = ("ossec-ar: warning: /var/ossec/logs does not exist (no agent installed yet?): "
           "the active responses' outcome lines are lost until it does")
WHERE = "the version is '%s' (lib/ossec_ar/__init__.py)" % VERSION


@pytest.fixture(scope="module")
def packages():
    """make deb rpm: both build from make dist's tarball."""
    subprocess.run(["make", "-s", "-C", ROOT, "deb", "rpm"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    build = os.path.join(ROOT, "build")
    return {"dist": os.path.join(build, TOP + ".tar.gz"),
            "deb": os.path.join(build, "ossec-ar_%s_all.deb" % VERSION),
            "rpm": os.path.join(build, RPM), "srpm": os.path.join(build, SRPM)}


def rpm_query(package, queryformat):
    return subprocess.run(["rpm", "-qp", "--qf", queryformat, package], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True).stdout.splitlines()


def rpmbuild(topdir, *args):
    result = subprocess.run(["rpmbuild", "--nodeps", "--define", "_topdir " + topdir]
                            + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=300)
    assert result.returncode == 0, result.stdout
    return result.stdout


def source_file(relative):
    with open(os.path.join(ROOT, relative), "rb") as f:
        return f.read()


def leftovers(root):
    """Every path in the scratch root (and its /usr overlay) that names
    ossec, but the package files the tests copied into /tmp/packages."""
    found = []
    for top, prefix in ((root.root, "/"), (os.path.join(root.top, "usr-upper"), "/usr/")):
        for directory, dirs, files in os.walk(top):
            for name in dirs + files:
                path = prefix + os.path.relpath(os.path.join(directory, name), top)
                if "ossec" in path and not path.startswith("/tmp/packages"):
                    found.append(path)
    return sorted(found)


def install(root, kind, package):
    if kind == "deb":
        return root.dpkg("-i", package)
    root.rpm("--initdb")
    return root.rpm("-i", "--nodeps", package)


# make dist

def test_dist_is_the_sources_in_one_directory(packages):
    with tarfile.open(packages["dist"]) as tar:
        members = tar.getmembers()
        files = {m.name[len(TOP) + 1:]: tar.extractfile(m).read()
                 for m in members if m.isfile()}
    assert all(m.name.startswith(TOP + "/") for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    modules = sorted(os.path.relpath(os.path.join(directory, name), ROOT)
                     for directory, dirs, names in os.walk(os.path.join(ROOT, "lib"))
                     for name in names if name.endswith(".py"))
    wanted = ["COPYING", "Makefile", "README.md", "docs/contract.md", SPEC,
              "packaging/rpmlint.toml", "packaging/debian/control", "bin/ossec-ar",
              "active-response/bin/firewall-drop.sh", "man/firewall-drop.sh.8",
              "man/ossec-ar.8", "completion/ossec-ar.bash"] + modules
    assert sorted(set(wanted) - set(files)) == []
    for name, content in files.items():
        assert content == source_file(name), name


def test_dist_refuses_a_version_the_spec_does_not_name(tmp_path):
    """make version-check, and make dist, deb and rpm through it, fail on
    a copy of the tree whose spec says Version 9.9.9, naming the line;
    the same copy unchanged passes in silence."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("Makefile", "lib", "man", "packaging"):
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy
        copy(os.path.join(ROOT, name), str(tree / name))
    result = subprocess.run(["make", "-s", "-C", str(tree), "version-check"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    spec = tree / SPEC
    text = spec.read_text()
    assert text.count("\nVersion:        %s\n" % VERSION) == 1
    spec.write_text(text.replace("\nVersion:        %s\n" % VERSION,
                                 "\nVersion:        9.9.9\n"))
    for target in ("version-check", "dist", "rpm", "deb"):
        result = subprocess.run(["make", "-s", "-C", str(tree), target],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert lines[0] == "%s: Version is 9.9.9, %s" % (SPEC, WHERE)
        assert len(lines) == 2 and lines[1].startswith("make: *** ")
        assert not (tree / "build").exists()


# The spec alone

def test_the_spec_alone_builds_the_binary_and_source_packages(packages, tmp_path):
    """rpmbuild -ba on the spec that the tarball carries, with nothing but
    where the tarball is: the same package as make rpm's, and a source
    package that rebuilds it by itself."""
    sources = tmp_path / "sources"
    sources.mkdir()
    shutil.copy(packages["dist"], str(sources))
    with tarfile.open(packages["dist"]) as tar:
        spec = tar.extractfile(TOP + "/" + SPEC).read()
    (tmp_path / "ossec-ar.spec").write_bytes(spec)
    topdir = str(tmp_path / "top")
    rpmbuild(topdir, "-ba", "--define", "_sourcedir " + str(sources),
             str(tmp_path / "ossec-ar.spec"))
    binary = os.path.join(topdir, "RPMS", "noarch", RPM)
    source = os.path.join(topdir, "SRPMS", SRPM)
    assert sorted(os.listdir(os.path.join(topdir, "RPMS", "noarch"))) == [RPM]
    assert sorted(os.listdir(os.path.join(topdir, "SRPMS"))) == [SRPM]
    listing = "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} " \
              "%{FILENAMES} %{FILELINKTOS}\n]"
    assert rpm_query(binary, listing) == rpm_query(packages["rpm"], listing)
    # The source package: the spec and the tarball, byte for byte; and
    # what building it needs.
    assert rpm_query(source, "[%{FILENAMES}\n]") == [TOP + ".tar.gz", "ossec-ar.spec"]
    assert rpm_query(source, "%{VERSION}-%{RELEASE}") == [VERSION + "-1"]
    build_requires = rpm_query(source, "[%{REQUIRENAME}\n]")
    assert "python3" in build_requires and "make" in build_requires
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["sh", "-c", 'rpm2cpio "$0" | cpio -idm --quiet', source],
                   cwd=str(unpacked), check=True)
    assert (unpacked / (TOP + ".tar.gz")).read_bytes() == open(packages["dist"], "rb").read()
    assert (unpacked / "ossec-ar.spec").read_bytes() == spec == source_file(SPEC)
    again = str(tmp_path / "rebuilt")
    rpmbuild(again, "--rebuild", source)
    assert rpm_query(os.path.join(again, "RPMS", "noarch", RPM), listing) \
        == rpm_query(packages["rpm"], listing)


def test_the_rpm_requires_the_group_tool_by_path(packages):
    requires = rpm_query(packages["rpm"], "[%{REQUIREFLAGS:deptype} %{REQUIRENAME}\n]")
    assert "pre /usr/sbin/groupadd" in requires
    assert not [line for line in requires if "shadow" in line]
    assert "manual /usr/bin/python3" in requires            # RPM_PYTHON, the shebang's


# Byte-code

def cache_tag(python):
    return subprocess.run([python, "-IS", "-c", "import sys; print(sys.implementation.cache_tag)"],
                          check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip()


def test_the_rpms_byte_code_is_for_its_shebangs_interpreter_only(packages):
    files = rpm_query(packages["rpm"], "[%{FILENAMES}\n]")
    modules = [f for f in files if f.endswith(".py")]
    compiled = [f for f in files if f.endswith(".pyc")]
    tag = cache_tag(PYTHON)
    assert len(modules) > 20
    assert sorted(compiled) == sorted(
        os.path.join(os.path.dirname(m), "__pycache__",
                     "%s.%s.pyc" % (os.path.basename(m)[:-3], tag)) for m in modules)


# The runs that could write byte-code: every other CPython on the machine
# (test_pythons.py's), and the RPM's own after the sources' times changed.
OTHERS = [python for python in INTERPRETERS if python.cache_tag != cache_tag(PYTHON)]


@pytest.mark.parametrize("python", ["stale"] + OTHERS,
                         ids=["stale-sources"] + [python.name for python in OTHERS])
def test_runs_as_root_write_no_byte_code(packages, tmp_path, python):
    """The installed programs, run as an administrator might (python3.X
    /var/ossec/bin/ossec-ar list), write no byte-code: every file under
    lib/ is the package's, as it was installed."""
    root = ScratchRoot(tmp_path)
    install(root, "rpm", packages["rpm"])
    lib = root.path("/var/ossec/lib")
    owned = sorted(line[len("/var/ossec/lib/"):] for line in rpm_query(
        packages["rpm"], "[%{FILENAMES}\n]") if line.startswith("/var/ossec/lib/"))

    def contents():
        """{path below lib/: its bytes, None for a directory}"""
        found = {}
        for directory, dirs, files in os.walk(lib):
            for name in dirs:
                found[os.path.relpath(os.path.join(directory, name), lib)] = None
            for name in files:
                with open(os.path.join(directory, name), "rb") as f:
                    found[os.path.relpath(f.name, lib)] = f.read()
        return found

    before = contents()
    assert sorted(before) == owned
    if python == "stale":
        interpreter = PYTHON
        for name in before:                         # a second later than the byte-code's
            if name.endswith(".py"):
                info = os.stat(os.path.join(lib, name))
                os.utime(os.path.join(lib, name), (info.st_atime, info.st_mtime + 1))
    else:
        assert python.error is None, python.error
        interpreter = python.path
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}      # no PYTHON* variables
    for program, args, code in (("/var/ossec/bin/ossec-ar", ["list"], 0),
                                (BIN + "/ossec-ar-firewall-drop", [], 64),
                                (BIN + "/ossec-ar-host-deny", [], 64),
                                (BIN + "/ossec-ar-unblock", [], 64)):
        # Its own network namespace: nothing reaches the machine's firewall.
        result = subprocess.run(["unshare", "-n", interpreter, root.path(program)] + args,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=environment, cwd=str(tmp_path),
                                universal_newlines=True, timeout=60)
        assert (result.returncode, result.stderr) == (code, ""), program
    assert contents() == before


# Install and erase

def test_rpm_install_then_erase_leaves_nothing_of_ours(packages, tmp_path):
    root = ScratchRoot(tmp_path)
    root.rpm("--initdb")
    before = leftovers(root)
    assert before == []
    root.rpm("-i", "--nodeps", packages["rpm"])
    for directory in ("/var/ossec", "/var/ossec/active-response", BIN, "/var/ossec/bin",
                      "/var/ossec/lib", "/var/ossec/lib/ossec_ar", "/usr/share/ossec-ar"):
        owner = root.rpm("-qf", directory).stdout.splitlines()[-1]
        assert owner == "ossec-ar-%s-1.noarch" % VERSION, directory
    root.rpm("-e", "ossec-ar")
    assert leftovers(root) == []


def test_rpm_shares_the_agents_directories_and_leaves_them_alone(packages, tmp_path):
    """The agent's package owns its directories with its own modes: ours
    installs beside it without a conflict and changes none of them; erased
    after the agent, it leaves nothing behind."""
    agent = _agent_rpm(str(tmp_path / "agent"), "1")
    root = ScratchRoot(tmp_path / "root")
    root.rpm("--initdb")
    root.rpm("-i", "--nodeps", agent)
    os.chmod(root.path("/var/ossec"), 0o550)        # as OSSEC's installer leaves it

    def modes():
        return {path: stat.S_IMODE(os.stat(root.path(path)).st_mode)
                for path in ("/var/ossec", BIN)}
    assert modes() == {"/var/ossec": 0o550, BIN: 0o750}
    root.rpm("-i", "--nodeps", packages["rpm"])
    assert modes() == {"/var/ossec": 0o550, BIN: 0o750}
    assert root.rpm("-qf", BIN).stdout.splitlines()[-2:] == [
        "wazuh-agent-1-1.noarch", "ossec-ar-%s-1.noarch" % VERSION]
    root.rpm("-e", "wazuh-agent")
    root.rpm("-e", "ossec-ar")
    assert leftovers(root) == []


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_ossec_ar_is_on_path(packages, tmp_path, kind):
    root = ScratchRoot(tmp_path)
    install(root, kind, packages[kind])
    link = root.usr_path("/usr/sbin/ossec-ar")
    assert os.readlink(link) == {"deb": "/var/ossec/bin/ossec-ar",
                                 "rpm": "../../var/ossec/bin/ossec-ar"}[kind]
    path = ["env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert root.chroot(path + ["ossec-ar", "--version"]).stdout == "ossec-ar %s\n" % VERSION
    # Run through the link, it finds its own prefix: the scratch root's.
    result = root.run(["unshare", "-n", "chroot", root.root] + path + ["ossec-ar", "list"])
    assert result.stdout == "no blocks\n"
    if kind == "deb":
        root.dpkg("--purge", "ossec-ar")
    else:
        root.rpm("-e", "ossec-ar")
    assert not os.path.lexists(link)


# What the packages ship besides the programs

def doc(path):
    """A file under /usr/share/doc, compressed or not (dh_compress)."""
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def test_deb_ships_the_readme_the_docs_and_the_licence(packages, tmp_path):
    root = ScratchRoot(tmp_path)
    root.dpkg("-i", packages["deb"])
    docs = root.usr_path("/usr/share/doc/ossec-ar")
    assert doc(os.path.join(docs, "README.md")) == source_file("README.md")
    assert doc(os.path.join(docs, "docs", "contract.md")) == source_file("docs/contract.md")
    # Debian's form of the licence: the copyright file names it and points
    # to the system's copy of its text, which is our COPYING.
    with open(os.path.join(docs, "copyright")) as f:
        copyright = f.read()
    assert "\nLicense: GPL-2+\n" in copyright
    assert '"/usr/share/common-licenses/GPL-2"' in copyright
    with open("/usr/share/common-licenses/GPL-2", "rb") as f:
        assert f.read() == source_file("COPYING")


def test_rpm_ships_the_readme_the_docs_and_the_licence(packages, tmp_path):
    files = dict(line.split(" ", 1)[::-1] for line in rpm_query(
        packages["rpm"], "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"))
    licences = [path for path, flags in files.items() if "l" in flags]
    docs = sorted(path for path, flags in files.items()
                  if "d" in flags and path.startswith("/usr/share/doc/"))
    assert [os.path.basename(path) for path in licences] == ["COPYING"]
    assert [os.path.relpath(path, os.path.dirname(docs[0])) for path in docs] == \
        ["README.md"] + sorted("docs/" + name for name in os.listdir(os.path.join(ROOT, "docs")))
    root = ScratchRoot(tmp_path)
    install(root, "rpm", packages["rpm"])
    contract = [path for path in docs if path.endswith("/docs/contract.md")][0]
    for path, source in ((licences[0], "COPYING"), (docs[0], "README.md"),
                         (contract, "docs/contract.md")):
        with open(root.usr_path(path), "rb") as f:
            assert f.read() == source_file(source), path
    assert source_file("COPYING").startswith(
        b"                    GNU GENERAL PUBLIC LICENSE\n"
        b"                       Version 2, June 1991\n")


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_install_without_the_agents_logs_warns_and_succeeds(packages, tmp_path, kind):
    bare = ScratchRoot(tmp_path / "bare")
    output = install(bare, kind, packages[kind]).stdout.splitlines()
    assert output.count(NO_LOGS) == 1
    assert os.path.islink(bare.path(BIN + "/firewall-drop.sh"))
    assert not os.path.exists(bare.path("/var/ossec/logs"))      # warned, not made
    agent = ScratchRoot(tmp_path / "agent")
    os.makedirs(agent.path("/var/ossec/logs"))
    output = install(agent, kind, packages[kind]).stdout
    assert "warning" not in output and "/var/ossec/logs" not in output


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_the_package_adopts_the_stock_blocks_there_at_install(packages, tmp_path, kind):
    """postinst and %post run ossec-ar adopt: a stock script's hosts.deny
    line there before the install is recorded as ours (so its delete lifts
    it), once; a second install (an upgrade) adopts nothing new."""
    root = ScratchRoot(tmp_path)
    os.makedirs(root.path("/etc"), exist_ok=True)
    with open(root.path("/etc/hosts.deny"), "w") as f:
        f.write("ALL:192.0.2.9\n")                  # the stock host-deny.sh's
    install(root, kind, packages[kind])
    state = root.path("/var/ossec/var/ossec-ar")
    assert os.path.exists(os.path.join(state, "adopted"))
    with open(os.path.join(state, "host-deny.ledger")) as f:
        records = [line.split()[2:5] for line in f]
    assert records == [["adopt", "host-deny", "192.0.2.9"]]
    with open(root.path("/etc/hosts.deny"), "a") as f:
        f.write("ALL:192.0.2.10\n")                 # the administrator's, after install
    if kind == "deb":
        root.dpkg("-i", packages[kind])
    else:
        root.rpm("-U", "--replacepkgs", "--nodeps", packages[kind])
    with open(os.path.join(state, "host-deny.ledger")) as f:
        assert [line.split()[2:5] for line in f] == records
