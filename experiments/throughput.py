"""Throughput per path class: one iperf3 TCP stream along each kind of path, repeated.

    pod-localhost   container "iperf3-client" -> 127.0.0.1 -> container "iperf3-server"
    pod-same-node   pod -> cbr0 -> pod on the same node
    pod-cross-node  pod -> node -> router -> node -> pod
    node-node       node -> underlay -> node (the baseline the others are compared with)

Servers run as containers of the destination pod (or as a process in the destination
node), are reused across repeats and removed at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from experiments.context import Context
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.kernel.procs import ExecResult
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv

NAME = "throughput"
SERVER = "iperf3-server"
CLIENT = "iperf3-client"
CONNECT_RETRY_S = 5.0


@dataclass(frozen=True)
class Case:
    path: str
    src: str
    dst: str


def cases(ctx: Context) -> list[Case]:
    """One representative pair per path class this topology has."""
    c = ctx.cluster
    out: list[Case] = []
    by_node: dict[str, list[str]] = {}
    for pod in c.pods.values():
        by_node.setdefault(pod.node, []).append(pod.name)
    if c.pods:
        first = next(iter(c.pods))
        out.append(Case("pod-localhost", first, first))
    same = next((pods for pods in by_node.values() if len(pods) >= 2), None)
    if same:
        out.append(Case("pod-same-node", same[0], same[1]))
    nodes_with_pods = [n for n in c.node_names if by_node.get(n)]
    if len(nodes_with_pods) >= 2:
        out.append(Case("pod-cross-node", by_node[nodes_with_pods[0]][0],
                        by_node[nodes_with_pods[1]][0]))
    if len(c.node_names) >= 2:
        out.append(Case("node-node", c.node_names[0], c.node_names[1]))
    return out


def steps(ctx: Context) -> int:
    return len(cases(ctx)) * ctx.params.repeat


def run(ctx: Context) -> None:
    c, p = ctx.cluster, ctx.params
    todo = cases(ctx)
    ctx.progress.note(f"{NAME}: {', '.join(k.path for k in todo)}; {p.repeat} repeat(s) of "
                      f"{p.iperf_duration_s:g} s")
    node_servers = []
    try:
        for case in todo:  # servers first, so each measurement only runs the client
            if case.path == "node-node":
                node_servers.append(c.popen_node(case.dst, server_argv(p.iperf_port)))
            elif SERVER not in c.pod(case.dst).containers:
                c.add_container(case.dst, SERVER, server_argv(p.iperf_port))
            if case.path == "pod-localhost":
                c.add_container(case.src, CLIENT, ["sleep", "infinity"])
        for rep in range(1, p.repeat + 1):
            for case in todo:
                if ctx.is_done(NAME, rep, case.src, case.dst):
                    ctx.progress.step(f"{NAME} r{rep} {case.path} (kept from before)")
                    continue
                result = _client(ctx, case)
                ctx.run.raw(f"{NAME}/r{rep}_{case.path}_{case.src}_to_{case.dst}.json",
                            result.stdout or result.stderr)
                metrics = parse_iperf3_json(result.stdout).metrics()
                ctx.run.add(ctx.measurement(NAME, rep, case.src, case.dst, case.path, m, v)
                            for m, v in metrics.items())
                ctx.progress.step(f"{NAME} r{rep} {case.path}")
    finally:
        for case in todo:
            for pod, name in ((case.dst, SERVER), (case.src, CLIENT)):
                if pod in c.pods and name in c.pod(pod).containers:
                    c.remove_container(pod, name)
        for proc in node_servers:
            procs.stop_popen(proc)


def _client(ctx: Context, case: Case) -> ExecResult:
    """Run the client, retrying while the server is still starting (connection refused)."""
    c, p = ctx.cluster, ctx.params
    target = "127.0.0.1" if case.path == "pod-localhost" else c.endpoint_ip(case.dst)
    argv = client_argv(target, p.iperf_port, p.iperf_duration_s)
    timeout = p.iperf_duration_s + 20
    deadline = time.monotonic() + CONNECT_RETRY_S
    while True:
        if case.path == "node-node":
            result = c.exec_node(case.src, argv, timeout=timeout)
        else:
            container = CLIENT if case.path == "pod-localhost" else None
            result = c.pod(case.src).exec(argv, timeout=timeout, container=container)
        refused = "Connection refused" in result.stdout or "Connection refused" in result.stderr
        if not refused or time.monotonic() > deadline:
            if not result.stdout.strip():
                raise TestbedError(f"iperf3 {case.path}: no output ({result.stderr.strip()})")
            return result
        time.sleep(0.1)
