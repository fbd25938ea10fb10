"""Throughput per path class: one iperf3 TCP stream along each kind of path, repeated.

    pod-localhost   container "iperf3-client" -> 127.0.0.1 -> container "iperf3-server"
    pod-same-node   pod -> cbr0 -> pod on the same node
    pod-cross-node  pod -> node -> router -> node -> pod
    node-node       node -> underlay -> node (the baseline the others are compared with)

Servers run as containers of the destination pod (or as a process in the destination
node), are reused across repeats and removed at the end.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from experiments.framework.base import MEASUREMENT, SHARED_CLUSTER, Context, Result, Rows
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.kernel.procs import ExecResult
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv
from testbed.model.links import rate_check, tcp_ceiling_bps
from testbed.results.stats import paired_ratios

SERVER = "iperf3-server"
CLIENT = "iperf3-client"
CONNECT_RETRY_S = 5.0
MAX_ROUNDS = 50  # with --target-ci: never more, whatever the budget


@dataclass(frozen=True)
class Case:
    path: str
    src: str
    dst: str


def cases(cluster: Cluster) -> list[Case]:
    """One representative pair per path class this topology has."""
    out: list[Case] = []
    by_node = cluster.pods_by_node()
    if cluster.pods:
        first = next(iter(cluster.pods))
        out.append(Case("pod-localhost", first, first))
    same = next((pods for pods in by_node.values() if len(pods) >= 2), None)
    if same:
        out.append(Case("pod-same-node", same[0], same[1]))
    nodes_with_pods = [n for n in cluster.node_names if by_node.get(n)]
    if len(nodes_with_pods) >= 2:
        out.append(Case("pod-cross-node", by_node[nodes_with_pods[0]][0],
                        by_node[nodes_with_pods[1]][0]))
    if len(cluster.node_names) >= 2:
        out.append(Case("node-node", cluster.node_names[0], cluster.node_names[1]))
    return out


class Throughput:
    """iperf3 along one pair of each path class, repeated."""

    name = "throughput"
    kind = MEASUREMENT
    needs = SHARED_CLUSTER

    def steps(self, ctx: Context) -> int:
        return len(cases(ctx.require_cluster())) * ctx.params.repeat

    def run(self, ctx: Context) -> Iterator[Result]:
        c, p = ctx.require_cluster(), ctx.params
        todo = cases(c)
        ctx.progress.note(f"{self.name}: {', '.join(k.path for k in todo)}; {p.repeat} "
                          f"repeat(s) of {p.iperf_duration_s:g} s")
        node_servers = []
        try:
            for case in todo:  # servers first, so each measurement only runs the client
                if case.path == "node-node":
                    node_servers.append(c.popen_node(case.dst, server_argv(p.iperf_port)))
                elif SERVER not in c.pod(case.dst).containers:
                    c.add_container(case.dst, SERVER, server_argv(p.iperf_port))
                if case.path == "pod-localhost":
                    c.add_container(case.src, CLIENT, ["sleep", "infinity"])
            for rep in self._rounds(ctx):
                for case in todo:
                    label = f"{self.name} r{rep} {case.path}"
                    if ctx.is_done(self.name, rep, case.src, case.dst):
                        yield Rows(f"{label} (kept from before)")
                        continue
                    try:
                        result = _client(ctx, case)
                        ctx.raw(f"{self.name}/r{rep}_{case.path}_{case.src}_to_{case.dst}"
                                ".json", result.stdout or result.stderr)
                        metrics = parse_iperf3_json(result.stdout).metrics()
                    except TestbedError as exc:  # not a measurement: the reason, no number
                        yield Rows(f"{label}: could not measure", (ctx.error(
                            self.name, rep, case.src, case.dst, case.path, str(exc)),))
                        continue
                    why = rate_check(metrics["throughput_bps"], _ceiling(c, case))
                    yield Rows(label, tuple(
                        ctx.measurement(self.name, rep, case.src, case.dst, case.path, m, v)
                        for m, v in metrics.items()), (("rate", why),) if why else ())
        finally:
            for case in todo:
                for pod, name in ((case.dst, SERVER), (case.src, CLIENT)):
                    if pod in c.pods and name in c.pod(pod).containers:
                        c.remove_container(pod, name)
            for proc in node_servers:
                procs.stop_popen(proc)


    def _rounds(self, ctx: Context) -> Iterator[int]:
        """Round numbers: `repeat` of them; with `target_ci`, more (each interleaving every
        path again) until every path's paired-ratio interval is narrow enough, the budget
        is spent or MAX_ROUNDS is reached. What happened is said and kept in raw/."""
        p = ctx.params
        yield from range(1, p.repeat + 1)
        if p.target_ci is None:
            return
        t0 = time.monotonic()
        rep = p.repeat
        while True:
            widths = ci_widths(ctx.run.frame())
            met = bool(widths) and all(w <= p.target_ci for w in widths.values())
            spent = time.monotonic() - t0
            if met or spent >= p.budget_s or rep >= MAX_ROUNDS:
                why = ("met" if met else "budget spent" if spent >= p.budget_s
                       else f"{MAX_ROUNDS} rounds reached")
                ctx.progress.note(f"{self.name}: target interval width {p.target_ci:g}: {why} "
                                  f"after {rep} round(s) (" + ", ".join(
                                      f"{k} {v:.3f}" for k, v in widths.items()) + ")")
                ctx.raw(f"{self.name}/target_ci.json", json.dumps(
                    {"target": p.target_ci, "outcome": why, "rounds": rep,
                     "widths": widths, "extra_seconds": round(spent, 1)}, indent=2))
                return
            rep += 1
            ctx.progress.set_total(ctx.progress.total + len(cases(ctx.require_cluster())))
            yield rep


def ci_widths(df: Any) -> dict[str, float]:
    """Each path's paired-ratio 95 % interval width over its median (NaN: infinite)."""
    out = {}
    for row in paired_ratios(df).itertuples():
        width = (row.ci95_high - row.ci95_low) / row.median if row.median else math.inf
        out[str(row.path)] = math.inf if math.isnan(width) else float(width)
    return out


