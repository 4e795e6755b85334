"""``ossec-ar status`` as a health check: exit 0 only when the
configuration is trusted and valid, a firewall is usable for IPv4 and
IPv6, the log can be written and every name execd runs is our link; else
the code of the first problem, with every problem listed.  And ``ossec-ar
relink``, which mends a bypassed name.  Against the real tools in private
network namespaces; the install is the session's, so whatever a test
breaks is mended before it ends."""

import json
import os
import shutil

import pytest

from conftest import make_install
from ossec_ar import stocknames
from test_admin import admin


@pytest.fixture(params=["auto_install", "iptables_install"])
def healthy(request):
    """The install with ``backend = auto`` and with ``backend = iptables``."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def install(iptables_install):
    """The tests below change the backend only where they say so."""
    return iptables_install


def status(netns, install, etc=None):
    """(exit code, the JSON data, the text's lines) of ossec-ar status."""
    result = admin(netns, install, "status", "--json", etc=etc)
    assert result.stderr == ""
    text = admin(netns, install, "status", etc=etc)
    assert (text.returncode, text.stderr) == (result.returncode, "")
    return result.returncode, json.loads(result.stdout), text.stdout.splitlines()


def health(lines):
    """The text's health lines: the verdict and one line per problem."""
    start = next(i for i, line in enumerate(lines) if line.startswith("health: "))
    return lines[start:]


def test_a_healthy_install_is_exit_0(nft_netns, healthy):
    code, data, lines = status(nft_netns, healthy)
    assert (code, data["exit"], data["problems"]) == (0, 0, [])
    if healthy.backend is None:         # auto passes over firewalld, not running here
        backend, tried = "nftables", ["firewalld: firewalld is not running"]
    else:
        backend, tried = "iptables", []
    assert data["backend"]["usable"] == {"ipv4": {"backend": backend, "tried": tried},
                                         "ipv6": {"backend": backend, "tried": tried}}
    assert "an add would use: %s for IPv4, %s for IPv6" % (backend, backend) in lines
    assert data["log"] == {"path": healthy.log_file, "directory": healthy.logs,
                           "writable": True, "problem": None}
    assert (data["names"]["ours"], data["names"]["not_ours"]) == (sorted(stocknames.LINKS),
                                                                  [])
    assert "names: 18 of 18 are links to our programs (%s)" % healthy.bin in lines
    assert health(lines) == ["health: ok (exit 0)"]


def test_a_broken_configuration_is_78(nft_netns, install):
    install.configure("[firewall-drop]\nbakend = iptables\n")
    code, data, lines = status(nft_netns, install)
    # Line 2 is the install's own backend = line.
    problem = ("configuration %s line 3: unknown key 'bakend' in section [firewall-drop]"
               % install.config_file)
    assert (code, data["exit"], data["problems"]) == (78, 78, [{"exit": 78,
                                                                "problem": problem}])
    assert health(lines) == ["health: 1 problem (exit 78)", "  " + problem]


def test_an_untrusted_configuration_is_78(nft_netns, install):
    install.configure("")
    os.chmod(install.config_file, 0o666)
    code, data, lines = status(nft_netns, install)
    problem = ("configuration %s: not trusted: %s is writable by any user (mode 0666); "
               "only a file that root alone can change is used (see README, Configuration)"
               % (install.config_file, install.config_file))
    assert (code, data["problems"]) == (78, [{"exit": 78, "problem": problem}])
    assert health(lines) == ["health: 1 problem (exit 78)", "  " + problem]


def tool_dirs(install, directory, backend):
    """Tools looked up only in *directory* (root's, as the setting wants)."""
    os.chmod(directory, 0o755)
    install.configure("[firewall-drop]\nbackend = %s\n[system]\ntool_dirs = %s\n"
                      % (backend, directory))


def test_no_usable_firewall_is_69(nft_netns, install, tmp_path):
    empty = str(tmp_path / "empty")
    os.mkdir(empty)
    tool_dirs(install, empty, "auto")
    code, data, lines = status(nft_netns, install)
    assert code == 69
    assert "backend: auto; auto would choose nothing (exit 69)" in lines
    assert "an add would use: nothing for IPv4, nothing for IPv6" in lines
    tried = "; ".join("%s: %s not found in %s" % (backend, tool, empty) for backend, tool in (
        ("firewalld", "firewall-cmd"), ("nftables", "nft"), ("ipset", "ipset")))
    assert data["problems"] == [
        {"exit": 69, "problem": "no usable firewall for IPv%d (%s; iptables: %s not found "
                                "in %s): every add of such an address exits 69"
                                % (version, tried, tool, empty)}
        for version, tool in ((4, "iptables"), (6, "ip6tables"))]
    assert health(lines)[0] == "health: 2 problems (exit 69)"


def test_a_firewall_for_ipv4_alone_is_69(nft_netns, install, tmp_path):
    """iptables without ip6tables: every IPv6 add would fail."""
    only = str(tmp_path / "only-iptables")
    os.mkdir(only)
    os.symlink(shutil.which("iptables", path="/usr/sbin:/sbin"), os.path.join(only,
                                                                              "iptables"))
    tool_dirs(install, only, "iptables")
    code, data, lines = status(nft_netns, install)
    assert code == 69
    assert "an add would use: iptables for IPv4, nothing for IPv6" in lines
    assert data["problems"] == [{"exit": 69, "problem": (
        "no usable firewall for IPv6 (iptables: ip6tables not found in %s): every add of "
        "such an address exits 69" % only)}]


@pytest.mark.parametrize("kind", ["missing", "a symbolic link", "a file"])
def test_a_log_the_runs_cannot_write_is_74(nft_netns, install, kind):
    os.unlink(install.log_file)
    if kind == "missing":
        os.rmdir(install.logs)
        reason = "its directory %s: No such file or directory" % install.logs
    elif kind == "a symbolic link":
        os.symlink("/dev/null", install.log_file)
        reason = "is a symbolic link, not a regular file"
    else:
        os.rmdir(install.logs)
        with open(install.logs, "w") as f:
            f.write("not a directory\n")
        reason = "%s is not a directory" % install.logs
    try:
        code, data, lines = status(nft_netns, install)
    finally:
        if os.path.isfile(install.logs):
            os.unlink(install.logs)
        elif os.path.lexists(install.log_file):
            os.unlink(install.log_file)
    problem = "log %s: %s; the runs' lines go to syslog" % (install.log_file, reason)
    assert (code, data["problems"]) == (74, [{"exit": 74, "problem": problem}])
    assert data["log"]["writable"] is False
    assert "log: %s (not writable: %s; the runs' lines go to syslog)" % (
        install.log_file, reason) in lines
    assert health(lines) == ["health: 1 problem (exit 74)", "  " + problem]


@pytest.fixture
def bypassable(install):
    """The install; whatever a test writes over its names is mended after."""
    yield install
    stocknames.link(install.bin)
    for name in os.listdir(install.bin):
        if name.endswith(stocknames.STOCK_SUFFIX):
            os.unlink(os.path.join(install.bin, name))


def write_over(install, name, text):
    """What OSSEC's installer does to our link: a regular file in its place."""
    path = install.program(name)
    os.unlink(path)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o550)


