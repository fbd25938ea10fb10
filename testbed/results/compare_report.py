"""`testbed compare`'s report: the Markdown a reader gets (the method, each run's fidelity,
the paired ratios and other metrics as tables, the metadata that differs) and the figure of
the paired ratios. Apart from the comparison (testbed/results/compare.py), which decides."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from testbed.results.compare import (
    ENV_KEYS,
    Comparison,
    Margins,
    Run,
    compare,
)
from testbed.results.compare_words import (
    CANNOT,
    DIFFERS,
    RATIOS,
    SAME,
    _answer_words,
    _detectable_words,
    _margin_words,
    _rounds_words,
    headline,
)
from testbed.results.stats import ALPHA, LEVEL, LOG, POWER


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, Mapping):
        out: dict[str, str] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list):
        return {prefix: json.dumps(data, sort_keys=True, default=str)}
    return {prefix: str(data)}


def environment(a: Run, b: Run) -> pd.DataFrame:
    """The metadata that differs between the runs (what could explain a difference)."""
    da, db = a.meta.to_dict(), b.meta.to_dict()
    fa = _flatten({k: da[k] for k in ENV_KEYS if k in da})
    fb = _flatten({k: db[k] for k in ENV_KEYS if k in db})
    rows = [{"key": k, "a": fa.get(k, "-"), "b": fb.get(k, "-")}
            for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    return pd.DataFrame(rows, columns=["key", "a", "b"])


def fidelity(run: Run) -> str:
    """A run's fidelity verdict in words (with clean rounds: what was left out)."""
    f = run.meta.fidelity
    if not isinstance(f, Mapping):
        return "not monitored (a run from before the fidelity monitor)"
    if run.dropped is not None:
        if not run.dropped:
            return "ok in every round compared (no round left out)"
        return (f"ok in every round compared; {len(run.dropped)} round(s) measured in a "
                "window not judged ok left out (" + ", ".join(
                    f"{e} r{r}" for e, r in run.dropped[:6])
                + (", ..." if len(run.dropped) > 6 else "") + ")")
    reasons = "; ".join(str(r) for r in f.get("reasons", []))
    return str(f.get("verdict", "?")) + (f": {reasons}" if reasons else "")


def suspect(run: Run) -> bool:
    """Whether what is compared of the run was measured in a suspect window."""
    if run.dropped is not None:
        return False  # only the rounds judged ok are left
    return run.meta.fidelity_verdict == "suspect"


