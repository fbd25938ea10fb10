"""out-node-ip-refused, a claim of the series' third part (traffic from outside):

    a node's own address on the service port is refused: nothing listens there

The evidence, kept in raw/out-node-ip-refused/evidence.json, is a mapping; the verdict
(`judge_refused`, pure) reads its keys

    nodes, port, node_port

and `NodeIpRefused.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CLUSTER_SVC,
    SERVICE_PORT,
    OutsideClaim,
    fetch,
    outside_cluster,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import summary
from experiments.framework.verdicts import ClaimResult, error, judge


def judge_refused(e: Mapping[str, Any]) -> ClaimResult:
    nodes = e["nodes"]
    if not nodes or not all(v["service_port"] for v in nodes.values()):
        return error(NodeIpRefused.name, "no connection to a node's service port was tried")
    refused = {n: sum("Refused" in err for err in v["service_port"]) for n, v in nodes.items()}
    return judge(
        NodeIpRefused.name,
        {"every node refuses its own address on the service port":
             all(refused[n] == len(v["service_port"]) for n, v in nodes.items()),
         "every node answers on the node port": all(
             v["node_port"]["failed"] == 0 and v["node_port"]["connections"]
             for v in nodes.values())},
        "; ".join(f"{n}: port {e['port']} refused {refused[n]}/{len(v['service_port'])}, "
                  f"node port {e['node_port']} {v['node_port']['succeeded']}/"
                  f"{v['node_port']['connections']}" for n, v in nodes.items()),
        {"refused": sum(refused.values()),
         "tried": sum(len(v["service_port"]) for v in nodes.values())},
    )


class NodeIpRefused(OutsideClaim):
    name = "out-node-ip-refused"
    statement = ("a node's own address on the service port is refused: nothing listens there")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            node_port = c.services.service(CLUSTER_SVC).ports[0].node_port
            nodes = {}
            for n in c.plan.nodes:
                ip = str(n.underlay_ip.ip)
                svc, _ = fetch(c, ip, SERVICE_PORT, f"refused-{n.name}", 3)
                np_conns, _ = fetch(c, ip, node_port, f"refused-np-{n.name}", 3)
                nodes[n.name] = {"address": ip, "service_port": [x.error for x in svc],
                                 "node_port": summary(np_conns)}
            e = {"port": SERVICE_PORT, "node_port": node_port, "nodes": nodes}
        keep_evidence(ctx, NodeIpRefused.name, e)
        yield Verdict(judge_refused(e))
