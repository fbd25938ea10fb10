"""Reachability and latency: every pod pings every other pod, every node and the router.

Rows per (repeat, source, destination): loss_pct, rtt_min/avg/max/mdev_ms and ttl (the
reply TTL, which counts the routers on the way back: 64 inside a node, 61 across nodes).
No reply is loss; a ping that could not measure (it did not run, timed out, printed
nonsense) is an `error` row with the reason, never loss.
One unrecorded warm-up ping per pair first fills the ARP caches, so RTTs describe the
steady state rather than neighbour resolution.
"""

from __future__ import annotations

from collections.abc import Iterator

from experiments.framework.base import MEASUREMENT, SHARED_CLUSTER, Context, Result, Rows
from testbed.errors import TestbedError
from testbed.measure.ping import ping_argv, ping_metrics
from testbed.model.names import ROUTER


def pairs(ctx: Context) -> list[tuple[str, str]]:
    c = ctx.require_cluster()
    pods = list(c.pods)
    dests = [*pods, *c.node_names, ROUTER]
    return [(s, d) for s in pods for d in dests if d != s]


class Reachability:
    """Ping from every pod to every pod, node and the router, repeated."""

    name = "reachability"
    kind = MEASUREMENT
    needs = SHARED_CLUSTER

    def steps(self, ctx: Context) -> int:
        return len(pairs(ctx)) * ctx.params.repeat

    def run(self, ctx: Context) -> Iterator[Result]:
        c, p = ctx.require_cluster(), ctx.params
        todo = pairs(ctx)
        ctx.progress.note(f"{self.name}: {len(todo)} pairs x {p.repeat} repeat(s), "
                          f"{p.ping_count} pings each")
        for src, dst in todo:  # warm-up: ARP/neighbour entries, not recorded
            c.pod(src).exec(ping_argv(c.endpoint_ip(dst), count=1, interval_s=0.2, wait_s=1))
        for rep in range(1, p.repeat + 1):
            for src, dst in todo:
                label = f"{self.name} r{rep} {src} -> {dst}"
                if ctx.is_done(self.name, rep, src, dst):
                    yield Rows(f"{label} (kept from before)")
                    continue
                res = c.pod(src).exec(ping_argv(c.endpoint_ip(dst), count=p.ping_count,
                                                interval_s=p.ping_interval_s, wait_s=1))
                ctx.raw(f"{self.name}/r{rep}_{src}_to_{dst}.txt", res.stdout + res.stderr)
                try:
                    metrics = ping_metrics(res.returncode, res.stdout, res.stderr)
                except TestbedError as exc:
                    yield Rows(f"{label}: could not measure",
                               (ctx.error(self.name, rep, src, dst, None, str(exc)),))
                    continue
                yield Rows(label, tuple(ctx.measurement(self.name, rep, src, dst, None, m, v)
                                        for m, v in metrics.items()))
