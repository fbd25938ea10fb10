#!/usr/bin/env python3
"""Bring-up and teardown of pods at scale: the testbed from the outside and inside, the
kernel's own floor and the plain-Mininet peer, measured in one run.

    sudo .venv/bin/python benchmarks/bringup.py                       # 10x10, 20x10
    sudo .venv/bin/python benchmarks/bringup.py --sizes 100x0,100x10 --repeat 3
    sudo .venv/bin/python benchmarks/bringup.py --sizes 100x0,500x0,100x10,500x20 \
        --impl outside,floor --repeat 1

    outside  `testbed up FILE --wiring fast -c ...` as a process, wall clock, as a user
             sees it (sample pings between pods on different nodes, then teardown);
             its inside figures (steps and stages) from `--timings`
    fast     this testbed in this process, pods wired over netlink (testbed.pods.fastwire)
    cni      this testbed in this process, pods wired by the real CNI plugins
    floor    the kernel's own floor for the same pod count: one `ip -batch` making that
             many named network namespaces and veth pairs (the peer moved into each), then
             one deleting them; no nodes, no router, no addresses
    mininet  the peer approach: every pod a plain Mininet host on a per-node Linux bridge,
             nodes and a router as plain hosts, Mininet's own start and stop

A size `NxP` is N nodes with P pods each; `Nx0` (nodes and router alone) gives each size
with pods its per-pod time: (time of NxP - time of Nx0) / pods, the figure whose growth
across sizes shows a super-linear stage. up_s runs until every pod exists and a sample of
cross-node pod pairs answers a ping; down_s until the network is gone; wall_s (outside)
the whole process. peak_rss_mb is the peak rise of the machine's used memory (MemTotal -
MemAvailable, sampled every 50 ms) over its level before the run: every process and the
kernel's own structures, not only this Python process. init_cpu_s is the CPU pid 1 used
during the run: on the VMs these figures come from, pid 1 is the sandbox's agent, whose
load grows with the number of processes on the machine (about a core at 10,000 pods).

The kernel destroys the namespaces of a torn-down cluster in the background, after the
teardown has returned. The benchmark waits for it after every run (kernel_cleanup_s, the
time that took, is a column of bringup.csv) so that no run pays for the one before.

The data path, after the first bring-up of each size with two nodes or more (fast, cni),
outside the timed span: iperf3 TCP node to node on the underlay and pod to pod across the
same two nodes, client and server pinned to different CPUs, in interleaved rounds
(`--rounds`, `--throughput` seconds each); the paired ratio pod-cross-node / node-node of
each round, its median and bootstrap 95 % interval (testbed.results.stats).

Writes <out>/bench-<time>/: bringup.csv, stages.csv (every step and stage of every run),
throughput.csv, bringup.png, report.md (means, ratios to the floor and to the peer, time
per pod, the data path, the targets), metadata.json (machine, versions, arguments) and
the topology file of each size.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.cluster import Cluster, preflight  # noqa: E402
from testbed.errors import TestbedError  # noqa: E402
from testbed.kernel import procs  # noqa: E402
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv  # noqa: E402
from testbed.model.load import parse_spec  # noqa: E402
from testbed.model.spec import ClusterSpec  # noqa: E402
from testbed.results.rundir import atomic_write  # noqa: E402
from testbed.results.stats import bootstrap_ci, clip  # noqa: E402

COLUMNS = ["impl", "nodes", "pods_per_node", "pods", "repeat", "up_s", "down_s", "wall_s",
           "peak_rss_mb", "kernel_cleanup_s", "init_cpu_s"]
STAGE_COLUMNS = ["impl", "nodes", "pods_per_node", "repeat", "stage", "seconds"]
TP_COLUMNS = ["impl", "nodes", "pods_per_node", "path", "src", "dst", "round", "throughput_bps"]
IMPLS = ("outside", "floor", "fast", "cni", "mininet")
SAMPLE_PAIRS = 5
FLOOR_NETNS = "ktb-floor-"  # the floor's namespaces: the testbed's prefix, gone at its end
FLOOR_VETH = "ktbf"
# issue 14's targets: ratios measured in one run, never absolute times
TARGETS = {"floor_up": 2.0, "floor_down": 1.5, "per_pod_growth": 1.3, "nodes_growth": 6.0,
           "cni_over_fast": 3.0, "datapath": 0.90}


def init_cpu_s() -> float:
    """CPU seconds pid 1 (the machine's init) has used so far. Not the testbed's, but it
    competes with it: on the Firecracker VMs these figures come from, pid 1 is the
    sandbox's agent, which used 0.05 cores with 1,200 processes on the machine, 0.56 with
    4,300 and ~1 core with 10,600 (one of two); systemd on a standard Debian uses ~0."""
    used = procs.cpu_seconds(1)
    return math.nan if used is None else used


class MemoryPeak:
    """Samples MemTotal - MemAvailable in a thread; `peak_mb` is the rise over the start."""

    def __init__(self) -> None:
        self.base = self.peak = self._used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _used() -> int:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0])
        return info["MemTotal"] - info["MemAvailable"]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._used())

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.base) / 1024


def netns_cleanup_running() -> bool:
    """Whether the kernel is destroying network namespaces right now: a kernel worker
    names the workqueue it is running in its comm ("kworker/u8:2+netns")."""
    for path in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(path) as f:
                comm = f.read()
        except OSError:
            continue
        if comm.startswith("kworker") and "+netns" in comm:
            return True
    return False


QUIET_S = 0.3  # settle_kernel's quiet window, part of every kernel_cleanup_s


def settle_kernel(timeout_s: float = 120, quiet_s: float = QUIET_S) -> float:
    """Wait until the kernel has finished destroying namespaces (none for `quiet_s`);
    return the seconds waited. A teardown returns before the kernel has freed the
    namespaces it ended, and a run started meanwhile would pay for that work."""
    t0 = time.monotonic()
    quiet_since: float | None = None
    while time.monotonic() - t0 < timeout_s:
        now = time.monotonic()
        if netns_cleanup_running():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            break
        time.sleep(0.02)
    return time.monotonic() - t0


def make_spec_dict(nodes: int, pods_per_node: int) -> dict[str, Any]:
    """The benchmark's cluster: N nodes of P pods on one underlay (a /22 from 250 nodes,
    a /21 from 1000)."""
    underlay_prefix = 24 if nodes < 250 else 22 if nodes < 1000 else 21
    return {"name": f"bench-{nodes}x{pods_per_node}", "cluster_cidr": "10.0.0.0/14",
            "underlay": f"10.100.0.0/{underlay_prefix}",
            "nodes": [{"name": f"n{i}", "pods": pods_per_node} for i in range(nodes)]}


def make_spec(nodes: int, pods_per_node: int) -> ClusterSpec:
    return parse_spec(make_spec_dict(nodes, pods_per_node), "benchmark")


def sample_pairs(pods: list[tuple[str, str]], rng: random.Random) -> list[tuple[int, int]]:
    """Indexes of up to SAMPLE_PAIRS (src, dst) pod pairs on different nodes, drawn without
    listing every pair (5000 pods make 25 million)."""
    per_node: dict[str, int] = {}
    for _, node in pods:
        per_node[node] = per_node.get(node, 0) + 1
    possible = len(pods) ** 2 - sum(n * n for n in per_node.values())
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < min(SAMPLE_PAIRS, possible):
        i, j = rng.randrange(len(pods)), rng.randrange(len(pods))
        if pods[i][1] != pods[j][1]:
            pairs.add((i, j))
    return sorted(pairs)


def iperf(run: Any, argv: list[str], what: str, seconds: int) -> float:
    """Run an iperf3 client (retrying while its server starts); the received bit rate."""
    deadline = time.monotonic() + 5
    while True:
        res = run(argv, timeout=seconds + 20)
        refused = "Connection refused" in res.stdout + res.stderr
        if not refused or time.monotonic() > deadline:
            try:
                return parse_iperf3_json(res.stdout).received_bps
            except TestbedError as exc:
                raise RuntimeError(f"{what}: {exc} {res.stderr.strip()[:200]}") from None
        time.sleep(0.1)


def datapath(cluster: Cluster, seconds: int, rounds: int, port: int = 5201
             ) -> list[dict[str, Any]]:
    """TCP throughput node -> node on the underlay and pod -> pod across the same two
    nodes (iperf3, one stream, `seconds` each, client and server pinned to the first two
    CPUs), alternating for `rounds` rounds so that both see the same drift of a noisy
    machine: each round's pair is one paired ratio."""
    n0, n1 = cluster.node_names[:2]
    p0 = next(p for p in cluster.pods.values() if p.node == n0)
    p1 = next(p for p in cluster.pods.values() if p.node == n1)
    cpus = sorted(os.sched_getaffinity(0))
    pin = (cpus[0], cpus[1]) if len(cpus) >= 2 else None
    rows = []
    server = cluster.popen_node(n1, server_argv(port))
    cluster.add_container(p1.name, "iperf-server", server_argv(port + 1))
    try:
        for rnd in range(1, rounds + 1):
            bps = iperf(lambda a, timeout: cluster.exec_node(n0, a, timeout=timeout),
                        client_argv(cluster.endpoint_ip(n1), port, seconds, pin=pin),
                        "node-node", seconds)
            rows.append(dict(path="node-node", src=n0, dst=n1, round=rnd, throughput_bps=bps))
            bps = iperf(lambda a, timeout: p0.exec(a, timeout=timeout),
                        client_argv(cluster.endpoint_ip(p1.name), port + 1, seconds, pin=pin),
                        "pod-pod", seconds)
            rows.append(dict(path="pod-cross-node", src=p0.name, dst=p1.name, round=rnd,
                             throughput_bps=bps))
    finally:
        procs.stop_popen(server)
        cluster.remove_container(p1.name, "iperf-server")
    return rows


