"""out-nodeport, a claim of the series' third part (traffic from outside):

    a NodePort is open on every node; any node's address and that port reaches a server
    pod, possibly on another node (one more hop)

The evidence, kept in raw/out-nodeport/evidence.json, is a mapping; the verdict
(`judge_nodeport`, pure) reads its keys

    entries, pod_nodes, forwarded_from_empty

and `NodePortEveryNode.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CLIENT,
    CLUSTER_SVC,
    WEB,
    OutsideClaim,
    _path_rows,
    _syns,
    fetch,
    outside_cluster,
    pod_nodes,
    served,
)
from experiments.framework.base import Context, Figure, Result, Verdict, keep_evidence
from experiments.framework.svc_common import Capture, keep_capture, summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.names import underlay_intf
from testbed.results.plots import paths_png


def judge_nodeport(e: Mapping[str, Any]) -> ClaimResult:
    entries = e["entries"]
    if not entries or not all(v["connections"] for v in entries.values()):
        return error(NodePortEveryNode.name, "no connection through a node port was made")
    pod_node = e["pod_nodes"]
    empty = [n for n in entries if n not in {pod_node[p] for p in WEB}]
    if not empty:
        return error(NodePortEveryNode.name, "every node runs a web pod: no extra hop to show")
    elsewhere = {n: sum(k for p, k in v["served"].items() if pod_node[p] != n)
                 for n, v in entries.items()}
    hop = e["forwarded_from_empty"]
    return judge(
        NodePortEveryNode.name,
        {"every node's node port reaches a server pod": all(
            v["succeeded"] == v["connections"] and sum(v["served"].values())
            == v["connections"] for v in entries.values()),
         "a node without a server pod forwards every connection to another node":
             all(elsewhere[n] == entries[n]["connections"] for n in empty),
         "the extra hop is on the underlay (entry node -> server pod)":
             hop >= sum(entries[n]["connections"] for n in empty)},
        "; ".join(f"via {n}: {v['succeeded']}/{v['connections']}, served by "
                  + ", ".join(f"{p} ({pod_node[p]}) {k}" for p, k in v["served"].items() if k)
                  for n, v in entries.items())
        + f"; {hop} SYNs from {', '.join(empty)} to the web pods on its uplink",
        {"connections": sum(v["connections"] for v in entries.values()),
         "served_elsewhere": sum(elsewhere.values()), "forwarded_syns": hop},
    )


class NodePortEveryNode(OutsideClaim):
    name = "out-nodeport"
    statement = ("a NodePort is open on every node; any node's address and that port reaches a "
                 "server pod, possibly on another node (one more hop)")

    def steps(self, ctx: Context) -> int:
        return 2

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            node_port = c.services.service(CLUSTER_SVC).ports[0].node_port
            nodes = pod_nodes(c)
            empty = [n for n in c.node_names if n not in {nodes[p] for p in WEB}]
            caps = {n: Capture(c, n, underlay_intf(n), f"nodeport-{n}") for n in empty}
            entries = {}
            try:
                for n in c.plan.nodes:
                    tag = f"np-{n.name}"
                    conns, raw = fetch(c, str(n.underlay_ip.ip), node_port, tag, 12)
                    logs = served(c, tag, WEB)
                    entries[n.name] = {**summary(conns), "served": {p: len(v) for p, v in
                                                                    logs.items()}}
                    ctx.raw(f"{NodePortEveryNode.name}/client-{n.name}.jsonl", raw)
            finally:
                texts = {n: cap.stop() for n, cap in caps.items()}
            hop = sum(_syns(texts[n], c.endpoint_ip(p), 8080) for n in empty for p in WEB)
            e = {"node_port": node_port, "client": c.endpoint_ip(CLIENT), "entries": entries,
                 "pod_nodes": {p: nodes[p] for p in WEB}, "forwarded_from_empty": hop}
            for n, text in texts.items():
                keep_capture(ctx, NodePortEveryNode.name, n, caps[n], text)
        keep_evidence(ctx, NodePortEveryNode.name, e)
        yield Figure("out_nodeport_paths.png", paths_png(
            _path_rows(e), f"NodePort {node_port}: the paths connections took"))
        yield Verdict(judge_nodeport(e))
