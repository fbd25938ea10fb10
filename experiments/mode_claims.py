"""Claims about the other pod networks (issue 11), each on clusters of its own built from
topologies/flannel-host-gw.yaml, flannel-vxlan.yaml, kindnet.yaml and racks.yaml. Every
verdict is a pure function (`judge_*`) of the evidence kept in raw/<claim>/evidence.json.

    mode-host-gw-routes   flannel host-gw on one underlay: the router's kernel routes (no
                          pod route) and cross-node pings; on two racks, host-gw's pings
                          across the router and its agent's error, against flannel-vxlan's
                          and calico's (BGP, the router peering)
    mode-vxlan-mtu        flannel-vxlan: the pods' MTU against the underlay's, don't-fragment
                          pings at the MTU and one byte over, and a capture on the underlay
                          (outer node addresses, UDP 8472, VNI 1, inner pod addresses)
    mode-kindnet-no-bridge  kindnet: the nodes' links (no bridge, no bridge port) and routes
                          (one scope-host route per pod), cross-node pings
    mode-calico-bgp       Calico with BGP: the pod's neighbour entry for 169.254.1.1 (proxy
                          ARP), node-1's routes (the other block learnt over BGP, the local
                          blackhole), BIRD's sessions, the router's routes (every block,
                          learnt as a top-of-rack router), a host outside pinging a pod, the
                          convergence time, pings
    mode-calico-join      Calico with BGP, three nodes: node-3 leaves the mesh (its routes
                          withdrawn from every other node and the router, its pods out of
                          reach) and joins again (learnt over BGP, reachable both ways),
                          each change timed until every kernel agreed
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from experiments.framework.base import OWN_CLUSTERS, Claim, Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import Capture, keep_capture
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.measure.iproute import ip_json
from testbed.measure.ping import parse_ping
from testbed.model.load import load_spec
from testbed.model.names import CALICO, FLANNEL_HOST_GW, FLANNEL_VXLAN, ROUTER, underlay_intf
from testbed.model.spec import ClusterSpec

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"
PAIRS = (("pod-1", "pod-2"), ("pod-1", "pod-3"), ("pod-2", "pod-4"), ("pod-3", "pod-1"))


class ModeClaim(Claim):
    """A claim about a pod network: one verdict, on clusters of its own."""

    needs = OWN_CLUSTERS


def _cluster(ctx: Context, spec: ClusterSpec) -> Cluster:
    return Cluster(spec, progress=ctx.progress.note, wiring="cni")


def _racks(mode: str) -> ClusterSpec:
    return dataclasses.replace(load_spec(TOPOLOGIES / "racks.yaml"), pod_network=mode)


def _ping(c: Cluster, src: str, dst: str, size: int | None = None) -> dict[str, Any]:
    """One source's pings to a destination: loss, TTL, the nodes they sit on."""
    argv = ["ping", "-c2", "-i0.05", "-W1"]
    if size is not None:
        argv += ["-M", "do", "-s", str(size)]
    res = c.pod(src).exec([*argv, c.endpoint_ip(dst)])
    parsed = parse_ping(res.stdout)
    return {"src": src, "dst": dst, "ok": res.ok and parsed.loss_pct == 0,
            "ttl": parsed.ttl, "same_node": c.pod(src).node == c.pod(dst).node,
            "size": size, "output": (res.stdout + res.stderr)[-300:]}


def _pings(c: Cluster) -> list[dict[str, Any]]:
    return [_ping(c, s, d) for s, d in PAIRS]


def _routes(c: Cluster, where: str) -> list[dict[str, Any]]:
    return ip_json(c.exec_node(where, ["ip", "-j", "-4", "route"]), f"routes of {where}")


# -- host-gw: no router routes; racks ---------------------------------------------------------

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


# -- VXLAN: 50 bytes of MTU, UDP on the underlay -------------------------------------------

