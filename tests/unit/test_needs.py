"""What each claim needs of its topology, checked on every topology the project ships
(no root): a claim runs where it can show something, and says `not applicable`, with the
reason, where it cannot, instead of `error` or `refuted`. And the ranges a claim adds
hosts in are clear of everything the topology uses."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from experiments.catalogue.article import no_masquerade
from experiments.claims import NOT_APPLICABLE
from experiments.framework.base import CLAIM
from experiments.framework.needs import Needs
from experiments.registry import REGISTRY
from testbed.model.load import load_spec
from testbed.model.ranges import OUTSIDE_CANDIDATES, PRIVATE_CANDIDATES, free_network, in_use

TOPOLOGIES = sorted((Path(__file__).resolve().parents[2] / "topologies").glob("*.yaml"))
KUBENET_TOPOLOGIES = {"two-node", "four-node", "services", "outside"}
# the claims that run on the topology given (the rest build clusters of fixed topologies)
ON_THE_TOPOLOGY = {"shared-localhost", "port-conflict", "pause-holds-netns", "gateway-routes",
                   "no-masquerade-10-8", "docker0-collision"}


def test_the_topologies_are_all_here() -> None:
    assert len(TOPOLOGIES) >= 11
    assert {p.stem for p in TOPOLOGIES} >= KUBENET_TOPOLOGIES


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_which_claims_apply_to_each_shipped_topology(path: Path) -> None:
    spec = load_spec(path)
    applies = {name for name, e in REGISTRY.items() if e.kind == CLAIM
               and e.inapplicable(spec) is None}
    claims = {name for name, e in REGISTRY.items() if e.kind == CLAIM}
    # the fixed-topology claims always apply; of the others, the kubenet-only two apply
    # exactly where the pod network is kubenet (its router holds the pod routes, its
    # masquerade rule is the claim's)
    kubenet_only = {"gateway-routes", "no-masquerade-10-8"}
    expected = claims - (set() if path.stem in KUBENET_TOPOLOGIES else kubenet_only)
    assert applies == expected
    for name in claims - applies:
        result = REGISTRY[name].inapplicable(spec)
        assert result is not None and result.verdict == NOT_APPLICABLE
        assert spec.pod_network in result.evidence and spec.name in result.evidence


def test_the_claims_on_the_topology_are_those_declaring_needs() -> None:
    declared = {name for name, e in REGISTRY.items() if e.kind == CLAIM
                and getattr(e, "requires", Needs()) != Needs()}
    assert declared == ON_THE_TOPOLOGY


def test_needs_count_pods_and_nodes() -> None:
    spec = load_spec(TOPOLOGIES[0].parent / "two-node.yaml")  # 2 + 2 pods
    assert Needs(pods=4).unmet(spec) == []
    assert Needs(pods=5).unmet(spec) == ["needs at least 5 pods, the topology has 4"]
    assert Needs(nodes_with_pods=2, pods_on_a_node=2).unmet(spec) == []
    assert Needs(nodes_with_pods=3).unmet(spec) == ["needs 3 nodes with pods, the topology "
                                                    "has 2"]
    assert Needs(pods_on_a_node=3).unmet(spec) == [
        "needs a node with at least 3 pods, the most on one node is 2"]
    lonely = dataclasses.replace(spec, nodes=(dataclasses.replace(spec.nodes[0], pods=()),
                                              spec.nodes[1]))
    assert Needs(nodes_with_pods=2).unmet(lonely) == ["needs 2 nodes with pods, the topology "
                                                      "has 1"]
    other = dataclasses.replace(spec, non_masquerade_cidr=IPv4Network("10.0.0.0/14"))
    assert Needs(non_masquerade_cidr="10.0.0.0/8").unmet(other) == [
        "needs non_masquerade_cidr 10.0.0.0/8, the topology has 10.0.0.0/14"]
    assert no_masquerade.NoMasquerade().inapplicable(other) is not None
    assert Needs().reason(spec) == ""
    assert Needs(pods=9).reason(spec).startswith("not applicable to topology two-node: ")


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_a_claims_own_networks_are_clear_of_the_topology(path: Path) -> None:
    spec = load_spec(path)
    private, outside = (IPv4Network(n) for n in no_masquerade.networks(spec))
    assert private.subnet_of(IPv4Network("10.0.0.0/8"))
    assert not outside.overlaps(IPv4Network("10.0.0.0/8"))
    for net in (private, outside):
        assert not [n for n, _ in in_use(spec) if n.overlaps(net)], (net, in_use(spec))
    names = {n.name for n in spec.nodes} | {p.name for n in spec.nodes for p in n.pods} | {
        h.name for h in spec.external_hosts}
    assert no_masquerade.host_name(spec, "outside") not in names


def test_outside_yaml_moves_the_outside_host_off_its_external_network() -> None:
    """topologies/outside.yaml's internet-client sits on 198.51.100.0/24: the claim's
    `outside` host once went there too, and the claim was refuted although it held."""
    spec = load_spec(TOPOLOGIES[0].parent / "outside.yaml")
    assert IPv4Network("198.51.100.0/24") in [n for n, _ in in_use(spec)]
    _, outside = no_masquerade.networks(spec)
    assert outside != "198.51.100.0/24"


def test_no_free_range_is_an_error() -> None:
    spec = load_spec(TOPOLOGIES[0].parent / "two-node.yaml")
    with pytest.raises(ValueError, match="no candidate range is clear"):
        free_network(spec, PRIVATE_CANDIDATES[:1], also_taken=[PRIVATE_CANDIDATES[0]])
    assert free_network(spec, PRIVATE_CANDIDATES[:2],
                        also_taken=[PRIVATE_CANDIDATES[0]]) == PRIVATE_CANDIDATES[1]
    with pytest.raises(ValueError):
        free_network(spec, OUTSIDE_CANDIDATES, within=IPv4Network("10.0.0.0/8"))
    with pytest.raises(ValueError):
        free_network(spec, PRIVATE_CANDIDATES, outside=IPv4Network("10.0.0.0/8"))
    taken = dataclasses.replace(spec, service_cidr=IPv4Network("10.200.0.0/16"))
    assert free_network(taken, PRIVATE_CANDIDATES) == IPv4Network("10.201.0.0/24")


def test_the_reasons_word_for_word() -> None:
    """Every unmet need's words, joined by '; ' (what claims.csv and the report show)."""
    spec = load_spec(TOPOLOGIES[0].parent / "two-node.yaml")
    empty = dataclasses.replace(spec, nodes=tuple(dataclasses.replace(n, pods=())
                                                  for n in spec.nodes))
    assert Needs(pods_on_a_node=1).unmet(empty) == [
        "needs a node with at least 1 pods, the most on one node is 0"]
    none = dataclasses.replace(spec, nodes=())
    assert Needs(pods_on_a_node=1).unmet(none) == [
        "needs a node with at least 1 pods, the most on one node is 0"]
    flannel = dataclasses.replace(spec, pod_network="flannel-vxlan")
    assert Needs(pod_networks=("kubenet", "calico")).unmet(flannel) == [
        "needs the pod network kubenet or calico, the topology has flannel-vxlan"]
    assert Needs(pod_networks=("kubenet",), why_pod_networks="its rule").unmet(flannel) == [
        "needs the pod network kubenet (its rule), the topology has flannel-vxlan"]
    assert Needs(router_routes=True).unmet(flannel) == [
        "needs a pod network whose pod routes are the router's (one per node, as kubenet's "
        "cloud gateway); flannel-vxlan puts none there"]
    assert Needs(pods=9, router_routes=True).reason(flannel) == (
        "not applicable to topology two-node: needs at least 9 pods, the topology has 4; "
        "needs a pod network whose pod routes are the router's (one per node, as kubenet's "
        "cloud gateway); flannel-vxlan puts none there")
