"""stocknames.py, which the Makefile and the RPM's scriptlets run: links in
place of the stock names, the stock files kept beside them and put back."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ossec_ar import stocknames
from ossec_ar.firewall import BACKEND_OF_NAME

BIN = "/var/ossec/active-response/bin"


def stock(fs, *names, text="#!/bin/sh\n# stock\n"):
    for name in names:
        fs.create_file(os.path.join(BIN, name), contents=text)


def state():
    """{name: link target, or the file's text}."""
    found = {}
    for name in sorted(os.listdir(BIN)):
        path = os.path.join(BIN, name)
        found[name] = ("-> " + os.readlink(path)) if os.path.islink(path) else open(path).read()
    return found


# The names agents run that are firewall-drop's (one firewall each, but for
# firewall-drop itself) and host-deny's: OSSEC's, with .sh, as its
# src/Makefile (install-common) installs them from active-response/ and
# active-response/firewalls/ (test_install checks them against a real OSSEC
# agent's install); Wazuh 4.2 and later's, without, as InstallCommon in its
# src/init/inst-functions.sh installs them.  And ours alone, unblock's.
OSSEC = {"firewall-drop.sh", "firewalld-drop.sh", "nftables-drop.sh", "route-null.sh", "pf.sh",
         "ipfw.sh", "ipfw_mac.sh", "npf.sh", "host-deny.sh"}
WAZUH = {"firewall-drop", "firewalld-drop", "route-null", "pf", "ipfw", "npf", "host-deny"}
PROGRAM = {name: "ossec-ar-firewall-drop" for name in OSSEC | WAZUH}
PROGRAM.update({"host-deny.sh": "ossec-ar-host-deny", "host-deny": "ossec-ar-host-deny",
                "unblock.sh": "ossec-ar-unblock", "unblock": "ossec-ar-unblock"})
OURS = {name: "-> " + program for name, program in PROGRAM.items()}
STOCK = "#!/bin/sh\n# stock\n"


def test_the_names_are_the_agents_and_ours():
    assert stocknames.LINKS == PROGRAM
    assert len(PROGRAM) == 18


def test_every_firewall_name_but_firewall_drop_chooses_its_own_backend():
    firewall = {name[:-3] if name.endswith(".sh") else name
                for name, program in PROGRAM.items() if program == "ossec-ar-firewall-drop"}
    assert firewall == {"firewall-drop"} | set(BACKEND_OF_NAME)


def test_link_on_an_empty_directory_and_restore(fs):
    fs.create_dir(BIN)
    stocknames.link(BIN)
    assert state() == OURS
    stocknames.link(BIN)                                 # idempotent
    assert state() == OURS
    stocknames.restore(BIN)
    assert state() == {}


def test_stock_files_are_kept_and_come_back(fs):
    stock(fs, "firewall-drop.sh", "host-deny.sh", "restart-ossec.sh")
    stocknames.link(BIN)
    assert state() == dict(OURS, **{"firewall-drop.sh.stock": STOCK, "host-deny.sh.stock": STOCK,
                                    "restart-ossec.sh": STOCK})
    stocknames.restore(BIN)
    assert state() == {"firewall-drop.sh": STOCK, "host-deny.sh": STOCK, "restart-ossec.sh": STOCK}


def test_a_stock_file_under_every_name_is_kept_and_comes_back(fs):
    for name in PROGRAM:
        stock(fs, name, text="stock %s\n" % name)
    stocknames.link(BIN)
    assert state() == dict(OURS, **{name + ".stock": "stock %s\n" % name for name in PROGRAM})
    stocknames.restore(BIN)
    assert state() == {name: "stock %s\n" % name for name in PROGRAM}


def test_an_upgraded_stock_file_replaces_the_kept_one(fs):
    stock(fs, "firewall-drop.sh", text="v1\n")
    stocknames.link(BIN)
    os.unlink(os.path.join(BIN, "firewall-drop.sh"))     # the agent's upgrade
    stock(fs, "firewall-drop.sh", text="v2\n")
    stocknames.link(BIN)
    assert state()["firewall-drop.sh"] == "-> ossec-ar-firewall-drop"
    assert state()["firewall-drop.sh.stock"] == "v2\n"
    stocknames.restore(BIN)
    assert state() == {"firewall-drop.sh": "v2\n"}


def programs(fs):
    """Our programs in BIN: {name: text}, as state() shows them."""
    ours = {program: "#!/usr/bin/python3 -IS\n" for program in set(PROGRAM.values())}
    for program, text in ours.items():
        fs.create_file(os.path.join(BIN, program), contents=text)
    return ours


def test_a_file_written_over_our_link_replaces_the_kept_one_and_is_reported(fs):
    """OSSEC's installer, run again, writes its script over our link: the
    new script is kept in place of the older one, and link says so."""
    stock(fs, "firewall-drop.sh", "host-deny.sh", text="older\n")
    ours = programs(fs)
    stocknames.link(BIN)
    os.unlink(os.path.join(BIN, "firewall-drop.sh"))
    stock(fs, "firewall-drop.sh", text="newer\n")
    assert stocknames.bypassed(BIN) == [("firewall-drop.sh", "a regular file of 6 bytes")]
    assert stocknames.link(BIN) == [("firewall-drop.sh", "a regular file of 6 bytes")]
    assert state() == dict(OURS, **ours, **{"firewall-drop.sh.stock": "newer\n",
                                            "host-deny.sh.stock": "older\n"})
    assert stocknames.bypassed(BIN) == []
    assert stocknames.link(BIN) == []                    # nothing left to do
    stocknames.restore(BIN)
    assert state() == dict(ours, **{"firewall-drop.sh": "newer\n", "host-deny.sh": "older\n"})


def test_bypassed_says_what_each_wrong_name_is(fs):
    fs.create_dir(BIN)
    stocknames.link(BIN)
    os.unlink(os.path.join(BIN, "pf"))
    os.unlink(os.path.join(BIN, "host-deny"))
    fs.create_file("/opt/other/host-deny")
    os.symlink("/opt/other/host-deny", os.path.join(BIN, "host-deny"))
    os.unlink(os.path.join(BIN, "npf"))
    os.symlink("nowhere", os.path.join(BIN, "npf"))
    wrong = {"host-deny": "a link to /opt/other/host-deny", "npf": "a link to nowhere (dangling)",
             "pf": "absent"}
    # Without our programs, even our links run nothing.
    assert stocknames.bypassed(BIN) == sorted(
        (name, wrong.get(name, "a link to %s, which is missing" % PROGRAM[name]))
        for name in PROGRAM)
    programs(fs)
    assert stocknames.bypassed(BIN) == sorted(wrong.items())


def test_a_link_to_the_kept_file_or_to_us_is_not_kept_over_it(fs):
    """Nothing that would lose the kept stock file, or give back a link to
    a program of ours that removal deletes."""
    stock(fs, "firewall-drop.sh", text="stock\n")
    stocknames.link(BIN)
    for name, target in (("firewall-drop.sh", "firewall-drop.sh.stock"),
                         ("route-null", os.path.join(BIN, "ossec-ar-firewall-drop"))):
        os.unlink(os.path.join(BIN, name))
        os.symlink(target, os.path.join(BIN, name))
    fs.create_file(os.path.join(BIN, "ossec-ar-firewall-drop"))
    assert stocknames.link(BIN) == [("firewall-drop.sh", None), ("route-null", None)]
    found = state()
    assert found.pop("ossec-ar-firewall-drop") == ""
    assert found == dict(OURS, **{"firewall-drop.sh.stock": "stock\n"})


def test_restore_leaves_a_name_someone_else_took(fs):
    stock(fs, "host-deny.sh", text="stock\n")
    stocknames.link(BIN)
    os.unlink(os.path.join(BIN, "host-deny.sh"))
    stock(fs, "host-deny.sh", text="the administrator's own\n")
    stocknames.restore(BIN)
    assert state() == {"host-deny.sh": "the administrator's own\n",
                       "host-deny.sh.stock": "stock\n"}


def test_a_left_over_temporary_link_does_not_stop_link(fs):
    fs.create_dir(BIN)
    os.symlink("nowhere", os.path.join(BIN, ".firewall-drop.sh.ossec-ar-link"))
    stocknames.link(BIN)
    assert state() == OURS


def test_orphaned_forgets_the_kept_files_and_links_again(fs):
    stock(fs, *WAZUH)
    stocknames.link(BIN)
    for name in WAZUH:                                   # the agent's erase
        os.unlink(os.path.join(BIN, name))
    stocknames.orphaned(BIN)
    assert state() == OURS


def script(*args):
    path = os.path.join(ROOT, "lib", "ossec_ar", "stocknames.py")
    return subprocess.run([sys.executable, "-I", path] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


def test_names_and_programs_for_the_debian_scripts():
    """One line each, which debian/rules puts into the maintainer scripts."""
    names, programs = script("names"), script("programs")
    assert (names.returncode, names.stderr) == (programs.returncode, programs.stderr) == (0, "")
    assert names.stdout == " ".join(sorted(PROGRAM)) + "\n"
    assert programs.stdout == "ossec-ar-firewall-drop ossec-ar-host-deny ossec-ar-unblock\n"


@pytest.mark.parametrize("args", [["unlink", "/nonexistent"], ["names", "/nonexistent"],
                                  ["link"], []])
def test_usage_is_exit_64(args):
    result = script(*args)
    assert (result.returncode, result.stdout) == (64, "")
    assert result.stderr.startswith("usage: ")
