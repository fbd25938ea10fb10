"""Every claim's verdict is a pure function of recorded evidence: judged here on synthetic
evidence. The evidence of a real run confirms; each piece of it turned false refutes (and
the failed check is named); degenerate evidence (nothing measured, everything lost, one
node) gives `error` or `refuted`, never `confirmed`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from experiments.catalogue.article import (
    docker0_collision,
    gateway_routes,
    no_masquerade,
    pause_holds_netns,
    port_conflict,
    shared_localhost,
)
from experiments.claims import ClaimResult
from tests.support.evidence import mutated


def refuted(judge: Callable[[dict[str, Any]], ClaimResult], evidence: dict[str, Any],
            path: str, value: Any, check: str) -> None:
    result = judge(mutated(evidence, path, value))
    assert result.verdict == "refuted", (path, result)
    assert check in result.evidence


SHARED = {"pod_a": "pod-1", "pod_b": "pod-4",
          "same_pod": {"ok": True, "stdout": "reply: hello from pod-1\n"},
          "other_pod": {"ok": False, "stdout": "error: [Errno 111] Connection refused\n"},
          "ip_server": "10.0.0.2/24", "ip_client": "10.0.0.2/24"}


def test_shared_localhost() -> None:
    judge = shared_localhost.judge_evidence
    assert judge(SHARED).verdict == "confirmed"
    refuted(judge, SHARED, "same_pod.ok", False, "same pod connects")
    refuted(judge, SHARED, "same_pod.stdout", "reply: hello from pod-9", "same pod connects")
    refuted(judge, SHARED, "other_pod.ok", True, "other pod refused")
    refuted(judge, SHARED, "other_pod.stdout", "error: timed out", "other pod refused")
    refuted(judge, SHARED, "ip_client", "10.0.0.3/24", "containers share the pod IP")
    nothing = mutated(mutated(SHARED, "ip_server", ""), "ip_client", "")
    refuted(judge, nothing, "ip_server", "", "containers share the pod IP")


PORT = {"pod_a": "pod-1", "pod_b": "pod-4",
        "first_holds": {"ok": True, "stdout": "reply: first\n"},
        "second_bind": {"ok": False, "stdout": "error: [Errno 98] Address already in use\n"},
        "other_pod_bind": {"ok": True, "stdout": "bound 7002\n"}}


def test_port_conflict() -> None:
    judge = port_conflict.judge_evidence
    assert judge(PORT).verdict == "confirmed"
    refuted(judge, PORT, "first_holds.ok", False, "first container holds the port")
    refuted(judge, PORT, "second_bind.ok", True, "second container refused")
    refuted(judge, PORT, "second_bind.stdout", "error: Permission denied",
            "second container refused")
    refuted(judge, PORT, "other_pod_bind.ok", False, "other pod binds")


PAUSE = {"prober": "pod-1", "ip": "10.0.0.4", "app_pid_before": 100, "app_pid_after": 200,
         "inode_pause": 7, "inode_app": 7, "inode_after_restart": 7,
         "ip_after_restart": "10.0.0.4", "loss_after_restart_pct": 0.0,
         "loss_before_reconcile_pct": 0.0, "removed": ["claim-pause"],
         "netns_listed_after": False, "loss_after_pause_end_pct": 100.0}


def test_pause_holds_netns() -> None:
    judge = pause_holds_netns.judge_evidence
    assert judge(PAUSE).verdict == "confirmed"
    refuted(judge, PAUSE, "app_pid_after", 100, "restart started a new process")
    refuted(judge, PAUSE, "app_pid_after", 0, "restart started a new process")
    refuted(judge, PAUSE, "inode_app", 8, "app shares the pause netns")
    refuted(judge, PAUSE, "inode_after_restart", 9, "restart keeps the netns")
    refuted(judge, PAUSE, "ip_after_restart", "10.0.0.5", "restart keeps the IP")
    refuted(judge, PAUSE, "loss_after_restart_pct", 50.0, "reachable after restart")
    refuted(judge, PAUSE, "removed", [], "runtime removed the pod")
    refuted(judge, PAUSE, "netns_listed_after", True, "netns gone")
    refuted(judge, PAUSE, "loss_after_pause_end_pct", 0.0, "IP unreachable after pause")
    assert judge(mutated(PAUSE, "ip", "")).verdict == "error"  # the pod never got an address


GATEWAY = {"src": "pod-1", "dst": "pod-3", "neighbour": "pod-4", "node_b": "node-2",
           "cidr": "10.0.1.0/24", "via": "10.100.0.3",
           "hops": ["10.0.0.1", "10.100.0.1", "10.100.0.3", "10.0.1.2"],
           "expected_hops": ["10.0.0.1", "10.100.0.1", "10.100.0.3", "10.0.1.2"],
           "loss_before_pct": 0.0, "routes_withdrawn": ["10.0.0.0/24"],
           "loss_withdrawn_pct": 100.0, "loss_same_node_withdrawn_pct": 0.0,
           "routes_restored": ["10.0.0.0/24", "10.0.1.0/24"], "loss_restored_pct": 0.0}


def test_gateway_routes() -> None:
    judge = gateway_routes.judge_evidence
    assert judge(GATEWAY).verdict == "confirmed"
    refuted(judge, GATEWAY, "hops", ["10.0.0.1", None, "10.0.1.2"], "path is pod")
    refuted(judge, GATEWAY, "loss_before_pct", 100.0, "reachable with the route")
    refuted(judge, GATEWAY, "routes_withdrawn", ["10.0.0.0/24", "10.0.1.0/24"],
            "route withdrawn")
    refuted(judge, GATEWAY, "loss_withdrawn_pct", 0.0, "cut off from the other node")
    refuted(judge, GATEWAY, "loss_same_node_withdrawn_pct", 100.0, "reachable from its own")
    refuted(judge, GATEWAY, "routes_restored", ["10.0.0.0/24"], "route restored")
    refuted(judge, GATEWAY, "loss_restored_pct", 100.0, "reachable again")
    assert judge(mutated(GATEWAY, "hops", [])).verdict == "error"  # nothing traced


MASQ = {"src": "pod-1", "pod_ip": "10.0.0.2", "node_ip": "10.100.0.2",
        "private_ip": "10.200.0.10", "outside_ip": "198.51.100.10",
        "private_seen_before_route": ["10.0.0.2"], "private_seen": ["10.0.0.2", "10.0.0.2"],
        "outside_seen": ["10.100.0.2"],
        "no_route": {"ok": False, "stdout": "error: timed out\n"},
        "with_route": {"ok": True, "stdout": "reply: echo from ext-10 seen 10.0.0.2\n"},
        "outside": {"ok": True, "stdout": "reply: echo from outside seen 10.100.0.2\n"}}


def test_no_masquerade() -> None:
    judge = no_masquerade.judge_evidence
    assert judge(MASQ).verdict == "confirmed"
    # no answer is evidence only if the request arrived: lost on the way proves nothing
    refuted(judge, MASQ, "private_seen_before_route", [], "got the request without a")
    refuted(judge, MASQ, "no_route.ok", True, "no answer without a return route")
    refuted(judge, MASQ, "private_seen", ["10.100.0.2"], "10.x host saw the pod's address")
    refuted(judge, MASQ, "private_seen", [], "10.x host saw the pod's address")
    refuted(judge, MASQ, "with_route.ok", False, "answer with a return route")
    refuted(judge, MASQ, "outside_seen", ["10.0.0.2"], "outside host saw the node's")
    refuted(judge, MASQ, "outside.ok", False, "outside host answered")


def probe(layout: str, src: str, dst: str, answered: str) -> dict[str, str]:
    same = (src in ("pod-1", "pod-2")) == (dst in ("pod-1", "pod-2"))
    return {"layout": layout, "src": src, "dst": dst, "answered": answered,
            "path": "pod-same-node" if same else "pod-cross-node"}


PODS = ["pod-1", "pod-2", "pod-3", "pod-4"]
SWAP = {"pod-1": "pod-3", "pod-2": "pod-4", "pod-3": "pod-1", "pod-4": "pod-2"}
KUBE = [probe("kubenet", s, d, d) for s in PODS for d in PODS if s != d]
# docker0: a cross-node probe reaches the pod of the same address on the sender's node
DOCK = [probe("docker0", s, d, d if probe("docker0", s, d, "")["path"] == "pod-same-node"
              else SWAP[d]) for s in PODS for d in PODS if s != d]
IPS = {"pod-1": "172.17.0.2/16", "pod-2": "172.17.0.3/16", "pod-3": "172.17.0.2/16",
       "pod-4": "172.17.0.3/16"}
NODES = {"pod-1": "node-1", "pod-2": "node-1", "pod-3": "node-2", "pod-4": "node-2"}


def test_docker0_collision() -> None:
    def judge(probes: list[dict], ips: dict = IPS, nodes: dict = NODES) -> ClaimResult:
        return docker0_collision.judge_evidence(probes, ips, nodes)

    assert judge(DOCK + KUBE).verdict == "confirmed"
    # cross-node probes that nobody answered, although a pod of the sender's node holds
    # the address, are not the collision: refuted
    timed_out = [{**p, "answered": "error: timed out"} if p["path"] == "pod-cross-node"
                 else p for p in DOCK]
    result = judge(timed_out + KUBE)
    assert result.verdict == "refuted"
    assert "a colliding address is answered by the sender's own node's pod" in result.evidence
    # one probe that reached the intended pod across nodes: no collision there
    crossed = [{**p, "answered": p["dst"]} if (p["src"], p["dst"]) == ("pod-1", "pod-3")
               else p for p in DOCK]
    result = judge(crossed + KUBE)
    assert result.verdict == "refuted"
    assert "no cross-node probe reaches the intended pod" in result.evidence
    broken_kube = [{**p, "answered": ""} for p in KUBE]
    assert judge(DOCK + broken_kube).verdict == "refuted"
    lonely = [{**p, "answered": "pod-9"} if p["path"] == "pod-same-node" else p for p in DOCK]
    assert judge(lonely + KUBE).verdict == "refuted"


def test_docker0_collision_with_unequal_nodes() -> None:
    """node-1 has three pods (172.17.0.2-4), node-2 two: a probe from node-2 to pod-c
    (172.17.0.4, only on node-1) goes unanswered, which is the claim holding (seen on
    topologies/outside.yaml, where it was once judged refuted)."""
    ips = {"a": "172.17.0.2/16", "b": "172.17.0.3/16", "c": "172.17.0.4/16",
           "d": "172.17.0.2/16", "e": "172.17.0.3/16"}
    nodes = {"a": "node-1", "b": "node-1", "c": "node-1", "d": "node-2", "e": "node-2"}
    swap = {"a": "d", "b": "e", "d": "a", "e": "b"}
    pods = list(ips)

    def path(s: str, d: str) -> str:
        return "pod-same-node" if nodes[s] == nodes[d] else "pod-cross-node"

    def row(s: str, d: str, answered: str) -> dict[str, str]:
        return {"layout": "docker0", "src": s, "dst": d, "path": path(s, d),
                "answered": answered}

    dock = [row(s, d, d if path(s, d) == "pod-same-node" else
                swap.get(d, "error: timed out"))
            for s in pods for d in pods if s != d]
    kube = [{**row(s, d, d), "layout": "kubenet"} for s in pods for d in pods if s != d]
    result = docker0_collision.judge_evidence(dock + kube, ips, nodes)
    assert result.verdict == "confirmed", result.evidence
    assert "2 of 2 to an address held only on another node went unanswered" in \
        result.evidence
    # but a probe to c answered by some other pod is not what the layout predicts
    wrong = [{**p, "answered": "e"} if (p["src"], p["dst"]) == ("d", "c") else p
             for p in dock]
    assert docker0_collision.judge_evidence(wrong + kube, ips, nodes).verdict == "refuted"


@pytest.mark.parametrize("probes", [
    [],  # nothing measured
    [p for p in DOCK + KUBE if p["path"] == "pod-same-node"],  # one node: no cross-node pair
    [p for p in DOCK + KUBE if p["path"] == "pod-cross-node"],  # one pod a node
    DOCK,  # kubenet never ran
], ids=["nothing", "one-node", "one-pod-a-node", "no-kubenet"])
def test_docker0_collision_on_degenerate_evidence_is_an_error(probes: list[dict]) -> None:
    assert docker0_collision.judge_evidence(probes, IPS, NODES).verdict == "error"
