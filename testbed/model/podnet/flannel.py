"""flannel, with the host-gw backend (every node routes every other node's pod subnet to
that node's underlay address) or the VXLAN backend (the same subnets through a VXLAN
device, `flannel.1`, whose packets ride the underlay in UDP); the router knows no pod
route either way.

    router 10.100.0.1 (no pod routes)
       |
    node-1 10.100.0.2                        node-2 10.100.0.3
    cni0 10.0.0.1/24                         cni0 10.0.1.1/24
    10.0.1.0/24 via 10.100.0.3 dev eth0      10.0.0.0/24 via 10.100.0.2 dev eth0

What the testbed reproduces, and from where (flannel-io/flannel, flannel-io/cni-plugin,
containernetworking/plugins):

- the lease: each node's pod subnet from the cluster network (flannel's `Network`), as
  the kube subnet manager takes the node's podCIDR;
- the CNI configuration the flannel plugin hands its delegate, the bridge plugin
  (cni-plugin flannel_linux.go, delegateAdd and the conflist of
  Documentation/kube-flannel.yml): name `cbr0`, bridge `cni0` (the plugin's default),
  `isGateway`, `isDefaultGateway`, `hairpinMode`, `ipMasq` false (flanneld masquerades),
  the MTU of subnet.env, host-local with the lease as its one range and a route to the
  whole flannel network;
- the routes flanneld's host-gw backend adds per remote lease
  (pkg/backend/hostgw/hostgw.go and route_network.go: `<subnet> via <public IP> dev
  <external interface>`, netlink's default protocol), in node order;
- the MTU: the external interface's (host-gw adds no header);
- flanneld's iptables rules with `--ip-masq` and the default `--iptables-forward-rules`
  (pkg/trafficmngr/iptables/iptables.go, masqRules and forwardRules), `--random-fully`
  as iptables here supports it.

The VXLAN backend (pkg/backend/vxlan: vxlan.go, device.go, vxlan_network.go):

- `flannel.1`: VNI 1, the kernel's default port 8472 (flannel's port 0), `local` the
  node's address on its external interface, learning off, MTU that interface's minus
  50, the lease's network address as a /32 (newVXLANDevice, Configure);
- per remote lease, in the order handleSubnetEvents programs them: a permanent
  neighbour (the remote lease's network address -> its VTEP MAC on flannel.1), a
  permanent FDB entry (that MAC -> the remote node's address, `self`), and the route
  `<subnet> via <network address> dev flannel.1 onlink`;
- the pod MTU (subnet.env's FLANNEL_MTU) is flannel.1's.

Where it differs: no flanneld process (its 5 s rule and route resync loops, lease
watching); the routes and rules are written once at bring-up, so a node added later is
not routed to. VTEP MACs are derived from the node's name (flanneld picks them at random
and keeps them in a node annotation): the same cluster gets the same MACs every run.
flannel.1's IPv6 `accept_ra` (flanneld turns it off) is left as the node has it. host-gw
needs every node on one L2 segment; the testbed's single underlay is one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import FLANNEL_HOST_GW, FLANNEL_VXLAN
from testbed.model.paths import EXPECTED_TTL, ROUTE_DESCRIPTION
from testbed.model.podnet.base import NodeSetup, Route
from testbed.model.podnet.kubenet import Kubenet, kubenet_mtu
from testbed.model.podnet.vxlan import Overlay
from testbed.model.spec import ClusterSpec

BRIDGE = "cni0"
NETWORK_NAME = "cbr0"  # the conflist's name, which the delegate keeps
CNI_VERSION = "0.3.1"  # kube-flannel.yml's conflist
KUBE_PROXY_MARK = "0x4000/0x4000"  # trafficmngr.KubeProxyMark
MASQ_CHAIN, FWD_CHAIN = "FLANNEL-POSTRTG", "FLANNEL-FWD"
MASQ_COMMENT, FWD_COMMENT = "flanneld masq", "flanneld forward"
MULTICAST = "224.0.0.0/4"
VXLAN_DEVICE = "flannel.1"  # flannel.<VNI>
VNI = 1
VXLAN_PORT = 8472  # the Linux kernel's VXLAN port, which flannel's port 0 leaves in place
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


def direct_routes(plan: AddressPlan, node: NodePlan) -> tuple[Route, ...]:
    """An agent's route to each other node's pods via that node's address, for the nodes
    on this node's segment (the kernel refuses a gateway on no link of the node)."""
    return tuple(Route(other.pod_cidr, other.underlay_ip.ip) for other in plan.nodes
                 if other.name != node.name and plan.same_segment(node, other))


