"""Did this change move the numbers? The stored reference's code against this checkout's,
both measured now, on this machine: A is the commit the reference run
(results/reference/two-node-throughput) was made at, unpacked from the repository's history
(`git archive`); B is the working tree. Each round is a run of its own (`experiments/run.py
--experiment throughput --repeat 1`, bring-up included), and the two alternate in ABBA
blocks (A B B A A B B A ...) until each side has ROUNDS rounds the fidelity monitor judged
`ok` in every unit. The clean rounds of each side are put together as one run directory,
and `testbed compare A B --gate ratios --clean-rounds --alpha 0.01 --fail-on-difference`
decides: "same within the margin" (exit 0) passes, "differs" (1) fails with the
comparison's words.

Why not the stored numbers: a paired ratio is the machine's as much as the code's. CI's
machine (same kind, another host, node-node 42 % slower) put pod-localhost / node-node 19 %
above the reference's with unchanged code (loopback's 64 KiB packets against veth's
1500 B weigh differently on another CPU). Measured here and now, only the code differs.

Why alternate, one round per run: the host's state drifts over minutes in ways the guest
cannot see. Two runs of 8 rounds, A then B, every unit `ok` (steal under 3 %, foreign CPU
under 0.02 cores), called pod-cross-node / node-node 16 % higher in B (95 % interval
+6 .. +26 %), where two such pairs of the same commits just before had it +3 % and -2 %
(2026-12-08): the rounds of one run share its
minute, and Welch's test took them for independent. Alternated, a drift falls on both
sides alike, a linear one cancels, and each side's spread includes it.

Why alpha 0.01: the gate runs on every commit; at 0.05 one run in twenty would fail on
nothing. "Cannot tell" (3) is not "same" and never passes: it is an expected failure
(xfail) with the comparison's words (the smallest change these rounds could detect, the
rounds that would tell), since it reports the machine's noise, not the code. A side short
of clean rounds after MAX_RUNS runs fails the test with the monitor's reasons; it never
skips. Power against a 1.5x change of one ratio at six rounds a side, alpha 0.01 over the
three ratios: 99 % at log sd 0.1 (the reference's rounds had 0.03-0.06), 77 % at 0.15,
44 % at 0.2 (noncentral t); eight rounds would give 100/95/69 % for 70 s more of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, machine_snapshot

REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"
ROUNDS = 6  # clean rounds a side the comparison rests on
MAX_RUNS = 10  # runs a side before a side short of clean rounds fails the test
ORDER = "ABBA"


def reference_tree(dest: Path) -> Path:
    """The reference run's commit unpacked into `dest`, runnable with this checkout's .venv."""
    commit = json.loads((REFERENCE / "metadata.json").read_text())["git"]["commit"]

    def have() -> bool:
        return subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e",
                               f"{commit}^{{commit}}"], capture_output=True).returncode == 0

    if not have():  # a shallow clone: ask the repository it was cloned from
        subprocess.run(["git", "-C", str(ROOT), "fetch", "--quiet", "origin", commit],
                       capture_output=True, timeout=120)
    assert have(), (
        f"the reference was measured at commit {commit}, which this clone does not have "
        "(a shallow clone?): the gate needs the repository's history")
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    # run.py switches to <tree>/.venv's Python; the packages come from the tree itself
    # (PYTHONPATH, ahead of the editable install's finder: imports_its_own_code).
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def measure(tree: Path, out: Path) -> Path:
    """One round of `tree`'s throughput experiment, a run of its own, into `out` (empty)."""
    before = machine_snapshot()
    env = dict(os.environ, PYTHONPATH=str(tree))
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "python"),
                          str(tree / "experiments" / "run.py"), "--experiment", "throughput",
                          "--repeat", "1", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tree)
    assert res.returncode == 0, f"{tree}: {res.stderr[-3000:]}"
    assert machine_snapshot() == before, f"{tree}'s run left something behind"
    (run,) = list(out.iterdir())
    return run


