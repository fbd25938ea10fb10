"""Pod networks as plug-ins: each mode's planned state, pure (no root).

kubenet is the seed article's layout; docker-default its worst case. What a mode plans
here is what the lifecycle applies and what the integration tests find in the kernel.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from testbed.errors import SpecError
from testbed.model.addressing import plan
from testbed.model.load import load_spec, parse_spec
from testbed.model.names import (
    CALICO,
    CALICO_VXLAN,
    DOCKER_DEFAULT,
    FLANNEL_HOST_GW,
    FLANNEL_VXLAN,
    KINDNET,
    KUBENET,
)
from testbed.model.paths import EXPECTED_TTL
from testbed.model.podnet import POD_NETWORKS, REGISTRY, PodNetwork, Route, pod_network
from testbed.model.podnet.kubenet import MASQ_COMMENT, kubenet_config

ROOT = Path(__file__).resolve().parents[2]
TWO_NODE = ROOT / "topologies" / "two-node.yaml"
TWO_NODE_DOCKER = ROOT / "topologies" / "two-node-docker.yaml"


def test_the_registry_names_each_mode_once() -> None:
    assert POD_NETWORKS == (KUBENET, DOCKER_DEFAULT, FLANNEL_HOST_GW, FLANNEL_VXLAN, KINDNET,
                            CALICO_VXLAN, CALICO)
    for name, cls in REGISTRY.items():
        network = pod_network(name)
        assert isinstance(network, PodNetwork) and network.name == name and cls.description
    with pytest.raises(KeyError):
        pod_network("flannel")


def test_unknown_pod_network_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "pod_network": "flannel",
                    "nodes": [{"name": "node-1"}]}, "t.yaml")
    assert info.value.field == "pod_network" and "kubenet, docker-default" in info.value.problem


# -- kubenet ---------------------------------------------------------------------------

def test_kubenet_is_the_default_and_plans_the_article_figure() -> None:
    spec = load_spec(TWO_NODE)
    network = pod_network(spec.pod_network)
    assert spec.pod_network == KUBENET and network.bridge == "cbr0"
    p = network.plan(spec)
    assert p == plan(spec)  # kubenet's pod CIDRs are the address plan's default
    assert network.router_routes(p) == [
        Route(IPv4Network("10.0.0.0/24"), IPv4Address("10.100.0.2")),
        Route(IPv4Network("10.0.1.0/24"), IPv4Address("10.100.0.3")),
    ]


def test_kubenet_router_routes_follow_an_explicit_pod_cidr() -> None:
    spec = parse_spec({"name": "mixed", "cluster_cidr": "10.0.0.0/14", "nodes": [
        {"name": "node-1"}, {"name": "node-2", "pod_cidr": "10.3.0.0/16"}]})
    network = pod_network(KUBENET)
    assert network.router_routes(network.plan(spec))[1] == Route(
        IPv4Network("10.3.0.0/16"), IPv4Address("10.100.0.3"))


def test_kubenet_node_setup_is_what_kubelet_and_kubenet_do() -> None:
    spec = load_spec(TWO_NODE)
    network = pod_network(KUBENET)
    p = network.plan(spec)
    setup = network.node_setup(spec, p, p.nodes[1], 1500)
    assert setup.sysctls == (("net.ipv4.ip_forward", "1"),)
    assert (setup.bridge, setup.bridge_ip, setup.mtu) == ("cbr0", IPv4Interface("10.0.1.1/24"),
                                                           1500)
    assert setup.default_via == IPv4Address("10.100.0.1") and setup.routes == ()
    assert setup.bridge_sysctls == (("net.bridge.bridge-nf-call-iptables", "1"),)
    assert setup.iptables == (
        ("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment",
         MASQ_COMMENT, "-m", "addrtype", "!", "--dst-type", "LOCAL", "!", "-d", "10.0.0.0/8",
         "-j", "MASQUERADE"),)


def test_kubenet_masquerades_outside_the_non_masquerade_cidr_of_the_spec() -> None:
    spec = parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14",
                       "non_masquerade_cidr": "10.0.0.0/14", "nodes": [{"name": "n"}]})
    network = pod_network(KUBENET)
    p = network.plan(spec)
    (rule,) = network.node_setup(spec, p, p.nodes[0], 1500).iptables
    assert rule[rule.index("-d") - 1:rule.index("-d") + 2] == ("!", "-d", "10.0.0.0/14")


def test_kubenet_cni_config_and_mtu() -> None:
    network = pod_network(KUBENET)
    p = network.plan(load_spec(TWO_NODE))
    node = p.nodes[0]
    assert network.cni_config(p, node, 1450, Path("/ipam")) == kubenet_config(
        node.pod_cidr, node.bridge_ip, 1450, Path("/ipam"))
    assert network.mtu({"lo": 65536, "node-1-eth0": 1500, "x": 1450}) == 1450
    assert network.expected_ttls() == EXPECTED_TTL


# -- docker-default --------------------------------------------------------------------

def test_every_node_gets_docker0_172_17_0_1_16_and_the_router_no_routes() -> None:
    spec = load_spec(TWO_NODE_DOCKER)
    network = pod_network(spec.pod_network)
    p = network.plan(spec)
    assert network.bridge == "docker0"
    assert {n.pod_cidr for n in p.nodes} == {IPv4Network("172.17.0.0/16")}
    assert {n.bridge_ip for n in p.nodes} == {IPv4Interface("172.17.0.1/16")}
    assert network.router_routes(p) == []
    # both nodes hand out the same addresses: the collision the claim shows
    assert p.nodes[0].expected_pod_ips(2) == p.nodes[1].expected_pod_ips(2)
    assert [str(ip) for ip in p.nodes[0].expected_pod_ips(2)] == ["172.17.0.2", "172.17.0.3"]


def test_docker_nodes_have_docker0_and_no_kubenet_rule() -> None:
    spec = load_spec(TWO_NODE_DOCKER)
    network = pod_network(DOCKER_DEFAULT)
    p = network.plan(spec)
    setup = network.node_setup(spec, p, p.nodes[0], 1500)
    assert (setup.bridge, setup.bridge_ip) == ("docker0", IPv4Interface("172.17.0.1/16"))
    assert setup.iptables == ()  # Docker's masquerading is the plugin's


def test_docker_bridge_is_masqueraded_by_the_plugin() -> None:
    network = pod_network(DOCKER_DEFAULT)
    p = network.plan(load_spec(TWO_NODE_DOCKER))
    cfg = network.cni_config(p, p.nodes[0], 1500, Path("/x"))
    assert cfg["bridge"] == "docker0" and cfg["ipMasq"] is True
    assert cfg["ipam"]["subnet"] == "172.17.0.0/16" and cfg["ipam"]["gateway"] == "172.17.0.1"


def test_underlay_may_not_overlap_docker0() -> None:
    with pytest.raises(SpecError, match="overlaps Docker's 172.17.0.0/16"):
        parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "pod_network": "docker-default",
                    "underlay": "172.17.5.0/24", "nodes": [{"name": "node-1"}]}, "t.yaml")


def test_docker_refuses_more_pods_than_docker0_holds() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "pod_network": "docker-default",
                    "nodes": [{"name": "node-1", "pods": 65534}]}, "t.yaml")
    assert info.value.field == "nodes[0].pods" and "room for 65533" in info.value.problem


# -- flannel host-gw -----------------------------------------------------------------------

def test_flannel_host_gw_routes_on_the_nodes_not_the_router() -> None:
    from ipaddress import IPv4Address, IPv4Network

    network = pod_network(FLANNEL_HOST_GW)
    spec = load_spec(TWO_NODE)
    p = network.plan(spec)
    assert network.router_routes(p) == []
    n1, n2 = p.nodes
    setup = network.node_setup(spec, p, n1, 1500)
    assert setup.bridge == "cni0" and setup.bridge_ip == n1.bridge_ip
    assert setup.routes == (Route(n2.pod_cidr, n2.underlay_ip.ip),)  # hostgw: per lease
    assert network.node_setup(spec, p, n2, 1500).routes == (
        Route(n1.pod_cidr, n1.underlay_ip.ip),)
    assert setup.default_via == IPv4Address("10.100.0.1")
    assert network.expected_ttls()["pod-cross-node"] == 62  # no router hop
    assert n1.pod_cidr == IPv4Network("10.0.0.0/24")


def test_flannel_rules_as_flanneld_writes_them() -> None:
    network = pod_network(FLANNEL_HOST_GW)
    spec = load_spec(TWO_NODE)
    p = network.plan(spec)
    rules = [" ".join(r[3:]) for r in network.node_setup(spec, p, p.nodes[0], 1500).iptables]
    net, lease = "10.0.0.0/14", "10.0.0.0/24"
    masq, fwd = '-m comment --comment flanneld masq', '-m comment --comment flanneld forward'
    assert rules == [
        "nat -N FLANNEL-POSTRTG",
        f"nat -A POSTROUTING {masq} -j FLANNEL-POSTRTG",
        f"nat -A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {masq} -j RETURN",
        f"nat -A FLANNEL-POSTRTG -s {lease} -d {net} {masq} -j RETURN",
        f"nat -A FLANNEL-POSTRTG -s {net} -d {lease} {masq} -j RETURN",
        f"nat -A FLANNEL-POSTRTG ! -s {net} -d {lease} {masq} -j RETURN",
        f"nat -A FLANNEL-POSTRTG -s {net} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully",
        f"nat -A FLANNEL-POSTRTG ! -s {net} -d {net} {masq} -j MASQUERADE --random-fully",
        "filter -N FLANNEL-FWD",
        f"filter -A FORWARD {fwd} -j FLANNEL-FWD",
        f"filter -A FLANNEL-FWD -s {net} {fwd} -j ACCEPT",
        f"filter -A FLANNEL-FWD -d {net} {fwd} -j ACCEPT",
    ]


def test_flannel_delegate_config() -> None:
    network = pod_network(FLANNEL_HOST_GW)
    p = network.plan(load_spec(TWO_NODE))
    cfg = network.cni_config(p, p.nodes[1], 1500, Path("/ipam"))
    assert cfg["type"] == "bridge" and cfg["name"] == "cbr0" and "bridge" not in cfg
    assert cfg["isDefaultGateway"] and cfg["isGateway"] and cfg["hairpinMode"]
    assert cfg["ipMasq"] is False and cfg["mtu"] == 1500
    assert cfg["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.0.1.0/24"}]],
                           "routes": [{"dst": "10.0.0.0/14"}], "dataDir": "/ipam"}


# -- kindnet ---------------------------------------------------------------------------------

def test_kindnet_no_bridge_ptp_and_node_routes() -> None:
    network = pod_network(KINDNET)
    spec = load_spec(TWO_NODE)
    p = network.plan(spec)
    n1, n2 = p.nodes
    setup = network.node_setup(spec, p, n1, 1500)
    assert setup.bridge is None and setup.bridge_ip is None and network.bridge is None
    assert setup.routes == (Route(n2.pod_cidr, n2.underlay_ip.ip),)
    assert network.router_routes(p) == []
    cfg = network.cni_config(p, n1, 1500, Path("/ipam"))
    assert (cfg["type"], cfg["name"], cfg["ipMasq"], cfg["mtu"]) == ("ptp", "kindnet", False,
                                                                     1500)
    assert cfg["ipam"]["ranges"] == [[{"subnet": "10.0.0.0/24"}]]
    assert cfg["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    rules = [" ".join(r[3:]) for r in setup.iptables]
    assert rules[0] == "nat -N KIND-MASQ-AGENT"
    assert rules[1].startswith("nat -A POSTROUTING -m addrtype ! --dst-type LOCAL")
    assert rules[1].endswith("-j KIND-MASQ-AGENT")
    assert "-d 10.0.0.0/14" in rules[2] and rules[2].endswith("-j RETURN")
    assert rules[3].endswith("-j MASQUERADE")
    ttl = network.expected_ttls()
    assert (ttl["pod-same-node"], ttl["pod-cross-node"]) == (63, 62)  # routed, no bridge


# -- flannel VXLAN ------------------------------------------------------------------------------

def test_flannel_vxlan_programs_device_then_neighbour_fdb_route_per_lease() -> None:
    from testbed.model.podnet.flannel import vtep_mac

    network = pod_network(FLANNEL_VXLAN)
    spec = load_spec(TWO_NODE)
    p = network.plan(spec)
    assert network.mtu({"lo": 65536, "node-1-eth0": 1500}) == 1450
    n1, n2 = p.nodes
    setup = network.node_setup(spec, p, n1, 1450)
    assert setup.routes == () and setup.bridge == "cni0" and setup.mtu == 1450
    cmds = [" ".join(c) for c in setup.commands]
    mac1, mac2 = vtep_mac("node-1"), vtep_mac("node-2")
    assert cmds == [
        f"ip link add flannel.1 address {mac1} mtu 1450 type vxlan id 1 local 10.100.0.2 "
        "dev node-1-eth0 dstport 8472 nolearning",
        "ip addr add 10.0.0.0/32 dev flannel.1",
        "ip link set flannel.1 up",
        f"ip neigh replace 10.0.1.0 lladdr {mac2} dev flannel.1 nud permanent",
        f"bridge fdb replace {mac2} dev flannel.1 dst 10.100.0.3 self permanent",
        "ip route replace 10.0.1.0/24 via 10.0.1.0 dev flannel.1 onlink",
    ]
    assert int(mac1.split(":")[0], 16) & 0b11 == 0b10  # locally administered, unicast
    assert mac1 != mac2 and vtep_mac("node-1") == mac1  # stable across runs
    assert network.cni_config(p, n1, 1450, Path("/i"))["mtu"] == 1450
    assert network.router_routes(p) == []
    assert "flannel.1" in network.route_descriptions()["pod-cross-node"]
