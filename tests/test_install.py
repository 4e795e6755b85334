"""make install / uninstall, where the programs find their package, and
isolation from the caller's environment and working directory."""

import glob
import json
import os
import shutil
import stat
import subprocess

import pytest

import ossec
from conftest import Install, INSTALL_PREFIX, PYTHON, ROOT, make_install
from ossec_ar.firewall import BACKEND_OF_NAME
from ossec_ar.stocknames import LINKS
from scratchroot import OverlaidHost


@pytest.fixture
def install(iptables_install):
    """These tests read the iptables layout, so they choose it: ``auto``
    takes a set layout wherever nft or ipset is installed."""
    return iptables_install


MODULES = sorted(os.path.relpath(p, os.path.join(ROOT, "lib"))
                 for p in glob.glob(os.path.join(ROOT, "lib", "ossec_ar", "**", "*.py"),
                                    recursive=True))


def snapshot(top):
    """{relative path: (type and mode, content or link)} for every entry."""
    entries = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            content = None
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as f:
                    content = f.read()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            entries[os.path.relpath(path, top)] = (info.st_mode, content)
    return entries


def ossec_tree(destdir, stock=False):
    """What an OSSEC agent already has under /var/ossec (with *stock*, its
    own firewall-drop.sh and the rest under the names execd runs), and the
    system's manual page directory."""
    prefix = destdir + INSTALL_PREFIX
    for sub in ("active-response/bin", "bin", "logs", "lib", "etc", "var/run"):
        os.makedirs(os.path.join(prefix, sub))
    os.makedirs(os.path.join(destdir, "usr/share/man/man8"))
    os.chmod(os.path.join(prefix, "active-response", "bin"), 0o750)
    files = [("active-response/bin/restart-ossec.sh", "#!/bin/sh\n"),
             ("lib/libwazuhext.so", "ELF"), ("etc/ossec.conf", "<ossec_config/>"),
             ("logs/active-responses.log", "old line\n")]
    if stock:
        files += [("active-response/bin/" + name, "#!/bin/sh\n# stock %s\n" % name)
                  for name in STOCK_NAMES]
    for name, text in files:
        with open(os.path.join(prefix, name), "w") as f:
            f.write(text)
    return prefix


# make install's list of the directories it made, which make uninstall reads.
RECORD = "var/ossec/lib/ossec_ar/installed-dirs"
# Every name execd may run (test_stocknames checks the list), and our programs.
STOCK_NAMES = sorted(LINKS)
PROGRAM_OF = LINKS
PROGRAMS = sorted(set(LINKS.values()))


