"""svc-rewrite-on-node, a claim of the series' second part (Services):

    the packet is rewritten on the client's own node: the virtual IP never appears on
    the underlay or at the router, and conntrack rewrites the replies

The evidence, kept in raw/svc-rewrite-on-node/evidence.json, is a mapping; the verdict
(`judge_rewrite`, pure) reads its keys

    remote_server_ip, flows, remote_server, vip, served, server_ips, captures,
    client_node, client

and `RewriteOnNode.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.services.common import ServicesClaim
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import (
    CLIENT,
    SERVERS,
    Capture,
    conntrack,
    run_client,
    served,
    services_cluster,
    summary,
    vip,
)
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.services import addresses_seen, parse_conntrack
from testbed.model.names import ROUTER, underlay_intf


def judge_rewrite(e: Mapping[str, Any]) -> ClaimResult:
    remote = e["remote_server_ip"]
    crossed = {name: seen.get(remote, 0) for name, seen in e["captures"].items()}
    if not e["served"].get(e["remote_server"]):
        return error(RewriteOnNode.name, f"no connection went to {e['remote_server']} on the other "
                     "node: nothing crossed the underlay to look at")
    vip_seen = {name: seen.get(e["vip"], 0) for name, seen in e["captures"].items()}
    flows = e["flows"]
    to_vip = [f for f in flows if f["orig_dst"] == e["vip"]]
    rewritten = [f for f in to_vip if f["reply_src"] in e["server_ips"]]
    return judge(
        RewriteOnNode.name,
        {"the virtual IP is in no capture": not any(vip_seen.values()),
         "the connections to the other node crossed every capture point":
             all(crossed.values()),
         "conntrack has the client's connections to the virtual IP": bool(to_vip),
         "each reply comes from a server pod, not the virtual IP":
             bool(to_vip) and len(rewritten) == len(to_vip)},
        f"{e['client']['succeeded']}/{e['client']['connections']} connections to {e['vip']} "
        f"({', '.join(f'{s} {k}' for s, k in e['served'].items())}); packets with the "
        f"virtual IP: " + ", ".join(f"{k} {v}" for k, v in vip_seen.items())
        + f"; with {e['remote_server']} ({remote}): "
        + ", ".join(f"{k} {v}" for k, v in crossed.items())
        + f"; conntrack on {e['client_node']}: {len(to_vip)} entries for {e['vip']}:80, "
        f"{len(rewritten)} with replies from {', '.join(e['server_ips'])}",
        {"vip_packets": sum(vip_seen.values()), "remote_server_packets": sum(crossed.values()),
         "conntrack_vip_entries": len(to_vip), "conntrack_rewritten": len(rewritten)},
    )


class RewriteOnNode(ServicesClaim):
    name = "svc-rewrite-on-node"
    statement = ("the packet is rewritten on the client's own node: the virtual IP never appears "
                 "on the underlay or at the router, and conntrack rewrites the replies")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            client_node = c.pod(CLIENT).node
            remote = next(s for s in SERVERS if c.pod(s).node != client_node)
            c.exec_node(client_node, ["conntrack", "-F"])
            points = {f"{n} {underlay_intf(n)}": (n, underlay_intf(n)) for n in c.node_names}
            points[f"{ROUTER} (all interfaces)"] = (ROUTER, "any")
            captures = {name: Capture(c, node, intf, name.split()[0])
                        for name, (node, intf) in points.items()}
            try:
                _, conns, raw = run_client(c, "rewrite", 40, host=vip(c))
            finally:
                texts = {name: cap.stop() for name, cap in captures.items()}
            table = conntrack(c, client_node)
            logs = served(c, "rewrite")
            e = {"vip": vip(c), "client_node": client_node, "remote_server": remote,
                 "remote_server_ip": c.endpoint_ip(remote),
                 "server_ips": [c.endpoint_ip(s) for s in SERVERS],
                 "client": summary(conns), "served": {s: len(v) for s, v in logs.items()},
                 "captures": {name: addresses_seen(text) for name, text in texts.items()},
                 "flows": [f.__dict__ for f in parse_conntrack(table)]}
            for name, text in texts.items():
                point = name.split()[0]
                ctx.raw(f"{RewriteOnNode.name}/capture-{point}.txt", text)
                ctx.run.write(f"raw/{RewriteOnNode.name}/capture-{point}.pcap",
                              captures[name].pcap.read_bytes())
            ctx.raw(f"{RewriteOnNode.name}/conntrack-{client_node}.txt", table)
            ctx.raw(f"{RewriteOnNode.name}/client.jsonl", raw)
        keep_evidence(ctx, RewriteOnNode.name, e)
        yield Verdict(judge_rewrite(e))
