"""svc-readiness, a claim of the series' second part (Services):

    pods that fail their readiness check get no new connections until they recover

The evidence, kept in raw/svc-readiness/evidence.json, is a mapping; the verdict
(`judge_readiness`, pure) reads its keys

    connections, server, removed_at, restored_at, stopped_at, probe, stopped_at_rel,
    node, removed_at_rel, restored_at_rel, served_by, other

and `Readiness.run` gathers them on a cluster of its own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.services.common import ServicesClaim, _timeline
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import (
    CLIENT,
    HEALTH,
    SERVERS,
    keep_logs,
    served,
    services_cluster,
    start_client,
)
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.services import parse_client


def judge_readiness(e: Mapping[str, Any]) -> ClaimResult:
    conns = e["connections"]
    out_from, back_at = e["removed_at"], e["restored_at"]
    if out_from is None or back_at is None:
        return error(Readiness.name, "the server's endpoint was never removed from, or never "
                     "restored to, the client node's rules")
    served_by = {int(k): v for k, v in e["served_by"].items()}
    before = [x for x in conns if x["t"] < e["stopped_at"]]
    window = [x for x in conns if out_from <= x["t"] < back_at]
    after = [x for x in conns if x["t"] >= back_at]
    target = e["server"]

    def by(group: list, server: str) -> int:
        return sum(1 for x in group if served_by.get(x["seq"]) == server)

    if len(window) < 10 or len(after) < 10 or len(before) < 10:
        return error(Readiness.name, f"too few connections: {len(before)} before, {len(window)} "
                     f"while out, {len(after)} after")
    failed = sum(not x["ok"] for x in conns)
    return judge(
        Readiness.name,
        {f"{target} served before its check failed": by(before, target) > 0,
         f"{target} got no new connection while unready": by(window, target) == 0,
         "the other server took them all": by(window, e["other"]) == len(window),
         f"{target} served again once ready": by(after, target) > 0,
         "no connection failed throughout": failed == 0},
        f"{target}'s readiness check ({e['probe']}) failed from {e['stopped_at_rel']:.2f} s; "
        f"its endpoint left {e['node']}'s rules at {e['removed_at_rel']:.2f} s and came back "
        f"at {e['restored_at_rel']:.2f} s; connections before: {len(before)} "
        f"({by(before, target)} to {target}), while unready: {len(window)} "
        f"({by(window, target)} to {target}), after: {len(after)} ({by(after, target)} to "
        f"{target}); {failed} failed",
        {"before": len(before), "while_unready": len(window), "after": len(after),
         "to_unready_pod": by(window, target), "failed": failed},
    )


def sync_time(syncs: str, generation: int, start: bool = False) -> float | None:
    """When a node's kube-proxy finished applying `generation` (or a later one); with
    `start`, when that sync began (its rules take effect somewhere in between)."""
    for line in syncs.splitlines():
        d = json.loads(line)
        if d["generation"] >= generation and not d["error"]:
            return float(d["t"]) - (float(d.get("sync_s", 0.0)) if start else 0.0)
    return None


class Readiness(ServicesClaim):
    name = "svc-readiness"
    statement = ("pods that fail their readiness check get no new connections until they recover")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            node = c.pod(CLIENT).node
            target, other = SERVERS[1], SERVERS[0]
            controller = c.services
            out = c.records.subdir("services") / "client-readiness.jsonl"
            client = start_client(c, "ready", 200, 0.05, out)
            try:
                time.sleep(2.0)
                stopped_at = time.time()
                c.stop_container(target, HEALTH)
                _wait(lambda: not controller.readiness()[target])
                controller.wait_synced()
                time.sleep(3.0)
                restarted_at = time.time()
                c.restart_container(target, HEALTH)
                _wait(lambda: controller.readiness()[target])
                controller.wait_synced()
                client.wait(timeout=120)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()
            raw = out.read_text(errors="replace")
            _, conns = parse_client(raw)
            syncs = (controller.dir / f"syncs-{node}.jsonl").read_text()
            gen_out = next((g for g, t, ready in controller.history
                            if t >= stopped_at and not ready.get(target, True)), None)
            gen_back = next((g for g, t, ready in controller.history
                             if t >= restarted_at and ready.get(target)), None)
            removed = sync_time(syncs, gen_out) if gen_out is not None else None
            # the window of "unready" ends where the restoring sync began: a connection
            # made while it ran may already see the endpoint back
            restored = sync_time(syncs, gen_back, start=True) if gen_back is not None \
                else None
            logs = served(c, "ready")
            t0 = conns[0].t if conns else stopped_at
            spec = controller.pod_specs[target].readiness
            e = {"server": target, "other": other, "node": node,
                 "probe": f"tcpSocket {spec.port} every {spec.period_s:g} s, "
                          f"{spec.failures} failure(s)",
                 "stopped_at": stopped_at, "restarted_at": restarted_at,
                 "removed_at": removed, "restored_at": restored,
                 "stopped_at_rel": stopped_at - t0,
                 "removed_at_rel": (removed or t0) - t0, "restored_at_rel": (restored or t0) - t0,
                 "connections": [x.__dict__ for x in conns],
                 "served_by": {seq: s for s, seqs in logs.items() for seq in seqs},
                 "history": controller.history}
            ctx.raw(f"{Readiness.name}/client.jsonl", raw)
            keep_logs(ctx, Readiness.name, c)
        keep_evidence(ctx, Readiness.name, e)
        events = [(stopped_at, "check fails"), (removed or stopped_at, "endpoint removed"),
                  (restarted_at, "check passes"), (restored or restarted_at, "endpoint back")]
        yield _timeline({"readiness": {"connections": e["connections"], "events": events}},
                        {"readiness": {int(k): v for k, v in e["served_by"].items()}},
                        ("readiness",), "", "Connections through the service while "
                        f"{target} turns unready and back", "svc_readiness.png")
        yield Verdict(judge_readiness(e))


def _wait(check: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the pod's readiness did not change in time")
        time.sleep(0.05)
