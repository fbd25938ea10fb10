"""Run directories: tidy measurements, raw tool output and metadata, written atomically.

    results/<run-id>/
      measurements.csv   one measurement a row (COLUMNS), rewritten atomically as rows arrive
      summary.csv        per experiment, path class and metric: count, median, mean, std, CI
      report.md          tables and what they show; plots beside it (*.png)
      metadata.json      topology, parameters, versions, git commit, times, status
      raw/               iperf3 JSON and ping output, one file per measurement

Every file is written to a temporary name and renamed into place, so a crash never
leaves half a file; a run directory is created exclusively, so it is never overwritten,
and written only through the directory opened when it was made: it runs as root, and
whoever can write to --out must not be able to redirect it through a link.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from testbed.errors import UsageError, quote

FORMAT_VERSION = 2  # 2: the `note` column and `error` rows
COLUMNS = ["experiment", "repeat", "src", "dst", "src_node", "dst_node", "path", "metric",
           "value", "unit", "note"]
# A unit that could not be measured (the tool did not run, or its output made no sense)
# is one row of this metric, value NaN, the reason in `note`: never a number.
ERROR = "error"
UNITS = {
    "loss_pct": "%", "rtt_min_ms": "ms", "rtt_avg_ms": "ms", "rtt_max_ms": "ms",
    "rtt_mdev_ms": "ms", "ttl": "hops-left", "throughput_bps": "bit/s", "sent_bps": "bit/s",
    "retransmits": "count", "missed_intended_pct": "%", "cpu_client_pct": "%",
    "cpu_server_pct": "%", "recovery_s": "s", "outage_s": "s", "lost": "count",
    "frozen": "count",
}
# claims.csv: one verdict a row (confirmed, refuted or error), with its evidence and the
# fidelity of the window it was measured in (testbed.measure.fidelity.summary: "ok",
# "suspect: <reasons>", "unknown: ...", blank for an `error` or a run from before it)
CLAIM_COLUMNS = ["claim", "verdict", "evidence", "numbers", "statement", "fidelity"]
LEGACY_CLAIM_COLUMNS = CLAIM_COLUMNS[:-1]  # runs from before issue 23: read, fidelity blank


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
    note: str = ""  # why an `error` row has no value

    def __post_init__(self) -> None:
        if self.metric == ERROR:
            if not self.note:
                raise ValueError("an error row needs its reason")
        elif not math.isfinite(self.value):
            raise ValueError(f"{self.metric} = {self.value} is not a measurement")

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d["unit"] = self.unit or UNITS.get(self.metric, "")
        return d


_SAFE_PART = re.compile(r"[A-Za-z0-9_.,@+=-]+")


def _check_name(name: str) -> list[str]:
    """The parts of a relative file name inside a run directory: plain names only (no
    absolute path, no `..`), so a write can never leave the directory."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or not _SAFE_PART.fullmatch(p) for p in parts):
        raise ValueError(f"not a file name inside a run directory: {name!r}")
    return parts


def atomic_write_at(dir_fd: int, name: str, data: str | bytes) -> None:
    """Write a whole file or nothing into an open directory: a temporary file beside it
    (never following a link), fsync, rename."""
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o666, dir_fd=dir_fd)  # the umask applies: results are for sharing
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a whole file or nothing: temporary file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        atomic_write_at(dir_fd, path.name, data)
    finally:
        os.close(dir_fd)


def give_to_invoking_user(run: RunDir) -> None:
    """Under sudo, hand a run directory to the user who typed the command (it is theirs):
    bottom-up, through the directory opened when the run began, never following a link,
    so a directory swapped for a link meanwhile hands over nothing else."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid or not uid.isdigit() or not gid.isdigit():
        return
    for _root, dirs, files, dir_fd in os.fwalk(".", topdown=False, dir_fd=run.fd):
        for name in [*files, *dirs]:
            with contextlib.suppress(OSError):
                os.chown(name, int(uid), int(gid), dir_fd=dir_fd, follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.fchown(run.fd, int(uid), int(gid))


def new_run_id(topology: str, now: float | None = None) -> str:
    """A sortable, readable id: UTC time to the second, then the topology name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{topology}"


