"""out-service-route, a claim of the series' third part (traffic from outside):

    service rules match on destination only: a gateway route sending the service range
    to one node makes the service reachable from outside, through that one node, and
    gone when it fails

The evidence, kept in raw/out-service-route/evidence.json, is a mapping; the verdict
(`judge_route`, pure) reads its keys

    node, capture_dropped, syns_at_node, with_route, before, node_down, node_back,
    sources, node_addresses, vip, client, service_cidr

and `ServiceRoute.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CLIENT,
    CLUSTER_SVC,
    SERVICE_PORT,
    WEB,
    OutsideClaim,
    _syns,
    fetch,
    node_addresses,
    outside_cluster,
    served,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence, retry
from experiments.framework.svc_common import Capture, keep_capture, summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.names import ROUTER, underlay_intf


def judge_route(e: Mapping[str, Any]) -> ClaimResult:
    """Each phase must have made connections (0 of 0 "unreachable" proves nothing), and
    the failure with the node off needs its positive control: reachable again once the
    node is back, through the same route."""
    empty = [phase for phase in ("before", "with_route", "node_down", "node_back")
             if not e.get(phase, {}).get("connections")]
    if empty:
        return error(ServiceRoute.name, f"no connection was made in phase(s) {', '.join(empty)}")
    if e.get("capture_dropped", 0) and e["syns_at_node"] < e["with_route"]["connections"]:
        return error(ServiceRoute.name, f"the capture on {e['node']}'s uplink dropped "
                     f"{e['capture_dropped']} packet(s) and saw {e['syns_at_node']} SYNs for "
                     f"{e['with_route']['connections']} connections: it cannot say one did "
                     "not cross")
    sources = [ip for ips in e["sources"].values() for ip in ips]
    via = e["node"]
    return judge(
        ServiceRoute.name,
        {"unreachable from outside without the route": e["before"]["succeeded"] == 0,
         "reachable with the route": e["with_route"]["failed"] == 0,
         f"every connection reached its server from {via}": bool(sources) and all(
             ip in e["node_addresses"] for ip in sources),
         f"every connection crossed {via}'s uplink": e["syns_at_node"]
             >= e["with_route"]["connections"],
         f"unreachable once {via} fails": e["node_down"]["succeeded"] == 0,
         f"reachable again once {via} is back": e["node_back"]["failed"] == 0},
        f"to {e['vip']}:80 from {e['client']}: {e['before']['succeeded']}/"
        f"{e['before']['connections']} without a route; with {e['service_cidr']} via {via} "
        f"at the router {e['with_route']['succeeded']}/{e['with_route']['connections']}, "
        f"served by " + ", ".join(f"{p} {len(v)}" for p, v in e["sources"].items())
        + f" from {sorted(set(sources))} ({via}'s addresses: {e['node_addresses']}); "
        f"{e['syns_at_node']} SYNs to the virtual IP on {via}'s uplink; with {via} off "
        f"the network {e['node_down']['succeeded']}/{e['node_down']['connections']}, back "
        f"on it {e['node_back']['succeeded']}/{e['node_back']['connections']}",
        {"before_ok": e["before"]["succeeded"], "with_route_ok": e["with_route"]["succeeded"],
         "with_route": e["with_route"]["connections"], "syns_at_node": e["syns_at_node"],
         "node_down_ok": e["node_down"]["succeeded"],
         "node_back_ok": e["node_back"]["succeeded"]},
    )


class ServiceRoute(OutsideClaim):
    name = "out-service-route"
    statement = ("service rules match on destination only: a gateway route sending the service "
                 "range to one node makes the service reachable from outside, through that one "
                 "node, and gone when it fails")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            svc = c.services.service(CLUSTER_SVC)
            vip, node = str(svc.cluster_ip), "node-1"
            cidr = str(c.spec.service_cidr)
            before, _ = fetch(c, vip, SERVICE_PORT, "route-before", 4)
            node_ip = str(c.node_plan(node).underlay_ip.ip)
            route = ["ip", "route", "add", cidr, "via", node_ip]
            res = c.exec_node(ROUTER, route)
            if not res.ok:
                raise RuntimeError(f"router: {' '.join(route)}: {res.stderr.strip()}")
            try:
                cap = Capture(c, node, underlay_intf(node), "route-node-1")
                try:
                    with_route, raw = fetch(c, vip, SERVICE_PORT, "route", 20)
                finally:
                    text = cap.stop()
                c.set_uplink(node, False)
                try:
                    down, _ = fetch(c, vip, SERVICE_PORT, "route-down", 4)
                finally:
                    c.set_uplink(node, True)
                back = retry(lambda: fetch(c, vip, SERVICE_PORT, "route-back", 4)[0],
                             lambda conns: bool(conns) and all(x.ok for x in conns),
                             timeout_s=5)
            finally:
                c.exec_node(ROUTER, ["ip", "route", "del", cidr, "via", node_ip])
            logs = served(c, "route", WEB)
            e = {"vip": vip, "client": c.endpoint_ip(CLIENT), "service_cidr": cidr,
                 "node": node, "node_addresses": node_addresses(c)[node],
                 "before": summary(before), "with_route": summary(with_route),
                 "node_down": summary(down), "node_back": summary(back),
                 "sources": {p: sorted(v.values()) for p, v in logs.items()},
                 "syns_at_node": _syns(text, vip, SERVICE_PORT),
                 "capture_dropped": cap.dropped}
            keep_capture(ctx, ServiceRoute.name, node, cap, text)
            ctx.raw(f"{ServiceRoute.name}/client.jsonl", raw)
        keep_evidence(ctx, ServiceRoute.name, e)
        yield Verdict(judge_route(e))
