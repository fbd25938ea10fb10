"""The cloud load balancer's and the ingress controller's configurations, kube-proxy's
health-check answers and the portmap plugin's configuration (pure), with HAProxy and
nginx themselves checking the rendered files where they are installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from testbed.model.load import load_spec
from testbed.model.spec import ContainerPort
from testbed.model.svc import haproxy, ingress, plan
from testbed.model.svc.iptables import ProxyConfig, render
from testbed.model.svc.outside import PROXY_HEALTH_PORT, proxier_health, service_health
from testbed.model.svc.plan import PodState
from testbed.pods import cni

TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "outside.yaml"
NODES = [("node-1", "10.100.0.2"), ("node-2", "10.100.0.3"), ("node-3", "10.100.0.4")]


def resolved():  # noqa: ANN201 - (spec, services)
    spec = load_spec(TOPOLOGY)
    return spec, plan.resolve(spec)


def test_haproxy_one_backend_per_lb_port_checked_as_its_policy_says() -> None:
    _, services = resolved()
    by_name = {b.service: b for b in haproxy.backends(services)}
    assert set(by_name) == {"default/web-cluster", "default/web-local",
                            "ingress-nginx/ingress-nginx-controller"}
    local = next(s for s in services if s.name == "web-local")
    assert by_name["default/web-local"].check_port == local.health_check_node_port
    assert by_name["default/web-cluster"].check_port == PROXY_HEALTH_PORT
    cfg = haproxy.render(services, NODES, "/run/x.sock")
    block = cfg.split("\nbackend default.web-local.80")[1].split("\n\n")[0]
    assert "bind 203.0.113.101:80" in cfg
    assert "option httpchk GET /healthz" in block
    assert f"port {local.health_check_node_port}" in block
    for name, ip in NODES:
        assert f"    server {name} {ip}:30081" in block
    assert "retries 0" in cfg and "stats socket /run/x.sock" in cfg


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    _, services = resolved()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy.render(services, NODES, str(tmp_path / "s.sock")))
    res = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_parse_stat_keeps_servers_only() -> None:
    text = ("# pxname,svname,qcur,stot,status\nfe,FRONTEND,0,9,OPEN\n"
            "be,node-1,0,4,UP\nbe,node-2,0,5,DOWN\nbe,BACKEND,0,9,UP\n")
    rows = haproxy.parse_stat(text)
    assert [(r["svname"], r["stot"], r["status"]) for r in rows] == [
        ("node-1", "4", "UP"), ("node-2", "5", "DOWN")]
    assert haproxy.parse_stat("") == []


def test_ingress_routes_path_types_as_ingress_nginx_maps_them() -> None:
    spec, services = resolved()
    routes = {(r.host, r.location): r for r in ingress.routes(spec.ingresses, services)}
    cart = next(s for s in services if s.name == "cart")
    assert routes[("shop.example", "= /cart")].target == f"{cart.cluster_ip}:80"
    assert routes[("shop.example", "/cart/")].upstream == "default-cart-80"
    assert routes[("shop.example", "/")].upstream == "default-web-cluster-80"
    # the catch-all server answers with the default backend
    assert routes[("_", "/")].upstream == ingress.DEFAULT_BACKEND
    assert not routes[("_", "/")].target
    # no plain prefix location that would catch /cartoon
    assert ("shop.example", "/cart") not in routes


def test_ingress_exact_and_a_host_without_slash_gets_the_default_backend() -> None:
    import dataclasses

    from testbed.model.spec import IngressPath, IngressRule, IngressSpec
    spec, services = resolved()
    ing = IngressSpec("x", (IngressRule("a.example", (IngressPath("/only", "cart", 80,
                                                                  "Exact"),)),))
    routes = {(r.host, r.location): r for r in ingress.routes([ing], services)}
    assert ("a.example", "= /only") in routes and ("a.example", "/only/") not in routes
    assert routes[("a.example", "/")].upstream == ingress.DEFAULT_BACKEND
    assert dataclasses.asdict(ing)  # a plain value


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    spec, services = resolved()
    conf = tmp_path / "nginx.conf"
    conf.write_text(ingress.render(spec.ingresses, services, str(tmp_path)))
    res = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e",
                          str(tmp_path / "error.log")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_service_health_answers_as_kube_proxy() -> None:
    code, headers, body = service_health("default", "web", 2)
    assert code == 200 and headers["X-Load-Balancing-Endpoint-Weight"] == "2"
    assert json.loads(body) == {"service": {"namespace": "default", "name": "web"},
                                "localEndpoints": 2, "serviceProxyHealthy": True}
    assert service_health("default", "web", 0)[0] == 503
    assert service_health("default", "web", 3, proxy_healthy=False)[0] == 503
    code, _, body = proxier_health("a", "b", True)
    assert code == 200 and json.loads(body)["nodeHealthy"] is True
    assert proxier_health("a", "b", False)[0] == 503


def test_kube_proxy_renders_lb_address_and_health_port_for_local() -> None:
    spec, services = resolved()
    pods = [PodState("web-1", "node-1", "10.0.0.3", (("app", "web"),), True)]
    view = plan.proxy_view(services, pods)
    local = next(sp for sp in view if sp.name == "web-local")
    on_1 = render(view, ProxyConfig(node="node-1", cluster_cidr=str(spec.cluster_cidr)))
    on_3 = render(view, ProxyConfig(node="node-3", cluster_cidr=str(spec.cluster_cidr)))
    assert '"default/web-local loadbalancer IP" -m tcp -p tcp -d 203.0.113.101' in on_1
    hc = f"--dport {local.health_check_node_port} -j ACCEPT"
    assert hc in on_1 and hc in on_3
    # node-3 has no local endpoint: the node port's external traffic is dropped there
    assert '"default/web-local has no local endpoints"' in on_3
    assert '"default/web-local has no local endpoints"' not in on_1


def test_portmap_configuration_as_libcni_builds_it() -> None:
    mappings = cni.port_mappings([ContainerPort(8080, 8088), ContainerPort(53, None, "UDP")])
    assert mappings == ({"hostPort": 8088, "containerPort": 8080, "protocol": "tcp",
                         "hostIP": ""},)
    prev = cni.prev_result(IPv4Interface("10.0.2.3/24"), "10.0.2.1")
    config = cni.portmap_config("kubenet", mappings, prev)
    assert config["type"] == "portmap" and config["capabilities"] == {"portMappings": True}
    assert config["runtimeConfig"] == {"portMappings": list(mappings)}
    assert config["prevResult"]["ips"] == [{"version": "4", "address": "10.0.2.3/24",
                                            "gateway": "10.0.2.1"}]
    assert "prevResult" not in cni.portmap_config("kubenet", mappings, None)  # DEL
