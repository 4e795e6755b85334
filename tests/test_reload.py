"""A firewall reload is survived: examples/ossec-ar-restore.service, which
the packages install and enable.

This machine's init is not systemd, so the unit is checked by
``systemd-analyze verify`` and its commands are run by hand, as systemd
would run them after a reload or a restart of nftables.service: in a
private network namespace, after ``nft flush ruleset`` (what Debian's
nftables.conf does first on every reload), with packets to prove it.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import ROOT, make_install
from test_admin import admin, age_ledger, load_blocks
from test_packets import CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, Pair

UNIT = os.path.join(ROOT, "examples", "ossec-ar-restore.service")
COMMAND = "/var/ossec/bin/ossec-ar restore --since-boot"


def unit_settings():
    """{(section, key): [value, ...]} of the unit file, comments left out."""
    settings, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            settings.setdefault((section, key), []).append(value)
    return settings


def test_the_unit_carries_reloads_and_restarts_of_both_firewall_services():
    unit = unit_settings()
    firewalls = ["nftables.service firewalld.service"]
    # PartOf= carries a restart (and a stop), ReloadPropagatedFrom= a reload;
    # each run after the firewall service has loaded its rules.
    assert unit["Unit", "PartOf"] == unit["Unit", "ReloadPropagatedFrom"] == firewalls
    assert unit["Unit", "After"] == firewalls
    # Active between runs, or systemd carries nothing to it; a restart runs
    # ExecStart again, a reload ExecReload: the same command.  "-": a failed
    # restore leaves it active for the next reload.
    assert (unit["Service", "Type"], unit["Service", "RemainAfterExit"]) == (["oneshot"],
                                                                            ["yes"])
    assert unit["Service", "ExecStart"] == ["-" + COMMAND]
    assert unit["Service", "ExecReload"] == [COMMAND]
    assert unit["Install", "WantedBy"] == ["multi-user.target " + firewalls[0]]


def test_systemd_analyze_verifies_the_unit(tmp_path):
    """Every key known, the command there and executable, the manual page
    it names found (the installed copy's, through MANPATH)."""
    destdir = str(tmp_path / "destdir")
    prefix = make_install(destdir)
    units = tmp_path / "units"
    units.mkdir()
    with open(UNIT) as f:
        text = f.read()
    assert text.count("/var/ossec/") == 2
    (units / "ossec-ar-restore.service").write_text(text.replace("/var/ossec/", prefix + "/"))
    result = subprocess.run(["systemd-analyze", "verify",
                             str(units / "ossec-ar-restore.service")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120,
                            env=dict(os.environ, MANPATH=destdir + "/usr/share/man"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # ...and it does report what it finds (a key it does not know).
    (units / "ossec-ar-restore.service").write_text(
        text.replace("/var/ossec/", prefix + "/").replace("[Service]\n",
                                                          "[Service]\nRemainAfterExt=yes\n"))
    result = subprocess.run(["systemd-analyze", "verify",
                             str(units / "ossec-ar-restore.service")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120,
                            env=dict(os.environ, MANPATH=destdir + "/usr/share/man"))
    assert "Unknown key 'RemainAfterExt'" in result.stderr


def the_units(install, key):
    """The unit's *key* command (ExecStart, ExecReload) for *install*, as
    systemd runs it: argv split on spaces, the "-" prefix left to systemd."""
    command = unit_settings()["Service", key][0].lstrip("-")
    return command.replace("/var/ossec/", install.prefix + "/").split()


@pytest.fixture
def pair(install):
    install.configure("[firewall-drop]\nbackend = nftables\n")
    pair = Pair("nft")
    yield pair
    pair.close()


def in_force(pair, install):
    rows = json.loads(admin(pair.server, install, "list", "--json").stdout)["blocks"]
    return {row["address"]: row["state"] for row in rows}


@pytest.mark.parametrize("key", ["ExecStart", "ExecReload"])
def test_after_a_flush_the_units_command_puts_every_block_back(pair, install, key):
    program = install.program()
    for client in (CLIENT_V4, CLIENT_V6):
        assert pair.server.run([program, "add", "-", client, "1.1", "5712"]).returncode == 0
    load_blocks(pair.server, install, 998)
    assert not pair.connects(SERVER_V4) and not pair.connects(SERVER_V6)
    blocks = in_force(pair, install)
    assert len(blocks) == 1000 and set(blocks.values()) == {"in force"}
    pair.server.check(["nft", "flush", "ruleset"])       # what a reload does first
    assert pair.connects(SERVER_V4) and pair.connects(SERVER_V6)
    assert set(in_force(pair, install).values()) == {"lost"}
    result = pair.server.run(the_units(install, key))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.count(": blocked: nftables ") == 1000
    assert not pair.connects(SERVER_V4) and not pair.connects(SERVER_V6)
    assert in_force(pair, install) == blocks
    # Once more: nothing left to do.
    result = pair.server.run(the_units(install, key))
    assert (result.returncode, result.stdout, result.stderr) == (0, "nothing to restore\n",
                                                                 "")


def booted():
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("btime "))


def test_a_block_from_before_the_boot_is_never_put_back(pair, install):
    """Its delete died with execd's timers at the reboot: --since-boot
    leaves it lost, where a plain restore would make it permanent."""
    program = install.program()
    assert pair.server.run([program, "add", "-", CLIENT_V4, "1.1", "5712"]).returncode == 0
    # Dated an hour before this boot, as if made then and lost at the reboot.
    age_ledger(install, "firewall-drop", time.time() - booted() + 3600)
    assert pair.server.run([program, "add", "-", CLIENT_V6, "1.2", "5712"]).returncode == 0
    pair.server.check(["nft", "flush", "ruleset"])
    assert pair.connects(SERVER_V4) and pair.connects(SERVER_V6)
    for key in ("ExecStart", "ExecReload"):
        result = pair.server.run(the_units(install, key))
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.splitlines()[-1] == (
            "note: 1 lost blocks made before this boot (or dated in the future) left "
            "alone: --since-boot")
        assert pair.connects(SERVER_V4)                      # still lifted
        assert not pair.connects(SERVER_V6)                  # put back
        assert in_force(pair, install) == {CLIENT_V4: "lost", CLIENT_V6: "in force"}
    # What the unit never does, a plain restore would.
    result = admin(pair.server, install, "restore")
    assert result.stdout.startswith("%s (firewall-drop): blocked: " % CLIENT_V4)
    assert not pair.connects(SERVER_V4)


def test_the_packages_unit_dir_gets_the_unit_and_uninstall_takes_it(tmp_path):
    destdir = str(tmp_path)
    args = ["DESTDIR=" + destdir, "UNITDIR=/lib/systemd/system", "PYTHON=/usr/bin/python3"]
    subprocess.run(["make", "-s", "-C", ROOT, "install"] + args, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    installed = os.path.join(destdir, "lib", "systemd", "system", "ossec-ar-restore.service")
    with open(installed) as f, open(UNIT) as g:
        assert f.read() == g.read()
    assert oct(os.stat(installed).st_mode & 0o777) == oct(0o644)
    subprocess.run(["make", "-s", "-C", ROOT, "uninstall"] + args, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert not os.path.exists(installed)
