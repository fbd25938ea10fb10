"""The claims of the series' third part (traffic from outside the cluster), each on a
cluster of its own built from topologies/outside.yaml: three nodes (node-3 without a web
pod), `web-cluster` and `web-local` LoadBalancer services (externalTrafficPolicy Cluster
and Local), an ingress `shop` in front of `cart` and `web-cluster`, a hostPort pod on
node-3, and `internet-client` behind the router. Every verdict is a pure function
(`judge_*`) of the evidence kept in raw/<claim>/evidence.json, beside the logs, captures,
rules and load-balancer samples it was read from.

    out-service-route     the service range routed to node-1 at the router: reachable from
                          outside, every connection through node-1, gone when node-1 fails
    out-node-ip-refused   each node's address on the service port, with its node port as
                          the positive control
    out-nodeport          every node's node port; which pod served each entry node, and the
                          extra hop (capture on the entry node's uplink)
    out-load-balancer     connections through the load balancer: per-node counts from
                          HAProxy, the health-check state, the node port in the captures
    out-lb-node-down      a node taken off the network under load: when the load balancer
                          stopped sending to it, and the connections lost in between
    out-traffic-policy    Cluster against Local: the source each server logged, nodes
                          without a local pod, the health-check node port's answers
    out-ingress           host names and paths through the ingress controller
    out-host-port         the hostPort on every node: only the pod's node answers, no proxy
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.framework import probes
from experiments.framework.base import (
    OWN_CLUSTERS,
    Claim,
    Context,
    Figure,
    Result,
    Verdict,
    keep_evidence,
    retry,
)
from experiments.framework.svc_common import Capture, conntrack, keep_capture, nat_table, summary
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.measure.services import Connection, parse_access_log, parse_client, parse_conntrack
from testbed.model.load import load_spec
from testbed.model.names import ROUTER, underlay_intf
from testbed.model.svc import haproxy
from testbed.model.svc.outside import LB_HOST
from testbed.results.plots import paths_png, timeline_png

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "topologies" / "outside.yaml"
CLIENT = "internet-client"
WEB = ("web-1", "web-2")
CART = "cart-1"
HOSTPORT_POD = "hostport"
CLUSTER_SVC, LOCAL_SVC = "web-cluster", "web-local"
SERVICE_PORT = 80
HOST_PORT = 8088
SERVERS = (*WEB, CART, HOSTPORT_POD)


class OutsideClaim(Claim):
    """A claim of the third part: one verdict, on a cluster of its own."""

    needs = OWN_CLUSTERS


@contextmanager
def outside_cluster(ctx: Context) -> Iterator[Cluster]:
    with Cluster(load_spec(TOPOLOGY), progress=ctx.progress.note, wiring=ctx.wiring) as c:
        yield c


def fetch(c: Cluster, host: str, port: int, tag: str, count: int = 6, path: str = "/",
          vhost: str = "", timeout_s: float = 1.0) -> tuple[list[Connection], str]:
    """`count` HTTP connections from the external client, one after another."""
    res = c.exec_node(CLIENT, probes.http_loop(host, port, count, 0.0, tag, timeout_s, path,
                                                vhost), timeout=count * (timeout_s + 1) + 30)
    return parse_client(res.stdout)[1], res.stdout + res.stderr


def served(c: Cluster, tag: str, pods: Sequence[str] = SERVERS) -> dict[str, dict[int, str]]:
    """pod -> {seq: the source address it logged} for the probe `tag`."""
    time.sleep(0.2)  # the servers' last log lines
    logs = c.records.subdir("containers")
    return {p: parse_access_log((logs / f"{p}_web.log").read_text(errors="replace"), tag)
            for p in pods}


def node_addresses(c: Cluster) -> dict[str, list[str]]:
    """Each node's own addresses: underlay and bridge (what SNAT can give a packet)."""
    return {n.name: [str(n.underlay_ip.ip), str(n.bridge_ip.ip)] for n in c.plan.nodes}


def pod_nodes(c: Cluster) -> dict[str, str]:
    return {name: pod.node for name, pod in c.pods.items()}


def _conns(conns: Sequence[Connection]) -> list[dict[str, Any]]:
    return [x.__dict__ for x in conns]


def _owner(addresses: Mapping[str, Sequence[str]], ip: str) -> str:
    return next((n for n, ips in addresses.items() if ip in ips), "")


