"""From tidy measurements to a summary table, plots and a report a reader can trust.

Pure functions of pandas frames (tested without root), plus the plot writers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from scipy import stats

from testbed.model.paths import (
    EXPECTED_TTL,
    PATH_ORDER,
    ROUTE_DESCRIPTION,
    in_path_order,
    routed_hops,
)
from testbed.results.metadata import RunMetadata
from testbed.results.rundir import ERROR
from testbed.results.stats import clip, paired_ratios

SUMMARY_COLUMNS = ["experiment", "path", "metric", "unit", "count", "median", "mean", "std",
                   "ci95_low", "ci95_high"]


def ci95(values: pd.Series) -> tuple[float, float]:
    """Two-sided 95 % confidence interval of the mean (Student's t); NaN for n < 2."""
    n = int(values.count())
    if n < 2:
        return math.nan, math.nan
    mean = float(values.mean())
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, path class and metric: count, median, mean, std and 95 % CI."""
    df = df[df["metric"] != ERROR]  # no number: listed in the report's Errors section
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = []
    for (exp, path, metric, unit), g in df.groupby(["experiment", "path", "metric", "unit"],
                                                    sort=False):
        v = g["value"].astype(float)
        low, high = clip(ci95(v), metric)  # never outside what the metric can be
        rows.append({
            "experiment": exp, "path": path, "metric": metric, "unit": unit,
            "count": int(v.count()), "median": float(v.median()), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.count() > 1 else math.nan,
            "ci95_low": low, "ci95_high": high,
        })
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = {p: i for i, p in enumerate(PATH_ORDER)}
    out["_o"] = out["path"].map(lambda p: order.get(p, len(order)))
    return out.sort_values(["experiment", "_o", "metric"]).drop(columns="_o").reset_index(
        drop=True)


def hops_table(df: pd.DataFrame, expected_ttl: Mapping[str, int] | None = None,
               routes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Reply TTL per path class, the routed hops it implies, and whether it is as the pod
    network expects (`expected_ttl` and the `routes` it describes, by path class;
    default kubenet's)."""
    expected_ttl = EXPECTED_TTL if expected_ttl is None else expected_ttl
    routes = ROUTE_DESCRIPTION if routes is None else routes
    ttl = df[df["metric"] == "ttl"]
    rows = []
    for path in in_path_order(list(ttl["path"].unique())):
        values = ttl[ttl["path"] == path]["value"].astype(int)
        seen = sorted(values.unique().tolist())
        expected = expected_ttl.get(path)
        rows.append({
            "path": path,
            "route": routes.get(path, ""),
            "reply TTL": ", ".join(map(str, seen)),
            "routed hops": ", ".join(str(routed_hops(t)) for t in seen),
            "expected TTL": expected if expected is not None else "",
            "as expected": "yes" if expected is not None and seen == [expected] else "NO",
        })
    return pd.DataFrame(rows)


def reachability_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Mean loss (%) from each source (rows) to each destination (columns)."""
    loss = df[df["metric"] == "loss_pct"]
    if loss.empty:
        return pd.DataFrame()
    return loss.pivot_table(index="src", columns="dst", values="value", aggfunc="mean")


def throughput_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Median throughput per path class, its CI, and its ratio to the node-node baseline."""
    t = summary[summary["metric"] == "throughput_bps"].copy()
    if t.empty:
        return pd.DataFrame()
    base = t[t["path"] == "node-node"]["median"]
    baseline = float(base.iloc[0]) if not base.empty else math.nan
    return pd.DataFrame({
        "path": t["path"],
        "runs": t["count"],
        "median Gbit/s": (t["median"] / 1e9).round(2),
        "mean Gbit/s": (t["mean"] / 1e9).round(2),
        "95% CI Gbit/s": [
            "" if math.isnan(lo) else f"{lo / 1e9:.2f} .. {hi / 1e9:.2f}"
            for lo, hi in zip(t["ci95_low"], t["ci95_high"])
        ],
        "vs node-node": (t["median"] / baseline).round(3),
    }).reset_index(drop=True)


def latency_table(summary: pd.DataFrame) -> pd.DataFrame:
    rtt = summary[summary["metric"].isin(["rtt_avg_ms", "rtt_min_ms"])]
    if rtt.empty:
        return pd.DataFrame()
    wide = rtt.pivot_table(index="path", columns="metric", values="median", sort=False)
    wide = wide.reindex(in_path_order(list(wide.index)))
    return wide.round(4).reset_index().rename(
        columns={"rtt_avg_ms": "median of avg RTT (ms)", "rtt_min_ms": "median of min RTT (ms)"})


def findings(df: pd.DataFrame, summary: pd.DataFrame,
             expected_ttl: Mapping[str, int] | None = None,
             routes: Mapping[str, str] | None = None) -> list[str]:
    """Plain sentences of what the numbers show (each one computed, never assumed)."""
    out: list[str] = []
    errors = df[df["metric"] == ERROR]
    if not errors.empty:
        out.append(f"{len(errors)} measurement(s) could not be made (see Errors): they are "
                   "left out of every number here, not counted as loss.")
    loss = df[df["metric"] == "loss_pct"]
    if not loss.empty:
        pairs = loss.groupby(["src", "dst"])["value"].max()
        ok = int((pairs == 0).sum())
        out.append(f"Reachability: {ok} of {len(pairs)} source/destination pairs answered every "
                   "ping in every repeat.")
    hops = hops_table(df, expected_ttl, routes)
    for _, row in hops.iterrows():
        if row["path"] in ("pod-same-node", "pod-cross-node"):
            out.append(f"{row['path']}: replies arrive with TTL {row['reply TTL']}, i.e. "
                       f"{row['routed hops']} routed hop(s) ({row['route']}); "
                       f"expected TTL {row['expected TTL']}: {row['as expected']}.")
    tp = throughput_table(summary)
    if not tp.empty and "node-node" in set(tp["path"]):
        for path in ("pod-cross-node", "pod-same-node", "pod-localhost"):
            r = tp[tp["path"] == path]
            if not r.empty:
                ratio = float(r["vs node-node"].iloc[0])
                out.append(f"{path} throughput is {ratio:.2f}x the node-node underlay baseline "
                           f"({float(r['median Gbit/s'].iloc[0]):.2f} vs "
                           f"{float(tp[tp['path'] == 'node-node']['median Gbit/s'].iloc[0]):.2f}"
                           " Gbit/s, medians).")
    return out


def _md(frame: pd.DataFrame, **kwargs: Any) -> str:
    if frame.empty:
        return "_(no data)_"
    return frame.to_markdown(**kwargs)


def errors_section(df: pd.DataFrame) -> list[str]:
    """What could not be measured, and why (nothing when everything was)."""
    errors = df[df["metric"] == ERROR]
    if errors.empty:
        return []
    table = errors[["experiment", "repeat", "src", "dst", "note"]]
    return ["## Errors (could not measure)", "", _md(table, index=False), ""]


def claims_section(claims: pd.DataFrame | None) -> list[str]:
    """The series' claims (the seed article's, then the Services part's, then traffic from
    outside) and their verdicts: the report opens with them. A verdict measured in a
    window the fidelity monitor found suspect stands as measured, and says so."""
    if claims is None or claims.empty:
        return []
    table = claims[["claim", "verdict", "evidence"]].copy()
    window = (claims["fidelity"].astype(str) if "fidelity" in claims
              else pd.Series("", index=claims.index))
    suspect = window.str.startswith("suspect")
    table["verdict"] = [f"**{v}**" + (" (measured in a suspect window)" if bad else "")
                        for v, bad in zip(table["verdict"], suspect)]
    table.insert(2, "fidelity", [w.split(":", 1)[0] or "-" for w in window])
    counts = claims["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("confirmed", "refuted", "error"))
    if counts.get("not applicable", 0):  # the topology lacked what those claims need
        summary += f", {counts['not applicable']} not applicable"
    flagged = ([f"{int(suspect.sum())} claim(s) measured in a window the fidelity monitor "
                "found suspect: the verdict stands as measured, but the machine may not "
                "have kept up (the reasons: `claims.csv`, column `fidelity`).", ""]
               if suspect.any() else [])
    return ["## The series' claims", "", f"{len(claims)} claims: {summary}.", "",
            *flagged, _md(table, index=False), "", "Key numbers: see `claims.csv`.", ""]


def fidelity_checked(thresholds: Mapping[str, Any] | None) -> str:
    """What the fidelity monitor checked, in words, from the thresholds the run recorded
    (metadata.json): no more than it did."""
    t = thresholds or {}
    if t.get("method") != "proc-stat":
        return ("CPU of other processes seen in two consecutive samples, averaged over each "
                "measurement, and steal (a run from before issue 23: processes in any other "
                "network namespace were taken for the emulation's, short-lived ones were "
                "not counted)")
    cores = int(t.get("cores", 1))
    mean_share, slice_share = float(t["foreign_mean_share"]), float(t["foreign_slice_share"])
    return (f"CPU used outside the emulation (outside the run's process tree and the "
            f"network namespaces it made): the machine's busy time from /proc/stat, irq "
            f"and softirq included, minus the emulation's processes and the children they "
            f"reaped and kernel threads, so short-lived processes count; at most "
            f"{mean_share * cores:.2f} cores on average over each measurement "
            f"({mean_share:.0%} of {cores}) and {slice_share * cores:.2f} in any "
            f"{float(t['slice_s']):g} s slice; other tasks waiting to run; steal at most "
            f"{float(t['steal_pct']):g} % ({float(t['steal_slice_pct']):g} % in a slice). "
            "Not checked: memory, disk, the machine's own network")


def fidelity_section(verdict: Mapping[str, Any] | None,
                     units: pd.DataFrame | None) -> list[str]:
    """The run's fidelity verdict first, in one line with what was checked, then the units
    that were not `ok` (their reasons and figures); nothing for a run made before the
    monitor existed."""
    if not verdict:
        return []
    ok = verdict.get("verdict") == "ok"
    n = 0 if units is None else len(units)
    checked = fidelity_checked(verdict.get("thresholds"))
    lines = [f"**Fidelity: {'ok' if ok else 'SUSPECT'}**: " + (
        f"no measurement flagged ({n} unit(s) sampled; `fidelity.csv`). " if ok else
        "some measurements may be wrong: " + "; ".join(verdict.get("reasons", [])) + ". ")
        + f"Checked: {checked}.", ""]
    if units is not None and not ok:
        bad = units[units["verdict"] != "ok"]
        if len(bad):
            figures = [c for c in ("foreign_cpu", "foreign_cpu_peak", "foreign_runnable",
                                   "steal_pct") if c in bad]
            lines += ["Measurements the fidelity monitor flagged (foreign CPU in cores: "
                      "mean over the unit's window and its busiest slice; steal in %):", "",
                      _md(bad[["label", "verdict", "reasons", *figures]].head(20),
                          index=False),
                      "" if len(bad) <= 20 else f"... and {len(bad) - 20} more in "
                      "`fidelity.csv`.", ""]
    return lines


def faults_section(summary: pd.DataFrame) -> list[str]:
    """Each fault's recovery (experiments/catalogue/measurements/faults.py): medians over
    its rounds."""
    rows = summary[summary["experiment"].str.startswith("faults/")]
    if rows.empty:
        return []
    table = rows.pivot_table(index="experiment", columns="metric", values="median",
                             sort=False)
    counts = rows.groupby("experiment", sort=False)["count"].max()
    out = pd.DataFrame({
        "fault": [e.split("/", 1)[1] for e in table.index],
        "rounds": [int(counts[e]) for e in table.index],
        "recovery (ms)": (table.get("recovery_s", pd.Series(math.nan, table.index))
                          * 1000).round(1).tolist(),
        "outage (s)": table.get("outage_s", pd.Series(math.nan, table.index)).round(3).tolist(),
        "probes lost": table.get("lost", pd.Series(math.nan, table.index)).tolist()})
    if "frozen" in table:  # a node stopped: how many of its processes were frozen
        out["processes frozen"] = ["" if math.isnan(v) else int(v) for v in table["frozen"]]
    return ["## Faults: time to recover", "",
            "A pod on one node pings a pod on another every 20 ms while one thing breaks "
            "for 1 s and is put back: recovery is from the restoring action to the first "
            "reply (so it includes the action itself: vtysh for a route), outage from the "
            "last reply before to the first after (medians). A stopped node has every "
            "process of it and its pods frozen (SIGSTOP) and its uplink down; started, "
            "exactly those resume (pods are not recreated, as kubelet would after a "
            "reboot).", "",
            _md(out, index=False), ""]


def ratio_section(df: pd.DataFrame, pinning: Mapping[str, Any] | None,
                  target: float | None = None) -> list[str]:
    """Each path's throughput over node-node's in the same round: the figure to compare
    across runs and machines (testbed.results.stats); with a target interval width
    (--target-ci), whether each path met it."""
    ratios = paired_ratios(df)
    if ratios.empty:
        return []
    widths = [(hi - lo) / m if m else math.nan
              for lo, hi, m in zip(ratios["ci95_low"], ratios["ci95_high"], ratios["median"])]
    where = ("iperf3's client on CPU {client_cpu}, its server on CPU {server_cpu}".format(
        **pinning) if pinning and pinning.get("pinned") else
        f"iperf3 not pinned ({(pinning or {}).get('why', 'a run from before pinning')})")
    table = pd.DataFrame({
        "path": ratios["path"], "rounds": ratios["rounds"],
        "median ratio": ratios["median"].round(3),
        "95% CI (bootstrap)": ["" if math.isnan(lo) else f"{lo:.3f} .. {hi:.3f}"
                               for lo, hi in zip(ratios["ci95_low"], ratios["ci95_high"])],
        "CI width / median": [round(w, 3) for w in widths]})
    table = table.set_index("path").reindex(
        in_path_order(list(table["path"]))).reset_index()
    return ["### Paired: each path over node-node in the same round", "",
            "Paths are measured in interleaved rounds (one of each path, then the next "
            "round), so a slow moment of the machine weighs on both sides of a ratio; "
            f"{where}. Intervals are bootstrap percentile intervals of the median "
            "(narrow and optimistic with few rounds: read them with the round count).", "",
            _md(table, index=False), "",
            *([f"Target width {target:g} of the median (`--target-ci`): "
               + ("met by every path." if all(w <= target for w in widths) else
                  "not met by " + ", ".join(str(p) for p, w in zip(ratios["path"], widths)
                                            if not w <= target)
                  + " (the budget or the round limit came first; see raw/throughput/"
                  "target_ci.json)."), ""] if target is not None else [])]


def render_markdown(df: pd.DataFrame, summary: pd.DataFrame,
                    meta: RunMetadata | Mapping[str, Any], plots: list[str],
                    claims: pd.DataFrame | None = None,
                    fidelity_units: pd.DataFrame | None = None) -> str:
    """The whole report.md, from the run's tables and its metadata (the record, or
    metadata.json's object as read: a run of any format version)."""
    m = meta if isinstance(meta, RunMetadata) else RunMetadata.from_dict(meta)
    lines = [
        f"# Pod network report: {(m.topology or {}).get('name', '?')}",
        "",
        f"Run `{m.run_id}`, status **{m.status}**, "
        f"{m.started_utc or ''} to {m.finished_utc or ''} UTC; "
        f"code {m.git_commit or 'unknown'}.",
        "",
        *fidelity_section(m.fidelity, fidelity_units),
        *claims_section(claims),
        "## What it shows",
        "",
        *[f"- {s}" for s in findings(df, summary, m.expected_ttl, m.route_description)],
        "",
        "## Cluster",
        "",
        *(["![cluster.png](cluster.png)", ""] if "cluster.png" in plots else []),
        _md(pd.DataFrame(m.node_rows), index=False),
        "",
        _md(pd.DataFrame(m.pods or []), index=False),
        "",
        "Router routes (installed by FRR staticd, `proto static`): "
        + ", ".join(f"`{r}`" for r in m.router_routes or []),
        "",
        "## Hops (reply TTL)",
        "",
        "Linux sends with TTL 64; every router on the way back takes one off.",
        "",
        _md(hops_table(df, m.expected_ttl, m.route_description), index=False),
        "",
        "## Reachability (mean loss %, rows ping columns)",
        "",
        _md(reachability_matrix(df).round(1).astype(object).where(
            reachability_matrix(df).notna(), "-")),
        "",
        *errors_section(df),
        "## Latency",
        "",
        _md(latency_table(summary), index=False),
        "",
        "## Throughput (iperf3, one TCP stream)",
        "",
        _md(throughput_table(summary), index=False),
        "",
        *ratio_section(df, m.pinning, m.target_ci),
        *faults_section(summary),
    ]
    for plot in plots:
        if plot != "cluster.png":  # drawn in the Cluster section
            lines += [f"![{plot}]({plot})", ""]
    lines += [
        "## Files",
        "",
        "`measurements.csv` (one measurement a row), `summary.csv` (per path class and metric),"
        " `metadata.json` (topology, parameters, versions), `raw/` (tool output).",
        "",
        "Reproduce with:",
        "",
        f"    {m.command or ''}",
        "",
    ]
    return "\n".join(lines)

