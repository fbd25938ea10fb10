"""Crashes and refusals with real signals against real runs: the machine always ends as
it began, finished measurements survive, and errors are one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from testbed.cluster import Cluster, down
from testbed.emulation import ipmn
from testbed.errors import TestbedError
from testbed.kernel import features
from testbed.model.names import UNDERLAY_SWITCH
from testbed.model.spec import ClusterSpec
from testbed.pods.cni import CniRuntime

from .conftest import ROOT, machine_snapshot
from .test_lifecycle import foreign_objects  # noqa: F401 - fixture

BIN = Path(sys.executable).parent
TESTBED = str(BIN / "testbed")
RUN_PY = str(ROOT / "experiments" / "run.py")
TWO_NODE = str(ROOT / "topologies" / "two-node.yaml")


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60) -> list[str]:
    """Read the process's stderr until a line contains `needle`; return what was read."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}; stderr so far: {''.join(seen)}")


# `testbed up` with bring-up held at a known point: every pause process spawned, the first
# one running, no pod wired yet (network and FRR up). It prints a line and waits there, so
# signals land at that point whatever the machine's speed (bring-up takes ~1 s).
HELD_UP = """
import sys, time
from testbed.cluster import pods
from testbed.cli.main import main
real = pods.wait_pause
def held(*args, **kwargs):
    real(*args, **kwargs)
    print("held: pause processes started", file=sys.stderr, flush=True)
    time.sleep(600)
pods.wait_pause = held
sys.exit(main(sys.argv[1:]))
"""


def start_held_up(topology: str = TWO_NODE) -> subprocess.Popen:
    proc = start([str(BIN / "python"), "-c", HELD_UP, "up", topology, "-c", "pods"])
    wait_for_line(proc, "held: pause processes started")
    return proc


def settle(before: dict, timeout: float = 5.0) -> dict:
    """The machine's state once dead namespaces' veth ends have gone (asynchronous)."""
    deadline = time.monotonic() + timeout
    now = machine_snapshot()
    while now != before and time.monotonic() < deadline:
        time.sleep(0.1)
        now = machine_snapshot()
    return now


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_bring_up_tears_down(sig: signal.Signals) -> None:
    before = machine_snapshot()
    proc = start_held_up()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: the cluster was torn down" in err
    assert settle(before) == before


def test_teardown_with_node_shells_mid_command(two_node_spec: ClusterSpec) -> None:
    """What a Ctrl-C during a Mininet command leaves: shells waiting for output. Mininet's
    terminate() runs commands in them and would fail an assertion; teardown copes."""
    before = machine_snapshot()
    cluster = Cluster(two_node_spec)
    cluster.start()
    for name in ("router", "node-1", UNDERLAY_SWITCH):
        cluster.net[name].sendCmd("sleep 30")
        assert cluster.net[name].waiting
    cluster.stop()
    assert settle(before) == before


def test_signal_during_teardown_does_not_cut_it_short(two_node_spec: ClusterSpec,
                                                      monkeypatch) -> None:
    """SIGTERM and SIGINT raised in the middle of teardown (from inside it, so the timing
    is certain): teardown finishes, the machine is clean, then the interrupt arrives."""
    before = machine_snapshot()
    cluster = Cluster(two_node_spec)
    cluster.start()
    real_stop_network = down.stop_network

    def stop_network_under_fire(c: Cluster) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        real_stop_network(c)

    monkeypatch.setattr(down, "stop_network", stop_network_under_fire)

    def raise_interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            cluster.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert cluster.state is None and cluster.net is None  # teardown ran to its end
    assert settle(before) == before


