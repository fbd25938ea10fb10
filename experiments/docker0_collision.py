"""Claim `docker0-collision`: with every node on Docker's default bridge (docker0
172.17.0.1/16, containers 172.17.0.x), containers on one node reach each other but
cross-node traffic cannot reach the right container; the same workload on kubenet's
per-node pod CIDRs (cbr0) reaches everything.

    docker0 layout                          kubenet layout
    node-1 docker0 172.17.0.1/16            node-1 cbr0 10.0.0.1/24
      pod-1 172.17.0.2  pod-2 172.17.0.3      pod-1 10.0.0.2  pod-2 10.0.0.3
    node-2 docker0 172.17.0.1/16            node-2 cbr0 10.0.1.1/24
      pod-3 172.17.0.2  pod-4 172.17.0.3      pod-3 10.0.1.2  pod-4 10.0.1.3

A ping cannot tell the right container from another with the same address, so every pod
runs a "whoami" container and a probe counts only if the *intended* pod answers. The
experiment brings up two clusters of its own, one after the other, once the suite's
shared cluster is down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pandas as pd

from experiments import probes
from experiments.base import OWN_CLUSTERS, Claim, Context, Figure, Result, Rows, Verdict, retry
from experiments.claims import judge
from testbed.cluster import Cluster
from testbed.model.names import DOCKER_DEFAULT, KUBENET
from testbed.results.plots import heatmap_png

PORT = 7004
LAYOUTS = {"kubenet": KUBENET, "docker0": DOCKER_DEFAULT}  # panel title -> pod network
HEATMAP = "reachability_heatmap.png"
METRIC = "missed_intended_pct"


def probe_matrix(ctx: Context, cluster: Cluster, layout: str) -> tuple[pd.DataFrame, Rows]:
    """Every pod asks every other pod's address who it is; each probe is a row of the
    metric `missed_intended_pct` (100: another pod or nobody answered)."""
    c = cluster
    for pod in c.pods:
        c.add_container(pod, "whoami", probes.tcp_server("0.0.0.0", PORT, pod))
    results, rows = [], []
    for src in c.pods:
        for dst in c.pods:
            if src == dst:
                continue
            res = retry(lambda s=src, d=dst: c.pod(s).exec(
                probes.tcp_client(c.endpoint_ip(d), PORT, timeout_s=1)),
                lambda r: r.ok or "refused" not in r.stdout, timeout_s=2)
            answered = res.stdout.removeprefix("reply:").strip() if res.ok else ""
            missed = 0.0 if answered == dst else 100.0
            row = ctx.measurement(f"{Docker0Collision.name}/{layout}", 1, src, dst, None,
                                  METRIC, missed, cluster=c)
            rows.append(row)
            results.append({"src": src, "dst": dst, "path": row.path, "missed": missed,
                            "answered": answered or res.stdout.strip()})
    return pd.DataFrame(results), Rows(f"{Docker0Collision.name} {layout}", tuple(rows))


class Docker0Collision(Claim):
    """The article's worst case, against kubenet, on the same workload."""

    name = "docker0-collision"
    needs = OWN_CLUSTERS

    def steps(self, ctx: Context) -> int:
        return 1 + len(LAYOUTS)

    def run(self, ctx: Context) -> Iterator[Result]:
        frames: dict[str, pd.DataFrame] = {}
        node_of: dict[str, str] = {}
        ips: dict[str, str] = {}
        for layout, pod_network in LAYOUTS.items():
            ctx.progress.note(f"{self.name}: bringing up the {layout} layout")
            with ctx.bring_up(dataclasses.replace(ctx.spec, pod_network=pod_network)) as c:
                frames[layout], rows = probe_matrix(ctx, c, layout)
                node_of.update({p.name: p.node for p in c.pods.values()})
                if pod_network == DOCKER_DEFAULT:
                    ips = {p.name: str(p.ip) for p in c.pods.values()}
            yield rows
        matrices = {k: f.pivot(index="src", columns="dst", values="missed")
                    for k, f in frames.items()}
        yield Figure(HEATMAP, heatmap_png(
            matrices, node_of, "Did the intended pod answer? (% of probes that missed it)"))
        kube, dock = frames["kubenet"], frames["docker0"]
        cross = dock[dock["path"] == "pod-cross-node"]
        same = dock[dock["path"] == "pod-same-node"]
        if cross.empty or same.empty:  # nothing to judge: not a pass
            raise ValueError("needs two nodes with pods, one with at least two pods")
        wrong = cross[cross["answered"].isin(list(node_of))]  # another pod answered
        example = wrong.iloc[0] if not wrong.empty else None
        yield Verdict(judge(
            self.name,
            {"docker0: same-node pods reach each other": bool((same["missed"] == 0).all()),
             "docker0: cross-node traffic misses the intended pod": bool(
                 (cross["missed"] == 100).all()),
             "kubenet: every pod reaches every pod": bool((kube["missed"] == 0).all())},
            f"docker0 addresses {', '.join(f'{k} {v}' for k, v in sorted(ips.items()))}: "
            f"{int((cross['missed'] == 100).sum())} of {len(cross)} cross-node probes missed "
            "the intended pod"
            + (f" (e.g. {example['src']} -> {example['dst']} was answered by "
               f"{example['answered']})" if example is not None else "")
            + f", {int((same['missed'] == 0).sum())} of {len(same)} same-node probes reached "
            f"it; kubenet: {int((kube['missed'] == 0).sum())} of {len(kube)} probes reached "
            "the intended pod",
            {"docker0_cross_node_missed_pct": float(cross["missed"].mean()),
             "docker0_same_node_missed_pct": float(same["missed"].mean()),
             "kubenet_missed_pct": float(kube["missed"].mean())},
        ))
