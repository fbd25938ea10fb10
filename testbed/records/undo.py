"""Undo exactly what a run recorded creating; nothing found by name patterns is touched.

Used three ways: at the end of every teardown (to catch what the orderly path missed),
before a bring-up (a crashed run's leftovers, whose lock holder is gone), and by
`testbed clean`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from testbed.errors import LeftoverError
from testbed.kernel import procs
from testbed.kernel.netlink import NetlinkError, RtnlSocket, group_del, link_del
from testbed.kernel.ns import delete_netns
from testbed.records.journal import STATE_ROOT, RunState, existing_runs, remove_run_dir
from testbed.records.lock import ClusterLock


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
    links = [r["name"] for r in reversed(records) if r["kind"] == "link"]
    groups = {int(r["group"]) for r in records if r["kind"] == "linkgroup"}
    errors.extend(delete_links(links, groups.pop() if len(groups) == 1 else None))
    return errors


def _group_members(group: int) -> set[str]:
    """Names of the machine namespace's links in a link group (from /sys)."""
    members = set()
    for name in os.listdir("/sys/class/net"):
        with contextlib.suppress(OSError, ValueError), \
                open(f"/sys/class/net/{name}/netdev_group") as f:
            if int(f.read()) == group:
                members.add(name)
    return members


def delete_links(names: list[str], group: int | None = None) -> list[str]:
    """Delete interfaces of the machine's own namespace; return any errors.

    With `group`, and when every link in that group is one of `names`, one request deletes
    them all (the kernel then waits for readers once, not once a link). Otherwise they go
    one by one. A link that vanishes meanwhile (the peer of a namespace the kernel is
    destroying) is fine.
    """
    present = [n for n in names if os.path.exists(f"/sys/class/net/{n}")]
    errors: list[str] = []
    with RtnlSocket() as sock:
        if group is not None and present:
            members = _group_members(group)
            if members and members <= set(names):
                try:
                    sock.request([group_del(group)], [f"links of group {group:#x}"])
                except NetlinkError as exc:
                    if exc.errno != errno.ENODEV:
                        errors.append(str(exc))
                present = [n for n in present if os.path.exists(f"/sys/class/net/{n}")]
        for name in present:
            try:
                sock.request([link_del(name)], [f"link {name}"])
            except NetlinkError as exc:
                if os.path.exists(f"/sys/class/net/{name}"):
                    errors.append(str(exc))
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
