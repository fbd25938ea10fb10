"""The fidelity monitor's accounting (testbed.measure.fidelity says why and judges): the
machine's CPU time from /proc/stat, each task's from /proc/<pid>/stat, which tasks are the
emulation's (its process tree and the network namespaces it put a process in) and which
are kernel threads, and the foreign CPU of an interval as the machine's busy time minus
the emulation's and the kernel's. `Monitor` samples a running emulation in a thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CORES = os.cpu_count() or 1
KTHREADD = 2
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat `flags`: a kernel thread
TOLERANCE_TICKS = 1  # per CPU per interval: tick-sampling noise, forgiven


@dataclass(frozen=True)
class CpuTimes:
    """One CPU line of /proc/stat, in clock ticks."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return (self.user + self.nice + self.system + self.idle + self.iowait + self.irq
                + self.softirq + self.steal)

    @property
    def busy(self) -> int:
        return self.total - self.idle - self.iowait

    @property
    def used(self) -> int:
        """What processes and the kernel did on this CPU (see the module docstring): busy
        but for steal, which the hypervisor took."""
        return self.user + self.nice + self.system + self.irq + self.softirq


@dataclass(frozen=True)
class Task:
    """One process of /proc/<pid>/stat: parent, state, CPU ticks (utime + stime, its whole
    thread group), its network namespace (`ns/net` link text; "" if unreadable), the CPU
    of the children it reaped (cutime + cstime), start time (ticks since boot), name and
    whether it is a kernel thread."""

    pid: int
    ppid: int
    state: str
    ticks: int
    netns: str = ""
    children: int = 0
    started: int = 0
    name: str = ""
    kernel: bool = False

    @property
    def total(self) -> int:
        return self.ticks + self.children


@dataclass(frozen=True)
class Snapshot:
    """The machine at one moment (monotonic seconds `t`)."""

    t: float
    cpus: Mapping[str, CpuTimes]  # "cpu0", "cpu1", ... (not the aggregate line)
    procs_running: int
    tasks: Mapping[int, Task]


@dataclass(frozen=True)
class Sample:
    """What happened between two snapshots (`start` to `end`, monotonic seconds)."""

    start: float
    end: float
    cores: int  # the CPUs /proc/stat listed
    foreign_cpu: float  # cores used outside the emulation (module docstring)
    foreign_seen_cpu: float  # of which by foreign processes seen in both snapshots
    foreign_runnable: int  # foreign tasks runnable at the end
    steal_pct: float  # of all CPU time
    softirq_max_pct: float  # the busiest CPU's softirq share
    busy_pct: float  # of all CPU time
    procs_running: int  # the run queue at the end (all tasks, the emulation's too)
    # the foreign processes seen using CPU, the busiest first: ("name (pid)", cores)
    foreign: tuple[tuple[str, float], ...] = ()

    def metrics(self) -> dict[str, float]:
        return {"foreign_cpu": self.foreign_cpu, "foreign_seen_cpu": self.foreign_seen_cpu,
                "foreign_runnable": self.foreign_runnable, "steal_pct": self.steal_pct,
                "softirq_max_pct": self.softirq_max_pct, "busy_pct": self.busy_pct,
                "procs_running": self.procs_running}


def parse_proc_stat(text: str) -> tuple[dict[str, CpuTimes], int]:
    """Per-CPU times and `procs_running` from /proc/stat."""
    cpus: dict[str, CpuTimes] = {}
    running = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("cpu") and parts[0] != "cpu":
            # an older kernel's line is shorter: the missing counters are 0
            cpus[parts[0]] = CpuTimes(*([int(v) for v in parts[1:9]] + [0] * 8)[:8])
        elif parts[0] == "procs_running":
            running = int(parts[1])
    return cpus, running


def parse_task_stat(text: str, netns: str = "") -> Task | None:
    """A task from /proc/<pid>/stat (its name may hold spaces and parentheses: the
    fields after the last ')' are fixed); None if the text is not one."""
    head, sep, tail = text.rpartition(")")
    if not sep:
        return None
    fields = tail.split()
    try:
        pid_text, _, name = head.partition("(")
        return Task(int(pid_text), int(fields[1]), fields[0],
                    int(fields[11]) + int(fields[12]), netns,
                    int(fields[13]) + int(fields[14]), int(fields[19]), name,
                    bool(int(fields[6]) & PF_KTHREAD))
    except (ValueError, IndexError):
        return None


def descendants(tasks: Mapping[int, Task], seeds: Iterable[int]) -> set[int]:
    """`seeds` (those present) and every task descending from one."""
    children: dict[int, list[int]] = {}
    for task in tasks.values():
        children.setdefault(task.ppid, []).append(task.pid)
    seen: set[int] = set()
    todo = [pid for pid in seeds if pid in tasks]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


