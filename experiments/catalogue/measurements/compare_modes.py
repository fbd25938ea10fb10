"""The same workload under every pod network, on the same topology: the emulated
counterpart of a CNI benchmark, on an underlay the testbed controls (issue 11).

For each mode (every registered one but docker-default, whose cross-node traffic does not
arrive by design) a cluster of its own is built from
the suite's topology with `pod_network` replaced (wired by the real plugins), and
measured:

    throughput_ratio    pod-cross-node (and pod-same-node, where a node has two pods)
                        over node-node iperf3 throughput, paired: the paths run back to
                        back in each round (ABCABC...), so a slow moment of the machine
                        weighs on both sides of a ratio
    rtt_avg_ms, ttl     ping along the same path classes
    pod_mtu             the pods' MTU (what encapsulation costs)
    pod_up_ms           the bring-up step `pods` over the pods it made
    converge_s          for a mode with routing daemons (Calico's BIRD): from their start
                        until every node has every other node's routes
    leave_s, join_s     for such a mode, once the rest is measured: the second node
                        deleted from the pod network, then added back (Cluster.leave,
                        join), until every kernel agreed; other modes' agents are the
                        testbed's own code, with no API server watch whose delay a time
                        would show, so they have no figure
    node_routes, node_neighbours   IPv4 routes and neighbour entries of the first node,
                        once the traffic above has flowed

The rows' metrics are its own (`cmp_*`), so they never mix with the shared cluster's in
the report's other sections; the report's "Pod networks compared" table and
`pod_network_comparison.png` (drawn from measurements.csv, so a resumed run gets them
too) show them side by side. A mode that cannot run on the topology (one node, say)
gives an error row with the reason, not a number.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pandas as pd

from experiments.framework.base import (
    COMPARABLE,
    MEASUREMENT,
    OWN_CLUSTERS,
    Context,
    ReportSection,
    Result,
    Rows,
)
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv
from testbed.measure.ping import parse_ping
from testbed.model.spec import ClusterSpec
from testbed.results.rundir import Measurement

NAME = "pod-network-comparison"
PNG = "pod_network_comparison.png"
MODES = COMPARABLE  # by default; `--modes` (Params.modes) chooses among them
SERVER = "iperf3-server"
CONNECT_RETRY_S = 5.0
METRICS = {  # metric -> (label for the table and plot, unit)
    "cmp_throughput_ratio": ("throughput / node-node", "ratio"),
    "cmp_rtt_avg_ms": ("RTT", "ms"),
    "cmp_ttl": ("reply TTL", "hops-left"),
    "cmp_pod_mtu": ("pod MTU", "bytes"),
    "cmp_pod_up_ms": ("bring-up per pod", "ms"),
    "cmp_converge_s": ("routing daemons' convergence", "s"),
    "cmp_leave_s": ("a node leaves: convergence", "s"),
    "cmp_join_s": ("a node joins: convergence", "s"),
    "cmp_node_routes": ("routes on node-1", "count"),
    "cmp_node_neighbours": ("neighbour entries on node-1", "count"),
}
# measured per path class: a column each (pod-cross-node first)
PER_PATH = ("cmp_throughput_ratio", "cmp_rtt_avg_ms", "cmp_ttl")
PATHS = ("pod-cross-node", "pod-same-node")


def _row(ctx: Context, c: Cluster, mode: str, rep: int, src: str, dst: str, path: str,
         metric: str, value: float) -> Measurement:
    m = ctx.measurement(f"{NAME}/{mode}", rep, src, dst, path, metric, value, cluster=c)
    return dataclasses.replace(m, unit=METRICS[metric][1])


def _iperf(c: Cluster, src: str, dst: str, node_level: bool, duration_s: int,
           port: int, pin: tuple[int, int] | None) -> float:
    """One iperf3 run's throughput (bit/s), retried while the server starts."""
    argv = client_argv(c.endpoint_ip(dst), port, duration_s, pin=pin)
    deadline = time.monotonic() + CONNECT_RETRY_S
    while True:
        res = (c.exec_node(src, argv, timeout=duration_s + 20) if node_level
               else c.pod(src).exec(argv, timeout=duration_s + 20))
        if "Connection refused" not in res.stdout + res.stderr or time.monotonic() > deadline:
            return parse_iperf3_json(res.stdout).metrics()["throughput_bps"]
        time.sleep(0.1)


