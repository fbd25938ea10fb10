"""A run's report: summary, ratios, plots, report.md and .html, from the run's tables and
its metadata (testbed.results.metadata), whatever happened (a partial run too).

The cluster's drawing is made when the shared cluster is up, from the cluster as built
(`draw_cluster`, called by the session), and kept as cluster.png: the report does not
re-read the topology. An experiment adds a section of its own through its plug-in: an
optional `report_section(frame)` on the registry's object (experiments/framework/base.py); the
report asks each experiment of the run and knows none by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from experiments.framework.base import Experiment, ReportSection
from testbed.model.addressing import AddressPlan
from testbed.model.spec import ClusterSpec
from testbed.results import graph, plots, report
from testbed.results.fidelity import units_frame
from testbed.results.html import render_html
from testbed.results.metadata import FILE, RunMetadata
from testbed.results.rundir import RunDir
from testbed.results.stats import paired_ratios

CLUSTER_PNG = "cluster.png"
MAX_DRAWN_NODES = 60  # the report draws the cluster up to this size (testbed graph: any)
# (file, metric, scale, unit, title) of the bar charts every report has
PLOTS = (
    ("throughput.png", "throughput_bps", 1e9, "Gbit/s",
     "TCP throughput by path class (mean, 95 % CI)"),
    ("rtt.png", "rtt_avg_ms", 1.0, "ms", "Average ping RTT by path class (mean, 95 % CI)"),
)


def draw_cluster(spec: ClusterSpec, plan: AddressPlan, bridge: str | None,
                 pods: Iterable[Mapping[str, Any]],
                 router_routes: list[str] | None) -> bytes | None:
    """The cluster as built (testbed.results.graph) with the addresses its pods got, as
    PNG; None for a cluster too large to draw usefully (a page metres long helps nobody)."""
    if len(spec.nodes) > MAX_DRAWN_NODES:
        return None
    ips = {row["pod"]: row["ip"] for row in pods if isinstance(row, Mapping)}
    return graph.render(spec, plan, bridge, spec.pod_network, "png", ips, router_routes)


def sections(experiments: Iterable[Experiment], frame: pd.DataFrame) -> list[ReportSection]:
    """The sections the run's experiments add to the report (in the order given), each
    with the figures it shows; experiments without the hook, or with nothing to show for
    these rows, add none."""
    out = []
    for experiment in experiments:
        hook = getattr(experiment, "report_section", None)
        section = hook(frame) if hook is not None else None
        if section is not None and section[0]:
            out.append(section)
    return out


def write_report(run: RunDir, meta: RunMetadata, experiments: Iterable[Experiment]) -> None:
    """Summary, plots, report and metadata from whatever was measured (even a partial run)."""
    df = run.frame()
    summary = report.summarize(df)
    run.write_csv("summary.csv", summary)
    ratios = paired_ratios(df)
    if not ratios.empty:
        run.write_csv("ratios.csv", ratios)
    shown = []
    for name, metric, scale, label, title in PLOTS:
        png = plots.plot_png(summary, metric, scale, label, title)
        if png is not None:
            run.write(name, png)
            shown.append(name)
    shown += [name for name in run.figures if run.exists(name)]
    if run.exists(CLUSTER_PNG):  # drawn when the cluster came up (a resumed run's too)
        shown.insert(0, CLUSTER_PNG)
    extra = sections(experiments, df)  # drawn from the rows: a resumed run has them too
    for _, figures in extra:
        for name, png in figures.items():
            run.write(name, png)
    meta.figures = list(run.figures)
    markdown = report.render_markdown(df, summary, meta, shown, run.claims_frame(),
                                      units_frame(run))
    for lines, _ in extra:
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(lines)
    run.write("report.md", markdown)
    title = f"Pod network report: {meta.topology_name}"
    run.write("report.html", render_html(markdown, run.read, title))
    meta.files = [name for name in run.listdir() if not name.startswith(".")]
    meta.rows = len(df)
    meta.claims = {c: row["verdict"] for c, row in run.claims.items()}
    run.write_json(FILE, meta.to_dict())
