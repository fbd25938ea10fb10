"""Underlays of several subnets (racks) joined by the router: parsing, refusals, the
address plan, and what each pod network does with a node on another rack."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.errors import SpecError
from testbed.model.load import load_spec, parse_spec
from testbed.model.podnet import Route, pod_network

RACKS = Path(__file__).resolve().parents[2] / "topologies" / "racks.yaml"


def racks() -> dict[str, Any]:
    return yaml.safe_load(RACKS.read_text())


def test_racks_parse_plan_and_round_trip() -> None:
    spec = load_spec(RACKS)
    assert [(r.name, r.underlay) for r in spec.racks] == [
        ("rack-a", IPv4Network("10.100.0.0/24")), ("rack-b", IPv4Network("10.100.1.0/24"))]
    assert spec.underlays == [IPv4Network("10.100.0.0/24"), IPv4Network("10.100.1.0/24")]
    assert parse_spec(spec.to_dict()) == dataclasses.replace(spec, source="")
    p = pod_network(spec.pod_network).plan(spec)
    n1, n2 = p.nodes
    assert (n1.rack, n1.underlay_ip) == ("rack-a", IPv4Interface("10.100.0.2/24"))
    assert (n2.rack, n2.underlay_ip) == ("rack-b", IPv4Interface("10.100.1.2/24"))
    assert p.router_for(n1) == IPv4Interface("10.100.0.1/24")
    assert p.router_for(n2) == IPv4Interface("10.100.1.1/24")
    assert not p.same_segment(n1, n2)
    assert [r.router_ip for r in p.racks] == [IPv4Interface("10.100.0.1/24"),
                                              IPv4Interface("10.100.1.1/24")]


def test_each_pod_network_across_racks() -> None:
    spec = load_spec(RACKS)
    for mode in ("kubenet", "flannel-host-gw", "flannel-vxlan", "kindnet"):
        network = pod_network(mode)
        p = network.plan(spec)
        n1, n2 = p.nodes
        setup = network.node_setup(spec, p, n2, 1500)
        assert setup.default_via == p.router_for(n2).ip  # its own rack's router
        if mode in ("flannel-host-gw", "kindnet"):  # a next hop not on a link: refused
            assert setup.routes == () and len(setup.notes) == 1
            assert "10.0.0.0/24 via 10.100.0.2: network is unreachable" in setup.notes[0]
        else:
            assert setup.notes == ()
    assert pod_network("kubenet").router_routes(pod_network("kubenet").plan(spec)) == [
        Route(IPv4Network("10.0.0.0/24"), IPv4Interface("10.100.0.2/24").ip),
        Route(IPv4Network("10.0.1.0/24"), IPv4Interface("10.100.1.2/24").ip)]


def test_host_gw_on_one_rack_routes_as_without_racks() -> None:
    d = racks()
    d["nodes"].append({"name": "node-3", "rack": "rack-a", "pods": 1})
    spec = parse_spec(d)
    network = pod_network("flannel-host-gw")
    p = network.plan(spec)
    setup = network.node_setup(spec, p, p.nodes[0], 1500)
    assert [str(r.dst) for r in setup.routes] == ["10.0.2.0/24"]  # node-3, same rack
    assert len(setup.notes) == 1  # node-2, behind the router


def _edit(change: Any) -> dict[str, Any]:
    d = copy.deepcopy(racks())
    change(d)
    return d


@pytest.mark.parametrize(("change", "where", "words"), [
    (lambda d: d.update(underlay="10.100.0.0/24"), "racks", "either underlay"),
    (lambda d: d["nodes"][0].pop("rack"), "nodes[0].rack", "is required with racks"),
    (lambda d: d["nodes"][0].update(rack="rack-c"), "nodes[0].rack", "not one of"),
    (lambda d: d["racks"].append({"name": "rack-a", "underlay": "10.100.2.0/24"}),
     "racks[2].name", "duplicate rack"),
    (lambda d: d["racks"].append({"name": "rack-c", "underlay": "10.100.1.128/25"}),
     "racks[2].underlay", "overlaps rack rack-b"),
    (lambda d: d["racks"][0].update(underlay="10.100.0.0/31"), "racks[0].underlay",
     "holds 0 addresses"),
    (lambda d: d["racks"][1].update(underlay="10.0.0.0/24"), "racks[1].underlay",
     "overlaps cluster_cidr"),
    (lambda d: (d.pop("racks"), [n.pop("rack") for n in d["nodes"][1:]]),
     "nodes[0].rack", "needs a `racks:` list"),
])
def test_refusals(change: Any, where: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_edit(change), "racks.yaml")
    assert info.value.field == where, str(info.value)
    assert words in str(info.value)
