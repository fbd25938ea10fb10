"""The fidelity monitor on real runs (issues 13, 23): CPU used beside a run makes it
`suspect` with a reason naming foreign CPU, however it is used: a full-core loop in a
network namespace of its own (`ip netns exec`, which the monitor once took for the
emulation's), or a storm of 0.2 s processes that each start and exit between two
snapshots (CPU only /proc/stat holds). A run beside nothing is `ok` on a quiet machine.

Each run is one `--quick` throughput experiment (the cheapest thing that brings up a
cluster and measures under the monitor): about 15 s here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from testbed.measure import fidelity as f

from .conftest import ROOT, machine_snapshot

RUN_PY = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "experiments" / "run.py"),
          "--quick", "--experiment", "throughput", "--no-progress"]
LOOP = "while :; do :; done"


def _run(out: Path) -> dict:
    started = time.monotonic()
    res = subprocess.run([*RUN_PY, "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    meta = json.loads((run_dir / "metadata.json").read_text())
    meta["_units"] = pd.read_csv(run_dir / "fidelity.csv", keep_default_na=False)
    meta["_report"] = (run_dir / "report.md").read_text()
    meta["_samples"] = pd.read_csv(run_dir / "fidelity_samples.csv")
    meta["_took_s"] = time.monotonic() - started
    return meta


def _quiet(seconds: float = 2.0) -> float:
    """Foreign CPU on this machine now (cores, mean), this test's own processes aside."""
    with f.Monitor(interval_s=0.5) as m:
        time.sleep(seconds)
    return f.judge(m.samples).figures["foreign_cpu"]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to `timeout`, which passes it on (a SIGKILL would orphan the loop)."""
    proc.terminate()
    proc.wait(timeout=10)


def _assert_flagged(run: dict, min_cpu: float = 0.5) -> pd.DataFrame:
    units = run["_units"]
    assert run["fidelity"]["verdict"] == "suspect", units.to_string()
    assert any("foreign CPU" in r for r in run["fidelity"]["reasons"]), run["fidelity"]
    assert (units["verdict"] == "suspect").sum() >= len(units) - 1, units.to_string()
    assert units["foreign_cpu"].astype(float).max() > min_cpu, units.to_string()
    assert "**Fidelity: SUSPECT**" in run["_report"]
    assert "Checked: CPU used outside the emulation" in run["_report"]
    assert run["_took_s"] < 60
    return units


def test_a_loop_in_a_network_namespace_of_its_own_is_foreign(tmp_path: Path) -> None:
    before = machine_snapshot()
    name = f"fidtest-{os.getpid()}"  # not a testbed name: nothing of the run's
    subprocess.run(["ip", "netns", "add", name], check=True)
    hog = None
    try:
        hog = subprocess.Popen(["ip", "netns", "exec", name, "timeout", "120", "sh", "-c",
                                LOOP])
        time.sleep(0.3)
        loops = _children(hog.pid)  # `ip netns exec` execs timeout; the loop is its child
        assert loops, "the loop did not start"
        busy = _run(tmp_path / "netns")
    finally:
        if hog is not None:
            _stop(hog)
        subprocess.run(["ip", "netns", "del", name], check=False)
    units = _assert_flagged(busy)
    # the loop itself is named: seen, and not taken for the emulation's
    assert any(f"sh ({loops[0]})" in r for r in units["reasons"]), units.to_string()
    assert machine_snapshot() == before


def test_a_storm_of_short_lived_processes_is_foreign(tmp_path: Path) -> None:
    before = machine_snapshot()
    storm = subprocess.Popen(["timeout", "120", "sh", "-c",
                              f"while :; do timeout 0.2 sh -c '{LOOP}'; done"])
    try:
        busy = _run(tmp_path / "storm")
    finally:
        _stop(storm)
        time.sleep(0.3)  # the last 0.2 s process ends by itself
    # the storm gets what the emulation leaves it (0.36-0.40 cores in one CI run): above
    # the mean threshold, 10 % of the cores, is what must show
    units = _assert_flagged(busy, f.FOREIGN_MEAN_SHARE * f.CORES)
    samples = busy["_samples"]
    assert set(samples["metric"]) >= {"foreign_cpu", "foreign_seen_cpu", "steal_pct"}
    # most of the storm's CPU was in no snapshot: only /proc/stat's residual holds it
    per_unit = units[units["verdict"] == "suspect"]
    assert (per_unit["foreign_cpu"].astype(float)
            > per_unit["foreign_seen_cpu"].astype(float) + 0.1).any(), units.to_string()
    assert machine_snapshot() == before


def test_a_run_beside_nothing_is_ok_on_a_quiet_machine(tmp_path: Path) -> None:
    """CI's machine is quiet; a shared development machine may not be, and then `ok`
    would be wrong: the check is made only when the machine was quiet just before."""
    baseline = _quiet()
    if baseline > f.FOREIGN_MEAN_SHARE * f.CORES / 2:
        if os.environ.get("CI"):
            pytest.fail(f"CI's machine is not quiet: {baseline:.2f} cores used beside us")
        pytest.skip(f"the machine is busy ({baseline:.2f} cores used by others just now): "
                    "an `ok` cannot be expected")
    before = machine_snapshot()
    idle = _run(tmp_path / "idle")
    units = idle["_units"]
    assert len(units) == 4
    # nothing ran beside it: no unit may be flagged for foreign CPU. Steal is the
    # hypervisor's, judged on its own, and real on these VMs when both cores are busy
    # (20-35 % in bursts, 2026-12-08): a unit flagged for it alone is right to be
    codes = {c for cell in units["codes"] for c in str(cell).split(",") if c}
    assert codes <= {"steal", "steal_burst"}, units.to_string()
    if not codes:
        assert idle["fidelity"]["verdict"] == "ok" and "**Fidelity: ok**" in idle["_report"]
    assert idle["_took_s"] < 60
    assert machine_snapshot() == before


if __name__ == "__main__":  # the baseline alone: python -m tests.integration.test_fidelity
    print(f"{_quiet(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0):.3f} cores")
