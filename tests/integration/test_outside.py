"""Traffic from outside on a running cluster (topologies/outside.yaml, up once for this
module): each path from the external host (node ports, the load balancer, the ingress
controller, the hostPort), the health-check node ports, and the load balancer taking a
node out when it leaves the network and back when it returns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from testbed.cluster import Cluster
from testbed.model.load import load_spec
from testbed.model.svc.outside import LB_HOST

from .conftest import TOPOLOGIES

CLIENT = "internet-client"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(load_spec(TOPOLOGIES / "outside.yaml")) as c:
        yield c


def get(c: Cluster, url: str, host: str = "", where: str = CLIENT) -> tuple[str, str]:
    """(HTTP status or curl's failure, body) of one request from the external host."""
    argv = ["curl", "-s", "-m", "2", "-w", "\n%{http_code}", url]
    if host:
        argv += ["-H", f"Host: {host}"]
    res = c.exec_node(where, argv)
    body, _, code = res.stdout.rpartition("\n")
    return (code if res.ok else f"curl {res.returncode}"), body


def node_ip(c: Cluster, node: str) -> str:
    return c.endpoint_ip(node)


def test_external_host_and_load_balancer_are_up(cluster: Cluster) -> None:
    assert cluster.endpoint_ip(CLIENT) == "198.51.100.10"
    assert cluster.endpoint_ip(LB_HOST) == "203.0.113.10"
    up = cluster.outside.up_now()
    assert up["default.web-cluster.80"] == {"node-1", "node-2", "node-3"}
    assert up["default.web-local.80"] == {"node-1", "node-2"}  # node-3 runs no web pod


def test_node_ports_from_outside(cluster: Cluster) -> None:
    for node in cluster.node_names:
        assert get(cluster, f"http://{node_ip(cluster, node)}:30080/")[0] == "200"
        assert get(cluster, f"http://{node_ip(cluster, node)}:80/")[0] == "curl 7"  # refused
    assert get(cluster, f"http://{node_ip(cluster, 'node-1')}:30081/")[0] == "200"
    assert get(cluster, f"http://{node_ip(cluster, 'node-3')}:30081/")[0] == "curl 28"  # drop


def test_load_balancer_addresses_answer(cluster: Cluster) -> None:
    for name in ("web-cluster", "web-local"):
        ip = cluster.services.service(name).load_balancer_ip
        assert get(cluster, f"http://{ip}/")[0] == "200"


def test_health_check_node_port(cluster: Cluster) -> None:
    port = cluster.services.service("web-local").health_check_node_port
    for node, code, local in (("node-1", "200", 1), ("node-3", "503", 0)):
        status, body = get(cluster, f"http://{node_ip(cluster, node)}:{port}/healthz",
                           where=LB_HOST)
        assert status == code and json.loads(body)["localEndpoints"] == local
    status, body = get(cluster, f"http://{node_ip(cluster, 'node-3')}:10256/healthz",
                       where=LB_HOST)
    assert status == "200" and json.loads(body)["nodeHealthy"] is True


def test_ingress_routes_by_host_and_path(cluster: Cluster) -> None:
    ip = cluster.services.service("ingress-nginx/ingress-nginx-controller").load_balancer_ip
    log = cluster.records.subdir("containers") / "cart-1_web.log"
    before = log.read_text().count("GET /cart/x")
    assert get(cluster, f"http://{ip}/cart/x", "shop.example")[0] == "404"  # cart-1's own
    assert log.read_text().count("GET /cart/x") == before + 1
    assert get(cluster, f"http://{ip}/", "shop.example")[0] == "200"  # a web pod
    status, body = get(cluster, f"http://{ip}/cart", "other.example")
    assert (status, body.strip()) == ("404", "default backend - 404")


def test_host_port_only_on_its_node(cluster: Cluster) -> None:
    assert get(cluster, f"http://{node_ip(cluster, 'node-3')}:8088/")[0] == "200"
    assert get(cluster, f"http://{node_ip(cluster, 'node-1')}:8088/")[0] == "curl 7"
    rules = cluster.exec_node("node-3", ["iptables-save", "-t", "nat"]).stdout
    assert "CNI-HOSTPORT-DNAT" in rules and "--dport 8088 -j DNAT" in rules


def test_a_node_off_the_network_is_taken_out_and_back(cluster: Cluster) -> None:
    cluster.set_uplink("node-2", False)
    try:
        deadline = time.monotonic() + 15
        while "node-2" in cluster.outside.up_now()["default.web-cluster.80"]:
            assert time.monotonic() < deadline, "the load balancer kept node-2"
            time.sleep(0.2)
        assert get(cluster, f"http://{node_ip(cluster, 'node-2')}:30080/")[0] != "200"
    finally:
        cluster.set_uplink("node-2", True)
    assert cluster.outside.wait_checks()
    assert "node-2" in cluster.outside.up_now()["default.web-cluster.80"]
    assert get(cluster, f"http://{node_ip(cluster, 'node-2')}:30080/")[0] == "200"

