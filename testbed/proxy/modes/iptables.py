"""kube-proxy's iptables mode on a node: the renderer (testbed.model.svc.iptables) applied
with one `iptables-restore --noflush` a sync; the jumps from the built-in chains and the
KUBE-PROXY-CANARY chains ensured first (`-C`, then `-I`)."""

from __future__ import annotations

from testbed.model.svc import iptables as ipt
from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.modes import IptablesMode
from testbed.model.svc.plan import ServicePort
from testbed.proxy.common.netfilter import (
    IPTABLES_WAIT,
    StaleUdp,
    delete_rule,
    ensure_chain,
    ensure_rule,
    must,
    remove_chains,
    run,
    save_chains,
    write_sysctl,
)
from testbed.proxy.common.state import ProxyState


def _by_port(services: tuple[ServicePort, ...]) -> dict[tuple[str, str], ServicePort]:
    return {(sp.key, sp.protocol): sp for sp in services}


class IptablesKubeProxy(IptablesMode):
    partial_syncs = True

    def __init__(self, node: str, node_ip: str) -> None:
        self.node, self.node_ip = node, node_ip
        # what the last sync left, for the next (partial) one
        self.nat_chains: frozenset[str] | None = None  # our service chains
        self.synced: dict[tuple[str, str], ServicePort] = {}  # as written
        self.stale_udp = StaleUdp()
        self.proxy_ports: dict[str, int] = {}

    def start(self) -> None:
        """The canaries, the jumps, route_localnet (localhost node ports)."""
        write_sysctl("net.ipv4.conf.all.route_localnet", "1")
        for table in ("mangle", "nat", "filter"):
            run(["iptables", *IPTABLES_WAIT, "-t", table, "-N", ipt.CANARY])
        for table, chain, rule in ipt.jump_rules(ProxyConfig(node=self.node)):
            ensure_chain(table, rule.split()[-1])
            ensure_rule(table, chain, rule)

    def sync(self, state: ProxyState, config: ProxyConfig, full: bool) -> str:
        """A partial sync rewrites only the service ports that changed since the last."""
        if self.nat_chains is None:
            self.nat_chains = frozenset(save_chains("nat"))
        unchanged = () if full else [
            key for key, sp in _by_port(state.services).items() if self.synced.get(key) == sp]
        done = ipt.render_sync(state.services, config, self.nat_chains, unchanged)
        must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], done.payload)
        self.nat_chains, self.synced = done.active_chains, _by_port(state.services)
        self.stale_udp.clear(state.services)
        return done.payload

    def cleanup(self) -> None:
        for table, chain, rule in ipt.jump_rules(ProxyConfig(node="")):
            delete_rule(table, chain, rule)
        remove_chains({"filter": {ipt.KUBE_SERVICES, ipt.KUBE_EXTERNAL_SERVICES,
                                  ipt.KUBE_FORWARD, ipt.KUBE_NODEPORTS,
                                  ipt.KUBE_PROXY_FIREWALL, ipt.KUBE_FIREWALL, ipt.CANARY},
                       "nat": {ipt.KUBE_SERVICES, ipt.KUBE_NODEPORTS, ipt.KUBE_POSTROUTING,
                               ipt.KUBE_MARK_MASQ, ipt.CANARY},
                       "mangle": {ipt.CANARY}}, also=ipt.is_service_chain)
