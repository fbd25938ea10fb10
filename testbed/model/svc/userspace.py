"""kube-proxy's legacy userspace mode (removed in Kubernetes 1.26; the mode the seed
series' second part describes first): rules that send every service connection to a
port kube-proxy itself listens on. Pure.

kube-proxy opened one listening socket per service port ("proxy port", chosen by the
kernel) on all addresses and wrote portal rules, as pkg/proxy/userspace/proxier.go
did (iptablesInit, iptablesContainerPortalArgs, iptablesHostPortalArgs):

    nat PREROUTING  -> KUBE-PORTALS-CONTAINER  (first)   REDIRECT --to-ports <proxy port>
    nat OUTPUT      -> KUBE-PORTALS-HOST       (first)   DNAT --to-destination <node>:<port>
    nat PREROUTING  -> KUBE-NODEPORT-CONTAINER (last)    node ports, REDIRECT
    nat OUTPUT      -> KUBE-NODEPORT-HOST      (last)    node ports, DNAT
    filter INPUT    -> KUBE-NODEPORT-NON-LOCAL (first)   node ports, ACCEPT

kube-proxy then carried each connection itself: accept, pick an endpoint (round robin,
or by client address with ClientIP affinity), connect to it from the node, copy bytes
both ways. The testbed's proxy is testbed.proxy.common.userspace; here are only its rules,
written whole with `iptables-restore --noflush` (kube-proxy added them one by one with
`iptables -C`/`-A`; the resulting chains are the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from testbed.model.svc.plan import ServicePort

PORTALS_CONTAINER = "KUBE-PORTALS-CONTAINER"
PORTALS_HOST = "KUBE-PORTALS-HOST"
NODEPORT_CONTAINER = "KUBE-NODEPORT-CONTAINER"
NODEPORT_HOST = "KUBE-NODEPORT-HOST"
NODEPORT_NON_LOCAL = "KUBE-NODEPORT-NON-LOCAL"
NAT_CHAINS = (PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST)
FILTER_CHAINS = (NODEPORT_NON_LOCAL,)

PORTALS_COMMENT = '"handle ClusterIPs; NOTE: this must be before the NodePort rules"'
NODEPORTS_COMMENT = '"handle service NodePorts; NOTE: this must be the last rule in the chain"'


def port_key(sp: ServicePort) -> str:
    """The key of a service port's proxy socket: `ns/name:port/PROTO`."""
    return f"{sp.key}/{sp.protocol}"


def jump_rules() -> list[tuple[str, str, str, str]]:
    """(table, built-in chain, "I" to insert first or "A" to append, rule), as
    iptablesInit ensures them."""
    return [
        ("nat", "PREROUTING", "I", f"-m comment --comment {PORTALS_COMMENT} "
         f"-j {PORTALS_CONTAINER}"),
        ("nat", "OUTPUT", "I", f"-m comment --comment {PORTALS_COMMENT} -j {PORTALS_HOST}"),
        ("nat", "PREROUTING", "A", f"-m addrtype --dst-type LOCAL -m comment --comment "
         f"{NODEPORTS_COMMENT} -j {NODEPORT_CONTAINER}"),
        ("nat", "OUTPUT", "A", f"-m addrtype --dst-type LOCAL -m comment --comment "
         f"{NODEPORTS_COMMENT} -j {NODEPORT_HOST}"),
        ("filter", "INPUT", "I", '-m comment --comment "Ensure that non-local NodePort '
         f'traffic can flow" -j {NODEPORT_NON_LOCAL}'),
    ]


def render(services: Sequence[ServicePort], proxy_ports: Mapping[str, int],
           node_ip: str) -> str:
    """The portal rules of one node, given the port its proxy listens on for each
    service port (`port_key`); service ports without a proxy port get no rule."""
    nat: list[str] = []
    filt: list[str] = []
    for sp in services:
        proxy_port = proxy_ports.get(port_key(sp))
        if proxy_port is None:
            continue
        common = f"-m comment --comment {sp.key} -p {sp.proto} -m {sp.proto}"
        redirect = f"-j REDIRECT --to-ports {proxy_port}"
        dnat = f"-j DNAT --to-destination {node_ip}:{proxy_port}"
        portal = f"{common} --dport {sp.port} -d {sp.cluster_ip}/32"
        nat.append(f"-A {PORTALS_CONTAINER} {portal} {redirect}")
        nat.append(f"-A {PORTALS_HOST} {portal} {dnat}")
        if sp.node_port:
            node_port = f"{common} --dport {sp.node_port}"
            nat.append(f"-A {NODEPORT_CONTAINER} {node_port} {redirect}")
            nat.append(f"-A {NODEPORT_HOST} {node_port} {dnat}")
            filt.append(f"-A {NODEPORT_NON_LOCAL} {node_port} -j ACCEPT")
    lines = ["*filter", *(f":{c} - [0:0]" for c in FILTER_CHAINS), *filt, "COMMIT",
             "*nat", *(f":{c} - [0:0]" for c in NAT_CHAINS), *nat, "COMMIT"]
    return "\n".join(lines) + "\n"