def _syns(capture: str, dst: str, port: int) -> int:
    """SYNs to dst:port in `tcpdump -n -r` text."""
    pattern = re.compile(rf"> {re.escape(dst)}\.{port}: Flags \[S\]")
    return sum(1 for line in capture.splitlines() if pattern.search(line))


# -- 1. a route to the service range ----------------------------------------------------------


def judge_route(e: Mapping[str, Any]) -> ClaimResult:
    """Each phase must have made connections (0 of 0 "unreachable" proves nothing), and
    the failure with the node off needs its positive control: reachable again once the
    node is back, through the same route."""
    empty = [phase for phase in ("before", "with_route", "node_down", "node_back")
             if not e.get(phase, {}).get("connections")]
    if empty:
        return error(ServiceRoute.name, f"no connection was made in phase(s) {', '.join(empty)}")
    if e.get("capture_dropped", 0) and e["syns_at_node"] < e["with_route"]["connections"]:
        return error(ServiceRoute.name, f"the capture on {e['node']}'s uplink dropped "
                     f"{e['capture_dropped']} packet(s) and saw {e['syns_at_node']} SYNs for "
                     f"{e['with_route']['connections']} connections: it cannot say one did "
                     "not cross")
    sources = [ip for ips in e["sources"].values() for ip in ips]
    via = e["node"]
    return judge(
        ServiceRoute.name,
        {"unreachable from outside without the route": e["before"]["succeeded"] == 0,
         "reachable with the route": e["with_route"]["failed"] == 0,
         f"every connection reached its server from {via}": bool(sources) and all(
             ip in e["node_addresses"] for ip in sources),
         f"every connection crossed {via}'s uplink": e["syns_at_node"]
             >= e["with_route"]["connections"],
         f"unreachable once {via} fails": e["node_down"]["succeeded"] == 0,
         f"reachable again once {via} is back": e["node_back"]["failed"] == 0},
        f"to {e['vip']}:80 from {e['client']}: {e['before']['succeeded']}/"
        f"{e['before']['connections']} without a route; with {e['service_cidr']} via {via} "
        f"at the router {e['with_route']['succeeded']}/{e['with_route']['connections']}, "
        f"served by " + ", ".join(f"{p} {len(v)}" for p, v in e["sources"].items())
        + f" from {sorted(set(sources))} ({via}'s addresses: {e['node_addresses']}); "
        f"{e['syns_at_node']} SYNs to the virtual IP on {via}'s uplink; with {via} off "
        f"the network {e['node_down']['succeeded']}/{e['node_down']['connections']}, back "
        f"on it {e['node_back']['succeeded']}/{e['node_back']['connections']}",
        {"before_ok": e["before"]["succeeded"], "with_route_ok": e["with_route"]["succeeded"],
         "with_route": e["with_route"]["connections"], "syns_at_node": e["syns_at_node"],
         "node_down_ok": e["node_down"]["succeeded"],
         "node_back_ok": e["node_back"]["succeeded"]},
    )


class ServiceRoute(OutsideClaim):
    name = "out-service-route"
    statement = ("service rules match on destination only: a gateway route sending the service "
                 "range to one node makes the service reachable from outside, through that one "
                 "node, and gone when it fails")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            svc = c.services.service(CLUSTER_SVC)
            vip, node = str(svc.cluster_ip), "node-1"
            cidr = str(c.spec.service_cidr)
            before, _ = fetch(c, vip, SERVICE_PORT, "route-before", 4)
            node_ip = str(c.node_plan(node).underlay_ip.ip)
            route = ["ip", "route", "add", cidr, "via", node_ip]
            res = c.exec_node(ROUTER, route)
            if not res.ok:
                raise RuntimeError(f"router: {' '.join(route)}: {res.stderr.strip()}")
            try:
                cap = Capture(c, node, underlay_intf(node), "route-node-1")
                try:
                    with_route, raw = fetch(c, vip, SERVICE_PORT, "route", 20)
                finally:
                    text = cap.stop()
                c.set_uplink(node, False)
                try:
                    down, _ = fetch(c, vip, SERVICE_PORT, "route-down", 4)
                finally:
                    c.set_uplink(node, True)
                back = retry(lambda: fetch(c, vip, SERVICE_PORT, "route-back", 4)[0],
                             lambda conns: bool(conns) and all(x.ok for x in conns),
                             timeout_s=5)
            finally:
                c.exec_node(ROUTER, ["ip", "route", "del", cidr, "via", node_ip])
            logs = served(c, "route", WEB)
            e = {"vip": vip, "client": c.endpoint_ip(CLIENT), "service_cidr": cidr,
                 "node": node, "node_addresses": node_addresses(c)[node],
                 "before": summary(before), "with_route": summary(with_route),
                 "node_down": summary(down), "node_back": summary(back),
                 "sources": {p: sorted(v.values()) for p, v in logs.items()},
                 "syns_at_node": _syns(text, vip, SERVICE_PORT),
                 "capture_dropped": cap.dropped}
            keep_capture(ctx, ServiceRoute.name, node, cap, text)
            ctx.raw(f"{ServiceRoute.name}/client.jsonl", raw)
        keep_evidence(ctx, ServiceRoute.name, e)
        yield Verdict(judge_route(e))


