"""Did this change the numbers? The same run as the stored reference (results/reference/
two-node-throughput: `experiments/run.py --experiment throughput --repeat 5`), made now,
compared with it by `testbed compare --fail-on-difference`: the paired ratios to node-node
must not differ significantly. A new run the fidelity monitor flags cannot answer the
question (something else used the machine), so that case is skipped with its reasons
rather than passed or failed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, machine_snapshot

REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"


def test_the_numbers_match_the_stored_reference(tmp_path: Path) -> None:
    before = machine_snapshot()
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"),
                          "--experiment", "throughput", "--repeat", "5", "--out",
                          str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert machine_snapshot() == before
    (run,) = list(tmp_path.iterdir())
    fidelity = json.loads((run / "metadata.json").read_text())["fidelity"]
    cmp = subprocess.run([str(ROOT / ".venv" / "bin" / "testbed"), "compare", str(REFERENCE),
                          str(run), "--fail-on-difference"],
                         capture_output=True, text=True, timeout=120)
    if fidelity["verdict"] != "ok":
        pytest.skip("the new run was flagged by the fidelity monitor, so it cannot say "
                    "whether the numbers changed: " + "; ".join(fidelity["reasons"]))
    assert "## B:" in cmp.stdout and "Paired ratios to node-node" in cmp.stdout
    assert cmp.returncode == 0, cmp.stderr + cmp.stdout[-3000:]
