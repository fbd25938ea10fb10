"""The pod-network comparison's table and plot, from measurement rows (pure)."""

from __future__ import annotations

import pandas as pd

from experiments.catalogue.measurements import compare_modes as cm


def rows() -> pd.DataFrame:
    out = []
    for mode, ratios, mtu in (("kubenet", [0.7, 0.8, 0.75], 1500),
                              ("flannel-vxlan", [0.6, 0.5, 0.55], 1450)):
        for i, r in enumerate(ratios, 1):
            out.append({"experiment": f"{cm.NAME}/{mode}", "repeat": i,
                        "path": "pod-cross-node", "metric": "cmp_throughput_ratio",
                        "value": r})
        out.append({"experiment": f"{cm.NAME}/{mode}", "repeat": 1, "path": "pod-localhost",
                    "metric": "cmp_pod_mtu", "value": mtu})
    # the shared cluster's rows are not the comparison's
    out.append({"experiment": "throughput", "repeat": 1, "path": "pod-cross-node",
                "metric": "throughput_bps", "value": 1e9})
    # kubenet's same-node ratio: a column of its own, n/a for the other mode
    out.append({"experiment": f"{cm.NAME}/kubenet", "repeat": 1, "path": "pod-same-node",
                "metric": "cmp_throughput_ratio", "value": 0.9})
    return pd.DataFrame(out)


def test_table_medians_per_mode_in_registry_order() -> None:
    table = cm.comparison_table(rows())
    assert list(table.index) == ["kubenet", "flannel-vxlan"]
    assert table.loc["kubenet", "pod-cross-node: throughput / node-node (ratio)"] == 0.75
    assert table.loc["kubenet", "pod-same-node: throughput / node-node (ratio)"] == 0.9
    assert pd.isna(table.loc["flannel-vxlan", "pod-same-node: throughput / node-node (ratio)"])
    assert table.loc["flannel-vxlan", "pod MTU (bytes)"] == 1450
    assert list(table.columns) == [  # only what was measured; the per-path ones by path
        "pod-cross-node: throughput / node-node (ratio)",
        "pod-same-node: throughput / node-node (ratio)", "pod MTU (bytes)"]


def test_markdown_and_png() -> None:
    text = "\n".join(cm.comparison_markdown(rows()))
    assert "## Pod networks compared" in text and "1 round(s) a mode and path" in text
    assert "| flannel-vxlan" in text and "1450" in text
    assert cm.comparison_png(rows())[:8] == b"\x89PNG\r\n\x1a\n"
    assert cm.comparison_markdown(rows()[rows()["experiment"] == "throughput"]) == []


def test_the_chosen_modes_are_the_ones_built() -> None:
    from types import SimpleNamespace

    from experiments.framework.base import Params

    every = cm.PodNetworkComparison().steps(SimpleNamespace(params=Params()))
    assert every == len(cm.MODES) and "docker-default" not in cm.MODES
    chosen = SimpleNamespace(params=Params(modes=("calico", "kubenet")))
    assert cm.PodNetworkComparison().steps(chosen) == 2


def test_leave_and_join_are_columns_when_measured() -> None:
    df = pd.concat([rows(), pd.DataFrame([
        {"experiment": f"{cm.NAME}/calico", "repeat": 1, "path": "node", "metric": m,
         "value": v}
        for m, v in (("cmp_leave_s", 0.07), ("cmp_join_s", 1.7))])])
    table = cm.comparison_table(df)
    assert table.loc["calico", "a node joins: convergence (s)"] == 1.7
    assert pd.isna(table.loc["kubenet", "a node leaves: convergence (s)"])
    text = "\n".join(cm.comparison_markdown(df))
    assert "n/a" in text and "nan" not in text and "| 1.7 " in text
    assert cm.comparison_png(df)[:8] == b"\x89PNG\r\n\x1a\n"
