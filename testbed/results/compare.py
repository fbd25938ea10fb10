"""Two (or more) runs side by side: did the verdicts change, did the numbers move, and
what differed about the machine (issues 13 and 23). Pure functions of run directories'
contents.

    testbed compare RUN_A RUN_B [RUN_C ...] [-o comparison.md|.html] [--fail-on-difference]
                    [--gate all|ratios] [--margin [WHAT=]FRACTION ...]

Every later run is compared with the first (the reference: a stored result, for CI's "did
this change the numbers"). Each metric gets one of three answers, never a bare "no
significant difference" (which at few rounds says nothing):

- `differs`: the test of "no change" (Welch's t on the log values, testbed.results.stats)
  rejects it, Holm-adjusted over the family, and the change is not shown to lie within
  the margin: the report gives the direction and size, B/A with its 95 % interval;
- `same`: the two one-sided tests (TOST) show the change lies within the margin (the 90 %
  interval of B/A inside [1/(1+m), 1+m]); this answer takes precedence over a change that
  is significant but smaller than what the margin says matters;
- `cannot tell`: neither, with the smallest change these rounds could have detected
  (80 % power at the family's first Holm level, alpha / family size) and the rounds a side
  that would give a definite answer, with that power, were the true change the one
  observed.

What is compared: the verdicts (a changed one is a difference); the paired ratios (each
path's throughput over node-node's in the same round: what travels between machines);
every other metric per experiment, path class and metric, one value per round (the median
of a round's values: rounds, not pod pairs, are the repeated measurement). A ratio or
metric the reference has and B does not (its path failed: only error rows) cannot tell;
one only B has is new and left out. The gate says
which of them decide the answer: `all` (default) every metric, `ratios` the verdicts and
the paired ratios only (absolute figures move 2-3x between machines of the same kind); the
rest is still shown, marked "not gated", and judged in a family of its own.

The family: "differs" is a claim that *some* metric changed, so it is Holm-adjusted over
the gated metrics (the chance of any false "differs" stays below alpha). "Same" for the
whole gate is a claim that *every* metric is within its margin: an intersection-union
test, valid at alpha with each metric's TOST at alpha and no adjustment (it holds only if
each does).

Margins (`Margins`, `--margin`): paired ratios and absolute figures +-15 % by default; the
stored reference's round-to-round spread (log sd 0.03-0.06 for the ratios, 0.005-0.04 for
throughput and CPU) makes its own 90 % interval at five rounds +-2-7 %, and two idle runs
of this machine moved a ratio by 7 % (README); retransmits (reordering, 41-161 in five
rounds of one path) +-100 %, i.e. within a factor of two; the TTL 1 %, so one hop is a
difference. A metric with a zero is compared in its units, the margin its relative
margin times A's mean but at least UNIT_FLOOR (1 percentage point of loss...).

Exit status of the CLI (`outcome`): 0 same, 1 differs, 3 cannot tell (with
`--fail-on-difference`; without it 0 once the comparison is made), 2 bad input (Run.load
and `compare` raise UsageError: no such directory, no measurements.csv or metadata.json,
a value NaN, infinite or outside what the metric can be, a node-node baseline of 0,
nothing in common to compare).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from testbed.errors import UsageError
from testbed.results.compare_words import (
    CANNOT,
    DIFFERS,
    RATIOS,
    SAME,
    _cannot_words,
    _change_words,
    _name,
    _pct,
)
from testbed.results.metadata import RunMetadata
from testbed.results.rundir import ERROR, RunDir
from testbed.results.stats import (
    ALPHA,
    LOG,
    bounds,
    change,
    detectable,
    holm,
    paired,
    rounds_needed,
)

EXIT = {SAME: 0, DIFFERS: 1, CANNOT: 3}  # 2: bad input
GATES = ("all", "ratios")
ABSOLUTE = "absolute"
RATIO_MARGIN = 0.15
ABSOLUTE_MARGIN = 0.15
METRIC_MARGINS = {"retransmits": 1.0, "ttl": 0.01}
# a metric with a zero is compared in its units: its margin is at least this much
UNIT_FLOOR = {"%": 1.0, "count": 1.0, "s": 0.05, "ms": 0.05}
ENV_KEYS = ("environment", "parameters", "pinning", "wiring", "pod_network", "host",
            "topology", "git")
COMPARE_COLUMNS = ["what", "path", "metric", "gated", "scale", "n_a", "n_b", "a", "b",
                   "estimate", "ci95_low", "ci95_high", "margin", "p", "p_holm", "p_same",
                   "detectable", "rounds_needed", "answer", "note"]


@dataclass(frozen=True)
class Margins:
    """How large a change still counts as "the same": relative for paired ratios and
    absolute figures (B/A within [1/(1+m), 1+m]); per metric where its own noise asks
    for another (the metric's name wins over its kind)."""

    ratios: float = RATIO_MARGIN
    absolute: float = ABSOLUTE_MARGIN
    metrics: Mapping[str, float] = field(default_factory=lambda: dict(METRIC_MARGINS))

    def of(self, kind: str, metric: str) -> float:
        if metric in self.metrics:
            return self.metrics[metric]
        return self.ratios if kind == RATIOS else self.absolute

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Margins:
        """`--margin` values: FRACTION (ratios and absolute figures), ratios=FRACTION,
        absolute=FRACTION or METRIC=FRACTION; 0.1 is +-10 %."""
        ratios, absolute, metrics = RATIO_MARGIN, ABSOLUTE_MARGIN, dict(METRIC_MARGINS)
        for spec in specs:
            what, _, value = spec.rpartition("=")
            try:
                m = float(value)
            except ValueError:
                raise UsageError(f"--margin {spec}: not [WHAT=]FRACTION") from None
            if not (m > 0 and math.isfinite(m)):
                raise UsageError(f"--margin {spec}: the margin must be above 0 (0.1 is "
                                 "+-10 %)")
            if not what:
                ratios = absolute = m
            elif what == RATIOS:
                ratios = m
            elif what == ABSOLUTE:
                absolute = m
            else:
                metrics[what] = m
        return cls(ratios, absolute, metrics)

    def describe(self, metrics: Sequence[str] = ()) -> str:
        """The margins in words (`±15 %`, or per kind), with those of `metrics` that have
        their own."""
        out = (f"±{_pct(self.ratios)}" if self.ratios == self.absolute else
               f"±{_pct(self.ratios)} (paired ratios), ±{_pct(self.absolute)} (absolute)")
        extra = [f"{k} ±{_pct(v)}" for k, v in sorted(self.metrics.items())
                 if not metrics or k in metrics]
        return out + (f" ({', '.join(extra)})" if extra else "")


@dataclass
class Run:
    """What a comparison reads from a run directory."""

    name: str
    rows: pd.DataFrame
    claims: dict[str, str]  # claim -> verdict
    meta: RunMetadata
    # with clean_rounds: the (experiment, round) left out, each for a unit that was not
    # `ok` in it; None: every round kept (the default)
    dropped: list[tuple[str, int]] | None = None

    @classmethod
    def load(cls, run: RunDir, clean_rounds: bool = False) -> Run:
        """A run directory's measurements, verdicts and metadata; UsageError (one line)
        for a directory without them or with a value no measurement can have.

        `clean_rounds`: only the rounds measured in windows the fidelity monitor judged
        `ok` (a round of an experiment goes whole when any of its units was `suspect` or
        `unknown`, so paired ratios stay paired). Why: a hypervisor taking 20-35 % of the
        CPU (steal) for a few seconds flagged 7-10 of 40 units of a 10-round run here; the
        rest of the run is still evidence, the flagged rounds are not."""
        where = run.path
        if run.read("measurements.csv") is None:
            raise UsageError(f"{where}: no measurements.csv (not a run directory, or the "
                             "run did not get to measure)")
        raw = run.read("metadata.json")
        if raw is None:
            raise UsageError(f"{where}: no metadata.json (not a run directory testbed wrote)")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise UsageError(f"{where}/metadata.json: not JSON") from None
        if not isinstance(data, dict):
            raise UsageError(f"{where}/metadata.json: not a JSON object")
        meta = RunMetadata.from_dict(data)  # of any format version
        frame = run.frame()
        frame = frame[frame["metric"] != ERROR]
        for i, row in enumerate(frame.itertuples(index=False)):
            lo, hi = bounds(str(row.metric))
            value = float(row.value)
            if not (math.isfinite(value) and lo <= value <= hi):
                raise UsageError(
                    f"{where}/measurements.csv: row {i + 1} ({row.experiment} {row.path} "
                    f"{row.metric}, round {row.repeat}): {value!r} is not a possible "
                    f"measurement (it must be finite, {lo:g} .. {hi:g})")
        dropped = None
        if clean_rounds:
            from testbed.results.fidelity import units_frame

            units = units_frame(run)
            if units.empty:
                raise UsageError(f"{where}: no fidelity.csv, so no round can be shown clean "
                                 "(--clean-rounds needs a monitored run)")
            bad = units[units["verdict"] != "ok"]
            dropped = sorted({(str(e), int(r)) for e, r in zip(bad["experiment"],
                                                                 bad["repeat"])})
            keep = [(str(e), int(r)) not in set(dropped)
                    for e, r in zip(frame["experiment"], frame["repeat"])]
            frame = frame[keep]
        return cls(run.path.name, frame, {c: r["verdict"] for c, r in run.claims.items()},
                   meta, dropped)


def verdicts(a: Run, b: Run) -> pd.DataFrame:
    """Each claim judged in either run: its verdicts and whether they agree."""
    names = list(dict.fromkeys([*a.claims, *b.claims]))
    return pd.DataFrame([{"claim": n, "a": a.claims.get(n, "-"), "b": b.claims.get(n, "-"),
                          "same": a.claims.get(n) == b.claims.get(n)} for n in names],
                        columns=["claim", "a", "b", "same"])


def _row(what: str, path: str, metric: str, xa: Sequence[float], xb: Sequence[float],
         margin: float, unit: str, gated: bool) -> dict[str, Any]:
    floor = UNIT_FLOOR.get(unit, 0.0)
    mean_a = sum(xa) / len(xa) if len(xa) else math.nan
    c = change(xa, xb, margin, max(margin * abs(mean_a), floor) if len(xa) else floor)
    note = ("not measured in B (no value, or only errors)" if not len(xb) else
            "" if c.scale == LOG else f"a zero: compared as B - A in {unit or 'its units'}")
    return {"what": what, "path": path, "metric": metric, "gated": gated, "scale": c.scale,
            "n_a": c.n_a, "n_b": c.n_b, "a": c.center_a, "b": c.center_b,
            "estimate": c.estimate, "ci95_low": c.low, "ci95_high": c.high,
            "margin": c.margin, "p": c.p, "p_same": c.p_same, "note": note, "_change": c}


def _judge(rows: list[dict[str, Any]], alpha: float = ALPHA) -> None:
    """Each row's answer within its family (the gated rows, or the rest): Holm over the
    family for "differs", TOST at alpha for "same" (an intersection-union test for the
    family: no adjustment), else "cannot tell" with the change detectable at alpha over
    the family's size (Holm's first step) and the rounds that would tell."""
    for gated in (True, False):
        family = [r for r in rows if r["gated"] == gated]
        level = alpha / max(len(family), 1)
        for row, adjusted in zip(family, holm([r["p"] for r in family])):
            c = row["_change"]
            row["p_holm"] = adjusted
            row["detectable"] = c.to_scale(detectable(c, level))
            row["rounds_needed"] = rounds_needed(c.sd, c.bound, c.diff, level)
            if c.p_same < alpha:
                row["answer"] = SAME
            elif adjusted < alpha:
                row["answer"] = DIFFERS
            else:
                row["answer"] = CANNOT
                if math.isnan(c.p) and c.n_b:
                    row["note"] = "; ".join(filter(None, [
                        row["note"], "fewer than two rounds on a side: no spread to judge by"]))


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{k: r.get(k) for k in COMPARE_COLUMNS} for r in rows],
                        columns=COMPARE_COLUMNS)


