"""The Kubernetes side of topology files: labels, readiness probes, services, the service
CIDR and kube-proxy's mode. Parsing, defaults, round trips and every refusal."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
import yaml

from testbed.errors import SpecError
from testbed.model.load import parse_spec
from testbed.model.load.services import spec_warnings
from testbed.model.spec import ReadinessProbe, ServicePortSpec

SRC = "svc.yaml"

# The example, as a user would write it (pasted Kubernetes field names inside).
ARTICLE_YAML = """\
name: services
cluster_cidr: 10.0.0.0/14
service_cidr: 10.3.240.0/20
kube_proxy_mode: iptables
nodes:
  - name: node-1
    pods:
      - name: server-1
        labels: {app: service-test}
        readinessProbe: {tcpSocket: {port: 8080}}
        containers:
          - name: web
            command: python3 -m http.server 8080
  - name: node-2
    pods:
      - name: server-2
        labels: {app: service-test, tier: web}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
          failureThreshold: 1
      - name: client
services:
  - name: service-test
    namespace: default
    selector: {app: service-test}
    type: ClusterIP
    clusterIP: 10.3.241.152
    sessionAffinity: None
    ports:
      - {port: 80, targetPort: 8080, protocol: TCP}
  - name: web-np
    selector: {tier: web}
    type: NodePort
    externalTrafficPolicy: Local
    ports:
      - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
      - {name: dns, port: 53, protocol: UDP}
