"""Pins the verdict machinery (experiments/claims.py) and the seed article's two verdicts
that stand on evidence alone (port-conflict, pause-holds-netns) tightly enough that
mutation testing (`make mutate`) finds no change that keeps them passing: every check of a
verdict is refuted by evidence where it alone fails, the failed check is named, and the
evidence text and numbers are what a reader sees."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from experiments import claims
from experiments.catalogue.article import pause_holds_netns, port_conflict
from experiments.claims import ClaimResult
from tests.support.evidence import refuted_by

# -- the verdict machinery ---------------------------------------------------------------

def test_judge_confirms_only_when_every_check_holds() -> None:
    ok = claims.judge("port-conflict", {"a": True, "b": True}, "seen", {"n": 2})
    assert (ok.claim, ok.verdict, ok.evidence, dict(ok.numbers)) == (
        "port-conflict", "confirmed", "seen", {"n": 2})
    one = claims.judge("port-conflict", {"a": True, "b": False}, "seen")
    assert (one.verdict, one.evidence, dict(one.numbers)) == ("refuted",
                                                              "seen [failed: b]", {})
    two = claims.judge("port-conflict", {"a": False, "b": True, "c": False}, "seen")
    assert two.evidence == "seen [failed: a, c]"


def test_judge_needs_a_check() -> None:
    with pytest.raises(ValueError) as err:
        claims.judge("port-conflict", {}, "seen")
    assert str(err.value) == "a verdict needs at least one check"


def test_judge_keeps_its_own_copy_of_the_numbers() -> None:
    numbers = {"n": 1.0}
    result = claims.judge("port-conflict", {"a": True}, "seen", numbers)
    numbers["n"] = 2.0
    assert dict(result.numbers) == {"n": 1.0}


def test_error_is_one_line_of_at_most_500_characters() -> None:
    e = claims.error("port-conflict", "  could not\nstart  ")
    assert (e.claim, e.verdict, e.evidence, dict(e.numbers)) == (
        "port-conflict", "error", "could not start", {})
    assert claims.error("port-conflict", "x" * 500).evidence == "x" * 500
    assert claims.error("port-conflict", "x" * 499 + "yz").evidence == "x" * 499 + "y"


def test_a_result_refuses_an_unknown_claim_or_verdict() -> None:
    with pytest.raises(ValueError, match="unknown claim 'no-such-claim'"):
        ClaimResult("no-such-claim", "confirmed", "seen")
    with pytest.raises(ValueError, match="verdict must be one of"):
        ClaimResult("port-conflict", "passed", "seen")
    for verdict in ("confirmed", "refuted", "error"):
        assert ClaimResult("port-conflict", verdict, "seen").verdict == verdict


def test_a_row_prints_whole_numbers_whole_and_others_to_four_digits() -> None:
    row = claims.judge("port-conflict", {"a": True}, "seen",
                       {"n": 2.0, "p": 0.123456, "big": 12345.6, "neg": -3,
                        "whole": 123456.0}).row()
    assert row == {"claim": "port-conflict", "verdict": "confirmed", "evidence": "seen",
                   "numbers": "n=2; p=0.1235; big=1.235e+04; neg=-3; whole=123456",
                   "statement": claims.CLAIMS["port-conflict"]}


# -- port-conflict -----------------------------------------------------------------------

def outcome(ok: bool, stdout: str) -> dict[str, Any]:
    return {"ok": ok, "stdout": stdout}


PORT_CONFLICT = {"pod_a": "pod-1", "pod_b": "pod-2",
                 "first_holds": outcome(True, "reply: first\n"),
                 "second_bind": outcome(False, "bind: [Errno 98] Address in use\n"),
                 "other_pod_bind": outcome(True, "bound 7002\n")}
HELD, SECOND, OTHER = ("first container holds the port", "second container refused",
                       "other pod binds")


def test_port_conflict_confirmed_with_its_evidence() -> None:
    r = port_conflict.judge_evidence(PORT_CONFLICT)
    assert r.verdict == "confirmed"
    assert r.evidence == ("pod-1/first holds :7002: reply: first; pod-1/second: bind: "
                          "[Errno 98] Address in use; pod-2: bound 7002")
    assert dict(r.numbers) == {"same_pod_second_bind_ok": 0, "other_pod_bind_ok": 1}


@pytest.mark.parametrize("key, value, check", [
    ("first_holds", outcome(False, "reply: first"), HELD),
    ("first_holds", outcome(True, "reply: second"), HELD),
    ("second_bind", outcome(True, "Address in use"), SECOND),
    ("second_bind", outcome(False, "permission denied"), SECOND),
    ("other_pod_bind", outcome(False, "bound 7002"), OTHER),
    ("other_pod_bind", outcome(True, "bound 7003"), OTHER),
])
def test_port_conflict_each_check_refuted_alone(key: str, value: dict, check: str) -> None:
    e = {**PORT_CONFLICT, key: value}
    assert refuted_by(port_conflict.judge_evidence(e), check)


def test_port_conflict_numbers_follow_the_binds() -> None:
    e = {**PORT_CONFLICT, "second_bind": outcome(True, "bound 7002"),
         "other_pod_bind": outcome(False, "in use")}
    assert dict(port_conflict.judge_evidence(e).numbers) == {
        "same_pod_second_bind_ok": 1, "other_pod_bind_ok": 0}


# -- pause-holds-netns -------------------------------------------------------------------

PAUSE = {"ip": "10.0.0.5", "prober": "pod-2", "inode_pause": 4026532200,
         "inode_app": 4026532200, "app_pid_before": 1200, "app_pid_after": 1300,
         "inode_after_restart": 4026532200, "ip_after_restart": "10.0.0.5",
         "loss_after_restart_pct": 0.0, "removed": ["claim-pause"],
         "netns_listed_after": False, "loss_before_reconcile_pct": 100.0,
         "loss_after_pause_end_pct": 100.0}


def test_pause_confirmed_with_its_evidence() -> None:
    r = pause_holds_netns.judge_evidence(PAUSE)
    assert r.verdict == "confirmed"
    assert r.evidence == (
        "claim-pause 10.0.0.5: app pid 1200 -> 1300 after the restart, netns inode "
        "4026532200 before and 4026532200 after, IP 10.0.0.5; pod-2 -> 10.0.0.5: 0 % loss "
        "after the restart, 100 % once pause ended (the kernel alone), 100 % after the "
        "runtime removed the pod")
    assert dict(r.numbers) == {"netns_kept": 1, "ip_kept": 1, "loss_after_restart_pct": 0.0,
                               "loss_before_reconcile_pct": 100.0,
                               "loss_after_pause_end_pct": 100.0}


def spoil(**changes: Any) -> Callable[[dict], None]:
    return lambda e: e.update(changes)


@pytest.mark.parametrize("change, checks", [
    (spoil(inode_app=4026532999), ["app shares the pause netns"]),
    (spoil(app_pid_after=1200), ["restart started a new process"]),
    (spoil(app_pid_after=0), ["restart started a new process"]),
    (spoil(inode_after_restart=4026532999), ["restart keeps the netns"]),
    (spoil(ip_after_restart="10.0.0.6"), ["restart keeps the IP"]),
    (spoil(loss_after_restart_pct=1.0), ["reachable after restart"]),
    (spoil(removed=["claim-other"]), ["runtime removed the pod when pause ended"]),
    (spoil(netns_listed_after=True), ["netns gone"]),
    (spoil(loss_after_pause_end_pct=99.0), ["IP unreachable after pause ended"]),
])
def test_pause_each_check_refuted_alone(change: Callable[[dict], None],
                                        checks: list[str]) -> None:
    e = copy.deepcopy(PAUSE)
    change(e)
    assert refuted_by(pause_holds_netns.judge_evidence(e), *checks)


def test_pause_numbers_say_what_was_lost() -> None:
    e = {**PAUSE, "inode_after_restart": 1, "ip_after_restart": "10.0.0.6"}
    numbers = dict(pause_holds_netns.judge_evidence(e).numbers)
    assert (numbers["netns_kept"], numbers["ip_kept"]) == (0, 0)


def test_pause_without_an_address_is_an_error() -> None:
    r = pause_holds_netns.judge_evidence({**PAUSE, "ip": ""})
    assert (r.verdict, r.evidence) == ("error", "claim-pause got no address: nothing to judge")
