"""mode-kindnet-no-bridge, a claim of other pod networks:

    kindnet's pods have no bridge: each has a point-to-point veth and a route of its own
    on its node

The evidence, kept in raw/mode-kindnet-no-bridge/evidence.json, is a mapping; the verdict
(`judge_kindnet`, pure) reads its keys

    nodes, pings

and `KindnetNoBridge.run` gathers them on a cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.modes.common import TOPOLOGIES, ModeClaim, _cluster, _pings, _routes
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.load import load_spec


def judge_kindnet(e: Mapping[str, Any]) -> ClaimResult:
    nodes = e["nodes"]
    if not nodes or not any(n["pods"] for n in nodes.values()):
        return error(KindnetNoBridge.name, "no pod to look at")
    return judge(
        KindnetNoBridge.name,
        {"no bridge on any node": not any(n["bridges"] for n in nodes.values()),
         "no interface enslaved to a bridge": not any(n["bridge_ports"]
                                                      for n in nodes.values()),
         "one scope-host route per pod, to its address": all(
             sorted(n["host_routes"]) == sorted(n["pod_ips"]) for n in nodes.values()),
         "pods reach each other, across nodes too": all(p["ok"] for p in e["pings"])},
        "; ".join(f"{name}: bridges {n['bridges'] or 'none'}, {len(n['host_routes'])} "
                  f"scope-host routes for {len(n['pod_ips'])} pods"
                  for name, n in nodes.items())
        + f"; pings {sum(p['ok'] for p in e['pings'])}/{len(e['pings'])} (TTL "
        f"{sorted({p['ttl'] for p in e['pings']})})",
        {"bridges": sum(len(n["bridges"]) for n in nodes.values()),
         "host_routes": sum(len(n["host_routes"]) for n in nodes.values())},
    )


class KindnetNoBridge(ModeClaim):
    name = "mode-kindnet-no-bridge"
    statement = ("kindnet's pods have no bridge: each has a point-to-point veth and a route of "
                 "its own on its node")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "kindnet.yaml")) as c:
            nodes = {}
            for node in c.node_names:
                links = json.loads(c.exec_node(node, ["ip", "-j", "-d", "link"]).stdout)
                nodes[node] = {
                    "bridges": [x["ifname"] for x in links
                                if x.get("linkinfo", {}).get("info_kind") == "bridge"],
                    "bridge_ports": [x["ifname"] for x in links if x.get("master")],
                    "host_routes": [r["dst"] for r in _routes(c, node)
                                    if r.get("scope") == "host"],
                    "pod_ips": [c.endpoint_ip(p) for p in c.pods_by_node().get(node, [])],
                    "pods": c.pods_by_node().get(node, [])}
            e = {"nodes": nodes, "pings": _pings(c)}
        keep_evidence(ctx, KindnetNoBridge.name, e)
        yield Verdict(judge_kindnet(e))
