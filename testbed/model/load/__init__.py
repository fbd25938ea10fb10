"""Topology files -> a validated `ClusterSpec` (testbed.model.spec). Pure.

The loaders live in a package of their own, above the types they build and the plug-ins
they consult (testbed.model, .podnet, .svc): beside those types they tied the three folders
into one import cycle (tests/unit/test_layers.py checks folders too).

    yamlfile.py   the file read: a regular file, bounded, strict YAML
    topology.py   the document as a whole: nodes, pods, containers, racks, links, CPU
    services.py   the Kubernetes side: labels, readiness, kube-proxy's mode, `services:`
    outside.py    traffic from outside: external hosts, the load balancer, ingresses
    reader.py     one field at a time, with a one-line error naming its path
"""

from __future__ import annotations

from testbed.model.load.topology import parse_spec
from testbed.model.load.yamlfile import load_spec

__all__ = ["load_spec", "parse_spec"]