class PodNetworkComparison:
    """See the module docstring."""

    name = NAME
    kind = MEASUREMENT
    needs = OWN_CLUSTERS

    def steps(self, ctx: Context) -> int:
        return len(ctx.params.modes or MODES)

    @classmethod
    def report_section(cls, frame: pd.DataFrame) -> ReportSection | None:
        """The report's "Pod networks compared" and its plot, from the run's rows (so a
        resumed run has them too); None when the rows hold no comparison."""
        lines = comparison_markdown(frame)
        return (lines, {PNG: comparison_png(frame)}) if lines else None

    def run(self, ctx: Context) -> Iterator[Result]:
        for mode in ctx.params.modes or MODES:
            label = f"{NAME} {mode}"
            if ctx.is_done(f"{NAME}/{mode}", 1, "node-1", "node-1"):
                yield Rows(f"{label} (kept from before)")
                continue
            spec = dataclasses.replace(ctx.spec, pod_network=mode)
            try:
                rows = self._one(ctx, spec, mode)
            except TestbedError as exc:  # this mode cannot run on this topology: say why
                ctx.progress.note(f"{NAME}: {mode}: {exc}")
                yield Rows(f"{label}: could not measure", (ctx.error(
                    f"{NAME}/{mode}", 1, "node-1", "node-1", "node", str(exc)),))
                continue
            yield Rows(label, tuple(rows))

    def _one(self, ctx: Context, spec: ClusterSpec, mode: str) -> list[Measurement]:
        p = ctx.params
        rows: list[Measurement] = []
        with Cluster(spec, progress=ctx.progress.note, wiring="cni") as c:
            by_node = c.pods_by_node()
            nodes = [n for n in c.node_names if by_node.get(n)]
            if len(nodes) < 2:
                raise TestbedError("the comparison needs pods on two nodes")
            src, dst = by_node[nodes[0]][0], by_node[nodes[1]][0]
            node_a, node_b = nodes[0], nodes[1]
            pods = len(c.pods)
            rows.append(_row(ctx, c, mode, 1, node_a, node_a, "node", "cmp_pod_up_ms",
                             1000 * c.timings.get("pods_s", 0.0) / max(pods, 1)))
            rows.append(_row(ctx, c, mode, 1, src, src, "pod-localhost", "cmp_pod_mtu",
                             float(c.mtu[node_a])))
            if any(s.daemons for s in c.node_setups.values()):  # BGP: Calico's BIRD mesh
                rows.append(_row(ctx, c, mode, 1, node_a, node_a, "node", "cmp_converge_s",
                                 c.timings.get("converge_s", 0.0)))
            same = by_node[nodes[0]][1] if len(by_node[nodes[0]]) > 1 else None
            pairs = [("pod-cross-node", src, dst)] + (
                [("pod-same-node", src, same)] if same else [])
            for path, a, b in pairs:
                ping = c.pod(a).exec(["ping", "-c", str(p.ping_count), "-i",
                                      str(p.ping_interval_s), "-W1", c.endpoint_ip(b)])
                parsed = parse_ping(ping.stdout)
                ctx.raw(f"{NAME}/{mode}_{path}_ping.txt", ping.stdout + ping.stderr)
                if parsed.loss_pct == 100:
                    raise TestbedError(f"{a} cannot reach {b} under {mode}")
                rows.append(_row(ctx, c, mode, 1, a, b, path, "cmp_rtt_avg_ms",
                                 parsed.rtt_avg_ms))
                rows.append(_row(ctx, c, mode, 1, a, b, path, "cmp_ttl", float(parsed.ttl)))
                c.add_container(b, SERVER, server_argv(p.iperf_port))
            node_server = c.popen_node(node_b, server_argv(p.iperf_port))
            try:
                for rep in range(1, p.repeat + 1):  # every path, then node-node: paired
                    pod_bps = {path: _iperf(c, a, b, False, p.iperf_duration_s, p.iperf_port,
                                             p.pin_cpus())
                               for path, a, b in pairs}
                    node_bps = _iperf(c, node_a, node_b, True, p.iperf_duration_s,
                                      p.iperf_port, p.pin_cpus())
                    for path, a, b in pairs:
                        rows.append(_row(ctx, c, mode, rep, a, b, path,
                                         "cmp_throughput_ratio", pod_bps[path] / node_bps))
            finally:
                procs.stop_popen(node_server)
                if node_server in c.node_processes:
                    c.node_processes.remove(node_server)
            # the node's tables once traffic has flowed (neighbours are learnt)
            routes = json.loads(c.exec_node(node_a, ["ip", "-j", "-4", "route"]).stdout)
            neigh = json.loads(c.exec_node(node_a, ["ip", "-j", "-4", "neigh"]).stdout)
            rows.append(_row(ctx, c, mode, 1, node_a, node_a, "node", "cmp_node_routes",
                             float(len(routes))))
            rows.append(_row(ctx, c, mode, 1, node_a, node_a, "node", "cmp_node_neighbours",
                             float(len(neigh))))
            if c.nodes_can_leave:
                rows.append(_row(ctx, c, mode, 1, node_b, node_b, "node", "cmp_leave_s",
                                 c.leave(node_b)))
                rows.append(_row(ctx, c, mode, 1, node_b, node_b, "node", "cmp_join_s",
                                 c.join(node_b)))
        return rows


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mode x measure: the median of each comparison metric (rows of this experiment),
    the per-path ones a column per path class."""
    rows = df[df["experiment"].str.startswith(f"{NAME}/") & df["metric"].isin(METRICS)]
    if rows.empty:
        return pd.DataFrame()
    per_path = rows["metric"].isin(PER_PATH)
    key = rows["metric"].where(~per_path, rows["metric"] + "@" + rows["path"])
    table = rows.assign(mode=rows["experiment"].str.split("/").str[1], key=key).pivot_table(
        index="mode", columns="key", values="value", aggfunc="median")
    order = [m for m in MODES if m in table.index]
    keys = [k for m in METRICS for k in ([f"{m}@{p}" for p in PATHS] if m in PER_PATH
                                         else [m]) if k in table.columns]
    labels = {}
    for k in keys:
        metric, _, path = k.partition("@")
        label, unit = METRICS[metric]
        labels[k] = f"{path + ': ' if path else ''}{label} ({unit})"
    return table.reindex(order)[keys].rename(columns=labels)


def comparison_png(df: pd.DataFrame) -> bytes:
    """One small bar chart a measure, the modes side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.results.plots import figure_png

    table = comparison_table(df)
    cols = list(table.columns)
    ncols = min(5, len(cols))  # wrapped: five measures a row
    nrows = -(-len(cols) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    for ax, col in zip(axes.flat, cols):
        values = table[col]
        ax.bar(range(len(table.index)), values.fillna(0), color="#2e86c1")
        for x in (i for i, v in enumerate(values) if pd.isna(v)):  # not measured: say so
            ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=6, color="#666666")
        ax.set_xticks(range(len(table.index)), list(table.index), rotation=45, ha="right",
                      fontsize=7)
        ax.set_title(col, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("Pod networks compared (medians)", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def comparison_markdown(df: pd.DataFrame) -> list[str]:
    """The report's section: the table (n/a: not measured for that mode, as leaving and
    joining where no daemon follows the nodes), how many rounds the ratio rests on."""
    table = comparison_table(df)
    if table.empty:
        return []
    ratio = df[df["metric"] == "cmp_throughput_ratio"]
    rounds = ratio.groupby(["experiment", "path"])["value"].count()
    return ["## Pod networks compared", "",
            "The same workload on each pod network, each on a cluster of its own built from "
            "this topology (medians; a throughput ratio pairs a pod path with node-node in "
            f"each round, {int(rounds.min()) if len(rounds) else 0} round(s) a mode and path)."
            "", "",
            table.apply(lambda col: col.map(
                lambda v: "n/a" if pd.isna(v) else f"{float(f'{v:.3g}'):g}")).to_markdown(), "",
            f"![{PNG}]({PNG})", ""]
