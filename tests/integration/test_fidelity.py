"""The fidelity monitor on real runs: a CPU hog beside a run makes it `suspect` with the
reason; the same run without one is `ok`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .conftest import ROOT, machine_snapshot

RUN_PY = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "experiments" / "run.py"),
          "--quick", "--experiment", "throughput", "--no-progress"]


def _run(out: Path) -> dict:
    res = subprocess.run([*RUN_PY, "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    meta = json.loads((run_dir / "metadata.json").read_text())
    meta["_units"] = pd.read_csv(run_dir / "fidelity.csv")
    meta["_report"] = (run_dir / "report.md").read_text()
    meta["_samples"] = pd.read_csv(run_dir / "fidelity_samples.csv")
    return meta


def test_a_cpu_hog_beside_a_run_is_flagged_and_an_idle_run_is_not(tmp_path: Path) -> None:
    before = machine_snapshot()
    idle = _run(tmp_path / "idle")
    # one busy loop, not a descendant of the run, bounded in time
    hog = subprocess.Popen(["timeout", "120", sys.executable, "-c", "while True: pass"])
    try:
        busy = _run(tmp_path / "busy")
    finally:  # SIGTERM: timeout passes it on to the loop (a SIGKILL would orphan it)
        hog.terminate()
        hog.wait(timeout=10)
    assert idle["fidelity"]["verdict"] == "ok", idle["_units"].to_string()
    assert (idle["_units"]["verdict"] == "ok").all() and len(idle["_units"]) == 4
    assert "**Fidelity: ok**" in idle["_report"]
    assert busy["fidelity"]["verdict"] == "suspect"
    assert "other processes used CPU" in busy["fidelity"]["reasons"][0]
    units = busy["_units"]
    assert (units["verdict"] == "suspect").sum() >= 3, units.to_string()
    assert units["foreign_cpu"].max() > 0.5  # the hog's core, seen
    assert "**Fidelity: SUSPECT**" in busy["_report"]
    assert set(busy["_samples"]["metric"]) >= {"foreign_cpu", "steal_pct", "procs_running"}
    assert machine_snapshot() == before