def test_sigterm_during_experiment_keeps_data_and_resume_completes(tmp_path: Path) -> None:
    before = machine_snapshot()
    proc = start([str(BIN / "python"), RUN_PY, "--quick", "--experiment",
                  "reachability,throughput", "--out", str(tmp_path)])
    wait_for_line(proc, "throughput:")  # reachability is finished, throughput starts
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (run_dir,) = list(tmp_path.iterdir())
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "interrupted" and meta["complete"] is False
    assert f"--resume {run_dir}" in meta["error"]
    kept = pd.read_csv(run_dir / "measurements.csv")
    assert set(kept["experiment"]) >= {"reachability"}
    assert len(kept[kept["metric"] == "ttl"]) == 24  # every pair of the quick run
    assert not [p for p in run_dir.rglob("*.tmp")]  # no half-written file
    assert settle(before) == before

    res = subprocess.run([str(BIN / "python"), RUN_PY, "--resume", str(run_dir),
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    done = pd.read_csv(run_dir / "measurements.csv")
    assert not done.duplicated(["experiment", "repeat", "src", "dst", "metric"]).any()
    assert set(done[done["metric"] == "throughput_bps"]["path"]) == {
        "pod-localhost", "pod-same-node", "pod-cross-node", "node-node"}
    # what was measured before the interruption is kept as it was, not measured again
    pd.testing.assert_frame_equal(done.iloc[: len(kept)], kept)
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["resumed"][0]["rows_before"] == len(kept)
    assert settle(before) == before


def test_sigkill_at_bring_up_is_cleaned_by_the_next_up(foreign_objects: None) -> None:  # noqa: F811
    before = machine_snapshot()
    proc = start_held_up()  # FRR daemons and pause processes running
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert any(p.startswith("/run/ktestbed/") for p in machine_snapshot()["state"])
    res = subprocess.run([TESTBED, "up", TWO_NODE, "-c", "pods"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "removed leftovers of 1 crashed run(s)" in res.stderr
    assert settle(before) == before


def test_sigkill_during_experiment_then_clean(tmp_path: Path,
                                              foreign_objects: None) -> None:  # noqa: F811
    before = machine_snapshot()
    proc = start([str(BIN / "python"), RUN_PY, "--quick", "--experiment",
                  "reachability,throughput", "--out", str(tmp_path)])
    wait_for_line(proc, "throughput:")
    time.sleep(0.5)  # iperf3 servers are running in pods and a node
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    res = subprocess.run([TESTBED, "clean"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "removed the leftovers of 1 run" in res.stdout
    assert settle(before) == before
    (run_dir,) = list(tmp_path.iterdir())
    pd.read_csv(run_dir / "measurements.csv")  # whole, parseable, whatever the moment


def test_not_root_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    before = machine_snapshot()
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    res = subprocess.run(nobody + [TESTBED, "up", TWO_NODE, "-c", "pods"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip() == ("error: this needs root (network namespaces, bridges, "
                                  "netfilter): run it with sudo")
    os.chmod(tmp_path, 0o777)
    res = subprocess.run(nobody + [str(BIN / "python"), RUN_PY, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "needs root" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o").exists()
    assert machine_snapshot() == before


def test_frr_failing_its_config_check_is_a_clear_error(two_node_spec: ClusterSpec,
                                                       monkeypatch) -> None:
    before = machine_snapshot()
    # staticd's configuration check fails; ipmininet would then run Mininet's global
    # cleanup: the testbed refuses that, reports, and removes only its own objects
    monkeypatch.setattr(ipmn.STATIC, "dry_run", property(lambda self: "false"))
    with pytest.raises(TestbedError, match="FRR daemon failed its configuration check"):
        Cluster(two_node_spec).start()
    assert settle(before) == before


def test_cni_plugin_failing_is_a_clear_error(two_node_spec: ClusterSpec,
                                             tmp_path: Path) -> None:
    before = machine_snapshot()
    plugins = tmp_path / "cni"
    plugins.mkdir()
    for name in ("loopback", "host-local"):
        (plugins / name).symlink_to(f"/usr/lib/cni/{name}")
    bridge = plugins / "bridge"
    bridge.write_text('#!/bin/sh\necho \'{"code": 11, "msg": "bridge exploded"}\'\nexit 1\n')
    bridge.chmod(0o755)
    cluster = Cluster(two_node_spec)
    cluster.wiring = CniRuntime(str(plugins))
    with pytest.raises(TestbedError, match="CNI plugin bridge ADD failed .*bridge exploded"):
        cluster.start()
    assert settle(before) == before


def test_an_ovs_underlay_without_ovs_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    """This machine has no OVS datapath (where it has one, the OVS path runs instead)."""
    if features.openvswitch()[0]:
        pytest.skip("Open vSwitch runs here: the refusal cannot be shown")
    topology = tmp_path / "ovs.yaml"
    topology.write_text(Path(TWO_NODE).read_text() + "underlay_switch: ovs\n")
    before = machine_snapshot()
    res = subprocess.run([TESTBED, "up", str(topology), "-c", "pods"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: underlay_switch: ovs needs Open vSwitch")
    assert machine_snapshot() == before


def test_the_kernel_probes_find_what_every_cluster_uses() -> None:
    found = features.probe()
    assert found["veth"].present is True and found["bridge"].present is True
    assert found["vxlan"].present in (True, False)  # probed, not unknown, as root
