"""Teardown: the one way a cluster goes, whether it is stopped, failed to come up, or was
interrupted. Idempotent; Ctrl-C and SIGTERM are held until it has finished (a teardown
cut short would leave namespaces and processes behind), then delivered.

Order, fastest first and nothing waiting on the kernel's background work:
    1. every container signalled at once, node processes stopped, wiring closed
    2. the network (underlay in one request, router, nodes), while pods still hold their
       namespaces: the kernel removes the pods' veth pairs with the nodes' namespaces.
       The router goes before the nodes: once node namespaces end, the kernel holds the
       lock every link change and IPv6 sysctl write needs (RTNL) while it deletes their
       bridges, 25 ms a bridge (an RCU barrier in br_multicast_dev_del), 12 s for 500
       nodes, and ipmininet's router restores its sysctls on the way out (IPv6 ones wait
       for that lock). With every node shell ended first, the network step took 1.2 s,
       8 s and 47 s in three runs (100 and 500 nodes) instead of 0.1-0.9 s
    3. every pause process at once (the spawner's helper kills and reaps them, then
       exits); containers reaped; the pods' named namespaces released. Measured at
       10,000 pods: released after their pause processes ended, 1.3 s; released while
       the pause processes still held them, 6-8 s (before or after the network went)
    4. whatever the orderly path missed, undone from the run's records; the records go
    5. the lock
The kernel destroys the namespaces afterwards, in the background: at 100 nodes that takes
seconds, nearly all of it waiting in that RCU barrier once per bridge (`cbr0`); see
benchmarks/bringup.py.
"""

from __future__ import annotations

import contextlib
import time

from testbed.cluster import power
from testbed.cluster.context import ClusterContext
from testbed.cluster.pods import destroy_pod
from testbed.emulation.nodes import settle_shell
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.kernel.procs import signals_deferred
from testbed.records import undo
from testbed.records.journal import remove_run_dir


def tear_down(cluster: ClusterContext) -> None:
    """Tear everything down, then deliver any Ctrl-C/SIGTERM that came meanwhile; one
    TestbedError at the end lists whatever could not be removed."""
    with signals_deferred():
        _tear_down(cluster)


def _tear_down(cluster: ClusterContext) -> None:
    state = cluster.state
    if state is None:
        cluster.lock.release()
        return
    cluster.progress("tearing down")
    t0 = time.monotonic()
    errors: list[str] = []
    if cluster.services is not None:  # no probe or publish while things go away
        cluster.services.stop()
        cluster.services = None
    cluster.outside = None
    with cluster.stage("down.processes_s"):  # containers signalled, node processes stopped
        power.resume_all(cluster)  # a stopped process would leave SIGTERM pending
        signal_containers(cluster)
        for proc in cluster.node_processes:
            procs.stop_popen(proc)
        cluster.node_processes.clear()
        cluster.daemons.clear()
        cluster.members = []
        cluster.wiring.close()
    if cluster.net is not None:
        with cluster.stage("down.network_s"):
            try:
                stop_network(cluster)
            except Exception as exc:
                errors.append(f"mininet stop: {exc!r}")
        cluster.net = None
    cluster.external.clear()  # their hosts and links went with the network
    with cluster.stage("down.pods_s"):  # every pause process at once, then named netns
        try:  # the helper kills and reaps every pause process it started, then exits
            cluster.spawner.close()
        except Exception as exc:
            errors.append(f"pause spawner: {exc}")
        for pod in list(cluster.pods.values()):
            try:
                destroy_pod(cluster, pod, cni_del=False)
            except Exception as exc:  # keep tearing down; report at the end
                errors.append(f"pod {pod.name}: {exc}")
    cluster.pods.clear()
    cluster.cpu_groups.clear()  # the groups go with the records, once their tasks left
    cluster.cpu_hierarchy = None
    with cluster.stage("down.records_s"):
        undone = undo.undo_run(state)
    errors.extend(undone.errors)
    if undone.kept:
        errors.append(f"what could not be removed stays recorded in {state.directory}; "
                      "`sudo testbed clean` tries again")
    else:
        remove_run_dir(state)
    cluster.state = None
    cluster.lock.release()
    cluster.timings["down_s"] = time.monotonic() - t0
    if errors:
        raise TestbedError("teardown finished with errors: " + "; ".join(errors))


def signal_containers(cluster: ClusterContext) -> None:
    """The whole cluster goes: signal every container at once and reap them after
    (destroy_pod), rather than one terminate-and-wait at a time. Pause processes end
    later, all at once, with the spawner's helper."""
    for pod in cluster.pods.values():
        for c in pod.containers.values():
            if c.process is not None and c.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.process.terminate()


def stop_network(cluster: ClusterContext) -> None:
    """Mininet's stop() deletes every link through the nodes' shells, two commands a
    link. Here the underlay goes first, in one request (the bridge, its ports and their
    peers in the nodes), then the router's daemons and the nodes' shells: ending a node's
    shell ends its network namespace, and the kernel removes the pods' veth pairs with
    it. Whatever is left is removed from the records."""
    net = cluster.net
    for node in [*net.routers, *net.hosts, *net.switches]:
        settle_shell(node)
    for switch in net.switches:  # one request: the bridge, its ports and their peers
        switch.stop(deleteIntfs=False)
        switch.terminate()
    for router in net.routers:
        router.terminate()  # ipmininet: FRR daemons, their files, then the node
    for host in net.hosts:
        host.terminate()
