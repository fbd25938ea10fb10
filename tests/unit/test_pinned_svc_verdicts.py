"""Pins four of the Services verdicts (svc-network-absent, svc-rewrite-on-node,
svc-userspace-proxy, svc-readiness) and the kube-proxy sync reader so that mutation testing
(`make mutate`) finds no change that keeps them passing: each check is refuted by evidence
where it alone fails (its name in the verdict), each threshold is tried at the boundary
and on both sides, and the evidence text and numbers are pinned."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from experiments.catalogue.services.network_absent import judge_absent
from experiments.catalogue.services.readiness import judge_readiness, sync_time
from experiments.catalogue.services.rewrite_on_node import judge_rewrite
from experiments.catalogue.services.userspace_proxy import judge_userspace
from tests.support.evidence import refuted_by

VIP = "10.3.241.152"



def client(ok: int, n: int) -> dict[str, int]:
    return {"connections": n, "succeeded": ok, "failed": n - ok}


# -- svc-network-absent ------------------------------------------------------------------

ABSENT = {"service_cidr": "10.3.240.0/20", "vip": VIP,
          "addresses": [{"where": "node-1", "ifname": "cbr0", "address": "10.0.0.1",
                         "prefix": 24},
                        {"where": "router", "ifname": "r-eth1", "address": "10.100.0.1",
                         "prefix": 24}],
          "routes": [{"where": "router", "dst": "10.0.0.0/24", "gateway": "10.100.0.2",
                      "dev": "r-eth1"},
                     {"where": "node-1", "dst": "default", "gateway": "10.100.0.1",
                      "dev": "eth0"}],
          "client": client(5, 5)}
HOLDS = "no interface holds an address in the service range"
ROUTES = "no route for the service range (bar default routes)"
ANSWERED = "the virtual IP answered all the same"


def test_absent_confirmed_with_its_evidence() -> None:
    r = judge_absent(ABSENT)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "2 addresses on 2 hosts (node-1, router) and 2 routes of the nodes and the router "
        "read; in 10.3.240.0/20: no address, no route; meanwhile 5/5 connections to "
        "10.3.241.152:80 succeeded")
    assert dict(r.numbers) == {"addresses": 2, "routes": 2, "holders": 0,
                               "covering_routes": 0}


def route(where: str, dst: Any) -> dict[str, Any]:
    return {"where": where, "dst": dst, "gateway": "", "dev": "x"}


def test_absent_an_address_in_the_range_refutes() -> None:
    e = copy.deepcopy(ABSENT)
    e["addresses"].append({"where": "node-2", "ifname": "kube-ipvs0", "address": VIP,
                           "prefix": 32})
    r = judge_absent(e)
    assert refuted_by(r, HOLDS)
    assert "in 10.3.240.0/20: node-2:kube-ipvs0 10.3.241.152, no route;" in r.evidence
    assert "3 addresses on 3 hosts (node-1, node-2, router)" in r.evidence
    assert dict(r.numbers)["holders"] == 1


def test_absent_names_every_holder_and_route() -> None:
    e = copy.deepcopy(ABSENT)
    e["addresses"] += [{"where": "node-2", "ifname": "a", "address": VIP, "prefix": 32},
                       {"where": "node-2", "ifname": "b", "address": "10.3.240.1",
                        "prefix": 32}]
    e["routes"] += [route("router", "10.3.240.0/24"), route("node-1", "10.3.241.0/24")]
    r = judge_absent(e)
    assert ("in 10.3.240.0/20: node-2:a 10.3.241.152, node-2:b 10.3.240.1, router: "
            "10.3.240.0/24, node-1: 10.3.241.0/24;") in r.evidence


@pytest.mark.parametrize("dst", ["10.3.240.0/20", "10.3.241.0/24", "10.0.0.0/8", VIP])
def test_absent_a_route_covering_the_range_refutes(dst: str) -> None:
    e = copy.deepcopy(ABSENT)
    e["routes"].append(route("router", dst))
    r = judge_absent(e)
    assert refuted_by(r, ROUTES)
    assert f"no address, router: {dst};" in r.evidence
    assert dict(r.numbers)["covering_routes"] == 1


@pytest.mark.parametrize("dst", ["default", None, "10.3.0.0/33", "10.3.239.0/24",
                                 "10.3.0.1", "fe80::/64"])
def test_absent_default_routes_and_other_ranges_do_not_count(dst: Any) -> None:
    e = copy.deepcopy(ABSENT)
    e["routes"].append(route("router", dst))
    r = judge_absent(e)
    assert r.verdict == "confirmed" and dict(r.numbers)["covering_routes"] == 0


@pytest.mark.parametrize("ok, n, passes", [(5, 5, True), (1, 1, True), (0, 5, False),
                                           (4, 5, False)])
def test_absent_the_virtual_ip_must_answer_every_time(ok: int, n: int, passes: bool) -> None:
    r = judge_absent({**ABSENT, "client": client(ok, n)})
    assert r.verdict == "confirmed" if passes else refuted_by(r, ANSWERED)


def test_absent_no_success_and_no_failure_is_not_an_answer() -> None:
    r = judge_absent({**ABSENT, "client": {"connections": 1, "succeeded": 0, "failed": 0}})
    assert refuted_by(r, ANSWERED)


@pytest.mark.parametrize("key, value", [("addresses", []), ("routes", []),
                                        ("client", client(0, 0))])
def test_absent_with_nothing_read_is_an_error(key: str, value: Any) -> None:
    r = judge_absent({**ABSENT, key: value})
    assert (r.verdict, r.evidence) == (
        "error", "no addresses, routes or connections to the virtual IP were recorded")


# -- svc-rewrite-on-node -----------------------------------------------------------------

REWRITE = {"vip": VIP, "client_node": "node-1", "remote_server": "server-2",
           "remote_server_ip": "10.0.1.2", "server_ips": ["10.0.0.4", "10.0.1.2"],
           "client": client(40, 40), "served": {"server-1": 20, "server-2": 20},
           "captures": {"node-1": {"10.0.1.2": 240}, "node-2": {"10.0.1.2": 240, VIP: 0},
                        "router": {"10.0.1.2": 480}},
           "flows": [{"orig_dst": VIP, "reply_src": "10.0.1.2"},
                     {"orig_dst": VIP, "reply_src": "10.0.0.4"},
                     {"orig_dst": "10.0.0.9", "reply_src": "10.0.0.9"}]}
NO_VIP = "the virtual IP is in no capture"
CROSSED = "the connections to the other node crossed every capture point"
CONNTRACK = "conntrack has the client's connections to the virtual IP"
REPLIES = "each reply comes from a server pod, not the virtual IP"


def test_rewrite_confirmed_with_its_evidence() -> None:
    r = judge_rewrite(REWRITE)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "40/40 connections to 10.3.241.152 (server-1 20, server-2 20); packets with the "
        "virtual IP: node-1 0, node-2 0, router 0; with server-2 (10.0.1.2): node-1 240, "
        "node-2 240, router 480; conntrack on node-1: 2 entries for 10.3.241.152:80, 2 with "
        "replies from 10.0.0.4, 10.0.1.2")
    assert dict(r.numbers) == {"vip_packets": 0, "remote_server_packets": 960,
                               "conntrack_vip_entries": 2, "conntrack_rewritten": 2}


def test_rewrite_the_virtual_ip_at_one_capture_point_refutes() -> None:
    e = copy.deepcopy(REWRITE)
    e["captures"]["router"][VIP] = 3
    r = judge_rewrite(e)
    assert refuted_by(r, NO_VIP) and dict(r.numbers)["vip_packets"] == 3


def test_rewrite_a_capture_point_the_connections_missed_refutes() -> None:
    e = copy.deepcopy(REWRITE)
    del e["captures"]["node-2"]["10.0.1.2"]
    r = judge_rewrite(e)
    assert refuted_by(r, CROSSED) and dict(r.numbers)["remote_server_packets"] == 720


def test_rewrite_no_conntrack_entry_for_the_virtual_ip_refutes() -> None:
    e = copy.deepcopy(REWRITE)
    e["flows"] = e["flows"][2:]
    assert refuted_by(judge_rewrite(e), CONNTRACK, REPLIES)


def test_rewrite_a_reply_from_the_virtual_ip_refutes() -> None:
    e = copy.deepcopy(REWRITE)
    e["flows"][1]["reply_src"] = VIP
    r = judge_rewrite(e)
    assert refuted_by(r, REPLIES) and dict(r.numbers)["conntrack_rewritten"] == 1


@pytest.mark.parametrize("served", [{"server-1": 40, "server-2": 0}, {"server-1": 40}])
def test_rewrite_with_nothing_sent_across_is_an_error(served: dict[str, int]) -> None:
    r = judge_rewrite({**REWRITE, "served": served})
    assert (r.verdict, r.evidence) == (
        "error", "no connection went to server-2 on the other node: nothing crossed the "
        "underlay to look at")


# -- svc-userspace-proxy -----------------------------------------------------------------

def phase(sources: list[str], listening: int, from_node: int, failed: int = 0
          ) -> dict[str, Any]:
    n = len(sources)
    return {"client": client(n - failed, n), "sources": sources, "listening": listening,
            "from_node": from_node}


USERSPACE = {"client_ip": "10.0.0.3", "node_addresses": ["10.100.0.2", "10.0.0.1"],
             "iptables": phase(["10.0.0.3"] * 20, 0, 0),
             "userspace": phase(["10.0.0.1"] * 10 + ["10.100.0.2"] * 10, 3, 20)}


def test_userspace_confirmed_with_its_evidence() -> None:
    r = judge_userspace(USERSPACE)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "iptables mode: the servers saw 10.0.0.3 (client 10.0.0.3), kube-proxy listened on "
        "0 port(s), 0 node-to-server entries in conntrack; userspace mode: the servers saw "
        "10.0.0.1, 10.100.0.2 (the node: 10.0.0.1, 10.100.0.2), kube-proxy listened on 3 "
        "port(s), 20 node-to-server entries for 20 requests")
    assert dict(r.numbers) == {"iptables_listening": 0, "userspace_listening": 3,
                               "iptables_from_node": 0, "userspace_from_node": 20}


def mode(name: str, **changes: Any) -> Callable[[dict], None]:
    return lambda e: e[name].update(changes)


@pytest.mark.parametrize("change, check", [
    (mode("iptables", client=client(19, 20)), "iptables: every connection succeeded"),
    (mode("iptables", sources=["10.0.0.3"] * 19 + ["10.0.0.1"]),
     "iptables: the servers saw the client pod"),
    (mode("iptables", listening=1), "iptables: kube-proxy listens on no service port"),
    (mode("iptables", from_node=1), "iptables: no second connection from the node"),
    (mode("userspace", client=client(19, 20)), "userspace: every connection succeeded"),
    (mode("userspace", sources=["10.0.0.1"] * 19 + ["10.0.0.3"]),
     "userspace: the servers saw the node"),
    (mode("userspace", listening=0), "userspace: kube-proxy listens on the service ports"),
    (mode("userspace", from_node=19),
     "userspace: a second connection from the node per request"),
])
def test_userspace_each_check_refuted_alone(change: Callable[[dict], None], check: str
                                            ) -> None:
    e = copy.deepcopy(USERSPACE)
    change(e)
    assert refuted_by(judge_userspace(e), check)


def test_userspace_evidence_names_every_source_seen() -> None:
    e = copy.deepcopy(USERSPACE)
    e["iptables"]["sources"] = ["10.0.0.3"] * 19 + ["10.0.0.1"]
    assert "iptables mode: the servers saw 10.0.0.1, 10.0.0.3 (client 10.0.0.3)" in \
        judge_userspace(e).evidence


def test_userspace_boundaries_pass() -> None:
    e = copy.deepcopy(USERSPACE)
    e["userspace"].update(listening=1, from_node=20, sources=["10.0.0.1"] * 20)
    assert judge_userspace(e).verdict == "confirmed"


@pytest.mark.parametrize("name", ["iptables", "userspace"])
def test_userspace_a_mode_without_connections_is_an_error(name: str) -> None:
    r = judge_userspace({**USERSPACE, name: phase([], 0, 0)})
    assert (r.verdict, r.evidence) == (
        "error", "the servers logged no connection in one of the modes")


# -- svc-readiness -----------------------------------------------------------------------

TARGET, OTHER = "server-2", "server-1"


def readiness(before: int = 10, window: int = 10, after: int = 10) -> dict[str, Any]:
    """Connections `before` the check failed (t < 101.9), while the endpoint was out
    (102.0 <= t < 106.0, the first at 102.0 exactly) and after it came back (t >= 106.0,
    the first at 106.0 exactly), and one at 101.9 exactly, in no phase; the target serves
    every other one outside the window."""
    times = ([101.9 - 0.1 * (before - i) for i in range(before)]
             + [101.9]  # the check failed as it began: in no phase
             + [102.0 + 0.1 * i for i in range(window)]
             + [106.0 + 0.1 * i for i in range(after)])
    conns = [{"seq": i, "t": t, "ok": True, "ms": 1.0} for i, t in enumerate(times)]
    served = {str(c["seq"]): (OTHER if 102.0 <= c["t"] < 106.0 or c["seq"] % 2 else TARGET)
              for c in conns}
    return {"server": TARGET, "other": OTHER, "node": "node-1", "probe": "tcp",
            "stopped_at": 101.9, "removed_at": 102.0, "restored_at": 106.0,
            "stopped_at_rel": 1.9, "removed_at_rel": 2.0, "restored_at_rel": 6.0,
            "connections": conns, "served_by": served}


def test_readiness_confirmed_with_its_evidence() -> None:
    r = judge_readiness(readiness())
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "server-2's readiness check (tcp) failed from 1.90 s; its endpoint left node-1's "
        "rules at 2.00 s and came back at 6.00 s; connections before: 10 (5 to server-2), "
        "while unready: 10 (0 to server-2), after: 10 (5 to server-2); 0 failed")
    assert dict(r.numbers) == {"before": 10, "while_unready": 10, "after": 10,
                               "to_unready_pod": 0, "failed": 0}


def serve(group: Callable[[float], bool], server: str | None) -> Callable[[dict], None]:
    def change(e: dict) -> None:
        for c in e["connections"]:
            if group(c["t"]):
                if server is None:
                    e["served_by"].pop(str(c["seq"]), None)
                else:
                    e["served_by"][str(c["seq"])] = server
    return change


BEFORE = lambda t: t < 101.9  # noqa: E731
WINDOW = lambda t: 102.0 <= t < 102.05  # noqa: E731 - the first connection while out
AFTER = lambda t: t >= 106.0  # noqa: E731


@pytest.mark.parametrize("change, checks", [
    (serve(BEFORE, OTHER), ["server-2 served before its check failed"]),
    (serve(WINDOW, TARGET), ["server-2 got no new connection while unready",
                             "the other server took them all"]),
    (serve(WINDOW, None), ["the other server took them all"]),
    (serve(AFTER, OTHER), ["server-2 served again once ready"]),
])
def test_readiness_each_check_refuted(change: Callable[[dict], None], checks: list[str]
                                      ) -> None:
    e = readiness()
    change(e)
    assert refuted_by(judge_readiness(e), *checks)


def test_readiness_a_window_connection_nobody_logged_is_not_the_targets() -> None:
    e = readiness()
    serve(WINDOW, None)(e)
    r = judge_readiness(e)
    assert "while unready: 10 (0 to server-2)" in r.evidence
    assert dict(r.numbers)["to_unready_pod"] == 0


@pytest.mark.parametrize("group", [BEFORE, AFTER], ids=["before", "after"])
def test_readiness_one_connection_to_the_target_is_enough(group: Callable[[float], bool]
                                                          ) -> None:
    e = readiness()
    first = min(c["seq"] for c in e["connections"] if group(c["t"]))
    serve(group, OTHER)(e)
    e["served_by"][str(first)] = TARGET
    assert judge_readiness(e).verdict == "confirmed"


def test_readiness_one_failed_connection_refutes() -> None:
    e = readiness()
    e["connections"][26]["ok"] = False
    r = judge_readiness(e)
    assert refuted_by(r, "no connection failed throughout")
    assert dict(r.numbers)["failed"] == 1


@pytest.mark.parametrize("sizes, text", [
    ((9, 10, 10), "9 before, 10 while out, 10 after"),
    ((10, 9, 10), "10 before, 9 while out, 10 after"),
    ((10, 10, 9), "10 before, 10 while out, 9 after"),
])
def test_readiness_under_ten_connections_in_a_phase_is_an_error(
        sizes: tuple[int, int, int], text: str) -> None:
    r = judge_readiness(readiness(*sizes))
    assert (r.verdict, r.evidence) == ("error", f"too few connections: {text}")


@pytest.mark.parametrize("key", ["removed_at", "restored_at"])
def test_readiness_an_endpoint_never_removed_or_restored_is_an_error(key: str) -> None:
    r = judge_readiness({**readiness(), key: None})
    assert (r.verdict, r.evidence) == (
        "error", "the server's endpoint was never removed from, or never restored to, the "
        "client node's rules")


def test_sync_time_boundaries() -> None:
    syncs = ('{"generation": 3, "t": 10.0, "error": ""}\n'
             '{"generation": 4, "t": 11.0, "error": "boom"}\n'
             '{"generation": 5, "t": 12.0, "sync_s": 0.25, "error": ""}\n')
    assert sync_time(syncs, 3) == 10.0
    assert sync_time(syncs, 4) == 12.0
    assert sync_time(syncs, 5, start=True) == 11.75
    assert sync_time(syncs, 5) == 12.0
    assert sync_time(syncs, 3, start=True) == 10.0
    assert sync_time(syncs, 6) is None
    assert sync_time("", 1) is None
