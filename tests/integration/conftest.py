"""Integration tests: root and a real Mininet. Skipped without root, except in CI, where
a skip would hide a broken data plane, so they fail instead."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testbed.model.load import load_spec
from testbed.model.spec import ClusterSpec

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("integration tests need root, and CI runs them as root")
    skip = pytest.mark.skip(reason="needs root (network namespaces); CI runs these as root")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def two_node_spec() -> ClusterSpec:
    return load_spec(TOPOLOGIES / "two-node.yaml")


def machine_snapshot() -> dict[str, set[str]]:
    """What a run could leave behind: named netns, interfaces in the machine's namespace,
    testbed-related processes, the state directory, nodes' cpu cgroups, and files in /tmp
    and /var/tmp (FRR keeps crash-log directories in /var/tmp/frr; ipmininet writes a key
    pair to /tmp)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    procs = subprocess.run(["pgrep", "-a", "-f", "mininet:|catatonit|iperf3|/usr/lib/frr/|zebra|"
                            "dnsmasq|testbed.proxy|"
                            "staticd"], capture_output=True, text=True).stdout
    return {
        "netns": {line.split()[0] for line in netns.splitlines() if line.strip()},
        "links": set(os.listdir("/sys/class/net")),
        "procs": {line for line in procs.splitlines() if "pgrep" not in line},
        "state": {str(p) for p in Path("/run/ktestbed").glob("*")},
        "cgroups": {str(p) for root in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup")
                    for p in Path(root).glob("ktb-*")},
        "tmp": {str(p) for d in ("/tmp", "/var/tmp", "/var/tmp/frr") for p in Path(d).glob("*")
                if not p.name.startswith("pytest-of-")},
    }


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One `--quick` run of the whole default suite (measurements and the six claims),
    started with the system Python as users type it; shared by the tests that read it."""
    out = tmp_path_factory.mktemp("quick")
    before = machine_snapshot()
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"), "--quick",
                          "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert machine_snapshot() == before
    (run_dir,) = list(out.iterdir())
    return run_dir, res
