"""The names the testbed gives what it creates, in one place. Pure.

Interfaces and named network namespaces are machine-wide, so every one the testbed makes
outside a node's own namespace starts with `PREFIX` (nobody mistakes them for the
machine's own), and each name has one function that builds it.
"""

from __future__ import annotations

PREFIX = "ktb"
ROUTER = "router"  # the cloud gateway's host name; no node may take it
UNDERLAY_SWITCH = f"{PREFIX}-ul1"  # Mininet derives a dpid from the digits in the name
MAX_RACKS = 8

# The link group of the underlay bridge and its ports ("ktb" in ASCII), so that teardown
# deletes them in one request; before a group is deleted, every member is checked to be ours.
LINK_GROUP = 0x6B7462
# FRR keeps crash-log directories here; the router mounts a private tmpfs on it.
FRR_TMP = "/var/tmp/frr"

MAX_IFNAME = 15  # IFNAMSIZ - 1
UNDERLAY_SUFFIX = "-eth0"
MAX_NODE_NAME = MAX_IFNAME - len(UNDERLAY_SUFFIX)  # `<node>-eth0` must fit

# The underlay switch (`underlay_switch:` in a topology file).
LINUX_BRIDGE = "linux-bridge"
OVS = "ovs"
UNDERLAY_SWITCHES = (LINUX_BRIDGE, OVS)

# Pod network modes (`pod_network:` in a topology file); testbed.model.podnet has them.
KUBENET = "kubenet"
DOCKER_DEFAULT = "docker-default"
FLANNEL_HOST_GW = "flannel-host-gw"
FLANNEL_VXLAN = "flannel-vxlan"
KINDNET = "kindnet"
CALICO_VXLAN = "calico-vxlan"
CALICO = "calico"


def underlay_intf(node: str) -> str:
    """A node's (or the router's) interface on the underlay, as Mininet names it."""
    return f"{node}{UNDERLAY_SUFFIX}"


def underlay_switch(rack: int = 0) -> str:
    """The underlay bridge of rack number `rack` (0: the only one without racks)."""
    return f"{PREFIX}-ul{rack + 1}"


def underlay_port(index: int, rack: int = 0) -> str:
    """An underlay bridge's port `index` (1: the router's link, then the nodes')."""
    return f"{underlay_switch(rack)}-eth{index}"


def router_intf(rack: int) -> str:
    """The router's interface on rack number `rack` (Mininet names them in link order)."""
    return f"{ROUTER}-eth{rack}"


def external_links(index: int) -> tuple[str, str]:
    """The two ends of the link of the `index`-th host behind the router (host, router):
    Mininet makes them in the machine's namespace before moving them, so they carry the
    prefix (a crash in between leaves links cleanup may delete)."""
    return f"{PREFIX}-ext{index}", f"{PREFIX}-ext{index}r"


def is_own_name(name: str) -> bool:
    """Whether a machine-wide name (interface or named netns) is one the testbed gives."""
    return name.startswith(f"{PREFIX}-") and "/" not in name and name not in (".", "..")


def pod_netns_name(node: str, pod: str) -> str:
    """The machine-wide name of a pod's network namespace (`ip netns exec <it> ...`)."""
    return f"{PREFIX}-{node}-{pod}"