def test_install_layout(tmp_path):
    destdir = str(tmp_path)
    prefix = ossec_tree(destdir)
    before = snapshot(destdir)
    make_install(destdir)
    after = snapshot(destdir)
    added = sorted(set(after) - set(before))
    bindir = "var/ossec/active-response/bin/"
    programs = [bindir + name for name in PROGRAMS]
    assert len(programs) == 3
    links = [bindir + name for name in STOCK_NAMES]
    expected = set(programs) | set(links) | {"var/ossec/lib/ossec_ar",
                                             "var/ossec/lib/ossec_ar/backends"}
    for module in MODULES:
        expected.add("var/ossec/lib/" + module)
        directory, name = os.path.split(module)
        expected.add("var/ossec/lib/%s/__pycache__" % directory)
    expected |= {"usr/share/man/man8/firewall-drop.sh.8.gz",
                 "usr/share/man/man8/host-deny.sh.8.gz", "usr/share/man/man8/ossec-ar.8.gz",
                 "usr/share/bash-completion", "usr/share/bash-completion/completions",
                 "usr/share/bash-completion/completions/ossec-ar", "usr/share/ossec-ar",
                 "usr/share/ossec-ar/ossec-ar_decoders.xml",
                 "usr/share/ossec-ar/ossec-ar_rules.xml", "var/ossec/bin/ossec-ar"}
    expected |= {"usr/share/ossec-ar/ossec-ar-%s.%s" % (job, kind)
                 for job in ("expire", "metrics") for kind in ("service", "timer", "cron")}
    expected.add("usr/share/ossec-ar/ossec-ar-restore.service")
    expected.add(RECORD)
    pycs = [p for p in added if p.endswith(".pyc")]
    assert sorted(set(added) - set(pycs)) == sorted(expected)
    for link in links:                   # every name execd runs, .sh or not
        assert stat.S_ISLNK(after[link][0])
        assert after[link][1] == PROGRAM_OF[os.path.basename(link)]
    # Byte-compiled: one .pyc per module, for the interpreter of the shebang.
    tag = subprocess.check_output([PYTHON, "-c", "import sys; print(sys.implementation"
                                   ".cache_tag)"], universal_newlines=True).strip()
    assert sorted(pycs) == sorted(
        "var/ossec/lib/%s/__pycache__/%s.%s.pyc" % (os.path.dirname(m),
                                                  os.path.basename(m)[:-3], tag)
        for m in MODULES)
    # Nothing of OSSEC's changed, modes of its directories included.
    assert {k: v for k, v in after.items() if k in before} == before
    for program in programs + ["var/ossec/bin/ossec-ar"]:
        assert stat.S_IMODE(after[program][0]) == 0o750
        assert after[program][1].startswith(b"#!/usr/bin/python3 -IS\n")
    assert stat.S_IMODE(after["var/ossec/lib/ossec_ar/cli.py"][0]) == 0o644
    assert stat.S_IMODE(after["var/ossec/lib/ossec_ar"][0]) == 0o755
    assert prefix == destdir + INSTALL_PREFIX
    # The directories that install made, for uninstall: OSSEC's were there.
    assert after[RECORD] == (after[RECORD][0], b"/usr/share/bash-completion\n"
                             b"/usr/share/bash-completion/completions\n"
                             b"/usr/share/ossec-ar\n/var/ossec/lib/ossec_ar\n"
                             b"/var/ossec/lib/ossec_ar/backends\n")
    assert stat.S_IMODE(after[RECORD][0]) == 0o644


def test_install_keeps_stock_files_aside_and_uninstall_puts_them_back(tmp_path):
    destdir = str(tmp_path)
    ossec_tree(destdir, stock=True)
    before = snapshot(destdir)
    make_install(destdir)
    after = snapshot(destdir)
    bindir = "var/ossec/active-response/bin/"
    for name in STOCK_NAMES:
        assert after[bindir + name] == (after[bindir + name][0], PROGRAM_OF[name])
        assert after[bindir + name + ".stock"] == before[bindir + name]
    make_install(destdir)                # again: the stock files stay the stock files
    again = snapshot(destdir)
    assert {p: again[p] for p in again if p.startswith(bindir)} == {
        p: after[p] for p in after if p.startswith(bindir)}
    subprocess.run(["make", "-s", "-C", ROOT, "uninstall", "DESTDIR=" + destdir,
                    "PREFIX=" + INSTALL_PREFIX], check=True)
    assert snapshot(destdir) == before


def test_a_real_ossec_agents_stock_scripts_are_kept_and_put_back(tmp_path):
    """make install on a copy of a real OSSEC agent's install (built from
    the vendored source): each of OSSEC's firewall and host-deny scripts is
    now a link to our program, kept byte for byte as <name>.stock, and make
    uninstall gives the directory back as it was."""
    agent = ossec.Ossec(tmp_path / "agent", "agent")
    bindir = agent.path("active-response", "bin")
    before = snapshot(bindir)
    theirs = {name for name in before
              if name in ("firewall-drop.sh", "host-deny.sh") or name[:-3] in BACKEND_OF_NAME}
    # OSSEC's names are exactly our .sh names, unblock.sh apart (no agent has it).
    assert theirs == {name for name in LINKS if name.endswith(".sh")} - {"unblock.sh"}
    assert "restart-ossec.sh" in set(before) - theirs
    agent.install_ossec_ar()
    after = snapshot(bindir)
    for name in LINKS:
        assert after[name][1] == LINKS[name], name
    for name in theirs:
        assert after[name + ".stock"] == before[name], name
    assert {name: after[name] for name in set(before) - theirs} == {
        name: before[name] for name in set(before) - theirs}
    make_uninstall(agent.root, agent.prefix)
    assert snapshot(bindir) == before


