"""out-ingress, a claim of the series' third part (traffic from outside):

    an Ingress is an HTTP proxy in the cluster, reached through a load balancer or
    NodePort, that routes by host name and path to services

The evidence, kept in raw/out-ingress/evidence.json, is a mapping; the verdict
(`judge_ingress`, pure) reads its keys

    cases

and `Ingress.run` gathers them on a cluster of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.outside.common import (
    CART,
    SERVICE_PORT,
    WEB,
    OutsideClaim,
    fetch,
    outside_cluster,
    served,
)
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.verdicts import ClaimResult, error, judge

# (host, path, where it should land: a pod's app, or "" for the default backend)
INGRESS_CASES = (("shop.example", "/cart", "cart"), ("shop.example", "/cart/items", "cart"),
                 ("shop.example", "/", "web"), ("shop.example", "/cartoon", "web"),
                 ("other.example", "/cart", ""))


def judge_ingress(e: Mapping[str, Any]) -> ClaimResult:
    cases = e["cases"]
    if not cases or not all(v["connections"] for v in cases):
        return error(Ingress.name, "no request reached the ingress controller")
    apps = {"cart": [CART], "web": list(WEB), "": []}

    def landed(v: Mapping[str, Any]) -> bool:
        pods = [p for p, k in v["served"].items() if k]
        if not v["expect"]:  # the default backend: nginx's own 404, no pod
            return not pods and v["statuses"] == [404] * v["connections"]
        return v["answered"] == v["connections"] and set(pods) <= set(apps[v["expect"]]) \
            and sum(v["served"].values()) == v["connections"]

    return judge(
        Ingress.name,
        {f"{v['via']} {v['host']}{v['path']} -> {v['expect'] or 'default backend'}": landed(v)
         for v in cases},
        "; ".join(f"{v['via']} Host {v['host']} {v['path']}: "
                  + (", ".join(f"{p} {k}" for p, k in v["served"].items() if k)
                     or f"no pod (HTTP {sorted(set(v['statuses']))})")
                  + f" [{', '.join(sorted(set(v['upstreams'])))}]" for v in cases),
        {"requests": sum(v["connections"] for v in cases)},
    )


def _upstreams(access_log: str, tag: str) -> list[str]:
    """The upstream nginx named for each request of probe `tag` (upstreaminfo format)."""
    out = []
    for line in access_log.splitlines():
        if f"probe={tag}-" in line:
            m = re.search(r" \[([^\]]*)\] \[[^\]]*\] ", line)
            out.append(m.group(1) if m else "?")
    return out


class Ingress(OutsideClaim):
    name = "out-ingress"
    statement = ("an Ingress is an HTTP proxy in the cluster, reached through a load balancer or "
                 "NodePort, that routes by host name and path to services")

    def run(self, ctx: Context) -> Iterator[Result]:
        with outside_cluster(ctx) as c:
            ctrl = c.services.service("ingress-nginx/ingress-nginx-controller")
            ctrl_node = c.pod("ingress-nginx").node
            vias = [("load balancer", str(ctrl.load_balancer_ip), SERVICE_PORT),
                    (f"node port of {ctrl_node}", c.endpoint_ip(ctrl_node),
                     ctrl.ports[0].node_port)]
            cases = []
            for i, (via, ip, port) in enumerate(vias):
                for j, (host, path, expect) in enumerate(INGRESS_CASES):
                    if i and j not in (0, 2):
                        continue  # through the node port: one case per service is enough
                    tag = f"ing{i}{j}"
                    conns, _ = fetch(c, ip, port, tag, 4, path, host)
                    logs = served(c, tag, (*WEB, CART))
                    access = (c.records.subdir("ingress") / "access.log").read_text(
                        errors="replace")
                    cases.append({"via": via, "host": host, "path": path, "expect": expect,
                                  "connections": len(conns),
                                  "answered": sum(x.ok for x in conns),
                                  "statuses": [x.status for x in conns],
                                  "served": {p: len(v) for p, v in logs.items()},
                                  "upstreams": _upstreams(access, tag)})
            ctx.raw(f"{Ingress.name}/nginx.conf",
                    (c.records.subdir("ingress") / "nginx.conf").read_text())
            ctx.raw(f"{Ingress.name}/access.log",
                    (c.records.subdir("ingress") / "access.log").read_text(errors="replace"))
            e = {"cases": cases}
        keep_evidence(ctx, Ingress.name, e)
        yield Verdict(judge_ingress(e))
