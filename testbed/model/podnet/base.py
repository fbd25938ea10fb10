"""What a pod network is to the testbed: one small interface, implemented once per mode.

A pod network decides, from the spec alone (pure, tested without root):

- the addresses: each node's pod CIDR (`pod_cidrs`, hence `plan`) and its own checks of
  a topology file (`check`);
- how a node is prepared before its first pod (`node_setup`: bridge or not, addresses,
  sysctls, iptables), given the MTU it computes from the node's interfaces (`mtu`);
- how a pod is wired: the CNI network configuration (`cni_config`), which the real
  plugins or the fast path (`testbed.pods`) turn into kernel state;
- what routes the cloud gateway or the nodes need (`router_routes`, `NodeSetup.routes`);
- what a probe should find: the same `NodeSetup` and routes, and the reply TTL of each
  path class (`expected_ttls`).

The lifecycle (`testbed.cluster`) applies these values and never asks which mode it
runs, so a new mode is a new module in this package and a line in its registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Callable, ClassVar  # typing's Callable: `Fail` runs on 3.8

from testbed.errors import SpecError
from testbed.model.addressing import AddressPlan, NodePlan, plan
from testbed.model.paths import EXPECTED_TTL, ROUTE_DESCRIPTION
from testbed.model.spec import ClusterSpec

CNI_VERSION = "0.4.0"
# Report a problem in a topology file: (field path, problem) -> the error to raise.
Fail = Callable[[str, str], SpecError]


@dataclass(frozen=True)
class Route:
    """A route a router or node needs: `dst via via`."""

    dst: IPv4Network
    via: IPv4Address


@dataclass(frozen=True)
class Daemon:
    """A process a pod network runs on a node, with its files: `{dir}` in the argument
    list and the files' text stands for the node's own directory in the run."""

    name: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()  # (file name, text)
    # what makes the running daemon re-read its files (run in the node), when the nodes
    # it follows change (`PodNetwork.mesh`)
    reload: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mesh:
    """A node's (or the router's) daemons and the routes they converge to, for one set of
    member nodes: what `PodNetwork.mesh` gives when nodes join or leave."""

    daemons: tuple[Daemon, ...]
    await_routes: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class NodeSetup:
    """What a node needs before its first pod, as values: the lifecycle applies them in
    this order (`testbed.emulation.nodesetup`) and tests compare the kernel with them.

    1. `sysctls` (the node's network namespace)
    2. the bridge `bridge` (down, MTU `mtu`), its address `bridge_ip`, up; `lo` up; the
       default route via `default_via` and then `routes`, all on the node's underlay
       interface
    3. `bridge_sysctls` (once the bridge exists)
    4. `commands`: what a mode's agent programs beyond that (a VXLAN device, its
       neighbours, FDB entries and routes), as the equivalent `ip`/`bridge` argument
       lists, run in the node in order
    5. `iptables`: argument lists, run in the node, in order
    """

    sysctls: tuple[tuple[str, str], ...]
    bridge: str | None
    bridge_ip: IPv4Interface | None
    mtu: int
    default_via: IPv4Address
    routes: tuple[Route, ...] = ()
    bridge_sysctls: tuple[tuple[str, str], ...] = ()
    iptables: tuple[tuple[str, ...], ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    # what the mode's agent would log about this node (a route it cannot add, ...)
    notes: tuple[str, ...] = ()
    # 6. `daemons` the mode runs on the node (a BGP daemon), started once every node is
    #    set up; the bring-up then waits until each of `await_routes` is in the node's
    #    kernel (what they converge to)
    daemons: tuple[Daemon, ...] = ()
    await_routes: tuple[IPv4Network, ...] = ()


class PodNetwork(ABC):
    """One way to build a pod network (a mode): see the module docstring."""

    name: ClassVar[str]
    description: ClassVar[str]
    bridge: ClassVar[str | None]  # the node bridge pods attach to; None: no bridge
    wiring: ClassVar[str | None] = None  # None: the cluster's choice; else the only one
    tools: ClassVar[dict[str, str]] = {}  # programs it needs -> their Debian package

    def check(self, spec: ClusterSpec, fail: Fail) -> None:  # noqa: B027 - optional
        """Refuse a topology this mode cannot build (raise `fail(field, problem)`)."""

    @abstractmethod
    def pod_cidrs(self, spec: ClusterSpec) -> list[IPv4Network]:
        """Each node's pod CIDR, in node order."""

    def plan(self, spec: ClusterSpec) -> AddressPlan:
        """The cluster's addresses, with this mode's pod CIDRs."""
        return plan(spec, self.pod_cidrs(spec))

    @abstractmethod
    def router_routes(self, plan: AddressPlan) -> list[Route]:
        """The routes the cloud gateway holds for the pods (FRR static routes)."""

    @abstractmethod
    def mtu(self, interface_mtus: Mapping[str, int]) -> int:
        """The pod MTU of a node, from the MTUs of its up interfaces (name -> MTU)."""

    @abstractmethod
    def node_setup(self, spec: ClusterSpec, plan: AddressPlan, node: NodePlan,
                   mtu: int) -> NodeSetup:
        """What node `node` needs before its first pod."""

    @abstractmethod
    def cni_config(self, plan: AddressPlan, node: NodePlan, mtu: int,
                   ipam_dir: Path) -> dict[str, Any]:
        """The CNI network configuration a runtime hands the plugins for a pod on `node`
        (`ipam_dir`: the node's own host-local data directory; `plan`: the cluster's
        addresses, for a mode whose configuration names the whole pod network)."""

    def router_setup(self, spec: ClusterSpec, plan: AddressPlan) -> NodeSetup | None:
        """Daemons the mode runs on the router (a BGP speaker), and the routes they must
        bring it; None: the router needs nothing from this mode."""
        return None

    def mesh(self, spec: ClusterSpec, plan: AddressPlan, where: NodePlan | None,
             members: Sequence[NodePlan]) -> Mesh | None:
        """The daemons of node `where` (None: the router) and the routes they converge to
        while the pod network holds only `members` (a node deleted, or added): the
        configuration each node's agent regenerates when it sees the change. None: the
        mode's routes between nodes are not a daemon's (the testbed programs them as the
        agent would, with no watch of an API server to time), so joining and leaving are
        not emulated."""
        return None

    def expected_ttls(self) -> dict[str, int]:
        """The reply TTL each path class should show (Linux sends with 64)."""
        return dict(EXPECTED_TTL)

    def route_descriptions(self) -> dict[str, str]:
        """The way each path class takes in this mode, in words (for the report)."""
        return dict(ROUTE_DESCRIPTION)