def test_ossecs_own_installer_run_again_is_noticed_and_relink_keeps_its_files(tmp_path):
    """OSSEC's real make install, run again over a prefix where ossec-ar is
    installed, writes its scripts over our links: status names each one
    and exits 72; relink keeps each new script as <name>.stock in place of
    the older kept one; make uninstall then gives back the new scripts."""
    agent = ossec.Ossec(tmp_path / "ossec", "local")
    bindir = agent.path("active-response", "bin")
    agent.install_ossec_ar()
    status = agent.run([agent.prefix + "/bin/ossec-ar", "status"])
    assert (status.returncode, status.stderr) == (0, ""), status.stdout
    theirs = sorted(name for name in os.listdir(bindir)
                    if name + ".stock" in os.listdir(bindir))
    assert theirs == sorted(name for name in LINKS if name.endswith(".sh")
                            and name != "unblock.sh")
    for name in theirs:                  # the kept files: an older release's
        with open(os.path.join(bindir, name + ".stock"), "w") as f:
            f.write("# the older %s\n" % name)
    agent.install_ossec_again()
    ours = snapshot(bindir)
    for name in LINKS:                   # OSSEC's names only, and not through our links
        assert stat.S_ISLNK(ours[name][0]) == (name not in theirs), name
    for program in PROGRAMS:
        with open(os.path.join(ROOT, "active-response", "bin", PROGRAM_SOURCE[program]),
                  "rb") as f:
            assert ours[program][1].split(b"\n", 1)[1] == f.read().split(b"\n", 1)[1]
    new = {name: ours[name][1] for name in theirs}
    source = os.path.dirname(ossec.built_source("local"))
    for name in theirs:                  # each byte for byte what OSSEC ships
        where = [os.path.join(source, "active-response", sub, name) for sub in ("", "firewalls")]
        with open(next(path for path in where if os.path.isfile(path)), "rb") as f:
            assert new[name] == f.read(), name
    status = agent.run([agent.prefix + "/bin/ossec-ar", "status", "--json"])
    assert (status.returncode, status.stderr) == (72, "")
    data = json.loads(status.stdout)
    assert data["names"]["not_ours"] == [
        {"name": name, "is": "a regular file of %d bytes" % len(new[name]),
         "program": LINKS[name]} for name in theirs]
    assert data["problems"] == [
        {"exit": 72, "problem": "%s/active-response/bin/%s is a regular file of %d bytes, "
                                "not our link to %s: execd runs it, not ours (ossec-ar "
                                "relink mends it)" % (agent.prefix, name, len(new[name]),
                                                      LINKS[name])} for name in theirs]
    relink = agent.run([agent.prefix + "/bin/ossec-ar", "relink"])
    assert (relink.returncode, relink.stderr) == (0, "")
    assert relink.stdout.splitlines() == [
        "%s: kept a regular file of %d bytes as %s.stock; linked to %s"
        % (name, len(new[name]), name, LINKS[name]) for name in theirs]
    after = snapshot(bindir)
    for name in LINKS:
        assert after[name][1] == LINKS[name], name
    for name in theirs:
        assert after[name + ".stock"] == ours[name], name    # mode and bytes
    status = agent.run([agent.prefix + "/bin/ossec-ar", "status"])
    assert (status.returncode, status.stdout.splitlines()[-1]) == (0, "health: ok (exit 0)")
    make_uninstall(agent.root, agent.prefix)
    back = snapshot(bindir)
    assert {name: back[name] for name in theirs} == {name: ours[name] for name in theirs}
    assert not any(name.endswith(".stock") or name.startswith("ossec-ar-") for name in back)


# The source of each installed program (the Makefile's PROGRAMS).
PROGRAM_SOURCE = {"ossec-ar-firewall-drop": "firewall-drop.sh",
                  "ossec-ar-host-deny": "host-deny.sh", "ossec-ar-unblock": "unblock.sh"}


