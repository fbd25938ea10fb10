"""The self-contained HTML report: tables, embedded plots, no references to files."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from testbed.results.html import render_html

# A tiny but valid PNG: signature, IHDR (1x1), IDAT, IEND.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

REPORT = """# Pod network report: two-nodes

## Throughput

| path | median Gbit/s |
|:-----|--------------:|
| node-node | 21.00 |
| pod-cross-node | 17.00 |

![throughput.png](throughput.png)

![latency.png](latency.png)

Reproduce with:

```
sudo .venv/bin/python -m experiments.run --topology two-nodes
```
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "throughput.png").write_bytes(TINY_PNG)
    (tmp_path / "latency.png").write_bytes(TINY_PNG + b"latency")  # different bytes
    return tmp_path


def data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_page_skeleton(run_dir: Path) -> None:
    page = render_html(REPORT, run_dir, "two-nodes")
    assert page.startswith("<!DOCTYPE html>\n")
    assert '<meta charset="utf-8">' in page
    assert "<title>two-nodes</title>" in page
    assert "<style>" in page and "border-collapse" in page and "max-width" in page
    assert "monospace" in page
    assert "<h1>Pod network report: two-nodes</h1>" in page


def test_markdown_table_becomes_table(run_dir: Path) -> None:
    page = render_html(REPORT, run_dir, "t")
    assert page.count("<table>") == 1
    assert re.search(r"<th[^>]*>path</th>", page)
    assert re.search(r'<td style="text-align: right;">17.00</td>', page)


def test_fenced_code_becomes_pre(run_dir: Path) -> None:
    page = render_html(REPORT, run_dir, "t")
    assert "<pre><code>sudo .venv/bin/python -m experiments.run --topology two-nodes" in page


def test_images_embedded_as_data_uris(run_dir: Path) -> None:
    page = render_html(REPORT, run_dir, "t")
    assert data_uris(page) == [TINY_PNG, TINY_PNG + b"latency"]
    assert 'alt="throughput.png"' in page


def test_no_src_points_at_a_file(run_dir: Path) -> None:
    page = render_html(REPORT, run_dir, "t")
    sources = re.findall(r"""src=["']([^"']*)""", page)
    assert len(sources) == 2
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page  # no stylesheet or other external reference


def test_missing_image_becomes_a_note(run_dir: Path) -> None:
    (run_dir / "latency.png").unlink()
    page = render_html(REPORT, run_dir, "t")
    assert '<em class="missing">(missing plot latency.png)</em>' in page
    assert data_uris(page) == [TINY_PNG]
    assert 'src="latency.png"' not in page


@pytest.mark.parametrize("src", ["../outside.png", "/etc/hostname", "http://example.com/x.png",
                                 "notes.txt"])
def test_nothing_outside_the_run_dir_or_remote_is_read(tmp_path: Path, src: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "outside.png").write_bytes(TINY_PNG)
    (run_dir / "notes.txt").write_text("not an image")
    page = render_html(f"![x]({src})", run_dir, "t")
    assert f"(missing plot {src})" in page
    assert "<img" not in page


def test_raw_html_img_with_single_quotes_is_embedded(run_dir: Path) -> None:
    page = render_html("<p><img src='throughput.png' alt='t'></p>", run_dir, "t")
    assert data_uris(page) == [TINY_PNG]
    assert "src='" not in page


def test_image_in_code_block_is_left_as_text(run_dir: Path) -> None:
    page = render_html("```\n<img src=\"throughput.png\">\n```", run_dir, "t")
    assert "&lt;img src=&quot;throughput.png&quot;&gt;" in page
    assert data_uris(page) == []


def test_title_is_escaped(run_dir: Path) -> None:
    page = render_html("text", run_dir, '<script>alert("x")</script> & co')
    assert "<title>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</title>" in page
    assert "<script>" not in page


def test_missing_name_is_escaped_in_the_note(tmp_path: Path) -> None:
    page = render_html('<img src="a&lt;b&gt;.png">', tmp_path, "t")
    assert "(missing plot a&lt;b&gt;.png)" in page
