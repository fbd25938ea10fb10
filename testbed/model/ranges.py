"""Every address range a topology uses, and a range clear of all of them. Pure.

A claim that adds hosts of its own behind the router (no-masquerade-10-8's `ext-10` and
`outside`) must not land them in a range the topology already uses: on
topologies/outside.yaml the fixed 198.51.100.0/24 was the external client's network, the
probe's answer went to that host and the claim was refuted although it held. So the
ranges are chosen here, from candidates, clear of everything the spec names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network

from testbed.model.spec import ClusterSpec

# where a claim's own networks come from: 10.x (inside kubelet's non-masquerade range,
# outside the usual cluster and service ranges), and the documentation ranges
PRIVATE_CANDIDATES = tuple(IPv4Network(f"10.{b}.0.0/24") for b in range(200, 255))
OUTSIDE_CANDIDATES = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"),
                      IPv4Network("192.0.2.0/24"),
                      *(IPv4Network(f"198.18.{c}.0/24") for c in range(0, 256, 4)))


def in_use(spec: ClusterSpec) -> list[tuple[IPv4Network, str]]:
    """Each range the topology uses, with what it is: underlays, the cluster CIDR, every
    node's own pod CIDR, the service range, the external hosts' networks and the load
    balancers' network (listed whether or not a service needs it: a claim's host there
    would be one more thing to reason about)."""
    out = [(u, "underlay") for u in spec.underlays]
    out.append((spec.cluster_cidr, "cluster_cidr"))
    out += [(n.pod_cidr, f"pod CIDR of {n.name}") for n in spec.nodes if n.pod_cidr]
    out.append((spec.service_cidr, "service_cidr"))
    out += [(h.network, f"network of external host {h.name}") for h in spec.external_hosts]
    out.append((spec.load_balancer_network, "load_balancer_network"))
    return out


def overlapping(net: IPv4Network, taken: Iterable[tuple[IPv4Network, str]]) -> list[str]:
    """What in `taken` overlaps `net`, in words."""
    return [f"{what} {other}" for other, what in taken if net.overlaps(other)]


def free_network(spec: ClusterSpec, candidates: Sequence[IPv4Network],
                 also_taken: Iterable[IPv4Network] = (),
                 within: IPv4Network | None = None,
                 outside: IPv4Network | None = None) -> IPv4Network:
    """The first candidate clear of every range of the topology and of `also_taken`,
    inside `within` and clear of `outside` when given; ValueError if none is."""
    taken = in_use(spec) + [(n, "a range taken before") for n in also_taken]
    for net in candidates:
        if within is not None and not net.subnet_of(within):
            continue
        if outside is not None and net.overlaps(outside):
            continue
        if not overlapping(net, taken):
            return net
    raise ValueError(f"no candidate range is clear of the topology {spec.name}'s ranges "
                     f"({', '.join(f'{w} {n}' for n, w in taken)})")
