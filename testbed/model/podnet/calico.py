"""Calico with VXLAN (`calico-vxlan`): no bridge, a point-to-point veth per pod answered by
proxy ARP, IPAM in /26 blocks, and the other nodes' blocks through `vxlan.calico`.

    node-1 10.100.0.2                                node-2 10.100.0.3
    vxlan.calico 10.0.0.0/32 (VNI 4096, UDP 4789)    vxlan.calico 10.0.0.64/32
    blackhole 10.0.0.0/26 proto 80                   blackhole 10.0.0.64/26 proto 80
    10.0.0.64/26 via 10.0.0.64 dev vxlan.calico onlink
    10.0.0.1 dev cali<hex> scope link  ... one per pod; pods 10.0.0.1/32,
      default via 169.254.1.1 (answered by the host side's proxy ARP, MAC ee:ee:ee:ee:ee:ee)

What the testbed reproduces, and from where (projectcalico/calico):

- IPAM: the pool is the cluster CIDR, cut into blocks of /26 (the IPPool default
  blockSize); each node takes its block in node order (block affinity) and hands out its
  addresses by ordinal; the first goes to the node's VXLAN tunnel address (the address
  calico-node allocates for it);
- the workloads: testbed.pods.calico (the CNI plugin's DoNetworking and Felix's routes);
- Felix's VXLAN manager (felix/dataplane/linux/vxlan_mgr.go and its route and FDB
  managers): `vxlan.calico`, VNI 4096, port 4789, `local` the node's address on its
  parent interface, learning off, MTU the parent's minus 50, the tunnel address as a
  /32; per remote VTEP a permanent neighbour (tunnel address -> VTEP MAC) and FDB entry
  (VTEP MAC -> node address), and `<block> via <tunnel address> dev vxlan.calico
  onlink`; the local block as a `blackhole` route with protocol 80 (Felix's default);
- outgoing NAT (felix/rules/nat.go, cali-nat-outgoing): masquerade what leaves the pool.

Where it differs: no Felix or calico-node (no policy chains, no resync); the
nat-outgoing rule matches the pool CIDR, not Felix's ipsets; VTEP MACs come from the
node's name (Calico generates them and keeps them on the Node resource); one block per
node (Calico takes more blocks as a node fills up: a node here holds at most 63 pods).
Calico with BGP (BIRD) is `CalicoBgp` below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import CALICO, CALICO_VXLAN
from testbed.model.paths import EXPECTED_TTL, ROUTE_DESCRIPTION
from testbed.model.podnet import bird
from testbed.model.podnet.base import Daemon, Fail, Mesh, NodeSetup, PodNetwork, Route
from testbed.model.podnet.kubenet import kubenet_mtu
from testbed.model.podnet.vxlan import Overlay
from testbed.model.spec import ClusterSpec

BLOCK_PREFIX = 26  # IPPool blockSize default (IPv4)
VXLAN_DEVICE = "vxlan.calico"
VNI = 4096
VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50
BLACKHOLE_PROTO = "80"  # Felix's DefaultRouteProto
NETWORK_NAME = "k8s-pod-network"
CNI_VERSION = "0.3.1"
NAT_CHAINS = ("cali-POSTROUTING", "cali-nat-outgoing")


OVERLAY = Overlay(VXLAN_DEVICE, VNI, VXLAN_PORT, "vxlan.calico", 0x66)


def vtep_mac(node: str) -> str:
    return OVERLAY.mac(node)


def nat_outgoing(pool: IPv4Network) -> tuple[tuple[str, ...], ...]:
    """Felix's outgoing NAT (felix/rules/nat.go): cali-POSTROUTING first in POSTROUTING,
    cali-nat-outgoing masquerading what leaves the pool (the pool's CIDR standing in for
    Felix's ipsets)."""
    nat = ("iptables", "-w", "-t", "nat")
    return ((*nat, "-N", NAT_CHAINS[0]), (*nat, "-N", NAT_CHAINS[1]),
            (*nat, "-I", "POSTROUTING", "1", "-j", NAT_CHAINS[0]),
            (*nat, "-A", NAT_CHAINS[0], "-j", NAT_CHAINS[1]),
            (*nat, "-A", NAT_CHAINS[1], "-s", str(pool), "!", "-d", str(pool), "-j",
             "MASQUERADE", "--random-fully"))


def tunnel_ip(node: NodePlan) -> str:
    """The node's VXLAN tunnel address: its block's first (ordinal 0)."""
    return str(node.pod_cidr.network_address)


class CalicoVxlan(PodNetwork):
    """Calico, VXLAN mode: see the module docstring."""

    name = CALICO_VXLAN
    description = ("Calico VXLAN: no bridge, proxy-ARP veths, /26 IPAM blocks, the other "
                   "nodes' blocks through vxlan.calico (VNI 4096, UDP 4789)")
    bridge = None
    wiring = "calico"

    def check(self, spec: ClusterSpec, fail: Fail) -> None:
        """A /26 block a node from the cluster CIDR; at most 63 pods a node."""
        blocks = 2 ** max(0, BLOCK_PREFIX - spec.cluster_cidr.prefixlen)
        if spec.cluster_cidr.prefixlen > BLOCK_PREFIX or len(spec.nodes) > blocks:
            raise fail("nodes", f"{len(spec.nodes)} nodes need as many /{BLOCK_PREFIX} IPAM "
                       f"blocks; cluster_cidr {spec.cluster_cidr} holds {blocks}")
        for i, node in enumerate(spec.nodes):
            if node.pod_cidr is not None:
                raise fail(f"nodes[{i}].pod_cidr", "Calico allocates blocks from "
                           "cluster_cidr; a node's pod_cidr is not used")
            if len(node.pods) > 2 ** (32 - BLOCK_PREFIX) - 1:
                raise fail(f"nodes[{i}].pods", f"{len(node.pods)} pods: a node holds one "
                           f"/{BLOCK_PREFIX} block here, room for 63 (the tunnel address "
                           "takes one)")

    def pod_cidrs(self, spec: ClusterSpec) -> list[IPv4Network]:
        blocks = spec.cluster_cidr.subnets(new_prefix=BLOCK_PREFIX)
        return [next(blocks) for _ in spec.nodes]

    def router_routes(self, plan: AddressPlan) -> list[Route]:
        return []

    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        return kubenet_mtu(interface_mtus) - VXLAN_OVERHEAD

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        commands = OVERLAY.commands(plan, node, mtu, tunnel_ip(node))
        commands.append(("ip", "route", "add", "blackhole", str(node.pod_cidr), "proto",
                         BLACKHOLE_PROTO))
        return NodeSetup(
            sysctls=(("net.ipv4.ip_forward", "1"),),
            bridge=None, bridge_ip=None, mtu=mtu, default_via=plan.router_for(node).ip,
            commands=tuple(commands),
            iptables=nat_outgoing(spec.cluster_cidr),
        )

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        """What the calico wiring reads: Calico's conflist entry, its block as IPAM."""
        return {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "type": "calico",
                "mtu": mtu, "nodename": node.name,
                "ipam": {"type": "calico-ipam", "block": str(node.pod_cidr),
                         "reserved": [tunnel_ip(node)], "dataDir": str(ipam_dir)}}

    def expected_ttls(self) -> dict[str, int]:
        """No bridge: the node routes between its own pods too; across nodes two nodes
        route (the underlay is inside the tunnel)."""
        return {**EXPECTED_TTL, "pod-same-node": 63, "pod-cross-node": 62,
                "pod-remote-node": 63}

    def route_descriptions(self) -> dict[str, str]:
        return {**ROUTE_DESCRIPTION,
                "pod-same-node": "pod -> cali veth -> node (routed) -> cali veth -> pod",
                "pod-cross-node": "pod -> node -> vxlan.calico (VXLAN over the underlay) -> "
                                  "other node -> pod",
                "pod-node": "pod -> cali veth -> its own node",
                "pod-remote-node": "pod -> node -> other node"}


class CalicoBgp(CalicoVxlan):
    """Calico without encapsulation (`calico`): the same workloads and blocks, no VXLAN;
    each node's BIRD announces its block to every other node in a full iBGP mesh (AS
    64512), which installs `<block> via <node> proto bird`; the local block is a BIRD
    blackhole (testbed.model.podnet.bird). The bring-up waits until every node has every
    other node's block, and times it (`converge_s`).

    The router peers with every node as a top-of-rack router would (FRR's bgpd, AS
    64513, eBGP; Calico's global BGPPeer on the nodes' side), so blocks behind it (other
    racks) and hosts outside the cluster reach the pods."""

    name = CALICO
    description = ("Calico with BGP: no bridge, proxy-ARP veths, /26 IPAM blocks announced "
                   "by BIRD in a full iBGP mesh (AS 64512)")
    tools = {"bird": "bird2"}

    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        return kubenet_mtu(interface_mtus)  # no encapsulation

    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        mesh = self.mesh(spec, plan, node, plan.nodes)
        return NodeSetup(
            sysctls=(("net.ipv4.ip_forward", "1"),),
            bridge=None, bridge_ip=None, mtu=mtu, default_via=plan.router_for(node).ip,
            iptables=nat_outgoing(spec.cluster_cidr),
            daemons=mesh.daemons, await_routes=mesh.await_routes,
        )

    def router_setup(self, spec: ClusterSpec, plan: AddressPlan) -> NodeSetup | None:
        """The router as a top-of-rack router: FRR's bgpd (AS 64513) in an eBGP session
        with every node, attached to the router's zebra; it must learn every block."""
        mesh = self.mesh(spec, plan, None, plan.nodes)
        return NodeSetup(
            sysctls=(), bridge=None, bridge_ip=None, mtu=0, default_via=plan.router_ip.ip,
            daemons=mesh.daemons, await_routes=mesh.await_routes)

    def mesh(self, spec: ClusterSpec, plan: AddressPlan, where: NodePlan | None,
             members: Sequence[NodePlan]) -> Mesh:
        """A node's BIRD with one session a member (confd regenerates bird.cfg from the
        Node resources and has BIRD re-read it: `birdcl configure`), waiting for the other
        members' blocks. The router's bgpd keeps a neighbour a node, member or not (a
        top-of-rack router is configured for its ports, not for the cluster), and must
        learn the members' blocks."""
        blocks = tuple(m.pod_cidr for m in members if where is None or m.name != where.name)
        if where is None:
            routers = [r.router_ip.ip for r in plan.racks] or [plan.router_ip.ip]
            conf = bird.frr_bgpd(routers, [n.underlay_ip.ip for n in plan.nodes])
            return Mesh((Daemon("bgpd", ("bgpd", "-f", "{dir}/bgpd.conf", "-i",
                                         "{dir}/bgpd.pid", "-z", "{frr}/quagga_router.api",
                                         "-u", "root", "--vty_socket", "{dir}"),
                                (("bgpd.conf", conf),)),), blocks)
        conf = bird.render(where.underlay_ip.ip, [where.pod_cidr], spec.cluster_cidr,
                           [m.underlay_ip.ip for m in members if m.name != where.name],
                           tor=plan.router_for(where).ip)
        return Mesh((Daemon("bird", ("bird", "-f", "-c", "{dir}/bird.conf", "-s",
                                     "{dir}/bird.ctl"), (("bird.conf", conf),),
                            reload=("birdc", "-s", "{dir}/bird.ctl", "configure")),),
                    blocks)

    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        """No tunnel address: pods take the block from its first address."""
        config = super().cni_config(plan, node, mtu, ipam_dir)
        config["ipam"]["reserved"] = []
        return config

    def route_descriptions(self) -> dict[str, str]:
        return {**super().route_descriptions(),
                "pod-cross-node": "pod -> node -> (BGP-learnt route) other node -> pod"}
