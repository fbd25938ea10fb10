"""The run's journal: what a running cluster created, written before or as it is created.

Layout (all under STATE_ROOT; /run is a tmpfs on a standard Debian system, so records vanish
at reboot, as the namespaces they describe do):

    /run/ktestbed/
      lock                      flock held by the process that owns the running cluster
                                (testbed.records.lock)
      <run-id>/
        state.jsonl             one JSON record a line: what was created, in order
        frr/                    the router's FRR configs, pid files, sockets, logs
        ipam/<node>/            host-local IPAM data directory of each node
        containers/             each container's output, <pod>_<container>.log
        hosts/                  working directory of the hosts behind the router

Records are appended (one short line, one write) so that a crash at any moment leaves a
readable file; teardown and `testbed clean` undo exactly these records and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.kernel.procs import start_time

STATE_ROOT = Path(os.environ.get("KTESTBED_STATE_ROOT", "/run/ktestbed"))


@dataclass
class RunState:
    """The record of one cluster run, and the directories it owns."""

    run_id: str
    directory: Path

    @property
    def journal(self) -> Path:
        return self.directory / "state.jsonl"

    def record(self, kind: str, **fields: Any) -> None:
        """Append one record (kind: netns, link, process, dir) before or as it is created."""
        line = json.dumps({"kind": kind, **fields}, sort_keys=True) + "\n"
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.journal)

    def record_process(self, pid: int, what: str) -> int | None:
        """Record a process we started, identified by pid *and* start time (pids are
        reused): cleanup never signals a process whose start time differs. Returns the
        start time (None if the process is already gone)."""
        started = start_time(pid)
        self.record("process", pid=pid, started=started, what=what)
        return started

    def subdir(self, *parts: str) -> Path:
        path = self.directory.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def read_records(journal: Path) -> list[dict[str, Any]]:
    """Every complete record of a journal (a torn last line from a crash is skipped)."""
    out = []
    try:
        text = journal.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def new_run(name: str, root: Path = STATE_ROOT) -> RunState:
    """Create a fresh run directory for cluster `name` (the caller holds the lock)."""
    run_id = f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    directory = root / run_id
    directory.mkdir(parents=True, exist_ok=False)
    state = RunState(run_id, directory)
    state.record("run", run_id=run_id, pid=os.getpid(), started=time.time())
    return state


def existing_runs(root: Path = STATE_ROOT) -> list[RunState]:
    """Run directories present under the state root (live or crashed)."""
    if not root.is_dir():
        return []
    return [RunState(p.name, p) for p in sorted(root.iterdir()) if (p / "state.jsonl").exists()]


def remove_run_dir(state: RunState) -> None:
    """Delete a run's own directory (configs, IPAM data, FRR files) once it is undone."""
    shutil.rmtree(state.directory, ignore_errors=True)
