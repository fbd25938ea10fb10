"""Cluster: a context manager over the whole emulated Kubernetes cluster.

    with Cluster(load_spec("topologies/two-node.yaml")) as cluster:
        print(cluster.pod("pod-1").exec(["ping", "-c1", str(cluster.pod("pod-3").ip.ip)]))

Bring-up order: checks (root, tools) -> lock (one cluster a machine) -> clean a crashed
run's leftovers -> run directory -> Mininet/ipmininet network (router, underlay, nodes)
-> node set-up as kubenet does it -> router routes confirmed -> pods. Teardown runs in
reverse, always (errors, Ctrl-C, SIGTERM), and removes only what the run recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Interface, IPv4Network, ip_network
from pathlib import Path
from typing import Any

from testbed.cluster import preflight
from testbed.emulation.ipmn import GlobalCleanupRefused, IPNet, setLogLevel
from testbed.emulation.nodes import LINK_GROUP
from testbed.emulation.nodesetup import apply_links, run_rules, up_interface_mtus
from testbed.emulation.topo import FRR_TMP, ClusterTopo
from testbed.errors import LeftoverError, TestbedError
from testbed.kernel import procs
from testbed.kernel.ns import attach_netns, delete_netns
from testbed.kernel.procs import ExecResult, signals_deferred
from testbed.model.addressing import AddressPlan, NodePlan
from testbed.model.names import (
    ROUTER,
    UNDERLAY_SWITCH,
    pod_netns_name,
    underlay_intf,
    underlay_port,
)
from testbed.model.paths import Endpoint
from testbed.model.podnet import pod_network
from testbed.model.spec import ClusterSpec, ContainerSpec
from testbed.pods.pause import Container, Pod, spawn_pause, wait_pause
from testbed.pods.wiring import DEFAULT_WIRING, make_wiring
from testbed.records import undo
from testbed.records.journal import STATE_ROOT, RunState, new_run, remove_run_dir
from testbed.records.lock import ClusterLock

log = logging.getLogger(__name__)

ROUTE_WAIT_S = 20.0

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


class Cluster:
    """A running kubenet-style cluster: nodes, router and pods, torn down on exit."""

    def __init__(self, spec: ClusterSpec, *, progress: Progress = _quiet,
                 mininet_log: str = "warning", state_root: Path = STATE_ROOT,
                 wiring: str = DEFAULT_WIRING) -> None:
        self.spec = spec
        self.network = pod_network(spec.pod_network)
        self.plan: AddressPlan = self.network.plan(spec)
        self.progress = progress
        self.mininet_log = mininet_log
        self.state_root = state_root
        self.state: RunState | None = None
        self.net: Any = None  # ipmininet IPNet, once built
        self.pods: dict[str, Pod] = {}
        self.wiring_name = wiring
        # "cni": the real plugins, run as a runtime runs them (the reference);
        # "fast": the same kernel state over netlink, in-process (testbed.fastwire)
        self.wiring = make_wiring(wiring)
        self.mtu: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self._lock = ClusterLock(state_root)
        self._node_processes: list[Any] = []  # processes we started in nodes/router
        self.external: dict[str, tuple[Any, Any, IPv4Interface, IPv4Interface]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring the whole cluster up; on any failure, tear down what was made and re-raise."""
        preflight.check_all()
        self._lock.acquire(f"cluster {self.spec.name}")
        try:
            t0 = time.monotonic()
            stale = undo.clean_stale_runs(self.state_root)
            if stale:
                self.progress(f"removed leftovers of {len(stale)} crashed run(s): "
                              + ", ".join(stale))
            self._preflight()
            self.state = new_run(self.spec.name, self.state_root)
            self._build_network()
            self.timings["network_s"] = time.monotonic() - t0
            self._setup_nodes()
            self._wait_router_routes()
            self.timings["router_s"] = time.monotonic() - t0
            t1 = time.monotonic()
            self._add_pods([(n.name, p.name, p.containers) for n, p in self.spec.pods])
            self.timings["pods_s"] = time.monotonic() - t1
            self.timings["up_s"] = time.monotonic() - t0
            self.progress(f"cluster {self.spec.name} up: {len(self.spec.nodes)} nodes, "
                          f"{len(self.pods)} pods in {self.timings['up_s']:.1f} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Tear everything down (idempotent), then deliver any Ctrl-C/SIGTERM that came
        meanwhile: a teardown cut short would leave namespaces and processes behind."""
        with signals_deferred():
            self._stop()

    def _stop(self) -> None:
        if self.state is None:
            self._lock.release()
            return
        self.progress("tearing down")
        t0 = time.monotonic()
        errors: list[str] = []
        # The whole cluster goes: signal every pod's processes at once, reap them after,
        # rather than one terminate-and-wait at a time (the orderly path runs next).
        everything = [c.process for p in self.pods.values() for c in p.containers.values()
                      if c.process is not None] + [p.pause for p in self.pods.values()]
        for proc in everything:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self._node_processes:
            procs.stop_popen(proc)
        self._node_processes.clear()
        self.wiring.close()
        # The network first, while the pods' namespaces are still held: once they are
        # released the kernel destroys them in the background, holding the lock every
        # link change needs, and the underlay's deletion would wait for all of that.
        if self.net is not None:
            try:
                self._stop_network()
            except Exception as exc:
                errors.append(f"mininet stop: {exc!r}")
            self.net = None
        self.external.clear()  # their hosts and links went with the network
        for pod in list(self.pods.values()):
            try:
                self._destroy_pod(pod, cni_del=False)
            except Exception as exc:  # keep tearing down; report at the end
                errors.append(f"pod {pod.name}: {exc}")
        self.pods.clear()
        # Whatever the orderly path missed (a half-made pod, a daemon that did not die):
        # undo every record of this run, then remove its directory.
        errors.extend(undo.undo_run(self.state))
        remove_run_dir(self.state)
        self.state = None
        self._lock.release()
        self.timings["down_s"] = time.monotonic() - t0
        if errors:
            raise TestbedError("teardown finished with errors: " + "; ".join(errors))

    def _stop_network(self) -> None:
        """Mininet's stop() deletes every link through the nodes' shells, two commands a
        link. Here the underlay goes first, in one request (the bridge, its ports and
        their peers in the nodes), then the router's daemons and the nodes' shells: ending
        a node's shell ends its network namespace, and the kernel removes the pods' veth
        pairs with it. Whatever is left is removed from the records."""
        net = self.net
        for node in [*net.routers, *net.hosts, *net.switches]:
            _settle_shell(node)
        for switch in net.switches:  # one request: the bridge, its ports and their peers
            switch.stop(deleteIntfs=False)
            switch.terminate()
        for router in net.routers:
            router.terminate()  # ipmininet: FRR daemons, their files, then the node
        for host in net.hosts:
            host.terminate()

    # -- bring-up steps ----------------------------------------------------------------

    def _preflight(self) -> None:
        """Refuse to start over names that exist but are not ours (nothing is deleted).

        Mininet deletes any interface that has the name of one it is about to create, and
        ipmininet's switch deletes a bridge of its name: checked here, so they never do.
        """
        existing = set(os.listdir("/sys/class/net"))
        ours = {UNDERLAY_SWITCH, underlay_intf(ROUTER)} | {underlay_intf(n.name)
                                                            for n in self.spec.nodes}
        clash = sorted(
            name for name in existing
            if name in ours or name.startswith(underlay_port(0)[:-1])
        )
        netns = {pod_netns_name(n.name, p.name) for n, p in self.spec.pods}
        clash += sorted(n for n in netns if os.path.exists(f"/var/run/netns/{n}"))
        if clash:
            raise LeftoverError(
                "names this cluster needs already exist and were not recorded by a testbed "
                f"run: {', '.join(clash)}; remove them or rename the nodes"
            )

    def _build_network(self) -> None:
        assert self.state is not None
        setLogLevel(self.mininet_log)
        self.state.subdir("frr")
        self.state.subdir("hosts")
        if not os.path.isdir(FRR_TMP):  # the router's mount point for its private tmpfs
            self.state.record("dir", path=FRR_TMP, if_empty=True)
        self.state.record("link", name=UNDERLAY_SWITCH)
        self.state.record("linkgroup", group=LINK_GROUP)
        for i in range(1, len(self.spec.nodes) + 2):
            self.state.record("link", name=underlay_port(i))
        self.progress(f"building network: router, underlay, {len(self.spec.nodes)} nodes")
        topo = ClusterTopo(self.plan, self.network.router_routes(self.plan),
                           self.state.directory)
        self.net = IPNet(topo=topo, allocate_IPs=False, use_v6=False, build=False)
        self.net.build()
        for name in [ROUTER] + [n.name for n in self.spec.nodes]:
            node = self.net[name]
            self.state.record("process", pid=node.shell.pid,
                              started=procs.start_time(node.shell.pid), what=f"{name} shell")
        self.progress("starting router (FRR) and nodes")
        try:
            self.net.start()
        except GlobalCleanupRefused:
            raise TestbedError(
                "router: an FRR daemon failed its configuration check (ipmininet printed the "
                "details above); nothing was cleaned globally, the testbed tears down its own"
            ) from None
        for daemon, pid in undo.frr_daemons(self.state):
            self.state.record("process", pid=pid, started=procs.start_time(pid), what=daemon)

    def _setup_nodes(self) -> None:
        """Prepare every node as the pod network says (`PodNetwork.node_setup`): links,
        addresses and sysctls over netlink from here, the iptables rules of all nodes
        side by side."""
        rules = []
        for node in self.plan.nodes:
            host = self.net[node.name]
            mtu = self.mtu[node.name] = self.network.mtu(up_interface_mtus(host.pid))
            setup = self.network.node_setup(self.spec, self.plan, node, mtu)
            apply_links(node.name, host.pid, setup)
            rules.append((node.name, host, setup.iptables))
        run_rules(rules)

    def _node_exec(self, host: Any, argv: list[str], check: bool = True) -> ExecResult:
        out, err, code = host.pexec(argv)
        result = ExecResult(code, out, err)
        if check and code != 0:
            raise TestbedError(f"{host.name}: {' '.join(argv)} failed: {err.strip()[:300]}")
        return result

    def router_routes(self) -> list[dict[str, Any]]:
        """The router's kernel routes installed by FRR (`proto static`), as ip -j gives them."""
        # Filtered here: `ip route show proto static` does not match the number FRR uses.
        res = self.exec_node(ROUTER, ["ip", "-j", "route", "show"])
        return [r for r in json.loads(res.stdout or "[]") if r.get("protocol") == "static"]

    def _wait_router_routes(self) -> None:
        """staticd installs routes asynchronously: wait until every node's route is there."""
        want = {str(r.dst) for r in self.network.router_routes(self.plan)}
        deadline = time.monotonic() + ROUTE_WAIT_S
        have: set[str] = set()
        while time.monotonic() < deadline:
            have = {_route_dst(r) for r in self.router_routes()}
            if want <= have:
                return
            time.sleep(0.05)
        raise TestbedError(f"router: FRR did not install routes for {sorted(want - have)} "
                           f"within {ROUTE_WAIT_S:.0f} s (see its logs in the run directory)")

    # -- pods and containers -----------------------------------------------------------

    def add_pod(self, node: str, name: str, containers: Iterable[ContainerSpec] = ()) -> Pod:
        """Create a pod on a running node: pause, named netns, CNI ADD, then containers."""
        return self._add_pods([(node, name, tuple(containers))])[0]

    def _add_pods(self, wanted: list[tuple[str, str, Iterable[ContainerSpec]]]) -> list[Pod]:
        """Create pods in stages, each stage for all of them before the next: every pause
        process is spawned before any is waited for (they start on every core), then
        each node's pods are wired in one call (one batch of netlink requests on the fast
        path), then the containers. Records are written before what they describe."""
        assert self.state is not None
        names, nodes = set(self.pods), set(self.node_names)
        for node, name, _ in wanted:
            if node not in nodes:
                raise TestbedError(f"no node named {node!r}")
            if name in names:
                raise TestbedError(f"pod {name} already exists")
            names.add(name)
        spawned: list[Pod] = []
        for node, name, _ in wanted:
            netns = pod_netns_name(node, name)
            self.state.record("netns", name=netns)
            pause = spawn_pause()
            started = procs.start_time(pause.pid)
            self.state.record("process", pid=pause.pid, started=started, what=f"pause {name}")
            pod = Pod(name=name, node=node, netns=netns, pause=pause, pause_started=started,
                      container_id=f"{self.state.run_id}-{name}")
            self.pods[name] = pod
            spawned.append(pod)
        for pod in spawned:
            wait_pause(pod.pause, pod.name)
            attach_netns(pod.netns, pod.pause.pid)
        by_node: dict[str, list[Pod]] = {}
        for pod in spawned:
            by_node.setdefault(pod.node, []).append(pod)

        def wire(node: str, pods: list[Pod]) -> None:
            results = self.wiring.add_many(
                self._cni_config(self.node_plan(node)), f"/proc/{self.net[node].pid}/ns/net",
                [(pod.container_id, pod.netns_path) for pod in pods])
            for pod, result in zip(pods, results, strict=True):
                pod.ip = result.address

        if self.wiring.concurrent and len(by_node) > 1:
            # The plugins are processes: nodes wired side by side keep every core busy
            # (host-local's lock is per node). In-process netlink gains nothing from threads.
            pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1))
            try:
                for future in [pool.submit(wire, n, p) for n, p in by_node.items()]:
                    future.result()
            finally:  # on an error or Ctrl-C, nodes not yet started are not wired at all
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for node, pods in by_node.items():
                wire(node, pods)
        for pod, (_, _, containers) in zip(spawned, wanted, strict=True):
            for c in containers:
                self.add_container(pod.name, c.name, c.command)
        return spawned

    def _cni_config(self, node: NodePlan) -> dict[str, Any]:
        assert self.state is not None
        return self.network.cni_config(node, self.mtu[node.name],
                                       self.state.subdir("ipam", node.name))

    def remove_pod(self, name: str) -> None:
        """Delete a pod as kubelet does: containers, CNI DEL, then the pause process."""
        self._destroy_pod(self.pod(name), cni_del=True)
        del self.pods[name]

    def _destroy_pod(self, pod: Pod, cni_del: bool) -> None:
        for c in pod.containers.values():
            if c.process is not None:
                procs.stop_popen(c.process)
        if cni_del and pod.ip is not None:
            host = self.net[pod.node]
            self.wiring.delete(self._cni_config(self.node_plan(pod.node)),
                               f"/proc/{host.pid}/ns/net", pod.container_id, pod.netns_path)
        procs.stop_popen(pod.pause)
        delete_netns(pod.netns)

    def add_container(self, pod: str, name: str, command: Iterable[str]) -> Container:
        """Start an app container: a process in the pod's net, UTS and IPC namespaces."""
        assert self.state is not None
        p = self.pod(pod)
        if name in p.containers and p.containers[name].running:
            raise TestbedError(f"container {name} is already running in pod {pod}")
        logdir = self.state.subdir("containers")
        with open(logdir / f"{pod}_{name}.log", "ab") as logf:
            proc = p.popen(list(command), stdout=logf, stderr=logf, start_new_session=True)
        self.state.record("process", pid=proc.pid, started=procs.start_time(proc.pid),
                          what=f"container {pod}/{name}")
        container = Container(name, tuple(command), proc)
        p.containers[name] = container
        self._wait_in_pod(p, container, logdir / f"{pod}_{name}.log")
        return container

    def _wait_in_pod(self, pod: Pod, container: Container, log: Path,
                     timeout_s: float = 5.0) -> None:
        """A container has started once it runs in the pod's network namespace (nsenter
        enters it just after the process starts); one that exits at once is an error."""
        want = os.stat(pod.netns_path).st_ino
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if container.process is None or container.process.poll() is not None:
                tail = log.read_text(errors="replace")[-300:].strip() if log.exists() else ""
                raise TestbedError(f"container {container.name} of pod {pod.name} exited at "
                                   f"once: {tail or 'no output'}")
            try:
                if os.stat(f"/proc/{container.pid}/ns/net").st_ino == want:
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.005)
        raise TestbedError(f"container {container.name} of pod {pod.name} did not enter "
                           f"the pod's namespaces within {timeout_s:g} s")

    def stop_container(self, pod: str, name: str) -> None:
        """Stop an app container; the pod (pause, netns, IP) stays."""
        p = self.pod(pod)
        c = p.containers.get(name)
        if c is None:
            raise TestbedError(f"pod {pod} has no container {name!r}")
        if c.process is not None:
            procs.stop_popen(c.process)

    def restart_container(self, pod: str, name: str) -> Container:
        """Stop a container and start it again with the same command (same pod, same IP)."""
        c = self.pod(pod).containers.get(name)
        if c is None:
            raise TestbedError(f"pod {pod} has no container {name!r}")
        self.stop_container(pod, name)
        return self.add_container(pod, name, c.command)

    def reconcile(self) -> list[str]:
        """What kubelet and the container runtime do when a pod's sandbox (pause) dies:
        stop its containers, CNI DEL, remove its netns. Returns the pods removed.

        The kernel alone would keep the network: the named netns (a bind mount) and any
        running container still hold it. Kubernetes takes it away; so does this.
        """
        gone = []
        for pod in list(self.pods.values()):
            if pod.pause.poll() is not None:
                self._destroy_pod(pod, cni_del=True)
                del self.pods[pod.name]
                gone.append(pod.name)
        return gone

    def remove_container(self, pod: str, name: str) -> None:
        self.stop_container(pod, name)
        del self.pod(pod).containers[name]

    # -- hosts behind the router (outside the cluster) ---------------------------------

    def add_external_host(self, name: str, network: str, default_route: bool = True
                          ) -> tuple[IPv4Interface, IPv4Interface]:
        """Attach a host on its own network behind the router (an "outside" network, or
        another private network): the router takes the first address, the host the tenth.
        Returns (host address, router address). Without `default_route` the host knows
        only its own network, so it cannot answer a pod until it gets a return route.
        """
        assert self.state is not None
        net = IPv4Network(network)
        if name in self.external or name in self.node_names or name == ROUTER:
            raise TestbedError(f"a host named {name} already exists")
        for other in (self.plan.underlay, self.plan.cluster_cidr):
            if net.overlaps(other):
                raise TestbedError(f"{network} overlaps {other}")
        router = self.net[ROUTER]
        names = [underlay_intf(name), f"{ROUTER}-eth{router.newPort()}"]
        clash = [n for n in names if os.path.exists(f"/sys/class/net/{n}")]
        if clash:
            raise LeftoverError(f"interfaces exist already: {', '.join(clash)}")
        for link_name in names:
            self.state.record("link", name=link_name)
        hosts = list(net.hosts())
        router_ip = IPv4Interface(f"{hosts[0]}/{net.prefixlen}")
        host_ip = IPv4Interface(f"{hosts[9]}/{net.prefixlen}")
        host = self.net.addHost(name, cwd=str(self.state.subdir("hosts")), use_v6=False)
        self.state.record("process", pid=host.shell.pid, started=procs.start_time(host.shell.pid),
                          what=f"{name} shell")
        link = self.net.addLink(host, router, params1={"ip": str(host_ip)},
                                params2={"ip": str(router_ip)})
        if default_route:
            self._node_exec(host, ["ip", "route", "add", "default", "via", str(router_ip.ip)])
        self.external[name] = (host, link, host_ip, router_ip)
        return host_ip, router_ip

    def remove_external_host(self, name: str) -> None:
        host, link, _, _ = self.external.pop(name)
        self.net.delLink(link)
        self.net.delHost(host)

    # -- lookups and execution ---------------------------------------------------------

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

    def host(self, name: str) -> Any:
        """The Mininet node object of a Kubernetes node or the router."""
        if name != ROUTER and name not in self.external:
            self.node_plan(name)
        return self.net[name]

    def exec_node(self, name: str, command: list[str], timeout: float | None = 60) -> ExecResult:
        """Run a command to completion in a node's (or the router's) namespaces."""
        host = self.host(name)
        proc = host.popen(list(command), stdin=None)
        try:
            out, err = proc.communicate(timeout=timeout)
        except Exception:
            procs.stop_popen(proc)
            raise
        return ExecResult(proc.returncode, _decode(out), _decode(err))

    def popen_node(self, name: str, command: list[str], **kwargs: Any) -> Any:
        """Start a long-running process in a node; the cluster stops it at teardown."""
        proc = self.host(name).popen([*procs.DIE_WITH_PARENT, *command], **kwargs)
        assert self.state is not None
        self.state.record("process", pid=proc.pid, started=procs.start_time(proc.pid),
                          what=f"{name}: {command[0]}")
        self._node_processes.append(proc)
        return proc

    def endpoint_ip(self, name: str) -> str:
        """The address of a pod (its eth0), a node (underlay) or the router, by name."""
        if name in self.pods:
            ip = self.pods[name].ip
            assert ip is not None
            return str(ip.ip)
        if name == ROUTER:
            return str(self.plan.router_ip.ip)
        if name in self.external:
            return str(self.external[name][2].ip)
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


def _settle_shell(node: Any, timeout_s: float = 1.0) -> None:
    """Make a node's shell safe for Mininet's terminate(), which runs commands in it.

    A Ctrl-C that lands while Mininet waits for a command's output leaves the node
    "waiting", and its next command fails an assertion. Interrupt the command and read
    until the prompt, with a deadline (Mininet's own reader can block for as long as the
    command runs); a shell that does not come back gets no more commands: its private
    mounts live in the node's own mount namespace, which goes with the node anyway.
    """
    if not getattr(node, "waiting", False):
        return
    shell = getattr(node, "shell", None)
    if shell is not None and shell.poll() is None:
        node.sendInt()
        fd = node.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not poller.poll(50):
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            if chunk.endswith(b"\x7f"):  # Mininet's prompt: the shell is idle again
                node.waiting = False
                return
    node.waiting = False
    node.privateDirs = []


def _route_dst(route: dict[str, Any]) -> str:
    dst = route.get("dst", "")
    try:
        return str(ip_network(dst)) if dst != "default" else "0.0.0.0/0"
    except ValueError:
        return dst


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value

