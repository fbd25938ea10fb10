"""Pins the pod-network verdicts other than mode-host-gw-routes and mode-vxlan-mtu
(mode-kindnet-no-bridge, mode-calico-bgp, mode-calico-join) so that mutation testing
(`make mutate`) finds no change that keeps them passing: each check is refuted by evidence
where it alone fails (its name in the verdict), the timing bounds are tried at and on both
sides of their limits, and the evidence text and numbers are pinned."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from experiments.catalogue.modes.calico_bgp import judge_calico
from experiments.catalogue.modes.calico_join import _route_list, judge_join
from experiments.catalogue.modes.kindnet_no_bridge import judge_kindnet
from tests.support.evidence import at, refuted_by


def ping(src: str, dst: str, ok: bool, ttl: int) -> dict[str, Any]:
    return {"src": src, "dst": dst, "ok": ok, "ttl": ttl, "same_node": False}



# -- mode-kindnet-no-bridge ----------------------------------------------------------------

def kindnet() -> dict[str, Any]:
    return {"nodes": {"node-1": {"bridges": [], "bridge_ports": [],
                                 "host_routes": ["10.0.0.2", "10.0.0.3"],
                                 "pod_ips": ["10.0.0.3", "10.0.0.2"], "pods": ["a", "b"]},
                      "node-2": {"bridges": [], "bridge_ports": [], "host_routes": [],
                                 "pod_ips": [], "pods": []}},
            "pings": [ping("pod-1", "pod-3", True, 62), ping("pod-1", "pod-2", True, 63)]}


def test_kindnet_confirmed_with_its_evidence() -> None:
    r = judge_kindnet(kindnet())
    assert r.verdict == "confirmed"
    assert r.evidence == ("node-1: bridges none, 2 scope-host routes for 2 pods; node-2: "
                          "bridges none, 0 scope-host routes for 0 pods; pings 2/2 (TTL "
                          "[62, 63])")
    assert dict(r.numbers) == {"bridges": 0, "host_routes": 2}


ROUTE_PER_POD = "one scope-host route per pod, to its address"


@pytest.mark.parametrize("change, check", [
    (at("nodes/node-2/bridges", ["cni0"]), "no bridge on any node"),
    (at("nodes/node-2/bridge_ports", ["veth1"]), "no interface enslaved to a bridge"),
    (at("nodes/node-1/host_routes", ["10.0.0.2"]), ROUTE_PER_POD),
    (at("nodes/node-1/host_routes", ["10.0.0.2", "10.0.0.4"]), ROUTE_PER_POD),
    (at("nodes/node-2/host_routes", ["10.0.1.9"]), ROUTE_PER_POD),
    (at("pings/1/ok", False), "pods reach each other, across nodes too"),
])
def test_kindnet_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = kindnet()
    change(e)
    assert refuted_by(judge_kindnet(e), check)


def test_kindnet_numbers_count_bridges_and_routes() -> None:
    e = kindnet()
    at("nodes/node-2/bridges", ["cni0", "docker0"])(e)
    assert dict(judge_kindnet(e).numbers) == {"bridges": 2, "host_routes": 2}


@pytest.mark.parametrize("nodes", [{}, {"node-1": {"bridges": [], "bridge_ports": [],
                                                   "host_routes": [], "pod_ips": [],
                                                   "pods": []}}])
def test_kindnet_without_a_pod_is_an_error(nodes: dict) -> None:
    r = judge_kindnet({"nodes": nodes, "pings": []})
    assert (r.verdict, r.evidence) == ("error", "no pod to look at")


# -- mode-calico-bgp -----------------------------------------------------------------------

def calico() -> dict[str, Any]:
    return {"gateway_mac": "ee:ee:ee:ee:ee:ee", "proxy_arp": "1", "peer_ip": "10.100.0.3",
            "learnt": [{"dst": "10.0.0.64/26", "gateway": "10.100.0.3", "protocol": "bird"}],
            "blackhole": True, "sessions": ["Mesh_10_100_0_3 BGP --- up Established"],
            "converge_s": 2.1, "pings": [ping("pod-1", "pod-3", True, 62)],
            "blocks": ["10.0.0.0/26", "10.0.0.64/26"], "outside_ok": True,
            "router_learnt": [{"dst": "10.0.0.64/26", "gateway": "10.100.0.3",
                               "protocol": "bgp"},
                              {"dst": "10.0.0.0/26", "gateway": "10.100.0.2",
                               "protocol": "bgp"},
                              {"dst": "10.100.0.0/24", "gateway": "",
                               "protocol": "kernel"}]}


def test_calico_confirmed_with_its_evidence() -> None:
    r = judge_calico(calico())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "pod-1's neighbour 169.254.1.1: ee:ee:ee:ee:ee:ee (proxy_arp 1 on its host veth); "
        "node-1's learnt routes [('10.0.0.64/26', '10.100.0.3', 'bird')]; blackhole present; "
        "sessions ['Mesh_10_100_0_3 BGP --- up Established']; the mesh converged 2.10 s "
        "after the daemons started; the router's routes [('10.0.0.64/26', '10.100.0.3', "
        "'bgp'), ('10.0.0.0/26', '10.100.0.2', 'bgp'), ('10.100.0.0/24', '', 'kernel')]; a "
        "host outside reached pod-1; pings 1/1")
    assert dict(r.numbers) == {"converge_s": 2.1, "learnt_routes": 1}


PROXY_ARP = "the pod's gateway 169.254.1.1 is answered with ee:ee:ee:ee:ee:ee (proxy ARP)"
LEARNT = "the other node's block is learnt over BGP (proto bird, via that node)"
SESSIONS = "every BGP session is established"
ROUTER_LEARNT = "the router learnt every block over BGP (proto bgp, via its node)"
CONVERGED = "the mesh converged within the bring-up's wait"
BIRD_ROUTE = {"dst": "10.0.0.64/26", "gateway": "10.100.0.3", "protocol": "bird"}


@pytest.mark.parametrize("change, check", [
    (at("gateway_mac", "aa:bb:cc:dd:ee:ff"), PROXY_ARP),
    (at("proxy_arp", "0"), PROXY_ARP),
    (at("learnt/0/protocol", "static"), LEARNT),
    (at("learnt/0/gateway", "10.100.0.9"), LEARNT),
    (at("learnt", []), LEARNT),
    (at("learnt", [BIRD_ROUTE, {**BIRD_ROUTE, "protocol": "static"}]), LEARNT),
    (at("blackhole", False), "the local block is BIRD's blackhole"),
    (at("sessions", ["a BGP --- up Established", "b BGP --- start Connect"]), SESSIONS),
    (at("sessions", []), SESSIONS),
    (at("pings", [ping("pod-1", "pod-3", True, 62), ping("pod-2", "pod-4", False, 0)]),
     "pods reach each other across nodes"),
    (at("router_learnt", []), ROUTER_LEARNT),
    (at("router_learnt/1/protocol", "static"), ROUTER_LEARNT),
    (at("blocks", ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26"]), ROUTER_LEARNT),
    (at("outside_ok", False), "a host outside the cluster reaches a pod"),
    (at("converge_s", 0.0), CONVERGED),
    (at("converge_s", 60.0), CONVERGED),
])
def test_calico_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = calico()
    change(e)
    assert refuted_by(judge_calico(e), check)


@pytest.mark.parametrize("seconds", [0.01, 59.9])
def test_calico_converged_just_inside_the_bounds_passes(seconds: float) -> None:
    assert judge_calico({**calico(), "converge_s": seconds}).verdict == "confirmed"


def test_calico_convergence_to_the_millisecond() -> None:
    assert judge_calico({**calico(), "converge_s": 2.12345}).numbers["converge_s"] == 2.123


def test_calico_evidence_of_a_failed_look() -> None:
    r = judge_calico({**calico(), "gateway_mac": "", "blackhole": False,
                         "outside_ok": False})
    assert "169.254.1.1: none (proxy_arp" in r.evidence
    assert "; blackhole absent; " in r.evidence
    assert "a host outside did not reach pod-1" in r.evidence


def test_calico_without_a_ping_is_an_error() -> None:
    r = judge_calico({**calico(), "pings": []})
    assert (r.verdict, r.evidence) == ("error", "no ping between pods was made")


# -- mode-calico-join ----------------------------------------------------------------------

def join() -> dict[str, Any]:
    def route(protocol: str) -> list[dict[str, str]]:
        return [{"dst": "10.0.0.128/26", "gateway": "10.100.0.4", "protocol": protocol}]

    def pings(ok: bool) -> list[dict[str, Any]]:
        return [ping("pod-1", "pod-5", ok, 62), ping("pod-3", "pod-5", ok, 62)]

    return {"mover": "node-3", "mover_ip": "10.100.0.4", "block": "10.0.0.128/26",
            "others": ["node-1", "node-2"], "before": pings(True),
            "leave_s": 0.07, "join_s": 1.7,
            "left": {"routes": {"node-1": [], "node-2": [], "router": []},
                     "pings": pings(False)},
            "joined": {"routes": {"node-1": route("bird"), "node-2": route("bird"),
                                  "router": route("bgp")},
                       "pings": pings(True)}}


def test_join_confirmed_with_its_evidence() -> None:
    r = judge_join(join())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "node-3 (10.0.0.128/26) left: 0.07 s until no kernel routed to its block; routes then "
        "{'node-1': [], 'node-2': [], 'router': []}; pings 0/2. It joined: 1.70 s until "
        "every kernel had every block; routes then {'node-1': ['10.0.0.128/26 via 10.100.0.4 "
        "proto bird'], 'node-2': ['10.0.0.128/26 via 10.100.0.4 proto bird'], 'router': "
        "['10.0.0.128/26 via 10.100.0.4 proto bgp']}; pings 2/2 (before: 2/2)")
    assert dict(r.numbers) == {"leave_s": 0.07, "join_s": 1.7}


STALE = "once it left, no other node and not the router routes to its block"
JOINED = ("once it joined, every other node routes to its block over BGP (proto bird, via "
          "its address)")
ROUTER_JOINED = "once it joined, the router learnt its block (proto bgp)"
TIMED = "both changes converged, timed"
ROUTE = {"dst": "10.0.0.128/26", "gateway": "10.100.0.4", "protocol": "bgp"}


@pytest.mark.parametrize("change, check", [
    (at("before/1/ok", False), "before: every other node reaches its pods"),
    (at("left/routes/router", [ROUTE]), STALE),
    (at("left/routes/node-2", [{**ROUTE, "protocol": "bird"}]), STALE),
    (at("left/pings/1/ok", True), "once it left, no other node's pod reaches its pods"),
    (at("joined/routes/node-2/0/protocol", "static"), JOINED),
    (at("joined/routes/node-2/0/gateway", "10.100.0.9"), JOINED),
    (at("joined/routes/node-1", []), JOINED),
    (at("joined/routes/router", []), ROUTER_JOINED),
    (at("joined/routes/router/0/protocol", "static"), ROUTER_JOINED),
    (at("joined/pings/1/ok", False),
     "once it joined, every other node's pods reach its pods, and they them"),
    (at("leave_s", 0.0), TIMED),
    (at("leave_s", 60.0), TIMED),
    (at("join_s", 0.0), TIMED),
    (at("join_s", 60.0), TIMED),
])
def test_join_each_check_refuted_alone(change: Callable[[dict], None], check: str) -> None:
    e = join()
    change(e)
    assert refuted_by(judge_join(e), check)


def test_join_times_to_the_millisecond() -> None:
    r = judge_join({**join(), "leave_s": 0.07149, "join_s": 1.70051})
    assert dict(r.numbers) == {"leave_s": 0.071, "join_s": 1.701}


def test_join_routes_of_nodes_not_among_the_others_do_not_count() -> None:
    e = join()
    e["joined"]["routes"]["node-3"] = []
    e["left"]["routes"]["node-3"] = [ROUTE]
    assert judge_join(e).verdict == "confirmed"


def test_join_a_route_of_two_with_the_wrong_protocol_refutes() -> None:
    e = join()
    e["joined"]["routes"]["router"].append({**ROUTE, "protocol": "static"})
    e["joined"]["routes"]["node-1"].append({**ROUTE, "protocol": "static"})
    assert refuted_by(judge_join(e), JOINED, ROUTER_JOINED)


@pytest.mark.parametrize("seconds", [0.01, 59.9])
def test_join_timed_just_inside_the_bounds_passes(seconds: float) -> None:
    assert judge_join({**join(), "leave_s": seconds, "join_s": seconds}).verdict \
        == "confirmed"


@pytest.mark.parametrize("change", [at("others", []), at("left/pings", []),
                                    at("joined/pings", [])])
def test_join_errors(change: Callable[[dict], None]) -> None:
    e = join()
    change(e)
    r = judge_join(e)
    assert (r.verdict, r.evidence) == (
        "error", "no other node, or no ping to the moving node's pods")


def test_route_list_one_line_per_route() -> None:
    assert _route_list({"n": [{"dst": "a", "gateway": "b", "protocol": "c"},
                                 {"dst": "d", "gateway": "e", "protocol": "f"}], "m": []}) \
        == {"n": ["a via b proto c", "d via e proto f"], "m": []}