def test_a_name_of_one_firewall_runs_that_firewall(nft_netns, install):
    """Through the installed link: nftables-drop.sh takes nftables although
    the configuration says iptables, and firewall-drop.sh keeps iptables."""
    for name, address in (("nftables-drop.sh", "192.0.2.7"), ("firewall-drop.sh", "192.0.2.8")):
        program = os.path.join(install.bin, name)
        assert os.readlink(program) == "ossec-ar-firewall-drop"
        result = nft_netns.run([program, "add", "-", address])
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    lines = install.log_lines()
    assert (" %s/nftables-drop.sh: add 192.0.2.7: blocked: nftables " % install.bin) in lines[1]
    assert (" %s/firewall-drop.sh: add 192.0.2.8: blocked: iptables chain OSSEC" % install.bin) \
        in lines[3]
    assert "-A OSSEC -s 192.0.2.8/32 -j DROP" in nft_netns.rules()
    assert not any("192.0.2.7" in rule for rule in nft_netns.rules())
    assert "192.0.2.7" in nft_netns.check(["nft", "list", "set", "inet", "ossec", "v4"])


def test_uninstall_removes_exactly_what_install_added(tmp_path):
    destdir = str(tmp_path)
    ossec_tree(destdir)
    before = snapshot(destdir)
    make_install(destdir)
    subprocess.run(["make", "-s", "-C", ROOT, "uninstall", "DESTDIR=" + destdir,
                    "PREFIX=" + INSTALL_PREFIX], check=True)
    assert snapshot(destdir) == before


def make_uninstall(destdir, prefix=INSTALL_PREFIX):
    subprocess.run(["make", "-s", "-C", ROOT, "uninstall", "DESTDIR=" + destdir,
                    "PREFIX=" + prefix], check=True)


def test_uninstall_removes_the_directories_install_made(tmp_path):
    destdir = str(tmp_path)
    make_install(destdir)
    make_install(destdir)                # again: the first one's record is kept
    make_uninstall(destdir)
    assert snapshot(destdir) == {}       # no empty lib/, man8/, var/ or usr/ left


def test_uninstall_keeps_directories_that_were_there_or_hold_other_files(tmp_path):
    destdir = str(tmp_path)
    for empty in ("var/ossec/lib", "usr/share/man/man8"):
        os.makedirs(os.path.join(destdir, empty))
    before = snapshot(destdir)
    make_install(destdir)
    # Someone else's file in a directory that install made.
    other = os.path.join(destdir, "var/ossec/active-response/bin/restart-ossec.sh")
    with open(other, "w") as f:
        f.write("#!/bin/sh\n")
    make_uninstall(destdir)
    after = snapshot(destdir)
    assert {path: after[path] for path in before} == before
    assert sorted(set(after) - set(before)) == [
        "var/ossec/active-response", "var/ossec/active-response/bin",
        "var/ossec/active-response/bin/restart-ossec.sh"]


def source_state():
    """git's view of the installed sources, ignored files included."""
    return subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored",
                           "--untracked-files=all", "--", "Makefile", "active-response",
                           "bin", "examples", "lib", "man", "rules"],
                          check=True, stdout=subprocess.PIPE).stdout


def test_a_scratch_prefix_touches_nothing_outside_it(tmp_path):
    """make install and uninstall with another PREFIX and no DESTDIR, on the
    machine itself but with /etc, /opt, /usr and /var under overlays that
    record every change: none there, and none in the source tree."""
    host = OverlaidHost(tmp_path / "overlays")
    top = str(tmp_path / "scratch")
    prefix = os.path.join(top, "ossec")
    sources = source_state()
    host.run(["make", "-s", "-C", ROOT, "install", "PREFIX=" + prefix, "PYTHON=" + PYTHON])
    assert host.changes() == {}
    installed = snapshot(prefix)
    assert {"active-response/bin/firewall-drop.sh", "bin/ossec-ar", "lib/ossec_ar/cli.py",
            "share/man/man8/firewall-drop.sh.8.gz", "share/man/man8/host-deny.sh.8.gz",
            "share/ossec-ar/ossec-ar_rules.xml", "share/ossec-ar/ossec-ar-expire.timer",
            "share/man/man8/ossec-ar.8.gz", "share/bash-completion/completions/ossec-ar",
            "share/ossec-ar/ossec-ar-metrics.timer",
            "lib/ossec_ar/installed-dirs"} <= set(installed)
    host.run(["make", "-s", "-C", ROOT, "uninstall", "PREFIX=" + prefix])
    assert host.changes() == {}
    assert not os.path.lexists(top)      # made by install, so removed by uninstall
    assert source_state() == sources


