"""Claim `port-conflict`: a second container in the same pod cannot bind a port the first
holds (the kernel says EADDRINUSE); in different pods both binds succeed.

    pod A: container "first" holds 0.0.0.0:7002; container "second" tries 0.0.0.0:7002
    pod B: binds 0.0.0.0:7002 -> fine (its own network namespace)
"""

from __future__ import annotations

from collections.abc import Iterator

from experiments import probes
from experiments.base import Claim, Context, Result, Verdict, retry, two_pods
from experiments.claims import judge

PORT = 7002


class PortConflict(Claim):
    """A port held by one container of a pod is held for the whole pod."""

    name = "port-conflict"

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        a, b = two_pods(c)
        c.add_container(a, "first", probes.tcp_server("0.0.0.0", PORT, "first"))
        c.add_container(a, "second", ["sleep", "infinity"])
        try:
            # the first container holds the port once its server answers
            held = retry(lambda: c.pod(a).exec(probes.tcp_client("127.0.0.1", PORT)),
                         lambda r: r.ok)
            second = c.pod(a).exec(probes.bind_once("0.0.0.0", PORT), container="second")
            other = c.pod(b).exec(probes.bind_once("0.0.0.0", PORT))
        finally:
            c.remove_container(a, "first")
            c.remove_container(a, "second")
        yield Verdict(judge(
            self.name,
            {"first container holds the port": held.ok,
             "second container refused": not second.ok and "in use" in second.stdout,
             "other pod binds": other.ok},
            f"{a}/first holds :{PORT}; {a}/second: {second.stdout.strip()}; "
            f"{b}: {other.stdout.strip()}",
            {"same_pod_second_bind_ok": int(second.ok), "other_pod_bind_ok": int(other.ok)},
        ))
