"""A CPU share per node (cgroups, as Mininet's CPULimitedHost) and a node stopped and
started, on a real cluster: a busy node gets no more than its share, the other node's
processes are not held to it, a stopped node's processes are frozen and resumed, and
nothing is left behind."""

from __future__ import annotations

import os
import time

import pytest

from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.kernel import cgroups, procs
from testbed.model.load import load_spec, parse_spec

from .conftest import TOPOLOGIES, machine_snapshot

HOG = ["sh", "-c", "while :; do :; done"]
WINDOW_S = 2.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cores_used(pids: list[int]) -> float:
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(WINDOW_S)
    return (sum(cpu_seconds(p) for p in pids) - before) / WINDOW_S


def group_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    return next(line.split(":", 2)[2] for line in lines
                if ":cpu:" in line or ":cpu," in line or line.startswith("0::"))


@pytest.mark.skipif(bool(cgroups.problems()), reason="; ".join(cgroups.problems()))
def test_a_busy_node_gets_its_share_and_no_more() -> None:
    before = machine_snapshot()
    d = load_spec(TOPOLOGIES / "two-node.yaml").to_dict()
    d["cpu"] = 0.1  # every node: a tenth of the machine ...
    d["nodes"][1]["cpu"] = 1.0  # ... but node-2, given all of it
    cpus = os.cpu_count() or 1
    with Cluster(parse_spec(d)) as c:
        # everything of node-1 is in its group: shell, pause, container, exec'd commands
        pod = c.pods_by_node()["node-1"][0]
        assert group_of(c.host("node-1").shell.pid) == "/ktb-node-1"
        assert group_of(c.pod(pod).pause_pid) == "/ktb-node-1"
        assert c.pod(pod).exec(["cat", "/proc/self/cgroup"]).stdout.count("ktb-node-1") >= 1
        assert "ktb-node-1" in c.exec_node("node-1", ["cat", "/proc/self/cgroup"]).stdout
        assert "ktb-node-2" in c.exec_node("node-2", ["cat", "/proc/self/cgroup"]).stdout
        hogs_1 = [c.popen_node("node-1", HOG), c.pod(pod).popen(HOG)]
        hogs_2 = [c.popen_node("node-2", HOG)]
        try:
            limited = cores_used([p.pid for p in hogs_1])
            free = cores_used([p.pid for p in hogs_2])
            throttled = c.cpu_stat("node-1")
        finally:
            for p in hogs_1 + hogs_2:
                procs.stop_popen(p)
    share = 0.1 * cpus  # cores' worth
    print(f"node-1 (share {share:.2f} core): {limited:.3f} cores; node-2: {free:.3f}; "
          f"{throttled}")
    assert limited <= share * 1.3, (limited, share)  # two hogs held to a tenth together
    assert free >= 0.6, free  # node-2's one hog runs freely (a whole core, less noise)
    assert throttled.get("nr_throttled", 0) > 0, throttled
    assert machine_snapshot() == before


def test_a_stopped_node_is_frozen_then_resumed() -> None:
    before = machine_snapshot()
    with Cluster(load_spec(TOPOLOGIES / "two-node.yaml")) as c:
        by_node = c.pods_by_node()
        src, dst = by_node["node-1"][0], by_node["node-2"][0]
        ip = c.endpoint_ip(dst)
        assert c.pod(src).exec(["ping", "-c1", "-W1", ip]).ok
        frozen = c.stop_node("node-2")
        # its shell and both pods' pause processes at least, all stopped ('T')
        pauses = [c.pod(p).pause_pid for p in by_node["node-2"]]
        assert frozen >= 1 + len(pauses), frozen
        assert all(procs.state(p) == "T" for p in [c.host("node-2").shell.pid, *pauses])
        assert procs.state(c.pod(src).pause_pid) != "T"  # node-1 runs on
        assert not c.pod(src).exec(["ping", "-c1", "-W1", ip]).ok
        with pytest.raises(TestbedError, match="stopped already"):
            c.stop_node("node-2")
        c.start_node("node-2")
        assert all(procs.state(p) != "T" for p in [c.host("node-2").shell.pid, *pauses])
        assert c.pod(src).exec(["ping", "-c1", "-W2", ip]).ok
        c.stop_node("node-2")  # left stopped: teardown must still take everything
    assert machine_snapshot() == before
