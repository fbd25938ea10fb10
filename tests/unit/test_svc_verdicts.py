"""The Services claims' verdicts as pure functions of their evidence: each is confirmed by
evidence of the claim, refuted by evidence against it, and `error` when there is nothing
to judge. Plus the parsers the evidence comes through."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments.catalogue.services.dns_even_split import judge_split
from experiments.catalogue.services.kube_proxy_down import judge_down
from experiments.catalogue.services.network_absent import judge_absent
from experiments.catalogue.services.range_separate import judge_range
from experiments.catalogue.services.readiness import judge_readiness, sync_time
from experiments.catalogue.services.rewrite_on_node import judge_rewrite
from experiments.catalogue.services.userspace_proxy import judge_userspace
from testbed.measure.services import (
    addresses_seen,
    clopper_pearson,
    even_split,
    parse_access_log,
    parse_client,
    parse_conntrack,
)

VIP = "10.3.241.152"


def verdict(result: Any) -> str:
    return result.verdict


# -- parsers ---------------------------------------------------------------------------------

def test_parse_client_lines() -> None:
    resolved, conns = parse_client(
        '{"resolved": "10.3.241.152", "name": "service-test"}\n'
        '{"seq": 0, "t": 1.5, "ok": true, "ms": 2.0}\n'
        "Traceback (noise)\n"
        '{"seq": 1, "t": 1.6, "ok": false, "ms": 1.0, "error": "ConnectionRefusedError"}\n')
    assert resolved == VIP
    assert [(c.seq, c.ok, c.error) for c in conns] == [(0, True, ""),
                                                      (1, False, "ConnectionRefusedError")]


def test_parse_access_log_keeps_one_probe() -> None:
    log = ('10.0.0.3 - - [27/Nov/2026 05:20:58] "GET /?probe=split-7 HTTP/1.0" 200 -\n'
           '10.0.0.1 - - [27/Nov/2026 05:20:58] "GET /?probe=other-8 HTTP/1.0" 200 -\n'
           '10.0.0.3 - - [27/Nov/2026 05:20:59] "GET / HTTP/1.1" 200 -\n')
    assert parse_access_log(log, "split") == {7: "10.0.0.3"}


def test_parse_conntrack_directions() -> None:
    (flow,) = parse_conntrack(
        "tcp      6 117 TIME_WAIT src=10.0.0.3 dst=10.3.241.152 sport=40000 dport=80 "
        "src=10.0.1.2 dst=10.0.0.3 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n"
        "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n")
    assert (flow.orig_dst, flow.orig_dport, flow.reply_src, flow.reply_sport) == (
        VIP, 80, "10.0.1.2", 8080)


def test_addresses_seen_counts_packets_per_address() -> None:
    text = ("05:29:38.833170 IP 10.0.0.3.35382 > 10.0.1.2.8080: Flags [S], length 0\n"
            "05:29:38.833186 ARP, Request who-has 10.100.0.3 tell 10.100.0.1, length 28\n"
            "05:29:38.833228 IP 10.0.1.2.8080 > 10.0.0.3.35382: Flags [S.], length 0\n")
    assert addresses_seen(text) == {"10.0.0.3": 2, "10.0.1.2": 2, "10.100.0.3": 1,
                                    "10.100.0.1": 1}


# -- verdicts --------------------------------------------------------------------------------

RANGE = {"service_cidr": "10.3.240.0/20",
         "pod_cidrs": {"node-1": "10.0.0.0/24", "node-2": "10.0.1.0/24"},
         "underlays": {"node-1": "10.100.0.0/24", "node-2": "10.100.0.0/24"},
         "cluster_ips": ["10.3.240.10", VIP], "nodes": ["node-1", "node-2"]}


def test_range() -> None:
    assert verdict(judge_range(RANGE)) == "confirmed"
    bad = copy.deepcopy(RANGE)
    bad["pod_cidrs"]["node-2"] = "10.3.240.0/24"
    assert verdict(judge_range(bad)) == "refuted"
    one = copy.deepcopy(RANGE)
    del one["pod_cidrs"]["node-2"]
    assert verdict(judge_range(one)) == "error"
    # no underlay read: once confirmed (nothing could overlap what was never read)
    blind = {**RANGE, "underlays": {}}
    result = judge_range(blind)
    assert result.verdict == "error" and "node-1 (underlay)" in result.evidence
    assert verdict(judge_range({**RANGE, "cluster_ips": []})) == "error"
    assert verdict(judge_range({**RANGE, "nodes": ["node-1"]})) == "error"
    routed = copy.deepcopy(RANGE)
    routed["underlays"]["node-2"] = "10.3.241.0/24"
    result = judge_range(routed)
    assert result.verdict == "refuted" and "no node network overlaps" in result.evidence
    stray = {**RANGE, "cluster_ips": ["10.3.240.10", "10.99.0.1"]}
    result = judge_range(stray)
    assert result.verdict == "refuted" and "every cluster IP lies" in result.evidence


ABSENT = {"service_cidr": "10.3.240.0/20", "vip": VIP,
          "addresses": [{"where": "node-1", "ifname": "cbr0", "address": "10.0.0.1",
                         "prefix": 24}],
          "routes": [{"where": "router", "dst": "10.0.0.0/24", "gateway": "10.100.0.2",
                      "dev": "r-eth1"},
                     {"where": "node-1", "dst": "default", "gateway": "10.100.0.1",
                      "dev": "eth0"}],
          "client": {"connections": 5, "succeeded": 5, "failed": 0}}


def test_network_absent() -> None:
    assert verdict(judge_absent(ABSENT)) == "confirmed"
    held = copy.deepcopy(ABSENT)
    held["addresses"].append({"where": "node-2", "ifname": "kube-ipvs0", "address": VIP,
                              "prefix": 32})
    assert verdict(judge_absent(held)) == "refuted"
    routed = copy.deepcopy(ABSENT)
    routed["routes"].append({"where": "router", "dst": "10.3.240.0/20", "gateway": "x",
                             "dev": "y"})
    assert verdict(judge_absent(routed)) == "refuted"
    silent = copy.deepcopy(ABSENT)
    silent["client"] = {"connections": 0, "succeeded": 0, "failed": 0}
    assert verdict(judge_absent(silent)) == "error"


SPLIT = {"name": "service-test", "vip": VIP, "resolved": VIP, "dns_answers": 1,
         "client": {"connections": 600, "succeeded": 600, "failed": 0},
         "served": {"server-1": 310, "server-2": 290}}


def split(a: int, b: int) -> dict:
    return {**SPLIT, "client": {"connections": a + b, "succeeded": a + b, "failed": 0},
            "served": {"server-1": a, "server-2": b}}


def test_even_split() -> None:
    assert verdict(judge_split(SPLIT)) == "confirmed"
    skewed = split(450, 150)  # 0.75: its whole interval above 0.6
    result = judge_split(skewed)
    assert result.verdict == "refuted" and "the split is even" in result.evidence
    wrong_name = {**SPLIT, "resolved": "10.3.240.99"}
    assert verdict(judge_split(wrong_name)) == "refuted"
    assert verdict(judge_split({**SPLIT, "dns_answers": 0})) == "refuted"
    failed = {**SPLIT, "client": {"connections": 600, "succeeded": 599, "failed": 1}}
    assert verdict(judge_split(failed)) == "refuted"
    unserved = split(300, 290)
    unserved["client"] = {"connections": 600, "succeeded": 600, "failed": 0}
    assert verdict(judge_split(unserved)) == "refuted"
    few = split(5, 5)
    assert verdict(judge_split(few)) == "error"
    assert verdict(judge_split(split(0, 0))) == "error"
    assert verdict(judge_split({**SPLIT, "served": {"server-1": 600}})) == "error"


@pytest.mark.parametrize(("a", "b"), [(66, 34), (123, 77)])
def test_a_lopsided_split_is_never_confirmed(a: int, b: int) -> None:
    """Failing to reject evenness is not evenness: both were once `confirmed` (chi-square
    p above 0.001); each share's interval reaches past 0.6, so: too few to tell."""
    result = judge_split(split(a, b))
    assert result.verdict == "error" and "too few connections to decide" in result.evidence


