"""Pins the verdicts of the third part (traffic from outside) other than out-service-route,
and the capture and log readers they use, so that mutation testing (`make mutate`) finds no
change that keeps them passing: each check is refuted by evidence where it alone fails (its
name in the verdict), thresholds are tried at the boundary and on both sides, and the
evidence text and numbers are pinned."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from experiments.catalogue.outside.common import _owner, _syns
from experiments.catalogue.outside.host_port import judge_hostport
from experiments.catalogue.outside.ingress import _upstreams, judge_ingress
from experiments.catalogue.outside.lb_node_down import SAMPLE_S, detection_bound_s, judge_node_down
from experiments.catalogue.outside.load_balancer import _stot, judge_lb
from experiments.catalogue.outside.node_ip_refused import judge_refused
from experiments.catalogue.outside.nodeport import judge_nodeport
from experiments.catalogue.outside.traffic_policy import judge_policy
from testbed.model.svc import haproxy
from tests.support.evidence import at, refuted_by

from .test_out_verdicts import hostport as _hostport

CLIENT = "198.51.100.10"
ADDRS = {"node-1": ["10.100.0.2", "10.0.0.1"], "node-2": ["10.100.0.3", "10.0.1.1"],
         "node-3": ["10.100.0.4", "10.0.2.1"]}



def s(ok: int, n: int) -> dict[str, int]:
    return {"connections": n, "succeeded": ok, "failed": n - ok}



# -- readers -------------------------------------------------------------------------------

def test_syns_counts_syns_to_that_address_and_port_only() -> None:
    capture = "\n".join([
        "06:00:00.1 IP 198.51.100.10.40000 > 10.3.246.230.80: Flags [S], seq 1, length 0",
        "06:00:00.2 IP 198.51.100.10.40001 > 10.3.246.230.80: Flags [S], seq 2, length 0",
        "06:00:00.3 IP 10.3.246.230.80 > 198.51.100.10.40000: Flags [S.], seq 3, length 0",
        "06:00:00.4 IP 198.51.100.10.40000 > 10.3.246.230.80: Flags [.], ack 1, length 0",
        "06:00:00.5 IP 198.51.100.10.40002 > 10.3.246.230.8080: Flags [S], seq 4, length 0",
        "06:00:00.6 IP 198.51.100.10.40003 > 10x3x246x230.80: Flags [S], seq 5, length 0",
        "06:00:00.7 IP 198.51.100.10.40004 > 10.3.246.231.80: Flags [S], seq 6, length 0"])
    assert _syns(capture, "10.3.246.230", 80) == 2
    assert _syns(capture, "10.3.246.230", 8080) == 1
    assert _syns("", "10.3.246.230", 80) == 0


def test_owner_of_an_address() -> None:
    assert _owner(ADDRS, "10.0.1.1") == "node-2"
    assert _owner(ADDRS, "10.100.0.4") == "node-3"
    assert _owner(ADDRS, "10.9.9.9") == ""


def test_stot_reads_one_backend_of_haproxys_stats() -> None:
    rows = [{"pxname": "svc", "svname": "node-1", "stot": "5"},
            {"pxname": "svc", "svname": "node-2", "stot": ""},
            {"pxname": "svc", "svname": "node-3"},
            {"pxname": "other", "svname": "node-4", "stot": "7"},
            {"svname": "node-5", "stot": "9"}]
    assert _stot(rows, "svc") == {"node-1": 5, "node-2": 0, "node-3": 0}


def test_upstreams_of_one_probe_and_a_line_without_them() -> None:
    log = ('203.0.113.10 - - [27/Nov/2026:06:29:54 +0000] "GET /cart?probe=ing00-1 '
           'HTTP/1.0" 404 22 "-" "-" 50 0.000 [default-cart-80] [] 10.3.254.106:80 22\n'
           '203.0.113.10 - - [27/Nov/2026:06:29:55 +0000] "GET /?probe=ing00-2 HTTP/1.0" 404\n'
           '203.0.113.10 - - [27/Nov/2026:06:29:56 +0000] "GET /?probe=ing01-1 HTTP/1.0" 200 '
           '0 "-" "-" 50 0.000 [default-web-80] [] 10.3.254.107:80 22\n')
    assert _upstreams(log, "ing00") == ["default-cart-80", "?"]
    assert _upstreams(log, "ing01") == ["default-web-80"]
    assert _upstreams(log, "ing0") == []


def test_detection_bound_is_one_interval_then_fall_timed_out_checks_then_sampling() -> None:
    h = haproxy
    assert detection_bound_s() == pytest.approx(
        h.CHECK_INTERVAL_S + h.CHECK_FALL * (h.CONNECT_TIMEOUT_S + h.CHECK_INTERVAL_S)
        + SAMPLE_S)
    assert SAMPLE_S == 0.1


# -- out-node-ip-refused -------------------------------------------------------------------

REFUSED_ERR = "ConnectionRefusedError: [Errno 111] Connection refused"
REFUSED = {"port": 80, "node_port": 30080, "nodes": {
    n: {"address": "x", "service_port": [REFUSED_ERR] * 3, "node_port": s(3, 3)}
    for n in ("node-1", "node-2")}}
REFUSES = "every node refuses its own address on the service port"
NODE_PORT = "every node answers on the node port"


def test_refused_confirmed_with_its_evidence() -> None:
    r = judge_refused(REFUSED)
    assert r.verdict == "confirmed"
    assert r.evidence == ("node-1: port 80 refused 3/3, node port 30080 3/3; node-2: port 80 "
                          "refused 3/3, node port 30080 3/3")
    assert dict(r.numbers) == {"refused": 6, "tried": 6}


@pytest.mark.parametrize("change, check", [
    (at("nodes/node-2/service_port/0", "timed out"), REFUSES),
    (at("nodes/node-2/node_port", s(2, 3)), NODE_PORT),
    (at("nodes/node-1/node_port", s(0, 0)), NODE_PORT),
])
def test_refused_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = copy.deepcopy(REFUSED)
    change(e)
    assert refuted_by(judge_refused(e), check)


@pytest.mark.parametrize("nodes", [{}, {"node-1": {"address": "x", "service_port": [],
                                                   "node_port": s(3, 3)}}])
def test_refused_without_a_try_is_an_error(nodes: dict) -> None:
    e = copy.deepcopy(REFUSED)
    e["nodes"].update(nodes) if nodes else e.update(nodes={})
    r = judge_refused(e)
    assert (r.verdict, r.evidence) == ("error",
                                       "no connection to a node's service port was tried")


# -- out-nodeport --------------------------------------------------------------------------

NODEPORT = {"node_port": 30080, "client": CLIENT, "forwarded_from_empty": 12,
            "pod_nodes": {"web-1": "node-1", "web-2": "node-2", "cart-1": "node-3"},
            "entries": {"node-1": {**s(12, 12), "served": {"web-1": 7, "web-2": 5}},
                        "node-2": {**s(12, 12), "served": {"web-1": 2, "web-2": 10}},
                        "node-3": {**s(12, 12), "served": {"web-1": 12, "web-2": 0}}}}
REACHES = "every node's node port reaches a server pod"
FORWARDS = "a node without a server pod forwards every connection to another node"
HOP = "the extra hop is on the underlay (entry node -> server pod)"


def test_nodeport_confirmed_with_its_evidence() -> None:
    r = judge_nodeport(NODEPORT)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "via node-1: 12/12, served by web-1 (node-1) 7, web-2 (node-2) 5; via node-2: 12/12, "
        "served by web-1 (node-1) 2, web-2 (node-2) 10; via node-3: 12/12, served by web-1 "
        "(node-1) 12; 12 SYNs from node-3 to the web pods on its uplink")
    assert dict(r.numbers) == {"connections": 36, "served_elsewhere": 19,
                               "forwarded_syns": 12}


@pytest.mark.parametrize("change, checks", [
    (at("entries/node-1/succeeded", 11), [REACHES]),
    (at("entries/node-2/served/web-2", 9), [REACHES]),
    # a pod on node-3 that is no web pod served one: node-3 stays "without a server pod"
    (at("entries/node-3/served", {"web-1": 11, "cart-1": 1}), [FORWARDS]),
    (at("forwarded_from_empty", 11), [HOP]),
])
def test_nodeport_each_check_refuted_alone(change: Callable[[dict], None],
                                           checks: list[str]) -> None:
    e = copy.deepcopy(NODEPORT)
    change(e)
    assert refuted_by(judge_nodeport(e), *checks)


def test_nodeport_names_every_node_without_a_server_pod() -> None:
    e = copy.deepcopy(NODEPORT)
    e["entries"]["node-4"] = {**s(12, 12), "served": {"web-1": 6, "web-2": 6}}
    e["forwarded_from_empty"] = 24
    r = judge_nodeport(e)
    assert r.verdict == "confirmed"
    assert r.evidence.endswith("; 24 SYNs from node-3, node-4 to the web pods on its uplink")


def test_nodeport_more_forwarded_syns_than_connections_pass() -> None:
    assert judge_nodeport({**NODEPORT, "forwarded_from_empty": 13}).verdict == "confirmed"


@pytest.mark.parametrize("change, reason", [
    (at("entries", {}), "no connection through a node port was made"),
    (at("entries/node-2", {**s(0, 0), "served": {}}),
     "no connection through a node port was made"),
    (lambda e: e["entries"].pop("node-3"), "every node runs a web pod: no extra hop to show"),
])
def test_nodeport_errors(change: Callable[[dict], None], reason: str) -> None:
    e = copy.deepcopy(NODEPORT)
    change(e)
    r = judge_nodeport(e)
    assert (r.verdict, r.evidence) == ("error", reason)


# -- out-load-balancer ---------------------------------------------------------------------

LB = {"address": "203.0.113.100", "node_port": 30080, "client": s(30, 30),
      "nodes": list(ADDRS), "per_node": {n: 10 for n in ADDRS},
      "states": {"node-1": "UP", "node-2": "UP 1/3", "node-3": "UP"}, "syns_to_node_port": 30}
ANSWER = "every connection through the load balancer answered"
SPREAD = "connections spread over every node"
HEALTHY = "the load balancer checks every node and finds it healthy"
ENTERS = "the service has a node port, and traffic enters the nodes on it"


def test_lb_confirmed_with_its_evidence() -> None:
    r = judge_lb(LB)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "30/30 connections to 203.0.113.100:80; HAProxy sent node-1 10, node-2 10, node-3 10; "
        "checks: node-1 UP, node-2 UP 1/3, node-3 UP; 30 SYNs to node port 30080 on the "
        "nodes' uplinks")
    assert dict(r.numbers) == {"connections": 30, "to_node-1": 10, "to_node-2": 10,
                               "to_node-3": 10}


@pytest.mark.parametrize("change, check", [
    (at("client", s(29, 30)), ANSWER),
    (at("per_node/node-3", 0), SPREAD),
    (at("per_node", {"node-1": 15, "node-2": 15}), SPREAD),
    (at("per_node/node-4", 1), SPREAD),
    (at("states/node-2", "DOWN"), HEALTHY),
    (at("states", {"node-1": "UP", "node-2": "UP"}), HEALTHY),
    (at("node_port", 0), ENTERS),
    (at("syns_to_node_port", 29), ENTERS),
])
def test_lb_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = copy.deepcopy(LB)
    change(e)
    assert refuted_by(judge_lb(e), check)


def test_lb_one_connection_to_a_node_is_spread_enough() -> None:
    assert judge_lb({**LB, "per_node": {**LB["per_node"], "node-3": 1}}).verdict \
        == "confirmed"


def test_lb_with_no_node_to_spread_over_is_not_spread() -> None:
    r = judge_lb({**LB, "nodes": [], "per_node": {}, "states": {}})
    assert refuted_by(r, SPREAD)


def test_lb_without_a_connection_is_an_error() -> None:
    r = judge_lb({**LB, "client": s(0, 0)})
    assert (r.verdict, r.evidence) == ("error",
                                       "no connection through the load balancer was made")


# -- out-lb-node-down ----------------------------------------------------------------------

def node_down(n_before: int = 40, n_after: int = 40) -> dict[str, Any]:
    """n_before answered connections, 6 around the failure at t=2 (half lost), n_after
    answered ones from t=6; HAProxy marks the node DOWN at t=5."""
    conns = [{"seq": i, "t": 0.05 * i, "ok": True, "ms": 2.0} for i in range(n_before)]
    conns += [{"seq": 100 + i, "t": 2.0 + 0.3 * i, "ok": i % 2 == 0, "ms": 1000.0}
              for i in range(6)]
    conns += [{"seq": 200 + i, "t": 6.0 + 0.05 * i, "ok": True, "ms": 2.0}
              for i in range(n_after)]
    return {"node": "node-2", "backend": "b", "t0": 0.0, "down_at": 2.0,
            "marked_down_at": 5.0, "up_at": 9.0, "sent_after_mark": 0,
            "back_up": True, "connections": conns, "lanes": {}}


BOUND = f"node-2 taken out within the checks' bound ({detection_bound_s():g} s)"


def test_node_down_confirmed_with_its_evidence() -> None:
    r = judge_node_down(node_down())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "node-2 off the network at t=2.00 s; HAProxy marked it DOWN 3.00 s later (checks "
        "every 1 s, 2 failures); 3 connection(s) lost in between, 0 after; 0 sent to node-2 "
        "after the mark; 40 before the failure all answered; node-2 UP again after it "
        "returned")
    assert dict(r.numbers) == {"detection_s": 3.0, "lost": 3, "lost_after_mark": 0,
                               "connections": 86}


def lose(t: float) -> Callable[[dict], None]:
    def change(e: dict) -> None:
        e["connections"].append({"seq": 999, "t": t, "ok": False, "ms": 1000.0})
    return change


LATE = "no connection lost once it was out"


@pytest.mark.parametrize("change, checks", [
    (at("connections/3/ok", False), ["every connection answered before the failure"]),
    (at("marked_down_at", 2.0 + 5.2), [BOUND]),
    # marked before it failed: the losses after the failure are then after the mark too
    (at("marked_down_at", 1.9), [BOUND, LATE]),
    (lose(5.0 + haproxy.CONNECT_TIMEOUT_S + 0.5 + 0.01), [LATE]),
    (at("sent_after_mark", 1), ["nothing sent to node-2 once it was out"]),
    (at("back_up", False), ["node-2 back in once it returned"]),
])
def test_node_down_each_check_refuted_alone(change: Callable[[dict], None], checks: list[str]
                                            ) -> None:
    e = node_down()
    change(e)
    assert refuted_by(judge_node_down(e), *checks)


@pytest.mark.parametrize("marked", [2.0, 2.0 + detection_bound_s()])
def test_node_down_taken_out_at_once_or_at_the_bound_passes(marked: float) -> None:
    r = judge_node_down({**node_down(), "marked_down_at": marked})
    assert r.verdict == "confirmed"


def test_node_down_a_loss_within_the_grace_after_the_mark_passes_and_counts() -> None:
    e = node_down()
    lose(5.0 + haproxy.CONNECT_TIMEOUT_S + 0.5)(e)  # just sent as it was marked
    lose(1.5)(e)  # half a second before the failure: counted as lost to it
    r = judge_node_down(e)
    assert r.verdict == "confirmed"
    assert (r.numbers["lost"], r.numbers["lost_after_mark"]) == (5, 0)


def test_node_down_a_connection_under_way_at_the_failure_is_not_before_it() -> None:
    e = node_down()
    e["connections"].append({"seq": 998, "t": 1.99, "ok": False, "ms": 20.0})
    r = judge_node_down(e)
    assert r.verdict == "confirmed" and "40 before the failure" in r.evidence


def test_node_down_a_connection_ending_at_the_failure_is_not_before_it() -> None:
    e = node_down()
    e["connections"].append({"seq": 997, "t": 1.5, "ok": False, "ms": 500.0})  # ends at 2.0
    r = judge_node_down(e)
    assert r.verdict == "confirmed" and r.numbers["lost"] == 4


def test_node_down_a_failure_a_second_before_is_not_lost_to_it() -> None:
    e = node_down()
    e["connections"].append({"seq": 996, "t": 1.0, "ok": False, "ms": 1500.0})
    r = judge_node_down(e)
    assert r.verdict == "confirmed" and r.numbers["lost"] == 3


def test_node_down_times_relative_to_the_start_and_detection_to_the_millisecond() -> None:
    e = node_down()
    e["t0"] = 1.0
    e["marked_down_at"] = 5.12345
    e["back_up"] = False
    r = judge_node_down(e)
    assert r.evidence.startswith("node-2 off the network at t=1.00 s; HAProxy marked it "
                                 "DOWN 3.12 s later")
    assert "node-2 not UP again after it returned [failed: " in r.evidence
    assert r.numbers["detection_s"] == 3.123


def test_node_down_never_marked_is_refuted() -> None:
    r = judge_node_down({**node_down(), "marked_down_at": None})
    assert (r.verdict, r.evidence) == (
        "refuted", "node-2 went off the network; HAProxy never marked it DOWN [failed: the "
        "load balancer took node-2 out]")


@pytest.mark.parametrize("sizes, verdict", [((5, 14), "confirmed"), ((4, 14), "error"),
                                            ((5, 13), "error")])
def test_node_down_needs_five_before_and_twenty_after(sizes: tuple[int, int], verdict: str
                                                      ) -> None:
    r = judge_node_down(node_down(*sizes))  # 6 around the failure + n_after
    assert r.verdict == verdict
    if verdict == "error":
        b, a = sizes[0], sizes[1] + 6
        assert r.evidence == (f"too few connections around the failure ({b} before, {a} "
                              "after)")


# -- out-traffic-policy --------------------------------------------------------------------

def policy() -> dict[str, Any]:
    return {
        "client": CLIENT, "node_addresses": ADDRS, "health_port": 31617,
        "cluster": {"node-1": {**s(6, 6), "sources": ["10.0.0.1", "10.100.0.2"]},
                    "node-2": {**s(6, 6), "sources": ["10.0.1.1"]},
                    "node-3": {**s(6, 6), "sources": ["10.100.0.4"]}},
        "local": {"node-1": {**s(6, 6), "sources": [CLIENT]},
                  "node-2": {**s(6, 6), "sources": [CLIENT]},
                  "node-3": {**s(0, 6), "sources": ["10.9.9.9"]}},
        "health": {"node-1": {"code": 200, "local": 1}, "node-2": {"code": 200, "local": 1},
                   "node-3": {"code": 503, "local": 0}},
        "pods_on": {"node-1": ["web-1"], "node-2": ["web-2"], "node-3": []},
        "lb_up": ["node-2", "node-1"]}


C_ANSWER = "Cluster: every node answers, also without a server pod"
C_SOURCES = "Cluster: servers see a node's address, never the client's"
L_ANSWER = "Local: nodes with a server pod answer"
L_SOURCES = "Local: servers see the client's own address"
L_DROP = "Local: a node without a server pod drops the traffic"
HEALTH = "the health-check node port answers 200 only where a server pod runs"
LB_UP = "the load balancer uses exactly the nodes that pass"


def test_policy_confirmed_with_its_evidence() -> None:
    r = judge_policy(policy())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "Cluster: via node-1 6/6, sources ['10.0.0.1', '10.100.0.2']; via node-2 6/6, "
        "sources ['10.0.1.1']; via node-3 6/6, sources ['10.100.0.4']. Local: via node-1 "
        "6/6, sources ['198.51.100.10']; via node-2 6/6, sources ['198.51.100.10']; via "
        "node-3 0/6, sources ['10.9.9.9']. Client 198.51.100.10. Health-check node port "
        "31617: node-1 HTTP 200 localEndpoints 1, node-2 HTTP 200 localEndpoints 1, node-3 "
        "HTTP 503 localEndpoints 0; load balancer sends to ['node-1', 'node-2']")
    assert dict(r.numbers) == {"cluster_ok": 18, "local_ok": 12, "local_dropped": 6}


@pytest.mark.parametrize("change, check", [
    (at("cluster/node-3", {**s(5, 6), "sources": ["10.100.0.4"]}), C_ANSWER),
    (at("cluster/node-2/sources", [CLIENT]), C_SOURCES),
    (at("cluster/node-2/sources", ["10.9.9.9"]), C_SOURCES),
    (lambda e: [v.update(sources=[]) for v in e["cluster"].values()], C_SOURCES),
    (at("local/node-1", {**s(5, 6), "sources": [CLIENT]}), L_ANSWER),
    (at("local/node-2/sources", ["10.0.1.1"]), L_SOURCES),
    (lambda e: [e["local"][n].update(sources=[]) for n in ("node-1", "node-2")], L_SOURCES),
    (at("local/node-3", {**s(1, 6), "sources": []}), L_DROP),
    (at("health/node-3/code", 200), HEALTH),
    (at("health/node-1/code", 503), HEALTH),
    (at("lb_up", ["node-1"]), LB_UP),
    (at("lb_up", ["node-1", "node-2", "node-3"]), LB_UP),
])
def test_policy_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = policy()
    change(e)
    assert refuted_by(judge_policy(e), check)


@pytest.mark.parametrize("change, reason", [
    (at("pods_on/node-3", ["web-3"]), "needs a node with a server pod and one without"),
    (at("pods_on", {"node-1": [], "node-2": [], "node-3": []}),
     "needs a node with a server pod and one without"),
    (at("cluster/node-2", {**s(0, 0), "sources": []}),
     "no connection was made through a node port"),
    (at("local/node-3", {**s(0, 0), "sources": []}),
     "no connection was made through a node port"),
])
def test_policy_errors(change: Callable[[dict], None], reason: str) -> None:
    e = policy()
    change(e)
    r = judge_policy(e)
    assert (r.verdict, r.evidence) == ("error", reason)


# -- out-ingress ---------------------------------------------------------------------------

def case(host: str, path: str, expect: str, served: dict[str, int], statuses: list[int]
         ) -> dict[str, Any]:
    return {"via": "load balancer", "host": host, "path": path, "expect": expect,
            "connections": 4, "answered": 4, "statuses": statuses,
            "served": {"web-1": 0, "web-2": 0, "cart-1": 0, **served},
            "upstreams": ["default-x-80"]}


def ingress() -> dict[str, Any]:
    return {"cases": [case("shop.example", "/cart", "cart", {"cart-1": 4}, [200] * 4),
                      case("shop.example", "/", "web", {"web-1": 2, "web-2": 2}, [200] * 4),
                      case("other.example", "/cart", "", {}, [404] * 4)]}


CART = "load balancer shop.example/cart -> cart"
WEB = "load balancer shop.example/ -> web"
DEFAULT = "load balancer other.example/cart -> default backend"


def test_ingress_confirmed_with_its_evidence() -> None:
    r = judge_ingress(ingress())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "load balancer Host shop.example /cart: cart-1 4 [default-x-80]; load balancer Host "
        "shop.example /: web-1 2, web-2 2 [default-x-80]; load balancer Host other.example "
        "/cart: no pod (HTTP [404]) [default-x-80]")
    assert dict(r.numbers) == {"requests": 12}


@pytest.mark.parametrize("change, check", [
    (at("cases/0/served", {"web-1": 4, "cart-1": 0}), CART),
    (at("cases/0/served", {"cart-1": 3}), CART),
    (at("cases/0/answered", 3), CART),
    (at("cases/1/served", {"web-1": 2, "web-2": 1, "cart-1": 1}), WEB),
    (at("cases/2/served", {"cart-1": 4}), DEFAULT),
    (at("cases/2/statuses", [404, 404, 404, 200]), DEFAULT),
    (at("cases/2/statuses", [404, 404, 404]), DEFAULT),
])
def test_ingress_each_case_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = ingress()
    change(e)
    assert refuted_by(judge_ingress(e), check)


def test_ingress_lists_each_upstream_nginx_named_once() -> None:
    e = ingress()
    e["cases"][1]["upstreams"] = ["default-web-80", "default-web-80", "default-cart-80"]
    assert "web-1 2, web-2 2 [default-cart-80, default-web-80];" in judge_ingress(e).evidence


@pytest.mark.parametrize("cases", [[], [{**case("a", "/", "web", {"web-1": 4}, [200] * 4),
                                         "connections": 0}]])
def test_ingress_without_a_request_is_an_error(cases: list) -> None:
    r = judge_ingress({"cases": cases})
    assert (r.verdict, r.evidence) == ("error", "no request reached the ingress controller")


# -- out-host-port -------------------------------------------------------------------------

def hostport() -> dict[str, Any]:
    """test_out_verdicts' evidence, plus a flow on another port the verdict must ignore."""
    e = _hostport()
    e["flows"] = [*e["flows"], {"orig_dport": 80, "reply_src": "10.0.9.9"}]
    return e