def emulation(tasks: Mapping[int, Task], root: int, root_netns: str,
              known: Iterable[str] = ()) -> tuple[set[int], frozenset[str]]:
    """The emulation's tasks and network namespaces: `root`'s tree, the namespaces its
    tasks are in (but `root_netns`) together with `known` ones, every task in one of
    them, and their descendants (see the module docstring)."""
    tree = descendants(tasks, [root])
    netns = set(known)
    netns.update(tasks[pid].netns for pid in tree if tasks[pid].netns)
    netns.discard(root_netns)
    inside = [pid for pid, t in tasks.items() if t.netns in netns]
    return descendants(tasks, [*tree, *inside]), frozenset(netns)


def emulation_pids(tasks: Mapping[int, Task], root: int, root_netns: str) -> set[int]:
    """The emulation's tasks in one snapshot (`emulation` without memory)."""
    return emulation(tasks, root, root_netns)[0]


def kernel_threads(tasks: Mapping[int, Task]) -> set[int]:
    return {pid for pid, t in tasks.items()
            if t.kernel or pid == KTHREADD or t.ppid == KTHREADD}


def _before(a: Snapshot, task: Task) -> Task | None:
    """The same process in the earlier snapshot (same pid and start time), or None."""
    then = a.tasks.get(task.pid)
    return then if then is not None and then.started == task.started else None


def _grown(a: Snapshot, task: Task, total: bool) -> int:
    """What a process used since snapshot `a` (all of it if it is new)."""
    now = task.total if total else task.ticks
    then = _before(a, task)
    if then is None:
        return now
    return max(0, now - (then.total if total else then.ticks))


def reaped_since(a: Snapshot, b: Snapshot, own_a: Iterable[int], own_b: set[int]) -> int:
    """The ticks, already counted in earlier intervals, of emulation processes of `a` that
    are gone in `b`: each is charged to its nearest ancestor (in `a`) still alive in the
    emulation in `b`, capped by how much that ancestor's cutime + cstime grew (what it
    really reaped: a child re-parented to init is not in it)."""
    alive = {pid for pid in own_b if _before(a, b.tasks[pid]) is not None}
    folded: dict[int, int] = {}
    for pid in own_a:
        then = a.tasks.get(pid)
        now = b.tasks.get(pid)
        if then is None or (now is not None and now.started == then.started):
            continue
        ancestor, visited = then.ppid, set()
        # (a scan is not atomic: a reused pid could make a loop of parents)
        while ancestor not in alive and ancestor in a.tasks and ancestor not in visited:
            visited.add(ancestor)
            ancestor = a.tasks[ancestor].ppid
        if ancestor in alive:
            folded[ancestor] = folded.get(ancestor, 0) + then.total
    out = 0
    for pid, ticks in folded.items():
        grew = b.tasks[pid].children - a.tasks[pid].children
        out += min(ticks, max(grew, 0))
    return out


def sample(a: Snapshot, b: Snapshot, own: Iterable[int],
           own_a: Iterable[int] | None = None) -> Sample:
    """What happened between snapshots `a` and `b`; `own`: the emulation's pids in b,
    `own_a` in a (default: the same pids)."""
    dt = max(b.t - a.t, 1e-9)
    own_b = set(own)
    kernel = kernel_threads(b.tasks)
    emu = sum(_grown(a, b.tasks[pid], True) for pid in own_b if pid in b.tasks)
    emu -= reaped_since(a, b, own_b if own_a is None else own_a, own_b)
    kernel_ticks = sum(_grown(a, b.tasks[pid], False) for pid in kernel - own_b)
    seen: list[tuple[int, str]] = []
    for pid, task in b.tasks.items():
        if pid in own_b or pid in kernel:
            continue
        grew = _grown(a, task, False)
        if grew > 0:
            seen.append((grew, f"{task.name} ({pid})"))
    seen.sort(key=lambda x: -x[0])
    seen_ticks = sum(t for t, _ in seen)
    runnable = sum(1 for pid, t in b.tasks.items()
                   if pid not in own_b and pid not in kernel and t.state == "R")
    machine = total = busy = steal = 0
    softirq_max = 0.0
    for name, now in b.cpus.items():
        then = a.cpus.get(name)
        if then is None:
            continue
        d_total = now.total - then.total
        if d_total <= 0:
            continue
        total += d_total
        machine += now.used - then.used
        busy += now.busy - then.busy
        steal += now.steal - then.steal
        softirq_max = max(softirq_max, 100.0 * (now.softirq - then.softirq) / d_total)
    cores = len(b.cpus) or 1
    residual = machine - emu - kernel_ticks - TOLERANCE_TICKS * cores
    foreign_ticks = max(residual, seen_ticks)  # (seen_ticks is never below 0)
    per_core = CLK_TCK * dt
    return Sample(a.t, b.t, cores, foreign_ticks / per_core, seen_ticks / per_core, runnable,
                  100.0 * steal / total if total else 0.0, softirq_max,
                  100.0 * busy / total if total else 0.0, b.procs_running,
                  tuple((name, ticks / per_core) for ticks, name in seen[:5]))


