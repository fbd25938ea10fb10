"""report.md as one self-contained HTML page: plots embedded, no external references.

A single file can be mailed, attached to a ticket or opened from an archive and still show
every table and plot, because nothing it needs lives next to it.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Callable, Optional  # typing's: the alias Reader runs on 3.8
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


# Reads a file of the run by its name, or None if there is none.
Reader = Callable[[str], Optional[bytes]]


def path_reader(run_dir: Path) -> Reader:
    """Files inside `run_dir` only (nothing outside it, through `..` or a link)."""
    root = run_dir.resolve()

    def read(name: str) -> bytes | None:
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path.read_bytes()

    return read


def _local_image(src: str, read: Reader) -> tuple[bytes, str] | None:
    """The bytes and type of the image an <img src> names, if it is a file of the run."""
    if not src or ":" in src or src.startswith(("/", "\\")):  # URLs, data:, absolute paths
        return None
    suffix = Path(src).suffix.lower()
    if suffix not in IMAGE_TYPES:
        return None
    try:
        data = read(src)
    except ValueError:  # not a plain name inside the run (e.g. `..`)
        return None
    return None if data is None else (data, IMAGE_TYPES[suffix])


def _embed(tag: re.Match[str], read: Reader) -> str:
    """One <img> tag with its file inlined as a data: URI, or a visible note if it is absent."""
    found = _SRC_RE.search(tag.group(0))
    if found is None:
        return tag.group(0)
    raw = found.group(1) if found.group(1) is not None else found.group(2)
    src = unquote(html.unescape(raw))
    if src.startswith("data:"):
        return tag.group(0)
    image = _local_image(src, read)
    if image is None:
        return f'<em class="missing">(missing plot {html.escape(src)})</em>'
    data = base64.b64encode(image[0]).decode("ascii")
    uri = f"data:{image[1]};base64,{data}"
    start, end = found.span()
    whole = tag.group(0)
    return f'{whole[:start]}src="{uri}"{whole[end:]}'


def render_html(markdown_text: str, run_dir: Path | Reader, title: str) -> str:
    """The whole report page; images are read from the run (a directory, or a reader of
    its files such as `RunDir.read`) and embedded."""
    read = path_reader(run_dir) if isinstance(run_dir, Path) else run_dir
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"],
                             output_format="html")
    body = _IMG_RE.sub(lambda m: _embed(m, read), body)
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
