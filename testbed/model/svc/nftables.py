"""kube-proxy's nftables mode: one node's `ip kube-proxy` table, as the `nft -f` transaction
kube-proxy's syncProxyRules (pkg/proxy/nftables/proxier.go, through knftables) sends.
Pure.

The table's final state is what kube-proxy's own tests compare (TestOverallNFTablesRules,
`nft.Dump()`); tests/unit/test_kubeproxy_nftables.py replays this transaction and checks
that state against the test's expected output, object by object and rule by rule.

    services             ip daddr . meta l4proto . th dport vmap @service-ips, and the node
                         ports (`ip daddr @nodeport-ips ... vmap @service-nodeports`)
    service-<hash>-...   the cluster policy: masquerade off-cluster sources, then
                         `numgen random mod N vmap { 0 : goto endpoint-..., ... }`
    endpoint-<hash>-...  hairpin masquerade, then `dnat to ip:port`
    external-/local-/firewall-<hash>-...   external traffic, Local policy, source ranges
    no-endpoint-services / -nodeports      drop or reject when there are no endpoints

As in the iptables renderer, every sync is a full one (chains and maps added, flushed
and refilled in one transaction; affinity sets kept), only ready endpoints count, and
node ports are accepted on the node's primary address (`nodeport-ips`), kube-proxy's
default in this mode.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.plan import Endpoint, ServicePort, categorize

TABLE = "kube-proxy"
FAMILY = "ip"
PREFIX = f"{FAMILY} {TABLE}"
NAME_MAX = 240  # knftables.NameLengthMax (256) minus the longest prefix (16)

# base chains: (name, type, hook, priority), as nftablesBaseChains
BASE_CHAINS = (
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-forward", "filter", "forward", 0),
    ("filter-input", "filter", "input", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
    ("nat-prerouting", "nat", "prerouting", -100),
)
# jumps from the base chains, in nftablesJumpChains' order
JUMPS = (
    ("filter-prerouting-pre-dnat", "ct state new", "firewall-check"),
    ("filter-output-pre-dnat", "ct state new", "firewall-check"),
    ("filter-forward", "ct state new", "service-endpoints-check"),
    ("filter-input", "ct state new", "nodeport-endpoints-check"),
    ("filter-input", "ct state new", "service-endpoints-check"),
    ("filter-output", "ct state new", "service-endpoints-check"),
    ("filter-forward", "ct state new", "cluster-ips-check"),
    ("filter-output", "ct state new", "cluster-ips-check"),
    ("nat-output", "", "services"),
    ("nat-postrouting", "", "masquerading"),
    ("nat-prerouting", "", "services"),
)
STATIC_CHAINS = ("firewall-check", "service-endpoints-check", "nodeport-endpoints-check",
                 "cluster-ips-check", "services", "masquerading", "mark-for-masquerade")
MAPS = (
    ("no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict",
     "vmap to drop or reject packets to services with no endpoints"),
    ("no-endpoint-nodeports", "inet_proto . inet_service : verdict",
     "vmap to drop or reject packets to service nodeports with no endpoints"),
    ("firewall-ips", "ipv4_addr . inet_proto . inet_service : verdict",
     "destinations that are subject to LoadBalancerSourceRanges"),
    ("service-ips", "ipv4_addr . inet_proto . inet_service : verdict",
     "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    ("service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic"),
)
AFFINITY_PREFIX = "affinity-"


def hash_and_truncate(name: str) -> str:
    """kube-proxy's hashAndTruncate: 8 base32 characters of sha256(name), '-', name."""
    encoded = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    out = f"{encoded[:8]}-{name}"
    return out if len(out) <= NAME_MAX else out[:NAME_MAX - 3] + "..."


def port_base(sp: ServicePort) -> str:
    return hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.proto}/{sp.port_name}")


def endpoint_base(sp: ServicePort, ep: Endpoint) -> str:
    return hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.proto}/{sp.port_name}__"
                             f"{ep.ip.replace(':', '.')}/{ep.port}")


def is_service_chain(name: str) -> bool:
    """isServiceChainName: service and endpoint chain names hold a '/', the stock chains
    (`services`, `service-endpoints-check`, `firewall-check`, ...) none."""
    return "/" in name


