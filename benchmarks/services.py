#!/usr/bin/env python3
"""What Services cost, as the number of services grows, in kube-proxy's iptables and
nftables modes, measured in one run.

    sudo .venv/bin/python benchmarks/services.py                        # 10,100,1000,5000
    sudo .venv/bin/python benchmarks/services.py --sizes 10,100 --modes iptables

For each mode and number of services, a two-node cluster comes up with that many
services, all selecting one web server on node-2 (python3 -m http.server), and a client
on node-1. Then, on that cluster:

    first_sync_s   node-1's kube-proxy's first sync, a full one (render, apply the whole set)
    noop_sync_s    a partial sync with nothing changed (kube-proxy's periodic sync)
    change_sync_s  a partial sync after one service's endpoints changed (a pod added)
                   (both `--repeat` times, the median)
    rules          lines of the first sync's payload
    connect_ms     a new TCP connection and one HTTP request, median over `--connections`,
                   to the first service of KUBE-SERVICES' order, to the last one (iptables
                   mode walks that chain rule by rule; nftables looks the address up in a
                   map), and straight to the server pod: the baseline of the same run
    service_hop_ms the service's median minus the direct one; ratio the quotient

Rounds alternate the three targets so that drift on a noisy machine hits them alike.
Writes <out>/bench-services-<time>/: services.csv (tidy), report.md, services.png and
metadata.json (machine, versions, arguments).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bringup import metadata  # noqa: E402
from experiments.framework import probes  # noqa: E402
from testbed.cluster import Cluster, preflight  # noqa: E402
from testbed.errors import TestbedError  # noqa: E402
from testbed.measure.services import parse_client  # noqa: E402
from testbed.model.load import parse_spec  # noqa: E402
from testbed.model.spec import ClusterSpec  # noqa: E402
from testbed.results.plots import figure_png  # noqa: E402
from testbed.results.rundir import atomic_write  # noqa: E402

MODES = ("iptables", "nftables")
SERVICE_CIDR = "10.96.0.0/16"  # room for 5000 services and more
WEB_PORT = 8080


def make_spec(services: int, mode: str) -> ClusterSpec:
    return parse_spec({
        "name": "svc-bench", "cluster_cidr": "10.0.0.0/14", "underlay": "10.100.0.0/24",
        "service_cidr": SERVICE_CIDR, "kube_proxy_mode": mode,
        "nodes": [{"name": "node-1", "pods": [{"name": "client"}]},
                  {"name": "node-2", "pods": [{"name": "web", "labels": {"app": "web"},
                                               "containers": [{"name": "web", "command":
                                                               f"python3 -m http.server "
                                                               f"{WEB_PORT}"}]}]}],
        # svc-00000 selects the pods the benchmark adds and removes (one service that
        # changes); every other service the web server
        "services": [{"name": f"svc-{i:05d}", "selector": {"app": "web" if i else "changing"},
                      "ports": [{"port": 80, "targetPort": WEB_PORT}]}
                     for i in range(max(services, 2))],
    }, "benchmarks/services.py")


def syncs(cluster: Cluster, node: str) -> list[dict[str, Any]]:
    path = cluster.services.dir / f"syncs-{node}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def connect_ms(cluster: Cluster, host: str, port: int, count: int, tag: str) -> list[float]:
    """Each connection's time (connect, request, answer, close), in ms; all must succeed."""
    res = cluster.pod("client").exec(probes.http_loop(host, port, count, 0.0, tag),
                                     timeout=count * 2 + 30)
    _, conns = parse_client(res.stdout)
    failed = [c for c in conns if not c.ok]
    if len(conns) != count or failed:
        raise TestbedError(f"{tag}: {len(conns) - len(failed)}/{count} connections to "
                           f"{host}:{port} succeeded ({failed[0].error if failed else res.stderr})")
    return [c.ms for c in conns]


