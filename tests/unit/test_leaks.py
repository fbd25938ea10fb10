"""The leak checks' names (tests.support.leaks): what the testbed, Mininet, ipmininet and
FRR name is matched; what other programs leave in /tmp is not. Pure, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.model.names import LINK_GROUP
from tests.support import leaks


@pytest.mark.parametrize("name", ["ktb-ul1", "ktb-ul1-eth3", "ktb-ext2r", "router-eth0",
                                  "node-1-eth0", "ktb-node-1-pod-1"])
def test_the_testbeds_interfaces(name: str) -> None:
    assert leaks.testbed_link(name, 0, LINK_GROUP)


@pytest.mark.parametrize("name", ["lo", "eth0", "docker0", "veth1a2b3c", "wlp2s0", "br-1f2e",
                                  "ktbx", "eth1"])
def test_other_interfaces(name: str) -> None:
    assert not leaks.testbed_link(name, 0, LINK_GROUP)
    assert leaks.testbed_link(name, LINK_GROUP, LINK_GROUP)  # in our group: looked at


@pytest.mark.parametrize(("name", "ours"), [
    ("bgpd.1103", True), ("zebra.42", True), ("staticd.9", True), ("ospfd-2.77", True),
    ("bgpd", False), ("bgpd.x", False), ("nginx.12", False), ("bgpd.12.old", False),
    ("../bgpd.1", False),
])
def test_frr_crash_logs(name: str, ours: bool) -> None:
    assert leaks.frr_crashlog(name) is ours


@pytest.mark.parametrize(("name", "ours"), [
    ("zebra_router.cfg", True), ("staticd_router.pid", True), ("quagga_router.api", True),
    ("resolv_router.conf", True), ("hosts_router", True), ("bgpd_r1.log", True),
    ("vconn-s1.sock", True), ("vlogs", True),
    ("tmpab12cd_3", False), ("pytest-of-root", False), ("systemd-private-abc", False),
    ("bash_jobs.0", False), ("setup.log", False), ("zebra", False), (".X11-unix", False),
    ("hosts", False), ("notes_router.txt", False),
])
def test_ipmininet_and_mininet_files(name: str, ours: bool) -> None:
    assert leaks.ipmininet_or_mininet_file(name) is ours


def test_the_key_pair_only_as_a_pair_of_an_ssh_key(tmp_path: Path) -> None:
    (tmp_path / "tmpabcd1234").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "tmpabcd1234.pub").write_text("ssh-rsa AAAA root@host\n")
    (tmp_path / "tmpzzzz0000").write_text("a lone mktemp name: anybody's\n")
    (tmp_path / "tmpyyyy1111").write_text("x")
    (tmp_path / "tmpyyyy1111.pub").write_text("not a key")
    (tmp_path / "tmpxxxx2222.pub").write_text("ssh-rsa AAAA without its private half\n")
    assert leaks.ssh_key_pairs(tmp_path) == {str(tmp_path / "tmpabcd1234"),
                                              str(tmp_path / "tmpabcd1234.pub")}
    assert leaks.ssh_key_pairs(tmp_path / "missing") == set()


def test_the_session_mark_is_one_whole_entry() -> None:
    mark = b"KTESTBED_TEST_SESSION=12-ab"
    assert leaks.carries_mark(b"PATH=/bin\0KTESTBED_TEST_SESSION=12-ab\0HOME=/", mark)
    assert not leaks.carries_mark(b"KTESTBED_TEST_SESSION=12-abc\0", mark)
    assert not leaks.carries_mark(b"X=KTESTBED_TEST_SESSION=12-ab\0", mark)
    assert not leaks.carries_mark(b"", mark)