def _fmt(frame: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    return frame.apply(lambda col: col.map(cell)).to_markdown(index=False) if len(frame) \
        else "(none)"


def _metric_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per metric: A and B, B/A (or, in brackets, B - A for a metric with a zero) with its
    95 % interval, the answer, the margin, and for "cannot tell" the smallest detectable
    change and rounds needed."""
    out = []
    for r in frame.itertuples():
        log = r.scale == LOG
        out.append({
            "path": r.path, "metric": r.metric if r.metric != "ratio" else r.what,
            "rounds A/B": f"{r.n_a}/{r.n_b}", "A": r.a, "B": r.b,
            "B/A (B - A)": f"{r.estimate:.4g}" if log else f"({r.estimate:+.4g})",
            "95 % interval": "" if math.isnan(r.ci95_low) else (
                f"{r.ci95_low:.4g} .. {r.ci95_high:.4g}"),
            "answer": _answer_words(r) + ("" if r.gated else " (not gated)"),
            "margin": _margin_words(r),
            "smallest detectable change": (_detectable_words(r) + f" (measure "
                                           f"{_rounds_words(r.rounds_needed)} rounds)"
                                           if r.answer == CANNOT else ""),
            "p (Holm)": r.p_holm, "note": r.note})
    return pd.DataFrame(out)


def _about(margins: Margins, alpha: float = ALPHA) -> str:
    return (f"Each metric is compared on the log scale (B/A: the ratio of the geometric "
            f"means, with its {LEVEL:.0%} Welch t interval; a metric with a zero as B - A "
            f"in its units): **differs** when the two-sided Welch t-test of \"no change\", "
            f"Holm-adjusted over the gated metrics, is below {alpha:g} and the change is "
            f"not shown to be within the margin; **same within ±m** when two one-sided "
            f"tests at {alpha:g} put the change within the margin (the "
            f"{1 - 2 * alpha:.0%} interval of B/A inside [1/(1+m), 1+m]; the whole gate "
            f"is the same only when each metric is); otherwise **cannot tell**, with the "
            f"smallest change these rounds detect with {POWER:.0%} power and the rounds a "
            f"side that would give a definite answer were the change the one observed. "
            f"One value per round (the round's median). Margins: {margins.describe()} "
            "(`--margin`).")


def markdown(runs: Sequence[Run], figure: str | None = None, gate: str = "all",
             margins: Margins | None = None,
             comparisons: Sequence[Comparison] | None = None, alpha: float = ALPHA) -> str:
    """The comparison of every later run with the first, as Markdown (at the level the
    comparisons were made at, when given)."""
    ref = runs[0]
    margins = margins or Margins()
    comparisons = comparisons or [compare(ref, other, gate, margins, alpha)
                                  for other in runs[1:]]
    alpha = comparisons[0].alpha if comparisons else alpha
    lines = [f"# Runs compared: {', '.join(r.name for r in runs)}", "",
             f"Reference (A): `{ref.name}`. Gate: `{gate}` ("
             + ("verdicts and paired ratios decide; absolute figures are shown, not gated"
                if gate == RATIOS else "verdicts and every metric decide") + "). "
             + _about(margins, alpha), ""]
    if figure:
        lines += [f"![{figure}]({figure})", ""]
    for c in comparisons:
        other = c.b
        text = headline(c)
        flagged = [n for n, run in (("A", ref), ("B", other)) if suspect(run)]
        if flagged:
            text += (f" **{' and '.join(flagged)} {'was' if len(flagged) == 1 else 'were'}"
                     " flagged suspect by the fidelity monitor: measure again on a quiet "
                     "machine before drawing conclusions.**")
        v = c.verdicts
        changed = v[~v["same"]]
        m = c.metrics
        counts = ", ".join(f"{(m['answer'] == a).sum()} {a}" for a in (DIFFERS, SAME, CANNOT))
        lines += [f"## B: `{other.name}`", "", text, "",
                  f"Fidelity: A {fidelity(ref)}; B {fidelity(other)}.", "",
                  "### Verdicts", "",
                  (f"{len(v)} claim(s), all the same." if changed.empty and len(v) else
                   _fmt(changed if len(changed) else v)), "",
                  "### Paired ratios to node-node (per round)", "",
                  _fmt(_metric_table(c.ratios)), "",
                  f"### Other metrics ({len(m)} compared: {counts})", "",
                  _fmt(_metric_table(m)), "",
                  "### What differs in the metadata", "", _fmt(environment(ref, other)), ""]
    return "\n".join(lines)


def ratios_png(runs: Sequence[Run]) -> bytes | None:
    """Each run's median paired ratio per path class, with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.results.plots import figure_png
    from testbed.results.stats import paired_ratios

    tables = [(r.name, paired_ratios(r.rows)) for r in runs]
    paths = list(dict.fromkeys(p for _, t in tables for p in t["path"]))
    if not paths:
        return None
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(paths)), 3.4))
    width = 0.8 / len(tables)
    for i, (name, t) in enumerate(tables):
        t = t.set_index("path").reindex(paths)
        xs = [j + i * width for j in range(len(paths))]
        err = [(t["median"] - t["ci95_low"]).fillna(0).clip(lower=0),
               (t["ci95_high"] - t["median"]).fillna(0).clip(lower=0)]
        ax.bar(xs, t["median"].fillna(0), width, yerr=err, capsize=3, label=name)
    ax.set_xticks([j + width * (len(tables) - 1) / 2 for j in range(len(paths))], paths,
                  fontsize=8)
    ax.set_ylabel("throughput / node-node (same round)")
    ax.set_title("Paired ratios, median and 95 % bootstrap interval", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
