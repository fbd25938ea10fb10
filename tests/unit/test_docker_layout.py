"""The Docker-default layout: the article's worst case, planned exactly."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from testbed.addressing import plan
from testbed.cni import kubenet_config
from testbed.errors import SpecError
from testbed.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def test_every_node_gets_docker0_172_17_0_1_16_and_the_router_no_routes() -> None:
    spec = load_spec(ROOT / "topologies" / "two-node-docker.yaml")
    p = plan(spec)
    assert p.bridge == "docker0"
    assert {n.pod_cidr for n in p.nodes} == {IPv4Network("172.17.0.0/16")}
    assert {n.bridge_ip for n in p.nodes} == {IPv4Interface("172.17.0.1/16")}
    assert p.router_routes() == []
    # both nodes hand out the same addresses: the collision the claim shows
    assert p.nodes[0].expected_pod_ips(2) == p.nodes[1].expected_pod_ips(2)
    assert [str(ip) for ip in p.nodes[0].expected_pod_ips(2)] == ["172.17.0.2", "172.17.0.3"]


def test_kubenet_stays_the_default() -> None:
    spec = load_spec(ROOT / "topologies" / "two-node.yaml")
    assert spec.pod_network == "kubenet" and plan(spec).bridge == "cbr0"


def test_docker_bridge_is_masqueraded_by_the_plugin() -> None:
    cfg = kubenet_config(IPv4Network("172.17.0.0/16"), IPv4Interface("172.17.0.1/16"), 1500,
                         Path("/x"), bridge="docker0", ip_masq=True)
    assert cfg["bridge"] == "docker0" and cfg["ipMasq"] is True


def test_unknown_pod_network_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "pod_network": "flannel",
                    "nodes": [{"name": "node-1"}]}, "t.yaml")
    assert info.value.field == "pod_network" and "kubenet, docker-default" in info.value.problem


def test_underlay_may_not_overlap_docker0() -> None:
    with pytest.raises(SpecError, match="overlaps Docker's 172.17.0.0/16"):
        parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "pod_network": "docker-default",
                    "underlay": "172.17.5.0/24", "nodes": [{"name": "node-1"}]}, "t.yaml")
