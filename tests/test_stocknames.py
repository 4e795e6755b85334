"""stocknames.py, which the Makefile and the RPM's scriptlets run: links in
place of the stock names, the stock files kept beside them and put back."""

import os
import subprocess
import sys

from conftest import ROOT
from ossec_ar import stocknames

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


OURS = {"firewall-drop": "-> ossec-ar-firewall-drop", "firewall-drop.sh": "-> ossec-ar-firewall-drop",
        "host-deny": "-> ossec-ar-host-deny", "host-deny.sh": "-> ossec-ar-host-deny"}


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
    assert state() == dict(OURS, **{"firewall-drop.sh.stock": "#!/bin/sh\n# stock\n",
                                    "host-deny.sh.stock": "#!/bin/sh\n# stock\n",
                                    "restart-ossec.sh": "#!/bin/sh\n# stock\n"})
    stocknames.restore(BIN)
    assert state() == {"firewall-drop.sh": "#!/bin/sh\n# stock\n",
                       "host-deny.sh": "#!/bin/sh\n# stock\n",
                       "restart-ossec.sh": "#!/bin/sh\n# stock\n"}


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
    stock(fs, "firewall-drop.sh", "firewall-drop")
    stocknames.link(BIN)
    for name in ("firewall-drop.sh", "firewall-drop"):   # the agent's erase
        os.unlink(os.path.join(BIN, name))
    stocknames.orphaned(BIN)
    assert state() == OURS


def test_usage_is_exit_64():
    script = os.path.join(ROOT, "lib", "ossec_ar", "stocknames.py")
    result = subprocess.run([sys.executable, "-I", script, "unlink", "/nonexistent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 64
    assert result.stderr.startswith(b"usage: ")
