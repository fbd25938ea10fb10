"""Traffic from outside with kube-proxy in nftables mode (a cluster of its own, after
test_outside.py's)."""

from __future__ import annotations

import dataclasses

from testbed.cluster import Cluster
from testbed.model.load import load_spec

from .conftest import TOPOLOGIES
from .test_outside import get


def test_nftables_mode_serves_outside_traffic_too() -> None:
    """kube-proxy's nftables renderer carries node ports, the Local policy and the
    load balancer's traffic as its iptables one does (a cluster of its own)."""
    spec = dataclasses.replace(load_spec(TOPOLOGIES / "outside.yaml"),
                               kube_proxy_mode="nftables")
    with Cluster(spec) as c:
        assert get(c, "http://10.100.0.4:30080/")[0] == "200"  # Cluster: forwarded
        assert get(c, "http://10.100.0.4:30081/")[0] == "curl 28"  # Local: dropped
        assert get(c, "http://203.0.113.101/")[0] == "200"
        assert c.outside.up_now()["default.web-local.80"] == {"node-1", "node-2"}
        assert "ip kube-proxy" in c.exec_node("node-1", ["nft", "list", "tables"]).stdout