def ping_pairs(pods: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """Sampled (src, dst) pod names on different nodes."""
    return [(pods[i][0], pods[j][0]) for i, j in sample_pairs(pods, rng)]


def run_testbed(spec: ClusterSpec, wiring: str, rng: random.Random, throughput_s: int = 0,
                rounds: int = 0) -> tuple[float, float, dict[str, float],
                                          list[dict[str, Any]]]:
    """This testbed in this process: (up, down, its steps and stages, data-path rows)."""
    cluster = Cluster(spec, wiring=wiring)
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        cluster.start()
        pods = [(p.name, p.node) for p in cluster.pods.values()]
        for src, dst in ping_pairs(pods, rng):
            res = cluster.pod(src).exec(["ping", "-c1", "-W2", cluster.endpoint_ip(dst)])
            if not res.ok:
                raise RuntimeError(f"{wiring}: {src} cannot reach {dst}")
        up = time.monotonic() - t0
        if throughput_s and rounds and len(spec.nodes) >= 2 and spec.nodes[0].pods:
            rows = datapath(cluster, throughput_s, rounds)
    finally:
        t1 = time.monotonic()
        cluster.stop()
    return up, time.monotonic() - t1, dict(cluster.timings), rows


def testbed_command() -> list[str]:
    """The `testbed` command as users run it: the project environment's entry point."""
    venv = ROOT / ".venv" / "bin" / "testbed"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "testbed.cli.main"]


