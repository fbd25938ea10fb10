"""Cluster specs: what a topology file asks for, as frozen dataclasses. Pure.

These types depend on nothing else of the testbed; reading and validating a file is
`testbed.model.load`, and what the spec implies (addresses, the pod network's design) is
`testbed.model.addressing` and `testbed.model.podnet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.model.links import LinkSpec
from testbed.model.names import KUBENET, LINUX_BRIDGE

DEFAULT_UNDERLAY = "10.100.0.0/24"
DEFAULT_NODE_CIDR_PREFIX = 24
DEFAULT_NON_MASQUERADE_CIDR = "10.0.0.0/8"
DEFAULT_POD_NETWORK = KUBENET
DEFAULT_UNDERLAY_SWITCH = LINUX_BRIDGE
DEFAULT_COMMAND = ("sleep", "infinity")  # a container without a command
DEFAULT_SERVICE_CIDR = "10.3.240.0/20"  # the seed series' example service range
DEFAULT_NAMESPACE = "default"
# kube-proxy's mode when a topology names none. The modes are plug-ins, named in their own
# classes (testbed.model.svc.modes, which imports this module: hence a plain string here,
# which a unit test checks is a registered mode)
DEFAULT_KUBE_PROXY_MODE = "iptables"
# Service types and policies, spelled as Kubernetes spells them
CLUSTER_IP, NODE_PORT, LOAD_BALANCER = "ClusterIP", "NodePort", "LoadBalancer"
TCP, UDP = "TCP", "UDP"
CLUSTER, LOCAL = "Cluster", "Local"
NONE, CLIENT_IP = "None", "ClientIP"
PREFIX_PATH, EXACT_PATH = "Prefix", "Exact"  # an Ingress path's pathType
# Where the cloud load balancer lives, behind the router (TEST-NET-3, documentation only)
DEFAULT_LOAD_BALANCER_NETWORK = "203.0.113.0/24"


@dataclass(frozen=True)
class ContainerPort:
    """A container's port; with `host_port`, also opened on its node's address (the
    portmap CNI plugin's DNAT, as kubelet asks for `hostPort`)."""

    container_port: int
    host_port: int | None = None
    protocol: str = TCP


@dataclass(frozen=True)
class ContainerSpec:
    """A process started inside a pod's namespaces; it shares the pod's localhost."""

    name: str
    command: tuple[str, ...] = DEFAULT_COMMAND
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class ReadinessProbe:
    """A pod's readiness check, as Kubernetes' readinessProbe: a TCP connect to `port`, or
    an HTTP GET of `path` on `port` (ready on 200-399), every `period_s`; `failures` in a
    row make the pod unready, `successes` in a row ready again."""

    port: int
    path: str | None = None  # None: tcpSocket; a path: httpGet
    period_s: float = 10.0
    timeout_s: float = 1.0
    failures: int = 3
    successes: int = 1
    initial_delay_s: float = 0.0


@dataclass(frozen=True)
class PodSpec:
    """A pod: a pause process holding the namespaces, its app containers, its labels
    (what services select) and an optional readiness check."""

    name: str
    containers: tuple[ContainerSpec, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    readiness: ReadinessProbe | None = None

    @property
    def host_ports(self) -> list[ContainerPort]:
        """The ports of its containers that open a port on the node."""
        return [p for c in self.containers for p in c.ports if p.host_port]

    def matches(self, selector: tuple[tuple[str, str], ...]) -> bool:
        """Whether a (non-empty) label selector selects this pod."""
        return bool(selector) and set(selector) <= set(self.labels)


@dataclass(frozen=True)
class ServicePortSpec:
    """One port of a service: clients use `port` on the cluster IP (and `node_port` on
    every node), the selected pods serve `target_port`."""

    port: int
    target_port: int
    protocol: str = TCP
    name: str = ""
    node_port: int | None = None  # None for ClusterIP; allocated if a NodePort gives none


@dataclass(frozen=True)
class ServiceSpec:
    """A Kubernetes Service: a virtual IP (and ports) in front of the pods it selects."""

    name: str
    selector: tuple[tuple[str, str], ...]
    ports: tuple[ServicePortSpec, ...]
    namespace: str = DEFAULT_NAMESPACE
    type: str = CLUSTER_IP
    cluster_ip: IPv4Address | None = None  # None: allocated from the service CIDR
    session_affinity: str = NONE
    external_traffic_policy: str = CLUSTER
    load_balancer_ip: IPv4Address | None = None  # LoadBalancer: None, allocated
    health_check_node_port: int | None = None  # LoadBalancer + Local: None, allocated

    @property
    def key(self) -> str:
        """`namespace/name`, as kube-proxy names a service."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ExternalHostSpec:
    """A host outside the cluster, on a network of its own behind the router (it takes
    the network's tenth address, the router the first): where external clients run."""

    name: str
    network: IPv4Network


@dataclass(frozen=True)
class IngressPath:
    """One path of an Ingress rule, to a service's port (by number)."""

    path: str
    service: str
    port: int
    path_type: str = PREFIX_PATH


@dataclass(frozen=True)
class IngressRule:
    """An Ingress rule: a host name ("" for any) and its paths."""

    host: str
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True)
class IngressSpec:
    """An Ingress: HTTP routing by host name and path to services of its namespace."""

    name: str
    rules: tuple[IngressRule, ...]
    namespace: str = DEFAULT_NAMESPACE

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class RackSpec:
    """An underlay subnet of its own (a rack), joined to the others by the router."""

    name: str
    underlay: IPv4Network


@dataclass(frozen=True)
class NodeSpec:
    """A Kubernetes node: a Mininet host and its pods."""

    name: str
    pods: tuple[PodSpec, ...] = ()
    pod_cidr: IPv4Network | None = None  # None: carved from the cluster CIDR in order
    rack: str = ""  # with racks: the one it sits in
    uplink: LinkSpec = field(default_factory=LinkSpec)  # as constrained (default merged)
    cpu: float | None = None  # its CPU share, a fraction of the machine (testbed.model.cpu)


@dataclass(frozen=True)
class ClusterSpec:
    """A whole cluster as a topology file describes it."""

    name: str
    cluster_cidr: IPv4Network
    nodes: tuple[NodeSpec, ...]
    node_cidr_prefix: int = DEFAULT_NODE_CIDR_PREFIX
    underlay: IPv4Network = field(default_factory=lambda: IPv4Network(DEFAULT_UNDERLAY))
    non_masquerade_cidr: IPv4Network = field(
        default_factory=lambda: IPv4Network(DEFAULT_NON_MASQUERADE_CIDR)
    )
    description: str = ""
    pod_network: str = DEFAULT_POD_NETWORK
    underlay_switch: str = DEFAULT_UNDERLAY_SWITCH  # linux-bridge or ovs (where OVS runs)
    service_cidr: IPv4Network = field(default_factory=lambda: IPv4Network(DEFAULT_SERVICE_CIDR))
    kube_proxy_mode: str = DEFAULT_KUBE_PROXY_MODE
    services: tuple[ServiceSpec, ...] = ()
    racks: tuple[RackSpec, ...] = ()  # () : one underlay, `underlay`
    external_hosts: tuple[ExternalHostSpec, ...] = ()
    load_balancer_network: IPv4Network = field(
        default_factory=lambda: IPv4Network(DEFAULT_LOAD_BALANCER_NETWORK))
    ingresses: tuple[IngressSpec, ...] = ()
    links: LinkSpec = field(default_factory=LinkSpec)  # the default for every uplink
    cpu: float | None = None  # the default CPU share of every node (None: unlimited)
    source: str = ""  # the file it came from, for messages and metadata

    @property
    def pods(self) -> list[tuple[NodeSpec, PodSpec]]:
        """Every (node, pod) pair, in file order."""
        return [(n, p) for n in self.nodes for p in n.pods]

    @property
    def underlays(self) -> list[IPv4Network]:
        """Every underlay subnet: each rack's, or the one `underlay`."""
        return [r.underlay for r in self.racks] or [self.underlay]

    def to_dict(self) -> dict[str, Any]:
        """A plain, fully expanded form (for metadata.json): reloading it gives this spec."""
        return {
            "name": self.name,
            "description": self.description,
            "cluster_cidr": str(self.cluster_cidr),
            "node_cidr_prefix": self.node_cidr_prefix,
            **({"racks": [{"name": r.name, "underlay": str(r.underlay)} for r in self.racks]}
               if self.racks else {"underlay": str(self.underlay)}),
            "non_masquerade_cidr": str(self.non_masquerade_cidr),
            "pod_network": self.pod_network,
            "underlay_switch": self.underlay_switch,
            "service_cidr": str(self.service_cidr),
            "kube_proxy_mode": self.kube_proxy_mode,
            "nodes": [
                {
                    "name": n.name,
                    **({"pod_cidr": str(n.pod_cidr)} if n.pod_cidr else {}),
                    **({"rack": n.rack} if n.rack else {}),
                    **({"uplink": n.uplink.to_dict()} if n.uplink.shaped else {}),
                    **({"cpu": n.cpu} if n.cpu is not None else {}),
                    "pods": [_pod_dict(p) for p in n.pods],
                }
                for n in self.nodes
            ],
            **({"services": [_service_dict(s) for s in self.services]} if self.services else {}),
            **({"external_hosts": [{"name": h.name, "network": str(h.network)}
                                   for h in self.external_hosts]} if self.external_hosts
               else {}),
            **({"load_balancer_network": str(self.load_balancer_network)}
               if self.ingresses or any(s.type == LOAD_BALANCER for s in self.services)
               else {}),
            **({"ingresses": [_ingress_dict(i) for i in self.ingresses]} if self.ingresses
               else {}),
            **({"links": self.links.to_dict()} if self.links.shaped else {}),
            **({"cpu": self.cpu} if self.cpu is not None else {}),
        }


def _pod_dict(p: PodSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "containers": [
        {"name": c.name, "command": list(c.command),
         **({"ports": [{"containerPort": cp.container_port, "protocol": cp.protocol,
                        **({"hostPort": cp.host_port} if cp.host_port else {})}
                       for cp in c.ports]} if c.ports else {})}
        for c in p.containers]}
    if p.labels:
        out["labels"] = dict(p.labels)
    if p.readiness is not None:
        r = p.readiness
        check = ({"httpGet": {"path": r.path, "port": r.port}} if r.path is not None
                 else {"tcpSocket": {"port": r.port}})
        out["readinessProbe"] = {**check, "periodSeconds": r.period_s,
                                 "timeoutSeconds": r.timeout_s, "failureThreshold": r.failures,
                                 "successThreshold": r.successes,
                                 "initialDelaySeconds": r.initial_delay_s}
    return out


def _service_dict(s: ServiceSpec) -> dict[str, Any]:
    return {
        "name": s.name, "namespace": s.namespace, "selector": dict(s.selector), "type": s.type,
        **({"clusterIP": str(s.cluster_ip)} if s.cluster_ip else {}),
        "sessionAffinity": s.session_affinity,
        **({"loadBalancerIP": str(s.load_balancer_ip)} if s.load_balancer_ip else {}),
        **({"healthCheckNodePort": s.health_check_node_port} if s.health_check_node_port
           else {}),
        **({"externalTrafficPolicy": s.external_traffic_policy} if s.type != CLUSTER_IP
           else {}),
        "ports": [{"port": p.port, "targetPort": p.target_port, "protocol": p.protocol,
                   **({"name": p.name} if p.name else {}),
                   **({"nodePort": p.node_port} if p.node_port else {})} for p in s.ports],
    }


def _ingress_dict(i: IngressSpec) -> dict[str, Any]:
    return {"name": i.name, "namespace": i.namespace, "rules": [
        {**({"host": r.host} if r.host else {}), "paths": [
            {"path": p.path, "pathType": p.path_type, "service": p.service, "port": p.port}
            for p in r.paths]} for r in i.rules]}
