"""out-lb-node-down, a claim of the series' third part (traffic from outside):

    when a node fails, the load balancer stops sending to it within its health checks'
    interval; connections sent in between are lost

The evidence, kept in raw/out-lb-node-down/evidence.json, is a mapping; the verdict
(`judge_node_down`, pure) reads its keys

    connections, node, down_at, marked_down_at, back_up, sent_after_mark, t0

and `LbNodeDown.run` gathers them on a cluster of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from experiments.catalogue.outside.common import (
    CLIENT,
    LOCAL_SVC,
    SERVICE_PORT,
    WEB,
    OutsideClaim,
    outside_cluster,
    served,
)
from experiments.framework import probes
from experiments.framework.base import Context, Figure, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.services import parse_client
from testbed.model.svc import haproxy
from testbed.results.plots import timeline_png

SAMPLE_S = 0.1


def detection_bound_s() -> float:
    """How long the load balancer may take to stop using a dead node: up to an interval
    until its next check, then FALL checks that each time out and wait an interval
    before the next (HAProxy schedules a check `inter` after the last one ended), and
    the sampling of its state."""
    return (haproxy.CHECK_INTERVAL_S + haproxy.CHECK_FALL * (
        haproxy.CONNECT_TIMEOUT_S + haproxy.CHECK_INTERVAL_S) + SAMPLE_S)


def judge_node_down(e: Mapping[str, Any]) -> ClaimResult:
    conns, node = e["connections"], e["node"]
    t_down, t_out = e["down_at"], e["marked_down_at"]
    before = [x for x in conns if x["t"] + x["ms"] / 1000 < t_down]
    if len(before) < 5 or len(conns) - len(before) < 20:
        return error(LbNodeDown.name, f"too few connections around the failure "
                     f"({len(before)} before, {len(conns) - len(before)} after)")
    if t_out is None:
        return judge(LbNodeDown.name, {f"the load balancer took {node} out": False},
                     f"{node} went off the network; HAProxy never marked it DOWN")
    grace = haproxy.CONNECT_TIMEOUT_S + 0.5  # a connection sent just before the mark
    lost = [x for x in conns if not x["ok"] and x["t"] >= t_down - 0.5]
    late = [x for x in conns if not x["ok"] and x["t"] > t_out + grace]
    took = t_out - t_down
    return judge(
        LbNodeDown.name,
        {"every connection answered before the failure": all(x["ok"] for x in before),
         f"{node} taken out within the checks' bound ({detection_bound_s():g} s)":
             0 <= took <= detection_bound_s(),
         "no connection lost once it was out": not late,
         f"nothing sent to {node} once it was out": e["sent_after_mark"] == 0,
         f"{node} back in once it returned": e["back_up"]},
        f"{node} off the network at t={t_down - e['t0']:.2f} s; HAProxy marked it DOWN "
        f"{took:.2f} s later (checks every {haproxy.CHECK_INTERVAL_S:g} s, {haproxy.CHECK_FALL}"
        f" failures); {len(lost)} connection(s) lost in between, {len(late)} after; "
        f"{e['sent_after_mark']} sent to {node} after the mark; {len(before)} before the "
        f"failure all answered; {node} {'UP' if e['back_up'] else 'not UP'} again after it "
        "returned",
        {"detection_s": round(took, 3), "lost": len(lost), "lost_after_mark": len(late),
         "connections": len(conns)},
    )


class LbNodeDown(OutsideClaim):
    name = "out-lb-node-down"
    statement = ("when a node fails, the load balancer stops sending to it within its health "
                 "checks' interval; connections sent in between are lost")

    def steps(self, ctx: Context) -> int:
        return 2

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            svc = c.services.service(LOCAL_SVC)
            backend = haproxy.backends([svc])[0].name
            node = c.pod(WEB[1]).node
            samples: list[dict[str, Any]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(SAMPLE_S):
                    t = time.time()
                    for r in c.outside.stats():
                        if r.get("pxname") == backend:
                            samples.append({"t": t, "node": r["svname"],
                                            "status": r.get("status", ""),
                                            "stot": int(r.get("stot") or 0)})

            out = c.records.subdir("lb") / "client-node-down.jsonl"
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with open(out, "wb") as f:
                client = c.popen_node(CLIENT, probes.http_loop(
                    str(svc.load_balancer_ip), SERVICE_PORT, 140, 0.05, "down", 3.0), stdout=f)
            try:
                time.sleep(2.0)
                down_at = time.time()
                c.set_uplink(node, False)
                client.wait(timeout=120)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()
                c.set_uplink(node, True)
            up_at = time.time()
            back_up = c.outside.wait_checks()
            time.sleep(0.3)
            stop.set()
            sampler.join(timeout=5)
            raw = out.read_text(errors="replace")
            conns = [x.__dict__ for x in parse_client(raw)[1]]
            mine = [s for s in samples if s["node"] == node]
            marked = next((s for s in mine if s["t"] >= down_at
                           and not s["status"].startswith("UP")), None)
            end = [s for s in mine if s["t"] <= up_at]
            logs = served(c, "down", WEB)
            e = {"node": node, "backend": backend, "down_at": down_at, "up_at": up_at,
                 "t0": conns[0]["t"] if conns else down_at,
                 "marked_down_at": marked["t"] if marked else None,
                 "sent_after_mark": (end[-1]["stot"] - marked["stot"]) if marked and end
                 else 0, "back_up": back_up, "connections": conns,
                 "lanes": {str(seq): p for p, seqs in logs.items() for seq in seqs}}
            ctx.raw(f"{LbNodeDown.name}/client.jsonl", raw)
            ctx.raw(f"{LbNodeDown.name}/haproxy-samples.csv",
                    pd.DataFrame(samples).to_csv(index=False))
            ctx.raw(f"{LbNodeDown.name}/haproxy.log",
                    (c.outside.dir / "haproxy.log").read_text(errors="replace"))
        keep_evidence(ctx, LbNodeDown.name, e)
        yield _down_timeline(e)
        yield Verdict(judge_node_down(e))


def _down_timeline(e: Mapping[str, Any]) -> Figure:
    conns, t0 = e["connections"], e["t0"]
    frame = pd.DataFrame({"t": [x["t"] - t0 for x in conns],
                          "lane": [e["lanes"].get(str(x["seq"]), "answered") if x["ok"]
                                   else "failed" for x in conns]})
    events = [(e["down_at"] - t0, f"{e['node']} off the network")]
    if e["marked_down_at"] is not None:
        events.append((e["marked_down_at"] - t0, f"load balancer: {e['node']} DOWN"))
    events.append((e["up_at"] - t0, f"{e['node']} back"))
    return Figure("out_lb_node_down.png", timeline_png(
        [(f"{LOCAL_SVC} through the load balancer", frame)], [events],
        "Connections through the load balancer while a node fails",
        ["failed", "answered", *WEB]))
