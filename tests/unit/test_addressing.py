"""Address planning: the article's two-node figure and the helpers it is built from."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest

from testbed.model.addressing import AddressPlan, NodePlan, plan
from testbed.model.cidrs import carve_pod_cidrs, pod_capacity, pod_hosts
from testbed.model.load import parse_spec

TWO_NODE: dict[str, Any] = {
    "name": "two-node",
    "cluster_cidr": "10.0.0.0/14",
    "node_cidr_prefix": 24,
    "underlay": "10.100.0.0/24",
    "nodes": [{"name": "node-1", "pods": 2}, {"name": "node-2", "pods": 2}],
}


@pytest.fixture
def two_node() -> AddressPlan:
    return plan(parse_spec(TWO_NODE, "two-node.yaml"))


def test_two_node_router_and_underlay(two_node: AddressPlan) -> None:
    assert two_node.underlay == IPv4Network("10.100.0.0/24")
    assert two_node.router_ip == IPv4Interface("10.100.0.1/24")
    assert two_node.cluster_cidr == IPv4Network("10.0.0.0/14")
    assert len(two_node.nodes) == 2


def test_two_node_node_plans(two_node: AddressPlan) -> None:
    assert two_node.nodes == (
        NodePlan(
            name="node-1",
            index=0,
            underlay_ip=IPv4Interface("10.100.0.2/24"),
            pod_cidr=IPv4Network("10.0.0.0/24"),
            bridge_ip=IPv4Interface("10.0.0.1/24"),
        ),
        NodePlan(
            name="node-2",
            index=1,
            underlay_ip=IPv4Interface("10.100.0.3/24"),
            pod_cidr=IPv4Network("10.0.1.0/24"),
            bridge_ip=IPv4Interface("10.0.1.1/24"),
        ),
    )
    assert two_node.nodes[0].gateway == IPv4Address("10.0.0.1")
    assert two_node.nodes[1].gateway == IPv4Address("10.0.1.1")
    # cbr0 lives inside its own pod CIDR, with the pod CIDR's prefix.
    for n in two_node.nodes:
        assert n.bridge_ip.network == n.pod_cidr
        assert n.underlay_ip.network == two_node.underlay


def test_two_node_expected_pod_ips(two_node: AddressPlan) -> None:
    node_1, node_2 = two_node.nodes
    assert node_1.expected_pod_ips(2) == [IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3")]
    assert node_2.expected_pod_ips(2) == [IPv4Address("10.0.1.2"), IPv4Address("10.0.1.3")]
    assert node_1.expected_pod_ips(0) == []
    assert node_1.expected_pod_ips(1) == [IPv4Address("10.0.0.2")]


@pytest.mark.parametrize(
    ("ip", "node"),
    [
        ("10.0.0.2", "node-1"),
        ("10.0.0.3", "node-1"),
        ("10.0.0.1", "node-1"),  # cbr0 of node-1
        ("10.0.0.255", "node-1"),
        (IPv4Address("10.0.1.2"), "node-2"),
        ("10.0.1.0", "node-2"),
        ("10.0.2.1", None),  # inside the cluster CIDR but no node owns it
        ("10.3.255.254", None),
        ("10.100.0.2", None),  # an underlay address is not a pod address
        ("192.168.1.1", None),
        ("fd00::1", None),
    ],
)
def test_two_node_node_for_ip(two_node: AddressPlan, ip: Any, node: str | None) -> None:
    found = two_node.node_for_ip(ip)
    if node is None:
        assert found is None
    else:
        assert found is not None
        assert found.name == node


def test_node_for_ip_rejects_garbage(two_node: AddressPlan) -> None:
    with pytest.raises(ValueError):
        two_node.node_for_ip("not-an-ip")


def test_node_lookup_by_name(two_node: AddressPlan) -> None:
    assert two_node.node("node-2").underlay_ip == IPv4Interface("10.100.0.3/24")
    assert two_node.node("node-1").index == 0
    with pytest.raises(KeyError):
        two_node.node("node-3")


def test_plan_with_explicit_pod_cidr_keeps_carving_by_index() -> None:
    spec = parse_spec(
        {
            "name": "mixed",
            "cluster_cidr": "10.0.0.0/14",
            "nodes": [
                {"name": "node-1", "pods": 1},
                {"name": "node-2", "pod_cidr": "10.3.0.0/16", "pods": 1},
                {"name": "node-3", "pods": 1},
            ],
        }
    )
    p = plan(spec)
    assert [n.pod_cidr for n in p.nodes] == [
        IPv4Network("10.0.0.0/24"),
        IPv4Network("10.3.0.0/16"),
        IPv4Network("10.0.2.0/24"),  # node i always gets the i-th carved CIDR
    ]
    node_2 = p.node("node-2")
    assert node_2.bridge_ip == IPv4Interface("10.3.0.1/16")
    assert node_2.expected_pod_ips(2) == [IPv4Address("10.3.0.2"), IPv4Address("10.3.0.3")]
    assert [n.underlay_ip.ip for n in p.nodes] == [
        IPv4Address("10.100.0.2"), IPv4Address("10.100.0.3"), IPv4Address("10.100.0.4"),
    ]
    assert p.node_for_ip("10.3.200.7") == node_2


def test_plan_other_ranges() -> None:
    spec = parse_spec(
        {
            "name": "wide",
            "cluster_cidr": "172.16.0.0/16",
            "node_cidr_prefix": 26,
            "underlay": "192.168.50.0/28",
            "nodes": [{"name": "a", "pods": 3}, {"name": "b", "pods": 1}],
        }
    )
    p = plan(spec)
    assert p.router_ip == IPv4Interface("192.168.50.1/28")
    a, b = p.nodes
    assert a.underlay_ip == IPv4Interface("192.168.50.2/28")
    assert b.underlay_ip == IPv4Interface("192.168.50.3/28")
    assert a.pod_cidr == IPv4Network("172.16.0.0/26")
    assert b.pod_cidr == IPv4Network("172.16.0.64/26")
    assert b.bridge_ip == IPv4Interface("172.16.0.65/26")
    assert a.expected_pod_ips(3) == [
        IPv4Address("172.16.0.2"), IPv4Address("172.16.0.3"), IPv4Address("172.16.0.4"),
    ]


def test_expected_pod_ips_fill_a_slash29_exactly() -> None:
    spec = parse_spec({"name": "s", "cluster_cidr": "10.0.0.0/16", "node_cidr_prefix": 29,
                       "nodes": [{"name": "n", "pods": 5}]})
    node = plan(spec).nodes[0]
    assert node.bridge_ip == IPv4Interface("10.0.0.1/29")
    assert node.expected_pod_ips(5) == [IPv4Address(f"10.0.0.{i}") for i in range(2, 7)]


@pytest.mark.parametrize(
    ("cluster", "prefix", "count", "expected"),
    [
        ("10.0.0.0/14", 24, 3, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]),
        ("10.0.0.0/14", 16, 2, ["10.0.0.0/16", "10.1.0.0/16"]),
        ("10.0.0.0/23", 24, 2, ["10.0.0.0/24", "10.0.1.0/24"]),
        ("172.16.0.0/24", 26, 4,
         ["172.16.0.0/26", "172.16.0.64/26", "172.16.0.128/26", "172.16.0.192/26"]),
        ("10.0.0.0/24", 24, 1, ["10.0.0.0/24"]),
        ("10.0.0.0/14", 24, 0, []),
    ],
)
def test_carve_pod_cidrs(cluster: str, prefix: int, count: int, expected: list[str]) -> None:
    assert carve_pod_cidrs(IPv4Network(cluster), prefix, count) == [
        IPv4Network(c) for c in expected
    ]


@pytest.mark.parametrize(
    ("cidr", "capacity"),
    [
        ("10.0.0.0/16", 65533),
        ("10.0.0.0/24", 253),
        ("10.0.0.0/26", 61),
        ("10.0.0.0/29", 5),
        ("10.0.0.0/30", 1),
        ("10.0.0.0/31", 0),
        ("10.0.0.0/32", 0),
    ],
)
def test_pod_capacity(cidr: str, capacity: int) -> None:
    assert pod_capacity(IPv4Network(cidr)) == capacity


@pytest.mark.parametrize("cidr", ["10.0.0.0/24", "10.0.0.0/29", "10.0.0.0/30", "10.9.8.0/26"])
def test_pod_hosts_count_matches_capacity(cidr: str) -> None:
    net = IPv4Network(cidr)
    hosts = list(pod_hosts(net))
    assert len(hosts) == pod_capacity(net)
    # Never the network address, the gateway (first host) or the broadcast address.
    assert net.network_address not in hosts
    assert next(net.hosts()) not in hosts
    assert net.broadcast_address not in hosts


def test_pod_hosts_order() -> None:
    assert list(pod_hosts(IPv4Network("10.0.0.0/29"))) == [
        IPv4Address(f"10.0.0.{i}") for i in range(2, 7)
    ]
    assert list(pod_hosts(IPv4Network("10.0.1.0/30"))) == [IPv4Address("10.0.1.2")]
