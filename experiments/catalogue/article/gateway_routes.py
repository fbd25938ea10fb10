"""Claim `gateway-routes`: cross-node pod traffic depends on the router's per-node routes.

    1. traceroute from a pod on node A to a pod on node B: cbr0 (node A), the router,
       node B, the pod: the path the article draws
    2. withdraw node B's route through FRR, as an operator would
       (vtysh: `no ip route <B pod CIDR> <B IP>`): B's pods are unreachable from A's pods,
       still reachable from B's own (another pod on B; B itself when it has one pod)
    3. restore the route: reachable again. The route is restored whatever happens.

The evidence (raw/gateway-routes/evidence.json) has the hops, the router's routes at each
step and the losses; `judge_evidence` is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.framework.base import Claim, Context, Result, Verdict, keep_evidence, retry
from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.measure.ping import ping_argv, ping_metrics
from testbed.measure.traceroute import parse_traceroute, traceroute_argv


def _routes(cluster: Cluster) -> list[str]:
    return sorted(r["dst"] for r in cluster.router_routes())


def judge_evidence(e: Mapping[str, Any]) -> ClaimResult:
    cidr = e["cidr"]
    if not e["hops"]:
        return error(GatewayRoutes.name, "traceroute printed no hops: nothing to judge")
    return judge(
        GatewayRoutes.name,
        {"path is pod -> node -> router -> node -> pod": e["hops"] == e["expected_hops"],
         "reachable with the route": e["loss_before_pct"] == 0,
         "route withdrawn from the kernel": cidr not in e["routes_withdrawn"],
         "cut off from the other node": e["loss_withdrawn_pct"] == 100,
         "reachable from its own node": e["loss_same_node_withdrawn_pct"] == 0,
         "route restored": cidr in e["routes_restored"],
         "reachable again": e["loss_restored_pct"] == 0},
        f"traceroute {e['src']} -> {e['dst']}: {' -> '.join(h or '*' for h in e['hops'])}; "
        f"{e['src']} -> {e['dst']} loss {e['loss_before_pct']:g} %, with `no ip route {cidr} "
        f"{e['via']}` {e['loss_withdrawn_pct']:g} % (from {e['neighbour']} on "
        f"{e['node_b']}: {e['loss_same_node_withdrawn_pct']:g} %), restored "
        f"{e['loss_restored_pct']:g} %",
        {"hops": len(e["hops"]), "loss_before_pct": e["loss_before_pct"],
         "loss_withdrawn_pct": e["loss_withdrawn_pct"],
         "loss_same_node_withdrawn_pct": e["loss_same_node_withdrawn_pct"],
         "loss_restored_pct": e["loss_restored_pct"]},
    )


class GatewayRoutes(Claim):
    """Cross-node pod traffic goes through the router's per-node routes."""

    name = "gateway-routes"
    statement = ("cross-node pod traffic depends on the router's per-node routes: withdraw one "
                 "and that node's pods are cut off from other nodes only")
    requires = Needs(nodes_with_pods=2, router_routes=True)

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        by_node = c.pods_by_node()
        nodes = [n for n in c.node_names if by_node.get(n)]
        if len(nodes) < 2:
            raise ValueError("needs two nodes with pods")
        node_a = nodes[0]
        # node B: the first other node with two pods (a neighbour pod checks that B's own
        # still reach it); with none, the first other one, and B itself is the neighbour
        node_b = next((n for n in nodes[1:] if len(by_node[n]) >= 2), nodes[1])
        src, dst = by_node[node_a][0], by_node[node_b][0]
        neighbour = by_node[node_b][1] if len(by_node[node_b]) >= 2 else node_b
        b_plan = c.node_plan(node_b)
        cidr, via = str(b_plan.pod_cidr), str(b_plan.underlay_ip.ip)
        dst_ip = c.endpoint_ip(dst)

        def loss(frm: str) -> float:
            argv = ping_argv(dst_ip, count=3, interval_s=0.05)
            res = c.pod(frm).exec(argv) if frm in c.pods else c.exec_node(frm, argv)
            return ping_metrics(res.returncode, res.stdout, res.stderr)["loss_pct"]

        trace = c.pod(src).exec(traceroute_argv(dst_ip))
        ctx.raw(f"{GatewayRoutes.name}/traceroute_{src}_to_{dst}.txt", trace.stdout + trace.stderr)
        e: dict[str, Any] = {
            "src": src, "dst": dst, "neighbour": neighbour, "node_b": node_b, "cidr": cidr,
            "via": via, "hops": parse_traceroute(trace.stdout),
            "expected_hops": [str(c.node_plan(node_a).gateway), str(c.plan.router_ip.ip), via,
                              dst_ip],
            "loss_before_pct": loss(src)}
        try:
            c.configure_router(f"no ip route {cidr} {via}")
            e["routes_withdrawn"] = retry(lambda: _routes(c), lambda r: cidr not in r)
            e["loss_withdrawn_pct"] = loss(src)
            e["loss_same_node_withdrawn_pct"] = loss(neighbour)
        finally:
            c.configure_router(f"ip route {cidr} {via}")
            e["routes_restored"] = retry(lambda: _routes(c), lambda r: cidr in r)
        e["loss_restored_pct"] = loss(src)
        keep_evidence(ctx, GatewayRoutes.name, e)
        yield Verdict(judge_evidence(e))
