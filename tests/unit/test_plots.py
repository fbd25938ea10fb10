"""Side-by-side layout heatmaps: PNG bytes, fixed colour scale, labels and annotations."""

from __future__ import annotations

import io
import struct

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from testbed.results.plots import cell_text, heatmap_figure, heatmap_png, pod_label

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PODS = ["pod-1", "pod-2", "pod-3"]
NODE_OF = {"pod-1": "node-1", "pod-2": "node-1", "pod-3": "node-2"}


def matrix(off_diagonal: list[float]) -> pd.DataFrame:
    """A 3x3 source/destination matrix with NaN on the diagonal, filled row by row."""
    values = np.full((3, 3), np.nan)
    it = iter(off_diagonal)
    for i in range(3):
        for j in range(3):
            if i != j:
                values[i, j] = next(it)
    return pd.DataFrame(values, index=PODS, columns=PODS)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk (bytes 16..24, big-endian)."""
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cell_text_rounds_and_blanks_nan() -> None:
    assert cell_text(12.4) == "12"
    assert cell_text(99.6) == "100"
    assert cell_text(0.0) == "0"
    assert cell_text(float("nan")) == ""
    assert cell_text(np.float64("nan")) == ""


def test_pod_label_names_the_node() -> None:
    assert pod_label("pod-1", NODE_OF) == "pod-1\n(node-1)"
    assert pod_label("pod-9", NODE_OF) == "pod-9"


def test_one_layout_png() -> None:
    data = heatmap_png({"kubenet": matrix([0, 100, 0, 50, 12.4, 0])}, NODE_OF, "t")
    assert data.startswith(PNG_SIGNATURE)
    width, height = png_size(data)
    assert width > 200 and height > 200


def test_two_layouts_png_is_wider_than_one() -> None:
    m = matrix([0, 100, 0, 50, 12.4, 0])
    one = heatmap_png({"kubenet": m}, NODE_OF, "t")
    two = heatmap_png({"kubenet": m, "docker0": m}, NODE_OF, "t")
    assert two.startswith(PNG_SIGNATURE)
    (w1, h1), (w2, h2) = png_size(one), png_size(two)
    assert w2 > w1 * 1.5
    assert h2 == h1


def test_png_closes_its_figure() -> None:
    plt.close("all")
    heatmap_png({"kubenet": matrix([0] * 6)}, NODE_OF, "t")
    assert plt.get_fignums() == []


def _pixels_near(data: bytes, rgb: tuple[float, float, float], tol: float = 0.02) -> int:
    image = plt.imread(io.BytesIO(data))[:, :, :3]
    return int((np.abs(image - np.array(rgb)).max(axis=2) < tol).sum())


def test_rendered_cells_use_the_fixed_scale() -> None:
    # All-0 and all-100 matrices: the cells (not just the colour bar) are green or red.
    cmap = matplotlib.colormaps["RdYlGn_r"]
    green, red = cmap(0.0)[:3], cmap(1.0)[:3]
    all_ok = heatmap_png({"kubenet": matrix([0] * 6)}, NODE_OF, "t")
    all_bad = heatmap_png({"kubenet": matrix([100] * 6)}, NODE_OF, "t")
    assert _pixels_near(all_ok, green) > 5 * _pixels_near(all_bad, green)
    assert _pixels_near(all_bad, red) > 5 * _pixels_near(all_ok, red)


@pytest.fixture
def two_layout_figure():
    fig = heatmap_figure({"kubenet": matrix([0, 100, 0, 50, 12.4, 0]),
                          "docker0": matrix([10] * 6)}, NODE_OF, "Wrong pod", "failed %")
    yield fig
    plt.close(fig)


def test_figure_titles_and_colorbar_label(two_layout_figure) -> None:
    fig = two_layout_figure
    panels, colorbar = fig.axes[:2], fig.axes[2]
    assert len(fig.axes) == 3  # one shared colour bar, not one per panel
    assert [ax.get_title() for ax in panels] == ["kubenet", "docker0"]
    assert fig.get_suptitle() == "Wrong pod"
    assert colorbar.get_ylabel() == "failed %"


def test_figure_scale_is_fixed_0_to_100(two_layout_figure) -> None:
    # The docker0 panel holds only 10s; it must still be drawn on 0..100, not rescaled.
    for ax in two_layout_figure.axes[:2]:
        assert ax.images[0].get_clim() == (0.0, 100.0)
        assert ax.images[0].get_cmap().name.startswith("RdYlGn_r")


def test_figure_tick_labels_show_nodes(two_layout_figure) -> None:
    ax = two_layout_figure.axes[0]
    expected = ["pod-1\n(node-1)", "pod-2\n(node-1)", "pod-3\n(node-2)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == expected


def test_figure_annotations_and_nan_diagonal(two_layout_figure) -> None:
    ax = two_layout_figure.axes[0]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert texts == {
        (0, 0): "", (0, 1): "0", (0, 2): "100",
        (1, 0): "0", (1, 1): "", (1, 2): "50",
        (2, 0): "12", (2, 1): "0", (2, 2): "",
    }
    data = ax.images[0].get_array()
    assert np.ma.is_masked(data[0, 0]) or np.isnan(data[0, 0])
    assert float(data[1, 2]) == 50.0


def test_source_rows_destination_columns_kept_as_given() -> None:
    # Non-square: two sources, three destinations, in the frame's own order.
    frame = pd.DataFrame([[0.0, 100.0, 5.0], [1.0, 2.0, 3.0]], index=["pod-3", "pod-1"],
                         columns=PODS)
    fig = heatmap_figure({"kubenet": frame}, NODE_OF, "t")
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["pod-3\n(node-2)",
                                                                "pod-1\n(node-1)"]
        assert ax.images[0].get_array().shape == (2, 3)
    finally:
        plt.close(fig)


def test_empty_layout_is_drawn_as_no_data() -> None:
    layouts = {"kubenet": matrix([0] * 6), "docker0": pd.DataFrame()}
    assert heatmap_png(layouts, NODE_OF, "t").startswith(PNG_SIGNATURE)
    fig = heatmap_figure(layouts, NODE_OF, "t")
    try:
        assert [t.get_text() for t in fig.axes[1].texts] == ["(no data)"]
        assert len(fig.axes[1].images) == 0
        assert fig.axes[0].images[0].get_clim() == (0.0, 100.0)
    finally:
        plt.close(fig)


def test_no_layouts_is_an_error() -> None:
    with pytest.raises(ValueError, match="no layouts"):
        heatmap_png({}, NODE_OF, "t")
