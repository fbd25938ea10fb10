"""Reachability and latency: every pod pings every other pod, every node and the router.

Rows per (repeat, source, destination): loss_pct, rtt_min/avg/max/mdev_ms and ttl (the
reply TTL, which counts the routers on the way back: 64 inside a node, 61 across nodes).
One unrecorded warm-up ping per pair first fills the ARP caches, so RTTs describe the
steady state rather than neighbour resolution.
"""

from __future__ import annotations

from experiments.context import Context
from testbed.errors import TestbedError
from testbed.measure.ping import parse_ping, ping_argv

NAME = "reachability"


def pairs(ctx: Context) -> list[tuple[str, str]]:
    c = ctx.cluster
    pods = list(c.pods)
    dests = pods + c.node_names + ["router"]
    return [(s, d) for s in pods for d in dests if d != s]


def steps(ctx: Context) -> int:
    return len(pairs(ctx)) * ctx.params.repeat


def run(ctx: Context) -> None:
    c, p = ctx.cluster, ctx.params
    todo = pairs(ctx)
    ctx.progress.note(f"{NAME}: {len(todo)} pairs x {p.repeat} repeat(s), "
                      f"{p.ping_count} pings each")
    for src, dst in todo:  # warm-up: ARP/neighbour entries, not recorded
        c.pod(src).exec(ping_argv(c.endpoint_ip(dst), count=1, interval_s=0.2, wait_s=1))
    for rep in range(1, p.repeat + 1):
        for src, dst in todo:
            if ctx.is_done(NAME, rep, src, dst):
                ctx.progress.step(f"{NAME} r{rep} {src} -> {dst} (kept from before)")
                continue
            ip = c.endpoint_ip(dst)
            res = c.pod(src).exec(ping_argv(ip, count=p.ping_count,
                                            interval_s=p.ping_interval_s, wait_s=1))
            ctx.run.raw(f"{NAME}/r{rep}_{src}_to_{dst}.txt", res.stdout + res.stderr)
            try:
                metrics = parse_ping(res.stdout).metrics()
            except TestbedError:
                # ping could not even send (e.g. no route): every probe is lost
                metrics = {"loss_pct": 100.0}
            ctx.run.add(ctx.measurement(NAME, rep, src, dst, None, m, v)
                        for m, v in metrics.items())
            ctx.progress.step(f"{NAME} r{rep} {src} -> {dst}")
