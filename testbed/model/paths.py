"""Path classes: which kind of path a packet takes between two endpoints, and what its
reply TTL should be. Pure, so reports and tests share one definition.

    pod-localhost    two containers of one pod, over 127.0.0.1 (no interface crossed)
    pod-same-node    pod -> cbr0 -> pod (bridged: no routing hop)          TTL 64
    pod-cross-node   pod -> node -> router -> node -> pod (3 routers)      TTL 61
    pod-node         pod -> its own node's underlay address                TTL 64
    pod-remote-node  pod -> node -> router -> other node                   TTL 62
    pod-router       pod -> node -> router                                 TTL 63
    node-node        node -> underlay bridge -> node (the baseline)        TTL 64
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_TTL = 64  # Linux's default for the pings and their replies

EXPECTED_TTL = {
    "pod-same-node": 64,
    "pod-cross-node": 61,
    "pod-node": 64,
    "pod-remote-node": 62,
    "pod-router": 63,
    "node-node": 64,
}
PATH_ORDER = ["pod-localhost", "pod-same-node", "pod-cross-node", "pod-node",
              "pod-remote-node", "pod-router", "node-node"]


def in_path_order(paths: list[str]) -> list[str]:
    """Path classes in PATH_ORDER (the report's tables and plots share it), others last."""
    order = {p: i for i, p in enumerate(PATH_ORDER)}
    return sorted(paths, key=lambda p: order.get(p, len(order)))

ROUTE_DESCRIPTION = {
    "pod-localhost": "container -> lo -> container (same network namespace)",
    "pod-same-node": "pod -> veth -> cbr0 -> veth -> pod",
    "pod-cross-node": "pod -> cbr0/node -> router -> node/cbr0 -> pod",
    "pod-node": "pod -> cbr0 -> its own node",
    "pod-remote-node": "pod -> node -> router -> other node",
    "pod-router": "pod -> node -> router",
    "node-node": "node -> underlay bridge -> node",
}


@dataclass(frozen=True)
class Endpoint:
    """Something that sends or answers: a pod, a node or the router."""

    name: str
    kind: str  # "pod", "node" or "router"
    node: str  # the node it lives on ("router" for the router)


def classify(src: Endpoint, dst: Endpoint) -> str:
    """The path class of traffic from `src` to `dst` (ValueError for unsupported pairs)."""
    if src.kind == "pod" and dst.kind == "pod":
        if src.name == dst.name:
            return "pod-localhost"
        return "pod-same-node" if src.node == dst.node else "pod-cross-node"
    if src.kind == "pod" and dst.kind == "node":
        return "pod-node" if src.node == dst.node else "pod-remote-node"
    if src.kind == "pod" and dst.kind == "router":
        return "pod-router"
    if src.kind == "node" and dst.kind == "node" and src.name != dst.name:
        return "node-node"
    raise ValueError(f"no path class for {src.kind} {src.name} -> {dst.kind} {dst.name}")


def routed_hops(ttl: int) -> int:
    """How many routers decremented the reply's TTL on its way back."""
    return INITIAL_TTL - ttl
