"""Paired ratios, bootstrap intervals and bounds (pure); comparing two runs is tested in
test_compare_power.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from testbed.results import report
from testbed.results import stats as st


def rows(rounds: dict[str, list[float]]) -> pd.DataFrame:
    out = []
    for path, values in rounds.items():
        for r, v in enumerate(values, 1):
            out.append({"experiment": "throughput", "repeat": r, "src": "a", "dst": "b",
                        "path": path, "metric": "throughput_bps", "value": v, "unit": "bit/s"})
    return pd.DataFrame(out)


def test_paired_ratio_pairs_rounds_not_medians() -> None:
    # the machine was twice as fast in round 2: both paths moved, their ratio did not
    df = rows({"node-node": [10e9, 20e9, 10e9], "pod-cross-node": [8e9, 16e9, 8e9]})
    ratios = st.paired_ratios(df)
    (row,) = ratios.to_dict("records")
    assert row["path"] == "pod-cross-node" and row["rounds"] == 3
    assert row["median"] == 0.8 and row["ci95_low"] == row["ci95_high"] == 0.8
    # an unpaired view would have spread: medians 8e9 / 10e9 but ratios 0.4 .. 1.6


def test_only_the_metric_and_experiment_asked_for() -> None:
    df = rows({"node-node": [10e9, 10e9, 0.0], "pod-z": [5e9, 5e9, 5e9],
               "pod-a": [20e9, 20e9, 20e9]})
    other = rows({"node-node": [1.0, 1.0, 1.0], "pod-z": [9.0, 9.0, 9.0]})
    other["metric"] = "retransmits"
    elsewhere = rows({"node-node": [1.0, 1.0, 1.0], "pod-z": [9.0, 9.0, 9.0]})
    elsewhere["experiment"] = "campaign"
    table = st.paired_ratios(pd.concat([df, other, elsewhere]))
    assert list(table.columns) == st.RATIO_COLUMNS
    assert list(table["path"]) == ["pod-a", "pod-z"]
    assert list(table["rounds"]) == [2, 2]  # the round whose baseline was 0 left out
    assert list(table["median"]) == [2.0, 0.5] and set(table["baseline"]) == {"node-node"}


def test_a_round_missing_its_baseline_is_left_out() -> None:
    df = rows({"node-node": [10e9, 10e9], "pod-same-node": [9e9, 11e9, 12e9]})
    df = pd.concat([df, pd.DataFrame([{"experiment": "throughput", "repeat": 3,
                                       "path": "node-node", "metric": "throughput_bps",
                                       "value": math.nan}])])
    pairs = st.paired(df, "throughput", "throughput_bps", "node-node")
    assert list(pairs["repeat"]) == [1, 2] and list(pairs["ratio"]) == [0.9, 1.1]


def test_bootstrap_stays_inside_the_data_and_is_reproducible() -> None:
    values = [0.8, 1.62, 0.95, 1.1, 0.85]  # as noisy as issue 14's pinned rounds
    low, high = st.bootstrap_ci(values)
    assert min(values) <= low <= np.median(values) <= high <= max(values)
    assert (low, high) == st.bootstrap_ci(values)  # fixed seed
    assert all(math.isnan(x) for x in st.bootstrap_ci([1.0]))
    assert all(math.isnan(x) for x in st.bootstrap_ci([1.0, math.nan]))
    assert st.bootstrap_ci([1.0, 3.0]) == (1.0, 3.0)  # two values are enough
    assert st.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_intervals_never_leave_the_possible_range() -> None:
    # three throughput repeats whose t interval of the mean goes below zero
    v = pd.Series([0.2e9, 9e9, 0.3e9])
    low, _ = report.ci95(v)
    assert low < 0
    assert st.clip((low, 1e10), "throughput_bps")[0] == 0.0
    assert st.clip((-5.0, 130.0), "loss_pct") == (0.0, 100.0)
    summary = report.summarize(rows({"node-node": [0.2e9, 9e9, 0.3e9]}))
    assert summary.iloc[0]["ci95_low"] == 0.0


def test_bootstrap_is_percentile_of_4999_seeded_resamples() -> None:
    # the contract that makes a report reproducible: this seed, this many resamples, the
    # 2.5th and 97.5th percentiles of the resampled medians
    values = np.random.default_rng(5).lognormal(0, 0.3, 9)
    rng = np.random.default_rng(20261127)
    medians = np.median(rng.choice(values, (4999, 9)), axis=1)
    expected = (np.percentile(medians, 2.5), np.percentile(medians, 97.5))
    assert st.bootstrap_ci(values) == expected
    # the same with a continuous statistic (the medians of 9 values are only 9 numbers)
    rng = np.random.default_rng(20261127)
    means = np.array([row.mean() for row in rng.choice(values, (4999, 9))])
    assert st.bootstrap_ci(values, np.mean) == (np.percentile(means, 2.5),
                                                 np.percentile(means, 97.5))
    assert st.RESAMPLES == 4999 and st.SEED == 20261127 and st.LEVEL == 0.95


def test_a_95_interval_is_95_not_90() -> None:
    # the bootstrap interval of a mean of 400 normal values is close to mean +- 1.96 se;
    # a 90 % interval would be 1.645 se (16 % narrower)
    x = np.random.default_rng(3).normal(10, 2, 400)
    se = x.std() / 20
    low, high = st.bootstrap_ci(x, np.mean)
    assert 0.96 < (high - low) / 2 / (1.96 * se) < 1.04
    low90, high90 = st.bootstrap_ci(x, np.mean, level=0.90)
    assert 0.96 < (high90 - low90) / 2 / (1.645 * se) < 1.04
    # and the paired ratios' interval is the 95 % one
    df = rows({"node-node": [10.0] * 9, "pod-cross-node": list(10 * x[:9] / 10)})
    row = st.paired_ratios(df).iloc[0]
    assert (row["ci95_low"], row["ci95_high"]) == st.bootstrap_ci(list(x[:9] / 10))


def test_the_report_says_how_many_rounds_and_where_iperf3_ran() -> None:
    df = rows({"node-node": [10e9, 12e9, 11e9], "pod-cross-node": [8e9, 9e9, 9.5e9],
               "pod-localhost": [20e9, 22e9, 21e9]})
    text = "\n".join(report.ratio_section(df, {"pinned": True, "client_cpu": 0,
                                               "server_cpu": 1}))
    assert "client on CPU 0, its server on CPU 1" in text
    assert "| pod-localhost " in text and "| pod-cross-node" in text
    assert text.index("pod-localhost") < text.index("| pod-cross-node")  # path order
    unpinned = "\n".join(report.ratio_section(df, {"pinned": False, "why": "one CPU"}))
    assert "not pinned (one CPU)" in unpinned
    assert report.ratio_section(rows({"node-node": [1e9]}), None) == []


def test_target_width_in_the_report() -> None:
    df = rows({"node-node": [10e9, 12e9, 11e9, 10e9], "pod-cross-node": [8e9, 9.6e9, 8.8e9,
                                                                        8e9],
               "pod-localhost": [20e9, 30e9, 15e9, 25e9]})
    text = "\n".join(report.ratio_section(df, None, target=0.1))
    assert "not met by pod-localhost" in text and "pod-cross-node" not in text.split(
        "not met by")[1]
    assert "met by every path" in "\n".join(report.ratio_section(df, None, target=2.0))
    assert "Target width" not in "\n".join(report.ratio_section(df, None))


def test_more_rounds_until_the_target_or_the_limit(monkeypatch) -> None:
    from types import SimpleNamespace

    from experiments.catalogue.measurements import throughput as tp
    from experiments.framework.base import Params

    notes: list[str] = []
    raw: dict[str, str] = {}
    frames = {"df": rows({"node-node": [10e9, 10e9, 10e9],
                          "pod-cross-node": [5e9, 9e9, 7e9]})}  # wide: 0.5 .. 0.9
    progress = SimpleNamespace(total=12, note=notes.append, set_total=lambda n: None)
    ctx = SimpleNamespace(params=Params(repeat=3, target_ci=0.1), progress=progress,
                          run=SimpleNamespace(frame=lambda: frames["df"]),
                          raw=lambda name, text: raw.__setitem__(name, text),
                          require_cluster=lambda: None)
    monkeypatch.setattr(tp, "cases", lambda _c: [1, 2, 3, 4])
    monkeypatch.setattr(tp, "MAX_ROUNDS", 6)
    rounds = list(tp.Throughput()._rounds(ctx))  # type: ignore[arg-type]
    assert rounds == [1, 2, 3, 4, 5, 6] and "6 rounds reached" in notes[-1]
    assert json.loads(raw["throughput/target_ci.json"])["outcome"] == "6 rounds reached"
    frames["df"] = rows({"node-node": [10e9] * 3, "pod-cross-node": [8e9, 8.1e9, 8e9]})
    assert list(tp.Throughput()._rounds(ctx)) == [1, 2, 3]  # narrow already: met
    assert "met after 3 round(s)" in notes[-1]
    plain = SimpleNamespace(params=Params(repeat=2))
    assert list(tp.Throughput()._rounds(plain)) == [1, 2]  # type: ignore[arg-type]
