"""host-deny's read-modify-write on a pyfakefs /etc, in-process: every
preserved-bytes case in both styles, and file-system faults."""

import os

import pytest

import tcpd
from ossec_ar import exits, hostdeny
from ossec_ar.request import Request

PREFIX = "/var/ossec"

CASES = {
    "comments and blanks": b"# header\n\n#\n  \nsshd: 10.0.0.1\n\n# trailer\n",
    "missing final newline": b"sshd: 10.0.0.1\n# last",
    "crlf": b"# header\r\nsshd: 10.0.0.1\r\n",
    "near misses": b"ALL:1x2y3z4\nALL:11.2.3.4\nsshd: 192.0.2.7\n# ALL:192.0.2.7\n"
                   b"ALL:192.0.2.70\nALL : 192.0.2.7\n",
    "not utf-8": b"# \xff\xfe caf\xc3\xa9\nsshd: ALL\n",
    "empty": b"",
}


@pytest.fixture
def system(fs):
    fs.create_dir(PREFIX)

    def set_system(name, more=""):
        # The configuration file is the seam for the system's name.
        os.makedirs(PREFIX + "/etc", exist_ok=True)
        with open(PREFIX + "/etc/ossec-ar.conf", "w") as conf:
            # protect = none: these tests are about the files' bytes; the
            # protections have their own (test_protect*.py), and a fake
            # FreeBSD here has no ifconfig for them.
            conf.write("[system]\nname = %s\n[allowlist]\nprotect = none\n%s" % (name, more))
    set_system("Linux")
    return set_system


def respond(action, address="192.0.2.7"):
    return hostdeny.respond(PREFIX, Request(action, "-", address))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def judged(fs, path, clients):
    """tcpdmatch's verdicts (sshd) and tcpdchk's rules over the fake file
    at *path*, copied out to the real file system for tcp_wrappers."""
    data = read(path)
    fs.pause()
    try:
        return tcpd.judge({os.path.basename(path): data}, clients)
    finally:
        fs.resume()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("system_name,path", [("Linux", "/etc/hosts.deny"),
                                              ("FreeBSD", "/etc/hosts.allow")])
def test_add_then_delete_restores_every_byte(fs, system, name, system_name, path):
    system(system_name)
    data = CASES[name]
    fs.create_file(path, contents=data)
    os.chmod(path, 0o640)
    clients = ["192.0.2.7", "192.0.2.8"]
    before, rules = judged(fs, path, clients)
    assert respond("add") == ("blocked", "192.0.2.7", path)
    added = read(path)
    ours = b"ALL:192.0.2.7" if system_name == "Linux" else b"ALL : 192.0.2.7 : deny"
    assert added.splitlines().count(ours) == 1
    # tcpd reads it as a rule of its own, which denies that address alone
    # (a last line without a newline makes tcpd deny whoever reaches it).
    verdicts, rules_added = judged(fs, path, clients)
    assert verdicts == {"192.0.2.7": "denied", "192.0.2.8": before["192.0.2.8"]}
    ours_read = ("ALL", "192.0.2.7", "denied")
    assert [rule[1:] for rule in rules_added].count(ours_read) == \
        [rule[1:] for rule in rules].count(ours_read) + 1
    assert [rule for rule in rules_added if rule[1:] != ours_read] == \
        [rule for rule in rules if rule[1:] != ours_read]
    assert respond("add") == ("already blocked", "192.0.2.7", path)
    assert read(path) == added
    assert respond("delete") == ("unblocked", "192.0.2.7", path)
    assert read(path) == data
    assert judged(fs, path, clients) == (before, rules)
    assert respond("delete") == ("was not blocked", "192.0.2.7",
                                 "no block of ours in the ledger")
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert sorted(os.listdir("/etc")) == [os.path.basename(path)]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("system_name,path", [("Linux", "/etc/hosts.deny"),
                                              ("FreeBSD", "/etc/hosts.allow")])
