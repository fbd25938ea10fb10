"""The names the testbed gives what it creates, in one place. Pure.

Interfaces and named network namespaces are machine-wide, so every one the testbed makes
outside a node's own namespace starts with `PREFIX` (nobody mistakes them for the
machine's own), and each name has one function that builds it.
"""

from __future__ import annotations

PREFIX = "ktb"
ROUTER = "router"  # the cloud gateway's host name; no node may take it
UNDERLAY_SWITCH = f"{PREFIX}-ul1"  # Mininet derives a dpid from the digits in the name

MAX_IFNAME = 15  # IFNAMSIZ - 1
UNDERLAY_SUFFIX = "-eth0"
MAX_NODE_NAME = MAX_IFNAME - len(UNDERLAY_SUFFIX)  # `<node>-eth0` must fit

# Pod network modes (`pod_network:` in a topology file); testbed.model.podnet has them.
KUBENET = "kubenet"
DOCKER_DEFAULT = "docker-default"


def underlay_intf(node: str) -> str:
    """A node's (or the router's) interface on the underlay, as Mininet names it."""
    return f"{node}{UNDERLAY_SUFFIX}"


def underlay_port(index: int) -> str:
    """The underlay bridge's port `index` (1: the router's link, then the nodes')."""
    return f"{UNDERLAY_SWITCH}-eth{index}"


def pod_netns_name(node: str, pod: str) -> str:
    """The machine-wide name of a pod's network namespace (`ip netns exec <it> ...`)."""
    return f"{PREFIX}-{node}-{pod}"
