"""kubenet: the pod network of the seed article (kubelet's own network plugin).

    router 10.100.0.1: 10.0.0.0/24 via 10.100.0.2, 10.0.1.0/24 via 10.100.0.3
       |
    node-1 10.100.0.2                     node-2 10.100.0.3
    cbr0 10.0.0.1/24 (bridge plugin)      cbr0 10.0.1.1/24
     pods 10.0.0.2, .3 (host-local)        pods 10.0.1.2, .3

A pod CIDR per node carved from the cluster CIDR, the node bridge `cbr0` holding its
first address, one route per node on the cloud gateway, and kubenet's masquerade rule.
Reproduces kubenet as Kubernetes <= 1.23 shipped it
(pkg/kubelet/dockershim/network/kubenet/kubenet_linux.go): its CNI configuration
template, its MTU rule (the smallest MTU of the node's up, non-loopback interfaces) and
its masquerade rule (comment "kubenet: SNAT for outbound traffic from cluster").
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from testbed.model.addressing import AddressPlan, NodePlan, default_pod_cidrs
from testbed.model.cidrs import pod_capacity
from testbed.model.names import KUBENET
from testbed.model.podnet.base import CNI_VERSION, Fail, NodeSetup, PodNetwork, Route
from testbed.model.spec import ClusterSpec

BRIDGE = "cbr0"
NETWORK_NAME = "kubenet"  # the CNI network name; host-local keeps its leases under it
DEFAULT_MTU = 1460  # kubenet's fallback when the node has no usable interface MTU
MASQ_COMMENT = "kubenet: SNAT for outbound traffic from cluster"


def kubenet_mtu(interface_mtus: Mapping[str, int]) -> int:
    """kubenet's rule: the smallest MTU of the node's up, non-loopback interfaces."""
    mtus = [m for name, m in interface_mtus.items() if name != "lo" and m > 0]
    return min(mtus) if mtus else DEFAULT_MTU


def kubenet_config(pod_cidr: IPv4Network, gateway: IPv4Interface, mtu: int,
                   ipam_dir: Path, bridge: str = BRIDGE, ip_masq: bool = False
                   ) -> dict[str, Any]:
    """The bridge plugin configuration kubenet hands the plugins (host-local IPAM with a
    data directory per node). `bridge` and `ip_masq` change only for the Docker-default
    layout (docker0, whose containers Docker masquerades)."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "type": "bridge",
        "bridge": bridge,
        "mtu": mtu,
        "addIf": "eth0",
        "isGateway": True,
        "ipMasq": ip_masq,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "subnet": str(pod_cidr),
            "gateway": str(gateway.ip),
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(ipam_dir),
        },
    }


def masquerade_rule(non_masquerade_cidr: IPv4Network) -> tuple[str, ...]:
    """kubenet's rule: masquerade what leaves for outside the non-masquerade CIDR."""
    return ("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-m", "comment",
            "--comment", MASQ_COMMENT, "-m", "addrtype", "!", "--dst-type", "LOCAL",
            "!", "-d", str(non_masquerade_cidr), "-j", "MASQUERADE")


class Kubenet(PodNetwork):
    """kubenet: see the module docstring."""

    name = KUBENET
    description = "a pod CIDR and bridge cbr0 per node; the router holds one route per node"
    bridge: str | None = BRIDGE

    def check(self, spec: ClusterSpec, fail: Fail) -> None:
        """Every node's pod CIDR inside the cluster CIDR, large enough for its pods, and
        overlapping no other node's."""
        cidrs: list[tuple[str, IPv4Network]] = []
        for i, (node, cidr) in enumerate(zip(spec.nodes, default_pod_cidrs(spec))):
            where = f"nodes[{i}].pod_cidr"
            if node.pod_cidr is not None and not node.pod_cidr.subnet_of(spec.cluster_cidr):
                raise fail(where, f"{cidr} is outside cluster_cidr {spec.cluster_cidr}")
            if cidr.prefixlen > 30:
                raise fail(where, f"{cidr} is too small for a bridge and a pod")
            for other_name, other in cidrs:
                if cidr.overlaps(other):
                    raise fail(where, f"{cidr} overlaps the pod CIDR {other} of node {other_name}")
            if len(node.pods) > pod_capacity(cidr):
                raise fail(f"nodes[{i}].pods", f"{len(node.pods)} pods do not fit in {cidr} "
                           f"(room for {pod_capacity(cidr)} after the {self.bridge} gateway)")
            cidrs.append((node.name, cidr))

    def pod_cidrs(self, spec: ClusterSpec) -> list[IPv4Network]:
        return default_pod_cidrs(spec)

    def router_routes(self, plan: AddressPlan) -> list[Route]:
        """One route per node: its pod CIDR via its underlay address (the cloud gateway)."""
        return [Route(n.pod_cidr, n.underlay_ip.ip) for n in plan.nodes]

    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        return kubenet_mtu(interface_mtus)

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        """What kubelet and kubenet do to a node before its first pod: forwarding on, the
        bridge (MTU by kubenet's rule) with the pod gateway address, bridge netfilter on,
        and the masquerade rule."""
        return NodeSetup(
            sysctls=(("net.ipv4.ip_forward", "1"),),
            bridge=self.bridge, bridge_ip=node.bridge_ip, mtu=mtu,
            default_via=plan.router_for(node).ip,
            bridge_sysctls=(("net.bridge.bridge-nf-call-iptables", "1"),),
            iptables=self.masquerade_rules(spec),
        )

    def masquerade_rules(self, spec: ClusterSpec) -> tuple[tuple[str, ...], ...]:
        return (masquerade_rule(spec.non_masquerade_cidr),)

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        return kubenet_config(node.pod_cidr, node.bridge_ip, mtu, ipam_dir)
