"""The Services claims' verdicts as pure functions of their evidence: each is confirmed by
evidence of the claim, refuted by evidence against it, and `error` when there is nothing
to judge. Plus the parsers the evidence comes through."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments import svc_claims as sc
from testbed.measure.services import (
    addresses_seen,
    chi_square_uniform,
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


def test_chi_square() -> None:
    assert chi_square_uniform([50, 50]) == (0.0, 1.0)
    stat, p = chi_square_uniform([140, 60])
    assert stat == 32.0 and p < 1e-7
    with pytest.raises(ValueError):
        chi_square_uniform([10])


# -- verdicts --------------------------------------------------------------------------------

RANGE = {"service_cidr": "10.3.240.0/20",
         "pod_cidrs": {"node-1": "10.0.0.0/24", "node-2": "10.0.1.0/24"},
         "underlays": {"node-1": "10.100.0.0/24", "node-2": "10.100.0.0/24"},
         "cluster_ips": ["10.3.240.10", VIP]}


def test_range() -> None:
    assert verdict(sc.judge_range(RANGE)) == "confirmed"
    bad = copy.deepcopy(RANGE)
    bad["pod_cidrs"]["node-2"] = "10.3.240.0/24"
    assert verdict(sc.judge_range(bad)) == "refuted"
    one = copy.deepcopy(RANGE)
    del one["pod_cidrs"]["node-2"]
    assert verdict(sc.judge_range(one)) == "error"


ABSENT = {"service_cidr": "10.3.240.0/20", "vip": VIP,
          "addresses": [{"where": "node-1", "ifname": "cbr0", "address": "10.0.0.1",
                         "prefix": 24}],
          "routes": [{"where": "router", "dst": "10.0.0.0/24", "gateway": "10.100.0.2",
                      "dev": "r-eth1"},
                     {"where": "node-1", "dst": "default", "gateway": "10.100.0.1",
                      "dev": "eth0"}],
          "client": {"connections": 5, "succeeded": 5, "failed": 0}}


def test_network_absent() -> None:
    assert verdict(sc.judge_absent(ABSENT)) == "confirmed"
    held = copy.deepcopy(ABSENT)
    held["addresses"].append({"where": "node-2", "ifname": "kube-ipvs0", "address": VIP,
                              "prefix": 32})
    assert verdict(sc.judge_absent(held)) == "refuted"
    routed = copy.deepcopy(ABSENT)
    routed["routes"].append({"where": "router", "dst": "10.3.240.0/20", "gateway": "x",
                             "dev": "y"})
    assert verdict(sc.judge_absent(routed)) == "refuted"
    silent = copy.deepcopy(ABSENT)
    silent["client"] = {"connections": 0, "succeeded": 0, "failed": 0}
    assert verdict(sc.judge_absent(silent)) == "error"


SPLIT = {"name": "service-test", "vip": VIP, "resolved": VIP, "dns_answers": 1,
         "client": {"connections": 200, "succeeded": 200, "failed": 0},
         "served": {"server-1": 104, "server-2": 96}}


def test_even_split() -> None:
    assert verdict(sc.judge_split(SPLIT)) == "confirmed"
    skewed = {**SPLIT, "served": {"server-1": 140, "server-2": 60}}
    result = sc.judge_split(skewed)
    assert result.verdict == "refuted" and "the split is even" in result.evidence
    wrong_name = {**SPLIT, "resolved": "10.3.240.99"}
    assert verdict(sc.judge_split(wrong_name)) == "refuted"
    few = {**SPLIT, "client": {"connections": 10, "succeeded": 10, "failed": 0},
           "served": {"server-1": 5, "server-2": 5}}
    assert verdict(sc.judge_split(few)) == "error"


REWRITE = {"vip": VIP, "client_node": "node-1", "remote_server": "server-2",
           "remote_server_ip": "10.0.1.2", "server_ips": ["10.0.0.4", "10.0.1.2"],
           "client": {"connections": 40, "succeeded": 40, "failed": 0},
           "served": {"server-1": 20, "server-2": 20},
           "captures": {"node-1": {"10.0.1.2": 240}, "node-2": {"10.0.1.2": 240},
                        "router": {"10.0.1.2": 480}},
           "flows": [{"orig_dst": VIP, "reply_src": "10.0.1.2"},
                     {"orig_dst": VIP, "reply_src": "10.0.0.4"}]}


def test_rewrite_on_node() -> None:
    assert verdict(sc.judge_rewrite(REWRITE)) == "confirmed"
    leaked = copy.deepcopy(REWRITE)
    leaked["captures"]["router"][VIP] = 3
    assert verdict(sc.judge_rewrite(leaked)) == "refuted"
    unrewritten = copy.deepcopy(REWRITE)
    unrewritten["flows"][0]["reply_src"] = VIP
    assert verdict(sc.judge_rewrite(unrewritten)) == "refuted"
    local_only = copy.deepcopy(REWRITE)
    local_only["served"]["server-2"] = 0
    assert verdict(sc.judge_rewrite(local_only)) == "error"


def phase(sources: list[str], listening: int, from_node: int) -> dict[str, Any]:
    return {"client": {"connections": len(sources), "succeeded": len(sources), "failed": 0},
            "sources": sources, "listening": listening, "from_node": from_node}


USERSPACE = {"client_ip": "10.0.0.3", "node_addresses": ["10.100.0.2", "10.0.0.1"],
             "iptables": phase(["10.0.0.3"] * 20, 0, 0),
             "userspace": phase(["10.0.0.1"] * 10 + ["10.100.0.2"] * 10, 3, 20)}


def test_userspace_proxy() -> None:
    assert verdict(sc.judge_userspace(USERSPACE)) == "confirmed"
    same = {**USERSPACE, "userspace": phase(["10.0.0.3"] * 20, 0, 0)}
    assert verdict(sc.judge_userspace(same)) == "refuted"
    empty = {**USERSPACE, "iptables": phase([], 0, 0)}
    assert verdict(sc.judge_userspace(empty)) == "error"


def conns(start: float, n: int, ok: bool) -> list[dict[str, Any]]:
    return [{"seq": i, "t": start + i * 0.05, "ok": ok, "ms": 1.0, "error": ""}
            for i in range(n)]


DOWN = {"node": "node-1",
        "iptables": {"killed_at": 101.0, "connections": conns(100.0, 60, True),
                     "first_error": ""},
        "userspace": {"killed_at": 101.0,
                      "connections": conns(100.0, 20, True) + [
                          {**c, "seq": c["seq"] + 20} for c in conns(101.0, 40, False)],
                      "first_error": "ConnectionRefusedError"}}


def test_kube_proxy_down() -> None:
    assert verdict(sc.judge_down(DOWN)) == "confirmed"
    survived = copy.deepcopy(DOWN)
    survived["userspace"]["connections"] = conns(100.0, 60, True)
    assert verdict(sc.judge_down(survived)) == "refuted"
    short = copy.deepcopy(DOWN)
    short["iptables"]["connections"] = conns(100.0, 10, True)
    assert verdict(sc.judge_down(short)) == "error"


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
    assert verdict(sc.judge_readiness(readiness(0))) == "confirmed"
    assert verdict(sc.judge_readiness(readiness(3))) == "refuted"
    never = {**readiness(0), "removed_at": None}
    assert verdict(sc.judge_readiness(never)) == "error"


def test_sync_time_takes_the_first_good_sync_of_that_generation_or_later() -> None:
    syncs = ('{"generation": 3, "t": 10.0, "error": ""}\n'
             '{"generation": 4, "t": 11.0, "error": "boom"}\n'
             '{"generation": 5, "t": 12.0, "sync_s": 0.25, "error": ""}\n')
    assert sc.sync_time(syncs, 4) == 12.0
    assert sc.sync_time(syncs, 4, start=True) == 11.75  # when the restoring sync began
    assert sc.sync_time(syncs, 3, start=True) == 10.0  # a line without its duration
    assert sc.sync_time(syncs, 6) is None


def test_probe_tags_may_have_dashes() -> None:
    log = '10.0.0.3 - - [27/Nov/2026 05:20:58] "GET /?probe=down-iptables-17 HTTP/1.0" 200 -\n'
    assert parse_access_log(log, "down-iptables") == {17: "10.0.0.3"}
    assert parse_access_log(log, "down") == {}


def test_a_connection_under_way_at_the_kill_counts_on_neither_side() -> None:
    e = copy.deepcopy(DOWN)
    cut = e["userspace"]["connections"]
    cut[19] = {**cut[19], "t": 100.99, "ms": 50.0, "ok": False}  # ends after the kill
    assert verdict(sc.judge_down(e)) == "confirmed"
    cut[18] = {**cut[18], "ok": False}  # over before the kill, failed: a real failure
    assert verdict(sc.judge_down(e)) == "refuted"