def _ratio_rows(a: Run, b: Run, margins: Margins, gated: bool, experiment: str = "throughput",
                metric: str = "throughput_bps", baseline: str = "node-node"
                ) -> list[dict[str, Any]]:
    for run in (a, b):
        base = run.rows[(run.rows["experiment"] == experiment)
                        & (run.rows["metric"] == metric) & (run.rows["path"] == baseline)]
        if (base["value"].astype(float) <= 0).any():
            raise UsageError(f"{run.name}: a {baseline} {metric} of 0: no paired ratio to it "
                             "can be formed (the baseline did not move data)")
    pa = paired(a.rows, experiment, metric, baseline)
    pb = paired(b.rows, experiment, metric, baseline)
    out = []
    for path in dict.fromkeys(pa["path"]):  # one only B has is new: nothing to compare with
        xa = pa[pa["path"] == path]["ratio"].tolist()
        xb = pb[pb["path"] == path]["ratio"].tolist()
        if xa:
            out.append(_row(f"{experiment} / {baseline}", path, "ratio", xa, xb,
                            margins.of(RATIOS, "ratio"), "", gated))
    return out


def _per_round(run: Run) -> dict[tuple[str, str, str], list[float]]:
    """Per experiment, path class and metric: one value per round (the round's median)."""
    rows = run.rows.assign(value=run.rows["value"].astype(float))
    keys = ["experiment", "path", "metric"]
    return {k: g.groupby("repeat")["value"].median().tolist()
            for k, g in rows.groupby(keys, sort=False)}


