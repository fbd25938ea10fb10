"""Claim `shared-localhost`: containers of one pod reach each other on 127.0.0.1; a
container in another pod cannot reach them that way.

    pod A: container "server" listens on 127.0.0.1:7001; container "client" connects to
           127.0.0.1:7001 -> the server's greeting
    pod B: connects to 127.0.0.1:7001 -> refused (B's localhost is B's own)

The evidence (raw/shared-localhost/evidence.json) is what each probe printed and the
address each container saw; `judge_evidence` is a pure function of it.
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

PORT = 7001


def judge_evidence(e: Mapping[str, Any]) -> ClaimResult:
    a, b = e["pod_a"], e["pod_b"]
    same, other = e["same_pod"], e["other_pod"]
    return judge(
        SharedLocalhost.name,
        {"same pod connects": same["ok"] and f"hello from {a}" in same["stdout"],
         "other pod refused": not other["ok"] and "refused" in other["stdout"].lower(),
         "containers share the pod IP": bool(e["ip_server"]) and e["ip_server"] == e["ip_client"]},
        f"{a}/client -> 127.0.0.1:{PORT}: {same['stdout'].strip()}; "
        f"{b} -> 127.0.0.1:{PORT}: {other['stdout'].strip()}; containers of {a} have "
        f"{e['ip_server'] or 'no address'} and {e['ip_client'] or 'no address'}",
        {"same_pod_connected": int(same["ok"]), "other_pod_connected": int(other["ok"])},
    )


def _eth0(stdout: str) -> str:
    words = stdout.split()
    return words[3] if len(words) > 3 else ""


class SharedLocalhost(Claim):
    """Containers of one pod share localhost; another pod's localhost is its own."""

    name = "shared-localhost"
    statement = ("containers of one pod reach each other on 127.0.0.1; a container in another pod "
                 "cannot reach them that way")
    requires = Needs(pods=2)

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        a, b = two_pods(c)
        c.add_container(a, "claim-server",
                        probes.tcp_server("127.0.0.1", PORT, f"hello from {a}"))
        c.add_container(a, "claim-client", ["sleep", "infinity"])
        try:
            same = retry(lambda: c.pod(a).exec(probes.tcp_client("127.0.0.1", PORT),
                                               container="claim-client"), lambda r: r.ok)
            other = c.pod(b).exec(probes.tcp_client("127.0.0.1", PORT))
            addr = ["ip", "-4", "-o", "addr", "show", "eth0"]
            ip_server = _eth0(c.pod(a).exec(addr, container="claim-server").stdout)
            ip_client = _eth0(c.pod(a).exec(addr, container="claim-client").stdout)
        finally:
            c.remove_container(a, "claim-server")
            c.remove_container(a, "claim-client")
        evidence = {"pod_a": a, "pod_b": b, "same_pod": outcome(same),
                    "other_pod": outcome(other), "ip_server": ip_server, "ip_client": ip_client}
        keep_evidence(ctx, SharedLocalhost.name, evidence)
        yield Verdict(judge_evidence(evidence))
