"""Traffic from outside the cluster, as the control plane and a cloud provider set it up.
Pure.

    load balancer      one host (`cloud-lb`) on `load_balancer_network` behind the router,
                       owning every LoadBalancer service's address (from the network's
                       100th address on, in file order, as the cloud controller assigns
                       them); HAProxy there (testbed.model.svc.haproxy)
    health checks      kube-proxy answers a Local service's health-check node port with its
                       local endpoints (`service_health`), and every node's proxy health on
                       10256 (`proxier_health`), which a Cluster service's checks use
    ingress            an `ingress-nginx` pod and its LoadBalancer service
                       (ingress-nginx/ingress-nginx-controller, externalTrafficPolicy Local,
                       as ingress-nginx's cloud manifest has it); nginx's configuration is
                       testbed.model.svc.ingress
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

from testbed.model.spec import (
    LOAD_BALANCER,
    LOCAL,
    TCP,
    ServicePortSpec,
    ServiceSpec,
)

NODE_PORT_RANGE = (30000, 32767)  # the API server's default --service-node-port-range
HOST_INDEX = 9  # a host behind the router takes its network's tenth address, the router .1
LB_HOST = "cloud-lb"
LB_IP_FIRST = 100  # LoadBalancer addresses: the load balancer network's 100th address on
PROXY_HEALTH_PORT = 10256  # kube-proxy's --healthz-bind-address port
CONTROLLER_NAMESPACE = "ingress-nginx"
CONTROLLER_SERVICE = "ingress-nginx-controller"
CONTROLLER_POD = "ingress-nginx"
CONTROLLER_LABELS = (("app.kubernetes.io/component", "controller"),
                     ("app.kubernetes.io/name", "ingress-nginx"))
CONTROLLER_HEALTH_PORT = 10254  # the controller's /healthz (its readiness probe)
HTTP_PORT = 80


class AllocationError(ValueError):
    """A range to allocate from is full."""


def lb_host_ip(network: IPv4Network) -> IPv4Address:
    return network.network_address + HOST_INDEX + 1


def controller_service() -> ServiceSpec:
    """ingress-nginx/ingress-nginx-controller as the controller's cloud manifest makes it:
    a LoadBalancer with externalTrafficPolicy Local, HTTP on 80."""
    return ServiceSpec(name=CONTROLLER_SERVICE, namespace=CONTROLLER_NAMESPACE,
                       selector=CONTROLLER_LABELS, type=LOAD_BALANCER,
                       external_traffic_policy=LOCAL,
                       ports=(ServicePortSpec(HTTP_PORT, HTTP_PORT, TCP, "http"),))


def allocate_lb_ips(services: Sequence[ServiceSpec],
                    network: IPv4Network) -> dict[str, IPv4Address]:
    """Each LoadBalancer service's address (`ns/name` -> IP): its `loadBalancerIP`, or the
    next free one from the network's LB_IP_FIRST-th address, in order."""
    taken = {s.load_balancer_ip for s in services if s.load_balancer_ip}
    out: dict[str, IPv4Address] = {}
    candidate = network.network_address + LB_IP_FIRST
    for svc in services:
        if svc.type != LOAD_BALANCER:
            continue
        if svc.load_balancer_ip is not None:
            out[svc.key] = svc.load_balancer_ip
            continue
        while candidate in taken:
            candidate += 1
        if candidate >= network.broadcast_address:
            raise AllocationError(f"load_balancer_network {network} has no address left "
                                  f"for {svc.key}")
        out[svc.key] = candidate
        taken.add(candidate)
    return out


def needs_health_check(svc: ServiceSpec) -> bool:
    """A health-check node port exists for LoadBalancer services with the Local policy
    (the API server allocates one; kube-proxy serves it)."""
    return svc.type == LOAD_BALANCER and svc.external_traffic_policy == LOCAL


def service_health(namespace: str, name: str, local_endpoints: int,
                   proxy_healthy: bool = True) -> tuple[int, dict[str, str], str]:
    """kube-proxy's answer on a health-check node port (pkg/proxy/healthcheck,
    service_health.go, hcHandler.ServeHTTP): 200 while the node has a ready local endpoint
    and the proxy is healthy, else 503; the count as a header and in the JSON body."""
    headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff",
               "X-Load-Balancing-Endpoint-Weight": str(local_endpoints)}
    body = json.dumps({"service": {"namespace": namespace, "name": name},
                       "localEndpoints": local_endpoints,
                       "serviceProxyHealthy": proxy_healthy}, indent="\t")
    code = 200 if local_endpoints and proxy_healthy else 503
    return code, headers, body


def proxier_health(last_updated: str, now: str, healthy: bool) -> tuple[int, dict[str, str], str]:
    """kube-proxy's own health on 10256 /healthz (proxier_health.go, healthzHandler):
    200 while its rules are recent, 503 when a sync is overdue."""
    headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
    body = json.dumps({"lastUpdated": last_updated, "currentTime": now,
                       "nodeHealthy": healthy})
    return (200 if healthy else 503), headers, body