def test_even_split_margin_boundaries() -> None:
    """The band is 1/2 +- 0.1: a share of 0.55 with 2000 connections is inside it, one
    of 0.65 with 2000 outside (refuted); equivalence at alpha 0.05 a side."""
    assert verdict(judge_split(split(1100, 900))) == "confirmed"
    assert verdict(judge_split(split(1300, 700))) == "refuted"
    # 0.58 of 2000: interval about 0.556..0.604, reaching past 0.6: undecided
    assert verdict(judge_split(split(1160, 840))) == "error"


def test_even_split_interval_is_exact() -> None:
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (290, 600)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        low, high = clopper_pearson(k, n, 0.95)
        assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)
    with pytest.raises(ValueError):
        clopper_pearson(3, 0, 0.95)
    with pytest.raises(ValueError):
        clopper_pearson(4, 3, 0.95)


def test_even_split_three_servers() -> None:
    answer, shares = even_split({"a": 1000, "b": 1000, "c": 1000}, 0.1, 0.05)
    assert answer == "even" and len(shares) == 3
    # each interval at 1 - 2*0.05/3
    low, high = clopper_pearson(1000, 3000, 1 - 0.1 / 3)
    assert (shares[0].low, shares[0].high) == (low, high)
    assert even_split({"a": 2000, "b": 500, "c": 500}, 0.1, 0.05)[0] == "uneven"
    with pytest.raises(ValueError):
        even_split({"a": 3}, 0.1, 0.05)


