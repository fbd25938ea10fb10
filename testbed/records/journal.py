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

FRR keeps a crash-log directory per daemon start, `/var/tmp/frr/<daemon>.<pid>`, and
removes it only when the daemon exits through its own shutdown (a configuration check,
`-C`, exits without it; SIGKILL too). The router mounts a private tmpfs there, but each FRR
process the router starts is still recorded (`frrlog`: daemon and pid) and its directory
removed by that pid once the daemon is gone: on a machine where the private mount did not
take, or after a crash, the directory would otherwise stay in the machine's own
/var/tmp/frr, where other FRRs keep theirs.

Records are appended (one short line, one write) so that a crash at any moment leaves a
readable file; teardown and `testbed clean` undo exactly these records and nothing else.
A record is acted on only if it passes `check_record` (the testbed's own names and
directories, pids above 1 with a start time): a journal is trusted no further than that.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.errors import quote
from testbed.kernel.cgroups import V1_ROOT, V2_ROOT
from testbed.kernel.procs import start_time
from testbed.model.names import FRR_TMP, LINK_GROUP, is_own_name

STATE_ROOT = Path(os.environ.get("KTESTBED_STATE_ROOT", "/run/ktestbed"))
# The directories a run may record making outside its own: only ever removed if empty.
RECORDED_DIRS = (FRR_TMP,)
IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # what the kernel takes (no '/', no space)
NETNS_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,250}")
# FRR's daemons, by the names they give their crash-log directories (`<daemon>.<pid>`)
FRR_DAEMONS = frozenset({
    "zebra", "staticd", "bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "fabricd",
    "pimd", "ldpd", "nhrpd", "eigrpd", "babeld", "sharpd", "pbrd", "bfdd", "vrrpd", "pathd",
    "mgmtd", "watchfrr",
})
# record kinds that name something machine-wide, and the names each may have
NAMED_KINDS = {"netns": NETNS_RE, "link": IFNAME_RE, "ovsbridge": IFNAME_RE}


@dataclass
class RunState:
    """The record of one cluster run, and the directories it owns."""

    run_id: str
    directory: Path

    @property
    def journal(self) -> Path:
        return self.directory / "state.jsonl"

    def record(self, kind: str, **fields: Any) -> None:
        """Append one record (kind: netns, link, process, dir, frrlog, ...) before or as
        it is created."""
        line = json.dumps({"kind": kind, **fields}, sort_keys=True) + "\n"
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def records(self) -> list[Any]:
        """Every complete record, as written (check each with `check_record`)."""
        return read_records(self.journal)

    def rewrite(self, records: list[Any]) -> None:
        """Replace the journal with `records` (what could not be undone), atomically."""
        tmp = self.journal.with_name(".state.jsonl.tmp")
        with open(tmp, "w") as f:
            for rec in records:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.journal)

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


def read_records(journal: Path) -> list[Any]:
    """Every record of a journal, as written; a line that is not JSON comes back as its
    (bounded) text, for `check_record` to refuse. A torn last line (a crash while it was
    written: no newline yet) is skipped."""
    out: list[Any] = []
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return out
    lines = data.split(b"\n")
    if lines and lines[-1]:
        lines.pop()  # torn
    for raw in lines:
        if not raw.strip():
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:  # not JSON, not UTF-8, or a number too long to read
            out.append(raw[:100].decode(errors="replace"))
    return out


def check_record(rec: Any) -> str | None:
    """Why a record must not be acted on, or None if it may be. Only what the testbed
    itself records passes: its own interface and namespace names, its recorded
    directories, processes by a pid above 1 with their start time."""
    if not isinstance(rec, dict):
        return f"not a record: {quote(rec)}"
    kind = rec.get("kind")
    if kind == "run":
        return None  # says whose run it was; nothing to undo
    if kind == "process":
        pid, started = rec.get("pid"), rec.get("started", "missing")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1 or pid == os.getpid():
            return f"process record with pid {quote(pid)}: only pids above 1, not our own"
        if started is not None and (isinstance(started, bool) or not isinstance(started, int)
                                    or started < 0):
            return f"process {pid} without a start time ({quote(started)}): never signalled"
        return None
    if kind in NAMED_KINDS:
        name = rec.get("name")
        if (not isinstance(name, str) or not NAMED_KINDS[kind].fullmatch(name)
                or not is_own_name(name)):
            return f"{kind} record {quote(name)}: not a name the testbed gives"
        return None
    if kind == "linkgroup":
        if rec.get("group") != LINK_GROUP:
            return f"link group record {quote(rec.get('group'))}: not the testbed's group"
        return None
    if kind == "cgroup":  # a node's cpu group: directly under a cpu hierarchy's root
        path = rec.get("path")
        if (not isinstance(path, str) or Path(path).parent not in (V1_ROOT, V2_ROOT)
                or not NETNS_RE.fullmatch(Path(path).name) or not is_own_name(Path(path).name)):
            return f"cgroup record {quote(path)}: not a group the testbed makes"
        return None
    if kind == "frrlog":  # an FRR daemon's crash-log directory, by daemon and pid
        daemon, pid = rec.get("daemon"), rec.get("pid")
        if daemon not in FRR_DAEMONS:
            return f"FRR crash-log record for {quote(daemon)}: not an FRR daemon"
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
            return f"FRR crash-log record with pid {quote(pid)}: only pids above 1"
        return None
    if kind == "dir":
        if rec.get("path") not in RECORDED_DIRS:
            return f"directory record {quote(rec.get('path'))}: not one the testbed makes"
        return None
    return f"unknown record kind {quote(kind)}"


def frr_crashlog(daemon: str, pid: int, root: str = FRR_TMP) -> str:
    """The crash-log directory FRR's `daemon` makes when it starts as `pid` (FRR's
    lib/zlog.c: TMPBASEDIR/<progname>.<pid>)."""
    if daemon not in FRR_DAEMONS or isinstance(pid, bool) or pid <= 1:
        raise ValueError(f"not an FRR daemon's crash log: {quote(daemon)} {quote(pid)}")
    return os.path.join(root, f"{daemon}.{pid}")


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
