"""The protections' readers of resolv.conf, /etc/hosts and the agent's
ossec.conf, on their own (no root, no namespace): what they take, what
they refuse, and that the fast address reader agrees with ``ipaddress``."""

import ipaddress
import os
import random
import socket

import pytest

from ossec_ar import protect
from test_address import edge_cases, random_cases


def reference(text):
    """The bytes ``ipaddress`` reads in *text* (IPv4-mapped as IPv4), or None."""
    try:
        value = ipaddress.ip_address(text)
    except ValueError:
        return None
    if value.version == 6 and value.ipv4_mapped is not None:
        value = value.ipv4_mapped
    return value.packed


def test_the_address_reader_agrees_with_ipaddress_on_tens_of_thousands_of_inputs():
    rng = random.Random(20261205)
    cases = edge_cases() + list(random_cases(rng, 24000))
    differences = []
    for text in cases:
        expected, got = reference(text), protect._packed(text.encode("utf-8", "surrogateescape"))
        if expected is not None and got != expected:
            differences.append((text, got, expected))
        if expected is None and got is not None and (":" in text or text.count(".") == 3
                                                     and not _c_library_form(text)):
            differences.append((text, got, expected))
    assert differences == []
    assert sum(reference(text) is not None for text in cases) > 5000


def _c_library_form(text):
    """inet_aton(3) also reads what ipaddress refuses: parts with leading
    zeros (octal) or 0x (hex), as the resolver does for nameserver lines."""
    return any(len(part) > 1 and part[0] == "0" for part in text.split("."))


def test_the_c_librarys_forms_are_read_as_the_resolver_reads_them():
    assert protect._packed(b"010.0.0.1") == bytes((8, 0, 0, 1))      # octal, as glibc
    assert protect._packed(b"10.1") == bytes((10, 0, 0, 1))
    assert protect._packed(b"::ffff:10.99.0.53") == bytes((10, 99, 0, 53))
    for garbage in (b"", b"resolver.example", b"999.1.2.3", b"\xff\xfe", b"1.2.3.4/24",
                    b"fe80::1%", b"[::1]", b"1.2.3.4 ", b"::g"):
        assert protect._packed(garbage) is None, garbage


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setattr(protect, "RESOLV_CONF", str(tmp_path / "resolv.conf"))
    monkeypatch.setattr(protect, "HOSTS", str(tmp_path / "hosts"))
    (tmp_path / "prefix" / "etc").mkdir(parents=True)
    return tmp_path


def write(path, data):
    with open(str(path), "wb") as f:
        f.write(data)


def test_resolvers_read_as_the_c_library_does(files):
    write(files / "resolv.conf", b"# comment\n; nameserver 192.0.2.1\nsearch x\n"
          b"nameserver 192.0.2.53\n  nameserver\t2001:db8::53%eth0  \n"
          b"nameserver name.example\nnameserver\nnameserver 1.2.3\nnameserver ::ffff:192.0.2.54\n"
          b"nameserver 300.1.1.1\noptions ndots:2\n")
    assert protect.resolvers() == {bytes((192, 0, 2, 53)), bytes((1, 2, 0, 3)),
                                   socket.inet_pton(socket.AF_INET6, "2001:db8::53"),
                                   bytes((192, 0, 2, 54))}


def test_resolvers_missing_fifo_directory_and_huge(files):
    assert protect.resolvers() == set()                     # missing: nothing, no error
    os.mkfifo(str(files / "resolv.conf"))
    with pytest.raises(protect.Unavailable, match="is not a regular file"):
        protect.resolvers()
    os.unlink(str(files / "resolv.conf"))
    os.mkdir(str(files / "resolv.conf"))
    with pytest.raises(protect.Unavailable):
        protect.resolvers()
    os.rmdir(str(files / "resolv.conf"))
    write(files / "resolv.conf", b"nameserver 192.0.2.53\n" + b"x" * (10 << 20)
          + b"\nnameserver 192.0.2.54\n")
    assert protect.resolvers() == {bytes((192, 0, 2, 53))}     # the first 64 KiB only


def manager(files, text):
    write(files / "prefix" / "etc" / "ossec.conf", text.encode())
    found = protect.Manager(str(files / "prefix"))
    found.read()
    return found


