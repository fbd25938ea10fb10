"""The seed article's claims that run on the topology given, pinned: each check refuted by
evidence where it alone fails (the exact `[failed: ...]` list), the evidence's words and
numbers exactly, and the small pure helpers they rest on (so `make mutate` finds every
change to them noticed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments.catalogue.article import docker0_collision as dc
from experiments.catalogue.article import gateway_routes as gr
from experiments.catalogue.article import no_masquerade as nm
from experiments.catalogue.article import shared_localhost as sl
from experiments.catalogue.modes.host_gw_routes import _in
from experiments.catalogue.modes.vxlan_mtu import _sysfs_int
from testbed.errors import TestbedError
from testbed.model.load import load_spec
from tests.support.evidence import mutated

from .test_verdicts import DOCK, GATEWAY, IPS, KUBE, MASQ, NODES, SHARED

ROOT = Path(__file__).resolve().parents[2]



def failed(result: Any) -> list[str]:
    assert result.verdict == "refuted", result
    return result.evidence.rsplit(" [failed: ", 1)[1].rstrip("]").split(", ")


# -- shared-localhost ---------------------------------------------------------------------

def test_shared_localhost_words_and_numbers() -> None:
    r = sl.judge_evidence(SHARED)
    assert r.evidence == (
        "pod-1/client -> 127.0.0.1:7001: reply: hello from pod-1; pod-4 -> 127.0.0.1:7001: "
        "error: [Errno 111] Connection refused; containers of pod-1 have 10.0.0.2/24 and "
        "10.0.0.2/24")
    assert dict(r.numbers) == {"same_pod_connected": 1, "other_pod_connected": 0}
    assert r.claim == "shared-localhost"


@pytest.mark.parametrize(("path", "value", "check"), [
    ("same_pod.ok", False, "same pod connects"),
    ("same_pod.stdout", "reply: hello from pod-4", "same pod connects"),
    ("other_pod.ok", True, "other pod refused"),
    ("other_pod.stdout", "error: timed out", "other pod refused"),
    ("ip_client", "10.0.0.3/24", "containers share the pod IP"),
])
def test_shared_localhost_each_check_alone(path: str, value: Any, check: str) -> None:
    assert failed(sl.judge_evidence(mutated(SHARED, path, value))) == [check]


def test_shared_localhost_refused_in_any_case_and_no_address() -> None:
    e = mutated(SHARED, "other_pod.stdout", "error: [Errno 111] Connection REFUSED")
    assert sl.judge_evidence(e).verdict == "confirmed"  # the words, whatever their case
    e = mutated(mutated(SHARED, "ip_server", ""), "ip_client", "")
    r = sl.judge_evidence(e)
    assert failed(r) == ["containers share the pod IP"]
    assert "have no address and no address" in r.evidence
    assert dict(sl.judge_evidence(mutated(SHARED, "other_pod.ok", True)).numbers) == {
        "same_pod_connected": 1, "other_pod_connected": 1}


def test_eth0_reads_the_address_word() -> None:
    assert sl._eth0("2: eth0    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0") == \
        "10.0.0.2/24"
    assert sl._eth0("2: eth0 inet") == ""
    assert sl._eth0("a b c d") == "d"


# -- gateway-routes -----------------------------------------------------------------------

def test_gateway_routes_words_and_numbers() -> None:
    r = gr.judge_evidence(GATEWAY)
    assert r.evidence == (
        "traceroute pod-1 -> pod-3: 10.0.0.1 -> 10.100.0.1 -> 10.100.0.3 -> 10.0.1.2; "
        "pod-1 -> pod-3 loss 0 %, with `no ip route 10.0.1.0/24 10.100.0.3` 100 % (from "
        "pod-4 on node-2: 0 %), restored 0 %")
    assert dict(r.numbers) == {"hops": 4, "loss_before_pct": 0.0, "loss_withdrawn_pct": 100.0,
                               "loss_same_node_withdrawn_pct": 0.0, "loss_restored_pct": 0.0}


@pytest.mark.parametrize(("path", "value", "check"), [
    ("hops", ["10.0.0.1", "10.100.0.1", "10.100.0.4", "10.0.1.2"],
     "path is pod -> node -> router -> node -> pod"),
    ("loss_before_pct", 1.0, "reachable with the route"),
    ("routes_withdrawn", ["10.0.1.0/24"], "route withdrawn from the kernel"),
    ("loss_withdrawn_pct", 99.0, "cut off from the other node"),
    ("loss_same_node_withdrawn_pct", 1.0, "reachable from its own node"),
    ("routes_restored", [], "route restored"),
    ("loss_restored_pct", 1.0, "reachable again"),
])
def test_gateway_routes_each_check_alone(path: str, value: Any, check: str) -> None:
    assert failed(gr.judge_evidence(mutated(GATEWAY, path, value))) == [check]


def test_gateway_routes_hops_not_answered_are_stars() -> None:
    r = gr.judge_evidence(mutated(GATEWAY, "hops", ["10.0.0.1", None, "10.100.0.3", "10.0.1.2"]))
    assert "10.0.0.1 -> * -> 10.100.0.3" in r.evidence
    assert r.numbers["hops"] == 4


# -- no-masquerade-10-8 ------------------------------------------------------------------

def test_no_masquerade_words_and_numbers() -> None:
    r = nm.judge_evidence(MASQ)
    assert r.evidence == (
        "pod-1 (10.0.0.2) -> ext-10 10.200.0.10: the server saw 10.0.0.2 before a return "
        "route existed and 10.0.0.2, 10.0.0.2 in all; without a return route the pod got "
        "'error: timed out', with one 'reply: echo from ext-10 seen 10.0.0.2'. -> outside "
        "198.51.100.10: the server saw 10.100.0.2 (node 10.100.0.2); the pod got 'reply: "
        "echo from outside seen 10.100.0.2'")
    assert dict(r.numbers) == {"private_saw_pod_ip": 1, "private_got_request_without_route": 1,
                               "outside_saw_node_ip": 1, "answered_without_route": 0,
                               "answered_with_route": 1}
    silent = mutated(mutated(MASQ, "private_seen_before_route", []), "private_seen", [])
    r = nm.judge_evidence(mutated(silent, "outside_seen", []))
    assert "saw nothing before" in r.evidence and "nothing in all" in r.evidence
    assert "the server saw nothing (node" in r.evidence
    assert dict(r.numbers)["private_saw_pod_ip"] == 0
    assert dict(r.numbers)["outside_saw_node_ip"] == 0


@pytest.mark.parametrize(("path", "value", "check"), [
    ("private_seen_before_route", ["10.100.0.2"],
     "10.x host got the request without a return route"),
    ("no_route.ok", True, "no answer without a return route"),
    ("private_seen", ["10.0.0.2", "10.100.0.2"], "10.x host saw the pod's address"),
    ("with_route.ok", False, "answer with a return route"),
    ("with_route.stdout", "reply: echo from ext-10 seen 10.100.0.2",
     "answer with a return route"),
    ("outside_seen", ["10.100.0.2", "10.100.0.2"], "outside host saw the node's address"),
    ("outside.ok", False, "outside host answered"),
])
def test_no_masquerade_each_check_alone(path: str, value: Any, check: str) -> None:
    assert failed(nm.judge_evidence(mutated(MASQ, path, value))) == [check]


def test_sources_read_the_echo_servers_log() -> None:
    log = b"listening\nfrom 10.0.0.2 port 4000\nfrom 10.100.0.2\nnoise from x\n"
    assert nm._sources(log) == ["10.0.0.2", "10.100.0.2"]
    assert nm._sources(None) == [] and nm._sources(b"") == []
    assert nm._sources(b"from \xff\xfe\n") == ["\ufffd\ufffd"]


def test_host_names_step_around_the_topologys() -> None:
    spec = load_spec(ROOT / "topologies" / "two-node.yaml")
    assert nm.host_name(spec, "outside") == "outside"
    assert nm.host_name(spec, "pod-1") == "pod-1-2"
    assert nm.host_name(spec, "node-2") == "node-2-2"
    assert nm.networks(spec) == ("10.200.0.0/24", "198.51.100.0/24")


# -- docker0-collision -------------------------------------------------------------------

def test_docker0_words_and_numbers() -> None:
    r = dc.judge_evidence(DOCK + KUBE, IPS, NODES)
    assert r.evidence == (
        "docker0 addresses pod-1 172.17.0.2/16, pod-2 172.17.0.3/16, pod-3 172.17.0.2/16, "
        "pod-4 172.17.0.3/16: 8 of 8 cross-node probes to an address also held on the "
        "sender's node were answered by that pod (e.g. pod-1 -> pod-3 was answered by "
        "pod-1), 0 of 0 to an address held only on another node went unanswered, 0 reached "
        "the intended pod; 4 of 4 same-node probes reached the intended pod; kubenet: 12 of "
        "12 probes reached it")
    assert dict(r.numbers) == {"docker0_cross_node_answered_by_another_pct": 100.0,
                               "docker0_cross_node_collided": 8,
                               "docker0_cross_node_reached_pct": 0.0,
                               "docker0_same_node_missed_pct": 0.0,
                               "kubenet_missed_pct": 0.0}


def test_docker0_expected_answer() -> None:
    # pod-2 asks for pod-3's address (172.17.0.2): on node-1 pod-1 holds it
    assert dc.expected_answer("pod-2", "pod-3", IPS, NODES) == "pod-1"
    assert dc.expected_answer("pod-1", "pod-3", IPS, NODES) == "pod-1"  # its own address
    # nobody on the sender's node holds it
    ips = {**IPS, "pod-3": "172.17.0.9/16"}
    assert dc.expected_answer("pod-2", "pod-3", ips, NODES) == ""
    # the destination itself is never its own "other holder"
    assert dc.expected_answer("pod-4", "pod-3", IPS, NODES) == ""
    # an address held twice on the sender's node: the first by name
    ips = {**IPS, "pod-5": "172.17.0.2/16"}
    assert dc.expected_answer("pod-2", "pod-3", ips, {**NODES, "pod-5": "node-1"}) == "pod-1"


def test_docker0_each_check_alone() -> None:
    def judge(dock: list, kube: list = KUBE) -> Any:
        return dc.judge_evidence(dock + kube, IPS, NODES)

    same_missed = [{**p, "answered": "error: timed out"} if (p["src"], p["dst"]) ==
                   ("pod-1", "pod-2") else p for p in DOCK]
    assert failed(judge(same_missed)) == ["docker0: same-node pods reach each other"]
    wrong = [{**p, "answered": "pod-4"} if (p["src"], p["dst"]) == ("pod-1", "pod-3")
             else p for p in DOCK]  # another pod, but not the one of pod-1's node
    assert failed(judge(wrong)) == [
        "docker0: a colliding address is answered by the sender's own node's pod"]
    kube = [{**p, "answered": "pod-9"} if p["src"] == "pod-1" else p for p in KUBE]
    assert failed(judge(DOCK, kube)) == ["kubenet: every pod reaches every pod"]
    ips = {**IPS, "pod-3": "172.17.0.9/16"}  # pod-3's address only on node-2
    answered = [{**p, "answered": "pod-2"} if p["dst"] == "pod-3"
                and p["path"] == "pod-cross-node" else p for p in DOCK]
    r = dc.judge_evidence(answered + KUBE, ips, NODES)
    assert failed(r) == ["docker0: an address no pod of the sender's node holds is "
                         "answered by none"]


# -- mode claims' small helpers ---------------------------------------------------------

def test_in_and_sysfs_int() -> None:
    from ipaddress import ip_network
    from types import SimpleNamespace as R

    cidr = ip_network("10.0.0.0/14")
    assert _in("10.0.1.0/24", cidr) and _in("10.3.255.255", cidr)
    assert not _in("10.4.0.0/24", cidr) and not _in("default", cidr)
    assert not _in("10.0.0.0/8", cidr)
    assert _sysfs_int(R(returncode=0, stdout="1500\n", stderr=""), "x") == 1500
    with pytest.raises(TestbedError, match="x: could not be read"):
        _sysfs_int(R(returncode=1, stdout="", stderr="No such file"), "x")
    with pytest.raises(TestbedError, match="'abc'"):
        _sysfs_int(R(returncode=0, stdout="abc", stderr=""), "x")
