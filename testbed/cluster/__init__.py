"""The cluster's lifecycle: `Cluster` brings a spec up, runs pods, and tears it down."""

from testbed.cluster.cluster import Cluster

__all__ = ["Cluster"]
