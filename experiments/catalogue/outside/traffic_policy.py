"""out-traffic-policy, a claim of the series' third part (traffic from outside):

    externalTrafficPolicy Cluster: servers see a node's address and every node forwards;
    Local: servers see the client's, nodes without a server pod drop, and the health-
    check node port tells the load balancer which nodes to use

The evidence, kept in raw/out-traffic-policy/evidence.json, is a mapping; the verdict
(`judge_policy`, pure) reads its keys

    node_addresses, cluster, local, client, pods_on, lb_up, health_port, health

and `TrafficPolicy.run` gathers them on a cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CLIENT,
    CLUSTER_SVC,
    LOCAL_SVC,
    WEB,
    OutsideClaim,
    fetch,
    node_addresses,
    outside_cluster,
    pod_nodes,
    served,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.model.svc import haproxy
from testbed.model.svc.outside import LB_HOST


def judge_policy(e: Mapping[str, Any]) -> ClaimResult:
    cl, lo, client = e["cluster"], e["local"], e["client"]
    addrs = e["node_addresses"]
    with_pod = [n for n in lo if e["pods_on"][n]]
    without = [n for n in lo if not e["pods_on"][n]]
    if not with_pod or not without:
        return error(TrafficPolicy.name, "needs a node with a server pod and one without")
    if not all(v["connections"] for v in [*cl.values(), *lo.values()]):
        return error(TrafficPolicy.name, "no connection was made through a node port")
    node_ips = {ip for ips in addrs.values() for ip in ips}
    cluster_sources = [ip for v in cl.values() for ip in v["sources"]]
    local_sources = [ip for n in with_pod for ip in lo[n]["sources"]]
    return judge(
        TrafficPolicy.name,
        {"Cluster: every node answers, also without a server pod": all(
            v["failed"] == 0 for v in cl.values()),
         "Cluster: servers see a node's address, never the client's": bool(cluster_sources)
             and all(ip in node_ips and ip != client for ip in cluster_sources),
         "Local: nodes with a server pod answer": all(lo[n]["failed"] == 0 for n in with_pod),
         "Local: servers see the client's own address": bool(local_sources)
             and all(ip == client for ip in local_sources),
         "Local: a node without a server pod drops the traffic": all(
             lo[n]["succeeded"] == 0 for n in without),
         "the health-check node port answers 200 only where a server pod runs": all(
             (e["health"][n]["code"] == 200) == bool(e["pods_on"][n]) for n in lo),
         "the load balancer uses exactly the nodes that pass": sorted(e["lb_up"])
             == sorted(with_pod)},
        "Cluster: " + "; ".join(f"via {n} {v['succeeded']}/{v['connections']}, sources "
                                f"{sorted(set(v['sources']))}" for n, v in cl.items())
        + ". Local: " + "; ".join(f"via {n} {v['succeeded']}/{v['connections']}, sources "
                                  f"{sorted(set(v['sources']))}" for n, v in lo.items())
        + f". Client {client}. Health-check node port {e['health_port']}: " + ", ".join(
            f"{n} HTTP {h['code']} localEndpoints {h['local']}" for n, h in e["health"].items())
        + f"; load balancer sends to {sorted(e['lb_up'])}",
        {"cluster_ok": sum(v["succeeded"] for v in cl.values()),
         "local_ok": sum(v["succeeded"] for v in lo.values()),
         "local_dropped": sum(lo[n]["failed"] for n in without)},
    )


def _health(c: Cluster, node: str, port: int) -> dict[str, Any]:
    """The health-check node port's answer, asked from the load balancer's host."""
    res = c.exec_node(LB_HOST, ["curl", "-s", "-m", "2", "-w", "\n%{http_code}",
                                f"http://{c.endpoint_ip(node)}:{port}/healthz"])
    body, _, code = res.stdout.rpartition("\n")
    try:
        local = int(json.loads(body).get("localEndpoints", -1))
    except ValueError:
        local = -1
    return {"code": int(code) if code.strip().isdigit() else 0, "local": local, "body": body}


class TrafficPolicy(OutsideClaim):
    name = "out-traffic-policy"
    statement = ("externalTrafficPolicy Cluster: servers see a node's address and every node "
                 "forwards; Local: servers see the client's, nodes without a server pod drop, and "
                 "the health-check node port tells the load balancer which nodes to use")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            out: dict[str, dict[str, Any]] = {"cluster": {}, "local": {}}
            for policy, svc_name in (("cluster", CLUSTER_SVC), ("local", LOCAL_SVC)):
                node_port = c.services.service(svc_name).ports[0].node_port
                for n in c.plan.nodes:
                    tag = f"{policy}-{n.name}"
                    conns, _ = fetch(c, str(n.underlay_ip.ip), node_port, tag, 6)
                    logs = served(c, tag, WEB)
                    out[policy][n.name] = {**summary(conns), "sources": sorted(
                        ip for seqs in logs.values() for ip in seqs.values()),
                        "errors": sorted({x.error for x in conns if x.error})}
            local = c.services.service(LOCAL_SVC)
            port = local.health_check_node_port
            nodes = pod_nodes(c)
            backend = haproxy.backends([local])[0].name
            e = {**out, "client": c.endpoint_ip(CLIENT), "node_addresses": node_addresses(c),
                 "health_port": port,
                 "health": {n: _health(c, n, port) for n in c.node_names},
                 "pods_on": {n: [p for p in WEB if nodes[p] == n] for n in c.node_names},
                 "lb_up": sorted(c.outside.up_now()[backend])}
        keep_evidence(ctx, TrafficPolicy.name, e)
        yield Verdict(judge_policy(e))
