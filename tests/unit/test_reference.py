"""The stored reference run (results/reference/two-node-throughput): it loads, it is
enough to detect a change (five paired rounds a path, monitored and ok), compared with
itself it finds nothing, and a run whose pod-cross-node throughput fell by a third in
every round fails `testbed compare --fail-on-difference` against it (no root)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from testbed.cli import main as cli
from testbed.results import compare
from testbed.results.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"


def test_the_reference_is_a_complete_monitored_run_of_five_rounds() -> None:
    ref = compare.Run.load(RunDir.open(REFERENCE))
    tp = ref.rows[ref.rows["metric"] == "throughput_bps"]
    assert set(tp["path"]) == {"node-node", "pod-cross-node", "pod-same-node",
                               "pod-localhost"}
    assert (tp.groupby("path")["repeat"].nunique() >= 5).all()  # a rank test can find a change
    meta = json.loads((REFERENCE / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["fidelity"]["verdict"] == "ok"
    assert meta["pinning"] and meta["parameters"]["repeat"] == 5
    assert compare.differs(ref, ref) == []


def test_a_change_in_the_numbers_fails_the_check(tmp_path: Path, capsys) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(REFERENCE, changed)
    df = pd.read_csv(changed / "measurements.csv")
    slower = (df["path"] == "pod-cross-node") & (df["metric"] == "throughput_bps")
    df.loc[slower, "value"] *= 2 / 3
    df.to_csv(changed / "measurements.csv", index=False)
    assert cli.main(["compare", str(REFERENCE), str(changed), "--fail-on-difference"]) == 1
    assert "differs: pod-cross-node" in capsys.readouterr().err
    assert cli.main(["compare", str(REFERENCE), str(REFERENCE), "--fail-on-difference"]) == 0
