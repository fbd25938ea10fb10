"""A campaign's outputs across its points, from what finished (pure but for reading each
point's run directory): every measurement in one tidy frame, the paired ratios per point,
where a swept uplink rate binds, a plot per swept parameter, and campaign.md. The campaign
(experiments/campaign.py) runs the points and writes these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from testbed.results import metadata
from testbed.results.stats import paired_ratios


def tidy(state: Mapping[str, Any]) -> pd.DataFrame:
    """Every point's measurements, with a column per swept parameter and the point's id."""
    frames = []
    for p in state["points"]:
        if not p.get("run"):
            continue
        csv = Path(p["run"]) / "measurements.csv"
        if not csv.exists():
            continue
        df = pd.read_csv(csv)
        df.insert(0, "point", p["id"])
        for i, key in enumerate(state["sweep"]):
            df.insert(1 + i, key, p["values"][key])
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def ratios(state: Mapping[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """Paired ratios to node-node, per point."""
    frames = []
    for point_id, g in df.groupby("point", sort=False) if len(df) else []:
        r = paired_ratios(g[g["metric"] != "error"])
        if len(r):
            for key in reversed(state["sweep"]):
                r.insert(0, key, g[key].iloc[0])
            r.insert(0, "point", point_id)
            frames.append(r)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rate_binding(df: pd.DataFrame) -> pd.DataFrame:
    """With `links.rate_mbit` swept: node-node throughput against the configured rate
    (where the rate binds, HTB should hold TCP within a few % of it)."""
    key = "links.rate_mbit"
    if key not in df.columns or not len(df):
        return pd.DataFrame()
    nn = df[(df["metric"] == "throughput_bps") & (df["path"] == "node-node")]
    others = [c for c in df.columns[1:df.columns.get_loc("experiment")] if c != key]
    rows = []
    for values, g in nn.groupby([key, *others], sort=False):
        values = values if isinstance(values, tuple) else (values,)
        rate = float(values[0])
        median = float(g["value"].median()) / 1e6
        rows.append({key: rate, **dict(zip(others, values[1:])), "runs": len(g),
                     "node-node median Mbit/s": round(median, 2),
                     "of the rate": round(median / rate, 3)})
    return pd.DataFrame(rows)


def plot_png(df: pd.DataFrame, param: str, sweep: Sequence[str]) -> bytes | None:
    """Throughput (and RTT where measured) per path class against one swept parameter;
    a line per path class and combination of the other swept parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.results.plots import figure_png

    metrics = [(m, label, scale) for m, label, scale in (
        ("throughput_bps", "throughput (Mbit/s)", 1e6), ("rtt_avg_ms", "RTT (ms)", 1.0))
        if len(df) and (df["metric"] == m).any()]
    if not metrics:
        return None
    others = [k for k in sweep if k != param]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8),
                             squeeze=False)
    for ax, (metric, label, scale) in zip(axes[0], metrics):
        rows = df[df["metric"] == metric]
        groups = rows.groupby(["path", *others], sort=False)
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            med = g.groupby(param, sort=True)["value"].median() / scale
            name = key[0] + "".join(f", {o}={v}" for o, v in zip(others, key[1:]))
            ax.plot([str(x) for x in med.index] if med.index.dtype == object else med.index,
                    med.values, marker="o", label=name)
        if param == "links.rate_mbit" and metric == "throughput_bps":
            xs = sorted(df[param].unique())
            ax.plot(xs, xs, "k--", linewidth=0.8, label="the configured rate")
        values = rows["value"] / scale
        if len(values) and values.min() > 0 and values.max() / values.min() > 20:
            ax.set_yscale("log")  # shaped and unshaped paths differ by orders
        xs = pd.to_numeric(pd.Series(df[param].unique()), errors="coerce")
        if xs.notna().all() and xs.min() > 0 and xs.max() / xs.min() >= 4:
            ax.set_xscale("log")
            ax.set_xticks(sorted(xs), [f"{x:g}" for x in sorted(xs)])
            ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel(param)
        ax.set_ylabel(label)
        ax.set_title(f"{label} against {param} (medians)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure_png(fig)


def _fidelity(run: str | None) -> str:
    if not run:
        return "-"
    try:
        meta = metadata.read(Path(run))
    except (OSError, ValueError):
        return "-"
    return str((meta.fidelity or {}).get("verdict", "-"))


def markdown(state: Mapping[str, Any], df: pd.DataFrame, r: pd.DataFrame,
             plots: Sequence[str]) -> str:
    points = pd.DataFrame([{"point": p["id"], **p["values"], "status": p["status"],
                            "fidelity": _fidelity(p.get("run")),
                            "run": Path(p["run"]).name if p.get("run") else "-"}
                           for p in state["points"]])
    lines = [f"# Campaign {state['name']}", "",
             f"From `{state['source']}`: {len(state['points'])} point(s) so far, sweeping "
             + ", ".join(f"`{k}`" for k in state["sweep"]) + ".", "",
             points.to_markdown(index=False) if len(points) else "(no point yet)", ""]
    binding = rate_binding(df)
    if len(binding):
        lines += ["## Where the rate binds", "",
                  "node-node TCP against the configured uplink rate (HTB on both ends):",
                  "", binding.to_markdown(index=False), ""]
    if len(r):
        show = r.copy()
        show["95% CI"] = [f"{lo:.3f} .. {hi:.3f}" if not math.isnan(lo) else ""
                          for lo, hi in zip(show.pop("ci95_low"), show.pop("ci95_high"))]
        lines += ["## Paired ratios to node-node, per point", "",
                  show.drop(columns=["baseline"]).round(3).to_markdown(index=False), ""]
    lines += [f"![{p}]({p})\n" for p in plots]
    lines += ["Files: `campaign.csv` (every measurement, a column per swept parameter), "
              "`campaign_ratios.csv`, `campaign.json` (the points and their runs), "
              "`points/<id>/` (each point's topology and run).", ""]
    return "\n".join(lines)