H_ANSWERS = "node-3 (the pod's node) answers on 8088"
H_REFUSE = "every other node refuses it"
H_CLIENT = "the pod sees the client's own address (no proxy, no SNAT)"
H_PORTMAP = "the DNAT is portmap's, in node-3's nat table"
H_KUBE = "no kube-proxy rule names the port"
H_CONNTRACK = "conntrack: the node's port rewritten to the pod"


def test_hostport_confirmed_with_its_evidence() -> None:
    r = judge_hostport(hostport())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "node-1: 0/4 answered, 4 refused; node-2: 0/4 answered, 4 refused; node-3: 4/4 "
        "answered, 0 refused; hostport logged ['198.51.100.10'] (client 198.51.100.10); "
        "portmap rule: -A CNI-DN-x -p tcp -m tcp --dport 8088 -j DNAT --to-destination "
        "10.0.2.3:8080; 4 conntrack entries to :8088 answered by 10.0.2.3")
    assert dict(r.numbers) == {"answered": 4, "refused_elsewhere": 8}


@pytest.mark.parametrize("change, check", [
    (at("nodes/node-3", {**s(3, 4), "refused": 1}), H_ANSWERS),
    (at("nodes/node-1/refused", 3), H_REFUSE),
    (at("nodes/node-1", {**s(0, 0), "refused": 0}), H_REFUSE),
    (at("sources", [CLIENT, "10.0.2.1"]), H_CLIENT),
    (at("sources", []), H_CLIENT),
    (at("portmap_dnat", []), H_PORTMAP),
    (at("kube_rules", ["-A KUBE-SERVICES --dport 8088"]), H_KUBE),
    (at("flows/1", {"orig_dport": 8088, "reply_src": "10.0.2.1"}), H_CONNTRACK),
    (at("flows", [{"orig_dport": 80, "reply_src": "10.0.2.3"}]), H_CONNTRACK),
])
def test_hostport_each_check_refuted_alone(change: Callable[[dict], None], check: str
                                           ) -> None:
    e = hostport()
    change(e)
    r = judge_hostport(e)
    assert refuted_by(r, check)


def test_hostport_one_refused_connection_on_another_node_is_enough() -> None:
    e = hostport()
    e["nodes"]["node-1"] = {**s(0, 1), "refused": 1}
    assert judge_hostport(e).verdict == "confirmed"


def test_hostport_without_a_portmap_rule_says_none() -> None:
    r = judge_hostport({**hostport(), "portmap_dnat": []})
    assert "; portmap rule: none; " in r.evidence


@pytest.mark.parametrize("change, reason", [
    (at("pod_node", "node-9"), "no connection to the pod's node was made"),
    (at("nodes/node-3", {**s(0, 0), "refused": 0}), "no connection to the pod's node was made"),
    (lambda e: e.update(nodes={"node-3": e["nodes"]["node-3"]}),
     "one node: no other node to compare with"),
])
def test_hostport_errors(change: Callable[[dict], None], reason: str) -> None:
    e = hostport()
    change(e)
    r = judge_hostport(e)
    assert (r.verdict, r.evidence) == ("error", reason)
