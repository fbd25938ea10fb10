"""The fidelity monitor's pure parts on hand-made snapshots (issues 13, 23): /proc parsing,
whose task is whose, foreign CPU as the machine's busy time minus the emulation's (so a
process in a namespace of its own, a storm of short-lived processes, a steady small hog
and a burst are all seen), the verdicts of a window and of a run, and where they are
written (fidelity.csv, claims.csv, the report)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from testbed.measure import cpu_accounting
from testbed.measure import fidelity as f

HZ = f.CLK_TCK
TOL = f.TOLERANCE_TICKS

PROC_STAT = """\
cpu  300 0 200 1000 10 0 50 5 0 0
cpu0 100 0 100 500 5 0 20 0 0 0
cpu1 200 0 100 500 5 0 30 5 0 0
intr 12345
procs_running 3
procs_blocked 0
"""


def test_parse_proc_stat_per_cpu_and_run_queue() -> None:
    cpus, running = f.parse_proc_stat(PROC_STAT)
    assert sorted(cpus) == ["cpu0", "cpu1"] and running == 3  # not the aggregate line
    assert cpus["cpu1"] == f.CpuTimes(200, 0, 100, 500, 5, 0, 30, 5)
    assert cpus["cpu1"].total == 840 and cpus["cpu1"].busy == 335
    # what processes and the kernel did: user, nice, system, irq, softirq; not steal
    assert f.CpuTimes(1, 2, 4, 1000, 1000, 8, 16, 32).used == 31
    short, none = f.parse_proc_stat("cpu0 1 2 3 4\n\ncpu1 5 6 7 8 9 10 11 12 13 14\n")
    assert short["cpu0"] == f.CpuTimes(1, 2, 3, 4, 0, 0, 0, 0)  # an old kernel's line
    assert short["cpu1"] == f.CpuTimes(5, 6, 7, 8, 9, 10, 11, 12)  # past an empty line
    assert none == 0  # no procs_running line


def test_parse_task_stat_with_a_name_holding_spaces_and_parentheses() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice threads itreal starttime
    text = ("4242 (my (odd) name) R 17 4242 17 0 -1 4194304 100 0 0 0 250 30 7 5 20 0 1 0 "
            "9876 0 0")
    task = f.parse_task_stat(text, "net:[4026531840]")
    assert task == f.Task(4242, 17, "R", 280, "net:[4026531840]", 12, 9876, "my (odd) name",
                          False)
    assert task is not None and task.total == 292
    kthread = f.parse_task_stat("50 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 3 4 0 0 "
                                "20 0 1 0 12 0 0")
    assert kthread is not None and kthread.kernel  # PF_KTHREAD in flags
    assert f.parse_task_stat("garbage") is None
    assert f.parse_task_stat("12 (x) S") is None


HOST, NODE, POD, OTHER = "net:[1]", "net:[2]", "net:[3]", "net:[9]"
ROOT = 100
B = 1000  # every process of `machine()` has used this much before the first snapshot
C = 500  # and reaped children that used this much


def T(pid: int, ppid: int, ticks: int = 0, netns: str = HOST, children: int = 0,
      state: str = "S", started: int = 1, name: str = "", kernel: bool = False) -> f.Task:
    return f.Task(pid, ppid, state, ticks, netns, children, started, name or f"p{pid}",
                  kernel)


def machine(**extra: f.Task) -> list[f.Task]:
    """The runner (100) and its tree: a Mininet shell in a node's namespace (101), a
    pod's pause process under the spawn helper (103 under 102); a daemon re-parented to
    init in the node's namespace (300); init, kthreadd and a kworker; a process of
    someone else (900) and a loop started with `ip netns exec` in a namespace of its own
    (901)."""
    tasks = [T(1, 0, B, name="init", children=C), T(2, 0, B, kernel=True),
             T(50, 2, B, kernel=True), T(ROOT, 1, B, children=C),
             T(101, ROOT, B, NODE, children=C), T(102, ROOT, B, children=C),
             T(103, 102, B, POD), T(300, 1, B, NODE), T(900, 1, B), T(901, 1, B, OTHER)]
    by_pid = {t.pid: t for t in tasks}
    for t in extra.values():
        by_pid[t.pid] = t
    return list(by_pid.values())


def test_the_emulation_is_what_the_run_created_not_any_other_namespace() -> None:
    tasks = {t.pid: t for t in machine(child=T(302, 300, netns=OTHER),
                                       hog_child=T(902, 901, netns=OTHER))}
    own, netns = f.emulation(tasks, ROOT, HOST)
    # the tree, the re-parented daemon in the node's namespace and its child (even in
    # another namespace), but not the loop in a namespace of its own, nor its child
    assert own == {ROOT, 101, 102, 103, 300, 302}
    assert netns == frozenset({NODE, POD})  # never the runner's own (the machine's)
    assert f.emulation_pids(tasks, ROOT, HOST) == own
    # a namespace seen holding the emulation stays its own once the shell is gone
    later = {pid: t for pid, t in tasks.items() if pid != 101}
    assert 300 in f.emulation(later, ROOT, HOST, netns)[0]
    assert 300 not in f.emulation(later, ROOT, HOST)[0]
    # a runner that is gone leaves nothing but the namespaces it had
    assert f.emulation(tasks, 4242, HOST) == (set(), frozenset())
    assert f.kernel_threads(tasks) == {2, 50}
    assert f.kernel_threads({7: T(7, 1, kernel=True)}) == {7}  # by flag, whatever its parent
    assert f.kernel_threads({8: T(8, 2)}) == {8}  # by parent, whatever its flags
    # a namespace that could not be read ("") is nobody's: it makes nothing the emulation's
    unread = {t.pid: t for t in machine(shell=T(101, ROOT, netns=""),
                                        other=T(903, 1, netns=""))}
    assert 903 not in f.emulation(unread, ROOT, HOST)[0]
    assert f.emulation(unread, ROOT, HOST)[1] == frozenset({POD})


def cpus(used: int, steal: int = 0, softirq: int = 0, idle: int = 0,
         n: int = 2) -> dict[str, f.CpuTimes]:
    """`n` CPUs sharing `used` ticks of user time (`softirq` of it as softirq), `steal`
    and `idle` ticks, on top of what every counter held already (since boot)."""
    out = {}
    for i in range(n):
        share = used // n + (used % n if i == 0 else 0)
        soft = softirq // n + (softirq % n if i == 0 else 0)
        st = steal // n + (steal % n if i == 0 else 0)
        out[f"cpu{i}"] = f.CpuTimes(*(10_000 + i + v for v in (
            share - soft, 0, 0, idle // n, 0, 0, soft, st)))
    return out


def snap(t: float, cpu: dict[str, f.CpuTimes], tasks: list[f.Task],
         running: int = 1) -> f.Snapshot:
    return f.Snapshot(t, cpu, running, {x.pid: x for x in tasks})


def one_second(before: list[f.Task], after: list[f.Task], used: int,
               seconds: float = 1.0, **kw: int) -> f.Sample:
    """The sample of one second in which the machine was busy `used` ticks."""
    a = snap(10.0, cpus(0), before)
    b = snap(10.0 + seconds, cpus(used, **kw), after)
    own_a = f.emulation(a.tasks, ROOT, HOST)[0]
    own_b = f.emulation(b.tasks, ROOT, HOST)[0]
    return f.sample(a, b, own_b, own_a)


def cores(ticks: int, n: int = 2) -> float:
    """What `ticks` of foreign CPU in one second reads as, less the tolerance."""
    return max(ticks - TOL * n, 0) / HZ


def test_the_emulations_cpu_is_not_foreign() -> None:
    before = machine()
    after = machine(shell=T(101, ROOT, B + 80, NODE, children=C),
                    pause=T(103, 102, B + 10, POD), daemon=T(300, 1, B + 30, NODE),
                    runner=T(ROOT, 1, B + 40, children=C), kw=T(50, 2, B + 5, kernel=True))
    s = one_second(before, after, 80 + 10 + 30 + 40 + 5)
    assert s.foreign_cpu == 0.0 and s.foreign_seen_cpu == 0.0 and s.foreign == ()
    assert s.cores == 2


def test_a_loop_in_a_namespace_of_its_own_is_foreign() -> None:
    """The issue's first finding: `ip netns exec` in another namespace was taken for the
    emulation's own."""
    after = machine(shell=T(101, ROOT, B + 60, NODE, children=C),
                    loop=T(901, 1, B + HZ, OTHER, state="R", name="busy"))
    s = one_second(machine(), after, 60 + HZ)
    # the residual (a core, less the tolerance), never less than what was seen by name
    assert s.foreign_cpu == pytest.approx(1.0) and s.foreign_seen_cpu == pytest.approx(1.0)
    # and with more besides it in processes nobody saw: the residual
    more = one_second(machine(), after, 60 + HZ + 50)
    assert more.foreign_cpu == pytest.approx(cores(HZ + 50))
    assert s.foreign == (("busy (901)", pytest.approx(1.0)),) and s.foreign_runnable == 1
    assert f.judge([s]).codes == ("foreign_cpu",)
    # over half a second, twice the cores; over two seconds, half
    assert one_second(machine(), after, 60 + HZ, seconds=0.5).foreign_cpu == \
        pytest.approx(2.0)
    slow = one_second(machine(), after, 60 + HZ, seconds=2.0)
    assert slow.foreign_cpu == pytest.approx(0.5) and slow.foreign[0][1] == pytest.approx(0.5)


