#!/usr/bin/env python3
"""Why pod-to-pod across nodes is slower than node-to-node: the paths taken apart, in
interleaved rounds on one cluster, with where the CPU time went.

    sudo .venv/bin/python benchmarks/datapath.py                     # two-node, 5 rounds
    sudo .venv/bin/python benchmarks/datapath.py --rounds 9 --seconds 3

Paths, each one iperf3 TCP stream, client and server pinned to CPUs 0 and 1 (`-A 0,1`,
as the default experiment pins them), in the same order every round:

    node-node              node-1 -> node-2 on the underlay: one veth pair, the bridge,
                           one more pair (the baseline of every ratio)
    node-node-via-router   the same two nodes with a /32 route each way via the router
                           (ICMP redirects off on all three): the underlay twice and the
                           router's forwarding, as a pod's packets take it
    pod-same-node          pod-1 -> pod-2 on node-1: veth, cbr0, veth
    pod-cross-node         pod-1 -> pod-3: the pods' veths and bridges, both nodes'
                           forwarding and iptables, the underlay twice and the router
    node-node-unpinned,    the first and the fourth again without `-A`: where the
    pod-cross-node-unpinned  scheduler puts client, server and softirq work

Per measurement: throughput, retransmits, iperf3's CPU figures, from /proc/stat over
the same seconds each CPU's busy share and softirq share, and from /proc/net/softnet_stat
the packets dropped at a full input backlog and the receive softirq's budget run-outs.
Per path, the paired ratio to node-node in the same round: its median and bootstrap 95 %
interval (testbed.results.stats). Writes <out>/bench-datapath-<time>/: datapath.csv (tidy),
report.md, metadata.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
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
from testbed.model.load import load_spec  # noqa: E402
from testbed.model.names import ROUTER  # noqa: E402
from testbed.results.rundir import atomic_write  # noqa: E402
from testbed.results.stats import bootstrap_ci, clip  # noqa: E402

PATHS = ("node-node", "node-node-via-router", "pod-same-node", "pod-cross-node",
         "node-node-unpinned", "pod-cross-node-unpinned")
BASELINE = "node-node"
PORT = 5301
COLUMNS = ["round", "path", "metric", "value"]


def cpu_times() -> list[tuple[int, int, int]]:
    """(busy, softirq, total) jiffies of each CPU, from /proc/stat."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in fields[:8]]
                idle = v[3] + v[4]
                out.append((sum(v) - idle, v[6], sum(v)))
    return out


def softnet() -> tuple[int, int]:
    """(packets dropped because a CPU's input backlog was full, times the receive
    softirq ran out of budget), summed over the CPUs: /proc/net/softnet_stat's second and
    third columns. Every veth hop queues to that backlog (netdev_max_backlog long)."""
    dropped = squeezed = 0
    with open("/proc/net/softnet_stat") as f:
        for line in f:
            fields = line.split()
            dropped += int(fields[1], 16)
            squeezed += int(fields[2], 16)
    return dropped, squeezed


def cpu_shares(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]]
               ) -> dict[str, float]:
    """Each CPU's busy and softirq share between two /proc/stat readings."""
    out = {}
    for i, ((b0, s0, t0), (b1, s1, t1)) in enumerate(zip(a, b)):
        total = max(t1 - t0, 1)
        out[f"cpu{i}_busy"] = (b1 - b0) / total
        out[f"cpu{i}_softirq"] = (s1 - s0) / total
    return out


def measure(run: Any, server: str, port: int, seconds: int,
            pin: tuple[int, int] | None) -> dict[str, float]:
    """One iperf3 run (retried while its server starts) with the CPU shares around it."""
    deadline = time.monotonic() + 5
    while True:
        before, net_before = cpu_times(), softnet()
        res = run(client_argv(server, port, seconds, pin=pin), timeout=seconds + 20)
        after, net_after = cpu_times(), softnet()
        if "Connection refused" not in res.stdout + res.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    try:
        result = parse_iperf3_json(res.stdout)
    except TestbedError as exc:
        raise RuntimeError(f"{server}:{port}: {exc} {res.stderr.strip()[:200]}") from None
    return {**result.metrics(), **cpu_shares(before, after),
            "backlog_drops": net_after[0] - net_before[0],
            "softirq_squeezed": net_after[1] - net_before[1]}


def via_router(c: Cluster, a: str, b: str, on: bool) -> None:
    """A /32 route each way between nodes a and b via the router (on), or none (off);
    ICMP redirects off on all three, or the router would teach the nodes the short way."""
    router_ip = str(c.plan.router_ip.ip)
    for node, peer in ((a, b), (b, a)):
        verb = "replace" if on else "del"
        argv = ["ip", "route", verb, f"{c.endpoint_ip(peer)}/32"]
        res = c.exec_node(node, argv + (["via", router_ip] if on else []))
        if not res.ok and on:
            raise RuntimeError(f"{node}: {' '.join(argv)}: {res.stderr.strip()}")
    for host in (ROUTER, a, b):
        for key in ("send_redirects", "accept_redirects"):
            c.exec_node(host, ["sysctl", "-qw", f"net.ipv4.conf.all.{key}=0"])


