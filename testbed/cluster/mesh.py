"""The pod network's daemons (Calico's BIRD, the router's bgpd) and the nodes they follow:
started at bring-up, and re-configured when a node leaves or joins the running cluster.

    start(cluster)        every node's and the router's daemons; wait until each kernel
                          has the routes they converge to (bring-up step `converge`)
    leave(cluster, node)  the node is deleted from the cluster: its daemons stop, every
                          other node's agent regenerates its configuration without it and
                          has the daemon re-read it; wait until no kernel holds a route
                          the node's daemons announced
    join(cluster, node)   the reverse: the others' configurations name it again, its
                          daemons start; wait until every member and the router have every
                          route they should

`leave` and `join` return the seconds from the first change until every kernel agreed
(the convergence time): measured by polling each kernel's routing table every
POLL_S, so a figure is late by at most about that much plus one table read per node.
A node that left keeps its pods and its stale kernel routes (BIRD's kernel protocol is
`persist`: routes stay when it stops), as a node whose calico-node stopped does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from testbed.cluster.context import ClusterContext, route_dst
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.measure.iproute import ip_json
from testbed.model.names import ROUTER
from testbed.model.podnet.base import Daemon, NodeSetup

CONVERGE_WAIT_S = 60.0
POLL_S = 0.05


def _substitute(cluster: ClusterContext, text: str, directory: Path) -> str:
    """`{dir}`: the node's directory in the run; `{frr}`: the router's FRR directory."""
    return text.replace("{dir}", str(directory)).replace(
        "{frr}", str(cluster.records.subdir("frr")))


def _write_files(cluster: ClusterContext, node: str, daemon: Daemon) -> Path:
    directory = cluster.records.subdir("daemons", node)
    for name, text in daemon.files:
        (directory / name).write_text(_substitute(cluster, text, directory))
    return directory


def launch(cluster: ClusterContext, node: str, daemons: Iterable[Daemon]) -> None:
    """Write each daemon's files in the node's directory of the run and start it there
    (recorded, stopped at teardown); `cluster.daemons` keeps it by (node, name)."""
    for daemon in daemons:
        directory = _write_files(cluster, node, daemon)
        argv = [_substitute(cluster, a, directory) for a in daemon.argv]
        log = directory / f"{daemon.name}.log"
        with open(log, "ab") as out:
            cluster.daemons[(node, daemon.name)] = cluster.popen_node(
                node, argv, stdout=out, stderr=out)


def reload(cluster: ClusterContext, node: str, daemons: Iterable[Daemon]) -> None:
    """Rewrite each daemon's files and have it re-read them (`Daemon.reload`)."""
    for daemon in daemons:
        directory = _write_files(cluster, node, daemon)
        if not daemon.reload:
            continue
        res = cluster.exec_node(node, [_substitute(cluster, a, directory)
                                       for a in daemon.reload], timeout=20)
        if not res.ok:
            raise TestbedError(f"{node}: {' '.join(daemon.reload[:1])} could not reload "
                               f"{daemon.name}: {(res.stdout + res.stderr).strip()[-300:]}")


def _check_alive(cluster: ClusterContext) -> None:
    for (node, name), proc in cluster.daemons.items():
        if proc.poll() is not None:
            log = cluster.records.subdir("daemons", node) / f"{name}.log"
            text = log.read_text(errors="replace")[-300:].strip() if log.exists() else ""
            raise TestbedError(f"{name} on {node} exited: {text}")


def wait_routes(cluster: ClusterContext, want: Mapping[str, Iterable[Any]],
                gone: Mapping[str, Iterable[Any]] | None = None,
                timeout_s: float = CONVERGE_WAIT_S) -> float:
    """Poll the kernels until each node (or the router) named in `want` has those routes'
    destinations and each named in `gone` has none of its; the seconds it took."""
    t0 = time.monotonic()
    need = {n: {str(d) for d in ds} for n, ds in want.items()}
    away = {n: {str(d) for d in ds} for n, ds in (gone or {}).items()}
    pending = {n for n in need if need[n]} | {n for n in away if away[n]}
    have: dict[str, set[str]] = {}
    while True:
        for node in sorted(pending):
            have[node] = _routes(cluster, node)
            if need.get(node, set()) <= have[node] and not away.get(node, set()) & have[node]:
                pending.discard(node)
        if not pending:
            return time.monotonic() - t0
        _check_alive(cluster)
        if time.monotonic() - t0 > timeout_s:
            raise TestbedError(f"routes not converged within {timeout_s:.0f} s: " + "; ".join(
                f"{n} lacks {sorted(need.get(n, set()) - have[n])}"
                f" and still has {sorted(away.get(n, set()) & have[n])}"
                for n in sorted(pending)))
        time.sleep(POLL_S)


