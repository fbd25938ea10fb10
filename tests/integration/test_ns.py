"""Entering a namespace and coming back, whatever happens in between."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

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
