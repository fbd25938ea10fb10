"""Experiments: each module measures one aspect of the pod network and returns tidy rows.

An experiment is a module with NAME, `steps(ctx) -> int` (for progress) and `run(ctx)`;
a claim experiment also has KIND = "claim" and records a verdict with `ctx.claim(...)`.
The default suite runs them in REGISTRY order on one cluster, each restoring it after.
"""

from __future__ import annotations

from experiments import (
    docker0_collision,
    gateway_routes,
    no_masquerade,
    pause_holds_netns,
    port_conflict,
    reachability,
    shared_localhost,
    throughput,
)
from experiments.context import Context, Params

# Measurements first, then the article's claims (KIND = "claim": each gives a verdict).
REGISTRY = {m.NAME: m for m in (reachability, throughput, shared_localhost, port_conflict,
                                pause_holds_netns, gateway_routes, no_masquerade,
                                docker0_collision)}

__all__ = ["REGISTRY", "Context", "Params"]
