"""Claim `port-conflict`: a second container in the same pod cannot bind a port the first
holds (the kernel says EADDRINUSE); in different pods both binds succeed.

    pod A: container "first" holds 0.0.0.0:7002; container "second" tries 0.0.0.0:7002
    pod B: binds 0.0.0.0:7002 -> fine (its own network namespace)
"""

from __future__ import annotations

from experiments import probes
from experiments.claims import judge
from experiments.context import Context, retry, two_pods

NAME = "port-conflict"
KIND = "claim"
PORT = 7002


def steps(ctx: Context) -> int:
    return 1


def run(ctx: Context) -> None:
    c = ctx.cluster
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
    ctx.claim(judge(
        NAME,
        {"first container holds the port": held.ok,
         "second container refused": not second.ok and "in use" in second.stdout,
         "other pod binds": other.ok},
        f"{a}/first holds :{PORT}; {a}/second: {second.stdout.strip()}; "
        f"{b}: {other.stdout.strip()}",
        {"same_pod_second_bind_ok": int(second.ok), "other_pod_bind_ok": int(other.ok)},
    ))
    ctx.progress.step(f"claim {NAME}")
