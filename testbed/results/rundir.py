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
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

FORMAT_VERSION = 1
COLUMNS = ["experiment", "repeat", "src", "dst", "src_node", "dst_node", "path", "metric",
           "value", "unit"]
UNITS = {
    "loss_pct": "%", "rtt_min_ms": "ms", "rtt_avg_ms": "ms", "rtt_max_ms": "ms",
    "rtt_mdev_ms": "ms", "ttl": "hops-left", "throughput_bps": "bit/s", "sent_bps": "bit/s",
    "retransmits": "count", "missed_intended_pct": "%",
}
# claims.csv: one verdict a row (confirmed, refuted or error), with its evidence
CLAIM_COLUMNS = ["claim", "verdict", "evidence", "numbers", "statement"]


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
        self.claim_order: list[str] = []  # claims.csv's row order (others follow, as judged)
        self.figures: list[str] = []  # plots experiments drew, beside the report

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

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run directory with the measurements and verdicts it holds."""
        run = cls(path)
        csv = path / "measurements.csv"
        if csv.exists():
            run.rows = pd.read_csv(csv, keep_default_na=False).to_dict("records")
        claims_csv = path / "claims.csv"
        if claims_csv.exists():
            frame = pd.read_csv(claims_csv, keep_default_na=False, dtype=str)
            run.claims = {row["claim"]: row for row in frame.to_dict("records")}
        return run

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

    def drop_rows(self, experiment: str) -> None:
        """Forget the rows of `experiment` (and of its parts, `experiment/...`), to measure
        it again from the start."""
        keep = [r for r in self.rows if not (r["experiment"] == experiment
                                             or r["experiment"].startswith(f"{experiment}/"))]
        if len(keep) != len(self.rows):
            self.rows = keep
            self.write_measurements()

    def add_figure(self, name: str, png: bytes) -> None:
        """Write a plot beside the report (atomically) and list it for the report."""
        if "/" in name or not name.endswith(".png"):
            raise ValueError(f"a figure is a .png file name, not {name!r}")
        atomic_write(self.path / name, png)
        if name not in self.figures:
            self.figures.append(name)

    def add_claim(self, row: Mapping[str, str]) -> None:
        """Record a claim's verdict (replacing an earlier one, in its place) and rewrite
        claims.csv at once."""
        self.claims[row["claim"]] = {k: str(row.get(k, "")) for k in CLAIM_COLUMNS}
        self.write_csv("claims.csv", self.claims_frame())

    def claims_frame(self) -> pd.DataFrame:
        """claims.csv's table: one row per claim, in `claim_order`, then as judged."""
        rank = {c: i for i, c in enumerate(self.claim_order)}
        rows = sorted(self.claims.values(), key=lambda r: rank.get(r["claim"], len(rank)))
        return pd.DataFrame(rows, columns=CLAIM_COLUMNS)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def write_measurements(self) -> None:
        atomic_write(self.path / "measurements.csv", self.frame().to_csv(index=False))

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        atomic_write(self.path / name, frame.to_csv(index=False))

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        atomic_write(self.path / name, json.dumps(data, indent=2, sort_keys=True, default=str)
                     + "\n")
