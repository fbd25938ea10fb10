"""The cpu cgroup hierarchy: a node's CPU share (testbed.model.cpu) made real.

Both kinds of machine are handled: cgroup v1 with the `cpu` controller mounted on its own
(`/sys/fs/cgroup/cpu`, as on these Firecracker machines: `cpu.cfs_period_us` and
`cpu.cfs_quota_us`), and the unified v2 hierarchy (`/sys/fs/cgroup`, `cpu.max`) where the
root hands the cpu controller down (systemd does). The testbed makes one group per node
directly under the root, named with its prefix, records it before making it, and removes
it (empty by then) at teardown; it never changes the root's own settings.

Processes go in as Mininet's CPULimitedHost puts them: the node's shell moved once, and
every process started for the node or its pods through `cgexec -g cpu:/<group>` (from
cgroup-tools), which joins the group and then execs the command, so the process and its
children are in the group before it runs any code of its own.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
CGEXEC = "cgexec"
RMDIR_WAIT_S = 2.0  # tasks signalled at teardown may take a moment to leave the group


@dataclass(frozen=True)
class Hierarchy:
    """Where the cpu controller is, and which interface it speaks."""

    root: Path
    version: int  # 1 or 2

    def path(self, group: str) -> Path:
        return self.root / group


def find() -> tuple[Hierarchy | None, str]:
    """The cpu hierarchy that can limit a group's bandwidth, or None and why not."""
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return Hierarchy(V1_ROOT, 1), ""
    controllers = V2_ROOT / "cgroup.subtree_control"
    if controllers.exists():
        try:
            handed_down = controllers.read_text().split()
        except OSError as exc:
            return None, f"cannot read {controllers}: {exc}"
        if "cpu" in handed_down:
            return Hierarchy(V2_ROOT, 2), ""
        return None, (f"the cgroup v2 root does not hand the cpu controller to its children "
                      f"({controllers} has {' '.join(handed_down) or 'nothing'}); the testbed "
                      "does not change the machine's root cgroup")
    if V1_ROOT.exists():
        return None, (f"{V1_ROOT} has no cpu.cfs_quota_us: this kernel has no CFS bandwidth "
                      "control (CONFIG_CFS_BANDWIDTH)")
    return None, "no cpu cgroup controller is mounted (neither cgroup v1's nor v2's)"


def problems() -> list[str]:
    """What keeps node CPU shares from working here ([] when nothing does)."""
    out = []
    hierarchy, why = find()
    if hierarchy is None:
        out.append(f"node CPU shares need the cpu cgroup controller: {why}")
    if shutil.which(CGEXEC) is None:
        out.append("node CPU shares need cgexec (Debian package cgroup-tools; "
                   "`make setup` installs it)")
    return out


def create(hierarchy: Hierarchy, group: str, period_us: int, quota_us: int) -> Path:
    """Make the group and give it its CFS bandwidth (the caller recorded it first)."""
    path = hierarchy.path(group)
    path.mkdir()
    if hierarchy.version == 1:
        (path / "cpu.cfs_period_us").write_text(str(period_us))
        (path / "cpu.cfs_quota_us").write_text(str(quota_us))
    else:
        (path / "cpu.max").write_text(f"{quota_us} {period_us}")
    return path


def read_bandwidth(hierarchy: Hierarchy, group: str) -> tuple[int, int]:
    """(period, quota) in us as the kernel holds them (read back: a value it refused
    shows here; quota -1: unlimited)."""
    path = hierarchy.path(group)
    if hierarchy.version == 1:
        return (int((path / "cpu.cfs_period_us").read_text()),
                int((path / "cpu.cfs_quota_us").read_text()))
    quota, period = (path / "cpu.max").read_text().split()
    return int(period), -1 if quota == "max" else int(quota)


def move(hierarchy: Hierarchy, group: str, pid: int) -> None:
    """Put one running process into the group (its future children follow it)."""
    (hierarchy.path(group) / "cgroup.procs").write_text(str(pid))


def members(hierarchy: Hierarchy, group: str) -> list[int]:
    """The processes in the group now."""
    try:
        text = (hierarchy.path(group) / "cgroup.procs").read_text()
    except FileNotFoundError:
        return []
    return [int(x) for x in text.split()]


def stat(hierarchy: Hierarchy, group: str) -> dict[str, int]:
    """The group's cpu.stat as numbers: throttled periods and time (v1 `throttled_time`
    in ns, v2 `throttled_usec`), and on v2 its usage."""
    out: dict[str, int] = {}
    for line in (hierarchy.path(group) / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def prefix(group: str) -> tuple[str, ...]:
    """The argv prefix that starts a command inside the group."""
    return (CGEXEC, "-g", f"cpu:/{group}")


def remove(path: str) -> None:
    """Remove a group the testbed made; its last tasks may still be exiting (EBUSY) for a
    moment after teardown signalled them. A group already gone is fine."""
    deadline = time.monotonic() + RMDIR_WAIT_S
    while True:
        try:
            os.rmdir(path)
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.02)
