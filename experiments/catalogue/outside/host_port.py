"""out-host-port, a claim of the series' third part (traffic from outside):

    a hostPort opens a port only on the node running the pod, with no proxy in the path

The evidence, kept in raw/out-host-port/evidence.json, is a mapping; the verdict
(`judge_hostport`, pure) reads its keys

    nodes, pod_node, flows, host_port, portmap_dnat, kube_rules, sources, pod, client,
    pod_ip

and `HostPort.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CLIENT,
    HOST_PORT,
    HOSTPORT_POD,
    OutsideClaim,
    fetch,
    outside_cluster,
    served,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import conntrack, nat_table, summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.services import parse_conntrack


def judge_hostport(e: Mapping[str, Any]) -> ClaimResult:
    nodes, home = e["nodes"], e["pod_node"]
    if home not in nodes or not nodes[home]["connections"]:
        return error(HostPort.name, "no connection to the pod's node was made")
    others = [n for n in nodes if n != home]
    if not others:
        return error(HostPort.name, "one node: no other node to compare with")
    flows = [f for f in e["flows"] if f["orig_dport"] == e["host_port"]]
    return judge(
        HostPort.name,
        {f"{home} (the pod's node) answers on {e['host_port']}": nodes[home]["failed"] == 0,
         "every other node refuses it": all(
             nodes[n]["refused"] == nodes[n]["connections"] > 0 for n in others),
         "the pod sees the client's own address (no proxy, no SNAT)": bool(e["sources"])
             and set(e["sources"]) == {e["client"]},
         f"the DNAT is portmap's, in {home}'s nat table": bool(e["portmap_dnat"]),
         "no kube-proxy rule names the port": not e["kube_rules"],
         "conntrack: the node's port rewritten to the pod": bool(flows) and all(
             f["reply_src"] == e["pod_ip"] for f in flows)},
        "; ".join(f"{n}: {v['succeeded']}/{v['connections']} answered, {v['refused']} refused"
                  for n, v in nodes.items())
        + f"; {e['pod']} logged {sorted(set(e['sources']))} (client {e['client']}); "
        f"portmap rule: {e['portmap_dnat'][0] if e['portmap_dnat'] else 'none'}; "
        f"{len(flows)} conntrack entries to :{e['host_port']} answered by {e['pod_ip']}",
        {"answered": nodes[home]["succeeded"],
         "refused_elsewhere": sum(nodes[n]["refused"] for n in others)},
    )


class HostPort(OutsideClaim):
    name = "out-host-port"
    statement = ("a hostPort opens a port only on the node running the pod, with no proxy in the "
                 "path")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            home = c.pod(HOSTPORT_POD).node
            c.exec_node(home, ["conntrack", "-F"])
            nodes = {}
            for n in c.plan.nodes:
                conns, _ = fetch(c, str(n.underlay_ip.ip), HOST_PORT, f"hp-{n.name}", 4)
                nodes[n.name] = {**summary(conns),
                                 "refused": sum("Refused" in x.error for x in conns)}
            table = nat_table(c, home)
            flows = parse_conntrack(conntrack(c, home))
            logs = served(c, f"hp-{home}", (HOSTPORT_POD,))
            e = {"pod": HOSTPORT_POD, "pod_node": home, "pod_ip": c.endpoint_ip(HOSTPORT_POD),
                 "host_port": HOST_PORT, "client": c.endpoint_ip(CLIENT), "nodes": nodes,
                 "sources": sorted(logs[HOSTPORT_POD].values()),
                 "portmap_dnat": [ln for ln in table.splitlines() if ln.startswith("-A CNI-DN")
                                  and "DNAT" in ln and str(HOST_PORT) in ln],
                 "kube_rules": [ln for ln in table.splitlines() if "KUBE-" in ln
                                and f"--dport {HOST_PORT}" in ln],
                 "flows": [f.__dict__ for f in flows]}
            ctx.raw(f"{HostPort.name}/nat-{home}.txt", table)
        keep_evidence(ctx, HostPort.name, e)
        yield Verdict(judge_hostport(e))
