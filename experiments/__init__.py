"""Experiments: each module measures one aspect of the pod network and returns tidy rows.

An experiment is a module with NAME, `steps(ctx) -> int` (for progress) and `run(ctx)`.
The default suite runs them in REGISTRY order on one cluster.
"""

from __future__ import annotations

from experiments import reachability, throughput
from experiments.context import Context, Params

REGISTRY = {m.NAME: m for m in (reachability, throughput)}

__all__ = ["REGISTRY", "Context", "Params"]