def run_outside(spec_file: Path, spec: ClusterSpec, rng: random.Random, work: Path
                ) -> tuple[float, dict[str, float]]:
    """`testbed up FILE --wiring fast -c <pings>` as a process: its wall clock and the
    steps and stages it wrote with --timings."""
    pods = [(p.name, n.name) for n, p in spec.pods]
    commands = [f"{src} ping -c1 -W2 {dst}" for src, dst in ping_pairs(pods, rng)] or ["# up"]
    timings = work / f"timings-{spec.name}.json"
    argv = [*testbed_command(), "up", str(spec_file), "--wiring", "fast",
            "--timings", str(timings)]
    for c in commands:
        argv += ["-c", c]
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=3600,
                         stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise RuntimeError(f"testbed up {spec_file.name}: exit {res.returncode}: "
                           f"{res.stderr.strip()[-500:]}")
    found = json.loads(timings.read_text())
    timings.unlink()
    return wall, found


def floor_names(pods: int) -> list[tuple[str, str]]:
    return [(f"{FLOOR_NETNS}{i}", f"{FLOOR_VETH}{i}") for i in range(pods)]


def floor_batches(pods: int) -> tuple[str, str]:
    """The `ip -batch` input that makes `pods` named namespaces each holding the peer of
    a veth pair, and the one that deletes them (each pair goes with its namespace)."""
    names = floor_names(pods)
    add = "".join(f"netns add {ns}\nlink add {veth} type veth peer name eth0 netns {ns}\n"
                  for ns, veth in names)
    delete = "".join(f"netns del {ns}\n" for ns, _ in names)
    return add, delete


