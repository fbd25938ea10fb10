"""svc-userspace-proxy, a claim of the series' second part (Services):

    in userspace mode kube-proxy carries every connection (the server sees the node as
    the source, a second connection); in iptables mode it only writes rules and the
    kernel does the rest

The evidence, kept in raw/svc-userspace-proxy/evidence.json, is a mapping; the verdict
(`judge_userspace`, pure) reads its keys

    iptables, userspace, client_ip, node_addresses

and `UserspaceProxy.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from experiments.catalogue.services.common import ServicesClaim
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import (
    CLIENT,
    SERVERS,
    conntrack,
    keep_logs,
    nat_table,
    run_client,
    served,
    services_cluster,
    summary,
    vip,
)
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.measure.services import parse_conntrack
from testbed.model.svc.modes import UserspaceMode
from testbed.model.svc.outside import PROXY_HEALTH_PORT


def judge_userspace(e: Mapping[str, Any]) -> ClaimResult:
    ipt, us = e["iptables"], e["userspace"]
    if not ipt["sources"] or not us["sources"]:
        return error(UserspaceProxy.name, "the servers logged no connection in one of the modes")
    client, node_addrs = e["client_ip"], set(e["node_addresses"])
    return judge(
        UserspaceProxy.name,
        {"iptables: every connection succeeded": ipt["client"]["failed"] == 0,
         "iptables: the servers saw the client pod": set(ipt["sources"]) == {client},
         "iptables: kube-proxy listens on no service port": ipt["listening"] == 0,
         "iptables: no second connection from the node": ipt["from_node"] == 0,
         "userspace: every connection succeeded": us["client"]["failed"] == 0,
         "userspace: the servers saw the node": set(us["sources"]) <= node_addrs,
         "userspace: kube-proxy listens on the service ports": us["listening"] > 0,
         "userspace: a second connection from the node per request":
             us["from_node"] >= us["client"]["connections"]},
        f"iptables mode: the servers saw {', '.join(sorted(set(ipt['sources'])))} (client "
        f"{client}), kube-proxy listened on {ipt['listening']} port(s), "
        f"{ipt['from_node']} node-to-server entries in conntrack; userspace mode: the servers "
        f"saw {', '.join(sorted(set(us['sources'])))} (the node: "
        f"{', '.join(sorted(node_addrs))}), kube-proxy listened on {us['listening']} "
        f"port(s), {us['from_node']} node-to-server entries for "
        f"{us['client']['connections']} requests",
        {"iptables_listening": ipt["listening"], "userspace_listening": us["listening"],
         "iptables_from_node": ipt["from_node"], "userspace_from_node": us["from_node"]},
    )


def _listening(c: Cluster, node: str) -> int:
    """TCP sockets the node's kube-proxy listens on for services (its health servers,
    on 10256 and on health-check node ports, in every mode, aside)."""
    pid = c.services.proxies[node].pid
    health = {PROXY_HEALTH_PORT} | {s.health_check_node_port for s in c.services.services
                                    if s.health_check_node_port}
    out = c.exec_node(node, ["ss", "-Hltnp"]).stdout
    return sum(1 for line in out.splitlines() if f"pid={pid}," in line
               and int(line.split()[3].rpartition(":")[2]) not in health)


def _phase(c: Cluster, ctx: Context, tag: str, node_addrs: Sequence[str]) -> dict[str, Any]:
    node = c.pod(CLIENT).node
    c.exec_node(node, ["conntrack", "-F"])
    _, conns, raw = run_client(c, tag, 20, host=vip(c))
    logs = served(c, tag)
    table = conntrack(c, node)
    ctx.raw(f"{UserspaceProxy.name}/conntrack-{tag}.txt", table)
    ctx.raw(f"{UserspaceProxy.name}/client-{tag}.jsonl", raw)
    servers = {c.endpoint_ip(s) for s in SERVERS}
    flows = parse_conntrack(table)
    return {"client": summary(conns),
            "sources": [ip for seqs in logs.values() for ip in seqs.values()],
            "listening": _listening(c, node),
            "from_node": sum(1 for f in flows if f.orig_src in node_addrs
                             and f.orig_dst in servers and f.orig_dport == 8080)}


class UserspaceProxy(ServicesClaim):
    name = "svc-userspace-proxy"
    statement = ("in userspace mode kube-proxy carries every connection (the server sees the node "
                 "as the source, a second connection); in iptables mode it only writes rules and "
                 "the kernel does the rest")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            node = c.pod(CLIENT).node
            plan = c.node_plan(node)
            node_addrs = [str(plan.underlay_ip.ip), str(plan.gateway)]
            e: dict[str, Any] = {"client_ip": c.endpoint_ip(CLIENT), "node_addresses": node_addrs,
                                 "iptables": _phase(c, ctx, "iptables", node_addrs)}
            c.services.set_mode(UserspaceMode.name)
            e["userspace"] = _phase(c, ctx, "userspace", node_addrs)
            ctx.raw(f"{UserspaceProxy.name}/nat-{node}-userspace.txt", nat_table(c, node))
            keep_logs(ctx, UserspaceProxy.name, c)
        keep_evidence(ctx, UserspaceProxy.name, e)
        yield Verdict(judge_userspace(e))
