"""Figures for a run directory, rendered to PNG bytes: the report's bar charts of a metric
by path class (`plot_png`), and figures that compare network layouts side by side.

A heatmap per layout on one fixed 0..100 colour scale, so the same colour means the same
failure rate in every panel and layouts can be compared at a glance.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import pandas as pd

from testbed.model.paths import in_path_order

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CMAP = "RdYlGn_r"  # green = every probe reached the intended pod, red = none did
VMIN, VMAX = 0.0, 100.0
_CELL_IN = 0.75  # inches per matrix cell, so labels of larger clusters still fit


def cell_text(value: float) -> str:
    """The annotation of one cell: the rounded value, or nothing where there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.0f}"


def pod_label(pod: str, node_of: dict[str, str]) -> str:
    """'pod-1\\n(node-1)': a reader sees at once whether a pair crosses nodes."""
    node = node_of.get(pod)
    return f"{pod}\n({node})" if node else str(pod)


def heatmap_figure(matrices: dict[str, pd.DataFrame], node_of: dict[str, str], title: str,
                   value_label: str = "failed %") -> Figure:
    """Build the figure (one panel per layout, shared colour bar); the caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not matrices:
        raise ValueError("heatmap_figure: no layouts to draw")
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="#d9d9d9")  # NaN: grey, not a score
    rows = max(max(len(m.index), 1) for m in matrices.values())
    cols = max(max(len(m.columns), 1) for m in matrices.values())
    panel_w = max(3.0, _CELL_IN * cols + 1.4)
    height = max(3.2, _CELL_IN * rows + 1.8)
    fig, axes = plt.subplots(1, len(matrices), figsize=(panel_w * len(matrices) + 1.3, height),
                             dpi=100, squeeze=False, layout="constrained")
    image = None
    for ax, (layout, matrix) in zip(axes[0], matrices.items()):
        ax.set_title(layout)
        if matrix.empty:
            ax.text(0.5, 0.5, "(no data)", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(values, cmap=cmap, vmin=VMIN, vmax=VMAX, aspect="equal")
        ax.set_xticks(range(len(matrix.columns)),
                      [pod_label(str(p), node_of) for p in matrix.columns], fontsize=8)
        ax.set_yticks(range(len(matrix.index)),
                      [pod_label(str(p), node_of) for p in matrix.index], fontsize=8)
        ax.set_xlabel("destination pod")
        ax.set_ylabel("source pod")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                dark = not math.isnan(v) and (v < 20 or v > 80)  # ends of the map are dark
                ax.text(j, i, cell_text(v), ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
    if image is None:  # every panel empty: still show the scale the others would use
        image = ScalarMappable(norm=Normalize(VMIN, VMAX), cmap=cmap)
    fig.colorbar(image, ax=list(axes[0]), label=value_label, shrink=0.9)
    fig.suptitle(title)
    return fig


def heatmap_png(matrices: dict[str, pd.DataFrame], node_of: dict[str, str], title: str,
                value_label: str = "failed %") -> bytes:
    """Side-by-side heatmaps of per-pair failure rates (rows: source, columns: destination)."""
    return figure_png(heatmap_figure(matrices, node_of, title, value_label))


def timeline_png(panels: list[tuple[str, pd.DataFrame]], events: list[list[tuple[float, str]]],
                 title: str, lanes: list[str]) -> bytes:
    """Connections over time, one panel per phase: each connection a dot at its start
    (seconds from the phase's start) in the lane of the server that answered it, or in
    `failed`; events (kube-proxy killed, pod unready, ...) as labelled vertical lines.
    Each frame has columns t (s), lane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 1.6 * len(panels)),
                             squeeze=False, sharex=True)
    for ax, (name, frame), marks in zip(axes[:, 0], panels, events):
        ys = [lanes.index(lane) for lane in frame["lane"]]
        colors = ["#c0392b" if lane == "failed" else "#2e86c1" for lane in frame["lane"]]
        ax.scatter(frame["t"], ys, s=9, c=colors)
        ax.set_yticks(range(len(lanes)), lanes)
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.set_title(name, fontsize=9, loc="left")
        for i, (t, label) in enumerate(marks):  # labels on alternate rows: events crowd
            ax.axvline(t, color="#555555", linestyle="--", linewidth=0.8)
            ax.annotate(label, (t, len(lanes) - 0.5 - 0.5 * (i % 2)), fontsize=7,
                        xytext=(3, 0), textcoords="offset points", va="top")
    axes[-1, 0].set_xlabel("seconds since the first connection")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def paths_png(paths: list[tuple[str, list[str]]], title: str) -> bytes:
    """Paths packets took, one row each: a label, then its hops as boxes joined by
    arrows (a hop's text may have two lines: name, then address or port)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((len(hops) for _, hops in paths), default=1)
    fig, ax = plt.subplots(figsize=(2.0 + 1.9 * longest, 0.6 + 0.95 * len(paths)))
    ax.set_xlim(-0.2, longest * 1.9 + 0.1)
    ax.set_ylim(-0.6, len(paths) - 0.2)
    ax.axis("off")
    for row, (label, hops) in enumerate(paths):
        y = len(paths) - 1 - row
        ax.text(0.0, y + 0.42, label, fontsize=8, fontweight="bold", va="bottom")
        for i, hop in enumerate(hops):
            x = i * 1.9 + 0.7
            ax.text(x, y, hop, fontsize=7, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.3", "fc": "#eaf2f8", "ec": "#2e86c1"})
            if i:
                ax.annotate("", xy=(x - 0.72, y), xytext=(x - 1.18, y),
                            arrowprops={"arrowstyle": "->", "color": "#555555"})
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def figure_png(fig: Figure) -> bytes:
    """A finished figure as PNG bytes; the figure is closed whatever happens."""
    import matplotlib.pyplot as plt  # the callers have chosen the Agg backend

    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def plot_png(summary: pd.DataFrame, metric: str, scale: float, ylabel: str,
             title: str) -> bytes | None:
    """A bar chart of one metric's mean per path class, with 95 % CI error bars, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary[summary["metric"] == metric]
    if s.empty:
        return None
    s = s.set_index("path").reindex(in_path_order(list(s["path"])))
    means = s["mean"] / scale
    err_low = (s["mean"] - s["ci95_low"]).fillna(0) / scale
    err_high = (s["ci95_high"] - s["mean"]).fillna(0) / scale
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.bar(range(len(s)), means, yerr=[err_low, err_high], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(s)), list(s.index), rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)
