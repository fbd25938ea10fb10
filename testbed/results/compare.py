"""Two (or more) runs side by side: did the verdicts change, did the numbers move, and
what differed about the machine (issue 13). Pure functions of run directories' contents.

    testbed compare RUN_A RUN_B [RUN_C ...] [-o comparison.md|.html] [--fail-on-difference]

Every later run is compared with the first (the reference: a stored result, for CI's "did
this change the numbers"):

- verdicts: each claim's in both, `same` or `changed`;
- paired ratios (each path's throughput over node-node's in the same round, the figure
  that travels between runs): medians, their ratio with a bootstrap interval, and a
  two-sided Mann-Whitney rank test on the per-round ratios; `significant` below ALPHA,
  `no difference` above, and `too few rounds` when even complete separation could not
  reach ALPHA (three rounds a side cannot: the smallest p is 0.10);
- every other metric (per experiment, path class and metric), the same way;
- the environment: what differs in the metadata (kernel, packages, CPU, parameters,
  pinning, code, topology) and each run's fidelity verdict with its reasons, since a
  difference measured on a disturbed run says little.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from testbed.results.rundir import ERROR, RunDir
from testbed.results.stats import (
    ALPHA,
    holm,
    paired,
    rank_test,
    ratio_of_medians_ci,
    smallest_p,
)

SIGNIFICANT, SAME, TOO_FEW = "significant", "no difference", "too few rounds"
ENV_KEYS = ("environment", "parameters", "pinning", "wiring", "pod_network", "host",
            "topology", "git")
COMPARE_COLUMNS = ["what", "path", "metric", "n_a", "n_b", "median_a", "median_b", "b_over_a",
                   "ci95_low", "ci95_high", "p", "p_holm", "finding"]


@dataclass
class Run:
    """What a comparison reads from a run directory."""

    name: str
    rows: pd.DataFrame
    claims: dict[str, str]  # claim -> verdict
    meta: dict[str, Any]

    @classmethod
    def load(cls, run: RunDir) -> Run:
        raw = run.read("metadata.json")
        try:
            meta = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            meta = {}
        frame = run.frame()
        return cls(run.path.name, frame[frame["metric"] != ERROR],
                   {c: row["verdict"] for c, row in run.claims.items()},
                   meta if isinstance(meta, dict) else {})


def verdicts(a: Run, b: Run) -> pd.DataFrame:
    """Each claim judged in either run: its verdicts and whether they agree."""
    names = list(dict.fromkeys([*a.claims, *b.claims]))
    return pd.DataFrame([{"claim": n, "a": a.claims.get(n, "-"), "b": b.claims.get(n, "-"),
                          "same": a.claims.get(n) == b.claims.get(n)} for n in names],
                        columns=["claim", "a", "b", "same"])


def _row(what: str, path: str, metric: str, xa: Sequence[float],
         xb: Sequence[float]) -> dict[str, Any]:
    ma = float(pd.Series(xa).median()) if len(xa) else math.nan
    mb = float(pd.Series(xb).median()) if len(xb) else math.nan
    low, high = ratio_of_medians_ci(xa, xb)
    return {"what": what, "path": path, "metric": metric, "n_a": len(xa), "n_b": len(xb),
            "median_a": ma, "median_b": mb, "b_over_a": mb / ma if ma else math.nan,
            "ci95_low": low, "ci95_high": high, "p": rank_test(xa, xb)}


def _judged(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The family's findings: Holm-adjusted p below ALPHA is significant; a row whose
    sample sizes could never get there (complete separation, adjusted as the first of the
    family would be) says so instead of `no difference`."""
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adjusted
        if smallest_p(row["n_a"], row["n_b"]) * len(rows) >= ALPHA:
            row["finding"] = TOO_FEW
        else:
            row["finding"] = SIGNIFICANT if adjusted < ALPHA else SAME
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def ratios(a: Run, b: Run, experiment: str = "throughput", metric: str = "throughput_bps",
           baseline: str = "node-node") -> pd.DataFrame:
    """Per path class: the per-round paired ratios of run a against run b's."""
    pa = paired(a.rows, experiment, metric, baseline)
    pb = paired(b.rows, experiment, metric, baseline)
    out = []
    for path in [p for p in dict.fromkeys([*pa["path"], *pb["path"]])]:
        xa = pa[pa["path"] == path]["ratio"].tolist()
        xb = pb[pb["path"] == path]["ratio"].tolist()
        if xa and xb:
            out.append(_row(f"{experiment} / {baseline}", path, "ratio", xa, xb))
    return _judged(out)


