"""Faults as experiment steps (issue 13): break one thing on the running cluster, put it
back, and time how long pod traffic across nodes takes to recover.

    uplink   node B's underlay port down for HOLD_S, then up (as a pulled cable looks)
    node     node B stopped for HOLD_S, then started (testbed.cluster.power: every process
             of the node and its pods frozen and its uplink down; `frozen` counts them)
    route    node B's pod route withdrawn at the router through FRR, then restored (where
             the pod network has router routes: kubenet; elsewhere left out)

Throughout each episode a pod on node A pings a pod on node B every PROBE_S (`ping -D
-O`, timestamped); testbed.measure.ping.recovery turns the stream into the outage (last
reply before, first after), the recovery time (restoring action to first reply) and the
probes lost. Each fault runs once a round, `repeat` rounds. The cluster is left as it was
(the fault is undone whatever happens), so this runs on the suite's shared cluster.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

from experiments.framework.base import MEASUREMENT, SHARED_CLUSTER, Context, Result, Rows
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.measure.ping import recovery

NAME = "faults"
PROBE_S = 0.02  # ping's timer makes it ~0.024 here
LEAD_S = 0.5  # probes before the fault
HOLD_S = 1.0  # the fault lasts
TAIL_S = 1.5  # probes after it is undone (a recovery slower than this is not one)


def _faults(c: Cluster, node_b: str) -> list[tuple[str, Callable[[], object],
                                                    Callable[[], None]]]:
    """(name, break, restore) of each fault this cluster can take; a break that returns a
    count (the node's processes frozen) has it recorded as `frozen`."""
    out: list[tuple[str, Callable[[], object], Callable[[], None]]] = [
        ("uplink", lambda: c.set_uplink(node_b, False), lambda: c.set_uplink(node_b, True)),
        ("node", lambda: c.stop_node(node_b), lambda: c.start_node(node_b))]
    plan = c.node_plan(node_b)
    cidr, via = str(plan.pod_cidr), str(plan.underlay_ip.ip)
    if any(str(r.dst) == cidr for r in c.network.router_routes(c.plan)):
        out.append(("route", lambda: c.configure_router(f"no ip route {cidr} {via}"),
                    lambda: c.configure_router(f"ip route {cidr} {via}")))
    return out


class Faults:
    """See the module docstring."""

    name = NAME
    kind = MEASUREMENT
    needs = SHARED_CLUSTER

    def steps(self, ctx: Context) -> int:
        c = ctx.require_cluster()
        pair = _pair(c)
        return 0 if pair is None else len(_faults(c, c.pod(pair[1]).node)) * ctx.params.repeat

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        pair = _pair(c)
        if pair is None:
            ctx.progress.note(f"{NAME}: needs pods on two nodes; skipped")
            return
        src, dst = pair
        faults = _faults(c, c.pod(dst).node)
        ctx.progress.note(f"{NAME}: {', '.join(f for f, _, _ in faults)} on "
                          f"{c.pod(dst).node}, probed {src} -> {dst} every "
                          f"{PROBE_S * 1000:g} ms; {ctx.params.repeat} round(s)")
        for rep in range(1, ctx.params.repeat + 1):
            for fault, brk, restore in faults:
                experiment = f"{NAME}/{fault}"
                label = f"{NAME} r{rep} {fault}"
                if ctx.is_done(experiment, rep, src, dst):
                    yield Rows(f"{label} (kept from before)")
                    continue
                try:
                    text, t_fault, t_restore, broke = _episode(c, src, dst, brk, restore)
                except TestbedError as exc:
                    yield Rows(f"{label}: could not measure", (ctx.error(
                        experiment, rep, src, dst, None, str(exc)),))
                    continue
                ctx.raw(f"{NAME}/r{rep}_{fault}.txt", f"# fault {t_fault:.6f} restore "
                                                      f"{t_restore:.6f}\n{text}")
                r = recovery(text, t_fault, t_restore)
                if r.outage_s is None and r.recovery_s is None and r.lost == r.sent:
                    yield Rows(f"{label}: path down before the fault", (ctx.error(
                        experiment, rep, src, dst, None,
                        f"no probe answered at all ({r.sent} sent): this path carries no "
                        "pod traffic to recover"),))
                    continue
                if r.recovery_s is None or r.outage_s is None:
                    yield Rows(f"{label}: no recovery", (ctx.error(
                        experiment, rep, src, dst, None,
                        f"no reply within {TAIL_S:g} s of undoing the fault "
                        f"({r.lost} of {r.sent} probes lost)"),))
                    continue
                metrics: list[tuple[str, float]] = [
                    ("recovery_s", r.recovery_s), ("outage_s", r.outage_s), ("lost", r.lost)]
                if isinstance(broke, int):
                    metrics.append(("frozen", broke))
                yield Rows(label, tuple(
                    ctx.measurement(experiment, rep, src, dst, None, metric, value)
                    for metric, value in metrics))


def _pair(c: Cluster) -> tuple[str, str] | None:
    by_node = c.pods_by_node()
    nodes = [n for n in c.node_names if by_node.get(n)]
    return (by_node[nodes[0]][0], by_node[nodes[1]][0]) if len(nodes) >= 2 else None


def _episode(c: Cluster, src: str, dst: str, brk: Callable[[], object],
             restore: Callable[[], None]) -> tuple[str, float, float, object]:
    """Probe while the fault comes and goes: the probe's output, the fault's time, the
    restoring action's time (time.time(), ping -D's clock) and what breaking returned."""
    total = LEAD_S + HOLD_S + TAIL_S
    # a count, not -w: with a deadline, ping quits at the first ICMP error (a withdrawn
    # route's "Net Unreachable"), ending the stream before the recovery
    argv = ["ping", "-D", "-O", "-n", "-i", f"{PROBE_S:g}", "-W", "1", "-c",
            str(math.ceil(total / PROBE_S)), c.endpoint_ip(dst)]
    out: dict[str, str] = {}

    def probe_run() -> None:
        res = c.pod(src).exec(argv, timeout=3 * total + 10)
        out["text"] = res.stdout + (f"\n# stderr: {res.stderr.strip()}" if res.stderr.strip()
                                    else "")

    probe = threading.Thread(target=probe_run, daemon=True)
    probe.start()
    time.sleep(LEAD_S)
    t_fault = time.time()
    broke: object = None
    try:
        broke = brk()
        time.sleep(HOLD_S)
    finally:
        t_restore = time.time()
        restore()
    probe.join(timeout=3 * total + 15)
    if "text" not in out:
        raise TestbedError("the probe did not finish")
    return out["text"], t_fault, t_restore, broke