# `tcpdump -n -v -T vxlan`: the outer IP header (its total length), the outer addresses
# and UDP port with the VNI, the inner IP header (its length), the inner addresses
IP_HEADER = re.compile(r"IP \(tos .*, length (\d+)\)\s*$")
VXLAN_LINE = re.compile(r"(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
                        r"VXLAN, flags \[[^\]]*\] \([^)]*\), vni (\d+)")
INNER_LINE = re.compile(r"(\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): ICMP echo")
VXLAN_OVERHEAD = 50  # outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 (the claim's figure)


def parse_vxlan(text: str) -> list[dict[str, Any]]:
    """Encapsulated ICMP echoes in `tcpdump -n -v -T vxlan` text: outer source,
    destination, UDP port, VNI and IP length (what the underlay carried), inner source,
    destination and IP length (the pod's packet)."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = VXLAN_LINE.search(line)
        if not m or i == 0 or i + 2 >= len(lines):
            continue
        outer, inner_header = IP_HEADER.search(lines[i - 1]), IP_HEADER.search(lines[i + 1])
        inner = INNER_LINE.search(lines[i + 2])
        if outer and inner_header and inner:
            out.append({"outer_src": m.group(1), "outer_dst": m.group(2),
                        "port": int(m.group(3)), "vni": int(m.group(4)),
                        "outer_len": int(outer.group(1)), "inner_src": inner.group(1),
                        "inner_dst": inner.group(2), "inner_len": int(inner_header.group(1))})
    return out


def judge_vxlan(e: Mapping[str, Any]) -> ClaimResult:
    """Everything from the kernels and the wire: the pod's eth0 MTU (netlink) and the
    underlay's (the node's sysfs); the don't-fragment ping that fills the pod MTU seen on
    the underlay, its outer packet 50 bytes longer than the pod's and as long as the
    underlay allows; one byte more refused by the pod's own kernel naming the pod MTU (not
    by some hop further on) and never on the wire."""
    fits, over = e["fits"], e["over"]
    packets = e["packets"]
    if not packets and not fits["ok"]:
        return error(VxlanMtu.name, "nothing crossed the underlay to look at")
    wanted = [p for p in packets if (p["inner_src"], p["inner_dst"]) == (e["src_ip"],
                                                                          e["dst_ip"])]
    full = [p for p in wanted if p["inner_len"] == e["pod_mtu"]]
    too_big = [p for p in wanted if p["inner_len"] > e["pod_mtu"]]
    return judge(
        VxlanMtu.name,
        {"the pod's MTU (its eth0) is the underlay's minus 50":
             e["pod_mtu"] == e["underlay_mtu"] - VXLAN_OVERHEAD,
         "a don't-fragment ping filling the pod MTU crosses": fits["ok"],
         "on the wire it is 50 bytes longer, filling the underlay's MTU": bool(full) and all(
             p["outer_len"] - p["inner_len"] == VXLAN_OVERHEAD
             and p["outer_len"] == e["underlay_mtu"] for p in full),
         "one byte more is refused by the pod's own kernel at its MTU":
             not over["ok"] and f"mtu={e['pod_mtu']}" in over.get("output", ""),
         "and never reaches the underlay": not too_big,
         "on the underlay: node addresses outside, UDP 8472, VNI 1, pod addresses inside":
             bool(wanted) and all(
                 (p["outer_src"], p["outer_dst"], p["port"], p["vni"])
                 == (e["src_node_ip"], e["dst_node_ip"], 8472, 1) for p in wanted)},
        f"pod {e['src']} eth0 MTU {e['pod_mtu']} (from its kernel) on an underlay of "
        f"{e['underlay_mtu']}; ping -M do -s {fits['size']} ({fits['size'] + 28} bytes) "
        f"{'crossed' if fits['ok'] else 'failed'}, -s {over['size']} "
        f"{'crossed' if over['ok'] else 'failed'} ("
        + (over.get("output", "").strip().splitlines() or ["no output"])[-1][:80]
        + f"); {len(wanted)} encapsulated echoes of {e['src_ip']} -> {e['dst_ip']} on "
        f"{e['capture_point']}"
        + (f", e.g. {full[0]['outer_src']} -> {full[0]['outer_dst']}:{full[0]['port']} vni "
           f"{full[0]['vni']}, {full[0]['outer_len']} bytes around the pod's "
           f"{full[0]['inner_len']}" if full else ""),
        {"pod_mtu": e["pod_mtu"], "underlay_mtu": e["underlay_mtu"],
         "encapsulated": len(wanted),
         "outer_len": full[0]["outer_len"] if full else 0},
    )


class VxlanMtu(ModeClaim):
    name = "mode-vxlan-mtu"
    statement = ("VXLAN costs 50 bytes of MTU (a don't-fragment ping of the pod MTU crosses, one "
                 "byte more does not) and wraps pod packets in UDP between the nodes (outer node "
                 "addresses, port 8472, VNI 1, inner pod addresses)")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "flannel-vxlan.yaml")) as c:
            src, dst = "pod-1", "pod-3"
            node = c.pod(src).node
            # over netlink: a pod has no /sys of its own (a `cat /sys/class/net/eth0/mtu`
            # run in its network namespace reads the machine's eth0)
            links = ip_json(c.pod(src).exec(["ip", "-j", "link", "show", "eth0"]),
                            f"{src}'s eth0")
            if len(links) != 1 or not isinstance(links[0].get("mtu"), int):
                raise TestbedError(f"{src}'s eth0: no MTU in {links!r:.200}")
            pod_mtu = links[0]["mtu"]
            underlay_mtu = _sysfs_int(c.exec_node(node, ["cat", f"/sys/class/net/"
                                                         f"{underlay_intf(node)}/mtu"]),
                                      f"{node}'s underlay MTU")
            cap = Capture(c, node, underlay_intf(node), "vxlan-node-1")
            try:
                fits = _ping(c, src, dst, pod_mtu - 28)  # 20 IP + 8 ICMP header bytes
                over = _ping(c, src, dst, pod_mtu - 27)
            finally:
                cap.stop()
            text = c.exec_node(node, ["tcpdump", "-n", "-v", "-T", "vxlan", "-r",
                                      str(cap.pcap), "udp port 8472"]).stdout
            e = {"src": src, "pod_mtu": pod_mtu, "underlay_mtu": underlay_mtu, "fits": fits,
                 "over": over, "src_ip": c.endpoint_ip(src), "dst_ip": c.endpoint_ip(dst),
                 "src_node_ip": c.endpoint_ip(node),
                 "dst_node_ip": c.endpoint_ip(c.pod(dst).node),
                 "capture_point": f"{node} {underlay_intf(node)}",
                 "packets": parse_vxlan(text)}
            keep_capture(ctx, VxlanMtu.name, node, cap, text)
        keep_evidence(ctx, VxlanMtu.name, e)
        yield Verdict(judge_vxlan(e))


def _sysfs_int(res: Any, what: str) -> int:
    """A number read from sysfs in a node or pod (TestbedError when the read failed)."""
    try:
        if res.returncode != 0:
            raise ValueError(res.stderr.strip())
        return int(res.stdout.strip())
    except ValueError as exc:
        raise TestbedError(f"{what}: could not be read ({exc or res.stdout.strip()!r})") \
            from None


# -- kindnet: no bridge, a route per pod --------------------------------------------------------


def judge_kindnet(e: Mapping[str, Any]) -> ClaimResult:
    nodes = e["nodes"]
    if not nodes or not any(n["pods"] for n in nodes.values()):
        return error(KindnetNoBridge.name, "no pod to look at")
    return judge(
        KindnetNoBridge.name,
        {"no bridge on any node": not any(n["bridges"] for n in nodes.values()),
         "no interface enslaved to a bridge": not any(n["bridge_ports"]
                                                      for n in nodes.values()),
         "one scope-host route per pod, to its address": all(
             sorted(n["host_routes"]) == sorted(n["pod_ips"]) for n in nodes.values()),
         "pods reach each other, across nodes too": all(p["ok"] for p in e["pings"])},
        "; ".join(f"{name}: bridges {n['bridges'] or 'none'}, {len(n['host_routes'])} "
                  f"scope-host routes for {len(n['pod_ips'])} pods"
                  for name, n in nodes.items())
        + f"; pings {sum(p['ok'] for p in e['pings'])}/{len(e['pings'])} (TTL "
        f"{sorted({p['ttl'] for p in e['pings']})})",
        {"bridges": sum(len(n["bridges"]) for n in nodes.values()),
         "host_routes": sum(len(n["host_routes"]) for n in nodes.values())},
    )


class KindnetNoBridge(ModeClaim):
    name = "mode-kindnet-no-bridge"
    statement = ("kindnet's pods have no bridge: each has a point-to-point veth and a route of "
                 "its own on its node")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "kindnet.yaml")) as c:
            nodes = {}
            for node in c.node_names:
                links = json.loads(c.exec_node(node, ["ip", "-j", "-d", "link"]).stdout)
                nodes[node] = {
                    "bridges": [x["ifname"] for x in links
                                if x.get("linkinfo", {}).get("info_kind") == "bridge"],
                    "bridge_ports": [x["ifname"] for x in links if x.get("master")],
                    "host_routes": [r["dst"] for r in _routes(c, node)
                                    if r.get("scope") == "host"],
                    "pod_ips": [c.endpoint_ip(p) for p in c.pods_by_node().get(node, [])],
                    "pods": c.pods_by_node().get(node, [])}
            e = {"nodes": nodes, "pings": _pings(c)}
        keep_evidence(ctx, KindnetNoBridge.name, e)
        yield Verdict(judge_kindnet(e))


# -- Calico: proxy ARP, routes learnt over BGP ------------------------------------------------


def judge_calico(e: Mapping[str, Any]) -> ClaimResult:
    if not e["pings"]:
        return error(CalicoBgp.name, "no ping between pods was made")
    learnt = e["learnt"]
    return judge(
        CalicoBgp.name,
        {"the pod's gateway 169.254.1.1 is answered with ee:ee:ee:ee:ee:ee (proxy ARP)":
             e["gateway_mac"] == "ee:ee:ee:ee:ee:ee" and e["proxy_arp"] == "1",
         "the other node's block is learnt over BGP (proto bird, via that node)":
             bool(learnt) and all(r["protocol"] == "bird" and r["gateway"] == e["peer_ip"]
                                  for r in learnt),
         "the local block is BIRD's blackhole": e["blackhole"],
         "every BGP session is established": bool(e["sessions"]) and all(
             "Established" in s for s in e["sessions"]),
         "pods reach each other across nodes": all(p["ok"] for p in e["pings"]),
         "the router learnt every block over BGP (proto bgp, via its node)": bool(
             e["router_learnt"]) and sorted(r["dst"] for r in e["router_learnt"]
                                            if r["protocol"] == "bgp") == sorted(e["blocks"]),
         "a host outside the cluster reaches a pod": e["outside_ok"],
         "the mesh converged within the bring-up's wait": 0 < e["converge_s"] < 60},
        f"pod-1's neighbour 169.254.1.1: {e['gateway_mac'] or 'none'} (proxy_arp "
        f"{e['proxy_arp']} on its host veth); node-1's learnt routes "
        f"{[(r['dst'], r['gateway'], r['protocol']) for r in learnt]}; blackhole "
        f"{'present' if e['blackhole'] else 'absent'}; sessions {e['sessions']}; the mesh "
        f"converged {e['converge_s']:.2f} s after the daemons started; the router's routes "
        f"{[(r['dst'], r['gateway'], r['protocol']) for r in e['router_learnt']]}; a host "
        f"outside {'reached' if e['outside_ok'] else 'did not reach'} pod-1; pings "
        f"{sum(p['ok'] for p in e['pings'])}/{len(e['pings'])}",
        {"converge_s": round(e["converge_s"], 3), "learnt_routes": len(learnt)},
    )


class CalicoBgp(ModeClaim):
    name = "mode-calico-bgp"
    statement = ("a Calico pod's gateway 169.254.1.1 is answered by proxy ARP with "
                 "ee:ee:ee:ee:ee:ee; routes to other nodes' blocks are learnt over BGP (proto "
                 "bird), within the convergence time measured; the router peers as a top-of-rack "
                 "router, so hosts outside reach pods")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "calico.yaml")) as c:
            pings = _pings(c)  # traffic first: the gateway is resolved by then
            pod = c.pod("pod-1")
            entries = ip_json(pod.exec(["ip", "-j", "neigh", "show", "169.254.1.1"]),
                              "pod-1's neighbour 169.254.1.1")
            host = json.loads(pod.exec(["ip", "-j", "link", "show", "eth0"]).stdout)[0]
            peer_index = host.get("link_index")
            links = json.loads(c.exec_node(pod.node, ["ip", "-j", "link"]).stdout)
            veth = next((x["ifname"] for x in links if x.get("ifindex") == peer_index), "")
            proxy_arp = c.exec_node(pod.node, ["cat", f"/proc/sys/net/ipv4/conf/{veth}/"
                                                      "proxy_arp"]).stdout.strip()
            node_routes = _routes(c, "node-1")
            sock = c.records.subdir("daemons", "node-1") / "bird.ctl"
            protocols = c.exec_node("node-1", ["birdc", "-s", str(sock), "show",
                                               "protocols"]).stdout
            c.add_external_host("outside", "198.51.100.0/24")
            outside = c.exec_node("outside", ["ping", "-c2", "-i0.05", "-W1",
                                              c.endpoint_ip("pod-1")])
            blocks = [str(n.pod_cidr) for n in c.plan.nodes]
            e = {"router_learnt": [
                     {"dst": r.get("dst"), "gateway": r.get("gateway", ""),
                      "protocol": r.get("protocol", "")} for r in _routes(c, ROUTER)
                     if r.get("dst") in blocks],
                 "blocks": blocks, "outside_ok": outside.ok,
                 "gateway_mac": entries[0].get("lladdr", "") if entries else "",
                 "proxy_arp": proxy_arp, "peer_ip": c.endpoint_ip("node-2"),
                 "learnt": [{"dst": r.get("dst"), "gateway": r.get("gateway", ""),
                             "protocol": r.get("protocol", "")} for r in node_routes
                            if r.get("dst") == str(c.node_plan("node-2").pod_cidr)],
                 "blackhole": any(r.get("type") == "blackhole" and r.get("protocol") == "bird"
                                  for r in node_routes),
                 "sessions": [ln for ln in protocols.splitlines() if ln.startswith("Mesh_")],
                 "converge_s": c.timings.get("converge_s", 0.0), "pings": pings}
            ctx.raw(f"{CalicoBgp.name}/birdc-show-protocols.txt", protocols)
            ctx.raw(f"{CalicoBgp.name}/bird.conf",
                    (c.records.subdir("daemons", "node-1") / "bird.conf").read_text())
        keep_evidence(ctx, CalicoBgp.name, e)
        yield Verdict(judge_calico(e))


# -- Calico: a node leaves the mesh and joins it again ----------------------------------------

MOVER = "node-3"  # calico.yaml's third node: it leaves and joins


def judge_join(e: Mapping[str, Any]) -> ClaimResult:
    others = e["others"]
    if not others or not e["left"]["pings"] or not e["joined"]["pings"]:
        return error(CalicoJoin.name, "no other node, or no ping to the moving node's pods")
    left, joined = e["left"], e["joined"]
    return judge(
        CalicoJoin.name,
        {"before: every other node reaches its pods": all(p["ok"] for p in e["before"]),
         "once it left, no other node and not the router routes to its block": not any(
             left["routes"][n] for n in [*others, ROUTER]),
         "once it left, no other node's pod reaches its pods": not any(
             p["ok"] for p in left["pings"]),
         "once it joined, every other node routes to its block over BGP (proto bird, via "
         "its address)": all(
             joined["routes"][n] and all(r["protocol"] == "bird" and r["gateway"] ==
                                         e["mover_ip"] for r in joined["routes"][n])
             for n in others),
         "once it joined, the router learnt its block (proto bgp)": bool(
             joined["routes"][ROUTER]) and all(r["protocol"] == "bgp"
                                              for r in joined["routes"][ROUTER]),
         "once it joined, every other node's pods reach its pods, and they them": all(
             p["ok"] for p in joined["pings"]),
         "both changes converged, timed": 0 < e["leave_s"] < 60 and 0 < e["join_s"] < 60},
        f"{e['mover']} ({e['block']}) left: {e['leave_s']:.2f} s until no kernel routed to "
        f"its block; routes then {_route_list(left['routes'])}; pings "
        f"{sum(p['ok'] for p in left['pings'])}/{len(left['pings'])}. It joined: "
        f"{e['join_s']:.2f} s until every kernel had every block; routes then "
        f"{_route_list(joined['routes'])}; pings "
        f"{sum(p['ok'] for p in joined['pings'])}/{len(joined['pings'])} (before: "
        f"{sum(p['ok'] for p in e['before'])}/{len(e['before'])})",
        {"leave_s": round(e["leave_s"], 3), "join_s": round(e["join_s"], 3)},
    )


def _route_list(routes: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {n: [f"{r['dst']} via {r['gateway']} proto {r['protocol']}" for r in rs]
            for n, rs in routes.items()}


class CalicoJoin(ModeClaim):
    """A node that joins a running Calico mesh is reachable from every other node after
    the time measured; one that leaves is withdrawn everywhere (topologies/calico.yaml)."""

    name = "mode-calico-join"
    statement = ("a node that joins a running Calico cluster is reachable from every other node "
                 "after the convergence time measured; one that leaves is withdrawn from every "
                 "node and the router")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "calico.yaml")) as c:
            block = str(c.node_plan(MOVER).pod_cidr)
            others = [n for n in c.node_names if n != MOVER]
            here = c.pods_by_node()
            moving = here.get(MOVER, [])
            sources = [here[n][0] for n in others if here.get(n)]

            def state() -> dict[str, Any]:
                routes = {n: [{"dst": r.get("dst"), "gateway": r.get("gateway", ""),
                               "protocol": r.get("protocol", "")}
                              for r in _routes(c, n) if r.get("dst") == block]
                          for n in [*others, ROUTER]}
                pings = [_ping(c, s, d) for s in sources for d in moving]
                return {"routes": routes, "pings": pings}

            before = [_ping(c, s, d) for s in sources for d in moving]
            leave_s = c.leave(MOVER)
            left = state()
            join_s = c.join(MOVER)
            joined = state()
            joined["pings"] += [_ping(c, d, s) for s in sources for d in moving]
            e = {"mover": MOVER, "mover_ip": c.endpoint_ip(MOVER), "block": block,
                 "others": others, "before": before, "leave_s": leave_s, "left": left,
                 "join_s": join_s, "joined": joined}
        keep_evidence(ctx, CalicoJoin.name, e)
        yield Verdict(judge_join(e))


MODE_CLAIMS = (HostGwRoutes(), VxlanMtu(), KindnetNoBridge(), CalicoBgp(), CalicoJoin())
