import ipaddress
import os

import pytest

from ossec_ar import config, exits

PATH = "/var/ossec/etc/ossec-ar.conf"


def write(fs, text, mode=0o640):
    fs.create_file(PATH, contents=text)
    os.chmod(PATH, mode)


def test_no_file_means_defaults(fs):
    settings = config.load(PATH)
    assert (settings.backend, settings.chain, settings.lock_wait, settings.allowlist) == (
        "auto", "OSSEC", 60.0, ())


def test_every_key(fs):
    write(fs, "# comment\n; another\n\n[firewall-drop]\nbackend = iptables\n"
              "chain = OSSEC_BANS\nlock_wait = 2.5\n[allowlist]\n"
              "addresses = 192.0.2.0/24, 2001:db8::1\n    198.51.100.7\n")
    settings = config.load(PATH)
    assert settings.backend == "iptables"
    assert settings.chain == "OSSEC_BANS"
    assert settings.lock_wait == 2.5
    assert settings.allowlist == (
        ("192.0.2.0/24", ipaddress.ip_network("192.0.2.0/24")),
        ("2001:db8::1", ipaddress.ip_network("2001:db8::1/128")),
        ("198.51.100.7", ipaddress.ip_network("198.51.100.7/32")))


@pytest.mark.parametrize("text,problem", [
    ("[firewall-drop]\nbackend = pfsense\n", "line 2: backend: unknown backend 'pfsense'"),
    ("[firewall-drop]\nbakend = iptables\n", "line 2: unknown key 'bakend' in section"
                                             " [firewall-drop]"),
    ("[firewal-drop]\n", "line 1: unknown section [firewal-drop]"),
    ("[firewall-drop\n", "line 1: bad section header"),
    ("backend = iptables\n", "line 1: key outside any [section]"),
    ("[firewall-drop]\nbackend iptables\n", "line 2: expected 'key = value'"),
    ("[firewall-drop]\nlock_wait = soon\n", "line 2: lock_wait: 'soon' is not a number"),
    ("[firewall-drop]\nlock_wait = 0\n", "line 2: lock_wait: '0' is not a number"),
    ("[firewall-drop]\nchain = INPUT\n", "line 2: chain: 'INPUT' is not a usable chain"),
    ("[firewall-drop]\nchain = -j ACCEPT\n", "line 2: chain: '-j ACCEPT' is not a usable"),
    ("[firewall-drop]\nchain = " + "C" * 29 + "\n", "is not a usable chain"),
    ("[firewall-drop]\nchain = A\n[allowlist]\n[firewall-drop]\nchain = B\n",
     "line 5: 'chain' set again in [firewall-drop] (first on line 2)"),
    ("\n\n[allowlist]\naddresses = 192.0.2.1,\n  my-laptop\n",
     "line 4: addresses: 'my-laptop' is not an IP address or network"),
    ("[firewall-drop]\nipfw_rule = 0\n", "line 2: ipfw_rule: '0' is not an ipfw rule number"),
    ("[firewall-drop]\nipfw_rule = 65535\n", "'65535' is not an ipfw rule number"),
    ("[firewall-drop]\npf_table = <ossec>\n", "pf_table: '<ossec>' is not a usable name"),
    ("[firewall-drop]\nnpf_table = a b\n", "npf_table: 'a b' is not a usable name"),
    ("[system]\nname = Free BSD\n", "name: 'Free BSD' is not a system name"),
    ("[system]\ntool_dirs = /nowhere\n", "tool_dirs: /nowhere: No such file or directory"),
    ("[system]\ntool_dirs = usr/sbin\n", "tool_dirs: 'usr/sbin' is not an absolute path"),
    ("[system]\ntool_dirs = /var/ossec/etc/ossec-ar.conf\n",
     "/var/ossec/etc/ossec-ar.conf is not a directory"),
    ("[system]\ntool_dirs =\n", "tool_dirs: no directory given"),
])
def test_broken_file_names_file_line_and_problem(fs, text, problem):
    write(fs, text)
    with pytest.raises(exits.Stop) as info:
        config.load(PATH)
    assert info.value.code == exits.CONFIG == 78
    assert info.value.reason.startswith("configuration " + PATH)
    assert problem in info.value.reason


def test_world_writable_file_is_refused(fs):
    write(fs, "[firewall-drop]\n", mode=0o666)
    with pytest.raises(exits.Stop) as info:
        config.load(PATH)
    assert info.value.code == 78
    assert "writable by any user" in info.value.reason


def test_a_prefix_owned_by_another_uid_is_refused_before_its_file_is_read(fs):
    # The file and etc/ are root's, but whoever owns the prefix could
    # rename etc/ and put their own in its place.
    write(fs, "[allowlist]\naddresses = 0.0.0.0/0 ::/0\n")
    os.chown("/var/ossec", 61234, 61234)
    with pytest.raises(exits.Stop) as info:
        config.load(PATH)
    assert info.value.code == 78
    assert info.value.reason == (
        "configuration %s: not trusted: /var/ossec is owned by uid 61234, not root; only a "
        "file that root alone can change is used (see README, Configuration)" % PATH)


def test_non_utf8_file_is_refused(fs):
    fs.create_file(PATH, contents=b"[firewall-drop]\nchain = \xff\n")
    with pytest.raises(exits.Stop) as info:
        config.load(PATH)
    assert "not UTF-8" in info.value.reason


@pytest.mark.parametrize("path,directory,mode,who", [
    (PATH, "/var/ossec/etc", 0o775, "its group"),
    (PATH, "/var/ossec/etc", 0o757, "any user"),
    (PATH, "/var/ossec", 0o770, "its group"),
    (config.SYSTEM_FILE, "/etc", 0o775, "its group"),
], ids=["prefix etc 0775", "prefix etc 0757", "prefix 0770", "/etc 0775"])
def test_a_file_in_a_root_directory_others_can_write_is_refused(fs, path, directory, mode,
                                                                 who):
    """The directory is root's, but others can write it (and it is not
    sticky): they could put a file of their own in the place of root's."""
    fs.create_file(path, contents="[firewall-drop]\nbackend = iptables\n")
    os.chmod(path, 0o640)
    assert config.load(path).backend == "iptables"            # as it is: trusted
    os.chmod(directory, mode)
    with pytest.raises(exits.Stop) as info:
        config.load(path)
    assert info.value.code == 78
    assert info.value.reason == (
        "configuration %s: not trusted: %s is writable by %s (mode %04o); only a file that "
        "root alone can change is used (see README, Configuration)" % (path, directory, who,
                                                                       mode))
