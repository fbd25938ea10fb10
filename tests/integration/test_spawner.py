"""Pause processes through the spawner's helper (testbed.pods.spawner): the namespaces
`setpriv ... unshare ... catatonit -P` gave, Popen's manners, and their end: reaped by
the helper, all of them when it closes."""

from __future__ import annotations

import os
import time

from testbed.kernel import procs
from testbed.pods.pause import wait_pause
from testbed.pods.spawner import Spawner


def ns_of(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def cmdline(pid: int) -> list[bytes]:
    """The process's arguments, once exec has put them in place: the kernel points
    /proc/PID/exe at the new program a moment before it sets up the new arguments, so
    a read right after wait_pause can find them empty."""
    deadline = time.monotonic() + 2
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        if args != [b""] or time.monotonic() > deadline:
            return args
        time.sleep(0.001)


def test_pause_processes_in_their_own_namespaces_and_gone_with_the_helper() -> None:
    spawner = Spawner()
    try:
        plain = spawner.spawn()
        mounts = spawner.spawn(own_mounts=True)
        for proc, host in ((plain, "p-plain"), (mounts, "p-mounts")):
            wait_pause(proc, host)
            assert cmdline(proc.pid)[:2] == [b"catatonit", b"-P"]
            for kind in ("net", "uts", "ipc"):
                assert ns_of(proc.pid, kind) != ns_of(os.getpid(), kind)
            assert os.getsid(proc.pid) == proc.pid  # a session of its own, as before
        assert ns_of(plain.pid, "mnt") == ns_of(os.getpid(), "mnt")
        assert ns_of(mounts.pid, "mnt") != ns_of(os.getpid(), "mnt")
        assert plain.poll() is None
        plain.terminate()
        plain.wait(timeout=2)
        assert plain.poll() is not None and not procs.is_alive(plain.pid, plain.started)
        plain.terminate()  # gone: nothing is signalled, nothing raised
        # the helper reaps a child that ended while it waits for work (within a second):
        # no zombie stays behind a pod that went
        deadline = time.monotonic() + 3
        while os.path.exists(f"/proc/{plain.pid}"):
            assert time.monotonic() < deadline, "an ended pause process stayed a zombie"
            time.sleep(0.02)
        helper = spawner.pid
        assert helper is not None and procs.is_alive(helper)
        assert procs.is_alive(mounts.pid, mounts.started)
    finally:
        spawner.close()
    # closing it ended the helper, which killed and reaped its last pause process before
    # it exited: gone entirely when close() returns, not a zombie left for pid 1 (which
    # on some VMs never reaps)
    assert not os.path.exists(f"/proc/{mounts.pid}")
    assert not procs.is_alive(helper)