def test_short_lived_processes_are_counted_from_proc_stat() -> None:
    """A storm of 0.2 s processes: each starts and exits between two snapshots, so its
    CPU is in /proc/stat and in no process either snapshot holds."""
    s = one_second(machine(), machine(), 150)  # 1.5 cores busy, nobody seen using it
    assert s.foreign_cpu == pytest.approx(cores(150))
    assert s.foreign_seen_cpu == 0.0 and s.foreign == ()
    j = f.judge([s])
    assert j.verdict == "suspect" and j.codes == ("foreign_cpu",)
    assert "most of it in processes too short-lived to be seen" in j.reasons[0]
    # a foreign process that appeared meanwhile counts whole (it started in the interval)
    s2 = one_second(machine(), machine(new=T(950, 1, 30, name="new")), 30)
    assert s2.foreign_seen_cpu == pytest.approx(0.3)
    assert s2.foreign_cpu == pytest.approx(0.3)  # seen beats a residual under tolerance
    # a tick is a tick
    tick = one_second(machine(), machine(hog=T(900, 1, B + 1)), 1)
    assert tick.foreign_seen_cpu == pytest.approx(1 / HZ)
    assert tick.foreign == (("p900 (900)", pytest.approx(1 / HZ)),)


def test_an_emulation_child_that_exits_and_is_reaped_is_not_foreign() -> None:
    """A child seen with 50 ticks, then 20 more before it exits: its parent (the
    spawner) reaps it, so the parent's cutime grows by all 70. Only 20 are new: counting
    70 would hide 50 ticks of someone else's CPU."""
    before = machine(child=T(104, 102, 50, POD), sibling=T(106, 102, 300, POD))
    after = machine(spawner=T(102, ROOT, B, children=C + 70),
                    sibling=T(106, 102, 300, POD))  # alive, idle: not reaped
    hidden = 60  # a foreign storm's ticks, in /proc/stat only
    s = one_second(before, after, 20 + hidden)
    assert s.foreign_cpu == pytest.approx(cores(hidden))
    # a grandchild and its parent both gone: folded into the ancestor still alive
    before = machine(c=T(104, 102, 30, POD), g=T(105, 104, 40, POD))
    after = machine(spawner=T(102, ROOT, B, children=C + 30 + 40 + 10))
    assert one_second(before, after, 10 + hidden).foreign_cpu == pytest.approx(cores(hidden))
    # children of two parents, each reaped by its own
    before = machine(c=T(104, 102, 30, POD), d=T(107, 101, 40, NODE))
    after = machine(spawner=T(102, ROOT, B, children=C + 35),
                    shell=T(101, ROOT, B, NODE, children=C + 45))
    assert one_second(before, after, 10 + hidden).foreign_cpu == pytest.approx(cores(hidden))
    # parents that loop (a pid reused while the scan ran): the walk ends
    before = machine(c=T(104, 105, 30, POD), g=T(105, 104, 40, POD))
    assert one_second(before, machine(), hidden).foreign_cpu == pytest.approx(cores(hidden))
    # a child whose CPU all came in the interval (not seen before): all of it is new
    after = machine(spawner=T(102, ROOT, B, children=C + 70))
    assert one_second(machine(), after, 70 + hidden).foreign_cpu == pytest.approx(
        cores(hidden))


