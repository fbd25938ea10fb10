"""Pod networks as plug-ins: one module per mode behind `PodNetwork` (base.py).

To add a mode: a module here with a `PodNetwork` subclass, its name in
`testbed.model.names`, and one line in `REGISTRY`. Nothing in the lifecycle changes.
`REGISTRY` is a `testbed.model.plugins.Registry`: an unknown name is a `UsageError` that
lists the pod networks there are.
"""

from __future__ import annotations

from testbed.model.plugins import Registry
from testbed.model.podnet.base import Daemon, Mesh, NodeSetup, PodNetwork, Route
from testbed.model.podnet.calico import CalicoBgp, CalicoVxlan
from testbed.model.podnet.docker import DockerDefault
from testbed.model.podnet.flannel import FlannelHostGw, FlannelVxlan
from testbed.model.podnet.kindnet import Kindnet
from testbed.model.podnet.kubenet import Kubenet

REGISTRY: Registry[type[PodNetwork]] = Registry(
    "pod network", (Kubenet, DockerDefault, FlannelHostGw, FlannelVxlan, Kindnet,
                    CalicoVxlan, CalicoBgp))
POD_NETWORKS = REGISTRY.names


def pod_network(name: str) -> PodNetwork:
    """The pod network called `name`; an unknown one raises
    `testbed.model.plugins.UnknownPluginError` (a UsageError, and a KeyError as before),
    listing those there are (a spec's name is validated before it gets here)."""
    return REGISTRY[name]()


__all__ = ["POD_NETWORKS", "REGISTRY", "Daemon", "Mesh", "NodeSetup", "PodNetwork", "Route",
           "pod_network"]
