"""out-load-balancer, a claim of the series' third part (traffic from outside):

    a LoadBalancer service is a NodePort plus an external load balancer that spreads
    connections over the nodes and checks their health

The evidence, kept in raw/out-load-balancer/evidence.json, is a mapping; the verdict
(`judge_lb`, pure) reads its keys

    per_node, client, node_port, syns_to_node_port, nodes, address, states

and `LoadBalancer.run` gathers them on a cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from experiments.catalogue.outside.common import (
    CLIENT,
    CLUSTER_SVC,
    SERVICE_PORT,
    WEB,
    OutsideClaim,
    _owner,
    _path_rows,
    _syns,
    fetch,
    node_addresses,
    outside_cluster,
    pod_nodes,
    served,
)
from experiments.framework.base import Context, Figure, Result, Verdict, keep_evidence
from experiments.framework.svc_common import Capture, keep_capture, summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.names import underlay_intf
from testbed.model.svc import haproxy
from testbed.model.svc.outside import LB_HOST
from testbed.results.plots import paths_png


def _stot(rows: Sequence[Mapping[str, str]], backend: str) -> dict[str, int]:
    return {r["svname"]: int(r.get("stot") or 0) for r in rows if r.get("pxname") == backend}


def judge_lb(e: Mapping[str, Any]) -> ClaimResult:
    if not e["client"]["connections"]:
        return error(LoadBalancer.name, "no connection through the load balancer was made")
    per_node = e["per_node"]
    return judge(
        LoadBalancer.name,
        {"every connection through the load balancer answered":
             e["client"]["failed"] == 0,
         "connections spread over every node": bool(per_node) and all(
             k > 0 for k in per_node.values()) and set(per_node) == set(e["nodes"]),
         "the load balancer checks every node and finds it healthy": all(
             e["states"].get(n, "").startswith("UP") for n in e["nodes"]),
         "the service has a node port, and traffic enters the nodes on it":
             bool(e["node_port"]) and e["syns_to_node_port"] >= e["client"]["connections"]},
        f"{e['client']['succeeded']}/{e['client']['connections']} connections to "
        f"{e['address']}:80; HAProxy sent " + ", ".join(f"{n} {k}" for n, k in per_node.items())
        + "; checks: " + ", ".join(f"{n} {s}" for n, s in e["states"].items())
        + f"; {e['syns_to_node_port']} SYNs to node port {e['node_port']} on the nodes' "
        "uplinks",
        {"connections": e["client"]["connections"], **{f"to_{n}": k for n, k in
                                                        per_node.items()}},
    )


class LoadBalancer(OutsideClaim):
    name = "out-load-balancer"
    statement = ("a LoadBalancer service is a NodePort plus an external load balancer that "
                 "spreads connections over the nodes and checks their health")

    def steps(self, ctx: Context) -> int:
        return 2

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            svc = c.services.service(CLUSTER_SVC)
            backend = haproxy.backends([svc])[0].name
            node_port, address = svc.ports[0].node_port, str(svc.load_balancer_ip)
            caps = {n: Capture(c, n, underlay_intf(n), f"lb-{n}") for n in c.node_names}
            before = _stot(c.outside.stats(), backend)
            try:
                conns, raw = fetch(c, address, SERVICE_PORT, "lb", 30, timeout_s=3.0)
            finally:
                texts = {n: cap.stop() for n, cap in caps.items()}
            rows = c.outside.stats()
            after = _stot(rows, backend)
            logs = served(c, "lb", WEB)
            nodes = pod_nodes(c)
            addrs = node_addresses(c)
            lb_ip = c.endpoint_ip(LB_HOST)
            entries: dict[str, dict[str, Any]] = {}
            for pod, seqs in logs.items():  # the source a pod saw names the entry node
                for src in seqs.values():
                    entry = _owner(addrs, src) or src
                    entries.setdefault(entry, {"served": {p: 0 for p in WEB}})
                    entries[entry]["served"][pod] += 1
            e = {"address": address, "node_port": node_port, "client": summary(conns),
                 "nodes": c.node_names,
                 "per_node": {n: after.get(n, 0) - before.get(n, 0) for n in c.node_names},
                 "states": {r["svname"]: r.get("status", "") for r in rows
                            if r.get("pxname") == backend},
                 "syns_to_node_port": sum(_syns(t, c.endpoint_ip(n), node_port)
                                          for n, t in texts.items()),
                 "entries": entries, "pod_nodes": {p: nodes[p] for p in WEB},
                 "lb_ip": lb_ip, "client_ip": c.endpoint_ip(CLIENT)}
            for n, text in texts.items():
                keep_capture(ctx, LoadBalancer.name, n, caps[n], text)
            ctx.raw(f"{LoadBalancer.name}/client.jsonl", raw)
            ctx.raw(f"{LoadBalancer.name}/haproxy-stat.json", json.dumps(rows, indent=1))
            ctx.raw(f"{LoadBalancer.name}/haproxy.cfg", (c.outside.dir / "haproxy.cfg").read_text())
        keep_evidence(ctx, LoadBalancer.name, e)
        yield Figure("out_lb_paths.png", paths_png(
            _path_rows({**e, "client": e["client_ip"]}, via_lb=f"{address}:80"),
            f"LoadBalancer {CLUSTER_SVC} (externalTrafficPolicy Cluster): the paths taken"))
        yield Verdict(judge_lb(e))