def test_a_child_reparented_to_init_takes_its_cpu_there() -> None:
    """A daemon's child that outlived its parent and was reaped by init: its CPU is in
    init's cutime, not the emulation's, so nothing is taken back from the emulation (only
    its CPU since the last snapshot, 5 ticks, is lost and reads as foreign)."""
    before = machine(child=T(104, 102, 500, POD))
    after = machine(init=T(1, 0, B, children=C + 505, name="init"))
    hidden = 60
    s = one_second(before, after, 5 + hidden)
    assert s.foreign_cpu == pytest.approx(cores(5 + hidden))
    assert s.foreign_seen_cpu == 0.0  # init's cutime is not init's own CPU
    # init's own CPU is (its cutime does not hide it)
    busy_init = machine(init=T(1, 0, B + 10, children=C + 505, name="init"))
    assert one_second(before, busy_init, 15).foreign_seen_cpu == pytest.approx(0.1)


def test_a_reused_pid_is_a_new_process() -> None:
    """Pid 901 exited and was reused: the new one's CPU is all new, not the difference."""
    before = machine(old=T(901, 1, 500, OTHER, started=5))
    after = machine(new=T(901, 1, 40, OTHER, started=9, name="reuse"))
    s = one_second(before, after, 40)
    assert s.foreign_seen_cpu == pytest.approx(0.4)
    # and an emulation pid reused: its whole CPU is the emulation's
    before = machine(old=T(104, 102, 500, POD, started=5))
    after = machine(new=T(104, 102, 40, POD, started=9))
    assert one_second(before, after, 40).foreign_cpu == 0.0


def test_kernel_threads_and_the_tolerance() -> None:
    """A kworker's CPU is the kernel's; a tick or two of tick-sampling noise per CPU is
    forgiven, no more."""
    after = machine(kw=T(50, 2, B + 30, kernel=True))
    assert one_second(machine(), after, 30).foreign_cpu == 0.0
    noise = TOL * 2  # what is forgiven on 2 CPUs
    assert one_second(machine(), machine(), noise).foreign_cpu == 0.0
    assert one_second(machine(), machine(), noise + 1).foreign_cpu == pytest.approx(1 / HZ)


