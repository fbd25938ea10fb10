"""What the claims of the series' third part (traffic from outside) share: their base
class, their cluster, and the helpers more than one of them reads its evidence with.
Each claim is a module of its own beside this one."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from experiments.framework import probes
from experiments.framework.base import OWN_CLUSTERS, Claim, Context
from experiments.framework.paths import TOPOLOGIES
from testbed.cluster import Cluster
from testbed.measure.services import Connection, parse_access_log, parse_client
from testbed.model.load import load_spec
from testbed.model.names import ROUTER
from testbed.model.svc.outside import LB_HOST

TOPOLOGY = TOPOLOGIES / "outside.yaml"


CLIENT = "internet-client"


WEB = ("web-1", "web-2")


CART = "cart-1"


HOSTPORT_POD = "hostport"


CLUSTER_SVC, LOCAL_SVC = "web-cluster", "web-local"


SERVICE_PORT = 80


HOST_PORT = 8088


SERVERS = (*WEB, CART, HOSTPORT_POD)


class OutsideClaim(Claim):
    """A claim of the third part: one verdict, on a cluster of its own."""

    needs = OWN_CLUSTERS


@contextmanager
def outside_cluster(ctx: Context) -> Iterator[Cluster]:
    with Cluster(load_spec(TOPOLOGY), progress=ctx.progress.note, wiring=ctx.wiring) as c:
        yield c


def fetch(c: Cluster, host: str, port: int, tag: str, count: int = 6, path: str = "/",
          vhost: str = "", timeout_s: float = 1.0) -> tuple[list[Connection], str]:
    """`count` HTTP connections from the external client, one after another."""
    res = c.exec_node(CLIENT, probes.http_loop(host, port, count, 0.0, tag, timeout_s, path,
                                                vhost), timeout=count * (timeout_s + 1) + 30)
    return parse_client(res.stdout)[1], res.stdout + res.stderr


def served(c: Cluster, tag: str, pods: Sequence[str] = SERVERS) -> dict[str, dict[int, str]]:
    """pod -> {seq: the source address it logged} for the probe `tag`."""
    time.sleep(0.2)  # the servers' last log lines
    logs = c.records.subdir("containers")
    return {p: parse_access_log((logs / f"{p}_web.log").read_text(errors="replace"), tag)
            for p in pods}


def node_addresses(c: Cluster) -> dict[str, list[str]]:
    """Each node's own addresses: underlay and bridge (what SNAT can give a packet)."""
    return {n.name: [str(n.underlay_ip.ip), str(n.bridge_ip.ip)] for n in c.plan.nodes}


def pod_nodes(c: Cluster) -> dict[str, str]:
    return {name: pod.node for name, pod in c.pods.items()}


def _conns(conns: Sequence[Connection]) -> list[dict[str, Any]]:
    return [x.__dict__ for x in conns]


def _owner(addresses: Mapping[str, Sequence[str]], ip: str) -> str:
    return next((n for n, ips in addresses.items() if ip in ips), "")


def _syns(capture: str, dst: str, port: int) -> int:
    """SYNs to dst:port in `tcpdump -n -r` text."""
    pattern = re.compile(rf"> {re.escape(dst)}\.{port}: Flags \[S\]")
    return sum(1 for line in capture.splitlines() if pattern.search(line))


def _path_rows(e: Mapping[str, Any], via_lb: str = "") -> list[tuple[str, list[str]]]:
    """The distinct paths the evidence shows: (label, hops)."""
    rows = []
    pod_node = e["pod_nodes"]
    for entry, v in e["entries"].items():
        for pod, k in v["served"].items():
            if not k:
                continue
            hops = [f"{CLIENT}\n{e['client']}", ROUTER]
            if via_lb:
                hops += [f"{LB_HOST}\n{via_lb}", ROUTER]
            hops.append(f"{entry}\n:{e['node_port']}")
            if pod_node[pod] != entry:
                hops += [ROUTER, pod_node[pod]]
            hops.append(f"{pod}\n:8080")
            extra = ", one more hop" if pod_node[pod] != entry else ""
            rows.append((f"{k} connection(s) via {entry}{extra}", hops))
    return rows
