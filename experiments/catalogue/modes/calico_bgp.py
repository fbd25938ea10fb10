"""mode-calico-bgp, a claim of other pod networks:

    a Calico pod's gateway 169.254.1.1 is answered by proxy ARP with ee:ee:ee:ee:ee:ee;
    routes to other nodes' blocks are learnt over BGP (proto bird), within the
    convergence time measured; the router peers as a top-of-rack router, so hosts
    outside reach pods

The evidence, kept in raw/mode-calico-bgp/evidence.json, is a mapping; the verdict
(`judge_calico`, pure) reads its keys

    learnt, pings, blackhole, outside_ok, converge_s, proxy_arp, sessions, gateway_mac,
    router_learnt, blocks, peer_ip

and `CalicoBgp.run` gathers them on a cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.modes.common import TOPOLOGIES, ModeClaim, _cluster, _pings, _routes
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.iproute import ip_json
from testbed.model.load import load_spec
from testbed.model.names import ROUTER


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