def test_steal_softirq_and_busy_shares() -> None:
    a = snap(0.0, cpus(0), machine())

    def later(cpu: str, *ticks: int) -> f.CpuTimes:
        return f.CpuTimes(*(x + y for x, y in zip(
            (getattr(a.cpus[cpu], k) for k in ("user", "nice", "system", "idle", "iowait",
                                               "irq", "softirq", "steal")), ticks)))

    b = snap(1.0, {"cpu0": later("cpu0", 80, 0, 0, 0, 0, 0, 20, 0),
                   "cpu1": later("cpu1", 30, 0, 10, 50, 0, 0, 0, 10)}, machine(), running=4)
    s = f.sample(a, b, f.emulation_pids(b.tasks, ROOT, HOST))
    assert s.steal_pct == 5.0 and s.softirq_max_pct == 20.0 and s.busy_pct == 75.0
    assert s.procs_running == 4
    # steal is not CPU anyone in the guest used: not foreign
    assert s.foreign_cpu == pytest.approx((140 - 2 * TOL) / HZ)
    stolen = f.sample(a, snap(1.0, cpus(0, steal=30, idle=170), machine()), set())
    assert stolen.foreign_cpu == 0.0 and stolen.steal_pct == 15.0
    # a CPU that appeared, or whose counters did not move, adds nothing
    still = f.CpuTimes(7, 0, 0, 7, 0, 0, 0, 0)
    odd = f.sample(snap(0.0, {"cpu1": still, "cpu2": f.CpuTimes(10, 0, 0, 10, 0, 0, 0, 0)},
                        []),
                   snap(1.0, {"cpu9": f.CpuTimes(50, 0, 0, 50, 0, 0, 0, 0), "cpu1": still,
                              "cpu2": f.CpuTimes(70, 0, 0, 50, 0, 0, 0, 0)}, []), set())
    assert odd.busy_pct == 60.0 and odd.steal_pct == 0.0 and odd.softirq_max_pct == 0.0
    assert odd.foreign_cpu == pytest.approx((60 - 3 * TOL) / HZ) and odd.cores == 3
    none = f.sample(snap(0.0, {}, []), snap(1.0, {}, []), set())
    assert none.cores == 1 and none.busy_pct == 0.0 and none.foreign_cpu == 0.0
    assert none.steal_pct == 0.0


def sample_of(foreign_cpu: float = 0.0, runnable: int = 0, steal: float = 0.0,
              start: float = 0.0, end: float = 1.0, n: int = 2, seen: float = 0.0,
              who: tuple[tuple[str, float], ...] = ()) -> f.Sample:
    return f.Sample(start, end, n, foreign_cpu, seen, runnable, steal, 30.0, 70.0, 2, who)


def series(values: list[float], step: float = 0.5, **kw: float) -> list[f.Sample]:
    return [sample_of(v, start=i * step, end=(i + 1) * step, **kw)  # type: ignore[arg-type]
            for i, v in enumerate(values)]


def test_a_steady_small_hog_is_flagged_relative_to_the_cores() -> None:
    """0.24 cores all along: under the old 0.25 bar; over 10 % of 2 cores (0.2)."""
    assert pytest.approx(0.2) == f.FOREIGN_MEAN_SHARE * 2
    hog = f.judge(series([0.24] * 20))
    assert hog.verdict == "suspect" and hog.codes == ("foreign_cpu",)
    assert hog.reasons[0].startswith("CPU used outside the emulation (foreign CPU): 0.24 "
                                     "cores on average (more than 0.20: 10% of 2 cores)")
    assert f.judge(series([0.19] * 20)).verdict == "ok"
    assert f.judge([sample_of(0.2)]).verdict == "ok"  # at the threshold: not over it
    assert f.judge(series([0.21] * 20)).verdict == "suspect"
    # on 4 cores the same hog is under 10 % of the machine
    assert f.judge(series([0.24] * 20, n=4)).verdict == "ok"
    assert f.judge(series([0.41] * 20, n=4)).codes == ("foreign_cpu",)
    assert hog.figures["cores"] == 2.0 and hog.figures["samples"] == 20.0


def test_a_burst_inside_a_long_window_is_not_averaged_away() -> None:
    """A core for one second in a minute: 0.02 cores on average, 1.0 in its slices."""
    burst = [0.0] * 60 + [1.0, 1.0] + [0.0] * 58
    j = f.judge(series(burst))
    assert j.figures["foreign_cpu"] == pytest.approx(2 * 0.5 / 60)
    assert j.figures["foreign_cpu_peak"] == pytest.approx(1.0)
    assert j.verdict == "suspect" and j.codes == ("foreign_burst",)
    assert j.reasons[0].startswith("a burst of CPU used outside the emulation (foreign CPU): "
                                   "1.00 cores for 0.5 s (more than 0.50: 25% of 2 cores "
                                   "in any 0.4 s slice; 0.02 on average)")
    # the slice threshold, exactly and just over
    assert f.judge(series([0.0] * 10 + [0.5] + [0.0] * 10)).verdict == "ok"
    assert f.judge(series([0.0] * 10 + [0.51] + [0.0] * 10)).codes == ("foreign_burst",)
    # over both: said once, as the mean
    assert f.judge(series([1.0] * 4)).codes == ("foreign_cpu",)


def test_slices_are_long_enough_to_mean_something() -> None:
    """A sliver between two marks (0.05 s) holds a tick or two: it joins its neighbours
    until the slice is SLICE_S long, so one tick is not read as a core."""
    sliver = [sample_of(0.0, start=0.0, end=0.5), sample_of(2.0, start=0.5, end=0.55),
              sample_of(0.0, start=0.55, end=1.05)]
    parts = f.slices(sliver)
    assert [(p["start"], p["end"]) for p in parts] == [(0.0, 0.5), (0.5, 1.05)]
    assert parts[1]["foreign_cpu"] == pytest.approx(2.0 * 0.05 / 0.55)
    assert f.judge(sliver).codes == ()
    # a remainder too short to stand alone joins the slice before it
    tail = f.slices([sample_of(start=0, end=0.5), sample_of(1.0, start=0.5, end=0.6)])
    assert len(tail) == 1 and tail[0]["length"] == pytest.approx(0.6)
    assert tail[0]["foreign_cpu"] == pytest.approx(0.1 / 0.6)
    # a window shorter than a slice is one slice; samples out of order are sorted
    assert len(f.slices([sample_of(start=0.1, end=0.2), sample_of(start=0, end=0.1)])) == 1
    assert f.slices(series([0.0] * 4, step=0.4))[1]["start"] == pytest.approx(0.4)
    assert f.slices(series([0.0, 0.0], step=0.39))[0]["end"] == pytest.approx(0.78)
    steal = f.slices([sample_of(steal=10, start=0, end=0.3), sample_of(start=0.3, end=0.6)])
    assert steal[0]["steal_pct"] == pytest.approx(5.0)


