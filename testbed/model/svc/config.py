"""What a node's kube-proxy is configured with, whatever its mode. Pure.

Its own module because every renderer reads it (testbed.model.svc.iptables, .nftables)
and none owns it: one mode's renderer no longer imports another's for its settings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyConfig:
    """What a node's kube-proxy is configured with (its flags and what it detected)."""

    node: str  # --hostname-override: which endpoints are local
    node_ip: str = ""  # the node's address (LoadBalancer source ranges that include it)
    cluster_cidr: str | None = None  # --cluster-cidr: the local-traffic detector
    masquerade_all: bool = False
    masquerade_bit: int = 14
    mark: str | None = None  # None: "%#08x" of 1<<bit, as kube-proxy prints it
    nfacct: bool = False  # whether the nfacct counters could be made (no here)
    localhost_nodeports: bool = True
    random_fully: bool = False  # MASQUERADE --random-fully, when iptables has it
    large_cluster_endpoints: int = 1000  # beyond this many endpoints: no comments

    @property
    def masquerade_mark(self) -> str:
        return self.mark or f"0x{1 << self.masquerade_bit:08x}"
