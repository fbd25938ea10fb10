"""Undo exactly what a run recorded creating; nothing found by name patterns is touched.

Used three ways: at the end of every teardown (to catch what the orderly path missed),
before a bring-up (a crashed run's leftovers, whose lock holder is gone), and by
`testbed clean`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.errors import LeftoverError, quote
from testbed.kernel import cgroups, procs
from testbed.kernel.netlink import NetlinkError, RtnlSocket, group_del, link_del
from testbed.kernel.ns import delete_netns
from testbed.model.names import FRR_TMP
from testbed.records.journal import (
    STATE_ROOT,
    RunState,
    check_record,
    existing_runs,
    frr_crashlog,
    remove_run_dir,
)
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


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


# What FRR writes in a daemon's crash-log directory (lib/zlog.c, lib/zlog_targets.c):
# a log buffer per thread (unlinked as the thread ends) and, after a crash, the crash log
FRR_CRASHLOG_FILES = re.compile(r"logbuf\.[0-9]+|crashlog")


def remove_frr_crashlog(daemon: str, pid: int, root: str = FRR_TMP) -> bool:
    """Remove FRR's crash-log directory of `daemon` started as `pid`, once no live
    `daemon` has that pid (ours not stopped yet, or a new owner of the pid: the directory
    is then its). Exactly that one name, a directory not reached through a symlink, and
    in it only the files FRR writes there; nothing else in `root` is looked at, nothing is
    removed recursively (anything else in the directory is an error, and it stays).
    True if it was there and is gone."""
    path = frr_crashlog(daemon, pid, root)
    if procs.is_alive(pid) and _comm(pid) == daemon:
        return False
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(mode):
        return False  # not what FRR makes there
    for name in os.listdir(path):
        inside = os.path.join(path, name)
        if FRR_CRASHLOG_FILES.fullmatch(name) and stat.S_ISREG(os.lstat(inside).st_mode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(inside)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY:
            raise OSError(exc.errno, f"holds what FRR does not write there: "
                                     f"{sorted(os.listdir(path))[:5]}") from None
        raise
    return True


@dataclass
class Undone:
    """What undoing a run's records left: the problems, and the records kept for another
    try (those that failed, and those that were never acted on)."""

    errors: list[str] = field(default_factory=list)
    kept: list[Any] = field(default_factory=list)


def undo_run(state: RunState) -> Undone:
    """Stop recorded processes, remove the crash-log directories of recorded FRR daemons,
    delete recorded namespaces, directories (if empty) and links, acting only on records
    that pass `check_record`. The journal is rewritten to
    what is kept; the caller removes the run's directory only if nothing is."""
    result = Undone()
    valid: list[dict[str, Any]] = []
    for rec in state.records():
        problem = check_record(rec)
        if problem is None:
            valid.append(rec)
        else:
            result.errors.append(f"record not acted on: {problem}")
            result.kept.append(rec)

    def failed(rec: dict[str, Any], what: str, exc: BaseException) -> None:
        result.errors.append(f"{what}: {exc}")
        result.kept.append(rec)

    for rec in reversed([r for r in valid if r["kind"] == "process"]):
        if rec["started"] is None:
            continue  # already gone when it was recorded: nothing to stop
        try:
            procs.stop_recorded(rec["pid"], rec["started"])
        except Exception as exc:
            failed(rec, f"process {rec['pid']} ({quote(rec.get('what', ''))})", exc)
    for daemon, pid in frr_daemons(state):  # a daemon started but not yet recorded
        if pid > 1 and _owned_by_run(pid, state):
            try:
                procs.stop_recorded(pid, procs.start_time(pid))
            except Exception as exc:
                result.errors.append(f"FRR {daemon} {pid}: {exc}")
    for rec in [r for r in valid if r["kind"] == "frrlog"]:  # once the daemons are gone
        try:
            remove_frr_crashlog(rec["daemon"], rec["pid"])
        except OSError as exc:
            failed(rec, f"FRR crash log {frr_crashlog(rec['daemon'], rec['pid'])}", exc)
    for rec in reversed([r for r in valid if r["kind"] == "netns"]):
        try:
            delete_netns(rec["name"])
        except Exception as exc:
            failed(rec, f"netns {rec['name']}", exc)
    for rec in [r for r in valid if r["kind"] == "cgroup"]:  # empty once processes went
        try:
            cgroups.remove(rec["path"])
        except OSError as exc:
            failed(rec, f"cgroup {rec['path']}", exc)
    for rec in reversed([r for r in valid if r["kind"] == "dir"]):
        try:
            remove_dir_if_empty(rec["path"])
        except OSError as exc:
            failed(rec, f"directory {rec['path']}", exc)
    for rec in [r for r in valid if r["kind"] == "ovsbridge"]:
        try:
            delete_ovs_bridge(rec["name"])
        except (OSError, subprocess.SubprocessError) as exc:
            failed(rec, f"OVS bridge {rec['name']}", exc)
    links = [r for r in reversed(valid) if r["kind"] == "link"]
    groups = {r["group"] for r in valid if r["kind"] == "linkgroup"}
    errors = delete_links([r["name"] for r in links], groups.pop() if len(groups) == 1 else None)
    if errors:
        result.errors.extend(errors)
        result.kept += [r for r in links if os.path.exists(f"/sys/class/net/{r['name']}")]
        result.kept += [r for r in valid if r["kind"] == "linkgroup"]
    if result.kept:
        state.rewrite([r for r in valid if r["kind"] == "run"] + result.kept)
    return result


def delete_ovs_bridge(name: str) -> None:
    """An OVS underlay bridge goes through ovs-vsctl (a missing one is fine; without OVS
    on the machine there is nothing to delete)."""
    if shutil.which("ovs-vsctl") is None:
        return
    res = subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise OSError(f"ovs-vsctl del-br {name}: {res.stderr.strip()[:200]}")


def remove_dir_if_empty(path: str) -> None:
    """A directory the run made goes only if it is empty: anything in it is not ours."""
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
            raise


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


def clean_stale_runs(root: Path = STATE_ROOT) -> list[tuple[str, list[str]]]:
    """Undo every run directory under `root` (the caller must hold the cluster lock):
    (run id, problems) each. A run whose records could not all be undone keeps its
    directory, with only those records, for the next try."""
    cleaned = []
    for state in existing_runs(root):
        undone = undo_run(state)
        if not undone.kept:
            remove_run_dir(state)
        cleaned.append((state.run_id, undone.errors))
    return cleaned


def clean(root: Path = STATE_ROOT) -> list[tuple[str, list[str]]]:
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