def run_floor(pods: int) -> tuple[float, float]:
    """The kernel's floor for `pods`: (one ip -batch making them, one deleting them)."""
    if pods < 1:
        return 0.0, 0.0
    clash = [ns for ns, _ in floor_names(pods) if os.path.exists(f"/run/netns/{ns}")]
    if clash:
        raise RuntimeError(f"floor: {len(clash)} namespaces named {FLOOR_NETNS}* exist "
                           "already (a benchmark killed mid-run?): `ip netns del` them first")
    add, delete = floor_batches(pods)
    made = False
    try:
        t0 = time.monotonic()
        res = subprocess.run(["ip", "-batch", "-"], input=add, capture_output=True,
                             text=True, timeout=3600)
        made = True
        up = time.monotonic() - t0
        if res.returncode != 0:
            raise RuntimeError(f"floor: ip -batch: {res.stderr.strip()[:300]}")
        t1 = time.monotonic()
        res = subprocess.run(["ip", "-batch", "-"], input=delete, capture_output=True,
                             text=True, timeout=3600)
        down = time.monotonic() - t1
        made = res.returncode != 0
        if res.returncode != 0:
            raise RuntimeError(f"floor: ip -batch (delete): {res.stderr.strip()[:300]}")
    finally:
        if made:  # whatever the failed batch made goes, one by one
            for ns, _ in floor_names(pods):
                if os.path.exists(f"/run/netns/{ns}"):
                    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return up, down


def run_mininet(spec: ClusterSpec, rng: random.Random) -> tuple[float, float]:
    """The peer approach, built with Mininet's own API only (stop() included)."""
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge

    from testbed.model.addressing import plan

    setLogLevel("error")
    p = plan(spec)
    t0 = time.monotonic()
    net = Mininet(build=False, controller=None, switch=LinuxBridge, autoSetMacs=False)
    try:
        underlay = net.addSwitch("ktbu1", stp=False)
        router = net.addHost("ktbr", ip=None)
        net.addLink(router, underlay, params1={"ip": str(p.router_ip)})
        pods: list[tuple[object, str, str]] = []  # (host, node, ip)
        for k, node in enumerate(p.nodes):
            host = net.addHost(f"ktbn{k}", ip=None)
            net.addLink(host, underlay, params1={"ip": str(node.underlay_ip)})
            bridge = net.addSwitch(f"ktbb{k}", stp=False)
            net.addLink(host, bridge, params1={"ip": str(node.bridge_ip)})
            for j, ip in enumerate(node.expected_pod_ips(len(spec.nodes[k].pods))):
                pod = net.addHost(f"ktbp{k}x{j}", ip=None)
                net.addLink(pod, bridge, params1={"ip": f"{ip}/{node.pod_cidr.prefixlen}"})
                pods.append((pod, node.name, str(ip)))
        net.build()
        net.start()
        router.cmd("sysctl -qw net.ipv4.ip_forward=1")
        for k, node_plan in enumerate(p.nodes):
            router.cmd(f"ip route add {node_plan.pod_cidr} via {node_plan.underlay_ip.ip}")
            host = net[f"ktbn{k}"]
            host.cmd(f"sysctl -qw net.ipv4.ip_forward=1; ip route add default via "
                     f"{p.router_ip.ip}")
        for pod, node, _ in pods:
            gw = p.node(node).gateway
            pod.cmd(f"ip route add default via {gw}")
        names = [(str(i), node) for i, (_, node, _) in enumerate(pods)]
        for i, j in sample_pairs(names, rng):
            out = pods[i][0].cmd(f"ping -c1 -W2 {pods[j][2]}")
            if " 0% packet loss" not in out:
                raise RuntimeError(f"mininet: pod {i} cannot reach pod {j}")
        up = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        net.stop()
    return up, time.monotonic() - t1