def _metric_rows(a: Run, b: Run, margins: Margins, gated: bool) -> list[dict[str, Any]]:
    ga, gb = _per_round(a), _per_round(b)
    units = dict(zip(zip(a.rows["experiment"], a.rows["path"], a.rows["metric"]),
                     a.rows["unit"]))
    return [_row(k[0], k[1], k[2], ga[k], gb.get(k, []), margins.of(ABSOLUTE, k[2]),
                 str(units.get(k, "")), gated) for k in ga]


@dataclass
class Comparison:
    """Run B against reference A: the verdicts, every metric's row, and the answer."""

    a: Run
    b: Run
    gate: str
    margins: Margins
    verdicts: pd.DataFrame
    table: pd.DataFrame  # COMPARE_COLUMNS; paired ratios first
    alpha: float = ALPHA  # of a false "differs" over the gate (Holm), and of a false "same"

    @property
    def ratios(self) -> pd.DataFrame:
        return self.table[self.table["metric"] == "ratio"]

    @property
    def metrics(self) -> pd.DataFrame:
        return self.table[self.table["metric"] != "ratio"]

    @property
    def answer(self) -> str:
        """differs (a verdict changed or a gated metric differs), same (every gated
        metric the same), else cannot tell."""
        gated = self.table[self.table["gated"]]
        if (~self.verdicts["same"]).any() or (gated["answer"] == DIFFERS).any():
            return DIFFERS
        return SAME if (gated["answer"] == SAME).all() else CANNOT

    def reasons(self, rounds: bool = True) -> list[str]:
        """What decided the answer, in words: the changed verdicts and differing gated
        metrics; or the gated metrics that cannot tell (with the rounds that would tell
        each); empty when the same."""
        gated = self.table[self.table["gated"]]
        if self.answer == DIFFERS:
            return ([f"claim {r.claim}: {r.a} -> {r.b}" for r in self.verdicts.itertuples()
                     if not r.same]
                    + [_change_words(r) for r in gated.itertuples() if r.answer == DIFFERS])
        if self.answer == CANNOT:
            return [f"{_name(r)}: {_cannot_words(r, rounds)}" for r in gated.itertuples()
                    if r.answer == CANNOT]
        return []


