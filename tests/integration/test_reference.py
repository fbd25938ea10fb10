"""Did this change the numbers? The same run as the stored reference (results/reference/
two-node-throughput: `experiments/run.py --experiment throughput`), made now with ROUNDS
rounds, compared with it by `testbed compare --gate ratios --clean-rounds
--fail-on-difference`: "same within the margin" (exit 0) passes, "differs" (1) fails with
the comparison's words.

The gate is the verdicts and the paired ratios: absolute figures move 2-3x between
machines of a kind, ratios measured in the same round do not. Only rounds measured in
windows the fidelity monitor judged `ok` are compared (`--clean-rounds`, on both sides):
on these VMs the hypervisor took 20-35 % of the CPU (steal) for seconds at a time while
both cores were busy, and flagged 7-13 of 40-56 units of a run made with nothing else
running, so a whole run is rarely clean while most of its rounds are. A new run with
fewer than MIN_CLEAN clean rounds is made once more; short again, the test fails with the
monitor's reasons: it never skips.

"Cannot tell" (3) is not "same": the test does not pass on it. It is reported as an
expected failure (xfail) with the comparison's words (the smallest change these rounds
could detect, the rounds that would tell), because it says the machine was too noisy to
answer, not that the code moved the numbers: on the same VMs, quiet by the monitor but
with steal in the air, the clean rounds' spread left a detectable change of 26-61 %
against the 15 % margin (measured 2026-12-08), where the reference's own rounds had 2-7 %.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, machine_snapshot

REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"
ROUNDS = 12
MIN_CLEAN = 5  # rounds whose every unit was judged ok, for the comparison to rest on
TRIES = 2  # a run with fewer is made once more, then the test fails


def measure(out: Path) -> tuple[Path, dict]:
    """One throughput run into `out` (empty): its directory and its fidelity verdict."""
    before = machine_snapshot()
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"),
                          "--experiment", "throughput", "--repeat", str(ROUNDS), "--out",
                          str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert machine_snapshot() == before
    (run,) = list(out.iterdir())
    return run, json.loads((run / "metadata.json").read_text())["fidelity"]


def clean_rounds(run: Path) -> int:
    """The throughput rounds whose every unit the fidelity monitor judged ok."""
    units = pd.read_csv(run / "fidelity.csv", keep_default_na=False)
    units = units[units["experiment"] == "throughput"]
    verdicts = units.groupby("repeat")["verdict"].agg(lambda v: set(v) == {"ok"})
    return int(verdicts.sum())


def test_the_numbers_match_the_stored_reference(tmp_path: Path) -> None:
    assert clean_rounds(REFERENCE) >= MIN_CLEAN
    flagged: list[str] = []
    for attempt in range(1, TRIES + 1):
        run, fidelity = measure(tmp_path / f"try{attempt}")
        clean = clean_rounds(run)
        if clean >= MIN_CLEAN:
            break
        flagged.append(f"try {attempt}: {clean} of {ROUNDS} rounds clean: "
                       + "; ".join(fidelity.get("reasons", [])))
    else:
        raise AssertionError(f"no new run had {MIN_CLEAN} rounds the fidelity monitor judged "
                             "ok, so none can say whether the numbers changed (measure on "
                             "a quiet machine): " + " | ".join(flagged))
    cmp = subprocess.run([str(ROOT / ".venv" / "bin" / "testbed"), "compare", str(REFERENCE),
                          str(run), "--gate", "ratios", "--clean-rounds",
                          "--fail-on-difference"],
                         capture_output=True, text=True, timeout=120)
    assert "## B:" in cmp.stdout and "Paired ratios to node-node" in cmp.stdout, cmp.stderr
    assert "ok in every round compared" in cmp.stdout
    assert cmp.returncode in (0, 1, 3), f"exit {cmp.returncode}: {cmp.stderr}"
    assert cmp.returncode != 1, "the numbers moved: " + cmp.stderr + cmp.stdout[-3000:]
    if cmp.returncode == 3:
        pytest.xfail("the machine was too noisy to tell (not a pass): " + cmp.stderr.strip())
    assert "**Same within ±15 %" in cmp.stdout
