"""Claim `pause-holds-netns`: restarting an app container keeps the pod's network
namespace and IP; ending the pause process takes the pod's network away.

Runs on a pod of its own ("claim-pause", on the first node), which it removes at the end:
    1. container "app" runs; note the netns (inode) of pause and app, and the pod IP
    2. restart "app": a new process (new pid) in the same netns with the same IP, still
       reachable from another pod
    3. end the pause process (SIGTERM). The kernel alone keeps the network (the named
       netns and the app still hold it: the IP may still answer, recorded as evidence);
       what takes it away is the runtime's reaction, which the testbed plays as kubelet
       does (cluster.reconcile: CNI DEL, netns removed): the IP stops answering, the
       netns is gone.

The evidence (raw/pause-holds-netns/evidence.json) has the pids, inodes, addresses and
losses; `judge_evidence` is a pure function of it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.framework.base import Claim, Context, Result, Verdict, keep_evidence, retry
from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.errors import TestbedError
from testbed.kernel.ns import netns_inode, netns_of
from testbed.measure.ping import ping_argv, ping_metrics

POD = "claim-pause"


def judge_evidence(e: Mapping[str, Any]) -> ClaimResult:
    if not e["ip"]:
        return error(PauseHoldsNetns.name, f"{POD} got no address: nothing to judge")
    return judge(
        PauseHoldsNetns.name,
        {"app shares the pause netns": e["inode_pause"] == e["inode_app"],
         "restart started a new process": e["app_pid_after"] not in (0, e["app_pid_before"]),
         "restart keeps the netns": e["inode_after_restart"] == e["inode_pause"],
         "restart keeps the IP": e["ip_after_restart"] == e["ip"],
         "reachable after restart": e["loss_after_restart_pct"] == 0,
         "runtime removed the pod when pause ended": POD in e["removed"],
         "netns gone": not e["netns_listed_after"],
         "IP unreachable after pause ended": e["loss_after_pause_end_pct"] == 100},
        f"{POD} {e['ip']}: app pid {e['app_pid_before']} -> {e['app_pid_after']} after the "
        f"restart, netns inode {e['inode_pause']} before and {e['inode_after_restart']} after, "
        f"IP {e['ip_after_restart']}; {e['prober']} -> {e['ip']}: "
        f"{e['loss_after_restart_pct']:g} % loss after the restart, "
        f"{e['loss_before_reconcile_pct']:g} % once pause ended (the kernel alone), "
        f"{e['loss_after_pause_end_pct']:g} % after the runtime removed the pod",
        {"netns_kept": int(e["inode_after_restart"] == e["inode_pause"]),
         "ip_kept": int(e["ip_after_restart"] == e["ip"]),
         "loss_after_restart_pct": e["loss_after_restart_pct"],
         "loss_before_reconcile_pct": e["loss_before_reconcile_pct"],
         "loss_after_pause_end_pct": e["loss_after_pause_end_pct"]},
    )


class PauseHoldsNetns(Claim):
    """The pause process, not the app, holds the pod's network."""

    name = "pause-holds-netns"
    statement = ("restarting an app container keeps the pod's network namespace and IP; ending "
                 "the pause process takes the pod's network away")
    requires = Needs(pods=1)

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        node = c.node_names[0]
        prober = next(iter(c.pods))

        def loss(ip: str) -> float:
            res = c.pod(prober).exec(ping_argv(ip, count=2))
            return ping_metrics(res.returncode, res.stdout, res.stderr)["loss_pct"]

        pod = c.add_pod(node, POD)
        try:
            c.add_container(POD, "app", ["sleep", "infinity"])
            ip = str(pod.ip.ip) if pod.ip else ""
            app_pid = pod.containers["app"].pid or 0
            e: dict[str, Any] = {
                "prober": prober, "ip": ip, "app_pid_before": app_pid,
                "inode_pause": netns_inode(netns_of(pod.pause_pid)),
                "inode_app": netns_inode(netns_of(app_pid))}
            restarted = c.restart_container(POD, "app")
            e["app_pid_after"] = restarted.pid or 0
            e["inode_after_restart"] = netns_inode(netns_of(restarted.pid or 0))
            words = pod.exec(["ip", "-4", "-o", "addr", "show", "eth0"],
                             container="app").stdout.split()
            e["ip_after_restart"] = words[3].split("/")[0] if len(words) > 3 else ""
            e["loss_after_restart_pct"] = loss(ip)

            pod.pause.send_signal(signal.SIGTERM)
            pod.pause.wait(timeout=5)
            e["loss_before_reconcile_pct"] = loss(ip)
            e["removed"] = retry(c.reconcile, lambda gone: POD in gone, timeout_s=2)
            time.sleep(0.1)
            e["loss_after_pause_end_pct"] = loss(ip)
            e["netns_listed_after"] = os.path.exists(pod.netns_path)
        except TestbedError as exc:  # a ping that could not measure: no verdict from it
            raise TestbedError(f"{PauseHoldsNetns.name}: {exc}") from None
        finally:
            if POD in c.pods:
                c.remove_pod(POD)
        keep_evidence(ctx, PauseHoldsNetns.name, e)
        yield Verdict(judge_evidence(e))
