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


def rows(impl: str, nodes: int, per_node: int, up: float, down: float,
         wall: float = float("nan")) -> list[dict]:
    return [dict(impl=impl, nodes=nodes, pods_per_node=per_node, pods=nodes * per_node,
                 repeat=r, up_s=up, down_s=down, wall_s=wall, peak_rss_mb=10.0,
                 kernel_cleanup_s=1.0, init_cpu_s=0.25) for r in (1, 2)]


def test_report_ratios_and_targets() -> None:
    frame = pd.DataFrame(
        rows("outside", 100, 0, 2.0, 0.5, 3.0) + rows("outside", 100, 10, 6.0, 1.0, 8.0)
        + rows("floor", 100, 10, 1.8, 0.8)
        + rows("outside", 500, 0, 20.0, 2.0, 21.0) + rows("outside", 500, 20, 90.0, 9.0, 99.0)
        + rows("floor", 500, 20, 18.0, 8.0)
        + rows("fast", 100, 10, 5.0, 0.5) + rows("cni", 100, 10, 12.0, 0.5)
        + rows("mininet", 100, 10, 30.0, 40.0), columns=bringup.COLUMNS)
    tp = pd.DataFrame([
        dict(impl="fast", nodes=100, pods_per_node=10, path=path, src="x", dst="y", round=r,
             throughput_bps=bps)
        for path, values in (("node-node", (40e9, 20e9, 40e9)),
                             ("pod-cross-node", (36e9, 19e9, 30e9)))
        for r, bps in enumerate(values, 1)
    ], columns=bringup.TP_COLUMNS)
    stages = pd.DataFrame([dict(impl="outside", nodes=100, pods_per_node=10, repeat=1,
                                stage="pods.spawn_s", seconds=1.5),
                           dict(impl="outside", nodes=100, pods_per_node=10, repeat=1,
                                stage="pods_s", seconds=3.0),
                           dict(impl="outside", nodes=500, pods_per_node=20, repeat=1,
                                stage="pods_s", seconds=36.0)],
                          columns=bringup.STAGE_COLUMNS)
    text = bringup.report(frame, tp, stages)
    # 8 / (1.8 + 3) = 1.67; teardown 1.0 / 0.8 = 1.25; per pod (8 - 3) / 1000 = 5 ms
    assert "outside 8.00 s = 1.67x (floor 1.80 s + nodes and router alone 3.00 s)" in text
    assert "- [x] 100x10 from the outside 1.67x the floor plus nodes alone (<= 2)" in text
    assert "- [x] 100x10 teardown 1.25x the floor's deletion (<= 1.5)" in text
    assert "5.00 ms a pod (floor 1.80)" in text
    # the pods' share 1.0 - 0.5 = 0.5 s = 0.6x of 0.8; end to end (cleanup 1.0 less the
    # 0.3 s quiet window): 1.0 + 0.7 against 0.8 + 0.7; the nodes alone 0.5 + 0.7
    assert "the pods' share 0.50 s = 0.6x; until the kernel has destroyed everything " \
           "1.70 s against the floor's 1.50 s (1.1x); of which the nodes and router alone " \
           "1.20 s" in text
    # 500x20: (99 - 21) / 10000 = 7.8 ms a pod = 1.56x; nodes alone 21 / 3 = 7x
    # the floor: 1.8 ms a pod at 1000, 1.8 at 10,000 (18 s): its own growth 1.00x
    # inside, the pods step: 3.0 ms a pod at 1000, 3.6 at 10,000 (36 s): 1.20x
    assert "- [ ] 500x20: 7.80 ms a pod = 1.56x that at 1000 pods (<= 1.3; the floor's " \
           "own: 1.00x; inside, the pods step alone: 3.60 ms = 1.20x)" in text
    assert "- [ ] 500 nodes alone 21.00 s = 7.00x 100 nodes alone (<= 6)" in text
    assert "- [x] 100x10 real plugins 2.40x the fast path (<= 3)" in text
    assert "fast in-process 5.00 s, plain Mininet 30.00 s (6.00x)" in text
    # paired by round: 0.90, 0.95, 0.75 -> median 0.90, not 30/40 of the medians
    assert "paired ratio median 0.90" in text and "rounds 0.90, 0.95, 0.75" in text
    assert "- [x] fast 100x10 data path: paired ratio 0.90 [" in text
    assert "| pods.spawn_s |" in text
    assert "init_cpu_s" in text and "0.25" in text  # pid 1's CPU beside each run


def test_sizes_and_the_floors_batches() -> None:
    assert bringup.parse_sizes("100x10,500x0") == [(100, 10), (500, 0)]
    for bad in ("100", "0x10", "10x-1", "axb"):
        try:
            bringup.parse_sizes(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    add, delete = bringup.floor_batches(2)
    assert add.splitlines() == [
        "netns add ktb-floor-0", "link add ktbf0 type veth peer name eth0 netns ktb-floor-0",
        "netns add ktb-floor-1", "link add ktbf1 type veth peer name eth0 netns ktb-floor-1"]
    assert delete.splitlines() == ["netns del ktb-floor-0", "netns del ktb-floor-1"]
    assert bringup.run_floor(0) == (0.0, 0.0)


def test_the_data_path_is_paired_round_by_round() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import datapath

    values = {"node-node": (10e9, 20e9, 16e9), "node-node-via-router": (9e9, 17e9, 14e9),
              "pod-cross-node": (9e9, 16e9, 14e9)}
    frame = pd.DataFrame([{"round": r, "path": p, "metric": "throughput_bps", "value": v}
                          for p, vs in values.items() for r, v in enumerate(vs, 1)],
                         columns=datapath.COLUMNS)
    ratios = datapath.paired(frame).set_index("path")
    assert ratios.loc["pod-cross-node", "per_round"] == "0.90, 0.80, 0.88"
    assert ratios.loc["pod-cross-node", "median"] == 0.875
    same = datapath.paired(frame, "node-node-via-router", ("pod-cross-node",))
    assert same.iloc[0]["per_round"] == "1.00, 0.94, 1.00"
    assert datapath.paired(frame, "missing").empty
