"""Constrained uplinks on a real cluster: HTB holds node-node TCP to the rate, loss drops
pings both ways, delay is refused where the kernel has no netem; nothing is left."""

from __future__ import annotations

import time
from typing import Any

import pytest

from testbed.cluster import Cluster
from testbed.errors import MissingDependencyError
from testbed.kernel import features
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv
from testbed.measure.ping import parse_ping
from testbed.model.load import load_spec, parse_spec

from .conftest import TOPOLOGIES, machine_snapshot


def spec_with(links: dict[str, Any]) -> Any:
    d = load_spec(TOPOLOGIES / "two-node.yaml").to_dict()
    d["links"] = links
    return parse_spec(d)


def test_rate_limit_and_loss() -> None:
    """node-1's uplink at 40 Mbit/s, node-2's losing 20 % each way."""
    before = machine_snapshot()
    d = load_spec(TOPOLOGIES / "two-node.yaml").to_dict()
    d["nodes"][0]["uplink"] = {"rate_mbit": 40}
    d["nodes"][1]["uplink"] = {"loss_pct": 20}
    with Cluster(parse_spec(d)) as c:
        qdisc = c.exec_node("node-1", ["tc", "qdisc", "show", "dev", "node-1-eth0"]).stdout
        assert "htb 5: root" in qdisc
        server = c.popen_node("router", server_argv(5201))
        time.sleep(0.3)
        res = c.exec_node("node-1", client_argv(c.endpoint_ip("router"), 5201, 2),
                          timeout=30)
        server.terminate()
        ping = parse_ping(c.exec_node("node-1", ["ping", "-c", "300", "-i", "0.002", "-q",
                                                 c.endpoint_ip("node-2")]).stdout)
        clean = parse_ping(c.exec_node("node-1", ["ping", "-c", "50", "-i", "0.002", "-q",
                                                  c.endpoint_ip("router")]).stdout)
    mbit = parse_iperf3_json(res.stdout).metrics()["throughput_bps"] / 1e6
    assert 0.8 * 40 < mbit < 1.05 * 40, mbit  # unshaped, this path carries > 5 Gbit/s
    # 20 % each way: a round trip survives with 0.8 x 0.8; 300 pings: 36 % +- ~9
    assert 20 < ping.loss_pct < 55, ping.loss_pct
    assert clean.loss_pct == 0  # node-1's own uplink loses nothing
    assert machine_snapshot() == before


def test_delay_without_netem_is_refused_in_one_line() -> None:
    if features.kernel_feature("netem")[0]:
        pytest.skip("this kernel has netem: delay is applied, not refused")
    before = machine_snapshot()
    with pytest.raises(MissingDependencyError, match="sch_netem"):
        Cluster(spec_with({"delay_ms": 10})).start()
    assert machine_snapshot() == before
