"""Bring-up and teardown hygiene: nothing of ours is left, nothing not ours is touched,
and a crashed run's leftovers are found and removed by `testbed clean`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.cluster import Cluster
from testbed.errors import LeftoverError, TestbedError
from testbed.model.names import LINK_GROUP
from testbed.model.spec import ClusterSpec

from .conftest import ROOT, machine_snapshot

FOREIGN_NS = "ktb-node-1-foreign"  # looks like ours, is not
FOREIGN_LINK = "ktb-ul1x"  # looks like our underlay bridge, is not
FOREIGN_VETH = ("node-1-eth1", "ktb-ul1-peer")  # look like a node's and a switch port


@pytest.fixture
def foreign_objects() -> Iterator[None]:
    """A namespace, a bridge, an interface pair and a process made outside the testbed,
    with names like the testbed's; each must be untouched by whatever the test does. The
    bridge is in the testbed's link group, which must then not be deleted as a whole."""
    subprocess.run(["ip", "netns", "add", FOREIGN_NS], check=True)
    subprocess.run(["ip", "link", "add", FOREIGN_LINK, "group", str(LINK_GROUP), "type",
                    "bridge"], check=True)
    subprocess.run(["ip", "link", "add", FOREIGN_VETH[0], "type", "veth", "peer", "name",
                    FOREIGN_VETH[1]], check=True)
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield
        assert FOREIGN_NS in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                            text=True).stdout
        for link in (FOREIGN_LINK, *FOREIGN_VETH):
            assert os.path.exists(f"/sys/class/net/{link}"), link
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        for link in (FOREIGN_LINK, FOREIGN_VETH[0]):
            subprocess.run(["ip", "link", "del", link], check=False)
        subprocess.run(["ip", "netns", "delete", FOREIGN_NS], check=False)


def test_teardown_leaves_nothing_and_spares_foreign_objects(two_node_spec: ClusterSpec,
                                                            foreign_objects: None) -> None:
    before = machine_snapshot()
    with Cluster(two_node_spec) as cluster:
        during = machine_snapshot()
        assert {p.netns for p in cluster.pods.values()} <= during["netns"]
        assert "ktb-ul1" in during["links"]
        state_dir = cluster.state.directory
        assert (state_dir / "frr").is_dir()
    after = machine_snapshot()
    assert after == before
    assert not state_dir.exists()


def test_second_cluster_refuses_while_one_runs(two_node_spec: ClusterSpec) -> None:
    with Cluster(two_node_spec) as first:
        with pytest.raises(LeftoverError, match="another cluster is running"):
            Cluster(two_node_spec).start()
        # the refusal did not damage the running cluster
        res = first.pod("pod-1").exec(["ping", "-c1", "-W1", first.endpoint_ip("pod-4")])
        assert res.ok and "ttl=61" in res.stdout
        assert len(first.router_routes()) == 2
    # the refused second cluster made nothing; the first one's teardown removed its own
    assert not any(n.startswith("ktb-") for n in machine_snapshot()["netns"])


def test_failed_bring_up_tears_down(two_node_spec: ClusterSpec, monkeypatch) -> None:
    before = machine_snapshot()

    def broken_cni(*_args, **_kwargs):
        raise TestbedError("simulated CNI failure")

    cluster = Cluster(two_node_spec)
    monkeypatch.setattr(cluster.wiring, "add", broken_cni)
    with pytest.raises(TestbedError, match="simulated CNI failure"):
        cluster.start()
    assert machine_snapshot() == before


CRASHER = """
import os, sys, time
from testbed.cluster import Cluster
from testbed.model.load import load_spec
c = Cluster(load_spec(sys.argv[1]))
c.start()
print("UP", flush=True)
time.sleep(300)
"""


def test_sigkill_leftovers_are_removed_by_testbed_clean(two_node_spec: ClusterSpec) -> None:
    before = machine_snapshot()
    proc = subprocess.Popen([sys.executable, "-c", CRASHER,
                             str(ROOT / "topologies" / "two-node.yaml")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "UP"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(0.5)
        crashed = machine_snapshot()
        assert any(n.startswith("ktb-") for n in crashed["netns"])  # it really left things
        res = subprocess.run([str(Path(sys.executable).parent / "testbed"), "clean"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "removed the leftovers of 1 run" in res.stdout
        deadline = time.monotonic() + 5
        while machine_snapshot() != before and time.monotonic() < deadline:
            time.sleep(0.1)  # veth ends of dead namespaces vanish asynchronously
        assert machine_snapshot() == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", ["node-1-eth0", "ktb-ul1", "ktb-ul1-eth3"])
def test_names_the_cluster_needs_held_by_others_are_refused_not_deleted(
        two_node_spec: ClusterSpec, name: str) -> None:
    before = machine_snapshot()
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        with pytest.raises(LeftoverError, match=f"already exist.*{name}"):
            Cluster(two_node_spec).start()
        assert os.path.exists(f"/sys/class/net/{name}")  # Mininet would have deleted it
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)
    assert machine_snapshot() == before


def test_a_hostile_journal_on_a_running_cluster_is_not_acted_on(
        two_node_spec: ClusterSpec, foreign_objects: None) -> None:
    """Records nobody should trust, appended to a live run's journal, for real: none is
    acted on, teardown says so in one error, and the run's directory keeps exactly them."""
    before = machine_snapshot()
    bystander = subprocess.Popen(["sleep", "300"])
    real_link = next(n for n in sorted(os.listdir("/sys/class/net")) if n != "lo")
    hostile = [
        {"kind": "netns", "name": "../.."},
        {"kind": "dir", "path": "/"},
        {"kind": "process", "pid": 1, "started": 0},
        {"kind": "process", "pid": bystander.pid},  # no start time
        {"kind": "link", "name": real_link},
        {"kind": "link", "name": "lo"},
        ["not", "a", "record"],
    ]
    cluster = Cluster(two_node_spec)
    cluster.start()
    state = cluster.state
    assert state is not None
    # well-formed, so acted on: names are exact, the foreign namespace it prefixes stays
    harmless = {"kind": "netns", "name": FOREIGN_NS[:-1]}
    with open(state.journal, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in [*hostile, harmless])
    try:
        with pytest.raises(TestbedError) as info:
            cluster.stop()
        message = str(info.value)
        assert "\n" not in message
        assert message.count("record not acted on") == len(hostile)
        assert bystander.poll() is None and os.path.exists(f"/sys/class/net/{real_link}")
        assert state.records()[1:] == hostile  # kept: the run record and the hostile ones
    finally:
        bystander.kill()
        bystander.wait()
        shutil.rmtree(state.directory)  # by hand, as `testbed clean` tells a user to
    assert machine_snapshot() == before