def test_steal_on_average_and_in_a_slice() -> None:
    stolen = f.judge(series([0.0] * 4, steal=12.0))
    assert stolen.codes == ("steal",)
    assert stolen.reasons[0] == ("the hypervisor took 12.0 % of CPU time (steal, more "
                                 "than 5 %)")
    assert f.judge(series([0.0] * 4, steal=5.0)).verdict == "ok"
    spike = [sample_of(steal=30.0, start=0, end=0.5),
             *[sample_of(start=0.5 + i * 0.5, end=1.0 + i * 0.5) for i in range(20)]]
    j = f.judge(spike)
    assert j.codes == ("steal",) and "30.0 % of CPU time in a slice" in j.reasons[0]
    assert j.figures["steal_pct_peak"] == pytest.approx(30.0)
    edge = [sample_of(steal=20.0, start=0, end=0.5),
            *[sample_of(start=0.5 + i * 0.5, end=1.0 + i * 0.5) for i in range(20)]]
    assert f.judge(edge).verdict == "ok"


def test_foreign_tasks_waiting_to_run() -> None:
    # runnable for an instant, taking nothing: just woken, not competing (idle machine)
    assert f.judge(series([0.005, 0.005], runnable=1)).verdict == "ok"
    assert f.judge([sample_of(0.15, 1)]).verdict == "ok"  # one sample: an instant
    waiting = f.judge(series([0.15, 0.15], runnable=1))
    assert waiting.codes == ("foreign_runnable",)  # under the CPU bar, but it waited
    assert waiting.reasons[0] == "1.0 other task(s) waiting to run (more than 0.5)"
    assert f.judge(series([0.1, 0.1], runnable=1)).verdict == "ok"  # 5 % of 2 cores: not over
    assert f.judge(series([0.15, 0.15], runnable=0)).verdict == "ok"
    half = [sample_of(0.15, 1, start=0, end=1), sample_of(0.15, 0, start=1, end=2)]
    assert f.judge(half).verdict == "ok"  # 0.5 on average: not over
    hog = f.judge(series([1.0, 1.0], runnable=1))
    assert hog.codes == ("foreign_cpu", "foreign_runnable")
    assert f.judge([]).verdict == "unknown" and f.judge([]).codes == ("unsampled",)
    assert f.judge([]).reasons == ("nothing was sampled during this measurement",)


def test_the_reason_names_what_was_seen() -> None:
    who = (("sh (77)", 0.9), ("busy (901)", 0.05))
    j = f.judge(series([1.0, 1.0], seen=0.95, who=who))
    assert j.reasons[0].endswith("(foreign CPU): 1.00 cores on average (more than 0.20: "
                                 "10% of 2 cores); seen: sh (77) 0.90, busy (901) 0.05")
    nobody = f.judge(series([1.0, 1.0])).reasons[0]
    assert nobody.endswith("10% of 2 cores); most of it in processes too short-lived to "
                           "be seen")
    assert f.judge(series([1.0, 1.0], seen=0.4, who=(("x (1)", 0.4),))).reasons[0].endswith(
        "; seen: x (1) 0.40; most of it in processes too short-lived to be seen")
    assert f.judge(series([1.0, 1.0], seen=0.5, who=(("x (1)", 0.5),))).reasons[0].endswith(
        "; seen: x (1) 0.50")
    # a burst names what ran in its slice, not elsewhere
    calm = (("calm (5)", 0.01),)
    burst = [*series([0.0] * 10, who=calm), sample_of(1.0, start=5.0, end=5.5, seen=1.0,
                                                     who=(("loud (6)", 1.0),)),
             sample_of(0.0, start=5.5, end=6.0, who=(("after (7)", 0.01),))]
    reason = f.judge(burst).reasons[0]
    assert reason.endswith("; seen: loud (6) 1.00") and "calm" not in reason
    assert "after" not in reason
    four = tuple((f"p ({i})", 0.3 - i * 0.01) for i in range(4))
    assert "p (3)" not in f.judge(series([1.2, 1.2], seen=1.2, who=four)).reasons[0]


def test_the_busiest_foreign_processes_first_five_at_most() -> None:
    after = machine(**{f"p{i}": T(910 + i, 1, 10 * (i + 1), name=f"n{9 - i}")
                       for i in range(7)})
    s = one_second(machine(), after, 280)
    assert [n for n, _ in s.foreign] == [f"n{9 - i} ({910 + i})" for i in (6, 5, 4, 3, 2)]
    assert s.foreign[0][1] == pytest.approx(0.7)
    assert s.foreign_seen_cpu == pytest.approx(2.8)


