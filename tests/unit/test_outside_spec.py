"""Traffic from outside in topology files: external hosts, the load balancer's network
and addresses, health-check node ports, ingresses and host ports. Parsing, allocation,
round trips and every refusal."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.errors import SpecError
from testbed.model.load import load_spec, parse_spec
from testbed.model.spec import ContainerPort, IngressPath
from testbed.model.svc import plan
from testbed.model.svc.outside import CONTROLLER_POD, CONTROLLER_SERVICE, NODE_PORT_RANGE

TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "outside.yaml"


def outside() -> dict[str, Any]:
    return yaml.safe_load(TOPOLOGY.read_text())


def test_the_outside_topology_parses() -> None:
    spec = load_spec(TOPOLOGY)
    assert [(h.name, h.network) for h in spec.external_hosts] == [
        ("internet-client", IPv4Network("198.51.100.0/24"))]
    assert spec.load_balancer_network == IPv4Network("203.0.113.0/24")
    hp = next(p for _, p in spec.pods if p.name == "hostport")
    assert hp.host_ports == [ContainerPort(8080, 8088, "TCP")]
    (shop,) = spec.ingresses
    assert shop.rules[0].host == "shop.example"
    assert shop.rules[0].paths[0] == IngressPath("/cart", "cart", 80, "Prefix")


def test_round_trip() -> None:
    spec = load_spec(TOPOLOGY)
    assert parse_spec(spec.to_dict()) == dataclasses.replace(spec, source="")
    # with an ingress but no LoadBalancer service of its own, the network is kept too
    d = outside()
    d["load_balancer_network"] = "192.0.2.0/24"
    for svc in d["services"]:
        if svc.get("type") == "LoadBalancer":
            svc["type"] = "NodePort"
    spec = parse_spec(d)
    assert parse_spec(spec.to_dict()).load_balancer_network == IPv4Network("192.0.2.0/24")


def test_allocation_lb_addresses_health_ports_and_the_controller() -> None:
    services = {s.key: s for s in plan.resolve(load_spec(TOPOLOGY))}
    assert services["default/web-cluster"].load_balancer_ip == IPv4Address("203.0.113.100")
    assert services["default/web-local"].load_balancer_ip == IPv4Address("203.0.113.101")
    ctrl = services[f"ingress-nginx/{CONTROLLER_SERVICE}"]
    assert ctrl.load_balancer_ip == IPv4Address("203.0.113.102")
    assert ctrl.external_traffic_policy == "Local" and ctrl.health_check_node_port
    # health-check node ports only for LoadBalancer + Local, in range, not a node port
    assert services["default/web-cluster"].health_check_node_port is None
    hc = services["default/web-local"].health_check_node_port
    assert hc is not None and NODE_PORT_RANGE[0] <= hc <= NODE_PORT_RANGE[1]
    node_ports = {p.node_port for s in services.values() for p in s.ports}
    assert hc not in node_ports and ctrl.health_check_node_port not in node_ports
    assert services["default/cart"].load_balancer_ip is None
    # the same addresses on every resolve (a rerun gets the same picture)
    assert plan.resolve(load_spec(TOPOLOGY)) == tuple(services.values())


def test_proxy_view_carries_lb_address_and_health_port() -> None:
    spec = load_spec(TOPOLOGY)
    view = {sp.key: sp for sp in plan.proxy_view(plan.resolve(spec), [])}
    local = view["default/web-local"]
    assert local.load_balancer_ips == ("203.0.113.101",) and local.external_local
    assert local.health_check_node_port
    assert view["default/web-cluster"].health_check_node_port == 0


def test_given_lb_ip_and_health_port_are_kept() -> None:
    d = outside()
    d["services"][1]["loadBalancerIP"] = "203.0.113.150"
    d["services"][1]["healthCheckNodePort"] = 32000
    services = {s.key: s for s in plan.resolve(parse_spec(d))}
    local = services["default/web-local"]
    assert local.load_balancer_ip == IPv4Address("203.0.113.150")
    assert local.health_check_node_port == 32000


def _edit(change: Any) -> dict[str, Any]:
    d = copy.deepcopy(outside())
    change(d)
    return d


REFUSALS = [
    (lambda d: d["external_hosts"].append({"name": "node-1", "network": "192.0.2.0/24"}),
     "external_hosts[1].name", "node node-1"),
    (lambda d: d["external_hosts"].append({"name": "x", "network": "10.100.0.0/25"}),
     "external_hosts[1].network", "overlaps underlay"),
    (lambda d: d["external_hosts"].append({"name": "x", "network": "203.0.113.0/25"}),
     "external_hosts[1].network", "overlaps load_balancer_network"),
    (lambda d: d["external_hosts"].append({"name": "x", "network": "192.0.2.0/29"}),
     "external_hosts[1].network", "too small"),
    (lambda d: d["external_hosts"].append({"name": "cloud-lb", "network": "192.0.2.0/24"}),
     "external_hosts", "cloud-lb"),
    (lambda d: d["services"][0].update(loadBalancerIP="203.0.113.5"),
     "services[0].loadBalancerIP", "not a service address"),
    (lambda d: d["services"][2].update(loadBalancerIP="203.0.113.200"),
     "services[2].loadBalancerIP", "only be set for LoadBalancer"),
    (lambda d: d["services"][0].update(healthCheckNodePort=32000),
     "services[0].healthCheckNodePort", "externalTrafficPolicy: Local"),
    (lambda d: d["services"][1].update(healthCheckNodePort=30080),
     "services[1].healthCheckNodePort", "also a node port"),
    (lambda d: d["ingresses"][0]["rules"][0]["paths"][0].update(service="nope"),
     "ingresses[0].rules[0].paths[0].service", "no service default/nope"),
    (lambda d: d["ingresses"][0]["rules"][0]["paths"][0].update(port=81),
     "ingresses[0].rules[0].paths[0].port", "has no TCP port 81"),
    (lambda d: d["ingresses"][0]["rules"][0]["paths"][0].update(pathType="Regex"),
     "ingresses[0].rules[0].paths[0].pathType", "not one of Prefix, Exact"),
    (lambda d: d["ingresses"][0]["rules"][0]["paths"][0].update(path="cart"),
     "ingresses[0].rules[0].paths[0].path", "not a URL path"),
    (lambda d: d["ingresses"][0]["rules"][0].update(host="*.example"),
     "ingresses[0].rules[0].host", "wildcards"),
    (lambda d: d["ingresses"].append(copy.deepcopy(d["ingresses"][0])),
     "ingresses[1].name", "duplicate ingress"),
    (lambda d: d["nodes"][0]["pods"][0].update(name=CONTROLLER_POD),
     "nodes[0].pods[0].name", "ingress controller"),
    (lambda d: d["nodes"][2]["pods"].append({"name": "hp2", "containers": [
        {"name": "c", "ports": [{"containerPort": 1, "hostPort": 8088}]}]}),
     "nodes[2].pods[1]", "also opened by pod hostport"),
    (lambda d: d["nodes"][2]["pods"][0]["containers"][0]["ports"][0].update(hostPort=30500),
     "nodes[2].pods[0]", "node-port range"),
    (lambda d: d["nodes"][2]["pods"][0]["containers"][0]["ports"][0].update(protocol="SCTP"),
     "nodes[2].pods[0].containers[0].ports[0].protocol", "not one of TCP, UDP"),
    (lambda d: d.update(load_balancer_network="10.100.0.0/24"),
     "load_balancer_network", "overlaps underlay"),
    (lambda d: d.update(load_balancer_network="203.0.113.0/26"),
     "load_balancer_network", "too small"),
    (lambda d: d.update(services=[], ingresses=d["ingresses"]),
     "ingresses", "need services"),
]


@pytest.mark.parametrize(("change", "where", "words"), REFUSALS)
def test_refusals(change: Any, where: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_edit(change), "outside.yaml")
    assert info.value.field == where, str(info.value)
    assert words in str(info.value)


def test_a_second_host_port_on_another_node_is_fine() -> None:
    d = _edit(lambda d: d["nodes"][0]["pods"].append({"name": "hp2", "containers": [
        {"name": "c", "ports": [{"containerPort": 1, "hostPort": 8088}]}]}))
    assert parse_spec(d).nodes[0].pods[-1].host_ports[0].host_port == 8088