def test_the_default_prefix_puts_manual_pages_and_rules_in_usr_share(tmp_path):
    """The default PREFIX with no DESTDIR, in the same overlays: the agent's
    home, /usr/share/man and /usr/share/ossec-ar, nothing else; uninstall
    takes it all back, leaving only the machine's own directories."""
    host = OverlaidHost(tmp_path / "overlays")
    host.run(["make", "-s", "-C", ROOT, "install", "PYTHON=" + PYTHON])
    files = sorted(path for path, kind in host.changes().items() if kind != "dir")
    shared = sorted(["/usr/share/bash-completion/completions/ossec-ar",
                     "/usr/share/man/man8/firewall-drop.sh.8.gz",
                     "/usr/share/man/man8/host-deny.sh.8.gz",
                     "/usr/share/man/man8/ossec-ar.8.gz"] + [
        "/usr/share/ossec-ar/" + name for name in (
            "ossec-ar-expire.cron", "ossec-ar-expire.service", "ossec-ar-expire.timer",
            "ossec-ar-metrics.cron", "ossec-ar-metrics.service", "ossec-ar-metrics.timer",
            "ossec-ar-restore.service", "ossec-ar_decoders.xml", "ossec-ar_rules.xml")])
    assert [path for path in files if not path.startswith(INSTALL_PREFIX + "/")] == shared
    assert INSTALL_PREFIX + "/active-response/bin/firewall-drop.sh" in files
    assert "/" + RECORD in files
    host.run(["make", "-s", "-C", ROOT, "uninstall"])
    left = host.changes()
    # Only directories the machine has (overlayfs copies them up when a
    # file is made inside): nothing made, nothing of the machine's removed.
    assert {path: kind for path, kind in left.items()
            if kind != "dir" or not os.path.isdir(path)} == {}


def test_shebang_follows_python_variable(tmp_path):
    subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + str(tmp_path),
                    "PREFIX=/opt/ossec", "PYTHON=/usr/libexec/platform-python",
                    "COMPILE_PYTHON=" + PYTHON],
                   check=True, stdout=subprocess.PIPE)
    for name in STOCK_NAMES:                                # through the links
        with open(str(tmp_path / "opt/ossec/active-response/bin" / name)) as f:
            assert f.readline() == "#!/usr/libexec/platform-python -IS\n"


def test_runs_from_the_source_tree_layout(nft_netns, tmp_path):
    # A copy of the tree as checked out, so the repository gets no logs/.
    tree = tmp_path / "tree"
    shutil.copytree(os.path.join(ROOT, "active-response"), str(tree / "active-response"))
    shutil.copytree(os.path.join(ROOT, "lib"), str(tree / "lib"))
    (tree / "logs").mkdir()
    (tree / "etc").mkdir()
    Install(str(tree), backend="iptables").configure("")       # the layout read below
    program = str(tree / "active-response/bin/firewall-drop.sh")
    assert nft_netns.run([program, "add", "-", "192.0.2.7"]).returncode == 0
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    log = (tree / "logs/active-responses.log").read_text()
    assert log.splitlines()[0].endswith(" %s add - 192.0.2.7  " % program)
    assert os.path.exists(str(tree / "var/ossec-ar/firewall-drop.lock"))


