"""kube-proxy's legacy userspace mode on a node: a proxy socket per service port
(testbed.proxy.common.userspace) and the portal rules to it (testbed.model.svc.userspace),
written whole with `iptables-restore --noflush` on every sync."""

from __future__ import annotations

from testbed.model.svc import userspace as us
from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.modes import UserspaceMode
from testbed.proxy.common.netfilter import (
    IPTABLES_WAIT,
    delete_rule,
    ensure_chain,
    ensure_rule,
    must,
    remove_chains,
    write_sysctl,
)
from testbed.proxy.common.state import ProxyState
from testbed.proxy.common.userspace import UserspaceProxier


class UserspaceKubeProxy(UserspaceMode):
    partial_syncs = False  # the portal rules are written whole every time

    def __init__(self, node: str, node_ip: str) -> None:
        self.node, self.node_ip = node, node_ip
        self.sockets = UserspaceProxier()
        self.proxy_ports: dict[str, int] = {}

    def start(self) -> None:
        """route_localnet (DNAT to the node's own proxy port) and the portal chains'
        jumps, first or last in the built-in chains as iptablesInit put them."""
        write_sysctl("net.ipv4.conf.all.route_localnet", "1")
        for table, chain, position, rule in us.jump_rules():
            ensure_chain(table, rule.split()[-1])
            ensure_rule(table, chain, rule, position)

    def sync(self, state: ProxyState, config: ProxyConfig, full: bool) -> str:
        """The sockets first (the rules need their ports), then the rules to them."""
        self.proxy_ports = self.sockets.sync(state.services)
        payload = us.render(state.services, self.proxy_ports, self.node_ip)
        must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], payload)
        return payload

    def cleanup(self) -> None:
        for table, chain, _, rule in us.jump_rules():
            delete_rule(table, chain, rule)
        remove_chains({"filter": set(us.FILTER_CHAINS), "nat": set(us.NAT_CHAINS)})
