"""mode-calico-join, a claim of other pod networks:

    a node that joins a running Calico cluster is reachable from every other node after
    the convergence time measured; one that leaves is withdrawn from every node and the
    router

The evidence, kept in raw/mode-calico-join/evidence.json, is a mapping; the verdict
(`judge_join`, pure) reads its keys

    others, left, joined, mover, block, leave_s, join_s, before, mover_ip

and `CalicoJoin.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.modes.common import TOPOLOGIES, ModeClaim, _cluster, _ping, _routes
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.load import load_spec
from testbed.model.names import ROUTER

MOVER = "node-3"  # calico.yaml's third node: it leaves and joins


def judge_join(e: Mapping[str, Any]) -> ClaimResult:
    others = e["others"]
    if not others or not e["left"]["pings"] or not e["joined"]["pings"]:
        return error(CalicoJoin.name, "no other node, or no ping to the moving node's pods")
    left, joined = e["left"], e["joined"]
    return judge(
        CalicoJoin.name,
        {"before: every other node reaches its pods": all(p["ok"] for p in e["before"]),
         "once it left, no other node and not the router routes to its block": not any(
             left["routes"][n] for n in [*others, ROUTER]),
         "once it left, no other node's pod reaches its pods": not any(
             p["ok"] for p in left["pings"]),
         "once it joined, every other node routes to its block over BGP (proto bird, via "
         "its address)": all(
             joined["routes"][n] and all(r["protocol"] == "bird" and r["gateway"] ==
                                         e["mover_ip"] for r in joined["routes"][n])
             for n in others),
         "once it joined, the router learnt its block (proto bgp)": bool(
             joined["routes"][ROUTER]) and all(r["protocol"] == "bgp"
                                              for r in joined["routes"][ROUTER]),
         "once it joined, every other node's pods reach its pods, and they them": all(
             p["ok"] for p in joined["pings"]),
         "both changes converged, timed": 0 < e["leave_s"] < 60 and 0 < e["join_s"] < 60},
        f"{e['mover']} ({e['block']}) left: {e['leave_s']:.2f} s until no kernel routed to "
        f"its block; routes then {_route_list(left['routes'])}; pings "
        f"{sum(p['ok'] for p in left['pings'])}/{len(left['pings'])}. It joined: "
        f"{e['join_s']:.2f} s until every kernel had every block; routes then "
        f"{_route_list(joined['routes'])}; pings "
        f"{sum(p['ok'] for p in joined['pings'])}/{len(joined['pings'])} (before: "
        f"{sum(p['ok'] for p in e['before'])}/{len(e['before'])})",
        {"leave_s": round(e["leave_s"], 3), "join_s": round(e["join_s"], 3)},
    )


def _route_list(routes: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {n: [f"{r['dst']} via {r['gateway']} proto {r['protocol']}" for r in rs]
            for n, rs in routes.items()}


class CalicoJoin(ModeClaim):
    """A node that joins a running Calico mesh is reachable from every other node after
    the time measured; one that leaves is withdrawn everywhere (topologies/calico.yaml)."""

    name = "mode-calico-join"
    statement = ("a node that joins a running Calico cluster is reachable from every other node "
                 "after the convergence time measured; one that leaves is withdrawn from every "
                 "node and the router")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "calico.yaml")) as c:
            block = str(c.node_plan(MOVER).pod_cidr)
            others = [n for n in c.node_names if n != MOVER]
            here = c.pods_by_node()
            moving = here.get(MOVER, [])
            sources = [here[n][0] for n in others if here.get(n)]

            def state() -> dict[str, Any]:
                routes = {n: [{"dst": r.get("dst"), "gateway": r.get("gateway", ""),
                               "protocol": r.get("protocol", "")}
                              for r in _routes(c, n) if r.get("dst") == block]
                          for n in [*others, ROUTER]}
                pings = [_ping(c, s, d) for s in sources for d in moving]
                return {"routes": routes, "pings": pings}

            before = [_ping(c, s, d) for s in sources for d in moving]
            leave_s = c.leave(MOVER)
            left = state()
            join_s = c.join(MOVER)
            joined = state()
            joined["pings"] += [_ping(c, d, s) for s in sources for d in moving]
            e = {"mover": MOVER, "mover_ip": c.endpoint_ip(MOVER), "block": block,
                 "others": others, "before": before, "leave_s": leave_s, "left": left,
                 "join_s": join_s, "joined": joined}
        keep_evidence(ctx, CalicoJoin.name, e)
        yield Verdict(judge_join(e))