def imports_its_own_code(tree: Path) -> None:
    """`tree`'s run imports `tree`'s packages (PYTHONPATH ahead of the editable install),
    checked once per tree before its runs."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    where = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                            "import testbed, experiments; print(testbed.__file__); "
                            "print(experiments.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tree, check=True)
    assert all(tree in Path(f).parents for f in where.stdout.split()), where.stdout


def clean(run: Path) -> bool:
    """Every throughput unit of the run judged ok by the fidelity monitor."""
    units = pd.read_csv(run / "fidelity.csv", keep_default_na=False)
    units = units[units["experiment"] == "throughput"]
    return not units.empty and set(units["verdict"]) == {"ok"}


def reasons(run: Path) -> str:
    meta = json.loads((run / "metadata.json").read_text())
    return "; ".join(meta["fidelity"].get("reasons", []))


def merged(runs: list[Path], dest: Path) -> Path:
    """One-round runs as one run directory, round i from runs[i - 1]: what `compare` reads
    (measurements, fidelity units, metadata: the first run's, with the rounds counted)."""
    dest.mkdir()
    for name in ("measurements.csv", "fidelity.csv"):
        frames = []
        for i, run in enumerate(runs, 1):
            frame = pd.read_csv(run / name, keep_default_na=False, dtype=str)
            assert set(frame["repeat"]) == {"1"}, f"{run}/{name}: not a one-round run"
            frames.append(frame.assign(repeat=str(i)))
        pd.concat(frames).to_csv(dest / name, index=False)
    meta = json.loads((runs[0] / "metadata.json").read_text())
    meta["parameters"]["repeat"] = len(runs)
    meta["merged_from"] = [run.name for run in runs]
    (dest / "metadata.json").write_text(json.dumps(meta, indent=1))
    return dest


def compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "testbed"), "compare", str(a), str(b),
                           "--gate", "ratios", "--clean-rounds", "--alpha", "0.01",
                           "--fail-on-difference"],
                          capture_output=True, text=True, timeout=120)


def test_this_checkout_moves_no_ratio_against_the_references_code(tmp_path: Path) -> None:
    trees = {"A": reference_tree(tmp_path / "reference-code"), "B": ROOT}
    for tree in trees.values():
        imports_its_own_code(tree)
    kept: dict[str, list[Path]] = {"A": [], "B": []}
    flagged: dict[str, list[str]] = {"A": [], "B": []}
    made = {"A": 0, "B": 0}
    step = 0
    while min(len(kept["A"]), len(kept["B"])) < ROUNDS:
        side = ORDER[step % len(ORDER)]
        step += 1
        if len(kept[side]) >= ROUNDS:
            continue
        if made[side] >= MAX_RUNS:
            raise AssertionError(
                f"{side}: {len(kept[side])} of {made[side]} one-round runs were judged ok by "
                f"the fidelity monitor, {ROUNDS} needed, so the numbers cannot be compared "
                "(measure on a quiet machine): " + " | ".join(flagged[side]))
        made[side] += 1
        run = measure(trees[side], tmp_path / f"{side}{made[side]}")
        if clean(run):
            kept[side].append(run)
        else:
            flagged[side].append(f"run {made[side]}: {reasons(run)}")
    cmp = compare(merged(kept["A"], tmp_path / "A"), merged(kept["B"], tmp_path / "B"))
    assert "## B:" in cmp.stdout and "Paired ratios to node-node" in cmp.stdout, cmp.stderr
    assert "ok in every round compared" in cmp.stdout and "is below 0.01" in cmp.stdout
    assert cmp.returncode in (0, 1, 3), f"exit {cmp.returncode}: {cmp.stderr}"
    assert cmp.returncode != 1, "the numbers moved: " + cmp.stderr + cmp.stdout[-3000:]
    if cmp.returncode == 3:
        pytest.xfail("the machine was too noisy to tell (not a pass): " + cmp.stderr.strip())
    assert "**Same within ±15 %" in cmp.stdout
