"""docker-default: every node on Docker's default bridge, the seed article's worst case.

    node-1 docker0 172.17.0.1/16            node-2 docker0 172.17.0.1/16
      pod-1 172.17.0.2  pod-2 172.17.0.3      pod-3 172.17.0.2  pod-4 172.17.0.3

Every node has the same subnet, so no route can tell the nodes' containers apart: the
router holds none, and cross-node traffic cannot reach the intended container. Pods are
wired by the same bridge plugin, as Docker wires its bridge (`docker0`, with Docker's
masquerading: `ipMasq`), so the two layouts differ only where Docker and kubenet do.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.cidrs import pod_capacity
from testbed.model.names import DOCKER_DEFAULT
from testbed.model.podnet.base import Fail, Route
from testbed.model.podnet.kubenet import Kubenet, kubenet_config
from testbed.model.spec import ClusterSpec

BRIDGE = "docker0"
SUBNET = IPv4Network("172.17.0.0/16")  # Docker's default bridge network, on every host


class DockerDefault(Kubenet):
    """Docker's default layout: see the module docstring."""

    name = DOCKER_DEFAULT
    description = "every node's docker0 is 172.17.0.1/16 (addresses collide across nodes)"
    bridge = BRIDGE

    def check(self, spec: ClusterSpec, fail: Fail) -> None:
        """Overlapping pod networks are the point here; the underlay must stay apart."""
        if spec.underlay.overlaps(SUBNET):
            raise fail("underlay", f"{spec.underlay} overlaps Docker's {SUBNET}")
        for i, node in enumerate(spec.nodes):
            if len(node.pods) > pod_capacity(SUBNET):
                raise fail(f"nodes[{i}].pods", f"{len(node.pods)} pods do not fit in {SUBNET} "
                           f"(room for {pod_capacity(SUBNET)} after the {BRIDGE} gateway)")

    def pod_cidrs(self, spec: ClusterSpec) -> list[IPv4Network]:
        return [SUBNET] * len(spec.nodes)

    def router_routes(self, plan: AddressPlan) -> list[Route]:
        """None: every node has the same subnet, so no route could tell them apart."""
        return []

    def masquerade_rules(self, spec: ClusterSpec) -> tuple[tuple[str, ...], ...]:
        return ()  # Docker's masquerading is the plugin's (ipMasq)

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        return kubenet_config(node.pod_cidr, node.bridge_ip, mtu, ipam_dir, bridge=BRIDGE,
                              ip_masq=True)
