"""Could the machine keep up? A fidelity monitor for measurements (issue 13), after
Mininet-HiFi (Handigol et al., CoNEXT 2012): an emulator's numbers are only as good as
the CPU time it got, so sample what could make a measurement wrong while it runs and
say so beside it.

What is sampled (reads of /proc only; nothing is changed):

    /proc/stat           per CPU: busy, softirq and steal time; `procs_running`
    /proc/<pid>/stat     every task's CPU time, state and parent
    /proc/<pid>/ns/net   which network namespace it is in

A task is the emulation's when it descends from the process that runs it (Mininet's
shells, pods, iperf3, daemons: all started by it) or lives in a network namespace other
than the runner's (everything emulated lives in namespaces the testbed made). Kernel
threads (kthreadd's children: softirq work, kworkers) are the kernel's, counted as
neither. Everything else is *foreign*: another process on the machine competing for the
same CPUs.

Per interval between two snapshots (`Sample`): foreign CPU (in CPUs: 1.0 is one core
kept busy), foreign tasks runnable, steal, the busiest CPU's softirq share, overall
busy share, and the run queue (`procs_running`). A window of samples (one unit of
measurement) is judged by `judge`: `suspect` with the reasons when

    foreign CPU        > FOREIGN_CPU_MAX cores on average   (a competing process)
    foreign runnable   > FOREIGN_RUNNABLE_MAX on average    (something waited to run),
                       with foreign CPU over RUNNABLE_CPU_MIN and two samples or more
    steal              > STEAL_MAX_PCT % of CPU time        (the hypervisor took it)

and `ok` otherwise; `unknown` when nothing was sampled. Softirq share, busy share and the
run queue are recorded, not judged: an unshaped path is CPU-bound by design, so a
saturated CPU is the answer there, not a fault.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
KTHREADD = 2
FOREIGN_CPU_MAX = 0.25  # cores, mean over a window
FOREIGN_RUNNABLE_MAX = 0.5  # tasks, mean over a window
STEAL_MAX_PCT = 5.0
# a foreign task caught runnable counts only if foreign tasks also used CPU and the window
# had more than one sample: one just woken (the sampler's own tools, a timer) is runnable
# for an instant and takes nothing (seen on an idle machine: 0.5-1.0 runnable, 0.005 CPU)
RUNNABLE_CPU_MIN = 0.1
RUNNABLE_MIN_SAMPLES = 2
THRESHOLDS = {"foreign_cpu": FOREIGN_CPU_MAX, "foreign_runnable": FOREIGN_RUNNABLE_MAX,
              "steal_pct": STEAL_MAX_PCT}
OK, SUSPECT, UNKNOWN = "ok", "suspect", "unknown"
# what each reason code means, for the run's verdict
REASONS = {"foreign_cpu": "other processes used CPU",
           "foreign_runnable": "other tasks waited to run",
           "steal": "the hypervisor took CPU time (steal)",
           "unsampled": "not sampled",
           "rate": "a shaped link not at its configured rate"}
# the unit's figure behind each reason, and how to print its worst value
WORST = {"foreign_cpu": ("foreign_cpu", "{:.2f} CPU"),
         "foreign_runnable": ("foreign_runnable", "{:.1f} tasks"),
         "steal": ("steal_pct", "{:.1f} %")}


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


@dataclass(frozen=True)
class Task:
    """One task of /proc/<pid>/stat: parent, state, CPU ticks (user + system, the whole
    thread group), and its network namespace (`ns/net` link text; "" if unreadable)."""

    pid: int
    ppid: int
    state: str
    ticks: int
    netns: str = ""


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
    foreign_cpu: float  # cores used by foreign tasks
    foreign_runnable: int  # foreign tasks runnable at the end
    steal_pct: float  # of all CPU time
    softirq_max_pct: float  # the busiest CPU's softirq share
    busy_pct: float  # of all CPU time
    procs_running: int  # the run queue at the end (all tasks, the emulation's too)
    foreign: tuple[str, ...] = ()  # the foreign tasks that used CPU, "pid" strings

    def metrics(self) -> dict[str, float]:
        return {"foreign_cpu": self.foreign_cpu, "foreign_runnable": self.foreign_runnable,
                "steal_pct": self.steal_pct, "softirq_max_pct": self.softirq_max_pct,
                "busy_pct": self.busy_pct, "procs_running": self.procs_running}


@dataclass(frozen=True)
class Judgement:
    """A window's verdict, its reasons, and the averages behind it."""

    verdict: str
    reasons: tuple[str, ...] = ()  # in words, with the figure and the threshold
    codes: tuple[str, ...] = ()  # REASONS keys, one a reason
    figures: Mapping[str, float] = field(default_factory=dict)


def parse_proc_stat(text: str) -> tuple[dict[str, CpuTimes], int]:
    """Per-CPU times and `procs_running` from /proc/stat."""
    cpus: dict[str, CpuTimes] = {}
    running = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("cpu") and parts[0] != "cpu":
            values = [int(v) for v in parts[1:9]] + [0] * max(0, 8 - len(parts[1:9]))
            cpus[parts[0]] = CpuTimes(*values[:8])
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
        pid = int(head.split("(", 1)[0])
        return Task(pid, int(fields[1]), fields[0], int(fields[11]) + int(fields[12]), netns)
    except (ValueError, IndexError):
        return None


def emulation_pids(tasks: Mapping[int, Task], root: int, root_netns: str) -> set[int]:
    """The tasks that are the emulation's: `root` and its descendants, and any task in a
    network namespace other than `root_netns`."""
    children: dict[int, list[int]] = {}
    for task in tasks.values():
        children.setdefault(task.ppid, []).append(task.pid)
    own = {pid for pid, t in tasks.items() if t.netns and root_netns and t.netns != root_netns}
    seen: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return own | seen