REWRITE = {"vip": VIP, "client_node": "node-1", "remote_server": "server-2",
           "remote_server_ip": "10.0.1.2", "server_ips": ["10.0.0.4", "10.0.1.2"],
           "client": {"connections": 40, "succeeded": 40, "failed": 0},
           "served": {"server-1": 20, "server-2": 20},
           "captures": {"node-1": {"10.0.1.2": 240}, "node-2": {"10.0.1.2": 240},
                        "router": {"10.0.1.2": 480}},
           "flows": [{"orig_dst": VIP, "reply_src": "10.0.1.2"},
                     {"orig_dst": VIP, "reply_src": "10.0.0.4"}]}


def test_rewrite_on_node() -> None:
    assert verdict(judge_rewrite(REWRITE)) == "confirmed"
    leaked = copy.deepcopy(REWRITE)
    leaked["captures"]["router"][VIP] = 3
    assert verdict(judge_rewrite(leaked)) == "refuted"
    unrewritten = copy.deepcopy(REWRITE)
    unrewritten["flows"][0]["reply_src"] = VIP
    assert verdict(judge_rewrite(unrewritten)) == "refuted"
    local_only = copy.deepcopy(REWRITE)
    local_only["served"]["server-2"] = 0
    assert verdict(judge_rewrite(local_only)) == "error"


def phase(sources: list[str], listening: int, from_node: int) -> dict[str, Any]:
    return {"client": {"connections": len(sources), "succeeded": len(sources), "failed": 0},
            "sources": sources, "listening": listening, "from_node": from_node}


USERSPACE = {"client_ip": "10.0.0.3", "node_addresses": ["10.100.0.2", "10.0.0.1"],
             "iptables": phase(["10.0.0.3"] * 20, 0, 0),
             "userspace": phase(["10.0.0.1"] * 10 + ["10.100.0.2"] * 10, 3, 20)}


def test_userspace_proxy() -> None:
    assert verdict(judge_userspace(USERSPACE)) == "confirmed"
    same = {**USERSPACE, "userspace": phase(["10.0.0.3"] * 20, 0, 0)}
    assert verdict(judge_userspace(same)) == "refuted"
    empty = {**USERSPACE, "iptables": phase([], 0, 0)}
    assert verdict(judge_userspace(empty)) == "error"


def conns(start: float, n: int, ok: bool) -> list[dict[str, Any]]:
    return [{"seq": i, "t": start + i * 0.05, "ok": ok, "ms": 1.0, "error": ""}
            for i in range(n)]


REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


def failed(start: float, n: int, error: str = REFUSED) -> list[dict[str, Any]]:
    return [{**c, "error": error} for c in conns(start, n, False)]


DOWN = {"node": "node-1",
        "iptables": {"killed_at": 101.0, "connections": conns(100.0, 60, True),
                     "exit": -9, "back": conns(110.0, 5, True), "first_error": ""},
        "userspace": {"killed_at": 101.0,
                      "connections": conns(100.0, 20, True) + [
                          {**c, "seq": c["seq"] + 20} for c in failed(101.0, 40)],
                      "exit": -9, "back": conns(110.0, 5, True),
                      "first_error": REFUSED}}


