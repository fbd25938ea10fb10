"""Run directories: tidy measurements, raw tool output and metadata, written atomically.

    results/<run-id>/
      measurements.csv   one measurement a row (COLUMNS), rewritten atomically as rows arrive
      summary.csv        per experiment, path class and metric: count, median, mean, std, CI
      report.md          tables and what they show; plots beside it (*.png)
      metadata.json      topology, parameters, versions, git commit, times, status
      raw/               iperf3 JSON and ping output, one file per measurement

Every file is written to a temporary name and renamed into place, so a crash never
leaves half a file; a run directory is created exclusively, so it is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd

from testbed.claims import ClaimResult, claims_frame

FORMAT_VERSION = 1
COLUMNS = ["experiment", "repeat", "src", "dst", "src_node", "dst_node", "path", "metric",
           "value", "unit"]
UNITS = {
    "loss_pct": "%", "rtt_min_ms": "ms", "rtt_avg_ms": "ms", "rtt_max_ms": "ms",
    "rtt_mdev_ms": "ms", "ttl": "hops-left", "throughput_bps": "bit/s", "sent_bps": "bit/s",
    "retransmits": "count", "missed_intended_pct": "%",
}
DEBIAN_PACKAGES = ["mininet", "frr", "iperf3", "iputils-ping", "containernetworking-plugins",
                   "catatonit", "iptables", "iproute2", "bridge-utils", "linux-base"]
PYTHON_PACKAGES = ["ipmininet", "pandas", "pyyaml", "matplotlib", "rich"]


@dataclass(frozen=True)
class Measurement:
    """One number: what was measured, between which endpoints, along which path class."""

    experiment: str
    repeat: int
    src: str
    dst: str
    src_node: str
    dst_node: str
    path: str
    metric: str
    value: float
    unit: str = ""

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d["unit"] = self.unit or UNITS.get(self.metric, "")
        return d


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a whole file or nothing: temporary file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_to_invoking_user(path: Path) -> None:
    """Under sudo, hand a run directory to the user who typed the command (it is theirs)."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid:
        return
    for p in [path, *path.rglob("*")]:
        with contextlib.suppress(OSError):
            os.chown(p, int(uid), int(gid), follow_symlinks=False)


def new_run_id(topology: str, now: float | None = None) -> str:
    """A sortable, readable id: UTC time to the second, then the topology name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{topology}"


class RunDir:
    """One experiment run's output directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.claims: dict[str, dict[str, str]] = {}  # claim id -> claims.csv row

    @classmethod
    def create(cls, out: Path, topology: str) -> RunDir:
        """Make a new, never-before-used directory (a suffix separates same-second runs)."""
        out.mkdir(parents=True, exist_ok=True)
        base = new_run_id(topology)
        for i in range(1000):
            path = out / (base if i == 0 else f"{base}-{i + 1}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / "raw").mkdir()
            return cls(path)
        raise RuntimeError(f"could not create a run directory under {out}")

    @property
    def run_id(self) -> str:
        return self.path.name

    def raw(self, name: str, text: str) -> Path:
        """Keep a tool's raw output (iperf3 JSON, ping text) for later inspection."""
        target = self.path / "raw" / name
        atomic_write(target, text)
        return target

    def add(self, measurements: Iterable[Measurement]) -> None:
        """Record finished measurements and rewrite measurements.csv (atomically) at once."""
        self.rows.extend(m.row() for m in measurements)
        self.write_measurements()

    def add_claim(self, result: ClaimResult) -> None:
        """Record a claim's verdict (replacing an earlier one) and rewrite claims.csv."""
        self.claims[result.claim] = result.row()
        self.write_csv("claims.csv", claims_frame(self.claims.values()))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def write_measurements(self) -> None:
        atomic_write(self.path / "measurements.csv", self.frame().to_csv(index=False))

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        atomic_write(self.path / name, frame.to_csv(index=False))

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        atomic_write(self.path / name, json.dumps(data, indent=2, sort_keys=True, default=str)
                     + "\n")


def _cmd(argv: list[str], cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (res.stdout or res.stderr).strip() if res.returncode == 0 else ""


def git_info(repo: Path) -> dict[str, Any]:
    """The commit the code ran from, and whether the work tree had uncommitted changes."""
    commit = _cmd(["git", "rev-parse", "HEAD"], cwd=repo)
    status = _cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    return {"commit": commit or None, "dirty": bool(status) if commit else None}


def environment_info() -> dict[str, Any]:
    """Kernel, Python, Debian and Python package versions: what a reproduction needs."""
    debs = {}
    for pkg in DEBIAN_PACKAGES:
        debs[pkg] = _cmd(["dpkg-query", "-W", "-f=${Version}", pkg]) or None
    pys = {}
    for pkg in PYTHON_PACKAGES:
        try:
            pys[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pys[pkg] = None
    return {
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "debian_packages": debs,
        "python_packages": pys,
        "tools": {
            "iperf3": _cmd(["iperf3", "--version"]).splitlines()[0:1],
            "ping": _cmd(["ping", "-V"]),
        },
    }