def unreachable_notes(agent: str, plan: AddressPlan, node: NodePlan) -> tuple[str, ...]:
    """What the agent logs for each other node behind the router (another rack): the
    route via its address cannot be added."""
    return tuple(
        f"{agent} would fail: Error adding route to {other.pod_cidr} via "
        f"{other.underlay_ip.ip}: network is unreachable ({other.name} is on rack "
        f"{other.rack}, {node.name} on rack {node.rack}: its pods are unreachable from here)"
        for other in plan.nodes if not plan.same_segment(node, other))


OVERLAY = Overlay(VXLAN_DEVICE, VNI, VXLAN_PORT, "flannel.1", 0x0e)


def vtep_mac(node: str) -> str:
    """A node's VTEP MAC: locally administered, unicast, derived from its name."""
    return OVERLAY.mac(node)


def vxlan_commands(plan: AddressPlan, node: NodePlan, mtu: int) -> tuple[tuple[str, ...], ...]:
    """What flanneld's VXLAN backend programs on `node`: flannel.1 with the lease's
    network address, then per remote lease its neighbour, FDB entry and route."""
    return tuple(OVERLAY.commands(plan, node, mtu, str(node.pod_cidr.network_address)))


def _ipt(table: str, *rule: str) -> tuple[str, ...]:
    return ("iptables", "-w", "-t", table, *rule)


def masq_rules(network: IPv4Network, lease: IPv4Network,
               random_fully: bool = True) -> tuple[tuple[str, ...], ...]:
    """flanneld's nat rules for one node (masqRules), its chain made first (ClearChain)."""
    n, sn = str(network), str(lease)
    comment = ("-m", "comment", "--comment", MASQ_COMMENT)
    masq = ("-j", "MASQUERADE", *(("--random-fully",) if random_fully else ()))
    return (
        _ipt("nat", "-N", MASQ_CHAIN),
        _ipt("nat", "-A", "POSTROUTING", *comment, "-j", MASQ_CHAIN),
        _ipt("nat", "-A", MASQ_CHAIN, "-m", "mark", "--mark", KUBE_PROXY_MARK, *comment,
             "-j", "RETURN"),
        _ipt("nat", "-A", MASQ_CHAIN, "-s", sn, "-d", n, *comment, "-j", "RETURN"),
        _ipt("nat", "-A", MASQ_CHAIN, "-s", n, "-d", sn, *comment, "-j", "RETURN"),
        _ipt("nat", "-A", MASQ_CHAIN, "!", "-s", n, "-d", sn, *comment, "-j", "RETURN"),
        _ipt("nat", "-A", MASQ_CHAIN, "-s", n, "!", "-d", MULTICAST, *comment, *masq),
        _ipt("nat", "-A", MASQ_CHAIN, "!", "-s", n, "-d", n, *comment, *masq),
    )


def forward_rules(network: IPv4Network) -> tuple[tuple[str, ...], ...]:
    """flanneld's filter rules (forwardRules): forward to and from the flannel network."""
    comment = ("-m", "comment", "--comment", FWD_COMMENT)
    return (
        _ipt("filter", "-N", FWD_CHAIN),
        _ipt("filter", "-A", "FORWARD", *comment, "-j", FWD_CHAIN),
        _ipt("filter", "-A", FWD_CHAIN, "-s", str(network), *comment, "-j", "ACCEPT"),
        _ipt("filter", "-A", FWD_CHAIN, "-d", str(network), *comment, "-j", "ACCEPT"),
    )


