"""Claim `no-masquerade-10-8`: with kubenet's masquerade rule (nonMasqueradeCIDR
10.0.0.0/8), a host on another 10.x network sees the pod's own address and can answer only
with a return route to the pod network; a host outside 10.0.0.0/8 sees the node's address.

    pod (10.0.0.2) -> node-1 -> router -+- ext-10   10.200.0.10  (10.x, no default route)
                                        '- outside  198.51.100.10 (documentation range)

Both hosts exist only inside the emulation, behind the router, and are removed at the
end. Each runs a UDP echo server that logs every datagram's source address: the evidence
is what the receiver saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from experiments import probes
from experiments.base import Claim, Context, Result, Verdict, retry
from experiments.claims import judge
from testbed.kernel import procs

PORT = 7003
PRIVATE = ("ext-10", "10.200.0.0/24")
OUTSIDE = ("outside", "198.51.100.0/24")


class NoMasquerade(Claim):
    """Pods reach 10.0.0.0/8 with their own address, the rest with the node's."""

    name = "no-masquerade-10-8"

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        src = next(iter(c.pods))
        pod_ip = c.endpoint_ip(src)
        node_ip = str(c.node_plan(c.pod(src).node).underlay_ip.ip)
        logs = {name: f"raw/{self.name}/{name}_server.log" for name in (PRIVATE[0], OUTSIDE[0])}
        servers = []
        try:
            private = c.add_external_host(*PRIVATE, default_route=False)
            outside = c.add_external_host(*OUTSIDE, default_route=True)
            for name, log_name in logs.items():
                with ctx.run.open_log(log_name) as log:
                    servers.append(c.popen_node(name, probes.udp_echo(PORT, name), stdout=log,
                                                stderr=log))
            for log_name in logs.values():  # servers listening
                retry(lambda n=log_name: ctx.run.read(n) or b"", lambda t: b"listening" in t)

            ask = probes.udp_ask(str(private.ip.ip), PORT)
            no_route = c.pod(src).exec(ask)
            c.exec_node(PRIVATE[0], ["ip", "route", "add", str(c.plan.cluster_cidr), "via",
                                     str(private.router_ip.ip)])
            with_route = retry(lambda: c.pod(src).exec(ask), lambda r: r.ok, timeout_s=3)
            answer = c.pod(src).exec(probes.udp_ask(str(outside.ip.ip), PORT))
            time.sleep(0.2)  # the servers' last lines
        finally:
            for proc in servers:
                procs.stop_popen(proc)
            for name in (PRIVATE[0], OUTSIDE[0]):
                if name in c.external:
                    c.remove_external_host(name)
        private_seen = _sources(ctx.run.read(logs[PRIVATE[0]]))
        outside_seen = _sources(ctx.run.read(logs[OUTSIDE[0]]))
        yield Verdict(judge(
            self.name,
            {"10.x host saw the pod's address": private_seen and set(private_seen) == {pod_ip},
             "no answer without a return route": not no_route.ok,
             "answer with a return route": with_route.ok and pod_ip in with_route.stdout,
             "outside host saw the node's address": outside_seen == [node_ip],
             "outside host answered": answer.ok},
            f"{src} ({pod_ip}) -> {PRIVATE[0]} {private.ip.ip}: the server saw "
            f"{', '.join(private_seen) or 'nothing'}; without a return route the pod got "
            f"'{no_route.stdout.strip()}', with one '{with_route.stdout.strip()}'. "
            f"-> {OUTSIDE[0]} {outside.ip.ip}: the server saw "
            f"{', '.join(outside_seen) or 'nothing'} (node {node_ip}); the pod got "
            f"'{answer.stdout.strip()}'",
            {"private_saw_pod_ip": int(pod_ip in private_seen),
             "outside_saw_node_ip": int(node_ip in outside_seen),
             "answered_without_route": int(no_route.ok),
             "answered_with_route": int(with_route.ok)},
        ))


def _sources(log: bytes | None) -> list[str]:
    """Source addresses a UDP echo server logged (`from <ip>` lines)."""
    text = (log or b"").decode(errors="replace")
    return [line.split()[1] for line in text.splitlines() if line.startswith("from ")]
