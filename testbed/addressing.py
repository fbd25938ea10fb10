"""Pure address planning: cluster CIDR -> node pod CIDRs, gateways, underlay addresses.

Nothing here touches the kernel, so all of it is tested without root. The plan follows
kubenet and the seed article:

    underlay 10.100.0.0/24          cluster CIDR 10.0.0.0/14, one /24 per node
    router  10.100.0.1              node-1 pod CIDR 10.0.0.0/24, cbr0 10.0.0.1
    node-1  10.100.0.2              node-2 pod CIDR 10.0.1.0/24, cbr0 10.0.1.1
    node-2  10.100.0.3              pods from host-local: .2, .3, ... in order
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from testbed.spec import ClusterSpec


@dataclass(frozen=True)
class NodePlan:
    """Where one node sits: its underlay address and its pod CIDR."""

    name: str
    index: int
    underlay_ip: IPv4Interface  # e.g. 10.100.0.2/24
    pod_cidr: IPv4Network  # e.g. 10.0.0.0/24
    bridge_ip: IPv4Interface  # first address of the pod CIDR, e.g. 10.0.0.1/24 (cbr0)

    @property
    def gateway(self) -> IPv4Address:
        """The pods' default gateway: cbr0's address."""
        return self.bridge_ip.ip

    def expected_pod_ips(self, count: int) -> list[IPv4Address]:
        """The addresses host-local hands out, in order, on a fresh node (after the gateway)."""
        hosts = pod_hosts(self.pod_cidr)
        return [next(hosts) for _ in range(count)]


# Docker's default bridge network, the same on every host.
DOCKER_SUBNET = IPv4Network("172.17.0.0/16")


@dataclass(frozen=True)
class AddressPlan:
    """The whole cluster's addressing, derived from a spec."""

    underlay: IPv4Network
    router_ip: IPv4Interface
    cluster_cidr: IPv4Network
    nodes: tuple[NodePlan, ...]
    pod_network: str = "kubenet"

    @property
    def bridge(self) -> str:
        """The node bridge pods attach to: kubenet's cbr0, or Docker's docker0."""
        return "docker0" if self.pod_network == "docker-default" else "cbr0"

    def node(self, name: str) -> NodePlan:
        """The plan of node `name` (KeyError if there is none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def node_for_ip(self, ip: IPv4Address | str) -> NodePlan | None:
        """The node whose pod CIDR holds `ip`, as the router's routes would choose."""
        addr = ipaddress.ip_address(ip)
        return next((n for n in self.nodes if addr in n.pod_cidr), None)

    def router_routes(self) -> list[tuple[IPv4Network, IPv4Address]]:
        """One route per node: (pod CIDR, node underlay IP), as the cloud gateway holds.
        None in Docker's layout: every node has the same subnet, so no route could tell
        the nodes' containers apart."""
        if self.pod_network == "docker-default":
            return []
        return [(n.pod_cidr, n.underlay_ip.ip) for n in self.nodes]


def pod_hosts(pod_cidr: IPv4Network) -> Iterator[IPv4Address]:
    """Addresses available to pods: every host address after the gateway (first) one."""
    hosts = pod_cidr.hosts()
    next(hosts)  # the gateway, cbr0
    yield from hosts


def pod_capacity(pod_cidr: IPv4Network) -> int:
    """How many pods a node CIDR holds: hosts minus the gateway."""
    return max(pod_cidr.num_addresses - 3, 0)


def carve_pod_cidrs(cluster_cidr: IPv4Network, prefix: int, count: int) -> list[IPv4Network]:
    """The first `count` /prefix subnets of the cluster CIDR, in order (node i gets i-th)."""
    subnets = cluster_cidr.subnets(new_prefix=prefix)
    return [next(subnets) for _ in range(count)]


def plan(spec: ClusterSpec) -> AddressPlan:
    """Derive every address of the cluster from its (already validated) spec."""
    underlay_hosts = spec.underlay.hosts()
    router_ip = IPv4Interface(f"{next(underlay_hosts)}/{spec.underlay.prefixlen}")
    auto = iter(carve_pod_cidrs(spec.cluster_cidr, spec.node_cidr_prefix, len(spec.nodes)))
    nodes = []
    docker = spec.pod_network == "docker-default"
    for i, node in enumerate(spec.nodes):
        default_cidr = next(auto)
        cidr = DOCKER_SUBNET if docker else node.pod_cidr or default_cidr
        nodes.append(
            NodePlan(
                name=node.name,
                index=i,
                underlay_ip=IPv4Interface(f"{next(underlay_hosts)}/{spec.underlay.prefixlen}"),
                pod_cidr=cidr,
                bridge_ip=IPv4Interface(f"{next(cidr.hosts())}/{cidr.prefixlen}"),
            )
        )
    return AddressPlan(
        underlay=spec.underlay,
        router_ip=router_ip,
        cluster_cidr=spec.cluster_cidr,
        nodes=tuple(nodes),
        pod_network=spec.pod_network,
    )
