"""kube-proxy's nftables mode on a node: the `ip kube-proxy` table rendered by
testbed.model.svc.nftables, applied in one `nft -f` transaction a sync."""

from __future__ import annotations

from testbed.model.svc import nftables as nft
from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.modes import NftablesMode
from testbed.proxy.common.netfilter import StaleUdp, must, run
from testbed.proxy.common.state import ProxyState


class NftablesKubeProxy(NftablesMode):
    partial_syncs = True

    def __init__(self, node: str, node_ip: str) -> None:
        self.node, self.node_ip = node, node_ip
        self.table: nft.Table | None = None  # the per-service part, as the last sync left it
        self.stale_udp = StaleUdp()
        self.proxy_ports: dict[str, int] = {}

    def start(self) -> None:
        """Nothing before the first sync: that one creates the table."""

    def sync(self, state: ProxyState, config: ProxyConfig, full: bool) -> str:
        """A full sync lists what the table holds first (a restarted kube-proxy finds its
        predecessor's chains and sets); a partial one works from the last sync's."""
        if full or self.table is None:
            first = self.table is None
            listing = run(["nft", "list", "table", nft.FAMILY, nft.TABLE]).stdout
            chains, sets = nft.listed_objects(listing)
            payload, self.table = nft.render_full(
                state.services, config, state.service_cidr, chains, sets, first)
        else:
            payload, self.table = nft.render_partial(state.services, config, self.table)
        if payload:
            must(["nft", "-f", "-"], payload)
        self.stale_udp.clear(state.services)
        return payload

    def cleanup(self) -> None:
        run(["nft", "delete", "table", nft.FAMILY, nft.TABLE])
