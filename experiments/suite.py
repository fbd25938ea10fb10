"""Runs a selection of experiments and writes every result the moment it is yielded.

    1. the experiments that need the shared cluster, on one cluster brought up once
    2. those with clusters of their own, one after another, once it is down

A claim that cannot run gets the verdict `error` with the reason (never a silent pass)
and the suite goes on; a claim judged by an earlier, interrupted run is kept. Between
results the runner checks for an interrupt Python may have dropped (testbed.kernel.procs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import closing
from typing import Callable  # typing's: `OnCluster` runs on 3.8

from experiments.framework.base import (
    CLAIM,
    SHARED_CLUSTER,
    Context,
    Experiment,
    Figure,
    Rows,
    Verdict,
)
from experiments.framework.verdicts import error
from testbed.cluster import Cluster
from testbed.kernel import procs

OnCluster = Callable[[Cluster], None]


def run_suite(experiments: Sequence[Experiment], ctx: Context,
              on_cluster: OnCluster | None = None) -> Cluster | None:
    """Run `experiments` in order (shared-cluster ones first); `ctx` has everything but
    the cluster. `on_cluster` sees the shared cluster once it is up (for metadata); the
    shared cluster, torn down, is returned (its timings), None if there was none."""
    shared = [e for e in experiments if e.needs == SHARED_CLUSTER]
    own = [e for e in experiments if e.needs != SHARED_CLUSTER]
    alone = dataclasses.replace(ctx, cluster=None)
    cluster = None
    if shared:
        with Cluster(ctx.spec, progress=ctx.progress.note, wiring=ctx.wiring) as cluster:
            if on_cluster is not None:
                on_cluster(cluster)
            on = dataclasses.replace(ctx, cluster=cluster)
            ctx.progress.set_total(sum(e.steps(on) for e in shared)
                                   + sum(e.steps(alone) for e in own))
            for experiment in shared:
                run_one(experiment, on)
    else:
        ctx.progress.set_total(sum(e.steps(alone) for e in own))
    for experiment in own:
        run_one(experiment, alone)
    return cluster


def judged(ctx: Context, claim: str) -> bool:
    """Whether an earlier run gave this claim a real verdict (an `error` is retried)."""
    return ctx.run.claims.get(claim, {}).get("verdict") in ("confirmed", "refuted")


def run_one(experiment: Experiment, ctx: Context) -> None:
    """Run one experiment, writing each result as it arrives."""
    if experiment.kind != CLAIM:
        _consume(experiment, ctx)
        return
    if judged(ctx, experiment.name):
        for _ in range(experiment.steps(ctx)):
            ctx.progress.step(f"claim {experiment.name} (kept from before)")
        return
    # a claim is judged on its evidence as a whole: rows of an unfinished attempt go
    ctx.run.drop_rows(experiment.name)
    inapplicable = getattr(experiment, "inapplicable", None)
    result = inapplicable(ctx.spec) if inapplicable is not None else None
    if result is not None:  # the topology lacks what it needs: nothing to run
        ctx.run.add_claim(result.row())
        ctx.progress.note(f"claim {experiment.name}: NOT APPLICABLE: {result.evidence}")
        for _ in range(experiment.steps(ctx)):
            ctx.progress.step(f"claim {experiment.name}")
        return
    steps = [0]
    try:
        _consume(experiment, ctx, steps)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the claim's `error`
        result = error(experiment.name, f"{type(exc).__name__}: {exc}")
        row = result.row()
        if ctx.fidelity is not None:  # an error on a disturbed machine says so too
            row["fidelity"] = _judge(ctx, f"claim {experiment.name}",
                                     [(experiment.name, 0, "", "")])
        ctx.run.add_claim(row)
        ctx.progress.note(f"claim {experiment.name}: ERROR: {result.evidence}")
        for _ in range(max(experiment.steps(ctx) - steps[0], 1)):
            ctx.progress.step(f"claim {experiment.name}")


def _consume(experiment: Experiment, ctx: Context, steps: list[int] | None = None) -> None:
    """Write each result as it comes, with its fidelity (ctx.fidelity judges the window
    since the previous result; a claim's row carries its window's); `steps[0]` counts
    the progress steps taken."""
    steps = steps if steps is not None else [0]
    log = ctx.fidelity
    if log is not None:
        log.begin()
    with closing(experiment.run(ctx)) as results:
        for result in results:
            if isinstance(result, Rows):
                ctx.run.add(result.rows)
                if log is not None and result.rows:
                    _judge(ctx, result.label, [(r.experiment, r.repeat, r.src, r.dst)
                                               for r in result.rows], result.suspect)
                elif log is not None:  # kept from before: nothing measured now
                    log.begin()
                ctx.progress.step(result.label)
                steps[0] += 1
            elif isinstance(result, Verdict):
                # the verdict's window is judged first, so its row carries its fidelity
                row = result.result.row()
                if log is not None:
                    row["fidelity"] = _judge(ctx, f"claim {result.result.claim}",
                                             [(result.result.claim, 0, "", "")])
                ctx.run.add_claim(row)
                ctx.progress.note(f"claim {result.result.claim}: "
                                  f"{result.result.verdict.upper()}: {result.result.evidence}")
                ctx.progress.step(f"claim {result.result.claim}")
                steps[0] += 1
            elif isinstance(result, Figure):
                ctx.run.add_figure(result.name, result.png)
            else:
                raise TypeError(f"{experiment.name} yielded {result!r}")
            procs.check_interrupted()


def _judge(ctx: Context, label: str, keys: list[tuple[str, int, str, str]],
           suspect: tuple[tuple[str, str], ...] = ()) -> str:
    """The unit's fidelity verdict, said at once when it is not `ok`; returns it in one
    cell ("ok", "suspect: <reasons>", ...) for a claim's row."""
    log = ctx.fidelity
    if log.unit(label, keys, suspect) != "ok":
        unit = log.units[-1]
        ctx.progress.note(f"fidelity: {label}: {unit['verdict'].upper()}: "
                          f"{unit['reasons']}")
    return str(log.last())