def measure(mode: str, services: int, repeat: int, connections: int) -> list[dict[str, Any]]:
    spec = make_spec(services, mode)
    rows: list[dict[str, Any]] = []

    def row(metric: str, value: float, rep: int = 0) -> None:
        rows.append({"mode": mode, "services": services, "repeat": rep, "metric": metric,
                     "value": float(value)})

    with Cluster(spec, progress=lambda m: print(f"  {m}", file=sys.stderr)) as c:
        controller = c.services
        row("up_s", c.timings["up_s"])
        first = next(s for s in syncs(c, "node-1") if not s["error"])
        assert first["full"], first
        row("first_sync_s", first["sync_s"])
        row("rules", first["rules"])

        def synced(metric: str, generation: int, rep: int) -> None:
            controller.wait_synced()
            done = [s for s in syncs(c, "node-1") if s["generation"] == generation]
            assert not done[-1]["full"], done[-1]  # a partial sync, as kube-proxy's
            row(metric, done[-1]["sync_s"], rep)

        for rep in range(1, repeat + 1):
            synced("noop_sync_s", controller.force_sync(), rep)
            c.add_pod("node-2", f"extra-{rep}", labels={"app": "changing"})
            synced("change_sync_s", controller.generation, rep)
            c.remove_pod(f"extra-{rep}")
            controller.wait_synced()
        names = sorted(s.name for s in spec.services)[1:]  # svc-00000 has no server
        targets = {"first": (str(controller.service(names[0]).cluster_ip), 80),
                   "last": (str(controller.service(names[-1]).cluster_ip), 80),
                   "direct": (c.endpoint_ip("web"), WEB_PORT)}
        samples: dict[str, list[float]] = {k: [] for k in targets}
        per_round = max(connections // 3, 1)
        for rnd in range(3):  # alternate the targets
            order = list(targets) if rnd % 2 == 0 else list(reversed(list(targets)))
            for name in order:
                host, port = targets[name]
                samples[name] += connect_ms(c, host, port, per_round, f"{name}{rnd}")
        for name, values in samples.items():
            row(f"connect_ms_{name}", statistics.median(values))
        direct = statistics.median(samples["direct"])
        for name in ("first", "last"):
            service = statistics.median(samples[name])
            row(f"service_hop_ms_{name}", service - direct)
            row(f"service_ratio_{name}", service / direct)
    return rows


def report(frame: pd.DataFrame, meta: dict[str, Any]) -> str:
    wide = frame.groupby(["mode", "services", "metric"])["value"].median().unstack("metric")
    cols = ["up_s", "first_sync_s", "noop_sync_s", "change_sync_s", "rules",
            "connect_ms_direct",
            "connect_ms_first", "connect_ms_last", "service_hop_ms_first",
            "service_hop_ms_last", "service_ratio_last"]
    table = wide[[c for c in cols if c in wide]].round(4)
    lines = ["# Services benchmark", "",
             f"{meta['cpus']} CPUs, kernel {meta['kernel']}, started {meta['started_utc']}, "
             f"commit {meta['git_commit'][:10]}.", "",
             "Medians. `service_hop_ms` is the service's connection time minus the direct "
             "one (the same server, the same run); `service_ratio_last` their quotient for "
             "the service written last.", "", table.to_markdown(), ""]
    if {"iptables", "nftables"} <= set(frame["mode"]):
        for metric in ("first_sync_s", "change_sync_s"):
            sync = wide[metric].unstack("mode")
            ratio = (sync["nftables"] / sync["iptables"]).round(3)
            lines += [f"nftables `{metric}` as a ratio to iptables' at the same size: "
                      + ", ".join(f"{n} services {r}" for n, r in ratio.items()), ""]
    lines += ["![services.png](services.png)", ""]
    return "\n".join(lines)


def plot(frame: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = frame.groupby(["mode", "services", "metric"])["value"].median().unstack("metric")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"iptables": "#2e86c1", "nftables": "#28a745"}  # one colour a mode
    for mode, part in wide.groupby(level="mode"):
        n = part.index.get_level_values("services")
        color = colors.get(str(mode))
        a.plot(n, part["first_sync_s"], marker="o", color=color, label=f"{mode} full sync")
        a.plot(n, part["change_sync_s"], marker="x", linestyle=":", color=color,
               label=f"{mode} one service changed")
        b.plot(n, part["service_hop_ms_last"], marker="o", color=color,
               label=f"{mode}, last service")
        b.plot(n, part["service_hop_ms_first"], marker="x", linestyle=":", color=color,
               label=f"{mode}, first service")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("services")
        ax.legend(fontsize=8)
    a.set_yscale("log")
    a.set_ylabel("kube-proxy sync (s)")
    b.set_ylabel("service hop: extra ms per connection")
    b.axhline(0, color="#999999", linewidth=0.8)
    fig.suptitle("kube-proxy's cost as services grow")
    fig.tight_layout()
    return figure_png(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/services.py",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,100,1000,5000",
                    help="comma-separated numbers of services (default 10,100,1000,5000)")
    ap.add_argument("--modes", default=",".join(MODES), help="iptables, nftables or both")
    ap.add_argument("--repeat", type=int, default=3, help="resyncs per size (default 3)")
    ap.add_argument("--connections", type=int, default=150,
                    help="connections per target and size (default 150)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        if min(sizes) < 1 or max(sizes) > 20000:
            raise ValueError
    except ValueError:
        ap.error(f"--sizes: numbers of services in 1..20000, not {args.sizes!r}")
    modes = args.modes.split(",")
    if set(modes) - set(MODES):
        ap.error(f"--modes: choose from {', '.join(MODES)}")
    if args.repeat < 1 or args.connections < 3:
        ap.error("--repeat at least 1, --connections at least 3")
    preflight.check_all()
    out = args.out / time.strftime("bench-services-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True)
    meta = metadata(args)
    atomic_write(out / "metadata.json", json.dumps(meta, indent=2) + "\n")
    rows: list[dict[str, Any]] = []
    for services in sizes:
        for mode in modes:
            print(f"{mode}, {services} services", file=sys.stderr)
            rows += measure(mode, services, args.repeat, args.connections)
            frame = pd.DataFrame(rows)
            atomic_write(out / "services.csv", frame.to_csv(index=False))  # kept as it grows
    frame = pd.DataFrame(rows)
    atomic_write(out / "services.png", plot(frame))
    text = report(frame, meta)
    atomic_write(out / "report.md", text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
