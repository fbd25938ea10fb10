"""kube-proxy's iptables mode: the rules of one node, as `syncProxyRules` writes them. Pure.

`render` gives the payload kube-proxy hands `iptables-restore --noflush` (the "input
form": addresses without /32, comments quoted as kube-proxy quotes them); `jump_rules`
the rules it makes sure of in the built-in chains (`iptablesJumpChains`, inserted at the
top with `-C` then `-I`). Both follow pkg/proxy/iptables/proxier.go of kubernetes, and
tests/unit/test_kubeproxy_iptables.py checks them, rule by rule, against that package's
own expected outputs (proxier_test.go) for the same services and endpoints.

Where the testbed differs from kube-proxy, deliberately:
- every sync is a full sync (kube-proxy rewrites only changed services' chains between
  full syncs): the kernel ends in the same state, the payload is larger;
- services are written in `ns/name:port` order; kube-proxy iterates a Go map, so the
  order of KUBE-SERVICES rules differs from run to run there (its tests sort them);
- only ready endpoints are used: the testbed has no terminating pods, so kube-proxy's
  fall-back to serving-terminating endpoints never applies;
- no topology hints, dual stack or `--nodeport-addresses`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Callable

from testbed.model.svc.config import ProxyConfig  # the golden tests take it from here
from testbed.model.svc.plan import Endpoint, ServicePort, categorize

# Chain names, as in proxier.go
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's, written by kube-proxy for localhost node ports
CANARY = "KUBE-PROXY-CANARY"
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")
LOCALHOST_NPS_COUNTER = "localhost_nps_accepted_pkts"
Comment = Callable[[str], str]  # "-m comment --comment <text>", or "" in large clusters
INVALID_COUNTER = "ct_state_invalid_dropped_pkts"


def port_proto_hash(key: str, protocol: str) -> str:
    """kube-proxy's chain-name hash: base32 of sha256(`ns/name:port` + protocol), 16 chars."""
    digest = hashlib.sha256((key + protocol.lower()).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_chain(prefix: str, sp: ServicePort) -> str:
    """KUBE-SVC-/SVL-/EXT-/FW- + the service port's hash."""
    return f"KUBE-{prefix}-{port_proto_hash(sp.key, sp.protocol)}"


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    """KUBE-SEP- + hash of the service port, protocol and `ip:port`."""
    digest = hashlib.sha256((sp.key + sp.proto + ep.address).encode()).digest()
    return "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]


def probability(n: int) -> str:
    """The statistic match's probability of the first of n endpoints left."""
    return f"{1.0 / n:0.10f}"


def is_service_chain(name: str) -> bool:
    return name.startswith(SERVICE_CHAIN_PREFIXES)


def jump_rules(config: ProxyConfig) -> list[tuple[str, str, str]]:
    """(table, built-in chain, rule) kube-proxy ensures at the top of the built-in chains,
    in its order (each is inserted at position 1, so the last ends first)."""
    new = "-m conntrack --ctstate NEW "
    out = [
        ("filter", "INPUT", f'{new}-m comment --comment "kubernetes externally-visible '
         f'service portals" -j {KUBE_EXTERNAL_SERVICES}'),
        ("filter", "FORWARD", f'{new}-m comment --comment "kubernetes externally-visible '
         f'service portals" -j {KUBE_EXTERNAL_SERVICES}'),
        ("filter", "INPUT", '-m comment --comment "kubernetes health check service ports" '
         f"-j {KUBE_NODEPORTS}"),
        ("filter", "FORWARD", f'{new}-m comment --comment "kubernetes service portals" '
         f"-j {KUBE_SERVICES}"),
        ("filter", "OUTPUT", f'{new}-m comment --comment "kubernetes service portals" '
         f"-j {KUBE_SERVICES}"),
        ("filter", "FORWARD", '-m comment --comment "kubernetes forwarding rules" '
         f"-j {KUBE_FORWARD}"),
        ("filter", "INPUT", f'{new}-m comment --comment "kubernetes load balancer firewall" '
         f"-j {KUBE_PROXY_FIREWALL}"),
        ("filter", "OUTPUT", f'{new}-m comment --comment "kubernetes load balancer firewall" '
         f"-j {KUBE_PROXY_FIREWALL}"),
        ("filter", "FORWARD", f'{new}-m comment --comment "kubernetes load balancer '
         f'firewall" -j {KUBE_PROXY_FIREWALL}'),
        ("nat", "OUTPUT", f'-m comment --comment "kubernetes service portals" '
         f"-j {KUBE_SERVICES}"),
        ("nat", "PREROUTING", f'-m comment --comment "kubernetes service portals" '
         f"-j {KUBE_SERVICES}"),
        ("nat", "POSTROUTING", '-m comment --comment "kubernetes postrouting rules" '
         f"-j {KUBE_POSTROUTING}"),
    ]
    if config.localhost_nodeports:  # kubelet's jump, which kube-proxy also ensures
        out += [("filter", "INPUT", f"-j {KUBE_FIREWALL}"),
                ("filter", "OUTPUT", f"-j {KUBE_FIREWALL}")]
    return out


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *parts: str) -> None:
        self.lines.append(" ".join(p for p in parts if p))


