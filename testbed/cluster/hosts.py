"""Hosts behind the router, outside the cluster: where "the internet" or another private
network lives in an experiment. Each is a Mininet host on a network of its own, linked
to the router, recorded and removed like everything else the testbed makes.

    pod -> node -> router -+- <name> 198.51.100.10   (router 198.51.100.1)
                  ktb-extNr '- ktb-extN: the link's two ends, named with the testbed's
                               prefix (Mininet makes them in the machine's namespace)
"""

from __future__ import annotations

import os
from ipaddress import IPv4Interface, IPv4Network

from testbed.cluster.context import ClusterContext, ExternalHost
from testbed.errors import LeftoverError, TestbedError
from testbed.model.names import ROUTER, external_links

HOST_INDEX = 9  # the host takes the tenth address of its network; the router the first


def add_external_host(cluster: ClusterContext, name: str, network: str,
                      default_route: bool = True) -> ExternalHost:
    """Attach a host on its own network behind the router (an "outside" network, or
    another private network). Without `default_route` the host knows only its own
    network, so it cannot answer a pod until it gets a return route."""
    records = cluster.records
    net = IPv4Network(network)
    if (name in cluster.external or name in cluster.node_names or name in cluster.pods
            or name == ROUTER):  # look-ups by name must find one thing
        raise TestbedError(f"a host, pod or node named {name} already exists")
    taken = [*cluster.spec.underlays, cluster.plan.cluster_cidr, cluster.spec.service_cidr,
             *(h.ip.network for h in cluster.external.values())]
    for other in taken:
        if net.overlaps(other):
            raise TestbedError(f"{network} overlaps {other}")
    router = cluster.net[ROUTER]
    cluster.external_links += 1
    names = external_links(cluster.external_links)
    clash = [n for n in names if os.path.exists(f"/sys/class/net/{n}")]
    if clash:
        raise LeftoverError(f"interfaces exist already: {', '.join(clash)}")
    for link_name in names:
        records.record("link", name=link_name)
    hosts = list(net.hosts())
    router_ip = IPv4Interface(f"{hosts[0]}/{net.prefixlen}")
    host_ip = IPv4Interface(f"{hosts[HOST_INDEX]}/{net.prefixlen}")
    host = cluster.net.addHost(name, cwd=str(records.subdir("hosts")), use_v6=False)
    records.record_process(host.shell.pid, f"{name} shell")
    link = cluster.net.addLink(host, router, intfName1=names[0], intfName2=names[1],
                               params1={"ip": str(host_ip)}, params2={"ip": str(router_ip)})
    external = ExternalHost(name, host, link, host_ip, router_ip)
    cluster.external[name] = external
    if default_route:
        res = cluster.exec_node(name, ["ip", "route", "add", "default", "via",
                                       str(router_ip.ip)])
        if not res.ok:
            raise TestbedError(f"{name}: default route via {router_ip.ip} failed: "
                               f"{res.stderr.strip()[:300]}")
    return external


def remove_external_host(cluster: ClusterContext, name: str) -> None:
    """Remove a host behind the router and its link (the router keeps its other ports)."""
    external = cluster.external.pop(name)
    cluster.net.delLink(external.link)
    cluster.net.delHost(external.host)
