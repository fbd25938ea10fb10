"""Pure address planning: the underlay, the router, and each node's pod CIDR and gateway.

Nothing here touches the kernel, so all of it is tested without root. Which pod CIDR a
node gets is the pod network's decision (`testbed.model.podnet`); the default is
kubenet's, as in the seed article:

    underlay 10.100.0.0/24          cluster CIDR 10.0.0.0/14, one /24 per node
    router  10.100.0.1              node-1 pod CIDR 10.0.0.0/24, cbr0 10.0.0.1
    node-1  10.100.0.2              node-2 pod CIDR 10.0.1.0/24, cbr0 10.0.1.1
    node-2  10.100.0.3              pods from host-local: .2, .3, ... in order
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from testbed.model.cidrs import carve_pod_cidrs, pod_hosts
from testbed.model.spec import ClusterSpec


@dataclass(frozen=True)
class NodePlan:
    """Where one node sits: its underlay address and its pod CIDR."""

    name: str
    index: int
    underlay_ip: IPv4Interface  # e.g. 10.100.0.2/24
    pod_cidr: IPv4Network  # e.g. 10.0.0.0/24
    bridge_ip: IPv4Interface  # first address of the pod CIDR, e.g. 10.0.0.1/24 (cbr0)
    rack: str = ""  # with racks: its rack's name

    @property
    def gateway(self) -> IPv4Address:
        """The pods' default gateway: the bridge's address."""
        return self.bridge_ip.ip

    def expected_pod_ips(self, count: int) -> list[IPv4Address]:
        """The addresses host-local hands out, in order, on a fresh node (after the gateway)."""
        hosts = pod_hosts(self.pod_cidr)
        return [next(hosts) for _ in range(count)]


@dataclass(frozen=True)
class RackPlan:
    """One rack: its underlay subnet and the router's address on it (the first)."""

    name: str
    index: int
    network: IPv4Network
    router_ip: IPv4Interface


@dataclass(frozen=True)
class AddressPlan:
    """The whole cluster's addressing, derived from a spec. With racks, `underlay` and
    `router_ip` are the first rack's; `router_for` gives each node its own."""

    underlay: IPv4Network
    router_ip: IPv4Interface
    cluster_cidr: IPv4Network
    nodes: tuple[NodePlan, ...]
    racks: tuple[RackPlan, ...] = ()

    def router_for(self, node: NodePlan) -> IPv4Interface:
        """The router's address on a node's own segment (its default gateway)."""
        for rack in self.racks:
            if rack.name == node.rack:
                return rack.router_ip
        return self.router_ip

    def same_segment(self, a: NodePlan, b: NodePlan) -> bool:
        """Whether two nodes share an L2 segment (one underlay, or one rack)."""
        return a.rack == b.rack

    def node(self, name: str) -> NodePlan:
        """The plan of node `name` (KeyError if there is none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def node_for_ip(self, ip: IPv4Address | str) -> NodePlan | None:
        """The node whose pod CIDR holds `ip`, as a router's per-node routes would choose."""
        addr = ipaddress.ip_address(ip)
        return next((n for n in self.nodes if addr in n.pod_cidr), None)


def default_pod_cidrs(spec: ClusterSpec) -> list[IPv4Network]:
    """kubenet's rule: a node's own `pod_cidr`, else its turn of the cluster CIDR."""
    auto = carve_pod_cidrs(spec.cluster_cidr, spec.node_cidr_prefix, len(spec.nodes))
    return [node.pod_cidr or carved for node, carved in zip(spec.nodes, auto)]


def plan(spec: ClusterSpec, pod_cidrs: Sequence[IPv4Network] | None = None) -> AddressPlan:
    """Every address of the cluster from its (already validated) spec; `pod_cidrs`, one
    per node, come from the pod network (default: `default_pod_cidrs`)."""
    cidrs = list(pod_cidrs) if pod_cidrs is not None else default_pod_cidrs(spec)
    if len(cidrs) != len(spec.nodes):
        raise ValueError(f"{len(cidrs)} pod CIDRs for {len(spec.nodes)} nodes")
    # each segment: the router takes its first address, its nodes the next, in file order
    segments = {r.name: r.underlay for r in spec.racks} or {"": spec.underlay}
    hosts = {name: net.hosts() for name, net in segments.items()}
    routers = {name: IPv4Interface(f"{next(hosts[name])}/{net.prefixlen}")
               for name, net in segments.items()}
    nodes = tuple(
        NodePlan(
            name=node.name,
            index=i,
            underlay_ip=IPv4Interface(f"{next(hosts[node.rack])}/"
                                      f"{segments[node.rack].prefixlen}"),
            pod_cidr=cidr,
            bridge_ip=IPv4Interface(f"{next(cidr.hosts())}/{cidr.prefixlen}"),
            rack=node.rack,
        )
        for i, (node, cidr) in enumerate(zip(spec.nodes, cidrs))
    )
    racks = tuple(RackPlan(r.name, i, r.underlay, routers[r.name])
                  for i, r in enumerate(spec.racks))
    first = next(iter(segments))
    return AddressPlan(underlay=segments[first], router_ip=routers[first],
                       cluster_cidr=spec.cluster_cidr, nodes=nodes, racks=racks)
