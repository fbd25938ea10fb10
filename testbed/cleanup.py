"""Undo exactly what a run recorded creating; nothing found by name patterns is touched.

Used three ways: at the end of every teardown (to catch what the orderly path missed),
before a bring-up (a crashed run's leftovers, whose lock holder is gone), and by
`testbed clean`.
"""

from __future__ import annotations

import os
from pathlib import Path

from testbed import procs
from testbed.errors import LeftoverError
from testbed.pod import delete_netns, run
from testbed.state import STATE_ROOT, ClusterLock, RunState, existing_runs, remove_run_dir


def _frr_pids(state: RunState) -> list[int]:
    """FRR daemons of this run found from their pid files, proven ours by their command line
    (it names this run's directory), for a crash between a daemon's start and its record."""
    pids = []
    for pidfile in (state.directory / "frr").glob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if str(state.directory) in cmdline:
            pids.append(pid)
    return pids


def undo_run(state: RunState) -> list[str]:
    """Stop recorded processes, delete recorded namespaces and links; return any errors."""
    errors: list[str] = []
    records = state.records()
    for rec in reversed(records):
        if rec["kind"] == "process":
            try:
                procs.stop_recorded(int(rec["pid"]), rec.get("started"))
            except Exception as exc:
                errors.append(f"process {rec['pid']} ({rec.get('what', '')}): {exc}")
    for pid in _frr_pids(state):
        procs.stop_recorded(pid, procs.start_time(pid))
    for rec in reversed(records):
        if rec["kind"] == "netns":
            try:
                delete_netns(rec["name"])
            except Exception as exc:
                errors.append(f"netns {rec['name']}: {exc}")
    for rec in reversed(records):
        if rec["kind"] == "link" and os.path.exists(f"/sys/class/net/{rec['name']}"):
            res = run(["ip", "link", "del", rec["name"]], check=False)
            if not res.ok and os.path.exists(f"/sys/class/net/{rec['name']}"):
                errors.append(f"link {rec['name']}: {res.stderr.strip()}")
    return errors


def clean_stale_runs(root: Path = STATE_ROOT) -> list[str]:
    """Undo every run directory under `root`; the caller must hold the cluster lock."""
    cleaned = []
    for state in existing_runs(root):
        undo_run(state)
        remove_run_dir(state)
        cleaned.append(state.run_id)
    return cleaned


def clean(root: Path = STATE_ROOT) -> list[str]:
    """`testbed clean`: remove a crashed run's leftovers; refuses while a cluster runs."""
    lock = ClusterLock(root)
    try:
        lock.acquire("testbed clean")
    except LeftoverError as exc:
        raise LeftoverError(f"not cleaning: {exc}") from None
    try:
        return clean_stale_runs(root)
    finally:
        lock.release()