def overlapping(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples whose interval overlaps [start, end]."""
    return [s for s in samples if s.end > start and s.start < end]


def _read_cpus(proc: str) -> tuple[dict[str, CpuTimes], int]:
    with open(f"{proc}/stat") as f:
        return parse_proc_stat(f.read())


def _midpoint(a: Mapping[str, CpuTimes], b: Mapping[str, CpuTimes]) -> dict[str, CpuTimes]:
    """Each CPU's counters halfway between two reads (a CPU in only one: the later)."""
    out = {}
    for name, late in b.items():
        early = a.get(name, late)
        out[name] = CpuTimes(*[(x + y) // 2 for x, y in zip(
            (early.user, early.nice, early.system, early.idle, early.iowait, early.irq,
             early.softirq, early.steal),
            (late.user, late.nice, late.system, late.idle, late.iowait, late.irq,
             late.softirq, late.steal))])
    return out


def read_snapshot(proc: str = "/proc") -> Snapshot:
    """Every task's stat and network namespace, now; /proc/stat before and after the scan,
    its midpoint kept (a scan takes 0.03 s at 1000 pods: while the emulation keeps two
    cores busy that is 6 ticks, read on one side only, which is not someone else's)."""
    t0 = time.monotonic()
    cpus0, _ = _read_cpus(proc)
    tasks: dict[int, Task] = {}
    with os.scandir(proc) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"{proc}/{entry.name}/stat") as f:
                    text = f.read()
            except OSError:  # gone meanwhile
                continue
            try:
                netns = os.readlink(f"{proc}/{entry.name}/ns/net")
            except OSError:  # gone, or not ours to read (not root)
                netns = ""
            task = parse_task_stat(text, netns)
            if task is not None:
                tasks[task.pid] = task
    cpus1, running = _read_cpus(proc)
    return Snapshot((t0 + time.monotonic()) / 2, _midpoint(cpus0, cpus1), running, tasks)


class Monitor:
    """Samples the machine every `interval_s` in a thread, and on demand (`mark`), for
    as long as it runs; `samples` are what happened between consecutive snapshots. The
    emulation is `root` (default: this process), what descends from it, and what lives
    in a network namespace it put a process in (see the module docstring)."""

    # the monitor's own share of one core, at most: a snapshot reads every task's /proc
    # files (0.03 s with 1000 pods here, 0.3 s with 10,000), so on a big cluster the
    # thread samples less often rather than becoming the load it is there to detect
    MAX_SHARE = 0.1

    def __init__(self, interval_s: float = 0.5, root: int | None = None) -> None:
        self.interval_s = interval_s
        self.snapshot_s = 0.0  # what the last snapshot took
        self.root = os.getpid() if root is None else root
        try:
            self.root_netns = os.readlink(f"/proc/{self.root}/ns/net")
        except OSError:
            self.root_netns = ""
        self.netns: frozenset[str] = frozenset()  # the emulation's, as seen so far
        self.samples: list[Sample] = []
        self._last: Snapshot | None = None
        self._last_own: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.mark()
        self._thread = threading.Thread(target=self._loop, name="fidelity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.mark()

    def wait_s(self) -> float:
        """Seconds until the next periodic snapshot: the interval, or longer when a
        snapshot costs more than MAX_SHARE of it."""
        return max(self.interval_s, self.snapshot_s / self.MAX_SHARE - self.snapshot_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.wait_s()):
            self.mark()

    def mark(self) -> float:
        """A snapshot now; the sample since the last one is kept. Returns its time."""
        with self._lock:
            t0 = time.monotonic()
            try:
                snap = read_snapshot()
            except OSError:  # no /proc: nothing sampled, verdicts say `unknown`
                return time.monotonic()
            self.snapshot_s = time.monotonic() - t0
            own, self.netns = emulation(snap.tasks, self.root, self.root_netns, self.netns)
            if self._last is not None:
                self.samples.append(sample(self._last, snap, own, self._last_own))
            self._last, self._last_own = snap, own
            return snap.t

    def window(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return overlapping(self.samples, start, end)