def _ceiling(c: Cluster, case: Case) -> float | None:
    """What TCP can carry on this case's path: across nodes, the two uplinks' slower
    rate (testbed.model.links); on one node nothing is shaped; with loss, no figure."""
    a, b = c.endpoint(case.src).node, c.endpoint(case.dst).node
    if a == b:
        return None
    links = {n.name: n.uplink for n in c.spec.nodes}
    if links[a].loss_pct or links[b].loss_pct:  # loss holds TCP under any rate: no check
        return None
    return tcp_ceiling_bps(links[a], links[b])


def _client(ctx: Context, case: Case) -> ExecResult:
    """Run the client, retrying while the server is still starting (connection refused)."""
    c, p = ctx.require_cluster(), ctx.params
    target = "127.0.0.1" if case.path == "pod-localhost" else c.endpoint_ip(case.dst)
    argv = client_argv(target, p.iperf_port, p.iperf_duration_s, pin=p.pin_cpus())
    timeout = p.iperf_duration_s + 20
    deadline = time.monotonic() + CONNECT_RETRY_S
    while True:
        if case.path == "node-node":
            result = c.exec_node(case.src, argv, timeout=timeout)
        else:
            container = CLIENT if case.path == "pod-localhost" else None
            result = c.pod(case.src).exec(argv, timeout=timeout, container=container)
        refused = "Connection refused" in result.stdout or "Connection refused" in result.stderr
        if not refused or time.monotonic() > deadline:
            if not result.stdout.strip():
                raise TestbedError(f"iperf3 {case.path}: no output ({result.stderr.strip()})")
            return result
        time.sleep(0.1)
