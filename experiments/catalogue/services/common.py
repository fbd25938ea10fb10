"""What the claims of the series' second part (Services) share: their base class, their
cluster, and the helpers more than one of them reads its evidence with. Each claim is a module of
its own beside this one."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from experiments.framework.base import OWN_CLUSTERS, Claim, Figure
from experiments.framework.svc_common import SERVERS
from testbed.cluster import Cluster
from testbed.measure.iproute import ip_json
from testbed.results.plots import timeline_png

# the even split: each share within SPLIT_MARGIN of 1/k (two servers: 0.40..0.60), shown
# by two one-sided tests at SPLIT_ALPHA. With a fair split, 600 connections (--quick) leave
# it undecided about 1 run in 300, 1000 (the full suite) practically never.
SPLIT_MARGIN = 0.1


SPLIT_ALPHA = 0.05


class ServicesClaim(Claim):
    """A claim of the second part: one verdict, on a services cluster of its own."""

    needs = OWN_CLUSTERS


def _in(ip: str, net: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(net)


def _overlap(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def _addresses(c: Cluster, where: str) -> list[dict[str, Any]]:
    """Every IPv4 address of a node, the router or a pod: [{ifname, address, prefix}]."""
    argv = ["ip", "-j", "-4", "addr"]
    res = c.pod(where).exec(argv) if where in c.pods else c.exec_node(where, argv)
    out = []
    for link in ip_json(res, f"addresses of {where}"):
        for a in link.get("addr_info", []):
            out.append({"where": where, "ifname": link.get("ifname"),
                        "address": a["local"], "prefix": a["prefixlen"]})
    return out


def _routes(c: Cluster, where: str) -> list[dict[str, Any]]:
    res = c.exec_node(where, ["ip", "-j", "-4", "route", "show", "table", "all"])
    return [{"where": where, "dst": r.get("dst"), "gateway": r.get("gateway", ""),
             "dev": r.get("dev", "")} for r in ip_json(res, f"routes of {where}")]


def _timeline(e: Mapping[str, Any], lanes_of: Mapping[str, Mapping[int, str]],
              modes: Sequence[str], event: str, title: str, name: str) -> Figure:
    panels, events = [], []
    for mode in modes:
        conns = e[mode]["connections"]
        t0 = conns[0]["t"] if conns else 0.0
        lanes = lanes_of.get(mode, {})
        panels.append((mode, pd.DataFrame({
            "t": [x["t"] - t0 for x in conns],
            "lane": [lanes.get(x["seq"], "answered") if x["ok"] else "failed"
                     for x in conns]})))
        events.append([(t - t0, label) for t, label in e[mode]["events"]] if "events" in
                      e[mode] else [(e[mode]["killed_at"] - t0, event)])
    lanes = ["failed", "answered", *SERVERS]
    return Figure(name, timeline_png(panels, events, title, lanes))
