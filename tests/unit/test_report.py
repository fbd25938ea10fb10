"""Aggregation and report rendering on hand-built frames (no root, no network)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from testbed.results.plots import plot_png
from testbed.results.report import (
    ci95,
    claims_section,
    findings,
    hops_table,
    reachability_matrix,
    render_markdown,
    summarize,
    throughput_table,
)
from testbed.results.rundir import COLUMNS, ERROR, Measurement


def rows(path: str, metric: str, values: list[float], src: str = "pod-1",
         dst: str = "pod-3", exp: str = "throughput", unit: str = "bit/s") -> list[dict]:
    return [dict(experiment=exp, repeat=i + 1, src=src, dst=dst, src_node="node-1",
                 dst_node="node-2", path=path, metric=metric, value=v, unit=unit, note="")
            for i, v in enumerate(values)]


@pytest.fixture
def frame() -> pd.DataFrame:
    data = (rows("node-node", "throughput_bps", [20e9, 22e9, 21e9], "node-1", "node-2")
            + rows("pod-cross-node", "throughput_bps", [17e9, 16e9, 18e9])
            + rows("pod-cross-node", "ttl", [61, 61, 61], exp="reachability", unit="hops-left")
            + rows("pod-same-node", "ttl", [64, 64], src="pod-1", dst="pod-2",
                   exp="reachability", unit="hops-left")
            + rows("pod-cross-node", "loss_pct", [0, 0, 0], exp="reachability", unit="%")
            + rows("pod-same-node", "loss_pct", [0, 100], src="pod-1", dst="pod-2",
                   exp="reachability", unit="%"))
    return pd.DataFrame(data, columns=COLUMNS)


def test_ci95_uses_student_t() -> None:
    low, high = ci95(pd.Series([1.0, 2.0, 3.0]))
    # mean 2, sd 1, t(0.975, 2) = 4.3027: half width 4.3027 / sqrt(3) = 2.4841
    assert low == pytest.approx(2 - 2.48414, abs=1e-4)
    assert high == pytest.approx(2 + 2.48414, abs=1e-4)
    assert all(math.isnan(x) for x in ci95(pd.Series([5.0])))


def test_summarize_groups_per_path_and_metric(frame: pd.DataFrame) -> None:
    s = summarize(frame)
    row = s[(s["path"] == "node-node") & (s["metric"] == "throughput_bps")].iloc[0]
    assert row["count"] == 3
    assert row["median"] == 21e9 and row["mean"] == 21e9
    assert row["std"] == pytest.approx(1e9)
    assert row["ci95_low"] < 21e9 < row["ci95_high"]
    # path classes in the canonical order: same-node before cross-node before node-node
    paths = list(dict.fromkeys(s["path"]))
    assert paths.index("pod-same-node") < paths.index("pod-cross-node") < paths.index("node-node")


def test_summarize_empty_frame() -> None:
    assert summarize(pd.DataFrame(columns=COLUMNS)).empty


def test_throughput_ratio_to_underlay(frame: pd.DataFrame) -> None:
    t = throughput_table(summarize(frame)).set_index("path")
    assert t.loc["pod-cross-node", "vs node-node"] == pytest.approx(17 / 21, abs=1e-3)
    assert t.loc["node-node", "vs node-node"] == 1.0
    assert t.loc["pod-cross-node", "median Gbit/s"] == 17.0


def test_hops_table_flags_unexpected_ttl(frame: pd.DataFrame) -> None:
    h = hops_table(frame).set_index("path")
    assert h.loc["pod-cross-node", "routed hops"] == "3"
    assert h.loc["pod-cross-node", "as expected"] == "yes"
    bad = frame.copy()
    bad.loc[(bad["metric"] == "ttl") & (bad["path"] == "pod-same-node"), "value"] = 63
    assert hops_table(bad).set_index("path").loc["pod-same-node", "as expected"] == "NO"


def test_reachability_matrix_and_findings(frame: pd.DataFrame) -> None:
    m = reachability_matrix(frame)
    assert m.loc["pod-1", "pod-2"] == 50.0 and m.loc["pod-1", "pod-3"] == 0.0
    text = " ".join(findings(frame, summarize(frame)))
    assert "1 of 2 source/destination pairs" in text
    assert "pod-cross-node throughput is 0.81x" in text


def test_render_markdown_has_every_section(frame: pd.DataFrame) -> None:
    meta = {"run_id": "r1", "status": "complete", "topology": {"name": "two-node"},
            "command": "sudo python3 experiments/run.py", "git": {"commit": "abc"}}
    md = render_markdown(frame, summarize(frame), meta, ["throughput.png"])
    for section in ("# Pod network report: two-node", "## Hops (reply TTL)",
                    "## Reachability", "## Throughput", "![throughput.png](throughput.png)",
                    "sudo python3 experiments/run.py"):
        assert section in md


def test_plot_png_is_a_png(frame: pd.DataFrame) -> None:
    png = plot_png(summarize(frame), "throughput_bps", 1e9, "Gbit/s", "t")
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_png(summarize(frame), "rtt_avg_ms", 1, "ms", "t") is None


def test_the_summary_median_is_the_median_not_the_mean() -> None:
    skewed = pd.DataFrame(rows("node-node", "throughput_bps", [1e9, 2e9, 9e9], "node-1",
                               "node-2"), columns=COLUMNS)
    row = summarize(skewed).iloc[0]
    assert row["median"] == 2e9 and row["mean"] == 4e9
    table = throughput_table(summarize(skewed))
    assert table.loc[0, "median Gbit/s"] == 2.0 and table.loc[0, "mean Gbit/s"] == 4.0


def test_mixed_ttls_are_not_as_expected(frame: pd.DataFrame) -> None:
    mixed = frame.copy()
    first = mixed[(mixed["metric"] == "ttl") & (mixed["path"] == "pod-cross-node")].index[0]
    mixed.loc[first, "value"] = 62  # one of three replies took another path
    row = hops_table(mixed).set_index("path").loc["pod-cross-node"]
    assert row["reply TTL"] == "61, 62" and row["as expected"] == "NO"
    # and the pod network's expectation, not kubenet's, is what is compared
    other = hops_table(frame, {"pod-cross-node": 63}).set_index("path")
    assert other.loc["pod-cross-node", "as expected"] == "NO"


def test_the_claims_section_counts_each_verdict() -> None:
    claims = pd.DataFrame({"claim": ["a", "b", "c", "d"],
                           "verdict": ["confirmed", "refuted", "confirmed", "error"],
                           "evidence": ["x"] * 4})
    text = "\n".join(claims_section(claims))
    assert "4 claims: 2 confirmed, 1 refuted, 1 error." in text
    assert "| a       | **confirmed** |" in text
    claims.loc[3, "verdict"] = "not applicable"
    text = "\n".join(claims_section(claims))
    assert "4 claims: 2 confirmed, 1 refuted, 0 error, 1 not applicable." in text


def test_a_unit_that_could_not_be_measured_is_listed_not_counted(frame: pd.DataFrame) -> None:
    error = pd.DataFrame([dict(experiment="reachability", repeat=1, src="pod-1", dst="pod-4",
                               src_node="node-1", dst_node="node-2", path="pod-cross-node",
                               metric=ERROR, value=math.nan, unit="",
                               note="ping exited 1: nsenter: no such netns")], columns=COLUMNS)
    df = pd.concat([frame, error], ignore_index=True)
    s = summarize(df)
    assert ERROR not in set(s["metric"])
    assert reachability_matrix(df).loc["pod-1"].notna().sum() == 2  # pod-4: no number
    text = " ".join(findings(df, s))
    assert "1 measurement(s) could not be made" in text
    assert "1 of 2 source/destination pairs" in text  # the error is not loss
    md = render_markdown(df, s, {"topology": {"name": "t"}}, [])
    assert "## Errors (could not measure)" in md and "nsenter: no such netns" in md
    assert "## Errors" not in render_markdown(frame, summarize(frame), {}, [])


def test_a_measurement_is_a_finite_number_or_an_error_with_its_reason() -> None:
    args = ("reachability", 1, "pod-1", "pod-3", "node-1", "node-2", "pod-cross-node")
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not a measurement"):
            Measurement(*args, "loss_pct", bad)
    with pytest.raises(ValueError, match="needs its reason"):
        Measurement(*args, ERROR, math.nan)
    assert Measurement(*args, ERROR, math.nan, note="timed out").row()["note"] == "timed out"


def test_hops_table_uses_the_pod_networks_own_route_words() -> None:
    from testbed.model.podnet import pod_network
    from testbed.results.report import hops_table

    df = pd.DataFrame([{"metric": "ttl", "path": "pod-cross-node", "value": 62}])
    flannel = pod_network("flannel-host-gw")
    table = hops_table(df, flannel.expected_ttls(), flannel.route_descriptions())
    row = table.iloc[0]
    assert row["as expected"] == "yes" and "router" not in row["route"]
    assert "router" in hops_table(df).iloc[0]["route"]  # kubenet's words by default


def test_faults_section_from_the_summary() -> None:
    import pandas as pd

    from testbed.results import report as rp

    rows = []
    for fault, rec in (("uplink", [0.01, 0.02, 0.015]), ("route", [0.05, 0.06, 0.055])):
        for r, v in enumerate(rec, 1):
            for metric, value in (("recovery_s", v), ("outage_s", 1.0 + v), ("lost", 42.0)):
                rows.append({"experiment": f"faults/{fault}", "repeat": r, "src": "a",
                             "dst": "b", "path": "pod-cross-node", "metric": metric,
                             "value": value, "unit": ""})
    text = "\n".join(rp.faults_section(rp.summarize(pd.DataFrame(rows))))
    assert "## Faults: time to recover" in text
    uplink = next(line for line in text.splitlines() if line.startswith("| uplink"))
    route = next(line for line in text.splitlines() if line.startswith("| route"))
    assert [c.strip() for c in uplink.strip("|").split("|")] == ["uplink", "3", "15",
                                                                 "1.015", "42"]
    assert [c.strip() for c in route.strip("|").split("|")][2] == "55"
    assert rp.faults_section(rp.summarize(pd.DataFrame(rows[:0], columns=[
        "experiment", "repeat", "src", "dst", "path", "metric", "value", "unit"]))) == []
