"""kindnet, the pod network of kind (kubernetes-sigs/kind, images/kindnetd): no bridge; each
pod a point-to-point veth from the ptp plugin; nodes route each other's pod CIDRs.

    node-1 10.100.0.2                           node-2 10.100.0.3
    veth<hex> 10.0.0.1/32 -- pod 10.0.0.2/24    veth<hex> 10.0.1.1/32 -- pod 10.0.1.2/24
    10.0.0.2 dev veth<hex> scope host           10.0.1.2 dev veth<hex> scope host
    10.0.1.0/24 via 10.100.0.3                  10.0.0.0/24 via 10.100.0.2

What the testbed reproduces, and from where:

- the CNI configuration kindnetd writes (cmd/kindnetd/cni.go, the template of
  10-kindnet.conflist): name `kindnet`, cniVersion 0.3.1, the `ptp` plugin with
  `ipMasq` false and the MTU, host-local with the node's podCIDR as its range and a
  default route; the ptp plugin then makes the veth, gives the host end the range's
  gateway as a /32 and routes each pod by a `scope host` route
  (containernetworking/plugins plugins/main/ptp);
- the routes kindnetd keeps (cmd/kindnetd/routes.go, syncRoute): per other node, its
  podCIDR via its InternalIP, in node order;
- kind-masq-agent's rules (cmd/kindnetd/masq.go, syncRules): a KIND-MASQ-AGENT chain
  reached from POSTROUTING for non-local destinations, no masquerade towards the pod
  network, masquerade for the rest.

Where it differs: no kindnetd process (it resyncs rules every 60 s and routes on node
events); routes and rules are written once at bring-up.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import KINDNET
from testbed.model.paths import EXPECTED_TTL, ROUTE_DESCRIPTION
from testbed.model.podnet.base import NodeSetup, Route
from testbed.model.podnet.flannel import direct_routes, unreachable_notes
from testbed.model.podnet.kubenet import Kubenet
from testbed.model.spec import ClusterSpec

NETWORK_NAME = "kindnet"
CNI_VERSION = "0.3.1"
MASQ_CHAIN = "KIND-MASQ-AGENT"


def masq_rules(no_masquerade: IPv4Network) -> tuple[tuple[str, ...], ...]:
    """kind-masq-agent's nat rules (masq.go), its chain made first."""
    nat = ("iptables", "-w", "-t", "nat")
    return (
        (*nat, "-N", MASQ_CHAIN),
        (*nat, "-A", "POSTROUTING", "-m", "addrtype", "!", "--dst-type", "LOCAL",
         "-m", "comment", "--comment", "kind-masq-agent: ensure nat POSTROUTING directs all "
         "non-LOCAL destination traffic to our custom KIND-MASQ-AGENT chain",
         "-j", MASQ_CHAIN),
        (*nat, "-A", MASQ_CHAIN, "-d", str(no_masquerade), "-m", "comment", "--comment",
         "kind-masq-agent: local traffic is not subject to MASQUERADE", "-j", "RETURN"),
        (*nat, "-A", MASQ_CHAIN, "-m", "comment", "--comment", "kind-masq-agent: outbound "
         "traffic is subject to MASQUERADE (must be last in chain)", "-j", "MASQUERADE"),
    )


def ptp_config(pod_cidr: IPv4Network, mtu: int, ipam_dir: Path) -> dict[str, Any]:
    """The ptp plugin's configuration, as kindnetd's conflist template renders it."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "type": "ptp",
        "ipMasq": False,
        "mtu": mtu,
        "ipam": {
            "type": "host-local",
            "dataDir": str(ipam_dir),
            "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": str(pod_cidr)}]],
        },
    }


class Kindnet(Kubenet):
    """kindnet: see the module docstring. Pod CIDRs and checks are kubenet's."""

    name = KINDNET
    description = ("kindnet: no bridge, a point-to-point veth per pod (ptp), nodes route "
                   "each other's pod CIDRs; no pod routes on the router")
    bridge = None

    def router_routes(self, plan: AddressPlan) -> list[Route]:
        return []

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        """Forwarding on, no bridge, a route per other node, kind-masq-agent's rules."""
        return NodeSetup(
            sysctls=(("net.ipv4.ip_forward", "1"),),
            bridge=None, bridge_ip=None, mtu=mtu, default_via=plan.router_for(node).ip,
            routes=direct_routes(plan, node),
            iptables=masq_rules(spec.cluster_cidr),
            notes=unreachable_notes("kindnetd", plan, node),
        )

    def masquerade_rules(self, spec: ClusterSpec) -> tuple[tuple[str, ...], ...]:
        return masq_rules(spec.cluster_cidr)

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        return ptp_config(node.pod_cidr, mtu, ipam_dir)

    def expected_ttls(self) -> dict[str, int]:
        """No bridge: even pods of one node talk through the node's routing (one hop);
        across nodes the two nodes route (two)."""
        return {**EXPECTED_TTL, "pod-same-node": 63, "pod-cross-node": 62,
                "pod-remote-node": 63}

    def route_descriptions(self) -> dict[str, str]:
        return {**ROUTE_DESCRIPTION,
                "pod-same-node": "pod -> veth -> node (routed) -> veth -> pod",
                "pod-cross-node": "pod -> veth/node -> other node -> veth -> pod",
                "pod-node": "pod -> veth -> its own node",
                "pod-remote-node": "pod -> node -> other node"}
