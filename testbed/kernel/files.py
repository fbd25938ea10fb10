"""Files replaced whole: a reader sees the old file or the new one, never half of either
(kube-proxy's state and status, the comparison and campaign files). Light on imports:
kube-proxy's process loads it at start."""

from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` atomically: written to a temporary name beside it (this
    process's own), then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
