"""The benchmark's pure parts: pair sampling and the report's ratios and target checks."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bringup  # noqa: E402


def test_sample_pairs_are_cross_node_and_bounded() -> None:
    rng = random.Random(1)
    pods = [(f"p{i}", f"n{i % 250}") for i in range(5000)]
    pairs = bringup.sample_pairs(pods, rng)
    assert len(pairs) == bringup.SAMPLE_PAIRS == len(set(pairs))
    assert all(pods[i][1] != pods[j][1] for i, j in pairs)
    assert bringup.sample_pairs([("a", "n0"), ("b", "n0")], rng) == []
    assert sorted(bringup.sample_pairs([("a", "n0"), ("b", "n1")], rng)) == [(0, 1), (1, 0)]


def rows(impl: str, up: float, down: float) -> list[dict]:
    return [dict(impl=impl, nodes=100, pods_per_node=10, pods=1000, repeat=r, up_s=up,
                 down_s=down, peak_rss_mb=10.0, kernel_cleanup_s=1.0) for r in (1, 2)]


def test_report_ratios_and_targets() -> None:
    frame = pd.DataFrame(rows("fast", 5.0, 0.5) + rows("cni", 8.0, 0.5)
                         + rows("mininet", 30.0, 40.0), columns=bringup.COLUMNS)
    tp = pd.DataFrame([
        dict(impl="fast", nodes=100, pods_per_node=10, path=path, src="x", dst="y", round=r,
             throughput_bps=bps)
        for path, values in (("node-node", (40e9, 20e9, 41e9)),
                             ("pod-cross-node", (30e9, 31e9, 1e9)))
        for r, bps in enumerate(values, 1)
    ], columns=bringup.TP_COLUMNS)
    text = bringup.report(frame, tp, ["fast", "cni", "mininet"])
    assert "100x10 fast: up 5.00 s, down 0.50 s; vs plain Mininet: bring-up 6.00x, " \
           "teardown 80.00x faster" in text
    assert "- [x] fast 100x10 up in 5.00 s (<= 6 s)" in text
    assert "- [ ] cni 100x10 up in 8.00 s (<= 6 s)" in text
    assert "- [ ] cni 100x10 bring-up 3.75x faster than mininet" in text
    assert "- [ ] fast 100x10 pod-pod 0.75x node-node (>= 0.80)" in text  # medians 30/40