def test_symlinked_program_logs_where_invoked_and_locks_where_installed(
        nft_netns, install, tmp_path):
    other = tmp_path / "other"
    (other / "active-response/bin").mkdir(parents=True)
    (other / "logs").mkdir()
    link = str(other / "active-response/bin/firewall-drop.sh")
    os.symlink(install.program(), link)
    assert nft_netns.run([link, "add", "-", "192.0.2.7"]).returncode == 0
    lines = (other / "logs/active-responses.log").read_text().splitlines()
    assert lines[0].endswith(" %s add - 192.0.2.7  " % link)      # not resolved
    assert (" %s: add 192.0.2.7: blocked" % link) in lines[1]
    assert install.log_lines() == []
    assert os.path.exists(os.path.join(install.prefix, "var/ossec-ar/firewall-drop.lock"))
    assert not (other / "var").exists()


EVIL = "open(%r, 'w').write('imported from ' + __file__)\n"


def test_isolated_from_environment_and_cwd(nft_netns, install, tmp_path):
    marker = str(tmp_path / "pwned")
    evil = tmp_path / "evil"
    for package in ("ossec_ar", "ipaddress", "fcntl", "select"):
        (evil / package).mkdir(parents=True)
        (evil / package / "__init__.py").write_text(EVIL % marker)
    (evil / "sitecustomize.py").write_text(EVIL % marker)
    (evil / "usercustomize.py").write_text(EVIL % marker)
    env = {"PATH": str(evil), "PYTHONPATH": str(evil), "PYTHONHOME": str(evil),
           "PYTHONSTARTUP": str(evil / "sitecustomize.py"), "PYTHONINSPECT": "1",
           "PYTHONUSERBASE": str(evil), "PYTHONWARNINGS": "error", "LD_PRELOAD": "",
           "LANG": "de_DE.UTF-8", "TZ": "Asia/Dubai", "HOME": str(evil)}
    result = nft_netns.run(["/usr/bin/env", "-i"] + ["%s=%s" % kv for kv in env.items()]
                           + [install.program(), "add", "-", "192.0.2.7", "1.1", "1"],
                           cwd=str(evil))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not os.path.exists(marker)
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    assert install.log_lines()[1].endswith(": add 192.0.2.7: blocked: iptables chain OSSEC "
                                           "(repaired: created chain OSSEC, jump from INPUT,"
                                           " jump from FORWARD) (exit 0)")


# Runs in a private mount namespace: a tmpfs over /dev with just /dev/null
# and our own /dev/log socket, so the machine's syslog is never involved.
SYSLOG_CATCHER = """
import os, socket, subprocess, sys
subprocess.run(["mount", "-t", "tmpfs", "none", "/dev"], check=True)
os.mknod("/dev/null", 0o666 | 0o020000, os.makedev(1, 3))
catcher = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
catcher.bind("/dev/log")
catcher.settimeout(10)
code = subprocess.run(sys.argv[1:]).returncode
print(code)
for _ in range(2):
    print(catcher.recv(65536).decode())
"""


def test_unwritable_log_still_blocks_and_goes_to_syslog(nft_netns, install):
    os.unlink(install.log_file)
    os.rmdir(install.logs)
    with open(install.logs, "w") as f:     # a file where the directory should be
        f.write("not a directory")
    try:
        result = nft_netns.run(["unshare", "-m", "--propagation", "private", PYTHON, "-c",
                                SYSLOG_CATCHER, install.program(), "add", "-", "192.0.2.7",
                                "1.1", "5712"])
    finally:
        os.unlink(install.logs)
    code, first, second = result.stdout.splitlines()
    assert code == "0"
    assert "-A OSSEC -s 192.0.2.7/32 -j DROP" in nft_netns.rules()
    where = "cannot write %s/active-response/bin/../../logs/active-responses.log " \
            "(Not a directory): " % install.prefix
    # <PRI> is facility authpriv (10) * 8 + err (3) = 83.
    assert first.startswith("<83>") and "firewall-drop[" in first
    assert first.endswith(where + install.program() + " add - 192.0.2.7 1.1 5712")
    assert second.startswith("<83>")
    assert second.endswith(where + install.program() + ": add 192.0.2.7: blocked: iptables "
                           "chain OSSEC (repaired: created chain OSSEC, jump from INPUT, "
                           "jump from FORWARD) (exit 0)")
