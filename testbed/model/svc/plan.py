"""Services resolved as the API server and the endpoints controller would resolve them.
Pure.

    resolve(spec)          every service with its cluster IP and node ports filled in,
                           the cluster DNS service (kube-system/kube-dns) first
    endpoints_of(...)      a service port's endpoints: the selected pods' addresses and
                           target port, each with its node and readiness
    proxy_view(...)        every service port as kube-proxy sees it (`ServicePort`)

Allocation is deterministic, so a rerun gets the same addresses: a service's cluster IP
is a hash of `namespace/name` into the service CIDR, probing onward past taken addresses
(the API server picks at random; the testbed wants the same picture every run). The
first address (the API server's `kubernetes` service, not emulated) and the tenth (the
DNS service, as kubeadm and GKE place it: 10.3.240.10 in the article's range) are
reserved. Node ports are allocated the same way from 30000-32767.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.model.spec import (
    CLIENT_IP,
    CLUSTER_IP,
    LOCAL,
    TCP,
    UDP,
    ClusterSpec,
    ServicePortSpec,
    ServiceSpec,
)
from testbed.model.svc.outside import (
    NODE_PORT_RANGE,
    allocate_lb_ips,
    controller_service,
    needs_health_check,
)

DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_POD = "kube-dns"  # the DNS server's pod, on the first node
DNS_LABELS = (("k8s-app", "kube-dns"),)
DNS_PORT = 53
DNS_INDEX = 10  # the DNS service's address: the tenth of the service CIDR
API_INDEX = 1  # the `kubernetes` service's address, reserved
AFFINITY_TIMEOUT_S = 10800  # sessionAffinityConfig.clientIP.timeoutSeconds default


class AllocationError(ValueError):
    """The service CIDR or node-port range is full."""
    # (the load balancer network's: testbed.model.svc.outside.AllocationError)


def dns_ip(service_cidr: IPv4Network) -> IPv4Address:
    return service_cidr.network_address + DNS_INDEX


def reserved_ips(service_cidr: IPv4Network) -> dict[IPv4Address, str]:
    """Addresses of the service CIDR no service of the topology may take."""
    net = service_cidr
    return {net.network_address: "the network address",
            net.broadcast_address: "the broadcast address",
            net.network_address + API_INDEX: "reserved for the API server's service",
            dns_ip(net): f"the cluster DNS service's ({DNS_NAMESPACE}/{DNS_SERVICE})"}


def dns_service(service_cidr: IPv4Network) -> ServiceSpec:
    """kube-system/kube-dns as kubeadm creates it: UDP and TCP port 53."""
    return ServiceSpec(
        name=DNS_SERVICE, namespace=DNS_NAMESPACE, selector=DNS_LABELS,
        ports=(ServicePortSpec(DNS_PORT, DNS_PORT, UDP, "dns"),
               ServicePortSpec(DNS_PORT, DNS_PORT, TCP, "dns-tcp")),
        cluster_ip=dns_ip(service_cidr))


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def resolve(spec: ClusterSpec) -> tuple[ServiceSpec, ...]:
    """The DNS service, the spec's services and, with ingresses, the ingress controller's;
    every cluster IP, node port, health-check node port and load-balancer address filled
    in (a topology without services has no service network: nothing, not even DNS)."""
    if not spec.services:
        return ()
    services = [dns_service(spec.service_cidr), *spec.services,
                *([controller_service()] if spec.ingresses else [])]
    net = spec.service_cidr
    taken = set(reserved_ips(net)) | {s.cluster_ip for s in spec.services if s.cluster_ip}
    ports_taken = {(p.node_port, p.protocol) for s in services for p in s.ports if p.node_port}
    ports_taken |= {(s.health_check_node_port, TCP) for s in services
                    if s.health_check_node_port}
    lb_ips = allocate_lb_ips(services, spec.load_balancer_network)
    size = net.num_addresses
    out = []
    for svc in services:
        ip = svc.cluster_ip
        if ip is None:
            start = _hash(svc.key) % size
            for step in range(size):
                candidate = net.network_address + (start + step) % size
                if candidate not in taken:
                    ip = candidate
                    break
            else:
                raise AllocationError(f"service_cidr {net} has no address left for {svc.key}")
            taken.add(ip)
        ports = []
        for p in svc.ports:
            if p.node_port is None and svc.type != CLUSTER_IP:
                p = dataclasses.replace(p, node_port=_node_port(svc, p, ports_taken))
            ports.append(p)
        health = svc.health_check_node_port
        if health is None and needs_health_check(svc):
            health = _free_port(f"{svc.key}:health-check", TCP, ports_taken, svc.key)
        out.append(dataclasses.replace(svc, cluster_ip=ip, ports=tuple(ports),
                                       load_balancer_ip=lb_ips.get(svc.key),
                                       health_check_node_port=health))
    return tuple(out)


def _node_port(svc: ServiceSpec, port: ServicePortSpec, taken: set[tuple[int, str]]) -> int:
    return _free_port(f"{svc.key}:{port.name}/{port.protocol}", port.protocol, taken, svc.key)


def _free_port(seed: str, protocol: str, taken: set[tuple[int, str]], key: str) -> int:
    low, high = NODE_PORT_RANGE
    size = high - low + 1
    start = _hash(seed) % size
    for step in range(size):
        candidate = low + (start + step) % size
        if (candidate, protocol) not in taken:
            taken.add((candidate, protocol))
            return candidate
    raise AllocationError(f"no node port left for {key}")


@dataclass(frozen=True)
class PodState:
    """What the endpoints controller knows of a pod: where it is, its address, its
    labels and whether it is ready (running, and passing its readiness check)."""

    name: str
    node: str
    ip: str
    labels: tuple[tuple[str, str], ...]
    ready: bool


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a service port (an EndpointSlice entry)."""

    ip: str
    port: int
    node: str = ""  # the node it runs on; "" (unknown) is never local
    ready: bool = True
    pod: str = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one service, as kube-proxy sees it, with its endpoints (what the rules
    and the health-check servers depend on; external IPs and source ranges are not in
    topology files, and are here for the fidelity of the renderers to upstream's tests)."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP or UDP
    cluster_ip: str
    port: int
    endpoints: tuple[Endpoint, ...] = ()
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    health_check_node_port: int = 0
    affinity_timeout_s: int = 0  # 0: sessionAffinity None; else ClientIP for this long
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local

    @property
    def key(self) -> str:
        """`ns/name:port`, or `ns/name` for an unnamed port (ServicePortName.String)."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def proto(self) -> str:
        return self.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)

    def ready_endpoints(self) -> list[Endpoint]:
        """Ready endpoints in kube-proxy's order (by `ip:port` as a string)."""
        return sorted((e for e in self.endpoints if e.ready), key=lambda e: e.address)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServicePort:
        fields = dict(d)
        fields["endpoints"] = tuple(Endpoint(**e) for e in d.get("endpoints", ()))
        for key in ("external_ips", "load_balancer_ips", "source_ranges"):
            fields[key] = tuple(d.get(key, ()))
        return cls(**fields)


@dataclass(frozen=True)
class Categories:
    """A service port's endpoints as one node's kube-proxy sorts them
    (proxy.CategorizeEndpoints and the traffic-policy flags of syncProxyRules)."""

    cluster: list[Endpoint]  # the ready ones, for the Cluster policy
    local: list[Endpoint]  # the ready ones on this node, for the Local policy
    reachable: list[Endpoint]  # every endpoint some chain of this node jumps to
    external_local: bool  # externalTrafficPolicy Local, and reachable from outside
    uses_cluster: bool  # UsesClusterEndpoints: even with an external policy of Local,
    uses_local: bool  # pods' own traffic to external IPs short-circuits to all endpoints
    has_internal: bool  # cluster-IP traffic has somewhere to go
    has_external: bool  # external traffic has somewhere to go

    @property
    def has_endpoints(self) -> bool:
        return bool(self.reachable)


def categorize(sp: ServicePort, node: str) -> Categories:
    cluster = sp.ready_endpoints()
    local = [e for e in cluster if e.node and e.node == node]
    external_local = sp.external_local and sp.externally_accessible
    uses_cluster = not sp.internal_local or sp.externally_accessible
    uses_local = sp.internal_local or external_local
    reachable = list(cluster) if uses_cluster else list(local)
    return Categories(
        cluster=cluster, local=local, reachable=reachable, external_local=external_local,
        uses_cluster=uses_cluster, uses_local=uses_local,
        has_internal=bool(reachable) and not (sp.internal_local and not local),
        has_external=bool(reachable) and not (external_local and not local))


def endpoints_of(svc: ServiceSpec, port: ServicePortSpec,
                 pods: Iterable[PodState]) -> tuple[Endpoint, ...]:
    """The endpoints controller: every selected pod with an address, ready or not."""
    return tuple(Endpoint(p.ip, port.target_port, p.node, p.ready, p.name) for p in pods
                 if p.ip and bool(svc.selector) and set(svc.selector) <= set(p.labels))


def proxy_view(services: Sequence[ServiceSpec],
               pods: Sequence[PodState]) -> tuple[ServicePort, ...]:
    """Every port of every (resolved) service as kube-proxy sees it, sorted by its
    `ns/name:port` (kube-proxy iterates a map; the testbed writes in one order)."""
    out = []
    for svc in services:
        for p in svc.ports:
            out.append(ServicePort(
                namespace=svc.namespace, name=svc.name, port_name=p.name,
                protocol=p.protocol, cluster_ip=str(svc.cluster_ip), port=p.port,
                endpoints=endpoints_of(svc, p, pods), node_port=p.node_port or 0,
                affinity_timeout_s=AFFINITY_TIMEOUT_S if svc.session_affinity == CLIENT_IP
                else 0,
                external_local=svc.type != CLUSTER_IP and svc.external_traffic_policy == LOCAL,
                load_balancer_ips=(str(svc.load_balancer_ip),) if svc.load_balancer_ip
                else (),
                health_check_node_port=svc.health_check_node_port or 0,
            ))
    return tuple(sorted(out, key=lambda s: (s.key, s.protocol)))
