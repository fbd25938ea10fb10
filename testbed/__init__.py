"""Kubernetes pod networking on one Linux machine, emulated with Mininet.

    from testbed import Cluster, load_spec

    with Cluster(load_spec("topologies/two-node.yaml")) as cluster:
        print(cluster.pod("pod-1").exec(["ping", "-c1", cluster.endpoint_ip("pod-3")]))

The package is in layers, each importing only those below it (tests/unit/test_layers.py):

    cli/                      the `testbed` command and its shell
    cluster/                  the lifecycle: up (steps), down, pods, hosts
    pods/  emulation/         pause and wirings (cni, fast); Mininet/ipmininet adapters
    records/  results/        what a run created and undoing it; run directories, reports
    model/  kernel/  measure/ pure model and pod networks; in-process kernel calls; tools
    errors.py

`Cluster` is loaded on first use: it imports Mininet and ipmininet, which validating a
topology or reading results does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbed.errors import SpecError, TestbedError
from testbed.model.load import load_spec, parse_spec
from testbed.model.spec import ClusterSpec, ContainerSpec, NodeSpec, PodSpec

if TYPE_CHECKING:
    from testbed.cluster import Cluster

__all__ = ["Cluster", "ClusterSpec", "ContainerSpec", "NodeSpec", "PodSpec", "SpecError",
           "TestbedError", "load_spec", "parse_spec"]


def __getattr__(name: str) -> Any:
    if name == "Cluster":
        from testbed.cluster import Cluster

        return Cluster
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
