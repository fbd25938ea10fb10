"""What the claims of other pod networks share: their base class, their cluster, and the
helpers more than one of them reads its evidence with. Each claim is a module of
its own beside this one."""

from __future__ import annotations

import dataclasses
from typing import Any

from experiments.framework.base import OWN_CLUSTERS, Claim, Context
from experiments.framework.paths import TOPOLOGIES
from testbed.cluster import Cluster
from testbed.measure.iproute import ip_json
from testbed.measure.ping import parse_ping
from testbed.model.load import load_spec
from testbed.model.spec import ClusterSpec

PAIRS = (("pod-1", "pod-2"), ("pod-1", "pod-3"), ("pod-2", "pod-4"), ("pod-3", "pod-1"))


class ModeClaim(Claim):
    """A claim about a pod network: one verdict, on clusters of its own."""

    needs = OWN_CLUSTERS


def _cluster(ctx: Context, spec: ClusterSpec) -> Cluster:
    return Cluster(spec, progress=ctx.progress.note, wiring="cni")


def _racks(mode: str) -> ClusterSpec:
    return dataclasses.replace(load_spec(TOPOLOGIES / "racks.yaml"), pod_network=mode)


def _ping(c: Cluster, src: str, dst: str, size: int | None = None) -> dict[str, Any]:
    """One source's pings to a destination: loss, TTL, the nodes they sit on."""
    argv = ["ping", "-c2", "-i0.05", "-W1"]
    if size is not None:
        argv += ["-M", "do", "-s", str(size)]
    res = c.pod(src).exec([*argv, c.endpoint_ip(dst)])
    parsed = parse_ping(res.stdout)
    return {"src": src, "dst": dst, "ok": res.ok and parsed.loss_pct == 0,
            "ttl": parsed.ttl, "same_node": c.pod(src).node == c.pod(dst).node,
            "size": size, "output": (res.stdout + res.stderr)[-300:]}


def _pings(c: Cluster) -> list[dict[str, Any]]:
    return [_ping(c, s, d) for s, d in PAIRS]


def _routes(c: Cluster, where: str) -> list[dict[str, Any]]:
    return ip_json(c.exec_node(where, ["ip", "-j", "-4", "route"]), f"routes of {where}")
