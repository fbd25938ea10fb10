"""Undo exactly what a run recorded creating; nothing found by name patterns is touched.

Used three ways: at the end of every teardown (to catch what the orderly path missed),
before a bring-up (a crashed run's leftovers, whose lock holder is gone), and by
`testbed clean`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from testbed import procs
from testbed.errors import LeftoverError
from testbed.ns import delete_netns
from testbed.state import STATE_ROOT, ClusterLock, RunState, existing_runs, remove_run_dir


def frr_daemons(state: RunState) -> list[tuple[str, int]]:
    """(daemon, pid) of this run's FRR daemons, from the pid files ipmininet makes them
    write in the run directory (`zebra_router.pid`). Read again at cleanup, for a crash
    between a daemon's start and its record."""
    out = []
    for pidfile in sorted((state.directory / "frr").glob("*.pid")):
        try:
            out.append((pidfile.name.split("_", 1)[0], int(pidfile.read_text().strip())))
        except (OSError, ValueError):
            continue
    return out


def _owned_by_run(pid: int, state: RunState) -> bool:
    """A live FRR daemon is ours if its command line names this run's directory."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return str(state.directory) in f.read().decode(errors="replace")
    except OSError:
        return False


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
    frr = frr_daemons(state)
    for _daemon, pid in frr:
        if _owned_by_run(pid, state):
            procs.stop_recorded(pid, procs.start_time(pid))
    for rec in reversed(records):
        if rec["kind"] == "netns":
            try:
                delete_netns(rec["name"])
            except Exception as exc:
                errors.append(f"netns {rec['name']}: {exc}")
    dirs = [(r["path"], bool(r.get("if_empty"))) for r in records if r["kind"] == "dir"]
    for path, if_empty in reversed(dirs):
        if if_empty:
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only if nothing else is in it
        else:
            shutil.rmtree(path, ignore_errors=True)
    links = [r["name"] for r in reversed(records)
             if r["kind"] == "link" and os.path.exists(f"/sys/class/net/{r['name']}")]
    if links:
        errors.extend(_delete_links(links))
    return errors


def _delete_links(names: list[str]) -> list[str]:
    """Delete interfaces of the machine's own namespace over one netlink socket. A link
    that vanishes meanwhile (the peer of a namespace the kernel is destroying) is fine."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    errors = []
    with IPRoute() as ipr:
        for name in names:
            try:
                ipr.link("del", ifname=name)
            except NetlinkError as exc:
                if os.path.exists(f"/sys/class/net/{name}"):
                    errors.append(f"link {name}: {exc}")
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