def plot(frame: pd.DataFrame) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    frame = frame.assign(up_or_wall=frame["wall_s"].fillna(frame["up_s"]))
    mean = frame.groupby(["impl", "pods"])[["up_or_wall", "down_s"]].mean().reset_index()
    for ax, col, title in ((axes[0], "up_or_wall", "bring-up (outside: the whole process)"),
                           (axes[1], "down_s", "teardown")):
        for impl, g in mean.groupby("impl"):
            ax.plot(g["pods"], g[col], marker="o", label=impl)
        ax.set_xlabel("pods")
        ax.set_ylabel("seconds (mean)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def metadata(args: argparse.Namespace) -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            res = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=10)
        except OSError:
            return ""
        return (res.stdout.strip() or res.stderr.strip()).split("\n")[0]  # mn: on stderr

    return {
        "command": " ".join(sys.argv),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": out(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(out(["git", "status", "--porcelain", "--untracked-files=no"])),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "mininet": out(["mn", "--version"]),
        "iperf3": out(["iperf3", "--version"]),
    }


def _mean(frame: pd.DataFrame, impl: str, nodes: int, per_node: int, col: str) -> float:
    sub = frame[(frame["impl"] == impl) & (frame["nodes"] == nodes)
                & (frame["pods_per_node"] == per_node)][col].dropna()
    return float(sub.mean()) if len(sub) else math.nan


def per_pod_ms(frame: pd.DataFrame, impl: str, nodes: int, per_node: int,
               col: str = "wall_s") -> float:
    """(time of NxP - time of Nx0) / pods, in ms: what each pod adds; NaN without Nx0."""
    with_pods = _mean(frame, impl, nodes, per_node, col)
    alone = _mean(frame, impl, nodes, 0, col)
    return 1000 * (with_pods - alone) / (nodes * per_node) if per_node else math.nan


def stage_per_pod_ms(stages: pd.DataFrame, nodes: int, per_node: int) -> float:
    """The bring-up's pods step (`pods_s`, from `--timings`) per pod, in ms: the pods'
    linearity without the difference of two noisy wall-clock figures (NxP less Nx0,
    at 1000 pods a difference of a few seconds, each varying by ~1 s here)."""
    if stages.empty:
        return math.nan
    rows = stages[(stages["impl"] == "outside") & (stages["nodes"] == nodes)
                  & (stages["pods_per_node"] == per_node) & (stages["stage"] == "pods_s")]
    return 1000 * rows["seconds"].mean() / (nodes * per_node) if len(rows) else math.nan


def datapath_lines(tp: pd.DataFrame) -> tuple[list[str], list[tuple[str, bool]]]:
    """Each size's paired ratio pod-cross-node / node-node: rounds, median, interval."""
    lines, checks = [], []
    for (impl, nodes, per_node), g in tp.groupby(["impl", "nodes", "pods_per_node"]):
        piv = g.pivot_table(index="round", columns="path", values="throughput_bps")
        if not {"node-node", "pod-cross-node"} <= set(piv.columns):
            continue
        ratios = (piv["pod-cross-node"] / piv["node-node"]).dropna().tolist()
        if not ratios:
            continue
        med = float(np.median(ratios))
        low, high = clip(bootstrap_ci(ratios), "ratio")
        lines.append(f"- {impl} {nodes}x{per_node}: {len(ratios)} rounds, node-node median "
                     f"{piv['node-node'].median() / 1e9:.2f} Gbit/s, pod-cross-node "
                     f"{piv['pod-cross-node'].median() / 1e9:.2f} Gbit/s; paired ratio "
                     f"median {med:.2f} (95 % interval {low:.2f} .. {high:.2f}; rounds "
                     + ", ".join(f"{r:.2f}" for r in ratios) + ")")
        checks.append((f"{impl} {nodes}x{per_node} data path: paired ratio {med:.2f} "
                       f"[{low:.2f} .. {high:.2f}] (>= {TARGETS['datapath']:.2f})",
                       med >= TARGETS["datapath"]))
    return lines, checks


def teardown_parts(frame: pd.DataFrame, nodes: int, per_node: int, down: float,
                   f_down: float) -> list[str]:
    """The teardown beside the floor's deletion two more ways: the pods' share (NxP less
    Nx0: the nodes' shells, router and bridges are not in the floor) and end to end,
    until the kernel has destroyed the namespaces (`ip netns del` returns after the
    unmounts; the kernel frees namespaces and links in the background for both)."""
    out = []
    alone = _mean(frame, "outside", nodes, 0, "down_s")
    if not math.isnan(alone):
        out.append(f"the pods' share {down - alone:.2f} s = {(down - alone) / f_down:.1f}x")
    clean = _mean(frame, "outside", nodes, per_node, "kernel_cleanup_s")
    f_clean = _mean(frame, "floor", nodes, per_node, "kernel_cleanup_s")
    if not math.isnan(clean) and not math.isnan(f_clean):
        ours = down + max(0.0, clean - QUIET_S)
        floor = f_down + max(0.0, f_clean - QUIET_S)
        out.append(f"until the kernel has destroyed everything {ours:.2f} s against the "
                   f"floor's {floor:.2f} s ({ours / floor:.1f}x)")
        alone_clean = _mean(frame, "outside", nodes, 0, "kernel_cleanup_s")
        if not math.isnan(alone) and not math.isnan(alone_clean):
            ours_alone = alone + max(0.0, alone_clean - QUIET_S)
            out.append(f"of which the nodes and router alone {ours_alone:.2f} s")
    return out


def report(frame: pd.DataFrame, tp: pd.DataFrame, stages: pd.DataFrame) -> str:
    """The summary people read: means, ratios to the floor and the peer, time per pod,
    where the time goes, the data path, and issue 14's targets."""
    cols = ["up_s", "down_s", "wall_s", "peak_rss_mb", "kernel_cleanup_s", "init_cpu_s"]
    means = frame.groupby(["pods", "nodes", "pods_per_node", "impl"])[cols].mean().round(3)
    lines = ["# Bring-up and teardown benchmark", "",
             f"Runs per size and implementation: {frame['repeat'].max()}. Seconds (means); "
             "up: until sampled cross-node pod pairs answer; down: until the implementation "
             "returns; wall (outside): the whole `testbed up ... -c` process; "
             "kernel_cleanup: the kernel's background namespace destruction afterwards; "
             "memory: the peak rise of the machine's used memory; init_cpu: CPU seconds "
             "pid 1 used during the run (not the testbed's; it competes with it).", "",
             means.reset_index().to_markdown(index=False), ""]
    checks: list[tuple[str, bool]] = []
    sizes = sorted({(int(n), int(p)) for n, p in zip(frame["nodes"], frame["pods_per_node"])})
    ratio_lines = []
    for nodes, per_node in sizes:
        label, pods = f"{nodes}x{per_node}", nodes * per_node
        wall = _mean(frame, "outside", nodes, per_node, "wall_s")
        alone = _mean(frame, "outside", nodes, 0, "wall_s")
        f_up = _mean(frame, "floor", nodes, per_node, "up_s")
        f_down = _mean(frame, "floor", nodes, per_node, "down_s")
        down = _mean(frame, "outside", nodes, per_node, "down_s")
        parts = []
        if per_node and not math.isnan(wall) and not math.isnan(alone) \
                and not math.isnan(f_up):
            r = wall / (f_up + alone)
            parts.append(f"outside {wall:.2f} s = {r:.2f}x (floor {f_up:.2f} s + nodes and "
                         f"router alone {alone:.2f} s)")
            if label == "100x10":
                checks.append((f"100x10 from the outside {r:.2f}x the floor plus nodes "
                               f"alone (<= {TARGETS['floor_up']:g})", r <= TARGETS["floor_up"]))
        if per_node and not math.isnan(down) and not math.isnan(f_down) and f_down > 0:
            r = down / f_down
            parts.append(f"teardown {down:.2f} s = {r:.2f}x the floor's deletion "
                         f"{f_down:.2f} s")
            if label == "100x10":
                checks.append((f"100x10 teardown {r:.2f}x the floor's deletion "
                               f"(<= {TARGETS['floor_down']:g})", r <= TARGETS["floor_down"]))
            parts += teardown_parts(frame, nodes, per_node, down, f_down)
        ms = per_pod_ms(frame, "outside", nodes, per_node)
        if not math.isnan(ms):
            floor_ms = 1000 * f_up / pods if not math.isnan(f_up) else math.nan
            parts.append(f"{ms:.2f} ms a pod (floor {floor_ms:.2f})")
        for impl in ("fast", "cni"):
            up = _mean(frame, impl, nodes, per_node, "up_s")
            peer = _mean(frame, "mininet", nodes, per_node, "up_s")
            if not math.isnan(up) and not math.isnan(peer):
                parts.append(f"{impl} in-process {up:.2f} s, plain Mininet {peer:.2f} s "
                             f"({peer / up:.2f}x)")
        fast, cni = (_mean(frame, i, nodes, per_node, "up_s") for i in ("fast", "cni"))
        if per_node and not math.isnan(fast) and not math.isnan(cni):
            parts.append(f"cni {cni / fast:.2f}x fast")
            checks.append((f"{label} real plugins {cni / fast:.2f}x the fast path "
                           f"(<= {TARGETS['cni_over_fast']:g})",
                           cni / fast <= TARGETS["cni_over_fast"]))
        if parts:
            ratio_lines.append(f"- {label}: " + "; ".join(parts))
    grow = [(n, p, per_pod_ms(frame, "outside", n, p)) for n, p in sizes if p]
    grow = [(n, p, ms) for n, p, ms in grow if not math.isnan(ms)]
    base = next((ms for n, p, ms in grow if n * p == 1000), None)
    floor_ms = {(n, p): 1000 * _mean(frame, "floor", n, p, "up_s") / (n * p)
                for n, p in sizes if p}
    floor_base = next((v for (n, p), v in floor_ms.items() if n * p == 1000), math.nan)
    inside = {(n, p): stage_per_pod_ms(stages, n, p) for n, p in sizes if p}
    inside_base = next((v for (n, p), v in inside.items() if n * p == 1000), math.nan)
    for n, p, ms in grow:
        if base and n * p >= 10_000:
            own = floor_ms.get((n, p), math.nan) / floor_base
            steps = inside.get((n, p), math.nan)
            checks.append((f"{n}x{p}: {ms:.2f} ms a pod = {ms / base:.2f}x that at 1000 pods "
                           f"(<= {TARGETS['per_pod_growth']:g}; the floor's own: "
                           f"{own:.2f}x; inside, the pods step alone: {steps:.2f} ms = "
                           f"{steps / inside_base:.2f}x)", ms / base <= TARGETS["per_pod_growth"]))
    a100, a500 = (_mean(frame, "outside", n, 0, "wall_s") for n in (100, 500))
    if not math.isnan(a100) and not math.isnan(a500):
        checks.append((f"500 nodes alone {a500:.2f} s = {a500 / a100:.2f}x 100 nodes alone "
                       f"(<= {TARGETS['nodes_growth']:g})",
                       a500 / a100 <= TARGETS["nodes_growth"]))
    if ratio_lines:
        lines += ["## Ratios (same run)", "", *ratio_lines, ""]
    if not stages.empty:
        piv = stages.groupby(["impl", "nodes", "pods_per_node", "stage"])["seconds"].mean()
        table = piv.unstack(["impl", "nodes", "pods_per_node"]).round(3)
        table = table[table.max(axis=1) >= 0.001]  # steps this topology does not have
        table.columns = [f"{i} {n}x{p}" for i, n, p in table.columns]
        lines += ["## Where the time goes (steps `<step>_s`, stages `<step>.<stage>_s`; "
                  "means)", "", table.reset_index().to_markdown(index=False), ""]
    dp_lines, dp_checks = datapath_lines(tp)
    if dp_lines:
        lines += ["## Data path (iperf3 TCP, one stream, pinned; paired by round)", "",
                  *dp_lines, ""]
    checks += dp_checks
    if checks:
        lines += ["## Targets (issue 14; ratios within this run)", ""]
        lines += [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks]
    return "\n".join(lines) + "\n"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`100x10,500x0` -> [(100, 10), (500, 0)]; ValueError on anything else."""
    sizes = []
    for part in text.split(","):
        nodes, _, pods = part.lower().partition("x")
        size = (int(nodes), int(pods))
        if size[0] < 1 or size[1] < 0:
            raise ValueError(part)
        sizes.append(size)
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/bringup.py", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x0,10x10,20x10",
                    help="comma-separated NODESxPODS_PER_NODE, Nx0 for nodes alone "
                         "(default 10x0,10x10,20x10)")
    ap.add_argument("--impl", default="outside,floor,fast,cni,mininet",
                    help=f"which of {','.join(IMPLS)} (default all)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--throughput", type=int, default=3, metavar="SECONDS",
                    help="iperf3 seconds per data-path measurement (0: none; default 3)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved data-path rounds (default 5)")
    ap.add_argument("--mininet-max-pods", type=int, default=1000,
                    help="the plain-Mininet peer only up to this many pods (default 1000)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError:
        ap.error(f"--sizes: expected NODESxPODS, e.g. 10x10 or 100x0, not {args.sizes!r}")
    impls = args.impl.split(",")
    unknown = set(impls) - set(IMPLS)
    if unknown:
        ap.error(f"--impl: unknown {', '.join(sorted(unknown))}")
    if args.repeat < 1 or args.rounds < 1:
        ap.error("--repeat and --rounds: at least 1")
    preflight.check_all()
    # imported before anything is measured: the first run must not pay for imports
    import mininet.net  # noqa: F401

    import testbed.emulation.nodes  # noqa: F401
    rng = random.Random(args.seed)
    out = args.out / time.strftime("bench-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True)
    atomic_write(out / "metadata.json", json.dumps(metadata(args), indent=2) + "\n")
    settle_kernel()
    rows: list[dict[str, Any]] = []
    stage_rows: list[dict[str, Any]] = []
    tp_rows: list[dict[str, Any]] = []
    for nodes, per_node in sizes:
        spec_dict = make_spec_dict(nodes, per_node)
        spec = parse_spec(spec_dict, "benchmark")
        spec_file = out / f"topology-{nodes}x{per_node}.yaml"  # JSON is YAML
        atomic_write(spec_file, json.dumps(spec_dict) + "\n")
        for rep in range(1, args.repeat + 1):
            for impl in impls:
                if impl == "mininet" and nodes * per_node > args.mininet_max_pods:
                    continue
                if impl == "floor" and not per_node:
                    continue
                measure_tp = args.throughput if rep == 1 and impl in ("fast", "cni") else 0
                found: list[dict[str, Any]] = []
                timings: dict[str, float] = {}
                wall = math.nan
                init_before = init_cpu_s()
                with MemoryPeak() as mem:
                    if impl == "mininet":
                        up, down = run_mininet(spec, rng)
                    elif impl == "floor":
                        up, down = run_floor(nodes * per_node)
                    elif impl == "outside":
                        wall, timings = run_outside(spec_file, spec, rng, out)
                        up, down = timings.get("up_s", math.nan), timings.get("down_s", math.nan)
                    else:
                        up, down, timings, found = run_testbed(spec, impl, rng, measure_tp,
                                                               args.rounds)
                init_used = init_cpu_s() - init_before
                cleanup_s = settle_kernel()
                rows.append(dict(impl=impl, nodes=nodes, pods_per_node=per_node,
                                 pods=nodes * per_node, repeat=rep, up_s=round(up, 3),
                                 down_s=round(down, 3), wall_s=round(wall, 3),
                                 peak_rss_mb=round(mem.peak_mb, 1),
                                 kernel_cleanup_s=round(cleanup_s, 2),
                                 init_cpu_s=round(init_used, 2)))
                stage_rows += [dict(impl=impl, nodes=nodes, pods_per_node=per_node,
                                    repeat=rep, stage=k, seconds=round(v, 4))
                               for k, v in timings.items()]
                tp_rows += [dict(impl=impl, nodes=nodes, pods_per_node=per_node, **r)
                            for r in found]
                tp_text = ""
                if found:
                    med = pd.DataFrame(found).groupby("path")["throughput_bps"].median()
                    tp_text = "".join(f"; {k} {v / 1e9:.1f} Gbit/s" for k, v in med.items())
                wall_text = "" if math.isnan(wall) else f" (process {wall:.2f} s)"
                print(f"{impl:8} {nodes:4}x{per_node:<3} r{rep}: up {up:7.2f} s{wall_text}, "
                      f"down {down:6.2f} s, peak +{mem.peak_mb:7.1f} MB"
                      f", pid 1 {init_used:.1f} cpu-s"
                      f", then {cleanup_s:.1f} s of the kernel's cleanup{tp_text}", flush=True)
                atomic_write(out / "bringup.csv",
                             pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
                atomic_write(out / "stages.csv",
                             pd.DataFrame(stage_rows, columns=STAGE_COLUMNS).to_csv(index=False))
                atomic_write(out / "throughput.csv",
                             pd.DataFrame(tp_rows, columns=TP_COLUMNS).to_csv(index=False))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    atomic_write(out / "bringup.png", plot(frame))
    text = report(frame, pd.DataFrame(tp_rows, columns=TP_COLUMNS),
                  pd.DataFrame(stage_rows, columns=STAGE_COLUMNS))
    atomic_write(out / "report.md", text)
    print(text)
    print(f"wrote {out}/: bringup.csv, stages.csv, throughput.csv, bringup.png, report.md, "
          "metadata.json, topology-*.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
