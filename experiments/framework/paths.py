"""Where the checkout's folders are, worked out once: modules under experiments/ sit at
different depths, and counting `parents[N]` in each broke when one moved a folder deeper
(the Services claims looked for experiments/topologies/services.yaml)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # experiments/framework/paths.py -> the checkout
TOPOLOGIES = ROOT / "topologies"
RESULTS = ROOT / "results"
