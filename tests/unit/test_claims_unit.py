"""Verdicts: judged from checks, never a silent pass; a claim that fails to run is `error`."""

from __future__ import annotations

import types
from pathlib import Path

import pandas as pd
import pytest

from experiments import run as run_py
from experiments.claims import CLAIMS, ClaimResult, claims_frame, error, judge
from experiments.context import Context, Params
from testbed.results.progress import Reporter
from testbed.results.rundir import RunDir


def test_judge_confirms_only_when_every_check_holds() -> None:
    ok = judge("port-conflict", {"a": True, "b": True}, "evidence", {"x": 1})
    assert ok.verdict == "confirmed" and ok.evidence == "evidence"
    bad = judge("port-conflict", {"a": True, "b": False}, "evidence")
    assert bad.verdict == "refuted" and bad.evidence == "evidence [failed: b]"
    with pytest.raises(ValueError):
        judge("port-conflict", {}, "no checks is no verdict")


def test_unknown_claims_and_verdicts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown claim"):
        ClaimResult("pods-fly", "confirmed", "")
    with pytest.raises(ValueError, match="verdict must be"):
        ClaimResult("port-conflict", "probably", "")


def test_claims_frame_is_in_the_articles_order() -> None:
    frame = claims_frame([judge(c, {"ok": True}, c, {"n": 1.5}) for c in reversed(CLAIMS)])
    assert list(frame["claim"]) == list(CLAIMS)
    assert frame.loc[0, "numbers"] == "n=1.5"


def test_a_claim_that_raises_gets_the_verdict_error(tmp_path: Path) -> None:
    def broken(_ctx: Context) -> None:
        raise RuntimeError("probe could not start")

    fake = types.SimpleNamespace(NAME="port-conflict", KIND="claim", run=broken)
    run = RunDir.create(tmp_path, "t")
    ctx = Context(cluster=None, run=run, params=Params(), progress=Reporter(enabled=False))
    original = run_py.REGISTRY["port-conflict"]
    run_py.REGISTRY["port-conflict"] = fake
    try:
        run_py.run_experiment(ctx, "port-conflict")
    finally:
        run_py.REGISTRY["port-conflict"] = original
    row = pd.read_csv(run.path / "claims.csv").iloc[0]
    assert row["verdict"] == "error"
    assert row["evidence"] == "RuntimeError: probe could not start"


def test_error_text_is_one_line() -> None:
    assert error("gateway-routes", "a\nb").evidence == "a b"
