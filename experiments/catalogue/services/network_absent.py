"""svc-network-absent, a claim of the series' second part (Services):

    the service network does not exist: no interface anywhere has an address in it and
    no router has a route for it

The evidence, kept in raw/svc-network-absent/evidence.json, is a mapping; the verdict
(`judge_absent`, pure) reads its keys

    service_cidr, addresses, routes, client, vip

and `NetworkAbsent.run` gathers them on a cluster of its own."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.services.common import ServicesClaim, _addresses, _in, _routes
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import run_client, services_cluster, summary, vip
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.model.names import ROUTER


def judge_absent(e: Mapping[str, Any]) -> ClaimResult:
    if not e["addresses"] or not e["routes"] or not e["client"]["connections"]:
        return error(NetworkAbsent.name, "no addresses, routes or connections to the virtual IP "
                     "were recorded")
    svc = e["service_cidr"]
    holders = [f"{a['where']}:{a['ifname']} {a['address']}" for a in e["addresses"]
               if _in(a["address"], svc)]
    routes = [f"{r['where']}: {r['dst']}" for r in e["routes"]
              if r["dst"] not in ("default", None) and "/" in str(r["dst"]) + "/"
              and _route_overlaps(str(r["dst"]), svc)]
    places = sorted({a["where"] for a in e["addresses"]})
    return judge(
        NetworkAbsent.name,
        {"no interface holds an address in the service range": not holders,
         "no route for the service range (bar default routes)": not routes,
         "the virtual IP answered all the same": e["client"]["succeeded"] > 0
         and e["client"]["failed"] == 0},
        f"{len(e['addresses'])} addresses on {len(places)} hosts ({', '.join(places)}) and "
        f"{len(e['routes'])} routes of the nodes and the router read; in {svc}: "
        f"{', '.join(holders) or 'no address'}, {', '.join(routes) or 'no route'}; "
        f"meanwhile {e['client']['succeeded']}/{e['client']['connections']} connections to "
        f"{e['vip']}:80 succeeded",
        {"addresses": len(e["addresses"]), "routes": len(e["routes"]),
         "holders": len(holders), "covering_routes": len(routes)},
    )


def _route_overlaps(dst: str, svc: str) -> bool:
    try:
        return ipaddress.ip_network(dst if "/" in dst else f"{dst}/32").overlaps(
            ipaddress.ip_network(svc))
    except ValueError:
        return False


class NetworkAbsent(ServicesClaim):
    name = "svc-network-absent"
    statement = ("the service network does not exist: no interface anywhere has an address in it "
                 "and no router has a route for it")

    def run(self, ctx: Context) -> Iterator[Result]:
        with services_cluster(ctx) as c:
            hosts = [ROUTER, *c.node_names, *c.pods]
            e: dict[str, Any] = {"service_cidr": str(c.spec.service_cidr), "vip": vip(c),
                                 "addresses": [a for h in hosts for a in _addresses(c, h)],
                                 "routes": [r for h in [ROUTER, *c.node_names]
                                            for r in _routes(c, h)]}
            _, conns, _ = run_client(c, "absent", 5, host=vip(c))
            e["client"] = summary(conns)
        keep_evidence(ctx, NetworkAbsent.name, e)
        yield Verdict(judge_absent(e))
