"""A VXLAN overlay as flanneld and Felix program it, as `ip`/`bridge` argument lists.
Pure. Both agents make the same shape (flannel's vxlan_network.go handleSubnetEvents,
Felix's vxlan_mgr.go): a device, then per remote node a permanent neighbour (the remote
tunnel address -> its VTEP MAC), a permanent FDB entry (that MAC -> the remote node's
address) and an `onlink` route to the remote pods via the tunnel address."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import underlay_intf


@dataclass(frozen=True)
class Overlay:
    """One mode's VXLAN: device name, VNI, UDP port; a seed for its VTEP MACs and their
    first byte (locally administered, unicast)."""

    device: str
    vni: int
    port: int
    mac_seed: str
    mac_first: int

    def mac(self, node: str) -> str:
        """A node's VTEP MAC, derived from its name: the same cluster gets the same MACs
        every run (the agents pick them at random and keep them on the Node object)."""
        digest = hashlib.sha256(f"{self.mac_seed}/{node}".encode()).digest()
        return ":".join(f"{b:02x}" for b in (self.mac_first, *digest[:5]))

    def commands(self, plan: AddressPlan, node: NodePlan, mtu: int,
                 tunnel: str) -> list[tuple[str, ...]]:
        """The device (address `tunnel`/32), then each remote node's neighbour, FDB
        entry and route; a remote node's tunnel address is its pod CIDR's first."""
        dev = self.device
        out: list[tuple[str, ...]] = [
            ("ip", "link", "add", dev, "address", self.mac(node.name), "mtu", str(mtu),
             "type", "vxlan", "id", str(self.vni), "local", str(node.underlay_ip.ip), "dev",
             underlay_intf(node.name), "dstport", str(self.port), "nolearning"),
            ("ip", "addr", "add", f"{tunnel}/32", "dev", dev),
            ("ip", "link", "set", dev, "up"),
        ]
        for other in plan.nodes:
            if other.name == node.name:
                continue
            gw, mac = str(other.pod_cidr.network_address), self.mac(other.name)
            out += [
                ("ip", "neigh", "replace", gw, "lladdr", mac, "dev", dev, "nud", "permanent"),
                ("bridge", "fdb", "replace", mac, "dev", dev, "dst",
                 str(other.underlay_ip.ip), "self", "permanent"),
                ("ip", "route", "replace", str(other.pod_cidr), "via", gw, "dev", dev,
                 "onlink"),
            ]
        return out