# -- 2. a node's address on the service port ---------------------------------------------------


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


# -- 3. a node port on every node ----------------------------------------------------------


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


def _path_rows(e: Mapping[str, Any], via_lb: str = "") -> list[tuple[str, list[str]]]:
    """The distinct paths the evidence shows: (label, hops)."""
    rows = []
    pod_node = e["pod_nodes"]
    for entry, v in e["entries"].items():
        for pod, k in v["served"].items():
            if not k:
                continue
            hops = [f"{CLIENT}\n{e['client']}", ROUTER]
            if via_lb:
                hops += [f"{LB_HOST}\n{via_lb}", ROUTER]
            hops.append(f"{entry}\n:{e['node_port']}")
            if pod_node[pod] != entry:
                hops += [ROUTER, pod_node[pod]]
            hops.append(f"{pod}\n:8080")
            extra = ", one more hop" if pod_node[pod] != entry else ""
            rows.append((f"{k} connection(s) via {entry}{extra}", hops))
    return rows


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


# -- 4. the load balancer ---------------------------------------------------------------------


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


# -- 5. a node fails under load ----------------------------------------------------------------

SAMPLE_S = 0.1


def detection_bound_s() -> float:
    """How long the load balancer may take to stop using a dead node: up to an interval
    until its next check, then FALL checks that each time out and wait an interval
    before the next (HAProxy schedules a check `inter` after the last one ended), and
    the sampling of its state."""
    return (haproxy.CHECK_INTERVAL_S + haproxy.CHECK_FALL * (
        haproxy.CONNECT_TIMEOUT_S + haproxy.CHECK_INTERVAL_S) + SAMPLE_S)


def judge_node_down(e: Mapping[str, Any]) -> ClaimResult:
    conns, node = e["connections"], e["node"]
    t_down, t_out = e["down_at"], e["marked_down_at"]
    before = [x for x in conns if x["t"] + x["ms"] / 1000 < t_down]
    if len(before) < 5 or len(conns) - len(before) < 20:
        return error(LbNodeDown.name, f"too few connections around the failure "
                     f"({len(before)} before, {len(conns) - len(before)} after)")
    if t_out is None:
        return judge(LbNodeDown.name, {f"the load balancer took {node} out": False},
                     f"{node} went off the network; HAProxy never marked it DOWN")
    grace = haproxy.CONNECT_TIMEOUT_S + 0.5  # a connection sent just before the mark
    lost = [x for x in conns if not x["ok"] and x["t"] >= t_down - 0.5]
    late = [x for x in conns if not x["ok"] and x["t"] > t_out + grace]
    took = t_out - t_down
    return judge(
        LbNodeDown.name,
        {"every connection answered before the failure": all(x["ok"] for x in before),
         f"{node} taken out within the checks' bound ({detection_bound_s():g} s)":
             0 <= took <= detection_bound_s(),
         "no connection lost once it was out": not late,
         f"nothing sent to {node} once it was out": e["sent_after_mark"] == 0,
         f"{node} back in once it returned": e["back_up"]},
        f"{node} off the network at t={t_down - e['t0']:.2f} s; HAProxy marked it DOWN "
        f"{took:.2f} s later (checks every {haproxy.CHECK_INTERVAL_S:g} s, {haproxy.CHECK_FALL}"
        f" failures); {len(lost)} connection(s) lost in between, {len(late)} after; "
        f"{e['sent_after_mark']} sent to {node} after the mark; {len(before)} before the "
        f"failure all answered; {node} {'UP' if e['back_up'] else 'not UP'} again after it "
        "returned",
        {"detection_s": round(took, 3), "lost": len(lost), "lost_after_mark": len(late),
         "connections": len(conns)},
    )


