"""Pods and containers on a running cluster, as kubelet and a container runtime handle them.

    add_pods        pause processes, named netns, the wiring's ADD (CNI), then containers
    remove_pod      containers, the wiring's DEL, the pause process, the netns
    reconcile       what kubelet does when a pod's sandbox (pause) dies
    add_container   a process in the pod's net, UTS and IPC namespaces
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Tuple  # typing's: the alias PodRequest runs on 3.8

from testbed.cluster.context import ClusterContext
from testbed.errors import TestbedError
from testbed.kernel import ns, procs
from testbed.kernel.ns import attach_netns, delete_netns
from testbed.model.names import pod_netns_name
from testbed.model.spec import ContainerSpec
from testbed.pods import cni
from testbed.pods.pause import Container, Pod, wait_pause

CONTAINER_START_S = 5.0
# (node, pod name, containers) of a pod to create
PodRequest = Tuple[str, str, Iterable[ContainerSpec]]


def add_pods(cluster: ClusterContext, wanted: Sequence[PodRequest]) -> list[Pod]:
    """Create pods: pause processes (forked by the spawner's helper), their named
    namespaces, each node's pods wired in one call (one batch of netlink requests on the
    fast path), then the containers. With the plugins every pause process is asked for
    before any is waited for and nodes are wired side by side in threads; in-process,
    node after node, the next node's pause processes are forked while this one is wired
    (`_pipeline`). Records are written before what they describe. Each stage is timed
    (`timings["pods.<stage>_s"]`)."""
    names, nodes = set(cluster.pods), set(cluster.node_names)
    for node, name, _ in wanted:
        if node not in nodes:
            raise TestbedError(f"no node named {node!r}")
        if name in names:
            raise TestbedError(f"pod {name} already exists")
        if name in cluster.external:  # look-ups by name must find one thing
            raise TestbedError(f"{name} is a host behind the router")
        names.add(name)
    if cluster.wiring.concurrent:  # the plugins: nodes side by side in threads
        with cluster.stage("pods.spawn_s"):
            spawned = _spawn(cluster, wanted)
        by_node: dict[str, list[Pod]] = {}
        for pod in spawned:
            by_node.setdefault(pod.node, []).append(pod)
        _ready(cluster, spawned)
        with cluster.stage("pods.wiring_s"):
            _wire(cluster, by_node)
    else:
        spawned = _pipeline(cluster, wanted)
    for stage, seconds in getattr(cluster.wiring, "timings", {}).items():
        cluster.timings[f"pods.wiring.{stage}"] = seconds  # the fast path's node and pod side
    for pod, (_, _, containers) in zip(spawned, wanted):  # hostPorts: portmap, chained
        mappings = cni.port_mappings([p for c in containers for p in c.ports])
        if mappings and pod.ip is not None:
            pod.port_mappings = mappings
            config = pod_network_config(cluster, pod.node)
            cni.CniRuntime().chained("ADD", cni.portmap_config(
                config["name"], mappings, cni.prev_result(pod.ip, None)),
                cluster.node_netns(pod.node), pod.container_id, pod.netns_path)
    if cluster.services is not None:  # kubelet's files, before any container starts
        for pod in spawned:
            cluster.services.pod_created(pod)
    with cluster.stage("pods.containers_s"):
        for pod, (_, _, containers) in zip(spawned, wanted):
            for c in containers:
                add_container(cluster, pod.name, c.name, c.command)
    if cluster.services is not None:
        cluster.services.publish()
    return spawned


def _spawn(cluster: ClusterContext, wanted: Sequence[PodRequest]) -> list[Pod]:
    """Every pause process spawned, none waited for (they start on every core); each
    namespace recorded before it is made, each process as soon as its pid is known."""
    _submit(cluster, wanted)
    return _collect(cluster, wanted)


def _submit(cluster: ClusterContext, wanted: Sequence[PodRequest]) -> None:
    """Ask the spawner for these pods' pause processes, without waiting for them."""
    records = cluster.records
    if cluster.spawner.pid is None:  # from this thread: the helper dies with it
        cluster.spawner.start()
        records.record_process(cluster.spawner.pid, "pause spawner")
    own_mounts = cluster.services is not None  # for kubelet's resolv.conf and hosts
    for node, name, _ in wanted:
        records.record("netns", name=pod_netns_name(node, name))
        cluster.spawner.submit(own_mounts, cluster.cgroup_procs(node))


