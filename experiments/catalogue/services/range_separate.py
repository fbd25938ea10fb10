"""svc-range-separate, a claim of the series' second part (Services):

    the service range overlaps neither the pod nor the node ranges

The evidence, kept in raw/svc-range-separate/evidence.json, is a mapping; the verdict
(`judge_range`, pure) reads its keys

    nodes, service_cidr, cluster_ips, pod_cidrs, underlays

and `RangeSeparate.run` gathers them on a cluster of its own."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.services.common import ServicesClaim, _addresses, _in, _overlap
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import nat_table, services_cluster
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.names import underlay_intf


def judge_range(e: Mapping[str, Any]) -> ClaimResult:
    """Every range read from the kernels, not the spec: each node's bridge (its pod CIDR)
    and its underlay address must have been read, else there is nothing to compare."""
    nodes = e.get("nodes", [])
    unread = [f"{n} ({'pod CIDR' if n not in e['pod_cidrs'] else 'underlay'})"
              for n in nodes if n not in e["pod_cidrs"] or n not in e["underlays"]]
    if len(nodes) < 2 or unread or not e["cluster_ips"]:
        return error(RangeSeparate.name, "needs two nodes whose pod CIDR (bridge) and underlay "
                     "address were read from their kernels, and a service with a cluster "
                     f"IP in kube-proxy's rules: {len(nodes)} node(s)"
                     + (f", not read on {', '.join(unread)}" if unread else "")
                     + f", {len(e['cluster_ips'])} cluster IP(s)")
    svc = e["service_cidr"]
    ranges = {f"pod CIDR of {n}": cidr for n, cidr in e["pod_cidrs"].items()}
    ranges.update({f"underlay of {n}": net for n, net in e["underlays"].items()})
    overlaps = sorted(name for name, net in ranges.items() if _overlap(svc, net))
    outside = sorted(ip for ip in e["cluster_ips"] if not _in(ip, svc))
    return judge(
        RangeSeparate.name,
        {"no pod CIDR overlaps the service range":
            not [o for o in overlaps if o.startswith("pod")],
         "no node network overlaps the service range":
            not [o for o in overlaps if o.startswith("underlay")],
         "every cluster IP lies in the service range": not outside},
        f"service range {svc}; pod CIDRs (from each node's bridge) "
        f"{', '.join(e['pod_cidrs'].values())}; node networks "
        f"{', '.join(sorted(set(e['underlays'].values())))}; cluster IPs in kube-proxy's "
        f"rules {', '.join(e['cluster_ips'])}"
        + (f"; overlapping: {', '.join(overlaps)}" if overlaps else "")
        + (f"; outside: {', '.join(outside)}" if outside else ""),
        {"overlaps": len(overlaps), "cluster_ips": len(e["cluster_ips"])},
    )


class RangeSeparate(ServicesClaim):
    name = "svc-range-separate"
    statement = ("the service range overlaps neither the pod nor the node ranges")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            e: dict[str, Any] = {"service_cidr": str(c.spec.service_cidr), "pod_cidrs": {},
                                 "underlays": {}, "nodes": list(c.node_names)}
            for node in c.node_names:
                for a in _addresses(c, node):
                    net = str(ipaddress.ip_interface(f"{a['address']}/{a['prefix']}").network)
                    if a["ifname"] == c.network.bridge:
                        e["pod_cidrs"][node] = net
                    elif a["ifname"] == underlay_intf(node):
                        e["underlays"][node] = net
            rules = nat_table(c, c.node_names[0])
            e["cluster_ips"] = sorted({line.split(" -d ")[1].split("/")[0]
                                       for line in rules.splitlines()
                                       if line.startswith("-A KUBE-SERVICES ")
                                       and "cluster IP" in line and " -d " in line})
            ctx.raw(f"{RangeSeparate.name}/nat-{c.node_names[0]}.txt", rules)
        keep_evidence(ctx, RangeSeparate.name, e)
        yield Verdict(judge_range(e))