STOCK = "#!/bin/sh\n# OSSEC's own firewall-drop.sh, newly installed\n"


def test_a_bypassed_name_is_72_and_relink_mends_it(nft_netns, bypassable):
    install = bypassable
    write_over(install, "firewall-drop.sh", STOCK)
    os.unlink(install.program("route-null"))
    os.symlink("/bin/true", install.program("route-null"))
    code, data, lines = status(nft_netns, install)
    assert code == 72
    assert data["names"]["not_ours"] == [
        {"name": "firewall-drop.sh", "is": "a regular file of %d bytes" % len(STOCK),
         "program": "ossec-ar-firewall-drop"},
        {"name": "route-null", "is": "a link to /bin/true",
         "program": "ossec-ar-firewall-drop"}]
    problems = [
        "%s is a regular file of %d bytes, not our link to ossec-ar-firewall-drop: execd "
        "runs it, not ours (ossec-ar relink mends it)" % (install.program(), len(STOCK)),
        "%s is a link to /bin/true, not our link to ossec-ar-firewall-drop: execd runs it, "
        "not ours (ossec-ar relink mends it)" % install.program("route-null")]
    assert data["problems"] == [{"exit": 72, "problem": p} for p in problems]
    assert "names: 16 of 18 are links to our programs (%s)" % install.bin in lines
    assert "  firewall-drop.sh: a regular file of %d bytes" % len(STOCK) in lines
    assert health(lines) == ["health: 2 problems (exit 72)"] + ["  " + p for p in problems]

    result = admin(nft_netns, install, "relink")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "firewall-drop.sh: kept a regular file of %d bytes as firewall-drop.sh.stock; "
        "linked to ossec-ar-firewall-drop" % len(STOCK),
        "route-null: kept a link to /bin/true as route-null.stock; linked to "
        "ossec-ar-firewall-drop"]
    with open(install.program("firewall-drop.sh.stock")) as f:
        assert f.read() == STOCK
    assert os.readlink(install.program("route-null.stock")) == "/bin/true"
    assert install.log_lines()[-1].endswith(
        "/bin/ossec-ar: relink -: relinked: firewall-drop.sh: kept a regular file of %d "
        "bytes as firewall-drop.sh.stock; linked to ossec-ar-firewall-drop; route-null: "
        "kept a link to /bin/true as route-null.stock; linked to ossec-ar-firewall-drop "
        "(exit 0)" % len(STOCK))
    assert status(nft_netns, install)[0] == 0
    again = admin(nft_netns, install, "relink", "--json")
    assert (again.returncode, json.loads(again.stdout)) == (0, {"directory": install.bin,
                                                                "relinked": []})
    assert admin(nft_netns, install, "relink").stdout == \
        "every name is already our link (%s)\n" % install.bin