def _routes(cluster: ClusterContext, node: str) -> set[str]:
    """The destinations of a node's (or the router's) IPv4 routes."""
    res = cluster.exec_node(node, ["ip", "-j", "-4", "route", "show"])
    return {route_dst(r) for r in ip_json(res, f"routes of {node}")}


def start(cluster: ClusterContext) -> None:
    """Bring-up: every daemon the pod network runs (nodes, then the router), then wait
    for the routes they converge to (the step's time is the convergence time)."""
    setups: dict[str, NodeSetup] = cluster.node_setups
    for node, setup in setups.items():
        launch(cluster, node, setup.daemons)
    cluster.members = [n.name for n in cluster.plan.nodes]
    if cluster.daemons:
        cluster.progress(f"started {len(cluster.daemons)} daemon(s); waiting for their "
                         "routes")
    wait_routes(cluster, {n: s.await_routes for n, s in setups.items()})


def _refuse(cluster: ClusterContext, node: str, joining: bool) -> None:
    cluster.node_plan(node)  # an unknown name is refused here
    if not cluster.nodes_can_leave:
        raise TestbedError(
            f"pod network {cluster.spec.pod_network}: nodes joining and leaving are emulated "
            "where routing daemons follow them (calico); this mode's routes are programmed "
            "by the testbed as its agent would, with no API server watch to time")
    if joining and node in cluster.members:
        raise TestbedError(f"{node} is in the pod network already")
    if not joining and node not in cluster.members:
        raise TestbedError(f"{node} is not in the pod network (it left)")
    if not joining and len(cluster.members) < 2:
        raise TestbedError(f"{node} is the last node in the pod network")


def _follow(cluster: ClusterContext, members: list[str]) -> dict[str, NodeSetup]:
    """Every node's and the router's setup for `members`: daemons, routes to wait for."""
    plans = [cluster.node_plan(m) for m in members]
    out: dict[str, NodeSetup] = {}
    for where in [*members, ROUTER]:
        setup = cluster.node_setups.get(where)
        if setup is None:
            continue
        mesh = cluster.network.mesh(cluster.spec, cluster.plan,
                                    None if where == ROUTER else cluster.node_plan(where),
                                    plans)
        assert mesh is not None
        out[where] = replace(setup, daemons=mesh.daemons, await_routes=mesh.await_routes)
    return out


def leave(cluster: ClusterContext, node: str) -> float:
    """Delete `node` from the pod network (see the module docstring); the seconds until
    no member's kernel, nor the router's, holds a route to what it announced."""
    _refuse(cluster, node, joining=False)
    members = [m for m in cluster.members if m != node]
    before = {n: set(map(str, s.await_routes)) for n, s in cluster.node_setups.items()}
    after = _follow(cluster, members)
    t0 = time.monotonic()
    for (where, name), proc in list(cluster.daemons.items()):
        if where == node:
            procs.stop_popen(proc)
            del cluster.daemons[(where, name)]
            cluster.node_processes.remove(proc)
    for where in members:
        reload(cluster, where, after[where].daemons)
    cluster.members = members
    cluster.node_setups.update(after)
    gone = {n: before[n] - set(map(str, s.await_routes)) for n, s in after.items()}
    wait_routes(cluster, {n: s.await_routes for n, s in after.items()}, gone)
    return time.monotonic() - t0


def join(cluster: ClusterContext, node: str) -> float:
    """Add `node` (back) to the pod network; the seconds until every member's kernel and
    the router's hold every route they should."""
    _refuse(cluster, node, joining=True)
    members = [n.name for n in cluster.plan.nodes if n.name in {*cluster.members, node}]
    after = _follow(cluster, members)
    t0 = time.monotonic()
    for where in members:
        if where != node:
            reload(cluster, where, after[where].daemons)
    launch(cluster, node, after[node].daemons)
    cluster.members = members
    cluster.node_setups.update(after)
    wait_routes(cluster, {n: s.await_routes for n, s in after.items()})
    return time.monotonic() - t0
