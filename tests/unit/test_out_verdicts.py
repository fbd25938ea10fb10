"""The third part's verdicts as pure functions of their evidence: each confirms on
evidence shaped like a real run's, is refuted when one fact is turned around, and gives
`error` when there is nothing to judge."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments.catalogue.outside.common import _path_rows
from experiments.catalogue.outside.host_port import judge_hostport
from experiments.catalogue.outside.ingress import _upstreams, judge_ingress
from experiments.catalogue.outside.lb_node_down import detection_bound_s, judge_node_down
from experiments.catalogue.outside.load_balancer import judge_lb
from experiments.catalogue.outside.node_ip_refused import judge_refused
from experiments.catalogue.outside.nodeport import judge_nodeport
from experiments.catalogue.outside.service_route import judge_route
from experiments.catalogue.outside.traffic_policy import judge_policy

CLIENT = "198.51.100.10"
ADDRS = {"node-1": ["10.100.0.2", "10.0.0.1"], "node-2": ["10.100.0.3", "10.0.1.1"],
         "node-3": ["10.100.0.4", "10.0.2.1"]}


def s(ok: int, n: int) -> dict[str, int]:
    return {"connections": n, "succeeded": ok, "failed": n - ok}


def policy() -> dict[str, Any]:
    return {
        "client": CLIENT, "node_addresses": ADDRS, "health_port": 31617,
        "cluster": {"node-1": {**s(6, 6), "sources": ["10.0.0.1", "10.100.0.2"]},
                    "node-2": {**s(6, 6), "sources": ["10.0.1.1"]},
                    "node-3": {**s(6, 6), "sources": ["10.100.0.4"]}},
        "local": {"node-1": {**s(6, 6), "sources": [CLIENT]},
                  "node-2": {**s(6, 6), "sources": [CLIENT]},
                  "node-3": {**s(0, 6), "sources": []}},
        "health": {"node-1": {"code": 200, "local": 1}, "node-2": {"code": 200, "local": 1},
                   "node-3": {"code": 503, "local": 0}},
        "pods_on": {"node-1": ["web-1"], "node-2": ["web-2"], "node-3": []},
        "lb_up": ["node-1", "node-2"]}


def test_policy_confirmed_refuted_error() -> None:
    assert judge_policy(policy()).verdict == "confirmed"
    e = policy()
    e["cluster"]["node-1"]["sources"] = [CLIENT]  # no source NAT with Cluster
    r = judge_policy(e)
    assert r.verdict == "refuted" and "never the client's" in r.evidence
    e = policy()
    e["local"]["node-3"] = {**s(6, 6), "sources": [CLIENT]}  # Local did not drop
    assert judge_policy(e).verdict == "refuted"
    e = policy()
    e["lb_up"] = ["node-1", "node-2", "node-3"]
    assert judge_policy(e).verdict == "refuted"
    e = policy()
    e["pods_on"]["node-3"] = ["web-3"]  # no node without a pod: nothing to show
    assert judge_policy(e).verdict == "error"


def node_down() -> dict[str, Any]:
    t0 = 1000.0
    conns = [{"seq": i, "t": t0 + 0.05 * i, "ok": True, "ms": 2.0} for i in range(40)]
    conns += [{"seq": 40 + i, "t": t0 + 2.0 + 0.3 * i, "ok": i % 2 == 0, "ms": 1000.0}
              for i in range(6)]
    conns += [{"seq": 46 + i, "t": t0 + 6.0 + 0.05 * i, "ok": True, "ms": 2.0}
              for i in range(40)]
    return {"node": "node-2", "backend": "b", "t0": t0, "down_at": t0 + 2.0,
            "marked_down_at": t0 + 5.0, "up_at": t0 + 9.0, "sent_after_mark": 0,
            "back_up": True, "connections": conns, "lanes": {}}


def test_node_down_confirmed_refuted_error() -> None:
    r = judge_node_down(node_down())
    assert r.verdict == "confirmed" and r.numbers["lost"] == 3
    e = node_down()
    e["marked_down_at"] = e["down_at"] + detection_bound_s() + 1  # too slow
    assert judge_node_down(e).verdict == "refuted"
    e = node_down()
    e["connections"][-1]["ok"] = False  # a loss long after the mark
    assert judge_node_down(e).verdict == "refuted"
    e = node_down()
    e["sent_after_mark"] = 3
    assert judge_node_down(e).verdict == "refuted"
    e = node_down()
    e["marked_down_at"] = None
    assert judge_node_down(e).verdict == "refuted"
    e = node_down()
    e["connections"] = e["connections"][:10]
    assert judge_node_down(e).verdict == "error"


def route() -> dict[str, Any]:
    return {"vip": "10.3.246.230", "client": CLIENT, "service_cidr": "10.3.240.0/20",
            "node": "node-1", "node_addresses": ADDRS["node-1"], "before": s(0, 4),
            "with_route": s(20, 20), "node_down": s(0, 4), "node_back": s(4, 4),
            "sources": {"web-1": ["10.0.0.1"] * 11, "web-2": ["10.100.0.2"] * 9},
            "syns_at_node": 20}


def test_route_confirmed_refuted_error() -> None:
    assert judge_route(route()).verdict == "confirmed"
    e = route()
    e["node_down"] = s(4, 4)  # still reachable with the node gone: not through it
    assert judge_route(e).verdict == "refuted"
    e = route()
    e["sources"]["web-2"] = ["10.100.0.3"]  # reached from another node
    assert judge_route(e).verdict == "refuted"
    e = route()
    e["with_route"] = s(0, 0)
    assert judge_route(e).verdict == "error"


@pytest.mark.parametrize("phase", ["before", "with_route", "node_down", "node_back"])
def test_route_every_phase_must_have_connections(phase: str) -> None:
    """0 of 0 before the route and 0 of 0 with the node down once confirmed."""
    e = route()
    e[phase] = s(0, 0)
    result = judge_route(e)
    assert result.verdict == "error" and phase in result.evidence


def hostport() -> dict[str, Any]:
    return {"pod": "hostport", "pod_node": "node-3", "pod_ip": "10.0.2.3", "host_port": 8088,
            "client": CLIENT,
            "nodes": {"node-1": {**s(0, 4), "refused": 4}, "node-2": {**s(0, 4), "refused": 4},
                      "node-3": {**s(4, 4), "refused": 0}},
            "sources": [CLIENT] * 4,
            "portmap_dnat": ["-A CNI-DN-x -p tcp -m tcp --dport 8088 -j DNAT "
                             "--to-destination 10.0.2.3:8080"],
            "kube_rules": [],
            "flows": [{"orig_dport": 8088, "reply_src": "10.0.2.3"}] * 4}


def test_hostport_confirmed_refuted_error() -> None:
    assert judge_hostport(hostport()).verdict == "confirmed"
    e = hostport()
    e["sources"] = ["10.0.2.1"] * 4  # the pod saw the node: a proxy or SNAT was there
    assert judge_hostport(e).verdict == "refuted"
    e = hostport()
    e["nodes"]["node-1"] = {**s(4, 4), "refused": 0}  # open on another node
    assert judge_hostport(e).verdict == "refuted"
    e = hostport()
    e["nodes"] = {"node-3": e["nodes"]["node-3"]}
    assert judge_hostport(e).verdict == "error"


def ingress() -> dict[str, Any]:
    def case(host: str, path: str, expect: str, served: dict[str, int],
             statuses: list[int]) -> dict[str, Any]:
        return {"via": "load balancer", "host": host, "path": path, "expect": expect,
                "connections": 4, "answered": 4, "statuses": statuses,
                "served": {"web-1": 0, "web-2": 0, "cart-1": 0, **served}, "upstreams": []}
    return {"cases": [case("shop.example", "/cart", "cart", {"cart-1": 4}, [404] * 4),
                      case("shop.example", "/", "web", {"web-1": 2, "web-2": 2}, [200] * 4),
                      case("other.example", "/cart", "", {}, [404] * 4)]}


def test_ingress_confirmed_refuted_error() -> None:
    assert judge_ingress(ingress()).verdict == "confirmed"
    e = ingress()
    e["cases"][0]["served"] = {"web-1": 4, "web-2": 0, "cart-1": 0}  # path ignored
    assert judge_ingress(e).verdict == "refuted"
    e = ingress()
    e["cases"][2]["served"]["cart-1"] = 4  # host ignored
    assert judge_ingress(e).verdict == "refuted"
    e = copy.deepcopy(ingress())
    e["cases"] = []
    assert judge_ingress(e).verdict == "error"


def test_upstreams_read_from_the_upstreaminfo_log() -> None:
    line = ('203.0.113.10 - - [27/Nov/2026:06:29:54 +0000] "GET /cart?probe=ing00-1 '
            'HTTP/1.0" 404 22 "-" "-" 50 0.000 [default-cart-80] [] 10.3.254.106:80 22 '
            '0.001 404 abc')
    assert _upstreams(line, "ing00") == ["default-cart-80"]
    assert _upstreams(line, "ing01") == []


def test_refused_lb_and_nodeport_verdicts() -> None:
    refused = {"port": 80, "node_port": 30080, "nodes": {
        n: {"address": "x", "service_port": ["ConnectionRefusedError: [Errno 111]"] * 3,
            "node_port": s(3, 3)} for n in ADDRS}}
    assert judge_refused(refused).verdict == "confirmed"
    refused["nodes"]["node-2"]["service_port"][0] = ""  # something answered on port 80
    assert judge_refused(refused).verdict == "refuted"
    assert judge_refused({"port": 80, "node_port": 1, "nodes": {}}).verdict == "error"

    lb = {"address": "203.0.113.100", "node_port": 30080, "client": s(30, 30),
          "nodes": list(ADDRS), "per_node": {n: 10 for n in ADDRS},
          "states": {n: "UP" for n in ADDRS}, "syns_to_node_port": 30}
    assert judge_lb(lb).verdict == "confirmed"
    assert judge_lb({**lb, "per_node": {**lb["per_node"], "node-3": 0}}).verdict \
        == "refuted"
    assert judge_lb({**lb, "syns_to_node_port": 0}).verdict == "refuted"
    assert judge_lb({**lb, "client": s(0, 0)}).verdict == "error"

    pods = {"web-1": "node-1", "web-2": "node-2"}
    entries = {"node-1": {**s(12, 12), "served": {"web-1": 7, "web-2": 5}},
               "node-2": {**s(12, 12), "served": {"web-1": 2, "web-2": 10}},
               "node-3": {**s(12, 12), "served": {"web-1": 5, "web-2": 7}}}
    np_e = {"node_port": 30080, "client": CLIENT, "entries": entries, "pod_nodes": pods,
            "forwarded_from_empty": 12}
    assert judge_nodeport(np_e).verdict == "confirmed"
    assert judge_nodeport({**np_e, "forwarded_from_empty": 0}).verdict == "refuted"
    broken = copy.deepcopy(np_e)
    broken["entries"]["node-3"] = {**s(0, 12), "served": {"web-1": 0, "web-2": 0}}
    assert judge_nodeport(broken).verdict == "refuted"
    assert judge_nodeport({**np_e, "pod_nodes": {"web-1": "node-1", "web-2": "node-3"},
                              "entries": {k: v for k, v in entries.items()
                                          if k != "node-2"}}).verdict == "error"
    rows = _path_rows(np_e, via_lb="203.0.113.100:80")
    assert any("one more hop" in label for label, _ in rows)
    assert all(hops[2].startswith("cloud-lb") for _, hops in rows)


def test_route_a_capture_that_dropped_packets_cannot_refute() -> None:
    """Seen once on a loaded machine: 19 SYNs for 20 connections. When tcpdump says the
    kernel dropped packets for it, a missing SYN is the capture's, not the route's."""
    e = {**route(), "syns_at_node": 19, "capture_dropped": 3}
    result = judge_route(e)
    assert result.verdict == "error" and "dropped 3 packet(s)" in result.evidence
    e["capture_dropped"] = 0  # nothing dropped: the SYN really did not cross
    assert judge_route(e).verdict == "refuted"
    e = {**route(), "capture_dropped": 3}  # every SYN seen all the same: judged
    assert judge_route(e).verdict == "confirmed"


def test_tcpdump_drops_are_read_from_its_closing_words() -> None:
    from experiments.framework.svc_common import dropped

    log = ("listening on node-1-eth0, link-type EN10MB (Ethernet), snapshot length 262144 "
           "bytes\n42 packets captured\n44 packets received by filter\n2 packets dropped by "
           "kernel\n")
    assert dropped(log) == 2
    assert dropped(log.replace("2 packets dropped", "1 packet dropped")) == 1
    assert dropped("listening on x\n") == 0
