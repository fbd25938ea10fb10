"""CIDR arithmetic the address plan and the pod networks share. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network


def pod_hosts(pod_cidr: IPv4Network) -> Iterator[IPv4Address]:
    """Addresses available to pods: every host address after the gateway (first) one."""
    hosts = pod_cidr.hosts()
    next(hosts)  # the gateway, the node's bridge
    yield from hosts


def pod_capacity(pod_cidr: IPv4Network) -> int:
    """How many pods a node CIDR holds: hosts minus the gateway."""
    return max(pod_cidr.num_addresses - 3, 0)


def carve_pod_cidrs(cluster_cidr: IPv4Network, prefix: int, count: int) -> list[IPv4Network]:
    """The first `count` /prefix subnets of the cluster CIDR, in order (node i gets i-th)."""
    subnets = cluster_cidr.subnets(new_prefix=prefix)
    return [next(subnets) for _ in range(count)]