def _collect(cluster: ClusterContext, wanted: Sequence[PodRequest]) -> list[Pod]:
    """The pause processes `_submit` asked for, recorded, as pods of the cluster."""
    records = cluster.records
    own_mounts = cluster.services is not None
    spawned: list[Pod] = []
    for (node, name, _), pause in zip(wanted, cluster.spawner.collect(len(wanted))):
        started = records.record_process(pause.pid, f"pause {name}")
        pod = Pod(name=name, node=node, netns=pod_netns_name(node, name), pause=pause,
                  pause_started=started, container_id=f"{records.run_id}-{name}",
                  own_mounts=own_mounts,
                  run_prefix=cluster.run_prefix(node))  # the node's CPU share holds them
        cluster.pods[name] = pod
        spawned.append(pod)
    return spawned


def _ready(cluster: ClusterContext, pods: Sequence[Pod]) -> None:
    """Each pause process running catatonit, its hostname set, its netns named."""
    with cluster.stage("pods.pause_wait_s"):
        for pod in pods:
            wait_pause(pod.pause, pod.name)
    with cluster.stage("pods.netns_attach_s"):
        for pod in pods:
            attach_netns(pod.netns, pod.pause.pid)


def _pipeline(cluster: ClusterContext, wanted: Sequence[PodRequest]) -> list[Pod]:
    """In-process wiring, node after node: the helper forks the next node's pause
    processes while this thread wires the node before (two cores busy, not one)."""
    groups: dict[str, list[PodRequest]] = {}
    for request in wanted:
        groups.setdefault(request[0], []).append(request)
    spawned: list[Pod] = []
    pending: list[Pod] = []
    try:
        for requests in groups.values():
            with cluster.stage("pods.spawn_s"):
                _submit(cluster, requests)
            if pending:
                _ready(cluster, pending)
                with cluster.stage("pods.wiring_s"):
                    _wire(cluster, {pending[0].node: pending})
            with cluster.stage("pods.spawn_s"):
                pending = _collect(cluster, requests)
            spawned += pending
        if pending:
            _ready(cluster, pending)
            with cluster.stage("pods.wiring_s"):
                _wire(cluster, {pending[0].node: pending})
    except BaseException:
        # asked for, not yet collected: taken as pods of the cluster, so teardown stops
        # them while the helper (which reaps them) still runs
        if cluster.spawner.outstanding:
            done = {p.name for p in spawned}
            rest = [r for r in wanted if r[1] not in done][:cluster.spawner.outstanding]
            with contextlib.suppress(TestbedError):
                _collect(cluster, rest)
        raise
    return spawned


def _wire(cluster: ClusterContext, by_node: dict[str, list[Pod]]) -> None:
    """Each node's pods wired in one call; nodes side by side where the wiring runs
    processes (the plugins), one after the other where it is in-process netlink."""

    def wire(node: str, pods: list[Pod]) -> None:
        results = cluster.wiring.add_many(
            pod_network_config(cluster, node), cluster.node_netns(node),
            [(pod.container_id, pod.netns_path) for pod in pods])
        if len(results) != len(pods):
            raise TestbedError(f"{node}: the wiring gave {len(results)} results for "
                               f"{len(pods)} pods")
        for pod, result in zip(pods, results):
            pod.ip = result.address

    if cluster.wiring.concurrent and len(by_node) > 1:
        # nodes side by side keep every core busy (host-local's lock is per node)
        pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1))
        try:
            for future in [pool.submit(wire, n, p) for n, p in by_node.items()]:
                future.result()
        finally:  # on an error or Ctrl-C, nodes not yet started are not wired at all
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for node, pods in by_node.items():
            wire(node, pods)


def pod_network_config(cluster: ClusterContext, node: str) -> dict[str, Any]:
    """The CNI network configuration of a pod on `node`, as the pod network writes it."""
    return cluster.network.cni_config(cluster.plan, cluster.node_plan(node), cluster.mtu[node],
                                      cluster.records.subdir("ipam", node))


