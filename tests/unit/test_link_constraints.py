"""Constrained links: the topology keys, their refusals, and the tc / iptables argument
lists (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.errors import SpecError
from testbed.model.links import LinkSpec, loss_rules, tc_commands
from testbed.model.load import parse_spec


def doc(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "cluster_cidr": "10.0.0.0/14",
            "nodes": [{"name": "node-1", "pods": 1}, {"name": "node-2", "pods": 1}], **extra}


def test_a_default_for_every_uplink_and_a_node_overriding_one_field() -> None:
    d = doc(links={"rate_mbit": 100, "loss_pct": 1})
    d["nodes"][0]["uplink"] = {"rate_mbit": 50}
    spec = parse_spec(d)
    assert spec.nodes[0].uplink == LinkSpec(50.0, 1.0)  # its rate, the default's loss
    assert spec.nodes[1].uplink == LinkSpec(100.0, 1.0)
    assert parse_spec(spec.to_dict()) == spec  # metadata reloads to the same links
    assert parse_spec(doc()).nodes[0].uplink == LinkSpec() and not LinkSpec().shaped
    assert "links" not in parse_spec(doc()).to_dict()


@pytest.mark.parametrize(("links", "where", "problem"), [
    ({"rate_mbit": 0}, "links.rate_mbit", "out of range (0..100000"),
    ({"rate_mbit": "fast"}, "links.rate_mbit", "must be a number"),
    ({"loss_pct": 100}, "links.loss_pct", "100 % loss is no link"),
    ({"loss_pct": -1}, "links.loss_pct", "out of range"),
    ({"jitter_ms": 2}, "links.jitter_ms", "needs a delay_ms"),
    ({"bandwidth": 10}, "links.bandwidth", "unknown key"),
    ({"rate_mbit": True}, "links.rate_mbit", "must be a number"),
])
def test_refusals_name_the_field(links: dict[str, Any], where: str, problem: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc(links=links))
    assert where in str(info.value) and problem in str(info.value)


def test_tc_as_mininet_tclink() -> None:
    assert tc_commands("node-1-eth0", LinkSpec(50.0), netem=False) == [
        ["tc", "qdisc", "add", "dev", "node-1-eth0", "root", "handle", "5:0", "htb",
         "default", "1"],
        ["tc", "class", "add", "dev", "node-1-eth0", "parent", "5:0", "classid", "5:1", "htb",
         "rate", "50Mbit", "burst", "15k"]]
    # netem under the HTB class: half the delay at each end, and the loss
    with_netem = tc_commands("x", LinkSpec(50.0, 1.0, 10.0, 2.0), netem=True)
    assert with_netem[-1] == ["tc", "qdisc", "add", "dev", "x", "parent", "5:1", "handle",
                              "10:", "netem", "delay", "5ms", "1ms", "loss", "1%"]
    # loss alone, with netem: netem at the root
    assert tc_commands("x", LinkSpec(loss_pct=2.5), netem=True) == [
        ["tc", "qdisc", "add", "dev", "x", "root", "handle", "10:", "netem", "loss", "2.5%"]]
    assert tc_commands("x", LinkSpec(loss_pct=2.5), netem=False) == []
    assert tc_commands("x", LinkSpec(), netem=True) == []


def test_loss_without_netem_drops_both_ways_in_the_node() -> None:
    rules = loss_rules("node-1-eth0", LinkSpec(loss_pct=20))
    assert rules == [
        ["iptables", "-w", "-t", "mangle", "-A", "PREROUTING", "-i", "node-1-eth0", "-m",
         "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"],
        ["iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", "node-1-eth0", "-m",
         "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"]]
    assert loss_rules("x", LinkSpec(loss_pct=0.5))[0][-3] == "0.005"
    assert loss_rules("x", LinkSpec(rate_mbit=10)) == []


def test_describe() -> None:
    assert LinkSpec(50.0, 1.0, 10.0, 2.0).describe() == "50 Mbit/s, 1 % loss, 10 ms ± 2"
    assert LinkSpec().describe() == "unconstrained"
    assert LinkSpec(delay_ms=5).needs_netem and not LinkSpec(loss_pct=5).needs_netem


def test_the_tcp_ceiling_and_the_rate_check() -> None:
    from testbed.model.links import TCP_SHARE, rate_check, tcp_ceiling_bps

    assert tcp_ceiling_bps(LinkSpec(), LinkSpec()) is None
    ceiling = tcp_ceiling_bps(LinkSpec(100.0), LinkSpec(50.0))
    assert ceiling == 50e6 * TCP_SHARE  # the slower uplink
    assert rate_check(0.956 * 50e6, ceiling) is None  # what HTB gives: 95.6 % of the rate
    short = rate_check(30e6, ceiling)
    assert short is not None and "30.0 of its 47.8 Mbit/s TCP ceiling (63%" in short
    over = rate_check(200e6, ceiling)
    assert over is not None and "the shaping did not hold" in over
    assert rate_check(1e9, None) is None


def test_an_experiments_own_finding_makes_a_unit_suspect() -> None:
    from testbed.measure.fidelity import judge
    from testbed.results.fidelity import with_findings

    calm = judge([])  # nothing sampled: unknown
    assert with_findings(calm, ()) is calm
    found = with_findings(judge([]), [("rate", "the shaped link carried 30 of 48")])
    assert found.verdict == "suspect" and found.codes == ("unsampled", "rate")
    assert found.reasons[-1] == "the shaped link carried 30 of 48"
