"""Integration tests: root and a real Mininet. Skipped without root, except in CI, where
a skip would hide a broken data plane, so they fail instead."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from testbed.model.load import load_spec
from testbed.model.names import FRR_TMP, LINK_GROUP, is_own_name
from testbed.model.spec import ClusterSpec
from testbed.records.journal import STATE_ROOT
from tests.support import leaks
from tests.support.leaks import SESSION_VAR

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


# Every process this session starts, and theirs, carries this mark (see tests.support.leaks).
SESSION_MARK = f"{SESSION_VAR}={os.getpid()}-{uuid.uuid4().hex[:12]}"
os.environ[SESSION_VAR] = SESSION_MARK.split("=", 1)[1]
CPU_ROOTS = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))
# Where ipmininet and Mininet would write if a router's working directory were left at
# its default, and where FRR keeps crash logs
TMP_DIRS = (Path("/tmp"), Path("/var/tmp"))


def _own_netns() -> tuple[set[str], set[int]]:
    """The named namespaces with the testbed's names, and their inodes."""
    names, inodes = set(), set()
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.strip() else ""
        if is_own_name(name):
            names.add(name)
            with contextlib.suppress(OSError):
                inodes.add(os.stat(f"/run/netns/{name}").st_ino)
    return names, inodes


def _session_processes(netns_inodes: set[int]) -> set[str]:
    """`pid cmdline` of every process this session started (its mark in the process's
    environment), and of any process in a namespace with the testbed's name."""
    mark = SESSION_MARK.encode()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                ours = leaks.carries_mark(f.read(), mark)
            if not ours and netns_inodes:
                ours = os.stat(f"/proc/{entry}/ns/net").st_ino in netns_inodes
            if ours:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                out.add(f"{entry} {cmdline}")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return out


def _links() -> set[str]:
    out = set()
    for name in os.listdir("/sys/class/net"):
        group = None
        with contextlib.suppress(OSError, ValueError), \
                open(f"/sys/class/net/{name}/netdev_group") as f:
            group = int(f.read())
        if leaks.testbed_link(name, group, LINK_GROUP):
            out.add(name)
    return out


def _entries(directory: Path, keep) -> set[str]:  # noqa: ANN001 - a name predicate
    try:
        return {str(directory / n) for n in os.listdir(directory) if keep(n)}
    except OSError:
        return set()


def machine_snapshot() -> dict[str, set[str]]:
    """What a run could leave behind, and only that (tests.support.leaks says why): named
    netns with the testbed's names; the machine namespace's interfaces the testbed or
    Mininet names (or in the testbed's link group); this session's processes; the state
    directory; nodes' cpu cgroups; FRR's crash-log directories in /var/tmp/frr (and that
    directory itself, the router's mount point); ipmininet's and Mininet's files in /tmp
    and /var/tmp by their names, and ipmininet's SSH key pair. Files other processes write
    in /tmp are not looked at."""
    netns, inodes = _own_netns()
    frr = Path(FRR_TMP)
    return {
        "netns": netns,
        "links": _links(),
        "procs": _session_processes(inodes),
        "state": {str(p) for p in STATE_ROOT.glob("*")},
        "cgroups": set().union(*(_entries(root, is_own_name) for root in CPU_ROOTS)),
        "frr": _entries(frr, leaks.frr_crashlog) | ({str(frr)} if frr.exists() else set()),
        "tmp": {p for d in TMP_DIRS for p in _entries(d, leaks.ipmininet_or_mininet_file)}
        | {p for d in TMP_DIRS for p in leaks.ssh_key_pairs(d)},
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
