"""The default experiment end to end (--quick), as `sudo python3 experiments/run.py` runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from testbed.results.rundir import COLUMNS

from .conftest import ROOT


def test_quick_run_writes_a_complete_report(quick_run) -> None:
    run_dir, res = quick_run
    assert f"report: {run_dir / 'report.md'}" in res.stdout

    df = pd.read_csv(run_dir / "measurements.csv")
    assert list(df.columns) == COLUMNS
    assert {"loss_pct", "rtt_avg_ms", "ttl", "throughput_bps"} <= set(df["metric"])
    ttl = df[df["metric"] == "ttl"].groupby("path")["value"].unique()
    assert list(ttl["pod-same-node"]) == [64]
    assert list(ttl["pod-cross-node"]) == [61]
    assert list(ttl["pod-router"]) == [63]
    assert (df[df["metric"] == "loss_pct"]["value"] == 0).all()
    tp = df[df["metric"] == "throughput_bps"].set_index("path")["value"]
    assert set(tp.index) == {"pod-localhost", "pod-same-node", "pod-cross-node", "node-node"}
    assert (tp > 1e8).all()  # > 100 Mbit/s on every path: real traffic flowed

    # faults: the uplink, the node and the router route each broken for 1 s and put back
    rec = df[df["metric"] == "recovery_s"]
    assert set(rec["experiment"]) == {"faults/uplink", "faults/node", "faults/route"}
    frozen = df[df["metric"] == "frozen"]
    assert set(frozen["experiment"]) == {"faults/node"}
    assert (frozen["value"] >= 2).all(), frozen  # the node's shell and its pod's pause
    assert ((rec["value"] > 0) & (rec["value"] < 0.5)).all(), rec
    outage = df[df["metric"] == "outage_s"]["value"]
    assert ((outage > 0.9) & (outage < 1.6)).all(), outage  # the 1 s fault, seen

    summary = pd.read_csv(run_dir / "summary.csv")
    assert {"count", "median", "mean", "std", "ci95_low", "ci95_high"} <= set(summary.columns)

    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "complete"
    assert meta["topology"]["name"] == "two-node"
    assert meta["environment"]["kernel"] and meta["git"]["commit"]
    assert meta["environment"]["debian_packages"]["frr"]
    assert len(meta["router_routes"]) == 2

    report = (run_dir / "report.md").read_text()
    assert "## Hops (reply TTL)" in report and "vs node-node" in report
    assert "## Faults: time to recover" in report and "Fidelity:" in report
    assert any((run_dir / "raw" / "throughput").iterdir())
    assert (run_dir / "throughput.png").stat().st_size > 1000
    html = (run_dir / "report.html").read_text()
    # every figure embedded: the cluster, throughput, RTT, heatmap, kube-proxy killed,
    # readiness, the node-port and load-balancer paths, a node failing behind the load
    # balancer, the pod networks compared
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert len(pngs) == 10 and "cluster.png" in pngs, pngs
    assert html.count("data:image/png;base64,") == len(pngs)
    assert "<table>" in html and 'src="throughput.png"' not in html


def test_bad_topology_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncluster_cidr: 10.0.0.0/33\nnodes: []\n")
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"),
                          "--topology", str(bad), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip() == (f"error: {bad}: cluster_cidr: '10.0.0.0/33' is not a valid "
                                  "network: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 "
                                  "network")
    assert not (tmp_path / "out").exists()
