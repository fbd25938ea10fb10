"""Calico's BIRD configuration for one node, translated to BIRD 2. Pure.

From Calico's confd templates as compiled in confd/tests/compiled_templates/mesh/ipip-off
(bird.cfg, bird_aggr.cfg, bird_ipam.cfg): the kernel protocol (learn, persist, scan time
2, graceful restart, merge paths, export through calico_kernel_programming), device and
direct protocols (no cali* interfaces), the node's blocks as blackhole static routes,
calico_aggr (export a block, nothing beneath it), calico_export_to_bgp_peers (only the
pool's routes), and the full mesh: one iBGP session a peer, AS 64512, the side whose
peer address is greater (as a string) passive ("make mesh unidirectional", confd's
bgp_processor), `gateway recursive`, `add paths`, the timers of bgp_template.

Left out: the local-preference and metric arithmetic of the export and import filters,
communities, BGP filters, IPv6. Differs: the kernel export leaves out the direct
protocol's routes (the node's connected routes, which the kernel holds already; BIRD 2
would add second copies with its own metric), and routes reach the kernel with BIRD 2's
kernel metric (32) where Calico's BIRD writes 1024.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

AS_NUMBER = 64512  # BGPConfiguration's default asNumber
ROUTER_AS = 64513  # the top-of-rack router's (a global BGPPeer of its own AS)
DEFAULT_METRIC = 1024  # calico_kernel_programming: krt_metric of BGP routes


def peer_protocol(peer: IPv4Address) -> str:
    """Calico's protocol name for a mesh peer: Mesh_ and the address with underscores."""
    return "Mesh_" + str(peer).replace(".", "_")


def render(router_id: IPv4Address, blocks: Sequence[IPv4Network], pool: IPv4Network,
           peers: Sequence[IPv4Address], tor: IPv4Address | None = None) -> str:
    """bird.conf for a node with address `router_id`, its IPAM `blocks`, the IP pool,
    the other nodes' addresses and, if given, its top-of-rack router (a global BGPPeer:
    an eBGP session to AS ROUTER_AS, confd's `Global_<address>` protocol). In confd's
    order: the blocks and the export filters, the kernel, device and direct protocols
    with the BGP template, then a session per peer."""
    lines = [*_blocks_and_filters(router_id, blocks, pool), *_protocols(router_id),
             *_sessions(router_id, peers, tor)]
    return "\n".join(lines) + "\n"


def _blocks_and_filters(router_id: IPv4Address, blocks: Sequence[IPv4Network],
                        pool: IPv4Network) -> list[str]:
    """The blackhole routes of the node's blocks and the filters that export them."""
    return [
        "# Calico's BIRD configuration (testbed.model.podnet.bird), in BIRD 2 syntax",
        f"router id {router_id};",
        "log stderr all;",
        "",
        "protocol static {",
        "  ipv4;",
        *(f"  route {b} blackhole;" for b in blocks),
        "}",
        "",
        "# Aggregation of routes on this host; export the block, nothing beneath it.",
        "function calico_aggr_v4() {",
        *(line for b in blocks for line in (
            f"  if ( net = {b} ) then {{ accept; }}",
            f"  if ( net ~ {b} ) then {{ reject; }}")),
        "}",
        "",
        "function calico_export_to_bgp_peers_v4() {",
        "  if (defined(ifname)) then {",
        '    if ((ifname ~ "*.cali") || (ifname ~ "*.calico")) then { reject; }',
        "  }",
        "  calico_aggr_v4();",
        f"  if (net ~ {pool}) then {{ accept; }}",
        "}",
        "",
    ]


def _protocols(router_id: IPv4Address) -> list[str]:
    """How BIRD programs the kernel, which interfaces it reads, and the BGP template."""
    return [
        "filter calico_kernel_programming_v4 {",
        "  # the node's connected routes are the kernel's already",
        "  if (source = RTS_DEVICE) then { reject; }",
        "  if (defined(source) && (source = RTS_BGP)) then {",
        f"    krt_prefsrc = {router_id};",
        f"    krt_metric = {DEFAULT_METRIC};",
        "  }",
        "  accept;",
        "}",
        "",
        "protocol kernel {",
        "  learn;",
        "  persist;",
        "  scan time 2;",
        "  graceful restart;",
        "  merge paths on;",
        "  ipv4 { import all; export filter calico_kernel_programming_v4; };",
        "}",
        "",
        "protocol device {",
        "  scan time 2;",
        "}",
        "",
        "protocol direct {",
        "  ipv4;",
        '  interface -"cali*", -"kube-ipvs*", "*";',
        "}",
        "",
        "template bgp bgp_template {",
        '  description "Connection to BGP peer";',
        f"  local as {AS_NUMBER};",
        "  graceful restart;",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "  ipv4 {",
        "    gateway recursive;",
        "    add paths on;",
        "    import all;",
        "    export filter { calico_export_to_bgp_peers_v4(); reject; };",
        "  };",
        "}",
    ]


def _sessions(router_id: IPv4Address, peers: Sequence[IPv4Address],
              tor: IPv4Address | None) -> list[str]:
    """One iBGP session per other node (the higher address passive), and the eBGP session
    to the top-of-rack router when there is one."""
    lines: list[str] = []
    for peer in peers:
        lines += [
            "",
            f"protocol bgp {peer_protocol(peer)} from bgp_template {{",
            f"  neighbor {peer} as {AS_NUMBER};",
            f"  source address {router_id};",
            *(["  passive on;"] if str(peer) > str(router_id) else []),
            "}",
        ]
    if tor is not None:
        lines += [
            "",
            f"protocol bgp Global_{str(tor).replace('.', '_')} from bgp_template {{",
            f"  neighbor {tor} as {ROUTER_AS};",
            f"  source address {router_id};",
            "}",
        ]
    return lines


def frr_bgpd(router_ids: Sequence[IPv4Address], nodes: Sequence[IPv4Address]) -> str:
    """bgpd.conf for the router as a top-of-rack router: AS ROUTER_AS, an eBGP session to
    every node (AS AS_NUMBER), accepting and passing on what they announce (FRR asks for
    a policy on eBGP sessions unless `no bgp ebgp-requires-policy`)."""
    lines = ["hostname router", "log stdout informational", f"router bgp {ROUTER_AS}",
             f" bgp router-id {router_ids[0]}", " no bgp ebgp-requires-policy",
             " no bgp network import-check"]
    lines += [f" neighbor {n} remote-as {AS_NUMBER}" for n in nodes]
    lines += [" address-family ipv4 unicast"]
    lines += [f"  neighbor {n} activate" for n in nodes]
    lines += [" exit-address-family", "line vty", ""]
    return "\n".join(lines)
