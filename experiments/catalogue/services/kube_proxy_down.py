"""svc-kube-proxy-down, a claim of the series' second part (Services):

    in iptables mode traffic keeps flowing when kube-proxy dies; in userspace mode it
    stops

The evidence, kept in raw/svc-kube-proxy-down/evidence.json, is a mapping; the verdict
(`judge_down`, pure) reads its keys

    node, iptables, userspace

and `KubeProxyDown.run` gathers them on a cluster of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from signal import SIGKILL
from typing import Any

from experiments.catalogue.services.common import ServicesClaim, _timeline
from experiments.framework.base import Context, Result, Verdict, keep_evidence, retry
from experiments.framework.svc_common import (
    CLIENT,
    keep_logs,
    run_client,
    served,
    services_cluster,
    start_client,
)
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.cluster import Cluster
from testbed.measure.services import parse_client
from testbed.model.svc.modes import UserspaceMode

GRACE_S = 0.3  # a connection under way when kube-proxy dies may go either way


REFUSED = "ConnectionRefusedError"  # the client's words for a connection refused (probes)


def _split_at(conns: Sequence[Mapping[str, Any]], t: float) -> tuple[list, list]:
    """Connections over before `t`, and those begun GRACE_S after it (one under way at
    the kill belongs to neither)."""
    return ([x for x in conns if x["t"] + x["ms"] / 1000 < t],
            [x for x in conns if x["t"] >= t + GRACE_S])


def judge_down(e: Mapping[str, Any]) -> ClaimResult:
    """Both modes measured the same way, each with its positive controls: flowing before
    the kill, kube-proxy really dead (its exit status: killed by SIGKILL), and flowing
    again once it is back. In userspace mode what stops must stop the way the mechanism
    says: connections refused (nothing listens on the proxy's port any more), not any
    failure (a timeout or a DNS error would be something else)."""
    out = {}
    for mode in ("iptables", "userspace"):
        before, after = _split_at(e[mode]["connections"], e[mode]["killed_at"])
        if len(before) < 5 or len(after) < 10:
            return error(KubeProxyDown.name, f"{mode}: too few connections around the kill "
                         f"({len(before)} before, {len(after)} after)")
        back = e[mode].get("back", [])
        if not back:
            return error(KubeProxyDown.name, f"{mode}: no connection once kube-proxy was back")
        out[mode] = (sum(x["ok"] for x in before), len(before),
                     sum(x["ok"] for x in after), len(after),
                     sum(x["ok"] for x in back), len(back),
                     sum(1 for x in after if not x["ok"] and REFUSED in x.get("error", "")))
    ipt, us = out["iptables"], out["userspace"]
    return judge(
        KubeProxyDown.name,
        {"iptables: flowing before the kill": ipt[0] == ipt[1],
         "iptables: kube-proxy killed": e["iptables"].get("exit") == -SIGKILL,
         "iptables: still flowing after the kill": ipt[2] == ipt[3],
         "userspace: flowing before the kill": us[0] == us[1],
         "userspace: kube-proxy killed": e["userspace"].get("exit") == -SIGKILL,
         "userspace: stopped after the kill, every connection refused": us[2] == 0
             and us[6] == us[3],
         "userspace: flowing again once kube-proxy is back": us[4] == us[5],
         "iptables: flowing once kube-proxy is back": ipt[4] == ipt[5]},
        f"iptables mode: {ipt[0]}/{ipt[1]} connections succeeded before kube-proxy on "
        f"{e['node']} was killed (exit status {e['iptables'].get('exit')}), {ipt[2]}/{ipt[3]} "
        f"after, {ipt[4]}/{ipt[5]} once it was back; userspace mode: {us[0]}/{us[1]} "
        f"before (exit status {e['userspace'].get('exit')}), {us[2]}/{us[3]} after "
        f"({us[6]} refused; first error: {e['userspace']['first_error'] or 'none'}), "
        f"{us[4]}/{us[5]} once it was back",
        {"iptables_after_ok": ipt[2], "iptables_after": ipt[3], "userspace_after_ok": us[2],
         "userspace_after": us[3], "userspace_after_refused": us[6],
         "iptables_back_ok": ipt[4], "userspace_back_ok": us[4]},
    )


def _kill_during(c: Cluster, ctx: Context, mode: str) -> dict[str, Any]:
    node = c.pod(CLIENT).node
    out = c.records.subdir("services") / f"client-{mode}.jsonl"
    proxy = c.services.proxies[node]
    client = start_client(c, f"down-{mode}", 60, 0.05, out)
    try:
        # kill once enough connections are over (the judge needs 5 before; on a loaded
        # machine a fixed second gave 3 in userspace mode)
        retry(lambda: out.read_text(errors="replace").count('"seq"'), lambda n: n >= 10,
              timeout_s=10.0)
        killed_at = time.time()
        c.services.kill_proxy(node)
        client.wait(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    c.services.start_proxy(node)
    c.services.wait_synced()
    _, back, back_raw = run_client(c, f"down-{mode}-back", 5)
    raw = out.read_text(errors="replace")
    ctx.raw(f"{KubeProxyDown.name}/client-{mode}.jsonl", raw)
    ctx.raw(f"{KubeProxyDown.name}/client-{mode}-back.jsonl", back_raw)
    _, conns = parse_client(raw)
    after = [x for x in conns if x.t >= killed_at + GRACE_S and not x.ok]
    return {"killed_at": killed_at, "connections": [x.__dict__ for x in conns],
            "exit": proxy.returncode, "back": [x.__dict__ for x in back],
            "first_error": after[0].error if after else ""}


class KubeProxyDown(ServicesClaim):
    name = "svc-kube-proxy-down"
    statement = ("in iptables mode traffic keeps flowing when kube-proxy dies; in userspace mode "
                 "it stops")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            e: dict[str, Any] = {"node": c.pod(CLIENT).node,
                                 "iptables": _kill_during(c, ctx, "iptables")}
            c.services.set_mode(UserspaceMode.name)
            e["userspace"] = _kill_during(c, ctx, "userspace")
            lanes = {m: {seq: s for s, seqs in served(c, f"down-{m}").items() for seq in seqs}
                     for m in ("iptables", "userspace")}
            keep_logs(ctx, KubeProxyDown.name, c)
        keep_evidence(ctx, KubeProxyDown.name, e)
        yield _timeline(e, lanes, ("iptables", "userspace"), "kube-proxy killed",
                        "Connections through the service while kube-proxy is killed",
                        "svc_kube_proxy_down.png")
        yield Verdict(judge_down(e))