def compare(a: Run, b: Run, gate: str = "all", margins: Margins | None = None,
            alpha: float = ALPHA) -> Comparison:
    """Run B against reference A; UsageError when the two have no metric in common, or
    the reference nothing in the gate (B lacking some of the gate's metrics is "cannot
    tell": its path may have failed).

    `alpha`: the chance of a false "differs" over the gate, and of a false "same" (0.05 by
    default); a gate run on every commit takes a smaller one (0.01: one false alarm in a
    hundred runs), paying with more "cannot tell"."""
    if gate not in GATES:
        raise UsageError(f"--gate {gate}: one of {', '.join(GATES)}")
    if not 0 < alpha < 0.5:
        raise UsageError(f"--alpha {alpha:g}: must lie between 0 and 0.5 (0.05, 0.01)")
    margins = margins or Margins()
    rows = _ratio_rows(a, b, margins, True) + _metric_rows(a, b, margins, gate == "all")
    if not any(r["n_b"] for r in rows):
        raise UsageError(f"{a.name} and {b.name}: nothing in common to compare (no metric "
                         "measured in both)")
    if not any(r["gated"] for r in rows):
        raise UsageError(f"{a.name}: no paired ratio to node-node to compare (--gate "
                         "ratios needs a throughput run as the reference)")
    _judge(rows, alpha)
    return Comparison(a, b, gate, margins, verdicts(a, b), _frame(rows), alpha)


def outcome(comparisons: Sequence[Comparison]) -> str:
    """The answer over every comparison: differs if any differs, else cannot tell if any
    cannot, else same."""
    answers = {c.answer for c in comparisons}
    return DIFFERS if DIFFERS in answers else CANNOT if CANNOT in answers else SAME