def remove_pod(cluster: ClusterContext, name: str) -> None:
    """Delete a pod as kubelet does: containers, CNI DEL, then the pause process."""
    destroy_pod(cluster, cluster.pod(name), cni_del=True)
    del cluster.pods[name]
    if cluster.services is not None:
        cluster.services.forget_pod(name)


def destroy_pod(cluster: ClusterContext, pod: Pod, cni_del: bool) -> None:
    """Stop a pod's containers and pause process and release its netns; with `cni_del`,
    the wiring's DEL first (at teardown the node's namespace takes the links with it)."""
    for c in pod.containers.values():
        if c.process is not None:
            procs.stop_popen(c.process)
    if cni_del and pod.ip is not None:
        if pod.port_mappings:  # the chain's DEL runs in reverse: portmap first
            cni.CniRuntime().chained("DEL", cni.portmap_config(
                pod_network_config(cluster, pod.node)["name"], pod.port_mappings, None),
                cluster.node_netns(pod.node), pod.container_id, pod.netns_path)
        cluster.wiring.delete(pod_network_config(cluster, pod.node),
                              cluster.node_netns(pod.node), pod.container_id, pod.netns_path)
    procs.stop_popen(pod.pause)
    delete_netns(pod.netns)


def reconcile(cluster: ClusterContext) -> list[str]:
    """What kubelet and the container runtime do when a pod's sandbox (pause) dies:
    stop its containers, CNI DEL, remove its netns. Returns the pods removed.

    The kernel alone would keep the network: the named netns (a bind mount) and any
    running container still hold it. Kubernetes takes it away; so does this.
    """
    gone = []
    for pod in list(cluster.pods.values()):
        if pod.pause.poll() is not None:
            destroy_pod(cluster, pod, cni_del=True)
            del cluster.pods[pod.name]
            gone.append(pod.name)
            if cluster.services is not None:
                cluster.services.forget_pod(pod.name)
    return gone


def add_container(cluster: ClusterContext, pod: str, name: str,
                  command: Iterable[str]) -> Container:
    """Start an app container: a process in the pod's net, UTS and IPC namespaces."""
    records = cluster.records
    p = cluster.pod(pod)
    if name in p.containers and p.containers[name].running:
        raise TestbedError(f"container {name} is already running in pod {pod}")
    log = records.subdir("containers") / f"{pod}_{name}.log"
    with open(log, "ab") as logf:
        proc = p.popen(list(command), stdout=logf, stderr=logf, start_new_session=True)
    records.record_process(proc.pid, f"container {pod}/{name}")
    container = Container(name, tuple(command), proc)
    p.containers[name] = container
    _wait_in_pod(p, container, log)
    return container


def _wait_in_pod(pod: Pod, container: Container, log: Path,
                 timeout_s: float = CONTAINER_START_S) -> None:
    """A container has started once it runs in the pod's network namespace (nsenter
    enters it just after the process starts); one that exits at once is an error."""
    want = ns.netns_inode(pod.netns_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if container.process is None or container.process.poll() is not None:
            tail = log.read_text(errors="replace")[-300:].strip() if log.exists() else ""
            raise TestbedError(f"container {container.name} of pod {pod.name} exited at "
                               f"once: {tail or 'no output'}")
        try:
            if container.pid is not None and ns.netns_inode(ns.netns_of(container.pid)) == want:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise TestbedError(f"container {container.name} of pod {pod.name} did not enter "
                       f"the pod's namespaces within {timeout_s:g} s")


def stop_container(cluster: ClusterContext, pod: str, name: str) -> None:
    """Stop an app container; the pod (pause, netns, IP) stays."""
    c = cluster.pod(pod).containers.get(name)
    if c is None:
        raise TestbedError(f"pod {pod} has no container {name!r}")
    if c.process is not None:
        procs.stop_popen(c.process)


def restart_container(cluster: ClusterContext, pod: str, name: str) -> Container:
    """Stop a container and start it again with the same command (same pod, same IP)."""
    c = cluster.pod(pod).containers.get(name)
    if c is None:
        raise TestbedError(f"pod {pod} has no container {name!r}")
    stop_container(cluster, pod, name)
    return add_container(cluster, pod, name, c.command)


def remove_container(cluster: ClusterContext, pod: str, name: str) -> None:
    """Stop a container and forget it."""
    stop_container(cluster, pod, name)
    del cluster.pod(pod).containers[name]
