"""The fidelity monitor's pure parts: /proc parsing, whose task is whose, a sample's
figures and the verdicts (a window's and a run's), on hand-made snapshots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from testbed.measure import fidelity as f

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


def test_parse_task_stat_with_a_name_holding_spaces_and_parentheses() -> None:
    text = "4242 (my (odd) name) R 17 4242 17 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 1 0"
    task = f.parse_task_stat(text, "net:[4026531840]")
    assert task == f.Task(4242, 17, "R", 280, "net:[4026531840]")
    assert f.parse_task_stat("garbage") is None
    assert f.parse_task_stat("12 (x) S") is None


def snap(t: float, cpus: dict[str, tuple[int, ...]], tasks: list[f.Task],
         running: int = 1) -> f.Snapshot:
    return f.Snapshot(t, {n: f.CpuTimes(*v) for n, v in cpus.items()}, running,
                      {x.pid: x for x in tasks})


HOST, EMU = "net:[1]", "net:[2]"


def tasks(hog_ticks: int, runner_ticks: int, pod_ticks: int, kworker_ticks: int,
          hog_state: str = "R") -> list[f.Task]:
    return [f.Task(1, 0, "S", 0, HOST), f.Task(2, 0, "S", 0, HOST),
            f.Task(100, 1, "S", runner_ticks, HOST),  # the runner (root)
            f.Task(101, 100, "R", runner_ticks, HOST),  # its child (iperf3, a shell)
            f.Task(300, 1, "R", pod_ticks, EMU),  # reparented, but in a node's namespace
            f.Task(50, 2, "R", kworker_ticks, HOST),  # a kernel thread
            f.Task(900, 1, hog_state, hog_ticks, HOST)]  # someone else's


def test_whose_task_is_whose() -> None:
    own = f.emulation_pids({t.pid: t for t in tasks(0, 0, 0, 0)}, 100, HOST)
    assert own == {100, 101, 300}
    assert f.kernel_threads({t.pid: t for t in tasks(0, 0, 0, 0)}) == {2, 50}


def test_a_sample_counts_only_foreign_cpu() -> None:
    cpus_a = {"cpu0": (0, 0, 0, 0, 0, 0, 0, 0), "cpu1": (0, 0, 0, 0, 0, 0, 0, 0)}
    # one second later: cpu0 all busy (20 % softirq), cpu1 half idle, 10 % steal
    cpus_b = {"cpu0": (80, 0, 0, 0, 0, 0, 20, 0), "cpu1": (30, 0, 10, 50, 0, 0, 0, 10)}
    a = snap(0.0, cpus_a, tasks(0, 0, 0, 0))
    b = snap(1.0, cpus_b, tasks(f.CLK_TCK, 50, 50, 50), running=4)
    s = f.sample(a, b, f.emulation_pids(b.tasks, 100, HOST))
    assert abs(s.foreign_cpu - 1.0) < 1e-9  # the hog: a whole core; nothing else counts
    assert s.foreign_runnable == 1 and s.procs_running == 4 and s.foreign == ("900",)
    assert s.steal_pct == 5.0 and s.softirq_max_pct == 20.0 and s.busy_pct == 75.0
    # a task that appeared meanwhile counts from its next sample on, not with a guess
    c = snap(2.0, cpus_b, [*tasks(f.CLK_TCK, 50, 50, 50), f.Task(901, 1, "R", 999, HOST)])
    assert f.sample(b, c, f.emulation_pids(c.tasks, 100, HOST)).foreign_cpu == 0.0


def sample_of(foreign_cpu: float = 0.0, runnable: int = 0, steal: float = 0.0,
              start: float = 0.0, end: float = 1.0) -> f.Sample:
    return f.Sample(start, end, foreign_cpu, runnable, steal, 30.0, 70.0, 2)


def test_judge_a_window() -> None:
    ok = f.judge([sample_of(0.05), sample_of(0.1, start=1, end=2)])
    assert ok.verdict == "ok" and ok.reasons == () and ok.figures["samples"] == 2
    hog = f.judge([sample_of(1.0, 1), sample_of(0.9, 1, start=1, end=2)])
    assert hog.verdict == "suspect" and hog.codes == ("foreign_cpu", "foreign_runnable")
    assert "other processes used 0.95 CPU (more than 0.25)" in hog.reasons
    # runnable for an instant, taking nothing: just woken, not competing (idle machine)
    woken = f.judge([sample_of(0.005, 1), sample_of(0.005, 1, start=1, end=2)])
    assert woken.verdict == "ok"
    assert f.judge([sample_of(0.2, 1)]).verdict == "ok"  # one sample: an instant
    waiting = f.judge([sample_of(0.2, 1), sample_of(0.2, 1, start=1, end=2)])
    assert waiting.codes == ("foreign_runnable",)  # under the CPU bar, but it waited
    stolen = f.judge([sample_of(steal=12.0)])
    assert stolen.codes == ("steal",) and "12.0 %" in stolen.reasons[0]
    # weighted by time: a short burst inside a long quiet window stays under the bar
    burst = f.judge([sample_of(1.0, end=0.1), sample_of(0.0, start=0.1, end=2.0)])
    assert burst.verdict == "ok" and abs(burst.figures["foreign_cpu"] - 0.05) < 1e-9
    assert f.judge([]).verdict == "unknown" and f.judge([]).codes == ("unsampled",)
    # at the thresholds exactly: not suspect
    edge = f.judge([sample_of(f.FOREIGN_CPU_MAX, steal=f.STEAL_MAX_PCT)])
    assert edge.verdict == "ok"


def test_overlapping_windows() -> None:
    samples = [sample_of(start=0, end=1), sample_of(start=1, end=2), sample_of(start=2, end=3)]
    assert f.overlapping(samples, 1.0, 2.0) == samples[1:2]
    assert f.overlapping(samples, 0.5, 2.5) == samples
    assert f.overlapping(samples, 5, 6) == []


def test_judge_run() -> None:
    def unit(label: str, verdict: str, codes: str = "", cpu: float = 0.0) -> dict:
        return {"label": label, "verdict": verdict, "codes": codes, "foreign_cpu": cpu}

    assert f.judge_run([unit("a", "ok"), unit("b", "ok")]) == {"verdict": "ok", "reasons": []}
    bad = f.judge_run([unit("a", "ok"), unit("b", "suspect", "foreign_cpu", 0.8),
                       unit("c", "suspect", "foreign_cpu,steal", 1.2),
                       unit("d", "unknown", "unsampled")])
    assert bad["verdict"] == "suspect"
    assert bad["reasons"][0] == ("2 of 4 measurement(s): other processes used CPU, up to "
                                 "1.20 CPU (e.g. b, c)")
    assert bad["reasons"][1].startswith("1 of 4 measurement(s): the hypervisor took")
    assert bad["reasons"][2] == "1 of 4 measurement(s): not sampled (e.g. d)"
    assert f.judge_run([])["verdict"] == "suspect"  # nothing monitored is not `ok`


def test_the_log_judges_each_unit_and_keeps_earlier_ones(tmp_path: Path) -> None:
    from testbed.results.fidelity import SAMPLES_FILE, UNITS_FILE, FidelityLog, units_frame
    from testbed.results.rundir import RunDir

    class FakeMonitor:
        def __init__(self) -> None:
            self.t = 0.0
            self.samples: list[f.Sample] = []

        def mark(self) -> float:
            self.t += 1.0
            self.samples.append(sample_of(1.0 if self.t == 3 else 0.0, start=self.t - 1,
                                          end=self.t))
            return self.t

        def window(self, start: float, end: float) -> list[f.Sample]:
            return f.overlapping(self.samples, start, end)

    run = RunDir.create(tmp_path, "t")
    log = FidelityLog(run, FakeMonitor())  # type: ignore[arg-type]
    log.begin()
    assert log.unit("first", [("throughput", 1, "a", "b")]) == "suspect"  # (2, 3]: the hog
    assert log.unit("second", [("throughput", 1, "c", "d"), ("throughput", 1, "c", "d")]) \
        == "ok"
    table = units_frame(run)
    assert list(table["label"]) == ["first", "second"] and len(table) == 2
    assert table.iloc[0]["codes"] == "foreign_cpu" and float(table.iloc[0]["foreign_cpu"]) > 0
    assert log.unit("third", [("throughput", 2, "a", "b")], [("rate", "short")]) == "suspect"
    assert units_frame(run).iloc[-1]["codes"] == "rate"  # an experiment's own finding
    assert log.finish()["verdict"] == "suspect"
    samples = pd.read_csv(run.path / SAMPLES_FILE)
    assert set(samples["metric"]) == set(f.Sample(0, 1, 0, 0, 0, 0, 0, 0).metrics())
    # a resumed run keeps them; a unit measured again replaces its row
    again = FidelityLog(RunDir.open(run.path), FakeMonitor())  # type: ignore[arg-type]
    assert len(again.units) == 3
    again.begin()
    again.unit("first, again", [("throughput", 1, "a", "b")])
    assert sorted(units_frame(run)["label"]) == ["first, again", "second", "third"]
    (run.path / UNITS_FILE).write_text("not,our\n1,2\n")
    assert units_frame(RunDir.open(run.path)).empty


def test_snapshot_of_this_machine() -> None:
    """Read-only and without root: this process is in it, with its parent."""
    import os

    snap_now = f.read_snapshot()
    assert snap_now.cpus and os.getpid() in snap_now.tasks
    assert snap_now.tasks[os.getpid()].ppid == os.getppid()


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
