"""Claim `gateway-routes`: cross-node pod traffic depends on the router's per-node routes.

    1. traceroute from a pod on node A to a pod on node B: cbr0 (node A), the router,
       node B, the pod: the path the article draws
    2. withdraw node B's route through FRR, as an operator would
       (vtysh: `no ip route <B pod CIDR> <B IP>`): B's pods are unreachable from A's pods,
       still reachable from B's own pods
    3. restore the route: reachable again. The route is restored whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator

from experiments.base import Claim, Context, Result, Verdict, retry
from experiments.claims import judge
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.measure.ping import PingResult, parse_ping, ping_argv
from testbed.measure.traceroute import parse_traceroute, traceroute_argv
from testbed.model.names import ROUTER


def vtysh(cluster: Cluster, *commands: str) -> None:
    """Configure FRR as an operator would, inside the router's namespaces."""
    argv = ["vtysh", "-c", "configure terminal"]
    for command in commands:
        argv += ["-c", command]
    res = cluster.exec_node(ROUTER, argv)
    if not res.ok or res.stdout.strip():
        raise TestbedError(f"vtysh {commands}: {(res.stdout + res.stderr).strip()}")


def _routes(cluster: Cluster) -> set[str]:
    return {r["dst"] for r in cluster.router_routes()}


class GatewayRoutes(Claim):
    """Cross-node pod traffic goes through the router's per-node routes."""

    name = "gateway-routes"

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        by_node = c.pods_by_node()
        nodes = [n for n in c.node_names if by_node.get(n)]
        if len(nodes) < 2 or len(by_node[nodes[1]]) < 2:
            raise ValueError("needs two nodes with pods, the second with at least two")
        node_a, node_b = nodes[0], nodes[1]
        src, dst, neighbour = by_node[node_a][0], by_node[node_b][0], by_node[node_b][1]
        b_plan = c.node_plan(node_b)
        cidr, via = str(b_plan.pod_cidr), str(b_plan.underlay_ip.ip)
        dst_ip = c.endpoint_ip(dst)

        def ping(frm: str) -> PingResult:
            return parse_ping(c.pod(frm).exec(ping_argv(dst_ip, count=3,
                                                         interval_s=0.05)).stdout)

        trace = c.pod(src).exec(traceroute_argv(dst_ip))
        ctx.raw(f"{self.name}/traceroute_{src}_to_{dst}.txt", trace.stdout + trace.stderr)
        hops = parse_traceroute(trace.stdout)
        expected_hops = [str(c.node_plan(node_a).gateway), str(c.plan.router_ip.ip), via, dst_ip]
        before = ping(src)
        try:
            vtysh(c, f"no ip route {cidr} {via}")
            withdrawn = retry(lambda: _routes(c), lambda r: cidr not in r)
            cut = ping(src)
            local = ping(neighbour)
        finally:
            vtysh(c, f"ip route {cidr} {via}")
            restored_routes = retry(lambda: _routes(c), lambda r: cidr in r)
        after = ping(src)
        yield Verdict(judge(
            self.name,
            {"path is pod -> node -> router -> node -> pod": hops == expected_hops,
             "reachable with the route": before.loss_pct == 0,
             "route withdrawn from the kernel": cidr not in withdrawn,
             "cut off from the other node": cut.loss_pct == 100,
             "reachable from its own node": local.loss_pct == 0,
             "route restored": cidr in restored_routes,
             "reachable again": after.loss_pct == 0},
            f"traceroute {src} -> {dst}: {' -> '.join(h or '*' for h in hops)}; {src} -> "
            f"{dst} loss {before.loss_pct:g} %, with `no ip route {cidr} {via}` "
            f"{cut.loss_pct:g} % (from {neighbour} on {node_b}: {local.loss_pct:g} %), "
            f"restored {after.loss_pct:g} %",
            {"hops": len(hops), "loss_before_pct": before.loss_pct,
             "loss_withdrawn_pct": cut.loss_pct, "loss_same_node_withdrawn_pct": local.loss_pct,
             "loss_restored_pct": after.loss_pct},
        ))
