"""The pod-network claims' verdicts as pure functions of their evidence, and the VXLAN
capture parser on tcpdump's own output."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments.catalogue.modes.calico_bgp import judge_calico
from experiments.catalogue.modes.calico_join import judge_join
from experiments.catalogue.modes.host_gw_routes import judge_host_gw
from experiments.catalogue.modes.kindnet_no_bridge import judge_kindnet
from experiments.catalogue.modes.vxlan_mtu import judge_vxlan, parse_vxlan

# tcpdump -n -T vxlan -r capture.pcap 'udp port 8472', as the claim reads it
# `tcpdump -n -v -T vxlan -r` of a real run's capture (flannel-vxlan.yaml, node-1's uplink)
TCPDUMP_VXLAN = """\
22:55:25.326942 IP (tos 0x0, ttl 64, id 17158, offset 0, flags [none], proto UDP (17), length 1500)
    10.100.0.2.34243 > 10.100.0.3.8472: VXLAN, flags [I] (0x08), vni 1
IP (tos 0x0, ttl 63, id 0, offset 0, flags [DF], proto ICMP (1), length 1450)
    10.0.0.2 > 10.0.1.2: ICMP echo request, id 30933, seq 1, length 1430
22:55:25.327007 IP (tos 0x0, ttl 64, id 27609, offset 0, flags [none], proto UDP (17), length 1500)
    10.100.0.3.34243 > 10.100.0.2.8472: VXLAN, flags [I] (0x08), vni 1
IP (tos 0x0, ttl 63, id 48750, offset 0, flags [none], proto ICMP (1), length 1450)
    10.0.1.2 > 10.0.0.2: ICMP echo reply, id 30933, seq 1, length 1430
