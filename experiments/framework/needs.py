"""What a claim needs of the topology it runs on, declared, and checked before it runs.
Pure: a function of the cluster spec (the topology file), testable without root on every
topology the project ships (tests/unit/test_needs.py).

A claim whose needs are unmet gets the verdict `not applicable` with the reasons, instead
of an `error` (nothing went wrong) or a `refuted` (the claim was not false: the topology
could not show it). For example `gateway-routes` is about the cloud gateway's per-node
pod routes: a pod network that routes between the nodes itself (flannel, Calico, kindnet)
puts none there, so the claim says nothing about it.

    Needs(pods=2)                             at least two pods
    Needs(nodes_with_pods=2, pods_on_a_node=2)  two nodes with pods, one with two or more
    Needs(pod_networks=(KUBENET,), why="...")   only these pod networks
    Needs(router_routes=True)                 the router holds a route per node's pods
    Needs(non_masquerade_cidr="10.0.0.0/8")   kubelet's non-masquerade range is this one
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from testbed.model.podnet import pod_network
from testbed.model.spec import ClusterSpec


@dataclass(frozen=True)
class Needs:
    """A claim's needs (see the module docstring); the default needs nothing."""

    pods: int = 0
    nodes_with_pods: int = 0
    pods_on_a_node: int = 0  # some node holds at least this many pods
    pod_networks: tuple[str, ...] = ()  # () : any
    why_pod_networks: str = ""  # why only those, for the reason
    router_routes: bool = False
    non_masquerade_cidr: str = ""

    def unmet(self, spec: ClusterSpec) -> list[str]:
        """What `spec` lacks, in words (empty: the claim applies)."""
        counts = [len(n.pods) for n in spec.nodes]
        out = []
        if sum(counts) < self.pods:
            out.append(f"needs at least {self.pods} pods, the topology has {sum(counts)}")
        with_pods = sum(1 for c in counts if c)
        if with_pods < self.nodes_with_pods:
            out.append(f"needs {self.nodes_with_pods} nodes with pods, the topology has "
                       f"{with_pods}")
        if self.pods_on_a_node and max(counts, default=0) < self.pods_on_a_node:
            out.append(f"needs a node with at least {self.pods_on_a_node} pods, the most "
                       f"on one node is {max(counts, default=0)}")
        if self.pod_networks and spec.pod_network not in self.pod_networks:
            out.append(f"needs the pod network {' or '.join(self.pod_networks)}"
                       + (f" ({self.why_pod_networks})" if self.why_pod_networks else "")
                       + f", the topology has {spec.pod_network}")
        if self.router_routes and not router_routes(spec):
            out.append(f"needs a pod network whose pod routes are the router's (one per "
                       f"node, as kubenet's cloud gateway); {spec.pod_network} puts none "
                       "there")
        if self.non_masquerade_cidr and (spec.non_masquerade_cidr
                                         != IPv4Network(self.non_masquerade_cidr)):
            out.append(f"needs non_masquerade_cidr {self.non_masquerade_cidr}, the topology "
                       f"has {spec.non_masquerade_cidr}")
        return out

    def reason(self, spec: ClusterSpec) -> str:
        """The unmet needs in one sentence ("" when the claim applies)."""
        unmet = self.unmet(spec)
        return f"not applicable to topology {spec.name}: " + "; ".join(unmet) if unmet else ""


def router_routes(spec: ClusterSpec) -> bool:
    """Whether the topology's pod network puts per-node pod routes on the router."""
    mode = pod_network(spec.pod_network)
    return bool(mode.router_routes(mode.plan(spec)))