def test_kube_proxy_down() -> None:
    assert verdict(judge_down(DOWN)) == "confirmed"
    survived = copy.deepcopy(DOWN)
    survived["userspace"]["connections"] = conns(100.0, 60, True)
    assert verdict(judge_down(survived)) == "refuted"
    short = copy.deepcopy(DOWN)
    short["iptables"]["connections"] = conns(100.0, 10, True)
    assert verdict(judge_down(short)) == "error"


@pytest.mark.parametrize(("path", "value", "check"), [
    # any failure after the kill is not the claim: it must be refused
    ("userspace.connections", conns(100.0, 20, True) + failed(101.0, 40, "timeout: timed out"),
     "every connection refused"),
    ("userspace.exit", 0, "userspace: kube-proxy killed"),
    ("iptables.exit", None, "iptables: kube-proxy killed"),
    ("userspace.back", [{**conns(110.0, 1, False)[0], "seq": 9}] + conns(110.0, 4, True),
     "userspace: flowing again"),
    ("iptables.back", conns(110.0, 4, True) + conns(110.0, 1, False),
     "iptables: flowing once kube-proxy is back"),
    ("iptables.connections", conns(100.0, 20, True) + conns(101.0, 40, False),
     "iptables: still flowing after the kill"),
    ("iptables.connections", conns(100.0, 19, True) + conns(100.95, 41, True)
     + conns(100.5, 1, False), "iptables: flowing before the kill"),
])
def test_kube_proxy_down_each_check(path: str, value: Any, check: str) -> None:
    e = copy.deepcopy(DOWN)
    mode, key = path.split(".")
    e[mode][key] = value
    result = judge_down(e)
    assert result.verdict == "refuted" and check in result.evidence, result.evidence


def test_kube_proxy_down_needs_its_controls() -> None:
    for mode in ("iptables", "userspace"):
        e = copy.deepcopy(DOWN)
        e[mode]["back"] = []
        result = judge_down(e)
        assert result.verdict == "error" and "once kube-proxy was back" in result.evidence


def readiness(to_target_while_out: int) -> dict[str, Any]:
    cs = conns(100.0, 200, True)  # t from 100.0 to 109.95
    served = {}
    for c in cs:
        out = 102.0 <= c["t"] < 106.0
        served[c["seq"]] = "server-1" if out or c["seq"] % 2 else "server-2"
    for c in [c for c in cs if 102.0 <= c["t"] < 106.0][:to_target_while_out]:
        served[c["seq"]] = "server-2"
    return {"server": "server-2", "other": "server-1", "node": "node-1", "probe": "tcp",
            "stopped_at": 101.9, "restarted_at": 105.0, "removed_at": 102.0,
            "restored_at": 106.0, "stopped_at_rel": 1.9, "removed_at_rel": 2.0,
            "restored_at_rel": 6.0, "connections": cs, "served_by": served}


def test_readiness() -> None:
    assert verdict(judge_readiness(readiness(0))) == "confirmed"
    assert verdict(judge_readiness(readiness(3))) == "refuted"
    never = {**readiness(0), "removed_at": None}
    assert verdict(judge_readiness(never)) == "error"


def test_sync_time_takes_the_first_good_sync_of_that_generation_or_later() -> None:
    syncs = ('{"generation": 3, "t": 10.0, "error": ""}\n'
             '{"generation": 4, "t": 11.0, "error": "boom"}\n'
             '{"generation": 5, "t": 12.0, "sync_s": 0.25, "error": ""}\n')
    assert sync_time(syncs, 4) == 12.0
    assert sync_time(syncs, 4, start=True) == 11.75  # when the restoring sync began
    assert sync_time(syncs, 3, start=True) == 10.0  # a line without its duration
    assert sync_time(syncs, 6) is None


def test_probe_tags_may_have_dashes() -> None:
    log = '10.0.0.3 - - [27/Nov/2026 05:20:58] "GET /?probe=down-iptables-17 HTTP/1.0" 200 -\n'
    assert parse_access_log(log, "down-iptables") == {17: "10.0.0.3"}
    assert parse_access_log(log, "down") == {}


def test_a_connection_under_way_at_the_kill_counts_on_neither_side() -> None:
    e = copy.deepcopy(DOWN)
    cut = e["userspace"]["connections"]
    cut[19] = {**cut[19], "t": 100.99, "ms": 50.0, "ok": False}  # ends after the kill
    assert verdict(judge_down(e)) == "confirmed"
    cut[18] = {**cut[18], "ok": False}  # over before the kill, failed: a real failure
    assert verdict(judge_down(e)) == "refuted"