def delegate_config(network: IPv4Network, lease: IPv4Network, mtu: int,
                    ipam_dir: Path) -> dict[str, Any]:
    """The bridge plugin's configuration as the flannel CNI plugin builds it."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "type": "bridge",
        "hairpinMode": True,
        "isDefaultGateway": True,
        "isGateway": True,
        "ipMasq": False,
        "mtu": mtu,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": str(lease)}]],
            "routes": [{"dst": str(network)}],
            "dataDir": str(ipam_dir),
        },
    }


class FlannelHostGw(Kubenet):
    """flannel with the host-gw backend: see the module docstring. Its pod CIDRs and
    checks are kubenet's (both take the node's podCIDR from the cluster CIDR)."""

    name = FLANNEL_HOST_GW
    description = ("flannel host-gw: bridge cni0 per node, each node routes the others' pod "
                   "subnets to their addresses; no pod routes on the router")
    bridge = BRIDGE

    def router_routes(self, plan: AddressPlan) -> list[Route]:
        """None: the nodes route pod traffic to each other directly."""
        return []

    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        """The external interface's MTU (the node's up interfaces: its underlay link)."""
        return kubenet_mtu(interface_mtus)

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        """Forwarding on, cni0 with the lease's first address (the bridge plugin makes it
        at the first pod; made here so the node is ready as kubenet's is), one route per
        remote lease on the node's segment, flanneld's rules. A lease behind the router
        (another rack) gets no route: the kernel refuses a gateway that is not on a
        link, and flanneld logs the error (routeAdd) and carries on."""
        return NodeSetup(
            sysctls=(("net.ipv4.ip_forward", "1"),),
            bridge=self.bridge, bridge_ip=node.bridge_ip, mtu=mtu,
            default_via=plan.router_for(node).ip,
            routes=direct_routes(plan, node),
            bridge_sysctls=(("net.bridge.bridge-nf-call-iptables", "1"),),
            iptables=(*masq_rules(spec.cluster_cidr, node.pod_cidr),
                      *forward_rules(spec.cluster_cidr)),
            notes=unreachable_notes("flanneld", plan, node),
        )

    def masquerade_rules(self, spec: ClusterSpec) -> tuple[tuple[str, ...], ...]:
        return ()  # flanneld's are per node (node_setup)

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        return delegate_config(plan.cluster_cidr, node.pod_cidr, mtu, ipam_dir)

    def expected_ttls(self) -> dict[str, int]:
        """Cross-node traffic is forwarded by the two nodes only (no router hop); a pod
        reaching another node's address crosses its own node only."""
        return {**EXPECTED_TTL, "pod-cross-node": 62, "pod-remote-node": 63}

    def route_descriptions(self) -> dict[str, str]:
        return {**ROUTE_DESCRIPTION,
                "pod-same-node": "pod -> veth -> cni0 -> veth -> pod",
                "pod-cross-node": "pod -> cni0/node -> other node/cni0 -> pod",
                "pod-node": "pod -> cni0 -> its own node",
                "pod-remote-node": "pod -> node -> other node"}


class FlannelVxlan(FlannelHostGw):
    """flannel with the VXLAN backend: see the module docstring."""

    name = FLANNEL_VXLAN
    description = ("flannel VXLAN: bridge cni0 per node, the other nodes' pod subnets through "
                   "flannel.1 (VNI 1, UDP 8472), pod MTU 50 below the underlay's")

    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        """The external interface's MTU minus VXLAN's 50 bytes (FLANNEL_MTU)."""
        return kubenet_mtu(interface_mtus) - VXLAN_OVERHEAD

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        """host-gw's set-up without its routes; flannel.1 and what goes with it instead."""
        setup = super().node_setup(spec, plan, node, mtu)
        return dataclasses.replace(setup, routes=(), notes=(),  # VXLAN crosses the router
                                   commands=vxlan_commands(plan, node, mtu))

    def route_descriptions(self) -> dict[str, str]:
        return {**super().route_descriptions(),
                "pod-cross-node": "pod -> cni0/node -> flannel.1 (VXLAN in UDP over the "
                                  "underlay) -> other node/cni0 -> pod"}
