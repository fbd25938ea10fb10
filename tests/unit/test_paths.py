"""Path classes and the TTL each implies."""

from __future__ import annotations

import pytest

from testbed.model.paths import EXPECTED_TTL, Endpoint, classify, routed_hops

P1 = Endpoint("pod-1", "pod", "node-1")
P2 = Endpoint("pod-2", "pod", "node-1")
P3 = Endpoint("pod-3", "pod", "node-2")
N1 = Endpoint("node-1", "node", "node-1")
N2 = Endpoint("node-2", "node", "node-2")
R = Endpoint("router", "router", "router")


@pytest.mark.parametrize(("src", "dst", "path"), [
    (P1, P1, "pod-localhost"),
    (P1, P2, "pod-same-node"),
    (P1, P3, "pod-cross-node"),
    (P1, N1, "pod-node"),
    (P1, N2, "pod-remote-node"),
    (P1, R, "pod-router"),
    (N1, N2, "node-node"),
])
def test_classify(src: Endpoint, dst: Endpoint, path: str) -> None:
    assert classify(src, dst) == path


@pytest.mark.parametrize(("src", "dst"), [(N1, N1), (R, P1), (N1, P1)])
def test_unsupported_pairs_are_refused(src: Endpoint, dst: Endpoint) -> None:
    with pytest.raises(ValueError, match="no path class"):
        classify(src, dst)


def test_expected_ttls_count_the_routers_of_the_article() -> None:
    # cross-node: node-2 routes, the router routes, node-1 routes the reply: 3 hops
    assert routed_hops(EXPECTED_TTL["pod-cross-node"]) == 3
    assert routed_hops(EXPECTED_TTL["pod-same-node"]) == 0
    assert routed_hops(EXPECTED_TTL["pod-router"]) == 1
    assert routed_hops(EXPECTED_TTL["pod-remote-node"]) == 2


def test_the_expected_ttl_table_is_exactly_the_articles() -> None:
    """Every entry pinned: a changed number would change every report's verdict column.
    The reply crosses: a pod's own node (pod-cross-node, pod-remote-node, pod-router: the
    router; a pod's node routes its replies onto cbr0), the router, the far node."""
    assert EXPECTED_TTL == {"pod-same-node": 64, "pod-cross-node": 61, "pod-node": 64,
                            "pod-remote-node": 62, "pod-router": 63, "node-node": 64}
    assert routed_hops(EXPECTED_TTL["pod-node"]) == 0
    assert routed_hops(EXPECTED_TTL["node-node"]) == 0
