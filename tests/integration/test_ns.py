"""Entering a namespace and coming back, whatever happens in between."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.kernel import ns


def own_uts() -> str:
    return os.readlink("/proc/thread-self/ns/uts")


@pytest.fixture
def other_uts() -> Iterator[str]:
    """The UTS namespace of a process in a new one."""
    proc = subprocess.Popen(["unshare", "--uts", "sleep", "60"])
    try:
        path = f"/proc/{proc.pid}/ns/uts"
        deadline = time.monotonic() + 5
        while os.readlink(path) == own_uts():  # until unshare has run
            assert time.monotonic() < deadline, "unshare --uts did not run"
            time.sleep(0.001)
        yield path
    finally:
        proc.kill()
        proc.wait()


def test_enters_and_comes_back(other_uts: str) -> None:
    before = own_uts()
    with ns.entered(other_uts, ns.CLONE_NEWUTS):
        assert own_uts() == os.readlink(other_uts) != before
    assert own_uts() == before


def test_comes_back_when_interrupted_right_after_the_move(other_uts: str,
                                                           monkeypatch) -> None:
    """A Ctrl-C landing between the move and the body must not leave the thread there."""
    real = ns.setns
    moves: list[int] = []

    def setns_then_interrupted(fd: int, nstype: int) -> None:
        real(fd, nstype)
        moves.append(nstype)
        if len(moves) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ns, "setns", setns_then_interrupted)
    before = own_uts()
    with pytest.raises(KeyboardInterrupt), ns.entered(other_uts, ns.CLONE_NEWUTS):
        pytest.fail("the body must not run")
    assert own_uts() == before


def test_a_missing_namespace_is_an_error_and_nothing_moves() -> None:
    before = own_uts()
    with pytest.raises(FileNotFoundError), ns.entered("/proc/0/ns/uts", ns.CLONE_NEWUTS):
        pass
    assert own_uts() == before


def test_a_procfs_of_our_own_writes_the_sysctls_of_the_namespace_we_are_in() -> None:
    """ns.procfs: an instance mounted nowhere (the mount table does not change), whose
    /sys/net follows the thread's network namespace like /proc's."""
    mountinfo, forward = Path("/proc/self/mountinfo"), Path("/proc/sys/net/ipv4/ip_forward")
    mounts, before = mountinfo.read_text(), forward.read_text()
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        path = f"/proc/{proc.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.readlink(path) == os.readlink("/proc/thread-self/ns/net"):
            assert time.monotonic() < deadline, "unshare --net did not run"
            time.sleep(0.001)
        with ns.own_procfs() as fd:
            assert fd is not None  # kernels since 5.2
            assert mountinfo.read_text() == mounts  # mounted nowhere
            with ns.entered(path):
                ns.write_sysctl("net.ipv4.ip_forward", "0" if before.strip() == "1" else "1",
                                fd)
                inside = forward.read_text()
    finally:
        proc.kill()
        proc.wait()
    assert inside != before  # written in the namespace the thread was in ...
    assert forward.read_text() == before  # ... and not in the machine's