def metrics(a: Run, b: Run) -> pd.DataFrame:
    """Per experiment, path class and metric measured in both runs."""
    out = []
    keys = ["experiment", "path", "metric"]
    ga = {k: g["value"].astype(float).tolist() for k, g in a.rows.groupby(keys, sort=False)}
    gb = {k: g["value"].astype(float).tolist() for k, g in b.rows.groupby(keys, sort=False)}
    for key in [k for k in ga if k in gb]:
        out.append(_row(key[0], key[1], key[2], ga[key], gb[key]))
    return _judged(out)


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
    fa = _flatten({k: a.meta.get(k) for k in ENV_KEYS if k in a.meta})
    fb = _flatten({k: b.meta.get(k) for k in ENV_KEYS if k in b.meta})
    rows = [{"key": k, "a": fa.get(k, "-"), "b": fb.get(k, "-")}
            for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    return pd.DataFrame(rows, columns=["key", "a", "b"])


def fidelity(run: Run) -> str:
    """A run's fidelity verdict in words."""
    f = run.meta.get("fidelity")
    if not isinstance(f, Mapping):
        return "not monitored (a run from before the fidelity monitor)"
    reasons = "; ".join(str(r) for r in f.get("reasons", []))
    return str(f.get("verdict", "?")) + (f": {reasons}" if reasons else "")


def differs(a: Run, b: Run) -> list[str]:
    """Why the two runs differ, in words (empty: they agree): changed verdicts and
    significant differences of the paired ratios."""
    out = [f"claim {r.claim}: {r.a} -> {r.b}" for r in verdicts(a, b).itertuples()
           if not r.same]
    out += [f"{r.path} {r.what}: {r.median_a:.3f} -> {r.median_b:.3f} (p {r.p:.3g})"
            for r in ratios(a, b).itertuples() if r.finding == SIGNIFICANT]
    return out


def _fmt(frame: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    return frame.apply(lambda col: col.map(cell)).to_markdown(index=False) if len(frame) \
        else "(none)"


def _metric_table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["B/A 95% CI"] = [f"{lo:.3f} .. {hi:.3f}" if not math.isnan(lo) else ""
                         for lo, hi in zip(out["ci95_low"], out["ci95_high"])]
    return out[["what", "path", "metric", "n_a", "n_b", "median_a", "median_b", "b_over_a",
                "B/A 95% CI", "p", "p_holm", "finding"]]


def markdown(runs: Sequence[Run], figure: str | None = None) -> str:
    """The comparison of every later run with the first, as Markdown."""
    ref = runs[0]
    lines = [f"# Runs compared: {', '.join(r.name for r in runs)}", "",
             f"Reference (A): `{ref.name}`. Rank test: two-sided Mann-Whitney U on the "
             f"values of each side, `{SIGNIFICANT}` when its p, Holm-adjusted over the "
             f"table (many metrics at once: some fall below {ALPHA:g} by chance), is below "
             f"{ALPHA:g}; `{TOO_FEW}` when even completely separated values could not "
             "reach it (three a side cannot; five a side can in a family of up to six: "
             "measure more rounds, `--repeat 5` or more). Intervals: bootstrap, of the "
             "ratio of medians B/A.", ""]
    if figure:
        lines += [f"![{figure}]({figure})", ""]
    for other in runs[1:]:
        v = verdicts(ref, other)
        changed = v[~v["same"]]
        r = ratios(ref, other)
        m = metrics(ref, other)
        sig = m[m["finding"] == SIGNIFICANT]
        diff = differs(ref, other)
        few = len(r) and (r["finding"] == TOO_FEW).all()
        headline = ("**Differs:** " + "; ".join(diff) + "." if diff else
                    "**Same verdicts; the paired ratios rest on too few rounds to show a "
                    "difference** (measure more rounds)." if few else
                    "**Same verdicts, no significant difference in any paired ratio.**")
        suspect = [n for n, run in (("A", ref), ("B", other))
                   if (run.meta.get("fidelity") or {}).get("verdict") == "suspect"]
        if suspect:
            headline += (f" **{' and '.join(suspect)} {'was' if len(suspect) == 1 else 'were'}"
                         " flagged suspect by the fidelity monitor: measure again on a quiet "
                         "machine before drawing conclusions.**")
        lines += [f"## B: `{other.name}`", "", headline, "",
                  f"Fidelity: A {fidelity(ref)}; B {fidelity(other)}.", "",
                  "### Verdicts", "",
                  (f"{len(v)} claim(s), all the same." if changed.empty and len(v) else
                   _fmt(changed if len(changed) else v)), "",
                  "### Paired ratios to node-node (per round)", "", _fmt(_metric_table(r)), "",
                  f"### Other metrics ({len(m)} compared; {len(sig)} significant)", "",
                  _fmt(_metric_table(sig if len(sig) else m.head(0))), "",
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
