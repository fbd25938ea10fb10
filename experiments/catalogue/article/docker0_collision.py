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
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from experiments.framework import probes
from experiments.framework.base import (
    OWN_CLUSTERS,
    Claim,
    Context,
    Figure,
    Result,
    Rows,
    Verdict,
    keep_evidence,
)
from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.model.names import DOCKER_DEFAULT, KUBENET
from testbed.pods.wiring import CNI
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
        c.add_container(pod, "claim-whoami", probes.tcp_server("0.0.0.0", PORT, pod))
    results, rows = [], []
    for src in c.pods:
        dsts = [d for d in c.pods if d != src]
        res = c.pod(src).exec(probes.tcp_ask_many([c.endpoint_ip(d) for d in dsts], PORT),
                              timeout=len(dsts) * 4 + 30)
        answers = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
        if len(answers) != len(dsts):
            raise TestbedError(f"{src}'s probes answered {len(answers)} of {len(dsts)}: "
                               f"{(res.stderr or res.stdout).strip()[:300]}")
        for dst, answer in zip(dsts, answers):
            out = answer["out"].strip()
            answered = out[len("reply:"):].strip() if answer["ok"] else ""
            missed = 0.0 if answered == dst else 100.0
            row = ctx.measurement(f"{Docker0Collision.name}/{layout}", 1, src, dst, None,
                                  METRIC, missed, cluster=c)
            rows.append(row)
            results.append({"src": src, "dst": dst, "path": row.path, "missed": missed,
                            "answered": answered or out})
    return pd.DataFrame(results), Rows(f"{Docker0Collision.name} {layout}", tuple(rows))


def expected_answer(src: str, dst: str, ips: Mapping[str, str],
                    node_of: Mapping[str, str]) -> str:
    """Who answers a cross-node probe on docker0: the pod on the sender's own node that
    holds the destination's address (the collision), or nobody ("") when none there
    does: the address is then on no interface the sender's node can reach."""
    return next((p for p, ip in sorted(ips.items())
                 if ip == ips.get(dst) and p != dst and node_of.get(p) == node_of.get(src)),
                "")