class LbNodeDown(OutsideClaim):
    name = "out-lb-node-down"
    statement = ("when a node fails, the load balancer stops sending to it within its health "
                 "checks' interval; connections sent in between are lost")

    def steps(self, ctx: Context) -> int:
        return 2

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            svc = c.services.service(LOCAL_SVC)
            backend = haproxy.backends([svc])[0].name
            node = c.pod(WEB[1]).node
            samples: list[dict[str, Any]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(SAMPLE_S):
                    t = time.time()
                    for r in c.outside.stats():
                        if r.get("pxname") == backend:
                            samples.append({"t": t, "node": r["svname"],
                                            "status": r.get("status", ""),
                                            "stot": int(r.get("stot") or 0)})

            out = c.records.subdir("lb") / "client-node-down.jsonl"
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with open(out, "wb") as f:
                client = c.popen_node(CLIENT, probes.http_loop(
                    str(svc.load_balancer_ip), SERVICE_PORT, 140, 0.05, "down", 3.0), stdout=f)
            try:
                time.sleep(2.0)
                down_at = time.time()
                c.set_uplink(node, False)
                client.wait(timeout=120)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()
                c.set_uplink(node, True)
            up_at = time.time()
            back_up = c.outside.wait_checks()
            time.sleep(0.3)
            stop.set()
            sampler.join(timeout=5)
            raw = out.read_text(errors="replace")
            conns = [x.__dict__ for x in parse_client(raw)[1]]
            mine = [s for s in samples if s["node"] == node]
            marked = next((s for s in mine if s["t"] >= down_at
                           and not s["status"].startswith("UP")), None)
            end = [s for s in mine if s["t"] <= up_at]
            logs = served(c, "down", WEB)
            e = {"node": node, "backend": backend, "down_at": down_at, "up_at": up_at,
                 "t0": conns[0]["t"] if conns else down_at,
                 "marked_down_at": marked["t"] if marked else None,
                 "sent_after_mark": (end[-1]["stot"] - marked["stot"]) if marked and end
                 else 0, "back_up": back_up, "connections": conns,
                 "lanes": {str(seq): p for p, seqs in logs.items() for seq in seqs}}
            ctx.raw(f"{LbNodeDown.name}/client.jsonl", raw)
            ctx.raw(f"{LbNodeDown.name}/haproxy-samples.csv",
                    pd.DataFrame(samples).to_csv(index=False))
            ctx.raw(f"{LbNodeDown.name}/haproxy.log",
                    (c.outside.dir / "haproxy.log").read_text(errors="replace"))
        keep_evidence(ctx, LbNodeDown.name, e)
        yield _down_timeline(e)
        yield Verdict(judge_node_down(e))


def _down_timeline(e: Mapping[str, Any]) -> Figure:
    conns, t0 = e["connections"], e["t0"]
    frame = pd.DataFrame({"t": [x["t"] - t0 for x in conns],
                          "lane": [e["lanes"].get(str(x["seq"]), "answered") if x["ok"]
                                   else "failed" for x in conns]})
    events = [(e["down_at"] - t0, f"{e['node']} off the network")]
    if e["marked_down_at"] is not None:
        events.append((e["marked_down_at"] - t0, f"load balancer: {e['node']} DOWN"))
    events.append((e["up_at"] - t0, f"{e['node']} back"))
    return Figure("out_lb_node_down.png", timeline_png(
        [(f"{LOCAL_SVC} through the load balancer", frame)], [events],
        "Connections through the load balancer while a node fails",
        ["failed", "answered", *WEB]))


# -- 6. externalTrafficPolicy ----------------------------------------------------------------


def judge_policy(e: Mapping[str, Any]) -> ClaimResult:
    cl, lo, client = e["cluster"], e["local"], e["client"]
    addrs = e["node_addresses"]
    with_pod = [n for n in lo if e["pods_on"][n]]
    without = [n for n in lo if not e["pods_on"][n]]
    if not with_pod or not without:
        return error(TrafficPolicy.name, "needs a node with a server pod and one without")
    if not all(v["connections"] for v in [*cl.values(), *lo.values()]):
        return error(TrafficPolicy.name, "no connection was made through a node port")
    node_ips = {ip for ips in addrs.values() for ip in ips}
    cluster_sources = [ip for v in cl.values() for ip in v["sources"]]
    local_sources = [ip for n in with_pod for ip in lo[n]["sources"]]
    return judge(
        TrafficPolicy.name,
        {"Cluster: every node answers, also without a server pod": all(
            v["failed"] == 0 for v in cl.values()),
         "Cluster: servers see a node's address, never the client's": bool(cluster_sources)
             and all(ip in node_ips and ip != client for ip in cluster_sources),
         "Local: nodes with a server pod answer": all(lo[n]["failed"] == 0 for n in with_pod),
         "Local: servers see the client's own address": bool(local_sources)
             and all(ip == client for ip in local_sources),
         "Local: a node without a server pod drops the traffic": all(
             lo[n]["succeeded"] == 0 for n in without),
         "the health-check node port answers 200 only where a server pod runs": all(
             (e["health"][n]["code"] == 200) == bool(e["pods_on"][n]) for n in lo),
         "the load balancer uses exactly the nodes that pass": sorted(e["lb_up"])
             == sorted(with_pod)},
        "Cluster: " + "; ".join(f"via {n} {v['succeeded']}/{v['connections']}, sources "
                                f"{sorted(set(v['sources']))}" for n, v in cl.items())
        + ". Local: " + "; ".join(f"via {n} {v['succeeded']}/{v['connections']}, sources "
                                  f"{sorted(set(v['sources']))}" for n, v in lo.items())
        + f". Client {client}. Health-check node port {e['health_port']}: " + ", ".join(
            f"{n} HTTP {h['code']} localEndpoints {h['local']}" for n, h in e["health"].items())
        + f"; load balancer sends to {sorted(e['lb_up'])}",
        {"cluster_ok": sum(v["succeeded"] for v in cl.values()),
         "local_ok": sum(v["succeeded"] for v in lo.values()),
         "local_dropped": sum(lo[n]["failed"] for n in without)},
    )


def _health(c: Cluster, node: str, port: int) -> dict[str, Any]:
    """The health-check node port's answer, asked from the load balancer's host."""
    res = c.exec_node(LB_HOST, ["curl", "-s", "-m", "2", "-w", "\n%{http_code}",
                                f"http://{c.endpoint_ip(node)}:{port}/healthz"])
    body, _, code = res.stdout.rpartition("\n")
    try:
        local = int(json.loads(body).get("localEndpoints", -1))
    except ValueError:
        local = -1
    return {"code": int(code) if code.strip().isdigit() else 0, "local": local, "body": body}


class TrafficPolicy(OutsideClaim):
    name = "out-traffic-policy"
    statement = ("externalTrafficPolicy Cluster: servers see a node's address and every node "
                 "forwards; Local: servers see the client's, nodes without a server pod drop, and "
                 "the health-check node port tells the load balancer which nodes to use")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            out: dict[str, dict[str, Any]] = {"cluster": {}, "local": {}}
            for policy, svc_name in (("cluster", CLUSTER_SVC), ("local", LOCAL_SVC)):
                node_port = c.services.service(svc_name).ports[0].node_port
                for n in c.plan.nodes:
                    tag = f"{policy}-{n.name}"
                    conns, _ = fetch(c, str(n.underlay_ip.ip), node_port, tag, 6)
                    logs = served(c, tag, WEB)
                    out[policy][n.name] = {**summary(conns), "sources": sorted(
                        ip for seqs in logs.values() for ip in seqs.values()),
                        "errors": sorted({x.error for x in conns if x.error})}
            local = c.services.service(LOCAL_SVC)
            port = local.health_check_node_port
            nodes = pod_nodes(c)
            backend = haproxy.backends([local])[0].name
            e = {**out, "client": c.endpoint_ip(CLIENT), "node_addresses": node_addresses(c),
                 "health_port": port,
                 "health": {n: _health(c, n, port) for n in c.node_names},
                 "pods_on": {n: [p for p in WEB if nodes[p] == n] for n in c.node_names},
                 "lb_up": sorted(c.outside.up_now()[backend])}
        keep_evidence(ctx, TrafficPolicy.name, e)
        yield Verdict(judge_policy(e))


# -- 7. ingress --------------------------------------------------------------------------------

# (host, path, where it should land: a pod's app, or "" for the default backend)
INGRESS_CASES = (("shop.example", "/cart", "cart"), ("shop.example", "/cart/items", "cart"),
                 ("shop.example", "/", "web"), ("shop.example", "/cartoon", "web"),
                 ("other.example", "/cart", ""))


def judge_ingress(e: Mapping[str, Any]) -> ClaimResult:
    cases = e["cases"]
    if not cases or not all(v["connections"] for v in cases):
        return error(Ingress.name, "no request reached the ingress controller")
    apps = {"cart": [CART], "web": list(WEB), "": []}

    def landed(v: Mapping[str, Any]) -> bool:
        pods = [p for p, k in v["served"].items() if k]
        if not v["expect"]:  # the default backend: nginx's own 404, no pod
            return not pods and v["statuses"] == [404] * v["connections"]
        return v["answered"] == v["connections"] and set(pods) <= set(apps[v["expect"]]) \
            and sum(v["served"].values()) == v["connections"]

    return judge(
        Ingress.name,
        {f"{v['via']} {v['host']}{v['path']} -> {v['expect'] or 'default backend'}": landed(v)
         for v in cases},
        "; ".join(f"{v['via']} Host {v['host']} {v['path']}: "
                  + (", ".join(f"{p} {k}" for p, k in v["served"].items() if k)
                     or f"no pod (HTTP {sorted(set(v['statuses']))})")
                  + f" [{', '.join(sorted(set(v['upstreams'])))}]" for v in cases),
        {"requests": sum(v["connections"] for v in cases)},
    )


def _upstreams(access_log: str, tag: str) -> list[str]:
    """The upstream nginx named for each request of probe `tag` (upstreaminfo format)."""
    out = []
    for line in access_log.splitlines():
        if f"probe={tag}-" in line:
            m = re.search(r" \[([^\]]*)\] \[[^\]]*\] ", line)
            out.append(m.group(1) if m else "?")
    return out


class Ingress(OutsideClaim):
    name = "out-ingress"
    statement = ("an Ingress is an HTTP proxy in the cluster, reached through a load balancer or "
                 "NodePort, that routes by host name and path to services")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            ctrl = c.services.service("ingress-nginx/ingress-nginx-controller")
            ctrl_node = c.pod("ingress-nginx").node
            vias = [("load balancer", str(ctrl.load_balancer_ip), SERVICE_PORT),
                    (f"node port of {ctrl_node}", c.endpoint_ip(ctrl_node),
                     ctrl.ports[0].node_port)]
            cases = []
            for i, (via, ip, port) in enumerate(vias):
                for j, (host, path, expect) in enumerate(INGRESS_CASES):
                    if i and j not in (0, 2):
                        continue  # through the node port: one case per service is enough
                    tag = f"ing{i}{j}"
                    conns, _ = fetch(c, ip, port, tag, 4, path, host)
                    logs = served(c, tag, (*WEB, CART))
                    access = (c.records.subdir("ingress") / "access.log").read_text(
                        errors="replace")
                    cases.append({"via": via, "host": host, "path": path, "expect": expect,
                                  "connections": len(conns),
                                  "answered": sum(x.ok for x in conns),
                                  "statuses": [x.status for x in conns],
                                  "served": {p: len(v) for p, v in logs.items()},
                                  "upstreams": _upstreams(access, tag)})
            ctx.raw(f"{Ingress.name}/nginx.conf",
                    (c.records.subdir("ingress") / "nginx.conf").read_text())
            ctx.raw(f"{Ingress.name}/access.log",
                    (c.records.subdir("ingress") / "access.log").read_text(errors="replace"))
            e = {"cases": cases}
        keep_evidence(ctx, Ingress.name, e)
        yield Verdict(judge_ingress(e))


# -- 8. hostPort ---------------------------------------------------------------------------------


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


OUTSIDE_CLAIMS = (ServiceRoute(), NodeIpRefused(), NodePortEveryNode(), LoadBalancer(),
                  LbNodeDown(), TrafficPolicy(), Ingress(), HostPort())
