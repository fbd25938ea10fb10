"""The claims rewritten for issue 23 pinned: their words and numbers exactly, and each
check refuted by evidence where it alone fails (the exact `[failed: ...]` list), so that
`make mutate` finds a change to any of them noticed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments.catalogue.modes.host_gw_routes import judge_host_gw
from experiments.catalogue.modes.vxlan_mtu import judge_vxlan
from experiments.catalogue.outside.service_route import judge_route
from experiments.catalogue.services.dns_even_split import judge_split
from experiments.catalogue.services.kube_proxy_down import _split_at, judge_down
from experiments.catalogue.services.range_separate import judge_range
from tests.support.evidence import refuted_by

from .test_mode_verdicts import host_gw, vxlan
from .test_out_verdicts import route, s
from .test_svc_verdicts import DOWN, RANGE, SPLIT, conns, split

# -- svc-dns-even-split ------------------------------------------------------------------

def test_split_words_and_numbers() -> None:
    r = judge_split(SPLIT)
    assert r.evidence == (
        "'service-test' resolved to 10.3.241.152 (the service 10.3.241.152; the DNS pod "
        "logged 1 answer(s) to the client); 600/600 connections succeeded; served: server-1 "
        "310 (0.517, 95 % interval 0.476..0.557), server-2 290 (0.483, 95 % interval "
        "0.443..0.524); equivalence margin +-0.1 of 1/2")
    n = dict(r.numbers)
    assert {k: n[k] for k in ("server-1", "server-2", "connections", "margin")} == {
        "server-1": 310, "server-2": 290, "connections": 600, "margin": 0.1}
    assert n["server-1_share_low"] == pytest.approx(0.47585, abs=1e-4)
    assert n["server-1_share_high"] == pytest.approx(0.55732, abs=1e-4)
    assert n["server-2_share_low"] == pytest.approx(0.44268, abs=1e-4)
    assert n["server-2_share_high"] == pytest.approx(0.52415, abs=1e-4)


def test_split_undecided_words() -> None:
    r = judge_split(split(66, 34))
    assert r.verdict == "error" and r.evidence == (
        "too few connections to decide whether the split is even within +-0.1 of 1/2 (each "
        "share in 0.40..0.60): 100 connections, served server-1 66 (0.660, 95 % interval "
        "0.558..0.752), server-2 34 (0.340, 95 % interval 0.248..0.442); measure more (the "
        "full suite makes 1000)")


@pytest.mark.parametrize(("change", "check"), [
    ({"resolved": "10.3.240.99"}, "the name resolved to the service's cluster IP"),
    ({"dns_answers": 0}, "the cluster DNS server answered the client"),
    ({"client": {"connections": 600, "succeeded": 599, "failed": 1}},
     "every connection succeeded"),
    ({"client": {"connections": 601, "succeeded": 601, "failed": 0}},
     "every connection was served by a server pod"),
    ({"served": {"server-1": 450, "server-2": 150}},
     "the split is even: every share's interval inside 0.40..0.60"),
])
def test_split_each_check_alone(change: dict, check: str) -> None:
    assert refuted_by(judge_split({**SPLIT, **change}), check)


def test_split_needs_two_servers_and_a_connection() -> None:
    for e in ({**SPLIT, "client": {"connections": 0, "succeeded": 0, "failed": 0}},
              {**SPLIT, "served": {"server-1": 600}},
              {**SPLIT, "served": {"server-1": 0, "server-2": 0}}):
        r = judge_split(e)
        assert r.verdict == "error" and r.evidence.startswith("needs connections and two")
    assert judge_split({**SPLIT, "served": {"server-1": 0, "server-2": 0}}).evidence == (
        "needs connections and two servers, had 600 connections, 0 served, 2 server(s)")


# -- svc-range-separate ------------------------------------------------------------------

def test_range_words_and_numbers() -> None:
    r = judge_range(RANGE)
    assert r.evidence == (
        "service range 10.3.240.0/20; pod CIDRs (from each node's bridge) 10.0.0.0/24, "
        "10.0.1.0/24; node networks 10.100.0.0/24; cluster IPs in kube-proxy's rules "
        "10.3.240.10, 10.3.241.152")
    assert dict(r.numbers) == {"overlaps": 0, "cluster_ips": 2}
    e = copy.deepcopy(RANGE)
    e["pod_cidrs"]["node-2"] = "10.3.240.0/24"
    e["cluster_ips"] = ["10.3.240.10", "10.9.0.1"]
    r = judge_range(e)
    assert r.evidence.endswith(
        "; overlapping: pod CIDR of node-2; outside: 10.9.0.1 [failed: no pod CIDR overlaps "
        "the service range, every cluster IP lies in the service range]")
    assert dict(r.numbers) == {"overlaps": 1, "cluster_ips": 2}


def test_range_each_check_alone() -> None:
    e = copy.deepcopy(RANGE)
    e["underlays"]["node-1"] = "10.3.244.0/24"
    assert refuted_by(judge_range(e), "no node network overlaps the service range")
    e = copy.deepcopy(RANGE)
    e["pod_cidrs"]["node-1"] = "10.3.240.0/21"
    assert refuted_by(judge_range(e), "no pod CIDR overlaps the service range")


def test_range_error_words() -> None:
    e = copy.deepcopy(RANGE)
    del e["underlays"]["node-2"]
    del e["pod_cidrs"]["node-1"]
    assert judge_range(e).evidence == (
        "needs two nodes whose pod CIDR (bridge) and underlay address were read from their "
        "kernels, and a service with a cluster IP in kube-proxy's rules: 2 node(s), not read "
        "on node-1 (pod CIDR), node-2 (underlay), 2 cluster IP(s)")


# -- svc-kube-proxy-down -----------------------------------------------------------------

def test_down_words_and_numbers() -> None:
    r = judge_down(DOWN)
    assert r.evidence == (
        "iptables mode: 20/20 connections succeeded before kube-proxy on node-1 was killed "
        "(exit status -9), 34/34 after, 5/5 once it was back; userspace mode: 20/20 before "
        "(exit status -9), 0/34 after (34 refused; first error: ConnectionRefusedError: "
        "[Errno 111] Connection refused), 5/5 once it was back")
    assert dict(r.numbers) == {"iptables_after_ok": 34, "iptables_after": 34,
                               "userspace_after_ok": 0, "userspace_after": 34,
                               "userspace_after_refused": 34, "iptables_back_ok": 5,
                               "userspace_back_ok": 5}


def test_down_split_at_the_kill_and_its_grace() -> None:
    xs = [{"t": 100.0, "ms": 999.0}, {"t": 100.0, "ms": 1000.0}, {"t": 101.3, "ms": 1.0},
          {"t": 101.29, "ms": 1.0}]
    before, after = _split_at(xs, 101.0)
    assert before == [xs[0]] and after == [xs[2]]


@pytest.mark.parametrize(("mode", "before", "after", "words"), [
    ("iptables", 4, 10, "iptables: too few connections around the kill (4 before, 10 after)"),
    ("iptables", 5, 9, "iptables: too few connections around the kill (5 before, 9 after)"),
    ("userspace", 4, 10, "userspace: too few connections around the kill (4 before, 10 after)"),
])
def test_down_too_few_at_the_bounds(mode: str, before: int, after: int, words: str) -> None:
    e = copy.deepcopy(DOWN)
    e[mode]["connections"] = conns(100.0, before, True) + [
        {**c, "seq": c["seq"] + before} for c in conns(101.5, after, True)]
    r = judge_down(e)
    assert r.verdict == "error" and r.evidence == words
    e[mode]["connections"] = conns(100.0, 5, True) + [
        {**c, "seq": c["seq"] + 5} for c in conns(101.5, 10, mode == "iptables")]
    assert judge_down(e).verdict != "error"


# -- out-service-route -------------------------------------------------------------------

def test_route_words_and_numbers() -> None:
    r = judge_route(route())
    assert r.evidence == (
        "to 10.3.246.230:80 from 198.51.100.10: 0/4 without a route; with 10.3.240.0/20 via "
        "node-1 at the router 20/20, served by web-1 11, web-2 9 from ['10.0.0.1', "
        "'10.100.0.2'] (node-1's addresses: ['10.100.0.2', '10.0.0.1']); 20 SYNs to the "
        "virtual IP on node-1's uplink; with node-1 off the network 0/4, back on it 4/4")
    assert dict(r.numbers) == {"before_ok": 0, "with_route_ok": 20, "with_route": 20,
                               "syns_at_node": 20, "node_down_ok": 0, "node_back_ok": 4}


def test_route_error_words() -> None:
    e = {**route(), "before": s(0, 0), "node_back": s(0, 0)}
    assert judge_route(e).evidence == (
        "no connection was made in phase(s) before, node_back")
    e = {**route(), "syns_at_node": 19, "capture_dropped": 2}
    assert judge_route(e).evidence == (
        "the capture on node-1's uplink dropped 2 packet(s) and saw 19 SYNs for 20 "
        "connections: it cannot say one did not cross")


@pytest.mark.parametrize(("key", "value", "check"), [
    ("before", s(1, 4), "unreachable from outside without the route"),
    ("with_route", s(19, 20), "reachable with the route"),
    ("sources", {"web-1": ["10.100.0.3"], "web-2": []}, "every connection reached its "
                                                       "server from node-1"),
    ("syns_at_node", 19, "every connection crossed node-1's uplink"),
    ("node_down", s(1, 4), "unreachable once node-1 fails"),
    ("node_back", s(3, 4), "reachable again once node-1 is back"),
])
def test_route_each_check_alone(key: str, value: Any, check: str) -> None:
    assert refuted_by(judge_route({**route(), key: value}), check)


# -- mode-vxlan-mtu ----------------------------------------------------------------------

def test_vxlan_words_and_numbers() -> None:
    r = judge_vxlan(vxlan())
    assert r.evidence == (
        "pod pod-1 eth0 MTU 1450 (from its kernel) on an underlay of 1500; ping -M do -s "
        "1422 (1450 bytes) crossed, -s 1423 failed (ping: local error: message too long, "
        "mtu=1450); 1 encapsulated echoes of 10.0.0.2 -> 10.0.1.2 on node-1 node-1-eth0, "
        "e.g. 10.100.0.2 -> 10.100.0.3:8472 vni 1, 1500 bytes around the pod's 1450")
    assert dict(r.numbers) == {"pod_mtu": 1450, "underlay_mtu": 1500, "encapsulated": 1,
                               "outer_len": 1500}
    e = {**vxlan(), "over": {"ok": True, "size": 1423, "output": ""}}
    assert "-s 1423 crossed (no output)" in judge_vxlan(e).evidence


@pytest.mark.parametrize(("change", "checks"), [
    ({"pod_mtu": 1449}, ["the pod's MTU (its eth0) is the underlay's minus 50",
                         "on the wire it is 50 bytes longer, filling the underlay's MTU",
                         "one byte more is refused by the pod's own kernel at its MTU",
                         "and never reaches the underlay"]),
    ({"fits": {"ok": False, "size": 1422, "output": ""}},
     ["a don't-fragment ping filling the pod MTU crosses"]),
    ({"dst_node_ip": "10.100.0.4"},
     ["on the underlay: node addresses outside, UDP 8472, VNI 1, pod addresses inside"]),
    ({"src_node_ip": "10.100.0.4"},
     ["on the underlay: node addresses outside, UDP 8472, VNI 1, pod addresses inside"]),
])
def test_vxlan_checks(change: dict, checks: list[str]) -> None:
    assert refuted_by(judge_vxlan({**vxlan(), **change}), *checks)


def test_vxlan_the_wire_check_needs_every_full_packet_right() -> None:
    e = vxlan()
    e["packets"] = [*e["packets"], {**e["packets"][0], "outer_len": 1490}]
    assert refuted_by(judge_vxlan(e),
                      "on the wire it is 50 bytes longer, filling the underlay's MTU")
    e = vxlan()
    e["packets"] = [{**p, "port": 4789} for p in e["packets"]]
    assert refuted_by(judge_vxlan(e), "on the underlay: node addresses outside, UDP "
                      "8472, VNI 1, pod addresses inside")


# -- mode-host-gw-routes -----------------------------------------------------------------

def test_host_gw_words_and_numbers() -> None:
    r = judge_host_gw(host_gw())
    assert r.evidence == (
        "one underlay: router routes ['10.100.0.0/24'], cross-node pings 2/2 with TTL [62]; "
        "two racks, host-gw: cross-rack 0/1, same node 1/1; the route flanneld would add, "
        "tried in the node: node-1: `ip route add 10.0.2.0/24 via 10.100.1.2`: Error: "
        "Nexthop has invalid gateway.; node-3: `ip route add 10.0.0.0/24 via 10.100.0.2`: "
        "RTNETLINK answers: Network is unreachable; two racks, vxlan: 1/1, calico: 1/1")
    assert dict(r.numbers) == {"router_pod_routes": 0, "cross_ok": 2,
                               "racks_host_gw_cross_ok": 0, "racks_vxlan_ok": 1,
                               "racks_calico_ok": 1}


def test_host_gw_each_check_alone() -> None:
    def judge_with(path: tuple, value: Any) -> Any:
        e = copy.deepcopy(host_gw())
        node = e
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return judge_host_gw(e)

    e = host_gw()
    assert refuted_by(judge_with(("one_underlay", "router_routes"), [
        *e["one_underlay"]["router_routes"],
        {"dst": "10.0.1.0/24", "gateway": "10.100.0.3", "in_cluster": True}]),
        "one underlay: the router holds no pod route")
    assert refuted_by(judge_with(("one_underlay", "pings", 1, "ok"), False),
                      "one underlay: pods reach across nodes")
    assert refuted_by(judge_with(("one_underlay", "pings", 2, "ttl"), 61),
                      "one underlay: two nodes route, no router (TTL 62)")
    assert refuted_by(judge_with(("racks_host_gw", "pings", 1, "ok"), True),
                      "racks: host-gw's pods cannot reach the other rack")
    assert refuted_by(judge_with(("racks_host_gw", "pings", 0, "ok"), False),
                      "racks: host-gw's pods still reach their own node's")
    assert refuted_by(judge_with(("racks_vxlan", "pings", 0, "ok"), False),
                      "racks: vxlan's pods reach across the router")
    assert refuted_by(judge_with(("racks_calico", "pings"), []),
                      "racks: calico's (BGP) pods reach across the router")
    r = judge_with(("racks_host_gw", "route_attempts", 1, "returncode"), 0)
    assert refuted_by(r, "racks: the kernel refuses the route flanneld would add (gateway "
                         "on no link)")
    r = judge_with(("racks_host_gw", "route_attempts", 1, "stderr"), "")
    assert "node-3: `ip route add 10.0.0.0/24 via 10.100.0.2`: added (exit 0)" in r.evidence


def test_host_gw_no_cross_node_ping_is_an_error() -> None:
    e = copy.deepcopy(host_gw())
    e["racks_host_gw"]["pings"] = [p for p in e["racks_host_gw"]["pings"] if p["same_node"]]
    r = judge_host_gw(e)
    assert r.verdict == "error" and r.evidence == (
        "no ping between pods of different nodes was made")