def judge_evidence(probes_: list[Mapping[str, Any]], ips: Mapping[str, str],
                   node_of: Mapping[str, str]) -> ClaimResult:
    """The verdict from every probe (layout, src, dst, path, who answered), the pods'
    docker0 addresses and their nodes: pure.

    The collision itself must be seen: a cross-node probe on docker0 must be answered by
    the pod of the sender's node that holds the same address, and by nobody when no pod
    there holds it (a probe to another node's address that timed out when a local pod
    held it proves nothing); at least one probe must have collided. Nothing measured on a
    layout, or no pair on one node or across two, gives `error`, never a pass."""
    frame = pd.DataFrame(list(probes_), columns=["layout", "src", "dst", "path", "answered"])
    dock, kube = frame[frame["layout"] == "docker0"], frame[frame["layout"] == "kubenet"]
    cross = dock[dock["path"] == "pod-cross-node"]
    same = dock[dock["path"] == "pod-same-node"]
    if cross.empty or same.empty or kube.empty:
        return error(Docker0Collision.name,
                     f"nothing to judge: {len(cross)} cross-node and {len(same)} "
                     f"same-node probes on docker0, {len(kube)} on kubenet (needs two nodes "
                     "with pods, one with at least two)")
    reached = lambda f: f["answered"] == f["dst"]  # noqa: E731 - a small predicate, used thrice
    expected = pd.Series([expected_answer(r.src, r.dst, ips, node_of)
                          for r in cross.itertuples()], index=cross.index, dtype=object)
    collided = expected != ""
    pods = set(frame["src"])
    as_expected = (cross["answered"] == expected) | (~collided & ~cross["answered"].isin(pods))
    example = cross[collided & as_expected].iloc[0] if (collided & as_expected).any() else None
    return judge(
        Docker0Collision.name,
        {"docker0: same-node pods reach each other": bool(reached(same).all()),
         "docker0: no cross-node probe reaches the intended pod": not bool(
             reached(cross).any()),
         "docker0: a colliding address is answered by the sender's own node's pod":
             bool(collided.any()) and bool(as_expected[collided].all()),
         "docker0: an address no pod of the sender's node holds is answered by none":
             bool(as_expected[~collided].all()),
         "kubenet: every pod reaches every pod": bool(reached(kube).all())},
        f"docker0 addresses {', '.join(f'{k} {v}' for k, v in sorted(ips.items()))}: "
        f"{int((collided & as_expected).sum())} of {int(collided.sum())} cross-node probes "
        "to an address also held on the sender's node were answered by that pod"
        + (f" (e.g. {example['src']} -> {example['dst']} was answered by "
           f"{example['answered']})" if example is not None else "")
        + f", {int((~collided & as_expected).sum())} of {int((~collided).sum())} to an "
        f"address held only on another node went unanswered, {int(reached(cross).sum())} "
        f"reached the intended pod; {int(reached(same).sum())} of {len(same)} same-node "
        f"probes reached the intended pod; kubenet: {int(reached(kube).sum())} of "
        f"{len(kube)} probes reached it",
        {"docker0_cross_node_answered_by_another_pct": 100.0 * float(
            (cross["answered"].isin(pods) & ~reached(cross)).mean()),
         "docker0_cross_node_collided": int(collided.sum()),
         "docker0_cross_node_reached_pct": 100.0 * float(reached(cross).mean()),
         "docker0_same_node_missed_pct": 100.0 * float((~reached(same)).mean()),
         "kubenet_missed_pct": 100.0 * float((~reached(kube)).mean())},
    )


class Docker0Collision(Claim):
    """The article's worst case, against kubenet, on the same workload."""

    name = "docker0-collision"
    statement = ("with every node on docker0 172.17.0.0/16, cross-node traffic cannot reach the "
                 "right container; kubenet's per-node pod CIDRs reach all")
    needs = OWN_CLUSTERS
    requires = Needs(nodes_with_pods=2, pods_on_a_node=2)

    def steps(self, ctx: Context) -> int:
        return 1 + len(LAYOUTS)

    def run(self, ctx: Context) -> Iterator[Result]:
        frames: dict[str, pd.DataFrame] = {}
        node_of: dict[str, str] = {}
        ips: dict[str, str] = {}
        for layout, pod_network in LAYOUTS.items():
            ctx.progress.note(f"{Docker0Collision.name}: bringing up the {layout} layout")
            # the real plugins whatever the run's wiring: the fast path makes no ipMasq rules
            spec = dataclasses.replace(ctx.spec, pod_network=pod_network)
            with Cluster(spec, progress=ctx.progress.note, wiring=CNI) as c:
                frames[layout], rows = probe_matrix(ctx, c, layout)
                node_of.update({p.name: p.node for p in c.pods.values()})
                if pod_network == DOCKER_DEFAULT:
                    ips = {p.name: str(p.ip) for p in c.pods.values()}
            yield rows
        probes_ = [{"layout": layout, **row} for layout, f in frames.items()
                   for row in f[["src", "dst", "path", "answered"]].to_dict("records")]
        ctx.raw(f"{Docker0Collision.name}/probes.csv", pd.DataFrame(probes_).to_csv(index=False))
        keep_evidence(ctx, Docker0Collision.name, {"probes": probes_, "docker0_addresses": ips,
                                  "nodes": node_of})
        matrices = {k: f.pivot(index="src", columns="dst", values="missed")
                    for k, f in frames.items()}
        yield Figure(HEATMAP, heatmap_png(
            matrices, node_of, "Did the intended pod answer? (% of probes that missed it)"))
        yield Verdict(judge_evidence(probes_, ips, node_of))