def output_directory(out: Path) -> Path:
    """The directory run directories go in, made if missing; refused (one line) if it is
    not a directory we may write, or, under sudo, if it belongs to someone other than
    root and the user who typed the command."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out {out}: exists and is not a directory") from None
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot make it ({exc.strerror})") from None
    if not out.is_dir():
        raise UsageError(f"--out {out}: is not a directory")
    sudo_uid = os.environ.get("SUDO_UID", "")
    owner = out.stat().st_uid
    if os.geteuid() == 0 and sudo_uid.isdigit() and owner not in (0, int(sudo_uid)):
        raise UsageError(f"--out {out}: belongs to uid {owner}, not to you or root; results "
                         "are written there as root: choose a directory of your own")
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: not writable")
    return out


class RunDir:
    """One experiment run's output directory, held open: every file is written and read
    through the directory opened when the run began (never following a link), so
    swapping the path for a link meanwhile redirects nothing."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.rows: list[dict[str, Any]] = []
        self.claims: dict[str, dict[str, str]] = {}  # claim id -> claims.csv row
        self.claim_order: list[str] = []  # claims.csv's row order (others follow, as judged)
        self.figures: list[str] = []  # plots experiments drew, beside the report

    @classmethod
    def create(cls, out: Path, topology: str) -> RunDir:
        """Make a new, never-before-used directory (a suffix separates same-second runs)."""
        output_directory(out)
        base = new_run_id(topology)
        for i in range(1000):
            path = out / (base if i == 0 else f"{base}-{i + 1}")
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                continue
            run = cls(path, _open_dir(path))
            os.mkdir("raw", 0o755, dir_fd=run.fd)
            return run
        raise UsageError(f"--out {out}: could not make a new run directory there")

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run directory with the measurements and verdicts it holds (one-line
        UsageError if it is not a readable run directory)."""
        try:
            run = cls(path, _open_dir(path))
        except OSError as exc:
            raise UsageError(f"{path}: not a run directory ({exc.strerror})") from None
        for name, columns in (("measurements.csv", COLUMNS), ("claims.csv", CLAIM_COLUMNS)):
            data = run.read(name)
            if data is None:
                continue
            try:
                frame = pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=str)
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise UsageError(f"{path / name}: not readable as CSV ({quote(str(exc))})"
                                 ) from None
            if name == "claims.csv" and list(frame.columns) == LEGACY_CLAIM_COLUMNS:
                frame = frame.reindex(columns=CLAIM_COLUMNS, fill_value="")
            if list(frame.columns) != columns:
                raise UsageError(f"{path / name}: columns {quote(list(frame.columns))}, not "
                                 f"{', '.join(columns)}")
            records = frame.to_dict("records")
            if name == "claims.csv":
                run.claims = {row["claim"]: row for row in records}
                continue
            try:
                for row in records:
                    row["repeat"] = int(row["repeat"])
                    row["value"] = float(row["value"]) if row["value"] else math.nan
            except ValueError as exc:
                raise UsageError(f"{path / name}: {quote(str(exc))}") from None
            run.rows = records
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    # -- files, always through the open directory ----------------------------------------

    def _subdir(self, parts: list[str]) -> int:
        """The open directory of `parts` below the run directory, made if missing."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def write(self, name: str, data: str | bytes) -> None:
        """Write a file of the run (`name` relative, e.g. raw/ping/x.txt), atomically."""
        *dirs, leaf = _check_name(name)
        fd = self._subdir(dirs)
        try:
            atomic_write_at(fd, leaf, data)
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes | None:
        """A file of the run, or None if there is none (a link is not followed)."""
        *dirs, leaf = _check_name(name)
        try:
            fd = self._subdir(dirs)
        except OSError:
            return None
        try:
            file_fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        with os.fdopen(file_fd, "rb") as f:
            return f.read()

    def open_log(self, name: str) -> BinaryIO:
        """A file of the run to write as it goes (a server's log), never through a link."""
        *dirs, leaf = _check_name(name)
        fd = self._subdir(dirs)
        try:
            file_fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o666, dir_fd=fd)
        finally:
            os.close(fd)
        return os.fdopen(file_fd, "wb")

    def exists(self, name: str) -> bool:
        return self.read(name) is not None

    def listdir(self) -> list[str]:
        """The names at the top of the run directory."""
        return sorted(os.listdir(self.fd))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    # -- the run's tables --------------------------------------------------------------

    def raw(self, name: str, text: str) -> None:
        """Keep a tool's raw output (iperf3 JSON, ping text) for later inspection."""
        self.write(f"raw/{name}", text)

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
        self.write(name, png)
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
        self.write("measurements.csv", self.frame().to_csv(index=False))

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        self.write(name, frame.to_csv(index=False))

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        self.write(name, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