"""


def article() -> dict[str, Any]:
    return yaml.safe_load(ARTICLE_YAML)


def test_article_example_parses() -> None:
    spec = parse_spec(article(), SRC)
    assert spec.service_cidr == IPv4Network("10.3.240.0/20")
    assert spec.kube_proxy_mode == "iptables"
    server1 = spec.nodes[0].pods[0]
    assert server1.labels == (("app", "service-test"),)
    assert server1.readiness == ReadinessProbe(port=8080)
    server2 = spec.nodes[1].pods[0]
    assert server2.readiness == ReadinessProbe(port=8080, path="/healthz", period_s=2,
                                               failures=1)
    test, np = spec.services
    assert test.key == "default/service-test"
    assert test.cluster_ip == IPv4Address("10.3.241.152")
    assert test.ports == (ServicePortSpec(port=80, target_port=8080),)
    assert np.type == "NodePort" and np.external_traffic_policy == "Local"
    assert np.ports[0].node_port == 30080 and np.ports[1].node_port is None
    assert np.ports[1].protocol == "UDP" and np.ports[1].target_port == 53
    # selectors: service-test picks both servers, web-np only the one labelled tier=web
    picked = [p.name for _, p in spec.pods if p.matches(test.selector)]
    assert picked == ["server-1", "server-2"]
    assert [p.name for _, p in spec.pods if p.matches(np.selector)] == ["server-2"]
    assert spec_warnings(spec) == []


def test_defaults_without_services() -> None:
    spec = parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "nodes": [{"name": "n"}]})
    assert spec.service_cidr == IPv4Network("10.3.240.0/20")
    assert spec.kube_proxy_mode == "iptables"
    assert spec.services == ()


def test_round_trip_with_services() -> None:
    spec = parse_spec(article(), SRC)
    again = parse_spec(spec.to_dict())
    assert again == dataclasses.replace(spec, source="")
    assert again.to_dict() == spec.to_dict()
    assert spec.to_dict()["nodes"][0]["pods"][0]["labels"] == {"app": "service-test"}


def test_selector_matching_nothing_is_a_warning_not_an_error() -> None:
    data = article()
    data["services"][0]["selector"] = {"app": "nobody"}
    spec = parse_spec(data, SRC)
    (warning,) = spec_warnings(spec)
    assert "default/service-test" in warning and "matches no pod" in warning


def test_service_range_inside_cluster_cidr_is_fine_when_no_node_reaches_it() -> None:
    # The article's GKE layout: 10.3.240.0/20 is the tail of 10.0.0.0/14.
    parse_spec(article(), SRC)


def edit(path: str, value: Any) -> dict[str, Any]:
    """The article document with one field (a dotted path, list indexes as numbers) set;
    the value `DELETE` removes it."""
    data = copy.deepcopy(article())
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return data


DELETE = object()
POD = "nodes.0.pods.0"
SVC = "services.0"

INVALID: list[tuple[str, Any, str, str]] = [
    ("ipvs", edit("kube_proxy_mode", "ipvs"), "kube_proxy_mode", "lack"),
    ("mode-unknown", edit("kube_proxy_mode", "ebpf"), "kube_proxy_mode", "is not one of"),
    ("service-cidr-bad", edit("service_cidr", "10.3.240.0/33"), "service_cidr",
     "not a valid network"),
    ("service-cidr-overlaps-underlay", edit("service_cidr", "10.100.0.0/16"), "service_cidr",
     "overlaps underlay"),
    ("service-cidr-overlaps-a-node", edit("service_cidr", "10.0.1.0/24"), "service_cidr",
     "overlaps the pod CIDR 10.0.1.0/24 of node node-2"),
    ("service-cidr-too-small", edit("service_cidr", "10.3.240.0/30"), "service_cidr",
     "too small"),
    ("labels-not-mapping", edit(f"{POD}.labels", ["app"]), "nodes[0].pods[0].labels",
     "must be a mapping"),
    ("label-key-bad", edit(f"{POD}.labels", {"-bad": "x"}), "nodes[0].pods[0].labels.-bad",
     "is not a label key"),
    ("label-value-not-string", edit(f"{POD}.labels", {"app": 5}), "nodes[0].pods[0].labels.app",
     "is not a label value"),
    ("label-value-too-long", edit(f"{POD}.labels", {"app": "a" * 64}),
     "nodes[0].pods[0].labels.app", "is not a label value"),
    ("probe-none", edit(f"{POD}.readinessProbe", {"periodSeconds": 3}),
     "nodes[0].pods[0].readinessProbe", "exactly one of tcpSocket and httpGet"),
    ("probe-exec", edit(f"{POD}.readinessProbe", {"exec": {"command": ["true"]}}),
     "nodes[0].pods[0].readinessProbe.exec", "unknown key"),
    ("probe-port-range", edit(f"{POD}.readinessProbe", {"tcpSocket": {"port": 70000}}),
     "nodes[0].pods[0].readinessProbe.tcpSocket.port", "out of range"),
    ("probe-path", edit(f"{POD}.readinessProbe", {"httpGet": {"port": 1, "path": "x y"}}),
     "nodes[0].pods[0].readinessProbe.httpGet.path", "is not a URL path"),
    ("services-not-list", edit("services", {"a": 1}), "services", "must be a list"),
    ("service-no-selector", edit(f"{SVC}.selector", DELETE), "services[0].selector",
     "is required"),
    ("service-empty-selector", edit(f"{SVC}.selector", {}), "services[0].selector",
     "at least one label"),
    ("service-name", edit(f"{SVC}.name", "Service_Test"), "services[0].name",
     "must be a DNS label"),
    ("service-namespace", edit(f"{SVC}.namespace", "-x"), "services[0].namespace",
     "must be a DNS label"),
    ("service-type", edit(f"{SVC}.type", "ExternalName"), "services[0].type", "is not one of"),
    ("affinity", edit(f"{SVC}.sessionAffinity", "Cookie"), "services[0].sessionAffinity",
     "is not one of"),
    ("policy-on-clusterip", edit(f"{SVC}.externalTrafficPolicy", "Local"),
     "services[0].externalTrafficPolicy", "only be set for NodePort"),
    ("cluster-ip-outside", edit(f"{SVC}.clusterIP", "10.0.0.5"), "services[0].clusterIP",
     "not a usable address of service_cidr"),
    ("cluster-ip-network-address", edit(f"{SVC}.clusterIP", "10.3.240.0"),
     "services[0].clusterIP", "the network address"),
    ("cluster-ip-garbage", edit(f"{SVC}.clusterIP", "ten"), "services[0].clusterIP",
     "is not an IPv4 address"),
    ("no-ports", edit(f"{SVC}.ports", []), "services[0].ports", "at least one port"),
    ("port-range", edit(f"{SVC}.ports", [{"port": 0}]), "services[0].ports[0].port",
     "out of range"),
    ("target-port-named", edit(f"{SVC}.ports", [{"port": 80, "targetPort": "http"}]),
     "services[0].ports[0].targetPort", "named target ports"),
    ("protocol", edit(f"{SVC}.ports", [{"port": 80, "protocol": "SCTP"}]),
     "services[0].ports[0].protocol", "is not one of TCP, UDP"),
    ("node-port-on-clusterip", edit(f"{SVC}.ports", [{"port": 80, "nodePort": 30001}]),
     "services[0].ports[0].nodePort", "only be set for NodePort"),
    ("node-port-range", edit("services.1.ports.0.nodePort", 8080),
     "services[1].ports[0].nodePort", "out of range 30000..32767"),
    ("unnamed-ports", edit(f"{SVC}.ports", [{"port": 80}, {"port": 81}]), "services[0].ports",
     "distinct name"),
    ("same-port-twice", edit(f"{SVC}.ports", [{"port": 80, "name": "a"},
                                              {"port": 80, "name": "b"}]),
     "services[0].ports", "same port and protocol twice"),
    ("duplicate-service", edit("services.1.name", "service-test"), "services[1].name",
     "duplicate service default/service-test"),
    ("unknown-service-key", edit(f"{SVC}.clusterIp", "10.3.241.1"), "services[0].clusterIp",
     "did you mean 'clusterIP'"),
]


@pytest.mark.parametrize(("data", "field", "fragment"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_services_are_refused(data: Any, field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data, SRC)
    assert info.value.field == field
    assert fragment in info.value.problem
    assert "\n" not in str(info.value)


def test_same_cluster_ip_twice_is_refused() -> None:
    data = article()
    data["services"][1]["clusterIP"] = "10.3.241.152"
    with pytest.raises(SpecError, match="also the cluster IP of default/service-test"):
        parse_spec(data, SRC)


def test_same_node_port_twice_is_refused_but_other_protocol_is_fine() -> None:
    data = article()
    data["services"].append({"name": "b", "selector": {"app": "x"}, "type": "NodePort",
                             "ports": [{"port": 1, "nodePort": 30080}]})
    with pytest.raises(SpecError, match="30080/TCP is also a node port of default/web-np"):
        parse_spec(data, SRC)
    data["services"][-1]["ports"][0]["protocol"] = "UDP"
    parse_spec(data, SRC)


def test_same_name_in_another_namespace_is_another_service() -> None:
    data = article()
    data["services"][1]["name"] = "service-test"
    data["services"][1]["namespace"] = "other"
    assert [s.key for s in parse_spec(data, SRC).services] == [
        "default/service-test", "other/service-test"]


def test_without_services_the_range_is_unchecked_and_round_trips() -> None:
    # A part-one topology whose node owns the default service range still loads: with
    # no services there is no service network (and no kube-proxy, no DNS).
    data = {"name": "x", "cluster_cidr": "10.0.0.0/14",
            "nodes": [{"name": "n", "pod_cidr": "10.3.0.0/16"}]}
    spec = parse_spec(data, SRC)
    assert parse_spec(spec.to_dict()) == dataclasses.replace(spec, source="")
    data["services"] = article()["services"]
    with pytest.raises(SpecError, match="overlaps the pod CIDR 10.3.0.0/16 of node n"):
        parse_spec(data, SRC)


@pytest.mark.parametrize(("ip", "why"), [("10.3.240.1", "API server"),
                                         ("10.3.240.10", "cluster DNS"),
                                         ("10.3.255.255", "broadcast")])
def test_reserved_cluster_ips_are_refused(ip: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        parse_spec(edit(f"{SVC}.clusterIP", ip), SRC)


def test_the_dns_service_and_pod_names_are_the_testbeds() -> None:
    data = edit(f"{SVC}.name", "kube-dns")
    data["services"][0]["namespace"] = "kube-system"
    with pytest.raises(SpecError, match="the cluster DNS service"):
        parse_spec(data, SRC)
    with pytest.raises(SpecError, match="DNS server's pod"):
        parse_spec(edit(f"{POD}.name", "kube-dns"), SRC)
