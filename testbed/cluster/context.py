"""What every lifecycle step works on: one cluster's state and the look-ups it needs.

`Cluster` (cluster.py) is this state plus the verbs; the verbs themselves live in their
own modules (up.py, down.py, pods.py, hosts.py) and take the state as an argument, so
none of them imports the class that calls it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Interface, ip_network
from pathlib import Path
from typing import Any, Callable  # typing's: `Progress` runs on 3.8

from testbed.errors import TestbedError
from testbed.kernel import cgroups, ns, procs
from testbed.kernel.procs import ExecResult, decode_output
from testbed.measure.iproute import ip_json
from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import ROUTER
from testbed.model.paths import Endpoint
from testbed.model.podnet import pod_network
from testbed.model.spec import ClusterSpec
from testbed.pods.pause import Pod
from testbed.pods.spawner import Spawner
from testbed.pods.wiring import DEFAULT_WIRING, make_wiring
from testbed.records.journal import STATE_ROOT, RunState
from testbed.records.lock import ClusterLock

Progress = Callable[[str], None]  # typing's Callable: an alias that runs on 3.8


def quiet(_message: str) -> None:
    """The default progress callback: say nothing."""


@dataclass
class ExternalHost:
    """A host on a network of its own behind the router (outside the cluster)."""

    name: str
    host: Any  # the Mininet host
    link: Any  # its link to the router
    ip: IPv4Interface  # the host's address
    router_ip: IPv4Interface  # the router's address on that network


class ClusterContext:
    """A cluster's state: its spec, the pod network and its address plan, the run's
    records, the Mininet network, the pods and the hosts behind the router."""

    def __init__(self, spec: ClusterSpec, *, progress: Progress = quiet,
                 mininet_log: str = "warning", state_root: Path = STATE_ROOT,
                 wiring: str = DEFAULT_WIRING) -> None:
        self.spec = spec
        self.network = pod_network(spec.pod_network)
        self.plan: AddressPlan = self.network.plan(spec)
        self.progress = progress
        self.mininet_log = mininet_log
        self.state_root = state_root
        # a pod network whose pods only one wiring makes (Calico's) names it
        self.wiring_name = self.network.wiring or wiring
        self.wiring = make_wiring(self.wiring_name)
        self.lock = ClusterLock(state_root)
        self.state: RunState | None = None  # the run's records, while it is up
        self.net: Any = None  # the ipmininet network, once built
        self.mtu: dict[str, int] = {}  # each node's pod MTU, as the pod network computed it
        self.node_notes: dict[str, list[str]] = {}  # what each node's agent would log
        self.node_setups: dict[str, Any] = {}  # each node's NodeSetup, as applied
        self.pods: dict[str, Pod] = {}
        self.spawner = Spawner()  # starts the pods' pause processes (testbed.pods.spawner)
        self.external: dict[str, ExternalHost] = {}
        self.external_links = 0  # hosts behind the router so far (names their links)
        self.node_processes: list[Any] = []  # processes started in nodes and the router
        # the pod network's daemons by (node or router, name), and the nodes they follow
        # (testbed.cluster.mesh: a node that left is not a member)
        self.daemons: dict[tuple[str, str], Any] = {}
        self.members: list[str] = []
        # seconds per bring-up step (`<step>_s`), up_s, down_s, and the stages inside the
        # steps that grow with the cluster (`<step>.<stage>_s`, see `stage`)
        self.timings: dict[str, float] = {}
        # each node with a CPU share: its cgroup (testbed.cluster.cpu), and the hierarchy
        self.cpu_groups: dict[str, str] = {}
        self.cpu_hierarchy: Any = None
        # nodes stopped (testbed.cluster.power): the processes frozen, by (pid, start time)
        self.stopped_nodes: dict[str, list[tuple[int, int | None]]] = {}
        # the Services control plane (testbed.cluster.services), for a topology with them
        self.services: Any = None
        # external hosts and the cloud load balancer (testbed.cluster.outside)
        self.outside: Any = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body into `timings[name]`, added to what earlier bodies of the same
        stage took (pods added twice count twice): every scale change is argued from
        these figures (benchmarks/bringup.py prints them)."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - t0

    @property
    def records(self) -> RunState:
        """The run's records; only while the cluster is up (or coming up)."""
        if self.state is None:
            raise TestbedError(f"cluster {self.spec.name} is not up")
        return self.state

    # -- look-ups ----------------------------------------------------------------------

    @property
    def nodes_can_leave(self) -> bool:
        """Whether nodes can leave and join the running pod network: the mode's routes
        between nodes are daemons' that follow the nodes (testbed.cluster.mesh)."""
        return self.network.mesh(self.spec, self.plan, None, self.plan.nodes) is not None

    def cgroup_procs(self, node: str) -> str | None:
        """The `cgroup.procs` file of `node`'s cpu cgroup; None without a CPU share."""
        group = self.cpu_groups.get(node)
        if group is None or self.cpu_hierarchy is None:
            return None
        return str(self.cpu_hierarchy.path(group) / "cgroup.procs")

    def run_prefix(self, node: str) -> tuple[str, ...]:
        """What starts a process in `node`'s cpu cgroup; () without a CPU share."""
        group = self.cpu_groups.get(node)
        return cgroups.prefix(group) if group else ()

    def pod(self, name: str) -> Pod:
        try:
            return self.pods[name]
        except KeyError:
            raise TestbedError(f"no pod named {name!r} (pods: {', '.join(self.pods)})") from None

    def node_plan(self, name: str) -> NodePlan:
        try:
            return self.plan.node(name)
        except KeyError:
            raise TestbedError(f"no node named {name!r}") from None

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.spec.nodes]

    def pods_by_node(self) -> dict[str, list[str]]:
        """The running pods' names, grouped by node (nodes without pods left out)."""
        out: dict[str, list[str]] = {}
        for pod in self.pods.values():
            out.setdefault(pod.node, []).append(pod.name)
        return out

    def host(self, name: str) -> Any:
        """The Mininet node object of a Kubernetes node, the router or an external host."""
        if name != ROUTER and name not in self.external:
            self.node_plan(name)
        return self.net[name]

    def node_netns(self, name: str) -> str:
        """The path of a node's network namespace (the plugins run there)."""
        return ns.netns_of(self.host(name).pid)

    def endpoint_ip(self, name: str) -> str:
        """The address of a pod (its eth0), a node (underlay) or the router, by name."""
        if name in self.pods:
            ip = self.pods[name].ip
            assert ip is not None
            return str(ip.ip)
        if name == ROUTER:
            return str(self.plan.router_ip.ip)
        if name in self.external:
            return str(self.external[name].ip.ip)
        return str(self.node_plan(name).underlay_ip.ip)

    def endpoint(self, name: str) -> Endpoint:
        """A pod, node or the router as a path-classification endpoint."""
        if name in self.pods:
            return Endpoint(name, "pod", self.pods[name].node)
        if name == ROUTER:
            return Endpoint(name, "router", ROUTER)
        self.node_plan(name)
        return Endpoint(name, "node", name)

    def describe(self) -> list[dict[str, Any]]:
        """One row per pod: name, node, IP, netns, pause pid, containers (for CLI and reports)."""
        return [
            {"pod": p.name, "node": p.node, "ip": str(p.ip.ip) if p.ip else "",
             "netns": p.netns, "pause_pid": p.pause_pid,
             "containers": ",".join(f"{c.name}{'' if c.running else '(stopped)'}"
                                    for c in p.containers.values())}
            for p in self.pods.values()
        ]

    # -- running commands in nodes -----------------------------------------------------

    def exec_node(self, name: str, command: list[str], timeout: float | None = 60) -> ExecResult:
        """Run a command to completion in a node's (or the router's) namespaces."""
        proc = self.host(name).popen(list(command), stdin=None)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            procs.stop_popen(proc)
            raise
        return ExecResult(proc.returncode, decode_output(out), decode_output(err))

    def popen_node(self, name: str, command: list[str], **kwargs: Any) -> Any:
        """Start a long-running process in a node; the cluster stops it at teardown."""
        proc = self.host(name).popen([*procs.DIE_WITH_PARENT, *command], **kwargs)
        self.records.record_process(proc.pid, f"{name}: {command[0]}")
        self.node_processes.append(proc)
        return proc

    def configure_router(self, *commands: str) -> None:
        """Configure the router's FRR as an operator would (`vtysh -c 'configure terminal'
        -c ...`, in the router's namespaces): a claim or a fault changes the cloud
        gateway's routes through the same daemon that installed them. Raises TestbedError
        with vtysh's words when it refuses or says anything."""
        argv = ["vtysh", "-c", "configure terminal"]
        for command in commands:
            argv += ["-c", command]
        res = self.exec_node(ROUTER, argv)
        if not res.ok or res.stdout.strip():
            raise TestbedError(f"vtysh {commands}: {(res.stdout + res.stderr).strip()}")

    def router_routes(self) -> list[dict[str, Any]]:
        """The router's kernel routes installed by FRR (`proto static`), as ip -j gives them."""
        # Filtered here: `ip route show proto static` does not match the number FRR uses.
        res = self.exec_node(ROUTER, ["ip", "-j", "route", "show"])
        return [r for r in ip_json(res, "the router's routes") if r.get("protocol") == "static"]


def route_dst(route: dict[str, Any]) -> str:
    """A route's destination from `ip -j route`, as a network ("default": 0.0.0.0/0)."""
    dst = route.get("dst", "")
    try:
        return str(ip_network(dst)) if dst != "default" else "0.0.0.0/0"
    except ValueError:
        return dst
