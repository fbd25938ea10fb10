"""A node stopped and started again (issue 13's "node stopped" fault), as far as an
emulation without kubelet can take it.

Stopping a node freezes everything that runs on it, as a powered-off machine does: every
process in the node's network namespace and its pods' (its shell, the pod network's
daemons, kube-proxy, the pods' pause processes and containers, whatever was exec'd
there) gets SIGSTOP, and its uplink goes down. Starting it sends SIGCONT to exactly those
processes (each identified by pid and start time) and brings the uplink up. What a real
restart brings on top, kubelet recreating the pods with new namespaces and addresses, is
not emulated: the pods come back as they were, like a machine resumed from suspend.
Teardown starts a stopped node first (a stopped process leaves a SIGTERM pending).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from testbed.cluster.context import ClusterContext
from testbed.cluster.outside import set_uplink
from testbed.errors import TestbedError
from testbed.kernel import ns, procs


def stop(cluster: ClusterContext, node: str) -> int:
    """Freeze the node's processes and take it off the underlay; the processes frozen."""
    cluster.node_plan(node)
    if node in cluster.stopped_nodes:
        raise TestbedError(f"{node} is stopped already")
    inodes = {ns.netns_inode(ns.netns_of(cluster.host(node).pid))}
    inodes |= {ns.netns_inode(p.netns_path) for p in cluster.pods.values() if p.node == node}
    frozen: list[tuple[int, int | None]] = []
    cluster.stopped_nodes[node] = frozen  # before the first signal: teardown resumes them
    for pid in procs.in_netns(inodes):
        started = procs.start_time(pid)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        frozen.append((pid, started))
    _wait_stopped(frozen)
    set_uplink(cluster, node, False)
    return len(frozen)


def _wait_stopped(frozen: list[tuple[int, int | None]], timeout_s: float = 2.0) -> None:
    """Until every process signalled has stopped (state T) or gone: SIGSTOP takes
    effect when the process is next scheduled, not when kill() returns."""
    deadline = time.monotonic() + timeout_s
    waiting = [pid for pid, started in frozen if procs.is_alive(pid, started)]
    while waiting:
        waiting = [pid for pid in waiting if procs.state(pid) not in (None, "T", "t", "Z")]
        if waiting and time.monotonic() > deadline:
            raise TestbedError(f"{len(waiting)} process(es) did not stop within "
                               f"{timeout_s:g} s (e.g. pid {waiting[0]})")
        if waiting:
            time.sleep(0.001)


def start(cluster: ClusterContext, node: str) -> None:
    """Resume exactly the processes `stop` froze, then put the node back on the underlay."""
    frozen = cluster.stopped_nodes.pop(node, None)
    if frozen is None:
        raise TestbedError(f"{node} is not stopped")
    _resume(frozen)
    set_uplink(cluster, node, True)


def resume_all(cluster: ClusterContext) -> None:
    """Every stopped node's processes resumed (teardown: their SIGTERM must be heard).
    The uplinks stay as they are: they go with the network."""
    for node in list(cluster.stopped_nodes):
        _resume(cluster.stopped_nodes.pop(node))


def _resume(frozen: list[tuple[int, int | None]]) -> None:
    """SIGCONT to each process `stop` froze that is still the same process."""
    for pid, started in frozen:
        if procs.is_alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