def test_midpoint_of_two_reads_of_proc_stat() -> None:
    early = {"cpu0": f.CpuTimes(10, 20, 30, 40, 50, 60, 70, 80)}
    late = {"cpu0": f.CpuTimes(21, 40, 60, 80, 100, 120, 140, 160),
            "cpu1": f.CpuTimes(1, 1, 1, 1, 1, 1, 1, 1)}
    mid = cpu_accounting._midpoint(early, late)
    assert mid["cpu0"] == f.CpuTimes(15, 30, 45, 60, 75, 90, 105, 120)
    assert mid["cpu1"] == late["cpu1"]  # came online between the reads: the later


def test_the_monitor_remembers_the_emulations_namespaces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's shell exits (teardown) while a daemon it started, re-parented to init,
    still runs in its namespace: still the emulation's, because the monitor saw the
    namespace hold the emulation before."""
    first = snap(0.0, cpus(0), machine())
    gone = [t for t in machine(daemon=T(300, 1, B + 50, NODE)) if t.pid != 101]
    second = snap(1.0, cpus(50), gone)
    queue = [first, second]

    def fake() -> f.Snapshot:
        if not queue:
            raise OSError("no /proc")
        return queue.pop(0)

    monkeypatch.setattr(cpu_accounting, "read_snapshot", fake)  # what Monitor calls
    m = f.Monitor(interval_s=10.0, root=ROOT)
    m.root_netns = HOST
    assert m.mark() == 0.0 and m.samples == []  # one snapshot: nothing to compare yet
    assert m.mark() == 1.0 and len(m.samples) == 1
    assert m.samples[0].foreign_cpu == 0.0 and m.netns == frozenset({NODE, POD})
    assert m.window(0.5, 2.0) == m.samples and m.window(2.0, 3.0) == []
    m.mark()  # no /proc: nothing sampled
    assert len(m.samples) == 1
    # the same two snapshots without the memory: the daemon's CPU reads as foreign
    fresh = f.emulation(second.tasks, ROOT, HOST)[0]
    assert f.sample(first, second, fresh).foreign_cpu == pytest.approx(0.5)


def test_the_monitor_thread_samples_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    def fake() -> f.Snapshot:
        clock[0] += 1.0
        return snap(clock[0], cpus(0), machine())

    monkeypatch.setattr(cpu_accounting, "read_snapshot", fake)  # what Monitor calls
    with f.Monitor(interval_s=0.01, root=ROOT) as m:
        deadline = 100
        while len(m.samples) < 3 and deadline:
            import time

            time.sleep(0.01)
            deadline -= 1
    assert m._thread is not None and not m._thread.is_alive()
    count = len(m.samples)
    assert count >= 3 and all(s.foreign_cpu == 0.0 for s in m.samples)
    assert [s.end for s in m.samples] == [float(i) for i in range(2, count + 2)]


def test_overlapping_windows() -> None:
    samples = [sample_of(start=0, end=1), sample_of(start=1, end=2), sample_of(start=2, end=3)]
    assert f.overlapping(samples, 1.0, 2.0) == samples[1:2]
    assert f.overlapping(samples, 0.5, 2.5) == samples
    assert f.overlapping(samples, 5, 6) == []


def test_judge_run() -> None:
    def unit(label: str, verdict: str, codes: str = "", cpu: float = 0.0,
             peak: object = 0.0) -> dict:
        return {"label": label, "verdict": verdict, "codes": codes, "foreign_cpu": cpu,
                "foreign_cpu_peak": peak}

    assert f.judge_run([unit("a", "ok"), unit("b", "ok")]) == {"verdict": "ok", "reasons": []}
    bad = f.judge_run([unit("a", "ok"), unit("b", "suspect", "foreign_cpu", 0.8),
                       unit("c", "suspect", "foreign_cpu,steal", 1.2),
                       unit("d", "unknown", "unsampled"),
                       unit("e", "suspect", "foreign_burst", 0.1, 0.9)])
    assert bad["verdict"] == "suspect"
    assert bad["reasons"][0] == ("2 of 5 measurement(s): CPU used outside the emulation "
                                 "(foreign CPU), up to 1.20 cores on average (e.g. b, c)")
    assert bad["reasons"][1] == ("1 of 5 measurement(s): the hypervisor took CPU time "
                                 "(steal) (e.g. c)")  # no figure: none recorded
    assert bad["reasons"][2] == "1 of 5 measurement(s): not sampled (e.g. d)"
    assert bad["reasons"][3] == ("1 of 5 measurement(s): a burst of CPU used outside the "
                                 "emulation (foreign CPU), up to 0.90 cores in a slice "
                                 "(e.g. e)")
    # a unit of an older run, without the figure: the reason without it
    old = f.judge_run([unit("x", "suspect", "foreign_burst", peak="")])
    assert old["reasons"] == ["1 of 1 measurement(s): a burst of CPU used outside the "
                              "emulation (foreign CPU) (e.g. x)"]
    assert f.judge_run([]) == {"verdict": "suspect",  # nothing monitored is not `ok`
                               "reasons": ["no measurement was monitored"]}
    many = f.judge_run([unit(x, "suspect", "rate") for x in "abcd"])
    assert many["reasons"] == ["4 of 4 measurement(s): a shaped link not at its configured "
                               "rate (e.g. a, b, c)"]
    assert f.judge_run([unit("a", "suspect", "new_code")])["reasons"] == [
        "1 of 1 measurement(s): new_code (e.g. a)"]  # a code this version does not know


def test_summary_in_one_cell() -> None:
    assert f.summary({"verdict": "ok", "reasons": ""}) == "ok"
    assert f.summary({"verdict": "suspect", "reasons": "a; b"}) == "suspect: a; b"
    assert f.summary({"verdict": "unknown", "reasons": "not sampled"}) == \
        "unknown: not sampled"
    assert f.summary({"verdict": "suspect", "reasons": ""}) == "suspect"
    assert f.summary({}) == "unknown"


class FakeMonitor:
    """One sample a mark, one second long; the third foreign (a hog)."""

    def __init__(self, hog_at: float = 3.0) -> None:
        self.t = 0.0
        self.hog_at = hog_at
        self.samples: list[f.Sample] = []

    def mark(self) -> float:
        self.t += 1.0
        self.samples.append(sample_of(1.0 if self.t == self.hog_at else 0.0,
                                      start=self.t - 1, end=self.t))
        return self.t

    def window(self, start: float, end: float) -> list[f.Sample]:
        return f.overlapping(self.samples, start, end)


def test_the_log_judges_each_unit_and_keeps_earlier_ones(tmp_path: Path) -> None:
    from testbed.results.fidelity import SAMPLES_FILE, UNITS_FILE, FidelityLog, units_frame
    from testbed.results.rundir import RunDir

    run = RunDir.create(tmp_path, "t")
    log = FidelityLog(run, FakeMonitor())  # type: ignore[arg-type]
    assert log.last() == "unknown: not monitored"
    log.begin()
    assert log.unit("first", [("throughput", 1, "a", "b")]) == "suspect"  # (2, 3]: the hog
    assert log.last().startswith("suspect: CPU used outside the emulation")
    assert log.unit("second", [("throughput", 1, "c", "d"), ("throughput", 1, "c", "d")]) \
        == "ok"
    assert log.last() == "ok"
    table = units_frame(run)
    assert list(table["label"]) == ["first", "second"] and len(table) == 2
    assert table.iloc[0]["codes"] == "foreign_cpu" and float(table.iloc[0]["foreign_cpu"]) > 0
    assert float(table.iloc[0]["foreign_cpu_peak"]) == 1.0
    assert float(table.iloc[0]["cores"]) == 2.0
    assert log.unit("third", [("throughput", 2, "a", "b")], [("rate", "short")]) == "suspect"
    assert units_frame(run).iloc[-1]["codes"] == "rate"  # an experiment's own finding
    assert log.finish()["verdict"] == "suspect"
    samples = pd.read_csv(run.path / SAMPLES_FILE)
    assert set(samples["metric"]) == set(sample_of().metrics())
    # a resumed run keeps them; a unit measured again replaces its row
    again = FidelityLog(RunDir.open(run.path), FakeMonitor())  # type: ignore[arg-type]
    assert len(again.units) == 3
    again.begin()
    again.unit("first, again", [("throughput", 1, "a", "b")])
    assert sorted(units_frame(run)["label"]) == ["first, again", "second", "third"]
    (run.path / UNITS_FILE).write_text("not,our\n1,2\n")
    assert units_frame(RunDir.open(run.path)).empty


def test_an_older_runs_fidelity_and_claims_are_still_read(tmp_path: Path) -> None:
    """fidelity.csv and claims.csv as runs before issue 23 wrote them: read, the new
    columns blank (reports are regenerated and runs compared from old directories)."""
    from testbed.results.fidelity import LEGACY_UNIT_COLUMNS, units_frame
    from testbed.results.rundir import RunDir

    run = RunDir.create(tmp_path, "t")
    pd.DataFrame([{**{c: "1" for c in LEGACY_UNIT_COLUMNS}, "verdict": "suspect"}]).to_csv(
        run.path / "fidelity.csv", index=False)
    pd.DataFrame([{"claim": "c", "verdict": "confirmed", "evidence": "e", "numbers": "",
                   "statement": "s"}]).to_csv(run.path / "claims.csv", index=False)
    old = RunDir.open(run.path)
    units = units_frame(old)
    assert len(units) == 1 and units.iloc[0]["foreign_cpu_peak"] == ""
    assert units.iloc[0]["foreign_cpu"] == "1"
    assert old.claims["c"]["fidelity"] == "" and old.claims["c"]["verdict"] == "confirmed"
    old.add_claim({"claim": "d", "verdict": "refuted", "fidelity": "ok"})  # rewritten whole
    assert list(pd.read_csv(run.path / "claims.csv", keep_default_na=False)["fidelity"]) == \
        ["", "ok"]


def test_a_claims_row_carries_its_windows_fidelity(tmp_path: Path) -> None:
    """The suite judges a claim's window before it writes the verdict, so its row says
    whether the window was suspect; the verdict itself stays as measured."""
    from collections.abc import Iterator

    from experiments.claims import CLAIMS, judge
    from experiments.framework.base import Claim, Context, Params, Verdict
    from experiments.suite import run_one
    from testbed.model.load import load_spec
    from testbed.results.fidelity import FidelityLog
    from testbed.results.progress import Reporter
    from testbed.results.rundir import RunDir

    names = list(CLAIMS)

    class Quick(Claim):
        name = names[0]

        def run(self, ctx: Context) -> Iterator[Verdict]:
            yield Verdict(judge(self.name, {"ok": True}, "seen"))

    class Other(Quick):
        name = names[1]

    root = Path(__file__).resolve().parents[2]
    run = RunDir.create(tmp_path, "t")
    log = FidelityLog(run, FakeMonitor(hog_at=3.0))  # type: ignore[arg-type]
    ctx = Context(load_spec(root / "topologies" / "two-node.yaml"), run, Params(),
                  Reporter(enabled=False), fidelity=log)
    run_one(Quick(), ctx)  # its window: (2, 3], the hog's
    run_one(Other(), ctx)
    rows = pd.read_csv(run.path / "claims.csv", keep_default_na=False).set_index("claim")
    assert rows.loc[names[0], "verdict"] == "confirmed"
    assert rows.loc[names[0], "fidelity"].startswith("suspect: CPU used outside the emulation")
    assert rows.loc[names[1], "fidelity"] == "ok"


def test_the_report_says_what_was_checked_and_marks_suspect_claims() -> None:
    from testbed.results.report import claims_section, fidelity_checked, fidelity_section

    checked = fidelity_checked({**f.THRESHOLDS, "cores": 2})
    assert ("at most 0.20 cores on average over each measurement (10% of 2) and 0.50 in any "
            "0.4 s slice") in checked
    assert "process tree and the network namespaces it made" in checked
    assert "/proc/stat" in checked and "short-lived processes count" in checked
    assert "steal at most 5 % (20 % in a slice)" in checked
    assert "no other process competed" not in checked
    old = fidelity_checked({"foreign_cpu": 0.25, "steal_pct": 5.0})  # a run before issue 23
    assert "before issue 23" in old and "short-lived ones were not counted" in old
    ok = fidelity_section({"verdict": "ok", "reasons": [], "thresholds": f.THRESHOLDS},
                          pd.DataFrame({"verdict": ["ok"]}))
    assert ok[0].startswith("**Fidelity: ok**: no measurement flagged (1 unit(s) sampled")
    assert "Checked: CPU used outside the emulation" in ok[0]
    units = pd.DataFrame([{"label": "u", "verdict": "suspect", "reasons": "r",
                           "foreign_cpu": 1.0, "foreign_cpu_peak": 1.0,
                           "foreign_runnable": 0.0, "steal_pct": 0.0}])
    bad = "\n".join(fidelity_section({"verdict": "suspect", "reasons": ["x"],
                                      "thresholds": f.THRESHOLDS}, units))
    assert "**Fidelity: SUSPECT**: some measurements may be wrong: x." in bad
    assert "foreign_cpu_peak" in bad
    claims = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["confirmed"] * 3,
                           "evidence": ["e"] * 3,
                           "fidelity": ["ok", "suspect: CPU used outside", ""]})
    text = "\n".join(claims_section(claims))
    assert "**confirmed** (measured in a suspect window)" in text
    assert text.count("(measured in a suspect window)") == 1  # that claim's row only
    assert "1 claim(s) measured in a window the fidelity monitor found suspect" in text
    assert "| suspect " in text and "| -" in text
    calm = "\n".join(claims_section(claims.drop(columns="fidelity")))  # an older run
    assert "suspect" not in calm


def test_snapshot_of_this_machine() -> None:
    """Read-only and without root: this process is in it, with its parent, CPU counters
    for every CPU."""
    import os

    snap_now = f.read_snapshot()
    assert snap_now.cpus and os.getpid() in snap_now.tasks
    me = snap_now.tasks[os.getpid()]
    assert me.ppid == os.getppid() and me.started > 0 and me.name
    assert len(snap_now.cpus) == f.CORES


def test_a_process_of_our_own_is_the_emulations_and_a_loop_beside_it_is_not() -> None:
    """The real monitor, without root: a busy child of this process (the emulation's)
    is not foreign; a busy loop re-parented to init (someone else's) is."""
    import os
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\n"
                              "while time.time()-t<1.5: pass"])
    m = f.Monitor(interval_s=0.25)
    try:
        m.mark()
        time.sleep(0.3)
        m.mark()
        own = f.emulation(f.read_snapshot().tasks, os.getpid(), m.root_netns)[0]
        assert child.pid in own and os.getpid() in own
    finally:
        child.kill()
        child.wait()
    # a loop whose parent exits at once: init's, not ours
    out = subprocess.run(["sh", "-c", f"timeout 3 {sys.executable} -c 'while True: pass' "
                          ">/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    loop = int(out.stdout.split()[0])
    try:
        time.sleep(0.2)
        assert loop not in f.emulation(f.read_snapshot().tasks, os.getpid(), m.root_netns)[0]
    finally:
        os.kill(loop, 15)


def test_the_monitor_samples_less_often_when_a_snapshot_is_dear() -> None:
    """At 10,000 pods one snapshot took 0.3 s: the thread waits long enough to stay
    within MAX_SHARE of a core instead of sampling every 0.5 s."""
    m = f.Monitor(interval_s=0.5)
    assert m.wait_s() == 0.5
    m.snapshot_s = 0.03  # 1000 pods here: the interval holds
    assert m.wait_s() == 0.5
    m.snapshot_s = 0.3  # 10,000 pods: 0.3 s in every 3 s at most
    assert abs(m.wait_s() - 2.7) < 1e-9
    m.mark()
    assert 0 < m.snapshot_s < 5  # measured by mark()
    with m:
        pass
    assert m.samples and m.samples[-1].cores == f.CORES
