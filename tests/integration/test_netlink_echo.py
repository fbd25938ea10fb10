"""A veth pair's creation echoed by the kernel: the indexes the fast path uses instead of
looking each pod's eth0 up (testbed.kernel.netlink.RtnlSocket.create_links)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Iterator

import pytest

from testbed.kernel import netlink as nl
from testbed.pods.fastwire import socket_in


@pytest.fixture
def two_netns() -> Iterator[tuple[str, str]]:
    """Two network namespaces, each held by a process of its own (nothing named)."""
    procs = [subprocess.Popen(["unshare", "--net", "sleep", "60"]) for _ in range(2)]
    try:
        own = os.readlink("/proc/self/ns/net")
        paths = [f"/proc/{p.pid}/ns/net" for p in procs]
        deadline = time.monotonic() + 5
        while any(os.readlink(path) == own for path in paths):
            assert time.monotonic() < deadline, "unshare --net did not run"
            time.sleep(0.001)
        yield paths[0], paths[1]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def kernel_at_least(major: int, minor: int) -> bool:
    found = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])
    return found >= (major, minor)


def test_the_echo_gives_both_ends_indexes(two_netns: tuple[str, str]) -> None:
    node_path, pod_path = two_netns
    fd = os.open(pod_path, os.O_RDONLY)
    try:
        with socket_in(node_path) as node:
            links = node.create_links(
                [nl.veth_pair(f"vethecho{i}", "eth0" if i == 0 else f"eth{i}", fd, echo=True)
                 for i in range(3)])
            assert len(links) == 3
            if not kernel_at_least(6, 3):  # NLM_F_ECHO on link creation came in 6.3
                assert links == [None, None, None]
                return
            with socket_in(pod_path) as pod:
                for i, link in enumerate(links):
                    assert link is not None
                    assert link[0] == node.link_index(f"vethecho{i}")
                    assert link[1] == pod.link_index("eth0" if i == 0 else f"eth{i}")
            assert len({link[0] for link in links}) == 3
            node.request([nl.link_up(0, "vethecho0")])  # the socket is still in step
    finally:
        os.close(fd)
