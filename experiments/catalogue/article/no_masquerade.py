"""Claim `no-masquerade-10-8`: with kubenet's masquerade rule (nonMasqueradeCIDR
10.0.0.0/8), a host on another 10.x network sees the pod's own address and can answer only
with a return route to the pod network; a host outside 10.0.0.0/8 sees the node's address.

    pod (10.0.0.2) -> node-1 -> router -+- ext-10   10.200.0.10  (10.x, no default route)
                                        '- outside  198.51.100.10 (documentation range)

Both hosts exist only inside the emulation, behind the router, and are removed at the
end. Their networks are chosen clear of every range the topology uses
(testbed.model.ranges): the ones drawn above when those are free. The claim is about
kubenet's rule with kubelet's default range: on another pod network, or another
non-masquerade range, it is `not applicable`. Each host runs a UDP echo server that
logs every datagram's source address: the evidence is what the receiver saw, phase by
phase (before the return route, after it, outside), kept in raw/no-masquerade-10-8/ with
the logs; `judge_evidence` is a pure function of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Network
from typing import Any

from experiments.framework import probes
from experiments.framework.base import (
    Claim,
    Context,
    Result,
    Verdict,
    keep_evidence,
    outcome,
    retry,
)
from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, judge
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.model.names import KUBENET
from testbed.model.ranges import OUTSIDE_CANDIDATES, PRIVATE_CANDIDATES, free_network
from testbed.model.spec import ClusterSpec

PORT = 7003
PRIVATE = ("ext-10", "10.200.0.0/24")  # the name, and the network when it is free
OUTSIDE = ("outside", "198.51.100.0/24")
NON_MASQUERADE = IPv4Network("10.0.0.0/8")


def host_name(spec: ClusterSpec, base: str) -> str:
    """`base`, or `base-2`, ...: a name no node, pod or external host of the topology has
    (the cluster looks hosts up by name)."""
    taken = {n.name for n in spec.nodes} | {p.name for n in spec.nodes for p in n.pods} | {
        h.name for h in spec.external_hosts}
    names = [base, *(f"{base}-{i}" for i in range(2, len(taken) + 3))]
    return next(n for n in names if n not in taken)


def networks(spec: ClusterSpec) -> tuple[str, str]:
    """The 10.x host's network and the outside host's: the first free of the topology's
    ranges, one inside the non-masquerade range, the other outside it."""
    private = free_network(spec, PRIVATE_CANDIDATES, within=NON_MASQUERADE)
    outside = free_network(spec, OUTSIDE_CANDIDATES, also_taken=[private],
                           outside=NON_MASQUERADE)
    return str(private), str(outside)


def judge_evidence(e: Mapping[str, Any]) -> ClaimResult:
    pod_ip, node_ip = e["pod_ip"], e["node_ip"]
    before, after, outside = e["private_seen_before_route"], e["private_seen"], e["outside_seen"]
    return judge(
        NoMasquerade.name,
        {"10.x host got the request without a return route": pod_ip in before,
         "no answer without a return route": not e["no_route"]["ok"],
         "10.x host saw the pod's address": bool(after) and set(after) == {pod_ip},
         "answer with a return route": e["with_route"]["ok"]
         and pod_ip in e["with_route"]["stdout"],
         "outside host saw the node's address": outside == [node_ip],
         "outside host answered": e["outside"]["ok"]},
        f"{e['src']} ({pod_ip}) -> {PRIVATE[0]} {e['private_ip']}: the server saw "
        f"{', '.join(before) or 'nothing'} before a return route existed and "
        f"{', '.join(after) or 'nothing'} in all; without a return route the pod got "
        f"'{e['no_route']['stdout'].strip()}', with one '{e['with_route']['stdout'].strip()}'. "
        f"-> {OUTSIDE[0]} {e['outside_ip']}: the server saw {', '.join(outside) or 'nothing'}"
        f" (node {node_ip}); the pod got '{e['outside']['stdout'].strip()}'",
        {"private_saw_pod_ip": int(pod_ip in after),
         "private_got_request_without_route": int(pod_ip in before),
         "outside_saw_node_ip": int(node_ip in outside),
         "answered_without_route": int(e["no_route"]["ok"]),
         "answered_with_route": int(e["with_route"]["ok"])},
    )


class NoMasquerade(Claim):
    """Pods reach 10.0.0.0/8 with their own address, the rest with the node's."""

    name = "no-masquerade-10-8"
    statement = ("pods reach 10.0.0.0/8 with their own source address (answers need a return "
                 "route); other destinations see the node's address")
    requires = Needs(pods=1, pod_networks=(KUBENET,), non_masquerade_cidr=str(NON_MASQUERADE),
                     why_pod_networks="the claim is about kubenet's masquerade rule; others "
                                      "masquerade by rules of their own")

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        src = next(iter(c.pods))
        private_net, outside_net = networks(c.spec)
        e: dict[str, Any] = {"src": src, "pod_ip": c.endpoint_ip(src),
                             "node_ip": str(c.node_plan(c.pod(src).node).underlay_ip.ip),
                             "private_network": private_net, "outside_network": outside_net}
        private_host, outside_host = host_name(c.spec, PRIVATE[0]), host_name(c.spec, OUTSIDE[0])
        logs = {name: f"raw/{self.name}/{name}_server.log"
                for name in (private_host, outside_host)}

        def seen(host: str) -> list[str]:
            return _sources(ctx.run.read(logs[host]))

        servers = []
        try:
            private = c.add_external_host(private_host, private_net, default_route=False)
            outside = c.add_external_host(outside_host, outside_net, default_route=True)
            e["private_ip"], e["outside_ip"] = str(private.ip.ip), str(outside.ip.ip)
            for name, log_name in logs.items():
                with ctx.run.open_log(log_name) as log:
                    servers.append(c.popen_node(name, probes.udp_echo(PORT, name), stdout=log,
                                                stderr=log))
            for log_name in logs.values():  # servers listening
                retry(lambda n=log_name: ctx.run.read(n) or b"", lambda t: b"listening" in t)

            ask = probes.udp_ask(e["private_ip"], PORT)
            no_route = c.pod(src).exec(ask)
            # the request arrived, only the answer could not come back
            e["private_seen_before_route"] = retry(lambda: seen(private_host), bool,
                                                   timeout_s=1)
            route = ["ip", "route", "add", str(c.plan.cluster_cidr), "via",
                     str(private.router_ip.ip)]
            added = c.exec_node(private_host, route)
            if not added.ok:
                raise TestbedError(f"{private_host}: {' '.join(route)}: {added.stderr.strip()}")
            with_route = retry(lambda: c.pod(src).exec(ask), lambda r: r.ok, timeout_s=3)
            answer = c.pod(src).exec(probes.udp_ask(e["outside_ip"], PORT))
            time.sleep(0.2)  # the servers' last lines
        finally:
            for proc in servers:
                procs.stop_popen(proc)
            for name in (private_host, outside_host):
                if name in c.external:
                    c.remove_external_host(name)
        e.update(no_route=outcome(no_route), with_route=outcome(with_route),
                 outside=outcome(answer),
                 private_seen=seen(private_host), outside_seen=seen(outside_host))
        keep_evidence(ctx, NoMasquerade.name, e)
        yield Verdict(judge_evidence(e))


def _sources(log: bytes | None) -> list[str]:
    """Source addresses a UDP echo server logged (`from <ip>` lines)."""
    text = (log or b"").decode(errors="replace")
    return [line.split()[1] for line in text.splitlines() if line.startswith("from ")]
