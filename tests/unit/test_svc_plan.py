"""Service resolution: cluster IPs and node ports allocated deterministically, the DNS
service, endpoints from labels and readiness, and kube-proxy's view."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv4Network

import yaml

from testbed.model.load import parse_spec
from testbed.model.svc import plan
from testbed.model.svc.plan import Endpoint, PodState, ServicePort

from .test_spec_services import ARTICLE_YAML


def spec(services_extra: list | None = None):  # noqa: ANN201 - a ClusterSpec
    data = yaml.safe_load(ARTICLE_YAML)
    data["services"] += copy.deepcopy(services_extra or [])
    return parse_spec(data, "svc.yaml")


def test_dns_first_at_the_tenth_address_then_the_services() -> None:
    resolved = plan.resolve(spec())
    assert [s.key for s in resolved] == ["kube-system/kube-dns", "default/service-test",
                                         "default/web-np"]
    dns = resolved[0]
    assert dns.cluster_ip == IPv4Address("10.3.240.10")
    assert [(p.port, p.protocol, p.name) for p in dns.ports] == [(53, "UDP", "dns"),
                                                               (53, "TCP", "dns-tcp")]
    assert resolved[1].cluster_ip == IPv4Address("10.3.241.152")  # given in the file


def test_allocation_is_deterministic_inside_the_range_and_avoids_reserved() -> None:
    a, b = plan.resolve(spec()), plan.resolve(spec())
    assert a == b
    np = a[2]
    net = IPv4Network("10.3.240.0/20")
    assert np.cluster_ip in net and np.cluster_ip not in plan.reserved_ips(net)
    http, dns = np.ports
    assert http.node_port == 30080  # given
    assert 30000 <= dns.node_port <= 32767 and dns.node_port != 30080
    # adding a service elsewhere in the file does not move the others
    more = plan.resolve(spec([{"name": "extra", "selector": {"app": "x"},
                               "ports": [{"port": 1}]}]))
    assert more[:3] == a


def test_allocation_probes_past_taken_addresses() -> None:
    # a /28 has 16 addresses: 4 reserved (network, .1, .10, broadcast); fill the rest
    data = yaml.safe_load(ARTICLE_YAML)
    data["service_cidr"] = "10.3.240.0/28"
    data["services"] = [{"name": f"s{i}", "selector": {"app": "x"}, "ports": [{"port": 80}]}
                        for i in range(12)]
    resolved = plan.resolve(parse_spec(data))
    ips = [s.cluster_ip for s in resolved]
    assert len(set(ips)) == 13
    data["services"].append({"name": "one-too-many", "selector": {"app": "x"},
                             "ports": [{"port": 80}]})
    try:
        plan.resolve(parse_spec(data))
    except plan.AllocationError as exc:
        assert "no address left for default/one-too-many" in str(exc)
    else:
        raise AssertionError("a full service CIDR must be an error")


def test_no_services_no_service_network() -> None:
    s = parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14", "nodes": [{"name": "n"}]})
    assert plan.resolve(s) == ()


PODS = [PodState("server-1", "node-1", "10.0.0.2", (("app", "service-test"),), True),
        PodState("server-2", "node-2", "10.0.1.2",
                 (("app", "service-test"), ("tier", "web")), False),
        PodState("client", "node-2", "10.0.1.3", (), True),
        PodState("kube-dns", "node-1", "10.0.0.3", plan.DNS_LABELS, True)]


def test_endpoints_from_labels_with_readiness() -> None:
    view = plan.proxy_view(plan.resolve(spec()), PODS)
    by_key = {(s.key, s.protocol): s for s in view}
    test = by_key[("default/service-test", "TCP")]
    assert test.endpoints == (Endpoint("10.0.0.2", 8080, "node-1", True, "server-1"),
                              Endpoint("10.0.1.2", 8080, "node-2", False, "server-2"))
    assert [e.ip for e in test.ready_endpoints()] == ["10.0.0.2"]
    web = by_key[("default/web-np:http", "TCP")]
    assert web.external_local and web.node_port == 30080
    assert [e.pod for e in web.endpoints] == ["server-2"]
    dns_udp = by_key[("kube-system/kube-dns:dns", "UDP")]
    assert dns_udp.cluster_ip == "10.3.240.10" and dns_udp.endpoints[0].pod == "kube-dns"
    assert [s.key for s in view] == sorted(s.key for s in view)


def test_service_port_round_trips_through_a_dict() -> None:
    for s in plan.proxy_view(plan.resolve(spec()), PODS):
        assert ServicePort.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_preflight_names_the_missing_service_tools(monkeypatch) -> None:  # noqa: ANN001
    import pytest

    from testbed.cluster import preflight
    from testbed.errors import MissingDependencyError

    monkeypatch.setattr(preflight.shutil, "which",
                        lambda tool: None if tool in ("dnsmasq", "nft") else f"/bin/{tool}")
    with pytest.raises(MissingDependencyError, match="services need dnsmasq, nft: install "
                       "the Debian package.s. dnsmasq-base nftables"):
        preflight.check_features(
            parse_spec({**yaml.safe_load(ARTICLE_YAML), "kube_proxy_mode": "nftables"}))
    preflight.check_features(parse_spec({"name": "x", "cluster_cidr": "10.0.0.0/14",
                                         "nodes": [{"name": "n"}]}))  # no services: fine
