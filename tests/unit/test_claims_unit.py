"""Verdicts: judged from checks, never a silent pass; a claim that fails to run is `error`.
The suite runner writes each result as it comes and keeps what an earlier run judged."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from experiments.claims import CLAIMS, ClaimResult, error, judge
from experiments.framework.base import (
    CLAIM,
    MEASUREMENT,
    OWN_CLUSTERS,
    SHARED_CLUSTER,
    Claim,
    Context,
    Figure,
    Params,
    Result,
    Rows,
    Verdict,
)
from experiments.framework.needs import Needs
from experiments.registry import REGISTRY
from experiments.suite import run_one
from testbed.kernel import procs
from testbed.model.load import load_spec
from testbed.results.progress import Reporter
from testbed.results.rundir import Measurement, RunDir

ROOT = Path(__file__).resolve().parents[2]


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


def test_error_text_is_one_line() -> None:
    assert error("gateway-routes", "a\nb").evidence == "a b"


def test_every_claim_of_the_article_is_one_registered_experiment() -> None:
    claims = [e.name for e in REGISTRY.values() if e.kind == CLAIM]
    assert sorted(claims) == sorted(CLAIMS)
    for name, experiment in REGISTRY.items():
        assert experiment.name == name
        assert experiment.kind in (MEASUREMENT, CLAIM)
        assert experiment.needs in (SHARED_CLUSTER, OWN_CLUSTERS)
    assert REGISTRY["docker0-collision"].needs == OWN_CLUSTERS


def context(tmp_path: Path) -> Context:
    run = RunDir.create(tmp_path, "t")
    run.claim_order = list(CLAIMS)
    return Context(load_spec(ROOT / "topologies" / "two-node.yaml"), run, Params(),
                   Reporter(enabled=False))


def test_claims_csv_is_in_the_articles_order(tmp_path: Path) -> None:
    run = context(tmp_path).run
    for c in reversed(CLAIMS):
        run.add_claim(judge(c, {"ok": True}, c, {"n": 1.5}).row())
    frame = pd.read_csv(run.path / "claims.csv")
    assert list(frame["claim"]) == list(CLAIMS)
    assert frame.loc[0, "numbers"] == "n=1.5"


ROW = Measurement("port-conflict", 1, "pod-1", "pod-3", "node-1", "node-2", "pod-cross-node",
                  "loss_pct", 0.0)


class Broken(Claim):
    name = "port-conflict"

    def run(self, ctx: Context) -> Iterator[Result]:
        yield Rows("half of the evidence", (ROW,))
        raise RuntimeError("probe could not start")


def test_a_claim_that_raises_gets_the_verdict_error(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    run_one(Broken(), ctx)
    row = pd.read_csv(ctx.run.path / "claims.csv").iloc[0]
    assert row["verdict"] == "error"
    assert row["evidence"] == "RuntimeError: probe could not start"


class Judged(Claim):
    name = "port-conflict"
    ran = 0

    def run(self, ctx: Context) -> Iterator[Result]:
        type(self).ran += 1
        yield Figure("evidence.png", b"\x89PNG")
        yield Rows("all of the evidence", (ROW,))
        yield Verdict(judge(self.name, {"ok": True}, "seen"))


def test_a_rerun_claim_starts_from_nothing_and_a_judged_one_is_kept(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    run_one(Broken(), ctx)  # an unfinished attempt left a row
    assert len(ctx.run.rows) == 1
    run_one(Judged(), ctx)
    assert len(ctx.run.rows) == 1  # the earlier attempt's row was dropped, not doubled
    assert ctx.run.claims["port-conflict"]["verdict"] == "confirmed"
    assert ctx.run.figures == ["evidence.png"] and (ctx.run.path / "evidence.png").exists()
    run_one(Judged(), ctx)  # judged already: kept, not run again
    assert Judged.ran == 1


class Interrupted(Claim):
    """Python dropped the KeyboardInterrupt of a SIGTERM (as in an at-fork callback)."""

    name = "shared-localhost"

    def run(self, ctx: Context) -> Iterator[Result]:
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        yield Rows("first", (ROW,))
        yield Rows("never reached", (ROW,))


def test_an_interrupt_python_dropped_stops_the_suite_after_the_result(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    previous = signal.signal(signal.SIGTERM, procs.raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            run_one(Interrupted(), ctx)
    finally:
        signal.signal(signal.SIGTERM, previous)
        procs.acknowledge_interrupt()
    assert len(ctx.run.rows) == 1  # the finished result is kept, nothing after it ran


class Needy(Claim):
    """Needs more pods than two-node.yaml has: never runs there."""

    name = "port-conflict"
    requires = Needs(pods=99)
    ran = 0

    def run(self, ctx: Context) -> Iterator[Result]:
        type(self).ran += 1
        yield Verdict(judge(self.name, {"ok": True}, "seen"))


def test_a_claim_whose_needs_are_unmet_is_not_applicable_and_not_run(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    run_one(Needy(), ctx)
    row = pd.read_csv(ctx.run.path / "claims.csv").iloc[0]
    assert row["verdict"] == "not applicable" and Needy.ran == 0
    assert row["evidence"] == ("not applicable to topology two-node: needs at least 99 pods, "
                               "the topology has 4")


class FakeLog:
    """What the suite asks of the fidelity log (testbed.results.fidelity.FidelityLog)."""

    def __init__(self) -> None:
        self.units: list[dict[str, str]] = []

    def begin(self) -> None:
        pass

    def unit(self, label: str, keys: list, suspect: tuple = ()) -> str:
        self.units.append({"label": label, "verdict": "suspect", "reasons": "a hog"})
        return "suspect"

    def last(self) -> str:
        return "suspect: a hog"


def test_a_claim_in_error_carries_its_windows_fidelity(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.fidelity = FakeLog()
    run_one(Broken(), ctx)
    row = pd.read_csv(ctx.run.path / "claims.csv", keep_default_na=False).iloc[0]
    assert row["verdict"] == "error" and row["fidelity"] == "suspect: a hog"
    assert ctx.fidelity.units[-1]["label"] == "claim port-conflict"
