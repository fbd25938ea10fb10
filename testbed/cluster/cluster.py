"""Cluster: a context manager over the whole emulated Kubernetes cluster.

    with Cluster(load_spec("topologies/two-node.yaml")) as cluster:
        print(cluster.pod("pod-1").exec(["ping", "-c1", cluster.endpoint_ip("pod-3")]))

The state and look-ups are `ClusterContext`'s (context.py); each verb is a function in
the module named for it, which this class calls:

    up.py      start: the bring-up steps (checks, lock, leftovers, names, records,
               network, nodes, routes, pods), each timed; any failure tears down
    down.py    stop: teardown, always the same path, holding Ctrl-C until it is done
    pods.py    pods and containers while the cluster runs
    hosts.py   hosts behind the router (outside the cluster)
    mesh.py    the pod network's daemons; nodes leaving and joining the pod network
    cpu.py     nodes' CPU shares (cgroups)
    power.py   a node stopped and started

Teardown removes only what the run recorded creating (testbed.records).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from testbed.cluster import cpu, down, hosts, mesh, outside, pods, power, up
from testbed.cluster.context import ClusterContext, ExternalHost
from testbed.errors import TestbedError
from testbed.model.spec import ContainerSpec, PodSpec, ReadinessProbe
from testbed.pods.pause import Container, Pod


class Cluster(ClusterContext):
    """A running cluster: nodes, router and pods, torn down on exit."""

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring the whole cluster up; on any failure, tear down what was made and re-raise."""
        up.bring_up(self)

    def stop(self) -> None:
        """Tear everything down (idempotent), then deliver any Ctrl-C/SIGTERM that came
        meanwhile."""
        down.tear_down(self)

    # -- pods and containers -----------------------------------------------------------

    def add_pod(self, node: str, name: str, containers: Iterable[ContainerSpec] = (),
                labels: Mapping[str, str] | None = None,
                readiness: ReadinessProbe | None = None) -> Pod:
        """Create a pod on a running node: pause, named netns, CNI ADD, then containers.
        With services, its labels (what selectors match) and readiness check count."""
        if self.services is not None:
            self.services.register(name, PodSpec(name, tuple(containers),
                                                 tuple(sorted((labels or {}).items())),
                                                 readiness))
        elif labels or readiness:
            raise TestbedError("labels and readiness checks need a topology with services")
        return pods.add_pods(self, [(node, name, tuple(containers))])[0]

    def remove_pod(self, name: str) -> None:
        """Delete a pod as kubelet does: containers, CNI DEL, then the pause process."""
        pods.remove_pod(self, name)

    def reconcile(self) -> list[str]:
        """What kubelet does when pods' pause processes have died; the pods removed."""
        return pods.reconcile(self)

    def add_container(self, pod: str, name: str, command: Iterable[str]) -> Container:
        """Start an app container: a process in the pod's net, UTS and IPC namespaces."""
        return pods.add_container(self, pod, name, command)

    def stop_container(self, pod: str, name: str) -> None:
        """Stop an app container; the pod (pause, netns, IP) stays."""
        pods.stop_container(self, pod, name)

    def restart_container(self, pod: str, name: str) -> Container:
        """Stop a container and start it again with the same command (same pod, same IP)."""
        return pods.restart_container(self, pod, name)

    def remove_container(self, pod: str, name: str) -> None:
        """Stop a container and forget it."""
        pods.remove_container(self, pod, name)

    # -- hosts behind the router -------------------------------------------------------

    def add_external_host(self, name: str, network: str,
                          default_route: bool = True) -> ExternalHost:
        """A host on its own network behind the router: the router takes the first
        address, the host the tenth (see testbed.cluster.hosts)."""
        return hosts.add_external_host(self, name, network, default_route)

    def remove_external_host(self, name: str) -> None:
        hosts.remove_external_host(self, name)

    def set_uplink(self, node: str, up: bool) -> None:
        """Take a node off the underlay (as a failed node looks from the network) or put
        it back (see testbed.cluster.outside)."""
        outside.set_uplink(self, node, up)

    def stop_node(self, node: str) -> int:
        """Stop a node as a power-off does (testbed.cluster.power): its processes and its
        pods' frozen, its uplink down. Returns how many processes were frozen."""
        return power.stop(self, node)

    def start_node(self, node: str) -> None:
        """Start a stopped node again: exactly its frozen processes resumed, uplink up."""
        power.start(self, node)

    def cpu_stat(self, node: str) -> dict[str, int]:
        """A node's cpu cgroup counters (throttled periods and time); {} without a share."""
        return cpu.usage(self, node)

    # -- nodes in the pod network ------------------------------------------------------

    def leave(self, node: str) -> float:
        """Delete a node from the pod network, as deleting its Node does where routing
        daemons follow the nodes (Calico's BIRD mesh): its daemons stop, the others drop
        it. Returns the seconds until no other kernel routes to its pods (convergence)."""
        return mesh.leave(self, node)

    def join(self, node: str) -> float:
        """Add a node that left back to the pod network; the seconds until every node and
        the router route to every member's pods again (convergence)."""
        return mesh.join(self, node)
