"""report.md as one self-contained HTML page: plots embedded, no external references.

A single file can be mailed, attached to a ticket or opened from an archive and still show
every table and plot, because nothing it needs lives next to it.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from urllib.parse import unquote

import markdown

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".svg": "image/svg+xml"}

STYLE = """
body { max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45;
       font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #999; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #eee; }
tr:nth-child(even) td { background: #f7f7f7; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; }
em.missing { color: #a00; }
"""

_IMG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def _local_image(src: str, run_dir: Path) -> Path | None:
    """The file an <img src> names, only if it is an image inside run_dir (nothing outside)."""
    if not src or ":" in src or src.startswith(("/", "\\")):  # URLs, data:, absolute paths
        return None
    root = run_dir.resolve()
    path = (root / src).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path if path.suffix.lower() in IMAGE_TYPES else None


def _embed(tag: re.Match[str], run_dir: Path) -> str:
    """One <img> tag with its file inlined as a data: URI, or a visible note if it is absent."""
    found = _SRC_RE.search(tag.group(0))
    if found is None:
        return tag.group(0)
    raw = found.group(1) if found.group(1) is not None else found.group(2)
    src = unquote(html.unescape(raw))
    if src.startswith("data:"):
        return tag.group(0)
    path = _local_image(src, run_dir)
    if path is None:
        return f'<em class="missing">(missing plot {html.escape(src)})</em>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    uri = f"data:{IMAGE_TYPES[path.suffix.lower()]};base64,{data}"
    start, end = found.span()
    whole = tag.group(0)
    return f'{whole[:start]}src="{uri}"{whole[end:]}'


def render_html(markdown_text: str, run_dir: Path, title: str) -> str:
    """The whole report page; images are read from run_dir and embedded."""
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"],
                             output_format="html")
    body = _IMG_RE.sub(lambda m: _embed(m, run_dir), body)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        body,
        "</body>",
        "</html>",
        "",
    ])