def paired(frame: pd.DataFrame, baseline: str = BASELINE,
           paths: tuple[str, ...] = PATHS) -> pd.DataFrame:
    """Per path: rounds, median of the per-round ratio to the baseline, its interval."""
    tp = frame[frame["metric"] == "throughput_bps"].pivot_table(
        index="round", columns="path", values="value")
    rows = []
    for path in [p for p in paths if p in tp.columns and p != baseline]:
        if baseline not in tp.columns:
            break
        ratios = (tp[path] / tp[baseline]).dropna().tolist()
        if not ratios:
            continue
        low, high = clip(bootstrap_ci(ratios), "ratio")
        rows.append({"path": path, "rounds": len(ratios), "median": float(np.median(ratios)),
                     "ci95_low": low, "ci95_high": high,
                     "per_round": ", ".join(f"{r:.2f}" for r in ratios)})
    return pd.DataFrame(rows, columns=["path", "rounds", "median", "ci95_low", "ci95_high",
                                       "per_round"])


def report(frame: pd.DataFrame, cpus: int) -> str:
    med = frame.groupby(["path", "metric"])["value"].median().unstack("metric")
    med = med.reindex([p for p in PATHS if p in med.index])
    cols = ["throughput_bps", "retransmits", "backlog_drops", "softirq_squeezed",
            "cpu_client_pct", "cpu_server_pct"]
    cols += [f"cpu{i}_{k}" for i in range(cpus) for k in ("busy", "softirq")]
    table = med[[c for c in cols if c in med.columns]].copy()
    table["throughput_bps"] = (table["throughput_bps"] / 1e9).round(2)
    table = table.rename(columns={"throughput_bps": "Gbit/s"}).round(2)
    ratios = paired(frame)
    same_route = paired(frame, "node-node-via-router", ("pod-cross-node",))
    return "\n".join([
        "# Data path taken apart", "",
        "Medians over the rounds (CPU shares: busy and softirq share of each CPU over the "
        "same seconds, from /proc/stat):", "", table.reset_index().to_markdown(index=False),
        "", "Paired ratio to node-node (same round), median and bootstrap 95 % interval:",
        "", ratios.to_markdown(index=False, floatfmt=".3f"), "",
        "Pod-cross-node over node-node through the router (the same route, the pod network's "
        "own cost):", "", same_route.to_markdown(index=False, floatfmt=".3f"), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/datapath.py",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--topology", type=Path, default=ROOT / "topologies" / "two-node.yaml")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    if args.rounds < 2 or args.seconds < 1:
        ap.error("--rounds at least 2 (a ratio needs an interval), --seconds at least 1")
    preflight.check_all()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        ap.error("pinning client and server apart needs two CPUs")
    pin = (cpus[0], cpus[1])
    out = args.out / time.strftime("bench-datapath-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True)
    atomic_write(out / "metadata.json", json.dumps({
        "command": " ".join(sys.argv), "kernel": platform.release(), "cpus": os.cpu_count(),
        "pin": pin, "rounds": args.rounds, "seconds": args.seconds,
        "topology": str(args.topology),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    rows: list[dict[str, Any]] = []
    with Cluster(load_spec(args.topology), wiring="fast") as c:
        by_node = c.pods_by_node()
        n1, n2 = c.node_names[:2]
        p_src, p_same, p_cross = by_node[n1][0], by_node[n1][1], by_node[n2][0]
        servers = [c.popen_node(n2, server_argv(PORT))]
        c.add_container(p_same, "iperf-server", server_argv(PORT + 1))
        c.add_container(p_cross, "iperf-server", server_argv(PORT + 2))
        node = lambda a, timeout: c.exec_node(n1, a, timeout=timeout)  # noqa: E731
        pod = lambda a, timeout: c.pod(p_src).exec(a, timeout=timeout)  # noqa: E731
        try:
            for rnd in range(1, args.rounds + 1):
                for path in PATHS:
                    if path == "node-node-via-router":
                        via_router(c, n1, n2, True)
                    try:
                        if path.startswith("node-node"):
                            found = measure(node, c.endpoint_ip(n2), PORT, args.seconds,
                                            None if path.endswith("unpinned") else pin)
                        elif path == "pod-same-node":
                            found = measure(pod, c.endpoint_ip(p_same), PORT + 1,
                                            args.seconds, pin)
                        else:
                            found = measure(pod, c.endpoint_ip(p_cross), PORT + 2,
                                            args.seconds,
                                            None if path.endswith("unpinned") else pin)
                    finally:
                        if path == "node-node-via-router":
                            via_router(c, n1, n2, False)
                    rows += [{"round": rnd, "path": path, "metric": k, "value": v}
                             for k, v in found.items()]
                    print(f"r{rnd} {path:24} {found['throughput_bps'] / 1e9:6.2f} Gbit/s  "
                          f"retr {found.get('retransmits', 0):5.0f} drops "
                          f"{found['backlog_drops']:5d}  "
                          + "  ".join(f"cpu{i} {found[f'cpu{i}_busy']:.2f}"
                                      f"/{found[f'cpu{i}_softirq']:.2f}"
                                      for i in range(len(cpu_times()))), flush=True)
                atomic_write(out / "datapath.csv",
                             pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
        finally:
            for s in servers:
                procs.stop_popen(s)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    text = report(frame, len(cpu_times()))
    atomic_write(out / "report.md", text)
    print(text)
    print(f"wrote {out}/: datapath.csv, report.md, metadata.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