def test_a_prefix_is_added_once_and_its_last_delete_restores_every_byte(
        fs, system, name, system_name, path):
    system(system_name, "[host-deny]\nipv6_prefix = 64\n")
    data = CASES[name]
    fs.create_file(path, contents=data)
    clients = ["2001:db8:1:2::99", "2001:db8:1:3::1"]
    before = judged(fs, path, clients)
    assert respond("add", "2001:db8:1:2::7") == (
        "blocked", "2001:db8:1:2::7", "2001:db8:1:2::/64 in " + path)
    added = read(path)
    ours = b"ALL:[2001:db8:1:2::]/64" if system_name == "Linux" else \
        b"ALL : [2001:db8:1:2::]/64 : deny"
    assert added.splitlines().count(ours) == 1
    assert judged(fs, path, clients)[0] == {"2001:db8:1:2::99": "denied",
                                           "2001:db8:1:3::1": before[0]["2001:db8:1:3::1"]}
    assert respond("add", "2001:db8:1:2::8") == (
        "already blocked", "2001:db8:1:2::8", "by 2001:db8:1:2::/64 in " + path)
    assert respond("delete", "2001:db8:1:2::7")[0] == "unblocked"
    assert read(path) == added
    assert respond("delete", "2001:db8:1:2::8") == (
        "unblocked", "2001:db8:1:2::8", "2001:db8:1:2::/64 from " + path)
    assert read(path) == data
    assert judged(fs, path, clients) == before


def test_an_address_and_its_prefix_are_lifted_in_one_write(fs, system, monkeypatch):
    """Blocked alone under ipv6_prefix = 128, then as its /64 under 64: its
    delete takes both lines, in one replacement of the file."""
    from ossec_ar import atomicfile
    fs.create_file("/etc/hosts.deny", contents=b"# admin\n")
    assert respond("add", "2001:db8:1:2::7")[0] == "blocked"
    system("Linux", "[host-deny]\nipv6_prefix = 64\n")
    assert respond("add", "2001:db8:1:2::7")[0] == "blocked"
    assert read("/etc/hosts.deny") == b"# admin\nALL:[2001:db8:1:2::7]\nALL:[2001:db8:1:2::]/64\n"
    writes = []
    replace = atomicfile.replace
    monkeypatch.setattr(atomicfile, "replace",
                        lambda path, data: (writes.append(data), replace(path, data)))
    assert respond("delete", "2001:db8:1:2::7") == (
        "unblocked", "2001:db8:1:2::7",
        "2001:db8:1:2::/64 from /etc/hosts.deny; /etc/hosts.deny")       # latest first
    assert writes == [b"# admin\n"]
    assert read("/etc/hosts.deny") == b"# admin\n"


def test_freebsd_reads_only_hosts_allow(fs, system):
    system("FreeBSD")
    fs.create_file("/etc/hosts.deny", contents=b"ALL:192.0.2.7\n")
    fs.create_file("/etc/hosts.allow", contents=b"ALL : ALL : allow\n")
    assert respond("add")[0] == "blocked"
    assert read("/etc/hosts.allow") == b"ALL : 192.0.2.7 : deny\nALL : ALL : allow\n"
    assert read("/etc/hosts.deny") == b"ALL:192.0.2.7\n"
    assert judged(fs, "/etc/hosts.allow", ["192.0.2.7", "192.0.2.8"])[0] == {
        "192.0.2.7": "denied", "192.0.2.8": "granted"}


def test_disk_full_keeps_the_file_and_says_so(fs, system):
    data = b"# admin\n" * 100
    fs.create_file("/etc/hosts.deny", contents=data)
    fs.set_disk_usage(len(data) + 400)     # room for the lock file, not a copy
    with pytest.raises(exits.Stop) as info:
        respond("add")
    assert info.value.code == 74
    assert "No space left on device" in info.value.reason
    assert read("/etc/hosts.deny") == data
    assert os.listdir("/etc") == ["hosts.deny"]


def test_permission_denied_keeps_the_file_and_says_so(fs, system, monkeypatch):
    from pyfakefs.helpers import get_uid, set_uid
    from ossec_ar import lock
    fs.create_file("/etc/hosts.deny", contents=b"# admin\n")
    os.chmod("/etc", 0o555)
    monkeypatch.setattr(os, "geteuid", lambda: 0)   # root, but /etc is not writable
    # The lock must still be takeable by the fake uid: a root-owned state
    # directory it may enter, and a lock file it may open.
    path = lock.lock_file(PREFIX, "host-deny")
    os.chmod(os.path.dirname(path), 0o755)
    fs.create_file(path)
    os.chmod(path, 0o666)
    uid = get_uid()
    set_uid(1000)
    try:
        with pytest.raises(exits.Stop) as info:
            respond("add")
    finally:
        set_uid(uid)
    assert info.value.code == 74
    assert "permission denied" in info.value.reason.lower()
    assert read("/etc/hosts.deny") == b"# admin\n"