def test_the_first_problem_gives_the_code_and_every_one_is_listed(nft_netns, bypassable):
    install = bypassable
    write_over(install, "host-deny", "#!/bin/sh\n")
    os.unlink(install.log_file)
    os.rmdir(install.logs)
    install.configure("[firewall-drop]\nlock_wait = 0\n")
    code, data, lines = status(nft_netns, install)
    assert code == 78
    assert [item["exit"] for item in data["problems"]] == [78, 74, 72]
    assert health(lines)[0] == "health: 3 problems (exit 78)"
    assert len(health(lines)) == 4


@pytest.mark.parametrize("layout", ["etc/ writable by its group", "bin/wazuh-control"])
def test_on_a_wazuh_layout_status_names_the_system_configuration(nft_netns, install,
                                                                 etc_copy, layout):
    """Wazuh gives its etc/ to its own user and group: a configuration there
    is never trusted, so status names /etc/ossec-ar.conf, the one to write."""
    os.unlink(install.config_file)
    etc = os.path.join(install.prefix, "etc")
    marker = os.path.join(install.prefix, "bin", "wazuh-control")
    mode = os.stat(etc).st_mode & 0o7777
    if layout == "bin/wazuh-control":
        with open(marker, "w") as f:
            f.write("#!/bin/sh\n")
    else:
        os.chmod(etc, 0o770)
    try:
        code, data, lines = status(nft_netns, install, etc=etc_copy)
    finally:
        os.chmod(etc, mode)
        if os.path.exists(marker):
            os.unlink(marker)
    assert (code, data["config"]["path"]) == (0, "/etc/ossec-ar.conf")
    assert "config: /etc/ossec-ar.conf: absent (the defaults apply)" in lines
    # OSSEC's layout: the prefix's own file.
    code, data, lines = status(nft_netns, install, etc=etc_copy)
    assert (code, data["config"]["path"]) == (0, install.config_file)


def test_relink_without_our_programs_is_72_and_changes_nothing(tmp_path, capsys):
    """The source tree, say: its firewall-drop.sh is our program itself."""
    from ossec_ar import admin as module
    prefix = str(tmp_path)
    bindir = os.path.join(prefix, "active-response", "bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "firewall-drop.sh"), "w") as f:
        f.write("ours\n")
    assert module.main(["ossec-ar", "relink"], prefix) == 72
    assert capsys.readouterr().err == (
        "ossec-ar: failed: our programs are not in %s (ossec-ar-firewall-drop, "
        "ossec-ar-host-deny, ossec-ar-unblock missing): nothing to link to; install "
        "ossec-ar again (exit 72)\n" % bindir)
    assert os.listdir(bindir) == ["firewall-drop.sh"]


def test_a_make_install_run_again_keeps_the_newer_stock_file(tmp_path):
    """make install over its own install, after the agent wrote its
    script over our link: the newer script is the kept one."""
    prefix = make_install(str(tmp_path))
    bindir = os.path.join(prefix, "active-response", "bin")
    for version in ("1", "2"):
        os.unlink(os.path.join(bindir, "firewall-drop.sh"))
        with open(os.path.join(bindir, "firewall-drop.sh"), "w") as f:
            f.write("stock %s\n" % version)
        make_install(str(tmp_path))
        assert os.readlink(os.path.join(bindir, "firewall-drop.sh")) == \
            "ossec-ar-firewall-drop"
        with open(os.path.join(bindir, "firewall-drop.sh.stock")) as f:
            assert f.read() == "stock %s\n" % version
