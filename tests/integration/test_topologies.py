"""Verdicts that do not depend on the topology they run on: the claims that run on the
topology given (the seed article's six; the others build clusters of their own from fixed
topologies) on every topology the project ships, as `experiments/run.py --quick
--topology T --experiment ...` runs them. Each must be `confirmed` or `not applicable`
(with the reason): a true claim `refuted` or in `error` on a valid topology is the worst
verdict a researcher could publish. topologies/two-node.yaml is the quick suite's own
(tests/integration/conftest.py's quick_run), so it is left out here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from experiments.claims import CONFIRMED, NOT_APPLICABLE
from testbed.model.load import load_spec

from .conftest import ROOT, TOPOLOGIES

ON_THE_TOPOLOGY = ("shared-localhost", "port-conflict", "pause-holds-netns", "gateway-routes",
                   "no-masquerade-10-8", "docker0-collision")
FILES = sorted(p for p in TOPOLOGIES.glob("*.yaml") if p.stem != "two-node")


@pytest.mark.parametrize("topology", FILES, ids=lambda p: p.stem)
def test_the_claims_hold_on_every_shipped_topology(topology: Path, tmp_path: Path) -> None:
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"), "--quick",
                          "--topology", str(topology), "--experiment", ",".join(ON_THE_TOPOLOGY),
                          "--out", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = list(tmp_path.iterdir())
    claims = pd.read_csv(run / "claims.csv", keep_default_na=False).set_index("claim")
    assert sorted(claims.index) == sorted(ON_THE_TOPOLOGY)
    wrong = claims[~claims["verdict"].isin([CONFIRMED, NOT_APPLICABLE])]
    assert wrong.empty, wrong[["verdict", "evidence"]].to_dict("index")
    name = load_spec(topology).name
    for claim, row in claims[claims["verdict"] == NOT_APPLICABLE].iterrows():
        assert row["evidence"].startswith(f"not applicable to topology {name}: "), claim
