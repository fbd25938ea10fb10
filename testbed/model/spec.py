"""Cluster specs: what a topology file asks for, as frozen dataclasses. Pure.

These types depend on nothing else of the testbed; reading and validating a file is
`testbed.model.load`, and what the spec implies (addresses, the pod network's design) is
`testbed.model.addressing` and `testbed.model.podnet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from testbed.model.names import KUBENET, LINUX_BRIDGE

DEFAULT_UNDERLAY = "10.100.0.0/24"
DEFAULT_NODE_CIDR_PREFIX = 24
DEFAULT_NON_MASQUERADE_CIDR = "10.0.0.0/8"
DEFAULT_POD_NETWORK = KUBENET
DEFAULT_UNDERLAY_SWITCH = LINUX_BRIDGE
DEFAULT_COMMAND = ("sleep", "infinity")  # a container without a command


@dataclass(frozen=True)
class ContainerSpec:
    """A process started inside a pod's namespaces; it shares the pod's localhost."""

    name: str
    command: tuple[str, ...] = DEFAULT_COMMAND


@dataclass(frozen=True)
class PodSpec:
    """A pod: a pause process holding the namespaces, and its app containers."""

    name: str
    containers: tuple[ContainerSpec, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """A Kubernetes node: a Mininet host and its pods."""

    name: str
    pods: tuple[PodSpec, ...] = ()
    pod_cidr: IPv4Network | None = None  # None: carved from the cluster CIDR in order


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
    source: str = ""  # the file it came from, for messages and metadata

    @property
    def pods(self) -> list[tuple[NodeSpec, PodSpec]]:
        """Every (node, pod) pair, in file order."""
        return [(n, p) for n in self.nodes for p in n.pods]

    def to_dict(self) -> dict[str, Any]:
        """A plain, fully expanded form (for metadata.json): reloading it gives this spec."""
        return {
            "name": self.name,
            "description": self.description,
            "cluster_cidr": str(self.cluster_cidr),
            "node_cidr_prefix": self.node_cidr_prefix,
            "underlay": str(self.underlay),
            "non_masquerade_cidr": str(self.non_masquerade_cidr),
            "pod_network": self.pod_network,
            "underlay_switch": self.underlay_switch,
            "nodes": [
                {
                    "name": n.name,
                    **({"pod_cidr": str(n.pod_cidr)} if n.pod_cidr else {}),
                    "pods": [
                        {
                            "name": p.name,
                            "containers": [
                                {"name": c.name, "command": list(c.command)}
                                for c in p.containers
                            ],
                        }
                        for p in n.pods
                    ],
                }
                for n in self.nodes
            ],
        }
