"""Pod networks as plug-ins: one module per mode behind `PodNetwork` (base.py).

To add a mode: a module here with a `PodNetwork` subclass, its name in
`testbed.model.names`, and one line in `REGISTRY`. Nothing in the lifecycle changes.
"""

from __future__ import annotations

from testbed.model.podnet.base import Daemon, Mesh, NodeSetup, PodNetwork, Route
from testbed.model.podnet.calico import CalicoBgp, CalicoVxlan
from testbed.model.podnet.docker import DockerDefault
from testbed.model.podnet.flannel import FlannelHostGw, FlannelVxlan
from testbed.model.podnet.kindnet import Kindnet
from testbed.model.podnet.kubenet import Kubenet

REGISTRY: dict[str, type[PodNetwork]] = {cls.name: cls for cls in (Kubenet, DockerDefault,
                                                                    FlannelHostGw, FlannelVxlan,
                                                                    Kindnet, CalicoVxlan,
                                                                    CalicoBgp)}
POD_NETWORKS = tuple(REGISTRY)


def pod_network(name: str) -> PodNetwork:
    """The pod network called `name` (KeyError for an unknown one; specs are validated)."""
    return REGISTRY[name]()


__all__ = ["POD_NETWORKS", "REGISTRY", "Daemon", "Mesh", "NodeSetup", "PodNetwork", "Route",
           "pod_network"]
