"""Claim `port-conflict`: a second container in the same pod cannot bind a port the first
holds (the kernel says EADDRINUSE); in different pods both binds succeed.

    pod A: container "first" holds 0.0.0.0:7002; container "second" tries 0.0.0.0:7002
    pod B: binds 0.0.0.0:7002 -> fine (its own network namespace)

The evidence (raw/port-conflict/evidence.json) is what each bind printed;
`judge_evidence` is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.framework import probes
from experiments.framework.base import (
    Claim,
    Context,
    Result,
    Verdict,
    keep_evidence,
    outcome,
    retry,
    two_pods,
)
from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, judge

PORT = 7002


def judge_evidence(e: Mapping[str, Any]) -> ClaimResult:
    a, b = e["pod_a"], e["pod_b"]
    held, second, other = e["first_holds"], e["second_bind"], e["other_pod_bind"]
    return judge(
        PortConflict.name,
        {"first container holds the port": held["ok"] and "reply: first" in held["stdout"],
         "second container refused": not second["ok"] and "in use" in second["stdout"],
         "other pod binds": other["ok"] and f"bound {PORT}" in other["stdout"]},
        f"{a}/first holds :{PORT}: {held['stdout'].strip()}; {a}/second: "
        f"{second['stdout'].strip()}; {b}: {other['stdout'].strip()}",
        {"same_pod_second_bind_ok": int(second["ok"]), "other_pod_bind_ok": int(other["ok"])},
    )


class PortConflict(Claim):
    """A port held by one container of a pod is held for the whole pod."""

    name = "port-conflict"
    statement = ("a second container in the same pod cannot bind a port the first holds; in "
                 "different pods both binds succeed")
    requires = Needs(pods=2)

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        a, b = two_pods(c)
        c.add_container(a, "claim-first", probes.tcp_server("0.0.0.0", PORT, "first"))
        c.add_container(a, "claim-second", ["sleep", "infinity"])
        try:
            # the first container holds the port once its server answers
            held = retry(lambda: c.pod(a).exec(probes.tcp_client("127.0.0.1", PORT)),
                         lambda r: r.ok)
            second = c.pod(a).exec(probes.bind_once("0.0.0.0", PORT),
                                   container="claim-second")
            other = c.pod(b).exec(probes.bind_once("0.0.0.0", PORT))
        finally:
            c.remove_container(a, "claim-first")
            c.remove_container(a, "claim-second")
        evidence = {"pod_a": a, "pod_b": b, "first_holds": outcome(held),
                    "second_bind": outcome(second), "other_pod_bind": outcome(other)}
        keep_evidence(ctx, PortConflict.name, evidence)
        yield Verdict(judge_evidence(evidence))
