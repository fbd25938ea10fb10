#!/usr/bin/env python3
"""Bring-up and teardown of pods at scale, three implementations measured in one run.

    sudo .venv/bin/python benchmarks/bringup.py                       # 10x10 and 20x10
    sudo .venv/bin/python benchmarks/bringup.py --sizes 100x10 --repeat 3
    sudo .venv/bin/python benchmarks/bringup.py --sizes 250x20 --impl fast --repeat 1

    fast     this testbed, pods wired in-process over netlink (testbed.pods.fastwire)
    cni      this testbed, pods wired by the real CNI plugins (the fidelity reference)
    mininet  the peer approach: every pod a plain Mininet host on a per-node Linux bridge,
             nodes and a router as plain hosts, Mininet's own start and stop

up_s runs until every pod exists and a sample of cross-node pod pairs answers a ping;
down_s until the network is gone. peak_rss_mb is the peak rise of the machine's used
memory (MemTotal - MemAvailable, sampled every 50 ms) over its level before the run: it
counts every process and the kernel's own structures, not only this Python process.

The kernel destroys the namespaces of a torn-down cluster in the background, after the
teardown has returned. The benchmark waits for it after every run (kernel_cleanup_s, the
time that took, is a column of bringup.csv) so that no run pays for the one before.

After the first bring-up of each size and testbed implementation, outside the timed span,
it measures the data path: iperf3 TCP from node to node on the underlay, then from a pod
to a pod on another node, three rounds alternating, `--throughput` seconds each; the
medians are compared (the target is pod-pod >= 80 % of node-node).

Writes <out>/bench-<time>/: bringup.csv, throughput.csv, bringup.png, report.md (means,
ratios to mininet, the targets) and metadata.json (machine, versions, arguments).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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

COLUMNS = ["impl", "nodes", "pods_per_node", "pods", "repeat", "up_s", "down_s", "peak_rss_mb",
           "kernel_cleanup_s"]
TP_COLUMNS = ["impl", "nodes", "pods_per_node", "path", "src", "dst", "round", "throughput_bps"]
SAMPLE_PAIRS = 5
TARGETS = {"up_s": 6.0, "down_s": 3.0, "up_ratio": 4.0, "down_ratio": 10.0, "datapath": 0.8}


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


def settle_kernel(timeout_s: float = 120, quiet_s: float = 0.3) -> float:
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


def make_spec(nodes: int, pods_per_node: int) -> ClusterSpec:
    underlay_prefix = 24 if nodes < 250 else 22
    return parse_spec({
        "name": f"bench-{nodes}x{pods_per_node}", "cluster_cidr": "10.0.0.0/14",
        "underlay": f"10.100.0.0/{underlay_prefix}",
        "nodes": [{"name": f"n{i}", "pods": pods_per_node} for i in range(nodes)],
    }, "benchmark")


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


def datapath(cluster: Cluster, seconds: int, rounds: int = 3, port: int = 5201
             ) -> list[dict[str, Any]]:
    """TCP throughput node -> node on the underlay and pod -> pod across the same two
    nodes (iperf3, one stream, `seconds` each), alternating for `rounds` rounds so that
    both see the same drift of a noisy machine."""
    n0, n1 = cluster.node_names[:2]
    p0 = next(p for p in cluster.pods.values() if p.node == n0)
    p1 = next(p for p in cluster.pods.values() if p.node == n1)
    rows = []
    server = cluster.popen_node(n1, server_argv(port))
    cluster.add_container(p1.name, "iperf-server", server_argv(port + 1))
    try:
        for rnd in range(1, rounds + 1):
            bps = iperf(lambda a, timeout: cluster.exec_node(n0, a, timeout=timeout),
                        client_argv(cluster.endpoint_ip(n1), port, seconds), "node-node",
                        seconds)
            rows.append(dict(path="node-node", src=n0, dst=n1, round=rnd, throughput_bps=bps))
            bps = iperf(lambda a, timeout: p0.exec(a, timeout=timeout),
                        client_argv(cluster.endpoint_ip(p1.name), port + 1, seconds),
                        "pod-pod", seconds)
            rows.append(dict(path="pod-cross-node", src=p0.name, dst=p1.name, round=rnd,
                             throughput_bps=bps))
    finally:
        procs.stop_popen(server)
        cluster.remove_container(p1.name, "iperf-server")
    return rows


def run_testbed(spec: ClusterSpec, wiring: str, rng: random.Random, throughput_s: int = 0
                ) -> tuple[float, float, list[dict[str, Any]]]:
    cluster = Cluster(spec, wiring=wiring)
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        cluster.start()
        pods = [(p.name, p.node) for p in cluster.pods.values()]
        for i, j in sample_pairs(pods, rng):
            res = cluster.pod(pods[i][0]).exec(["ping", "-c1", "-W2",
                                                cluster.endpoint_ip(pods[j][0])])
            if not res.ok:
                raise RuntimeError(f"{wiring}: {pods[i][0]} cannot reach {pods[j][0]}")
        up = time.monotonic() - t0
        if throughput_s and len(spec.nodes) >= 2:
            rows = datapath(cluster, throughput_s)
    finally:
        t1 = time.monotonic()
        cluster.stop()
    return up, time.monotonic() - t1, rows


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
    mean = frame.groupby(["impl", "pods"])[["up_s", "down_s"]].mean().reset_index()
    for ax, col, title in ((axes[0], "up_s", "bring-up"), (axes[1], "down_s", "teardown")):
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


def report(frame: pd.DataFrame, tp: pd.DataFrame, impls: list[str]) -> str:
    """The summary people read: mean times and memory, ratios, data path, targets."""
    means = frame.groupby(["pods", "nodes", "pods_per_node", "impl"])[
        ["up_s", "down_s", "peak_rss_mb", "kernel_cleanup_s"]].agg(["mean", "min", "max"]
                                                                   ).round(2)
    means.columns = [f"{a}_{b}" for a, b in means.columns]
    lines = ["# Bring-up and teardown benchmark", "",
             f"Runs per size and implementation: {frame['repeat'].max()}. Times in seconds "
             "(bring-up until sampled cross-node pod pairs answer; teardown until the "
             "implementation returns; kernel_cleanup: how long the kernel then went on "
             "destroying namespaces in the background), memory as the peak rise of the "
             "machine's used memory.", "",
             means.reset_index().to_markdown(index=False), ""]
    checks = []
    for pods in sorted(frame["pods"].unique()):
        sub = frame[frame["pods"] == pods].groupby("impl")[["up_s", "down_s"]].mean()
        size = frame[frame["pods"] == pods].iloc[0]
        label = f"{size['nodes']}x{size['pods_per_node']}"
        for impl in (i for i in impls if i != "mininet" and i in sub.index):
            up, down = sub.loc[impl, "up_s"], sub.loc[impl, "down_s"]
            line = f"- {label} {impl}: up {up:.2f} s, down {down:.2f} s"
            if "mininet" in sub.index:
                ru, rd = sub.loc["mininet", "up_s"] / up, sub.loc["mininet", "down_s"] / down
                line += f"; vs plain Mininet: bring-up {ru:.2f}x, teardown {rd:.2f}x faster"
                if label == "100x10":
                    checks.append((f"{impl} 100x10 bring-up {ru:.2f}x faster than mininet",
                                   ru >= TARGETS["up_ratio"]))
                    checks.append((f"{impl} 100x10 teardown {rd:.2f}x faster than mininet",
                                   rd >= TARGETS["down_ratio"]))
            if label == "100x10":
                checks.append((f"{impl} 100x10 up in {up:.2f} s (<= 6 s)", up <= TARGETS["up_s"]))
                checks.append((f"{impl} 100x10 down in {down:.2f} s (<= 3 s)",
                               down <= TARGETS["down_s"]))
            lines.append(line)
    if not tp.empty:
        lines += ["", "## Data path (iperf3 TCP, one stream; medians of the rounds)", ""]
        piv = tp.pivot_table(index=["impl", "nodes", "pods_per_node"], columns="path",
                             values="throughput_bps", aggfunc="median")
        for key, row in piv.iterrows():
            if {"node-node", "pod-cross-node"} <= set(row.index):
                ratio = row["pod-cross-node"] / row["node-node"]
                lines.append(f"- {key[0]} {key[1]}x{key[2]}: node-node "
                             f"{row['node-node'] / 1e9:.2f} Gbit/s, pod-pod cross-node "
                             f"{row['pod-cross-node'] / 1e9:.2f} Gbit/s = {ratio:.2f}x")
                checks.append((f"{key[0]} {key[1]}x{key[2]} pod-pod {ratio:.2f}x node-node "
                               "(>= 0.80)", ratio >= TARGETS["datapath"]))
    if checks:
        lines += ["", "## Targets (issue 5)", ""]
        lines += [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/bringup.py", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x10,20x10",
                    help="comma-separated NODESxPODS_PER_NODE (default 10x10,20x10)")
    ap.add_argument("--impl", default="fast,cni,mininet", help="which implementations")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--throughput", type=int, default=3, metavar="SECONDS",
                    help="iperf3 seconds per data-path measurement (0: none; default 3)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes.split(",")]
        if any(len(size) != 2 or min(size) < 1 for size in sizes):
            raise ValueError
    except ValueError:
        ap.error(f"--sizes: expected NODESxPODS, e.g. 10x10, not {args.sizes!r}")
    impls = args.impl.split(",")
    unknown = set(impls) - {"fast", "cni", "mininet"}
    if unknown:
        ap.error(f"--impl: unknown {', '.join(sorted(unknown))}")
    if args.repeat < 1:
        ap.error("--repeat: at least 1")
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
    tp_rows: list[dict[str, Any]] = []
    for nodes, per_node in sizes:
        spec = make_spec(nodes, per_node)
        for rep in range(1, args.repeat + 1):
            for impl in impls:
                measure_tp = args.throughput if rep == 1 and impl != "mininet" else 0
                with MemoryPeak() as mem:
                    if impl == "mininet":
                        up, down = run_mininet(spec, rng)
                        found: list[dict[str, Any]] = []
                    else:
                        up, down, found = run_testbed(spec, impl, rng, measure_tp)
                cleanup_s = settle_kernel()
                rows.append(dict(impl=impl, nodes=nodes, pods_per_node=per_node,
                                 pods=nodes * per_node, repeat=rep, up_s=round(up, 3),
                                 down_s=round(down, 3), peak_rss_mb=round(mem.peak_mb, 1),
                                 kernel_cleanup_s=round(cleanup_s, 2)))
                tp_rows += [dict(impl=impl, nodes=nodes, pods_per_node=per_node, **r)
                            for r in found]
                tp_text = "".join(f"; {r['path']} {r['throughput_bps'] / 1e9:.1f} Gbit/s"
                                  for r in found)
                print(f"{impl:8} {nodes:4}x{per_node:<3} r{rep}: up {up:6.2f} s, "
                      f"down {down:6.2f} s, peak +{mem.peak_mb:7.1f} MB"
                      f", then {cleanup_s:.1f} s of the kernel's cleanup{tp_text}", flush=True)
                atomic_write(out / "bringup.csv",
                             pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
                atomic_write(out / "throughput.csv",
                             pd.DataFrame(tp_rows, columns=TP_COLUMNS).to_csv(index=False))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    tp = pd.DataFrame(tp_rows, columns=TP_COLUMNS)
    atomic_write(out / "bringup.png", plot(frame))
    text = report(frame, tp, impls)
    atomic_write(out / "report.md", text)
    print(text)
    print(f"wrote {out}/: bringup.csv, throughput.csv, bringup.png, report.md, metadata.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