def kernel_threads(tasks: Mapping[int, Task]) -> set[int]:
    return {pid for pid, t in tasks.items() if pid == KTHREADD or t.ppid == KTHREADD}


def sample(a: Snapshot, b: Snapshot, own: Iterable[int]) -> Sample:
    """What happened between snapshots `a` and `b`; `own`: the emulation's pids (in b)."""
    dt = max(b.t - a.t, 1e-9)
    mine = set(own) | kernel_threads(b.tasks)
    foreign_ticks = 0
    users = []
    for pid, task in b.tasks.items():
        if pid in mine:
            continue
        before = a.tasks.get(pid)
        delta = task.ticks - before.ticks if before is not None else 0
        if delta > 0:
            foreign_ticks += delta
            users.append(str(pid))
    runnable = sum(1 for pid, t in b.tasks.items() if pid not in mine and t.state == "R")
    deltas = {name: (b.cpus[name], a.cpus.get(name)) for name in b.cpus}
    total = busy = steal = 0
    softirq_max = 0.0
    for now, then in deltas.values():
        if then is None:
            continue
        d_total = now.total - then.total
        if d_total <= 0:
            continue
        total += d_total
        busy += now.busy - then.busy
        steal += now.steal - then.steal
        softirq_max = max(softirq_max, 100.0 * (now.softirq - then.softirq) / d_total)
    return Sample(a.t, b.t, foreign_ticks / CLK_TCK / dt, runnable,
                  100.0 * steal / total if total else 0.0, softirq_max,
                  100.0 * busy / total if total else 0.0, b.procs_running, tuple(users))


def overlapping(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples whose interval overlaps [start, end]."""
    return [s for s in samples if s.end > start and s.start < end]


def judge(samples: Sequence[Sample]) -> Judgement:
    """A window's verdict (see the module docstring), weighted by each sample's length."""
    if not samples:
        return Judgement(UNKNOWN, ("nothing was sampled during this measurement",),
                         ("unsampled",))
    weights = [max(s.end - s.start, 1e-9) for s in samples]
    total = sum(weights)

    def mean(metric: str) -> float:
        return sum(s.metrics()[metric] * w for s, w in zip(samples, weights)) / total

    figures = {m: mean(m) for m in ("foreign_cpu", "foreign_runnable", "steal_pct",
                                    "softirq_max_pct", "busy_pct", "procs_running")}
    figures["samples"] = float(len(samples))
    found = []
    if figures["foreign_cpu"] > FOREIGN_CPU_MAX:
        found.append(("foreign_cpu", f"other processes used {figures['foreign_cpu']:.2f} "
                                     f"CPU (more than {FOREIGN_CPU_MAX:g})"))
    if (figures["foreign_runnable"] > FOREIGN_RUNNABLE_MAX
            and figures["foreign_cpu"] > RUNNABLE_CPU_MIN
            and len(samples) >= RUNNABLE_MIN_SAMPLES):
        found.append(("foreign_runnable", f"{figures['foreign_runnable']:.1f} other "
                                          f"task(s) waiting to run (more than "
                                          f"{FOREIGN_RUNNABLE_MAX:g})"))
    if figures["steal_pct"] > STEAL_MAX_PCT:
        found.append(("steal", f"the hypervisor took {figures['steal_pct']:.1f} % of CPU "
                               f"time (steal, more than {STEAL_MAX_PCT:g} %)"))
    return Judgement(SUSPECT if found else OK, tuple(t for _, t in found),
                     tuple(c for c, _ in found), figures)


def judge_run(units: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The run as a whole, from its units' rows (`verdict`, `codes` comma-separated,
    `label`): `ok` when every unit was sampled and none was suspect; else `suspect`, a
    reason a kind: how many units, the worst figure's words, the first units concerned."""
    if not units:
        return {"verdict": SUSPECT, "reasons": ["no measurement was monitored"]}
    by_code: dict[str, list[str]] = {}
    for unit in units:
        if unit["verdict"] == OK:
            continue
        for code in str(unit["codes"]).split(","):
            if code:
                by_code.setdefault(code, []).append(str(unit["label"]))
    reasons = []
    for code, labels in by_code.items():
        worst = ""
        if code in WORST:
            column, fmt = WORST[code]
            values = [float(str(u.get(column, "nan")) or "nan") for u in units
                      if code in str(u["codes"]).split(",")]
            values = [v for v in values if v == v]  # not NaN
            worst = f", up to {fmt.format(max(values))}" if values else ""
        reasons.append(f"{len(labels)} of {len(units)} measurement(s): "
                       f"{REASONS.get(code, code)}{worst} (e.g. {', '.join(labels[:3])})")
    return {"verdict": SUSPECT if reasons else OK, "reasons": reasons}


# -- sampling the machine (reads /proc) ------------------------------------------------------

def read_snapshot(proc: str = "/proc") -> Snapshot:
    """/proc/stat and every task's stat and network namespace, now."""
    with open(f"{proc}/stat") as f:
        cpus, running = parse_proc_stat(f.read())
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
    return Snapshot(time.monotonic(), cpus, running, tasks)


class Monitor:
    """Samples the machine every `interval_s` in a thread, and on demand (`mark`), for
    as long as it runs; `samples` are what happened between consecutive snapshots. The
    emulation is `root` (default: this process) and whatever descends from it or lives in
    another network namespace (see the module docstring)."""

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
        self.samples: list[Sample] = []
        self._last: Snapshot | None = None
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
            if self._last is not None:
                own = emulation_pids(snap.tasks, self.root, self.root_netns)
                self.samples.append(sample(self._last, snap, own))
            self._last = snap
            return snap.t

    def window(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return overlapping(self.samples, start, end)