"""
OVER = ("PING 10.0.1.2 (10.0.1.2) 1423(1451) bytes of data.\n\n--- 10.0.1.2 ping statistics ---"
        "\n2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 52ms\n\n"
        "ping: local error: message too long, mtu=1450\n")


def test_parse_vxlan() -> None:
    packets = parse_vxlan(TCPDUMP_VXLAN)
    assert packets[0] == {"outer_src": "10.100.0.2", "outer_dst": "10.100.0.3", "port": 8472,
                          "vni": 1, "outer_len": 1500, "inner_src": "10.0.0.2",
                          "inner_dst": "10.0.1.2", "inner_len": 1450}
    assert len(packets) == 2 and parse_vxlan("") == []
    # a block cut short is not a packet
    assert parse_vxlan("\n".join(TCPDUMP_VXLAN.splitlines()[:3])) == []


def ping(src: str, dst: str, ok: bool, ttl: int, same: bool) -> dict[str, Any]:
    return {"src": src, "dst": dst, "ok": ok, "ttl": ttl, "same_node": same}


def host_gw() -> dict[str, Any]:
    cross = [ping("pod-1", "pod-3", True, 62, False), ping("pod-2", "pod-4", True, 62, False)]
    return {
        "one_underlay": {"router_routes": [{"dst": "10.100.0.0/24", "gateway": "",
                                            "in_cluster": False}],
                         "pings": [ping("pod-1", "pod-2", True, 64, True), *cross]},
        "racks_host_gw": {"pings": [ping("pod-1", "pod-2", True, 64, True),
                                    ping("pod-1", "pod-3", False, 0, False)],
                          "route_attempts": [
                              {"node": "node-1", "to": "node-3",
                               "command": "ip route add 10.0.2.0/24 via 10.100.1.2",
                               "returncode": 2,
                               "stderr": "Error: Nexthop has invalid gateway."},
                              {"node": "node-3", "to": "node-1",
                               "command": "ip route add 10.0.0.0/24 via 10.100.0.2",
                               "returncode": 2, "stderr": "RTNETLINK answers: Network is "
                                                         "unreachable"}],
                          "notes": []},
        "racks_vxlan": {"pings": [ping("pod-1", "pod-3", True, 62, False)]},
        "racks_calico": {"pings": [ping("pod-1", "pod-3", True, 62, False)]}}


def test_host_gw_confirmed_refuted_error() -> None:
    assert judge_host_gw(host_gw()).verdict == "confirmed"
    e = host_gw()
    e["one_underlay"]["router_routes"].append({"dst": "10.0.1.0/24", "gateway": "10.100.0.3",
                                               "in_cluster": True})  # kubenet's, not hostgw
    assert judge_host_gw(e).verdict == "refuted"
    e = host_gw()
    e["one_underlay"]["pings"][1]["ttl"] = 61  # a router hop
    assert judge_host_gw(e).verdict == "refuted"
    e = host_gw()
    e["racks_host_gw"]["pings"][1]["ok"] = True  # crossing racks after all
    assert judge_host_gw(e).verdict == "refuted"
    e = host_gw()
    e["racks_vxlan"]["pings"][0]["ok"] = False
    assert judge_host_gw(e).verdict == "refuted"
    e = host_gw()
    e["racks_calico"]["pings"][0]["ok"] = False
    assert judge_host_gw(e).verdict == "refuted"
    e = host_gw()
    e["one_underlay"]["pings"] = e["one_underlay"]["pings"][:1]
    assert judge_host_gw(e).verdict == "error"


@pytest.mark.parametrize("attempts", [
    [],  # never tried: the model's words are not the kernel's
    [{"node": "node-1", "to": "node-3", "command": "ip route add ...", "returncode": 0,
      "stderr": ""}],  # the kernel took the route
    [{"node": "node-1", "to": "node-3", "command": "ip route add ...", "returncode": 1,
      "stderr": "Error: any other error"}],  # refused, but not for the gateway
])
def test_host_gw_unreachable_comes_from_the_kernel(attempts: list) -> None:
    e = host_gw()
    e["racks_host_gw"]["route_attempts"] = attempts
    e["racks_host_gw"]["notes"] = ["flanneld would fail: ... network is unreachable"]
    result = judge_host_gw(e)
    assert result.verdict == "refuted" and "the kernel refuses the route" in result.evidence


def vxlan() -> dict[str, Any]:
    return {"src": "pod-1", "pod_mtu": 1450, "underlay_mtu": 1500,
            "fits": {"ok": True, "size": 1422, "output": ""},
            "over": {"ok": False, "size": 1423, "output": OVER},
            "src_ip": "10.0.0.2", "dst_ip": "10.0.1.2", "src_node_ip": "10.100.0.2",
            "dst_node_ip": "10.100.0.3", "capture_point": "node-1 node-1-eth0",
            "packets": parse_vxlan(TCPDUMP_VXLAN)}


def test_vxlan_confirmed_refuted_error() -> None:
    assert judge_vxlan(vxlan()).verdict == "confirmed"
    e = vxlan()
    e["over"]["ok"] = True  # no MTU cost
    assert judge_vxlan(e).verdict == "refuted"
    e = vxlan()
    e["packets"] = [{**p, "vni": 2} for p in e["packets"]]
    assert judge_vxlan(e).verdict == "refuted"
    e = vxlan()
    e["packets"] = []  # not wrapped: the pods' packets went out bare
    assert judge_vxlan(e).verdict == "refuted"
    e = vxlan()
    e["packets"], e["fits"]["ok"] = [], False
    assert judge_vxlan(e).verdict == "error"


@pytest.mark.parametrize(("change", "check"), [
    # the pod's MTU as the kernel has it, not the testbed's arithmetic
    ({"pod_mtu": 1400}, "the pod's MTU (its eth0) is the underlay's minus 50"),
    ({"underlay_mtu": 1450}, "the pod's MTU (its eth0) is the underlay's minus 50"),
    # one byte more failing somewhere else (a hop of 1450 further on) is not the pod's MTU
    ({"over": {"ok": False, "size": 1423, "output": "100% packet loss"}},
     "refused by the pod's own kernel"),
    ({"over": {"ok": False, "size": 1423, "output": OVER.replace("mtu=1450", "mtu=1400")}},
     "refused by the pod's own kernel"),
    ({"fits": {"ok": False, "size": 1422, "output": ""}}, "filling the pod MTU crosses"),
])
def test_vxlan_each_check(change: dict, check: str) -> None:
    e = {**vxlan(), **change}
    result = judge_vxlan(e)
    assert result.verdict == "refuted" and check in result.evidence, result.evidence


@pytest.mark.parametrize("packet", [
    {"outer_len": 1490},  # 40 bytes of overhead on the wire, not 50
    {"outer_len": 1480, "inner_len": 1430},  # the pod's packet did not fill its MTU
])
def test_vxlan_sizes_on_the_wire(packet: dict) -> None:
    e = vxlan()
    e["packets"] = [{**p, **packet} for p in e["packets"]]
    result = judge_vxlan(e)
    assert result.verdict == "refuted" and "50 bytes longer" in result.evidence


def test_vxlan_oversize_on_the_wire() -> None:
    e = vxlan()
    e["packets"] = [*e["packets"], {**e["packets"][0], "inner_len": 1451, "outer_len": 1501}]
    result = judge_vxlan(e)
    assert result.verdict == "refuted" and "never reaches the underlay" in result.evidence


def kindnet() -> dict[str, Any]:
    return {"nodes": {"node-1": {"bridges": [], "bridge_ports": [],
                                 "host_routes": ["10.0.0.2", "10.0.0.3"],
                                 "pod_ips": ["10.0.0.3", "10.0.0.2"], "pods": ["a", "b"]}},
            "pings": [ping("pod-1", "pod-3", True, 62, False)]}


def test_kindnet_confirmed_refuted_error() -> None:
    assert judge_kindnet(kindnet()).verdict == "confirmed"
    e = copy.deepcopy(kindnet())
    e["nodes"]["node-1"]["bridges"] = ["cni0"]
    assert judge_kindnet(e).verdict == "refuted"
    e = copy.deepcopy(kindnet())
    e["nodes"]["node-1"]["host_routes"] = ["10.0.0.2"]
    assert judge_kindnet(e).verdict == "refuted"
    assert judge_kindnet({"nodes": {}, "pings": []}).verdict == "error"


def calico() -> dict[str, Any]:
    return {"gateway_mac": "ee:ee:ee:ee:ee:ee", "proxy_arp": "1", "peer_ip": "10.100.0.3",
            "learnt": [{"dst": "10.0.0.64/26", "gateway": "10.100.0.3", "protocol": "bird"}],
            "blackhole": True, "sessions": ["Mesh_10_100_0_3 BGP --- up Established"],
            "converge_s": 2.1, "pings": [ping("pod-1", "pod-3", True, 62, False)],
            "blocks": ["10.0.0.0/26", "10.0.0.64/26"], "outside_ok": True,
            "router_learnt": [{"dst": "10.0.0.0/26", "gateway": "10.100.0.2", "protocol": "bgp"},
                              {"dst": "10.0.0.64/26", "gateway": "10.100.0.3",
                               "protocol": "bgp"}]}


def test_calico_confirmed_refuted_error() -> None:
    assert judge_calico(calico()).verdict == "confirmed"
    for key, value in (("gateway_mac", "aa:bb:cc:dd:ee:ff"), ("blackhole", False),
                       ("learnt", [{"dst": "10.0.0.64/26", "gateway": "10.100.0.3",
                                    "protocol": "static"}]),  # not learnt over BGP
                       ("sessions", ["Mesh_10_100_0_3 BGP --- start Connect"]),
                       ("outside_ok", False),
                       ("router_learnt", [{"dst": "10.0.0.0/26", "gateway": "10.100.0.2",
                                           "protocol": "bgp"}])):  # a block missing
        assert judge_calico({**calico(), key: value}).verdict == "refuted", key
    assert judge_calico({**calico(), "pings": []}).verdict == "error"


def join() -> dict[str, Any]:
    def route(protocol: str, gateway: str) -> list[dict[str, str]]:
        return [{"dst": "10.0.0.128/26", "gateway": gateway, "protocol": protocol}]

    def pings(ok: bool) -> list[dict[str, Any]]:
        return [ping("pod-1", "pod-5", ok, 62, False), ping("pod-3", "pod-5", ok, 62, False)]

    return {"mover": "node-3", "mover_ip": "10.100.0.4", "block": "10.0.0.128/26",
            "others": ["node-1", "node-2"], "before": pings(True),
            "leave_s": 0.07, "join_s": 1.7,
            "left": {"routes": {"node-1": [], "node-2": [], "router": []},
                     "pings": pings(False)},
            "joined": {"routes": {"node-1": route("bird", "10.100.0.4"),
                                  "node-2": route("bird", "10.100.0.4"),
                                  "router": route("bgp", "10.100.0.4")},
                       "pings": pings(True)}}


def test_join_confirmed_refuted_error() -> None:
    result = judge_join(join())
    assert result.verdict == "confirmed", result.evidence
    assert result.numbers == {"leave_s": 0.07, "join_s": 1.7}
    assert "1.70 s until every kernel had every block" in result.evidence
    # what a false claim would have left behind
    stale = join()
    stale["left"]["routes"]["router"] = [{"dst": "10.0.0.128/26", "gateway": "10.100.0.4",
                                          "protocol": "bgp"}]
    reached = join()
    reached["left"]["pings"][0]["ok"] = True
    static = join()
    static["joined"]["routes"]["node-2"][0]["protocol"] = "static"
    missing = join()
    missing["joined"]["routes"]["node-1"] = []
    unreached = join()
    unreached["joined"]["pings"][1]["ok"] = False
    untimed = {**join(), "join_s": 0.0}
    for name, e in (("stale", stale), ("reached", reached), ("static", static),
                    ("missing", missing), ("unreached", unreached), ("untimed", untimed)):
        assert judge_join(e).verdict == "refuted", name
    nothing = join()
    nothing["joined"]["pings"] = []
    assert judge_join(nothing).verdict == "error"
    assert judge_join({**join(), "others": []}).verdict == "error"
