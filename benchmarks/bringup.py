#!/usr/bin/env python3
"""Bring-up and teardown of pods at scale, three implementations measured in one run.

    sudo .venv/bin/python benchmarks/bringup.py                       # 10x10 and 20x10
    sudo .venv/bin/python benchmarks/bringup.py --sizes 100x10 --repeat 1

    fast     this testbed, pods wired in-process over netlink (testbed.fastwire)
    cni      this testbed, pods wired by the real CNI plugins (the fidelity reference)
    mininet  the peer approach: every pod a plain Mininet host on a per-node Linux bridge,
             nodes and a router as plain hosts, Mininet's own start and stop

up_s runs until every pod exists and a sample of cross-node pod pairs answers a ping;
down_s until the network is gone. peak_rss_mb is the peak rise of the machine's used
memory (MemTotal - MemAvailable, sampled every 50 ms) over its level before the run: it
counts every process and the kernel's own structures, not only this Python process.
Writes <out>/bench-<time>/bringup.csv and bringup.png and prints the ratios to mininet.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed import deps  # noqa: E402
from testbed.cluster import Cluster  # noqa: E402
from testbed.results import atomic_write  # noqa: E402
from testbed.spec import ClusterSpec, parse_spec  # noqa: E402

COLUMNS = ["impl", "nodes", "pods_per_node", "pods", "repeat", "up_s", "down_s", "peak_rss_mb"]
SAMPLE_PAIRS = 5


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


def make_spec(nodes: int, pods_per_node: int) -> ClusterSpec:
    underlay_prefix = 24 if nodes < 250 else 22
    return parse_spec({
        "name": f"bench-{nodes}x{pods_per_node}", "cluster_cidr": "10.0.0.0/14",
        "underlay": f"10.100.0.0/{underlay_prefix}",
        "nodes": [{"name": f"n{i}", "pods": pods_per_node} for i in range(nodes)],
    }, "benchmark")


def sample_pairs(pods: list[tuple[str, str]], rng: random.Random) -> list[tuple[int, int]]:
    """Indexes of up to SAMPLE_PAIRS (src, dst) pod pairs on different nodes."""
    pairs = [(i, j) for i in range(len(pods)) for j in range(len(pods))
             if pods[i][1] != pods[j][1]]
    return rng.sample(pairs, min(SAMPLE_PAIRS, len(pairs)))


def run_testbed(spec: ClusterSpec, wiring: str, rng: random.Random) -> tuple[float, float]:
    cluster = Cluster(spec, wiring=wiring)
    t0 = time.monotonic()
    try:
        cluster.start()
        pods = [(p.name, p.node) for p in cluster.pods.values()]
        for i, j in sample_pairs(pods, rng):
            res = cluster.pod(pods[i][0]).exec(["ping", "-c1", "-W2",
                                                cluster.endpoint_ip(pods[j][0])])
            if not res.ok:
                raise RuntimeError(f"{wiring}: {pods[i][0]} cannot reach {pods[j][0]}")
        up = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        cluster.stop()
    return up, time.monotonic() - t1


def run_mininet(spec: ClusterSpec, rng: random.Random) -> tuple[float, float]:
    """The peer approach, built with Mininet's own API only (stop() included)."""
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge

    from testbed.addressing import plan

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
        for node_plan, k in zip(p.nodes, range(len(p.nodes)), strict=True):
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/bringup.py", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x10,20x10",
                    help="comma-separated NODESxPODS_PER_NODE (default 10x10,20x10)")
    ap.add_argument("--impl", default="fast,cni,mininet", help="which implementations")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes: expected NODESxPODS, e.g. 10x10, not {args.sizes!r}")
    impls = args.impl.split(",")
    unknown = set(impls) - {"fast", "cni", "mininet"}
    if unknown:
        ap.error(f"--impl: unknown {', '.join(sorted(unknown))}")
    deps.check_all()
    rng = random.Random(args.seed)
    out = args.out / time.strftime("bench-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True)
    rows = []
    for nodes, per_node in sizes:
        spec = make_spec(nodes, per_node)
        for rep in range(1, args.repeat + 1):
            for impl in impls:
                with MemoryPeak() as mem:
                    up, down = (run_mininet(spec, rng) if impl == "mininet"
                                else run_testbed(spec, impl, rng))
                row = dict(impl=impl, nodes=nodes, pods_per_node=per_node,
                           pods=nodes * per_node, repeat=rep, up_s=round(up, 3),
                           down_s=round(down, 3), peak_rss_mb=round(mem.peak_mb, 1))
                rows.append(row)
                print(f"{impl:8} {nodes:4}x{per_node:<3} r{rep}: up {up:6.2f} s, "
                      f"down {down:6.2f} s, peak +{mem.peak_mb:7.1f} MB", flush=True)
                frame = pd.DataFrame(rows, columns=COLUMNS)
                atomic_write(out / "bringup.csv", frame.to_csv(index=False))
                time.sleep(1)  # let the kernel finish destroying namespaces
    frame = pd.DataFrame(rows, columns=COLUMNS)
    atomic_write(out / "bringup.png", plot(frame))
    means = frame.groupby(["pods", "impl"])[["up_s", "down_s", "peak_rss_mb"]].mean()
    print(means.round(2).to_string())
    if "mininet" in impls:
        for pods in sorted(frame["pods"].unique()):
            base = means.loc[(pods, "mininet")]
            for impl in (i for i in impls if i != "mininet"):
                m = means.loc[(pods, impl)]
                print(f"{pods} pods, {impl} vs mininet: bring-up {base['up_s'] / m['up_s']:.2f}x "
                      f"faster, teardown {base['down_s'] / m['down_s']:.2f}x faster")
    print(f"wrote {out / 'bringup.csv'} and {out / 'bringup.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
