"""mode-host-gw-routes, a claim of other pod networks:

    flannel host-gw reaches pods across nodes with no pod route on the router; across
    racks it cannot (flanneld's error says why), while flannel VXLAN and Calico (BGP)
    can

The evidence, kept in raw/mode-host-gw-routes/evidence.json, is a mapping; the verdict
(`judge_host_gw`, pure) reads its keys

    one_underlay, racks_host_gw, racks_vxlan, racks_calico

and `HostGwRoutes.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.modes.common import (
    TOPOLOGIES,
    ModeClaim,
    _cluster,
    _pings,
    _racks,
    _routes,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.model.load import load_spec
from testbed.model.names import CALICO, FLANNEL_HOST_GW, FLANNEL_VXLAN

# the kernel's answer to a route whose gateway is on no link: iproute2 prints the kernel's
# extended ack, older ones the errno (ENETUNREACH, what flanneld logs)
UNREACHABLE = ("Nexthop has invalid gateway", "Network is unreachable")


def judge_host_gw(e: Mapping[str, Any]) -> ClaimResult:
    one, hgw, vx = e["one_underlay"], e["racks_host_gw"], e["racks_vxlan"]
    cross = [p for p in one["pings"] if not p["same_node"]]
    if not cross or not [p for p in hgw["pings"] if not p["same_node"]]:
        return error(HostGwRoutes.name, "no ping between pods of different nodes was made")
    pod_routes = [r for r in one["router_routes"] if r["in_cluster"]]
    return judge(
        HostGwRoutes.name,
        {"one underlay: the router holds no pod route": not pod_routes,
         "one underlay: pods reach across nodes": all(p["ok"] for p in cross),
         "one underlay: two nodes route, no router (TTL 62)": all(p["ttl"] == 62
                                                                for p in cross),
         "racks: host-gw's pods cannot reach the other rack": not any(
             p["ok"] for p in hgw["pings"] if not p["same_node"]),
         "racks: host-gw's pods still reach their own node's": all(
             p["ok"] for p in hgw["pings"] if p["same_node"]),
         "racks: the kernel refuses the route flanneld would add (gateway on no link)":
             bool(hgw.get("route_attempts")) and all(
                 a["returncode"] != 0 and any(w in a["stderr"] for w in UNREACHABLE)
                 for a in hgw["route_attempts"]),
         "racks: vxlan's pods reach across the router": all(p["ok"] for p in vx["pings"]),
         "racks: calico's (BGP) pods reach across the router": bool(e["racks_calico"]["pings"])
             and all(p["ok"] for p in e["racks_calico"]["pings"])},
        f"one underlay: router routes {[r['dst'] for r in one['router_routes']]}, "
        f"cross-node pings {sum(p['ok'] for p in cross)}/{len(cross)} with TTL "
        f"{sorted({p['ttl'] for p in cross})}; two racks, host-gw: cross-rack "
        f"{sum(p['ok'] for p in hgw['pings'] if not p['same_node'])}/"
        f"{sum(1 for p in hgw['pings'] if not p['same_node'])}, same node "
        f"{sum(p['ok'] for p in hgw['pings'] if p['same_node'])}/"
        f"{sum(1 for p in hgw['pings'] if p['same_node'])}; the route flanneld would add, "
        "tried in the node: "
        + "; ".join(f"{a['node']}: `{a['command']}`: "
                    f"{a['stderr'].strip() or 'added (exit 0)'}"
                    for a in hgw.get("route_attempts", [])[:2])
        + "; two racks, vxlan: "
        f"{sum(p['ok'] for p in vx['pings'])}/{len(vx['pings'])}, calico: "
        f"{sum(p['ok'] for p in e['racks_calico']['pings'])}/"
        f"{len(e['racks_calico']['pings'])}",
        {"router_pod_routes": len(pod_routes), "cross_ok": sum(p["ok"] for p in cross),
         "racks_host_gw_cross_ok": sum(p["ok"] for p in hgw["pings"] if not p["same_node"]),
         "racks_vxlan_ok": sum(p["ok"] for p in vx["pings"]),
         "racks_calico_ok": sum(p["ok"] for p in e["racks_calico"]["pings"])},
    )


class HostGwRoutes(ModeClaim):
    name = "mode-host-gw-routes"
    statement = ("flannel host-gw reaches pods across nodes with no pod route on the router; "
                 "across racks it cannot (flanneld's error says why), while flannel VXLAN and "
                 "Calico (BGP) can")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "flannel-host-gw.yaml")) as c:
            cidr = c.spec.cluster_cidr
            one = {"router_routes": [
                {"dst": r.get("dst", ""), "gateway": r.get("gateway", ""),
                 "in_cluster": r.get("dst", "") not in ("", "default") and _in(r["dst"], cidr)}
                for r in _routes(c, "router")], "pings": _pings(c)}
        with _cluster(ctx, _racks(FLANNEL_HOST_GW)) as c:
            hgw = {"pings": _pings(c), "route_attempts": _attempt_routes(c),
                   "notes": [n for ns in c.node_notes.values() for n in ns]}
        with _cluster(ctx, _racks(FLANNEL_VXLAN)) as c:
            vx = {"pings": _pings(c)}
        with _cluster(ctx, _racks(CALICO)) as c:
            calico = {"pings": _pings(c)}
        e = {"one_underlay": one, "racks_host_gw": hgw, "racks_vxlan": vx,
             "racks_calico": calico}
        keep_evidence(ctx, HostGwRoutes.name, e)
        yield Verdict(judge_host_gw(e))


def _attempt_routes(c: Cluster) -> list[dict[str, Any]]:
    """What flanneld's host-gw backend does for every other node's lease, tried in each
    node: `ip route add <its pod CIDR> via <its address>`, for the nodes on another rack.
    The kernel's answer is the evidence (a route it accepted is removed again)."""
    out = []
    for node in c.plan.nodes:
        for other in c.plan.nodes:
            if other.name == node.name or c.plan.same_segment(node, other):
                continue
            argv = ["ip", "route", "add", str(other.pod_cidr), "via", str(other.underlay_ip.ip)]
            res = c.exec_node(node.name, argv)
            if res.ok:
                c.exec_node(node.name, ["ip", "route", "del", str(other.pod_cidr)])
            out.append({"node": node.name, "to": other.name, "command": " ".join(argv),
                        "returncode": res.returncode, "stderr": res.stderr.strip()})
    return out


def _in(dst: str, cidr: Any) -> bool:
    from ipaddress import ip_network

    try:
        return ip_network(dst, strict=False).subnet_of(cidr)
    except (ValueError, TypeError):
        return False