def test_manager_from_ossec_and_wazuh_configurations(files):
    write(files / "hosts", b"127.0.0.1 localhost\n192.0.2.41 mgr.example mgr # x\n"
          b"2001:db8::41 MGR.example\n# 192.0.2.49 commented.example\n")
    found = manager(files, """<ossec_config>
  <client>
    <server-ip> 192.0.2.40 </server-ip>
    <server-hostname>mgr.example</server-hostname>
    <server-hostname>commented.example</server-hostname>
    <port>1600</port>
  </client>
  <!-- <client><server-ip>192.0.2.99</server-ip></client> -->
  <client-buffer><server-ip>192.0.2.98</server-ip></client-buffer>
  <client>
    <server><address>2001:db8::40</address><port>1514</port><protocol>tcp</protocol></server>
    <server><address>wazuh.unknown</address></server>
  </client>
  <syscheck><server-ip>192.0.2.97</server-ip></syscheck>
</ossec_config>
""")
    assert sorted(found.addresses) == sorted([
        bytes((192, 0, 2, 40)), bytes((192, 0, 2, 41)),
        socket.inet_pton(socket.AF_INET6, "2001:db8::41"),
        socket.inet_pton(socket.AF_INET6, "2001:db8::40")])
    assert found.addresses[bytes((192, 0, 2, 41))].startswith("<server-hostname> mgr.example")
    assert found.unresolved == ["commented.example", "wazuh.unknown"]
    assert found.ports == {1600, 1514} and found.protocols == {"tcp"}


@pytest.mark.parametrize("text", ["", "\x00\x01\x02", "<client>", "<client><server-ip>",
                                  "<<<<>>>></client><client>", "<!-- <client>",
                                  "<client><server-ip>1.2.3.4</server-ip>"])
def test_manager_from_garbage_is_nothing_and_no_error(files, text):
    found = manager(files, text)
    assert found.addresses == {} and found.unresolved == []
    assert found.ports == {1514}


def test_manager_file_limits(files):
    path = files / "prefix" / "etc" / "ossec.conf"
    write(path, b"<client><server-ip>192.0.2.40</server-ip></client>" + b" " * (1 << 20))
    with pytest.raises(protect.Unavailable, match="larger than 1048576 bytes"):
        protect.Manager(str(files / "prefix")).read()
    os.unlink(str(path))
    os.symlink(str(files / "resolv.conf"), str(path))
    with pytest.raises(protect.Unavailable, match="ossec.conf: "):
        protect.Manager(str(files / "prefix")).read()
    os.unlink(str(path))
    found = protect.Manager(str(files / "prefix"))
    found.read()                                            # missing: not an agent
    assert found.addresses == {} and found.unresolved == []


def test_an_unexpected_error_in_a_protection_is_a_note_not_a_failure(monkeypatch, files):
    from ossec_ar import address, config
    from ossec_ar.system import System

    def broken(host, address, prefix):
        raise ValueError("unexpected")

    monkeypatch.setitem(protect._CHECKS, "self", broken)
    finding = protect.check(address.parse("192.0.2.7"), ("self", "resolvers"),
                            str(files / "prefix"), System(config.Settings()))
    assert finding.reason is None
    assert finding.note() == "protection 'self' unavailable: ValueError: unexpected"


def test_a_manager_name_in_the_agents_own_hosts_file_chroot(files):
    """OSSEC's agentd resolves in its chroot: <prefix>/etc/hosts counts too,
    and is never followed through a link."""
    write(files / "prefix" / "etc" / "hosts", b"192.0.2.42 chrooted.example\n")
    found = manager(files, "<client><server-hostname>chrooted.example</server-hostname>"
                           "</client>")
    assert found.addresses == {bytes((192, 0, 2, 42)): "<server-hostname> chrooted.example, "
                               "in %s" % (files / "prefix" / "etc" / "hosts")}
    os.unlink(str(files / "prefix" / "etc" / "hosts"))
    write(files / "elsewhere", b"192.0.2.43 chrooted.example\n")
    os.symlink(str(files / "elsewhere"), str(files / "prefix" / "etc" / "hosts"))
    found = manager(files, "<client><server-hostname>chrooted.example</server-hostname>"
                           "</client>")
    assert found.addresses == {} and found.unresolved == ["chrooted.example"]