def render(services: Sequence[ServicePort], config: ProxyConfig,
           existing_nat_chains: Iterable[str] = ()) -> str:
    """The whole iptables-restore payload (filter then nat) for one node, a full sync.

    `existing_nat_chains`: the nat chains on the node now; service chains among them
    that this sync no longer uses are flushed and deleted (`-X`), as kube-proxy does.
    """
    return render_sync(services, config, existing_nat_chains).payload


@dataclass(frozen=True)
class Sync:
    """A sync's payload and the service chains the node holds once it is applied."""

    payload: str
    active_chains: frozenset[str]


def render_sync(services: Sequence[ServicePort], config: ProxyConfig,
                existing_nat_chains: Iterable[str] = (),
                unchanged: Collection[tuple[str, str]] = ()) -> Sync:
    """A sync: full, or partial when `unchanged` names service ports ((key, protocol))
    whose own chains (SVC, SVL, EXT, FW, SEP) are on the node already as they would be
    written now. As kube-proxy's partial syncs, those chains are left out of the payload
    (`--noflush` keeps them); the shared chains are always written whole."""
    mark = config.masquerade_mark
    filter_chains = [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS,
                     KUBE_PROXY_FIREWALL]
    filter_rules = _Lines()
    nat_chains = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]
    nat_rules = _Lines()
    active: set[str] = set(nat_chains)

    nat_rules.add(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    nat_rules.add(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    nat_rules.add(f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic '
                  'requiring SNAT" -j MASQUERADE', "--random-fully" if config.random_fully
                  else "")
    nat_rules.add(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")
    if config.localhost_nodeports:
        filter_chains.append(KUBE_FIREWALL)
        filter_rules.add(f'-A {KUBE_FIREWALL} -m comment --comment "block incoming localnet '
                         'connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! '
                         "--ctstate RELATED,ESTABLISHED,DNAT -j DROP")

    total_endpoints = sum(len(sp.ready_endpoints()) for sp in services)
    large = total_endpoints > config.large_cluster_endpoints

    def comment(text: str) -> str:
        return "" if large else f"-m comment --comment {text}"

    skip = set(unchanged)
    fragments: list[str] = []
    own_chains: list[str]
    for sp in services:
        own, own_chains = _Lines(), []
        _service(sp, config, filter_rules, nat_rules, own, own_chains, active, comment)
        if (sp.key, sp.protocol) not in skip:
            nat_chains.extend(own_chains)
            fragments.extend(own.lines)

    nat_rules.add(f'-A {KUBE_SERVICES} -m comment --comment "kubernetes service nodeports; '
                  'NOTE: this must be the last rule in this chain" -m addrtype --dst-type '
                  f"LOCAL -j {KUBE_NODEPORTS}")
    filter_rules.add(f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID",
                     f"-m nfacct --nfacct-name {INVALID_COUNTER}" if config.nfacct else "",
                     "-j DROP")
    filter_rules.add(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" '
                     f"-m mark --mark {mark}/{mark} -j ACCEPT")
    filter_rules.add(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding '
                     'conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')

    stale = [c for c in sorted(set(existing_nat_chains))
             if is_service_chain(c) and c not in active]
    nat_chains.extend(stale)
    lines = ["*filter", *(f":{c} - [0:0]" for c in filter_chains), *filter_rules.lines,
             "COMMIT", "*nat", *(f":{c} - [0:0]" for c in nat_chains), *nat_rules.lines,
             *fragments, *(f"-X {c}" for c in stale), "COMMIT"]
    return Sync("\n".join(lines) + "\n",
                frozenset(c for c in active if is_service_chain(c)))


def _service(sp: ServicePort, config: ProxyConfig, filter_rules: _Lines, top: _Lines,
             own: _Lines, own_chains: list[str], active: set[str], comment: Comment) -> None:
    """One service port's rules, in syncProxyRules' order: those in the shared chains
    (`top`: KUBE-SERVICES, KUBE-NODEPORTS; and the filter table's) and those in its own
    chains (`own`, declared in `own_chains`)."""
    c = comment  # -m comment --comment <text>, or nothing in large-cluster mode
    key, proto, port = sp.key, sp.proto, str(sp.port)
    match = f"-m {proto} -p {proto}"
    svc_chain, svl_chain = service_chain("SVC", sp), service_chain("SVL", sp)
    ext_chain, fw_chain = service_chain("EXT", sp), service_chain("FW", sp)
    cat = categorize(sp, config.node)
    cluster_eps, local_eps, reachable = cat.cluster, cat.local, cat.reachable
    external_local, has_endpoints = cat.external_local, cat.has_endpoints
    uses_cluster, uses_local = cat.uses_cluster, cat.uses_local
    has_internal, has_external = cat.has_internal, cat.has_external

    internal_chain = svl_chain if sp.internal_local else svc_chain
    external_policy_chain = svl_chain if external_local else svc_chain
    uses_ext_chain = has_endpoints and sp.externally_accessible
    lb_chain = ext_chain
    uses_fw = has_endpoints and bool(sp.load_balancer_ips) and bool(sp.source_ranges)
    if uses_fw:
        lb_chain = fw_chain

    # the filter rules for traffic with nowhere to go: rejected without any endpoint,
    # dropped when only the Local policy leaves none
    if not has_endpoints:
        target, none_comment = "REJECT", f'"{key} has no endpoints"'
    else:
        target, none_comment = "DROP", f'"{key} has no local endpoints"'

    # the cluster IP
    if has_internal:
        top.add(f"-A {KUBE_SERVICES} -m comment --comment \"{key} cluster IP\" {match} "
                f"-d {sp.cluster_ip} --dport {port} -j {internal_chain}")
    else:
        filter_rules.add(f"-A {KUBE_SERVICES} -m comment --comment {none_comment} {match} "
                         f"-d {sp.cluster_ip} --dport {port} -j {target}")
    # external IPs
    for ip in sp.external_ips:
        if has_endpoints:
            top.add(f"-A {KUBE_SERVICES} -m comment --comment \"{key} external IP\" "
                    f"{match} -d {ip} --dport {port} -j {ext_chain}")
        if not has_external:
            filter_rules.add(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {none_comment} "
                             f"{match} -d {ip} --dport {port} -j {target}")
    # load-balancer ingress IPs
    for ip in sp.load_balancer_ips:
        if has_endpoints:
            top.add(f"-A {KUBE_SERVICES} -m comment --comment \"{key} loadbalancer IP\" "
                    f"{match} -d {ip} --dport {port} -j {lb_chain}")
        if uses_fw:
            filter_rules.add(f"-A {KUBE_PROXY_FIREWALL} -m comment --comment \"{key} traffic "
                             f"not accepted by {fw_chain}\" {match} -d {ip} --dport {port} "
                             "-j DROP")
    if not has_external:
        for ip in sp.load_balancer_ips:
            filter_rules.add(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {none_comment} "
                             f"{match} -d {ip} --dport {port} -j {target}")
    # the node port
    if sp.node_port:
        if has_endpoints:
            if config.localhost_nodeports and config.nfacct:
                top.add(f"-A {KUBE_NODEPORTS} -m comment --comment {key} {match} "
                        f"-d 127.0.0.0/8 --dport {sp.node_port} -m nfacct --nfacct-name "
                        f"{LOCALHOST_NPS_COUNTER} -j {ext_chain}")
            top.add(f"-A {KUBE_NODEPORTS} -m comment --comment {key} {match} "
                    f"--dport {sp.node_port} -j {ext_chain}")
        if not has_external:
            filter_rules.add(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {none_comment} "
                             f"-m addrtype --dst-type LOCAL {match} --dport {sp.node_port} "
                             f"-j {target}")
    if sp.health_check_node_port and external_local:  # NeedsHealthCheck: Local only
        filter_rules.add(f"-A {KUBE_NODEPORTS} -m comment --comment \"{key} health check "
                         f"node port\" -m tcp -p tcp --dport {sp.health_check_node_port} "
                         "-j ACCEPT")

    # internal traffic: masquerade what comes from outside the cluster
    if has_internal:
        args = (f"-m comment --comment \"{key} cluster IP\" {match} -d {sp.cluster_ip} "
                f"--dport {port}")
        if config.masquerade_all:
            own.add(f"-A {internal_chain} {args} -j {KUBE_MARK_MASQ}")
        elif config.cluster_cidr:
            own.add(f"-A {internal_chain} {args} ! -s {config.cluster_cidr} "
                    f"-j {KUBE_MARK_MASQ}")
    # external traffic
    if uses_ext_chain:
        own_chains.append(ext_chain)
        active.add(ext_chain)
        if not external_local:
            own.add(f"-A {ext_chain} -m comment --comment \"masquerade traffic for "
                    f"{key} external destinations\" -j {KUBE_MARK_MASQ}")
        else:
            if config.cluster_cidr:
                own.add(f"-A {ext_chain} -m comment --comment \"pod traffic for {key} "
                        f"external destinations\" -s {config.cluster_cidr} "
                        f"-j {svc_chain}")
            own.add(f"-A {ext_chain} -m comment --comment \"masquerade LOCAL traffic "
                    f"for {key} external destinations\" -m addrtype --src-type LOCAL "
                    f"-j {KUBE_MARK_MASQ}")
            own.add(f"-A {ext_chain} -m comment --comment \"route LOCAL traffic for "
                    f"{key} external destinations\" -m addrtype --src-type LOCAL "
                    f"-j {svc_chain}")
        if has_external:
            own.add(f"-A {ext_chain} -j {external_policy_chain}")
    # the LoadBalancer source-range firewall
    if uses_fw:
        own_chains.append(fw_chain)
        active.add(fw_chain)
        head = f"-A {fw_chain} -m comment --comment \"{key} loadbalancer IP\""
        allow_node = False
        for cidr in sp.source_ranges:
            own.add(f"{head} -s {cidr.strip()} -j {ext_chain}")
            allow_node = allow_node or _contains(cidr.strip(), config.node_ip)
        if allow_node:
            for ip in sp.load_balancer_ips:
                own.add(f"{head} -s {ip} -j {ext_chain}")
        own.add(f"-A {fw_chain} -m comment --comment \"other traffic to {key} will be "
                "dropped by KUBE-PROXY-FIREWALL\"")
    # service -> endpoints
    if cluster_eps and uses_cluster:
        own_chains.append(svc_chain)
        active.add(svc_chain)
        _to_endpoints(own, sp, svc_chain, cluster_eps, c)
    if local_eps and uses_local:
        own_chains.append(svl_chain)
        active.add(svl_chain)
        _to_endpoints(own, sp, svl_chain, local_eps, c)
    # endpoint chains
    for ep in reachable:
        chain = endpoint_chain(sp, ep)
        own_chains.append(chain)
        active.add(chain)
        head = f"-A {chain} {c(key)}".rstrip()
        own.add(f"{head} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        recent = f"-m recent --name {chain} --set " if sp.affinity_timeout_s else ""
        own.add(f"{head} {recent}{match} -j DNAT --to-destination {ep.address}")


def _to_endpoints(nat_rules: _Lines, sp: ServicePort, chain: str, eps: list[Endpoint],
                  c: Comment) -> None:
    """writeServiceToEndpointRules: affinity checks first, then the random spread."""
    if sp.affinity_timeout_s:
        for ep in eps:
            sep = endpoint_chain(sp, ep)
            nat_rules.add(f"-A {chain}", c(f'"{sp.key} -> {ep.address}"'),
                          f"-m recent --name {sep} --rcheck --seconds {sp.affinity_timeout_s} "
                          f"--reap -j {sep}")
    for i, ep in enumerate(eps):
        stat = (f"-m statistic --mode random --probability {probability(len(eps) - i)}"
                if i < len(eps) - 1 else "")
        nat_rules.add(f"-A {chain}", c(f'"{sp.key} -> {ep.address}"'),
                      stat, f"-j {endpoint_chain(sp, ep)}")


def _contains(cidr: str, ip: str) -> bool:
    try:
        return bool(ip) and ip_address(ip) in ip_network(cidr, strict=False)
    except ValueError:
        return False
