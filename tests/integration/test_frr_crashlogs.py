"""FRR's crash-log directories (`/var/tmp/frr/<daemon>.<pid>`) never outlive a run.

The router mounts a private tmpfs on /var/tmp/frr, so on a machine where that mount takes
they vanish with the router anyway. These tests take the mount away, as on a machine
where it would not take: every FRR daemon the router started (the configuration checks,
zebra, staticd, calico's bgpd) then leaves its directory in the machine's own
/var/tmp/frr, and teardown, or `testbed clean` after a SIGKILL, must remove exactly those,
by the pids the run recorded, and nothing else there."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from testbed.cluster import Cluster
from testbed.emulation.nodes import GatewayRouter
from testbed.model.names import FRR_TMP
from testbed.model.spec import ClusterSpec
from testbed.records.journal import STATE_ROOT, frr_crashlog, read_records

from .conftest import ROOT, machine_snapshot
from .test_podnets import _racks_spec

BIN = Path(sys.executable).parent


def _frr_entries() -> set[str]:
    return set(os.listdir(FRR_TMP)) if os.path.isdir(FRR_TMP) else set()


@pytest.fixture
def no_private_frr_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The router without its private /var/tmp/frr; a foreign FRR crash log (another
    FRR's on the machine, by a pid no process has) that must survive."""
    real = GatewayRouter.__init__

    def without(self, name, **params):  # noqa: ANN001, ANN202 - Mininet's signature
        params["privateDirs"] = []
        real(self, name, **params)

    monkeypatch.setattr(GatewayRouter, "__init__", without)
    made_root = not os.path.isdir(FRR_TMP)
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    foreign = Path(FRR_TMP) / f"bgpd.{ended.pid}"
    foreign.mkdir(parents=True)
    try:
        yield foreign.name
        assert foreign.is_dir()  # another FRR's: untouched
    finally:
        shutil.rmtree(foreign, ignore_errors=True)
        if made_root:
            with suppress(OSError):
                os.rmdir(FRR_TMP)


def _recorded(cluster: Cluster) -> list[tuple[str, int]]:
    return [(r["daemon"], r["pid"]) for r in cluster.state.records() if r["kind"] == "frrlog"]


@pytest.mark.parametrize("mode", ["kubenet", "calico"])
def test_teardown_removes_the_crash_logs_of_the_daemons_it_recorded(
        two_node_spec: ClusterSpec, no_private_frr_tmp: str, mode: str) -> None:
    before = machine_snapshot()
    spec = two_node_spec if mode == "kubenet" else _racks_spec("calico")
    with Cluster(spec) as c:
        recorded = _recorded(c)
        daemons = {d for d, _ in recorded}
        assert {"zebra", "staticd"} <= daemons and ("bgpd" in daemons) == (mode == "calico")
        logs = {os.path.basename(frr_crashlog(d, p)) for d, p in recorded}
        # the configuration checks' directories are in the machine's /var/tmp/frr now,
        # by recorded pids (the daemons still running have theirs too)
        assert logs & _frr_entries()
    assert not logs & _frr_entries()
    assert machine_snapshot() == before


CRASHER = """
import sys, time
from testbed.cluster import Cluster
from testbed.emulation.nodes import GatewayRouter
from testbed.model.load import load_spec
real = GatewayRouter.__init__
def without(self, name, **params):
    params["privateDirs"] = []
    real(self, name, **params)
GatewayRouter.__init__ = without
c = Cluster(load_spec(sys.argv[1]))
c.start()
print("UP", flush=True)
time.sleep(300)
"""


def test_testbed_clean_removes_them_after_a_sigkill(no_private_frr_tmp: str) -> None:
    before = machine_snapshot()
    proc = subprocess.Popen([sys.executable, "-c", CRASHER,
                             str(ROOT / "topologies" / "two-node.yaml")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "UP"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        (journal,) = STATE_ROOT.glob("*/state.jsonl")
        logs = {os.path.basename(frr_crashlog(r["daemon"], r["pid"]))
                for r in read_records(journal) if r["kind"] == "frrlog"}
        assert logs & _frr_entries()  # the crash left crash logs behind
        res = subprocess.run([str(BIN / "testbed"), "clean"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert not logs & _frr_entries()
        deadline = time.monotonic() + 5
        while machine_snapshot() != before and time.monotonic() < deadline:
            time.sleep(0.1)  # veth ends of dead namespaces vanish asynchronously
        assert machine_snapshot() == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
