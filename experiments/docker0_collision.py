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
experiment brings up its own two clusters, one after the other (STANDALONE).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from experiments import probes
from experiments.claims import judge
from experiments.context import Context, Params, retry
from testbed.cluster import Cluster
from testbed.model.paths import classify
from testbed.model.spec import ClusterSpec
from testbed.results.progress import Reporter
from testbed.results.rundir import RunDir, atomic_write

NAME = "docker0-collision"
KIND = "claim"
STANDALONE = True  # needs clusters of its own: run after the shared one is down
PORT = 7004
LAYOUTS = {"kubenet": "kubenet", "docker0": "docker-default"}
HEATMAP = "reachability_heatmap.png"


def steps(ctx: Context | None = None) -> int:
    return 1


def probe_matrix(ctx: Context, layout: str) -> pd.DataFrame:
    """Every pod asks every other pod's address who it is; rows are recorded as the
    metric `missed_intended_pct` (100: another pod or nobody answered)."""
    c = ctx.cluster
    for pod in c.pods:
        c.add_container(pod, "whoami", probes.tcp_server("0.0.0.0", PORT, pod))
    results = []
    for src in c.pods:
        for dst in c.pods:
            if src == dst:
                continue
            res = retry(lambda s=src, d=dst: c.pod(s).exec(
                probes.tcp_client(c.endpoint_ip(d), PORT, timeout_s=1)),
                lambda r: r.ok or "refused" not in r.stdout, timeout_s=2)
            answered = res.stdout.removeprefix("reply:").strip() if res.ok else ""
            missed = 0.0 if answered == dst else 100.0
            path = classify(c.endpoint(src), c.endpoint(dst))
            ctx.run.add([ctx.measurement(f"{NAME}/{layout}", 1, src, dst, path,
                                         "missed_intended_pct", missed)])
            results.append({"src": src, "dst": dst, "path": path, "missed": missed,
                            "answered": answered or res.stdout.strip()})
    return pd.DataFrame(results)


def run_standalone(spec: ClusterSpec, run: RunDir, params: Params, progress: Reporter) -> None:
    frames: dict[str, pd.DataFrame] = {}
    node_of: dict[str, str] = {}
    for layout, pod_network in LAYOUTS.items():
        progress.note(f"{NAME}: bringing up the {layout} layout")
        layout_spec = dataclasses.replace(spec, pod_network=pod_network)
        with Cluster(layout_spec, progress=progress.note) as cluster:
            ctx = Context(cluster, run, params, progress)
            frames[layout] = probe_matrix(ctx, layout)
            node_of.update({p.name: p.node for p in cluster.pods.values()})
            if layout == "docker0":
                ips = {p.name: str(p.ip) for p in cluster.pods.values()}
    kube, dock = frames["kubenet"], frames["docker0"]
    from testbed.results.plots import heatmap_png

    matrices = {k: f.pivot(index="src", columns="dst", values="missed") for k, f in frames.items()}
    atomic_write(run.path / HEATMAP, heatmap_png(
        matrices, node_of, "Did the intended pod answer? (% of probes that missed it)"))
    cross = dock[dock["path"] == "pod-cross-node"]
    same = dock[dock["path"] == "pod-same-node"]
    wrong = cross[cross["answered"].isin(list(node_of))]  # another pod answered
    example = wrong.iloc[0] if not wrong.empty else None
    result = judge(
        NAME,
        {"docker0: same-node pods reach each other": bool((same["missed"] == 0).all()),
         "docker0: cross-node traffic misses the intended pod": bool(
             (cross["missed"] == 100).all()),
         "kubenet: every pod reaches every pod": bool((kube["missed"] == 0).all())},
        f"docker0 addresses {', '.join(f'{k} {v}' for k, v in sorted(ips.items()))}: "
        f"{int((cross['missed'] == 100).sum())} of {len(cross)} cross-node probes missed the "
        f"intended pod"
        + (f" (e.g. {example['src']} -> {example['dst']} was answered by "
           f"{example['answered']})" if example is not None else "")
        + f", {int((same['missed'] == 0).sum())} of {len(same)} same-node probes reached it; "
        f"kubenet: {int((kube['missed'] == 0).sum())} of {len(kube)} probes reached the "
        "intended pod",
        {"docker0_cross_node_missed_pct": float(cross["missed"].mean()),
         "docker0_same_node_missed_pct": float(same["missed"].mean()),
         "kubenet_missed_pct": float(kube["missed"].mean())},
    )
    run.add_claim(result.row())
    progress.note(f"claim {NAME}: {result.verdict.upper()}: {result.evidence}")
    progress.step(f"claim {NAME}")