@dataclass
class Table:
    """The per-service part of the table, as a sync leaves it: service and endpoint
    chains with their rules, affinity sets, and every map or set element by key."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)  # affinity set -> its `add set` line
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # container -> key


@dataclass
class _Tx:
    """The transaction, in the order knftables would write it; what the services part
    adds is also kept as a `Table` (for the next, partial, sync)."""

    lines: list[str]
    table: Table = field(default_factory=Table)

    def add(self, text: str) -> None:
        self.lines.append(f"add {text}")

    def chain(self, name: str) -> None:
        """Add and flush (knftables' ensureChain)."""
        self.add(f"chain {PREFIX} {name}")
        self.lines.append(f"flush chain {PREFIX} {name}")
        if is_service_chain(name):
            self.table.chains.setdefault(name, [])

    def rule(self, chain: str, rule: str, comment: str | None = None) -> None:
        text = rule + (f' comment "{comment}"' if comment is not None else "")
        self.add(f"rule {PREFIX} {chain} {text}")
        if chain in self.table.chains:
            self.table.chains[chain].append(text)

    def element(self, container: str, key: str, value: str | None = None,
                comment: str | None = None) -> None:
        text = key + (f' comment "{comment}"' if comment is not None else "")
        if value is not None:
            text += f" : {value}"
        line = f"add element {PREFIX} {container} {{ {text} }}"
        self.lines.append(line)
        self.table.elements.setdefault(container, {})[key] = line

    def affinity_set(self, name: str, timeout_s: int) -> None:
        line = (f"add set {PREFIX} {name} {{ type ipv4_addr ; flags dynamic,timeout ; "
                f"timeout {timeout_s}s ; }}")
        self.lines.append(line)
        self.table.sets[name] = line


def render(services: Sequence[ServicePort], config: ProxyConfig, service_cidrs: str = "",
           existing_chains: Iterable[str] = (), existing_sets: Iterable[str] = (),
           first: bool = True) -> str:
    """The whole transaction for one node, a full sync. `existing_chains` /
    `existing_sets`: what the table holds now (service chains and affinity sets no
    longer used are deleted); `first`: the first sync of this kube-proxy (base chains
    are recreated once)."""
    return render_full(services, config, service_cidrs, existing_chains, existing_sets,
                       first)[0]


def render_full(services: Sequence[ServicePort], config: ProxyConfig,
                service_cidrs: str = "", existing_chains: Iterable[str] = (),
                existing_sets: Iterable[str] = (), first: bool = True) -> tuple[str, Table]:
    """A full sync's transaction, and the per-service part of the table it leaves."""
    mark = config.masquerade_mark
    tx = _Tx([])
    tx.add(f'table {PREFIX} {{ comment "rules for kube-proxy" ; }}')
    if first:
        for name, *_ in BASE_CHAINS:
            tx.add(f"chain {PREFIX} {name}")
            tx.lines.append(f"delete chain {PREFIX} {name}")
    for name, kind, hook, priority in BASE_CHAINS:
        tx.add(f"chain {PREFIX} {name} {{ type {kind} hook {hook} priority {priority} ; }}")
        tx.lines.append(f"flush chain {PREFIX} {name}")
    for chain in STATIC_CHAINS:
        tx.chain(chain)
    for src, match, dst in JUMPS:
        tx.rule(src, f"{match} jump {dst}".strip())
    tx.rule("mark-for-masquerade", f"mark set mark or {mark}")
    tx.rule("masquerading", f"mark and {mark} == 0 return")
    tx.rule("masquerading", f"mark set mark xor {mark}")
    tx.rule("masquerading", "masquerade fully-random")
    tx.add(f'set {PREFIX} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}')
    tx.lines.append(f"flush set {PREFIX} cluster-ips")
    tx.rule("cluster-ips-check", "ip daddr @cluster-ips reject",
            "Reject traffic to invalid ports of ClusterIPs")
    if service_cidrs:
        tx.rule("cluster-ips-check", f"ip daddr {{ {service_cidrs} }} drop",
                "Drop traffic to unallocated ClusterIPs")
    tx.add(f'set {PREFIX} nodeport-ips {{ type ipv4_addr ; comment "IPs that accept NodePort '
           'traffic" ; }')
    tx.lines.append(f"flush set {PREFIX} nodeport-ips")
    if config.node_ip:  # the stock part: not in the per-service `Table`
        tx.lines.append(f"add element {PREFIX} nodeport-ips {{ {config.node_ip} }}")
    for name, kind, comment in MAPS:
        tx.add(f'map {PREFIX} {name} {{ type {kind} ; comment "{comment}" ; }}')
        tx.lines.append(f"flush map {PREFIX} {name}")
    tx.add(f'chain {PREFIX} reject-chain {{ comment "helper for @no-endpoint-services / '
           '@no-endpoint-nodeports" ; }')
    tx.lines.append(f"flush chain {PREFIX} reject-chain")
    tx.rule("reject-chain", "reject")
    tx.rule("service-endpoints-check",
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    tx.rule("nodeport-endpoints-check",
            "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")
    tx.rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips")
    tx.rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips")
    tx.rule("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")

    active_chains: set[str] = set()
    active_sets: set[str] = set()
    for sp in services:
        _service(tx, sp, config, active_chains, active_sets)
    stale = [c for c in sorted(set(existing_chains))
             if is_service_chain(c) and c not in active_chains]
    tx.lines += _remove_chains(stale)
    for name in sorted(set(existing_sets)):
        if name.startswith(AFFINITY_PREFIX) and name not in active_sets:
            tx.lines.append(f"delete set {PREFIX} {name}")
    return "\n".join(tx.lines) + "\n", tx.table


def render_partial(services: Sequence[ServicePort], config: ProxyConfig,
                   previous: Table) -> tuple[str, Table]:
    """A partial sync, as kube-proxy makes between full ones: only what changed since
    `previous` (the table the last sync left). New chains are added, changed ones
    flushed and rewritten, elements added and deleted one by one (no map is flushed),
    chains and affinity sets no longer used deleted last; the stock chains and rules
    are left alone. An empty change is an empty transaction."""
    scratch = _Tx([])
    active_chains: set[str] = set()
    active_sets: set[str] = set()
    for sp in services:
        _service(scratch, sp, config, active_chains, active_sets)
    new = scratch.table
    out: list[str] = []
    out += [f"add chain {PREFIX} {c}" for c in new.chains if c not in previous.chains]
    out += [line for name, line in new.sets.items() if name not in previous.sets]
    for chain, rules in new.chains.items():
        if rules != previous.chains.get(chain):
            if chain in previous.chains:
                out.append(f"flush chain {PREFIX} {chain}")
            out += [f"add rule {PREFIX} {chain} {rule}" for rule in rules]
    for container in sorted(set(previous.elements) | set(new.elements)):
        old, now = previous.elements.get(container, {}), new.elements.get(container, {})
        out += [f"delete element {PREFIX} {container} {{ {key} }}" for key, line in
                old.items() if now.get(key) != line]
        out += [line for key, line in now.items() if old.get(key) != line]
    out += _remove_chains([c for c in previous.chains if c not in new.chains])
    out += [f"delete set {PREFIX} {name}" for name in previous.sets if name not in new.sets]
    return "".join(f"{line}\n" for line in out), new


def _service(tx: _Tx, sp: ServicePort, config: ProxyConfig, active_chains: set[str],
             active_sets: set[str]) -> None:
    """One service port, in syncProxyRules' order."""
    proto, key, base = sp.proto, sp.key, port_base(sp)
    cluster_chain, local_chain = f"service-{base}", f"local-{base}"
    external_chain, fw_chain = f"external-{base}", f"firewall-{base}"
    cat = categorize(sp, config.node)
    cluster_eps, local_eps, reachable = cat.cluster, cat.local, cat.reachable
    external_local, has_endpoints = cat.external_local, cat.has_endpoints
    uses_cluster, uses_local = cat.uses_cluster, cat.uses_local
    has_internal, has_external = cat.has_internal, cat.has_external
    ep_chain = {e.address: f"endpoint-{endpoint_base(sp, e)}" for e in reachable}
    affinity = {e.address: f"{AFFINITY_PREFIX}{endpoint_base(sp, e)}" for e in reachable}

    for e in reachable:
        tx.chain(ep_chain[e.address])
        active_chains.add(ep_chain[e.address])
        if sp.affinity_timeout_s:
            active_sets.add(affinity[e.address])
    uses_cluster_chain = bool(cluster_eps) and uses_cluster
    if uses_cluster_chain:
        tx.chain(cluster_chain)
        active_chains.add(cluster_chain)
    uses_local_chain = bool(local_eps) and uses_local
    if uses_local_chain:
        tx.chain(local_chain)
        active_chains.add(local_chain)
    internal_chain = local_chain if sp.internal_local else cluster_chain
    external_policy_chain = local_chain if external_local else cluster_chain
    uses_external_chain = has_endpoints and sp.externally_accessible
    if uses_external_chain:
        tx.chain(external_chain)
        active_chains.add(external_chain)
    reject = "goto reject-chain"
    internal_verdict = reject if not has_endpoints else "drop"
    external_verdict = reject if not has_endpoints else "drop"

    port = str(sp.port)
    tx.element("cluster-ips", sp.cluster_ip)
    if has_internal:
        tx.element("service-ips", f"{sp.cluster_ip} . {proto} . {port}",
                   f"goto {internal_chain}")
    else:
        tx.element("no-endpoint-services", f"{sp.cluster_ip} . {proto} . {port}",
                   internal_verdict, key)
    for ip in sp.external_ips:
        if has_endpoints:
            tx.element("service-ips", f"{ip} . {proto} . {port}", f"goto {external_chain}")
        if not has_external:
            tx.element("no-endpoint-services", f"{ip} . {proto} . {port}", external_verdict,
                       key)
    uses_fw = bool(sp.load_balancer_ips) and bool(sp.source_ranges)
    if uses_fw:
        tx.chain(fw_chain)
        active_chains.add(fw_chain)
    for ip in sp.load_balancer_ips:
        if has_endpoints:
            tx.element("service-ips", f"{ip} . {proto} . {port}", f"goto {external_chain}")
        if uses_fw:
            tx.element("firewall-ips", f"{ip} . {proto} . {port}", f"goto {fw_chain}")
    if not has_external:
        for ip in sp.load_balancer_ips:
            tx.element("no-endpoint-services", f"{ip} . {proto} . {port}", external_verdict,
                       key)
    if sp.node_port:
        if has_endpoints:
            tx.element("service-nodeports", f"{proto} . {sp.node_port}",
                       f"goto {external_chain}")
        if not has_external:
            tx.element("no-endpoint-nodeports", f"{proto} . {sp.node_port}",
                       external_verdict, key)

    if has_internal:
        if config.masquerade_all:
            tx.rule(internal_chain, f"ip daddr {sp.cluster_ip} jump mark-for-masquerade")
        elif config.cluster_cidr:
            tx.rule(internal_chain, f"ip daddr {sp.cluster_ip} ip saddr != "
                    f"{config.cluster_cidr} jump mark-for-masquerade")
    if uses_external_chain:
        if not external_local:
            tx.rule(external_chain, "jump mark-for-masquerade")
        else:
            if config.cluster_cidr:
                tx.rule(external_chain, f"ip saddr {config.cluster_cidr} goto {cluster_chain}",
                        "short-circuit pod traffic")
            tx.rule(external_chain, "fib saddr type local jump mark-for-masquerade",
                    "masquerade local traffic")
            tx.rule(external_chain, f"fib saddr type local goto {cluster_chain}",
                    "short-circuit local traffic")
        if has_external:
            tx.rule(external_chain, f"goto {external_policy_chain}")
    if uses_fw:
        sources = [c.strip() for c in sp.source_ranges]
        if any(_contains(c, config.node_ip) for c in sources):
            sources += list(sp.load_balancer_ips)
        tx.rule(fw_chain, f"ip saddr != {{ {' , '.join(sources)} }} drop")
    if sp.affinity_timeout_s:
        for e in reachable:
            tx.affinity_set(affinity[e.address], sp.affinity_timeout_s)
    if uses_cluster_chain:
        _to_endpoints(tx, sp, cluster_chain, cluster_eps, ep_chain, affinity)
    if uses_local_chain:
        _to_endpoints(tx, sp, local_chain, local_eps, ep_chain, affinity)
    for e in reachable:
        chain = ep_chain[e.address]
        tx.rule(chain, f"ip saddr {e.ip} jump mark-for-masquerade")
        if sp.affinity_timeout_s:
            tx.rule(chain, f"update @{affinity[e.address]} {{ ip saddr }}")
        tx.rule(chain, f"meta l4proto {proto} dnat to {e.address}")


def _remove_chains(chains: Sequence[str]) -> list[str]:
    """Stale chains: all flushed before any is deleted (a service chain's verdict map
    jumps to endpoint chains: deleting one still referred to fails with EBUSY)."""
    return ([f"flush chain {PREFIX} {c}" for c in chains]
            + [f"delete chain {PREFIX} {c}" for c in chains])


def _to_endpoints(tx: _Tx, sp: ServicePort, chain: str, eps: list[Endpoint],
                  ep_chain: dict[str, str], affinity: dict[str, str]) -> None:
    """writeServiceToEndpointRules: affinity first, then one numgen verdict map."""
    if sp.affinity_timeout_s:
        for e in eps:
            tx.rule(chain, f"ip saddr @{affinity[e.address]} goto {ep_chain[e.address]}")
    elements = " , ".join(f"{i} : goto {ep_chain[e.address]}" for i, e in enumerate(eps))
    tx.rule(chain, f"numgen random mod {len(eps)} vmap {{ {elements} }}")


def _contains(cidr: str, ip: str) -> bool:
    try:
        return bool(ip) and ip_address(ip) in ip_network(cidr, strict=False)
    except ValueError:
        return False


def listed_objects(listing: str) -> tuple[list[str], list[str]]:
    """(chains, sets) in `nft list table ip kube-proxy` output (for stale deletion)."""
    chains, sets = [], []
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 2 and words[-1] == "{" and words[0] in ("chain", "set"):
            (chains if words[0] == "chain" else sets).append(words[1])
    return chains, sets
