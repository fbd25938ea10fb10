"""Claim `pause-holds-netns`: restarting an app container keeps the pod's network
namespace and IP; ending the pause process takes the pod's network away.

Runs on a pod of its own ("claim-pause", on the first node), which it removes at the end:
    1. container "app" runs; note the netns (inode) of pause and app, and the pod IP
    2. restart "app": same netns, same IP, still reachable from another pod
    3. end the pause process (SIGTERM); the runtime's reaction (cluster.reconcile: CNI DEL,
       netns removed) takes the network away: the IP stops answering, the netns is gone
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

from experiments.base import Claim, Context, Result, Verdict, retry
from experiments.claims import judge
from testbed.kernel.ns import netns_inode, netns_of
from testbed.measure.ping import parse_ping, ping_argv

POD = "claim-pause"


class PauseHoldsNetns(Claim):
    """The pause process, not the app, holds the pod's network."""

    name = "pause-holds-netns"

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        node = c.node_names[0]
        prober = next(iter(c.pods))
        pod = c.add_pod(node, POD)
        try:
            c.add_container(POD, "app", ["sleep", "infinity"])
            ip = str(pod.ip.ip) if pod.ip else ""
            app_pid = pod.containers["app"].pid or 0
            before = (netns_inode(netns_of(pod.pause_pid)), netns_inode(netns_of(app_pid)))
            restarted = c.restart_container(POD, "app")
            after_inode = netns_inode(netns_of(restarted.pid or 0))
            ip_after = pod.exec(["ip", "-4", "-o", "addr", "show", "eth0"],
                                container="app").stdout.split()[3].split("/")[0]
            reach_after_restart = parse_ping(c.pod(prober).exec(ping_argv(ip, count=2)).stdout)

            pod.pause.send_signal(signal.SIGTERM)
            pod.pause.wait(timeout=5)
            removed = retry(c.reconcile, lambda gone: POD in gone, timeout_s=2)
            time.sleep(0.1)
            reach_after_pause = parse_ping(c.pod(prober).exec(ping_argv(ip, count=2)).stdout)
            netns_listed = os.path.exists(pod.netns_path)
        finally:
            if POD in c.pods:
                c.remove_pod(POD)
        yield Verdict(judge(
            self.name,
            {"app shares the pause netns": before[0] == before[1],
             "restart keeps the netns": after_inode == before[0],
             "restart keeps the IP": ip_after == ip,
             "reachable after restart": reach_after_restart.loss_pct == 0,
             "runtime removed the pod when pause ended": POD in removed,
             "netns gone": not netns_listed,
             "IP unreachable after pause ended": reach_after_pause.loss_pct == 100},
            f"{POD} {ip}: netns inode {before[0]} before and {after_inode} after restarting "
            f"app, IP {ip_after}; {prober} -> {ip}: {reach_after_restart.loss_pct:g} % loss "
            f"after the restart, {reach_after_pause.loss_pct:g} % after the pause process "
            "ended",
            {"netns_kept": int(after_inode == before[0]), "ip_kept": int(ip_after == ip),
             "loss_after_restart_pct": reach_after_restart.loss_pct,
             "loss_after_pause_end_pct": reach_after_pause.loss_pct},
        ))
