"""Run directories and atomic files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from testbed.results.rundir import COLUMNS, Measurement, RunDir, atomic_write


def test_run_dirs_are_never_reused(tmp_path: Path) -> None:
    a = RunDir.create(tmp_path, "two-node")
    b = RunDir.create(tmp_path, "two-node")  # same second: a suffix keeps them apart
    assert a.path != b.path
    assert a.path.name.endswith("two-node") and (a.path / "raw").is_dir()


def test_measurements_csv_is_rewritten_whole_with_every_row(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "t")
    run.add([Measurement("reachability", 1, "pod-1", "pod-3", "node-1", "node-2",
                         "pod-cross-node", "ttl", 61)])
    run.add([Measurement("throughput", 1, "pod-1", "pod-3", "node-1", "node-2",
                         "pod-cross-node", "throughput_bps", 1.5e10)])
    df = pd.read_csv(run.path / "measurements.csv")
    assert list(df.columns) == COLUMNS
    assert list(df["metric"]) == ["ttl", "throughput_bps"]
    assert list(df["unit"]) == ["hops-left", "bit/s"]
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path: Path,
                                                         monkeypatch) -> None:
    target = tmp_path / "metadata.json"
    atomic_write(target, json.dumps({"v": 1}))

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, json.dumps({"v": 2}))
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metadata.json"]
