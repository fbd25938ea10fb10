"""A wiring: what connects a pod's network namespace to its node, given the pod network's
CNI configuration (`PodNetwork.cni_config`). One protocol, two implementations:

    cni     the real plugins from /usr/lib/cni, run as a container runtime runs them
            (the reference: what a cluster does)
    fast    the same kernel state made in-process over netlink (for scale; proven equal
            to `cni` by normalised kernel dumps in tests/integration/test_fastwire.py)
    calico  Calico's workload plumbing (its plugin is not packaged here; testbed.pods.calico),
            which a pod network whose pods only it can wire names (`PodNetwork.wiring`)

The lifecycle picks one by name from `WIRINGS` (a `testbed.model.plugins.Registry`, as pod
networks and kube-proxy modes are: an unknown name is a UsageError listing the wirings) and
never asks which it has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from testbed.model.plugins import Registry
from testbed.pods.calico import CalicoWiring
from testbed.pods.cni import CniResult, CniRuntime
from testbed.pods.fastwire import FastWiring

CNI = "cni"
FAST = "fast"
CALICO = "calico"
DEFAULT_WIRING = CNI


class Wiring(Protocol):
    """Adds pods to a node's network and deletes them, as CNI ADD and DEL do.

    `node_netns` is the path of the node's network namespace, `pod_netns` that of the
    pod's (a named netns); `container_id` identifies the pod to the IPAM store."""

    # Whether nodes should be wired side by side in threads (worth it when the work is in
    # other processes, as the plugins are; in-process netlink gains nothing from threads).
    concurrent: bool

    def add_many(self, config: dict[str, Any], node_netns: str,
                 pods: Sequence[tuple[str, str]]) -> list[CniResult]:
        """ADD for several pods of one node: (container id, pod netns) each, in order."""
        ...

    def delete(self, config: dict[str, Any], node_netns: str, container_id: str,
               pod_netns: str) -> None:
        """DEL: the pod's interface gone, its address released."""
        ...

    def close(self) -> None:
        """Release what the wiring holds (sockets); the cluster is going away."""
        ...


# Named here, beside the names users type (CHOICES), rather than on the classes: cni.py,
# fastwire.py and calico.py are mechanisms and need not know what they are called.
_NAMES: dict[Callable[[], Wiring], str] = {CniRuntime: CNI, FastWiring: FAST,
                                           CalicoWiring: CALICO}
WIRINGS: Registry[Callable[[], Wiring]] = Registry("wiring", _NAMES, key=_NAMES.__getitem__)
CHOICES = (CNI, FAST)  # what a user picks (`--wiring`); a pod network may name another


def make_wiring(name: str) -> Wiring:
    """The wiring called `name`; an unknown one raises `UnknownPluginError` (a UsageError)
    listing the wirings there are. A user's name is checked against CHOICES before this."""
    return WIRINGS[name]()
