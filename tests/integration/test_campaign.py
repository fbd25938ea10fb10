"""A campaign end to end (root): two swept parameters, four points, each a real run; then
the same command again keeps every point; nothing left on the machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from .conftest import ROOT, machine_snapshot

PY = str(ROOT / ".venv" / "bin" / "python")


def test_campaign_runs_every_point_and_resumes(tmp_path: Path) -> None:
    before = machine_snapshot()
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny", "topology": str(ROOT / "topologies" / "two-node.yaml"),
        "experiment": "throughput", "repeat": 1, "duration": 1,
        "sweep": {"links.rate_mbit": [20, 80], "nodes.*.pods": [2, 3]}}))
    out = tmp_path / "camp"
    argv = [PY, str(ROOT / "experiments" / "run.py"), "--campaign", str(spec),
            "--out", str(out), "--no-progress"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    state = json.loads((out / "campaign.json").read_text())
    assert [p["status"] for p in state["points"]] == ["complete"] * 4
    df = pd.read_csv(out / "campaign.csv")
    nn = df[(df["metric"] == "throughput_bps") & (df["path"] == "node-node")]
    by_rate = nn.groupby("links.rate_mbit")["value"].median() / 1e6
    assert 0.85 * 20 < by_rate[20] < 20 and 0.85 * 80 < by_rate[80] < 80, by_rate
    pods = df.groupby("nodes.*.pods")["dst"].nunique()  # more pods: the same paths
    assert set(pods.index) == {2, 3}
    assert (out / "campaign_links_rate_mbit.png").stat().st_size > 1000
    # every shaped path held its rate (the fidelity check of a link's configured rate)
    for p in state["points"]:
        units = pd.read_csv(Path(p["run"]) / "fidelity.csv", keep_default_na=False)
        assert not any("rate" in str(c).split(",") for c in units["codes"]), units
    assert "## Where the rate binds" in (out / "campaign.md").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("complete, kept") == 4
    assert machine_snapshot() == before
