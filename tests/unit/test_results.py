"""Run directories and atomic files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from testbed.errors import UsageError
from testbed.results.rundir import (
    COLUMNS,
    Measurement,
    RunDir,
    atomic_write,
    give_to_invoking_user,
)


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


def test_a_run_directory_swapped_for_a_link_redirects_nothing(tmp_path: Path) -> None:
    """Whoever can write to --out may rename the run directory away and leave a link to
    somewhere else: the run goes on writing into the directory it made, and hands over
    (under sudo) only that."""
    out, elsewhere = tmp_path / "out", tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "passwd").write_text("root:x:0:0\n")
    run = RunDir.create(out, "t")
    moved = tmp_path / "moved"
    run.path.rename(moved)
    run.path.symlink_to(elsewhere)
    run.write_json("metadata.json", {"v": 1})
    run.raw("reachability/r1_a_to_b.txt", "64 bytes")
    with run.open_log("raw/claim/server.log") as log:
        log.write(b"from 10.0.0.2\n")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["passwd"]
    assert json.loads((moved / "metadata.json").read_text()) == {"v": 1}
    assert (moved / "raw" / "claim" / "server.log").read_bytes() == b"from 10.0.0.2\n"
    assert run.read("metadata.json") == (moved / "metadata.json").read_bytes()


def test_handing_over_follows_no_link(tmp_path: Path, monkeypatch) -> None:
    """Under sudo the run is given to the invoking user bottom-up through its open
    directory: a link inside it, or the path swapped for one, hands over nothing else."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root (CI runs the unit tests as root)")
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "shadow").write_text("secret\n")
    run = RunDir.create(tmp_path / "out", "t")
    run.raw("ping/x.txt", "64 bytes")
    os.symlink(elsewhere / "shadow", run.path / "raw" / "link")
    moved = tmp_path / "moved"
    run.path.rename(moved)
    run.path.symlink_to(elsewhere)
    monkeypatch.setenv("SUDO_UID", "12345")
    monkeypatch.setenv("SUDO_GID", "12345")
    give_to_invoking_user(run)
    assert (elsewhere / "shadow").stat().st_uid == 0 and elsewhere.stat().st_uid == 0
    for p in [moved, *moved.rglob("*")]:
        assert p.lstat().st_uid == 12345, p


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "raw/../../x", "", "a//b", "raw/."])
def test_names_outside_the_run_directory_are_refused(tmp_path: Path, name: str) -> None:
    run = RunDir.create(tmp_path, "t")
    with pytest.raises(ValueError):
        run.write(name, "x")


def test_an_out_that_cannot_take_runs_is_one_line(tmp_path: Path, monkeypatch) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        RunDir.create(a_file, "t")
    with pytest.raises(UsageError, match="cannot make it"):
        RunDir.create(a_file / "sub", "t")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    if os.geteuid() == 0:
        os.chown(theirs, 12345, 12345)  # somebody else's
        monkeypatch.setenv("SUDO_UID", "1000")
    else:
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        monkeypatch.setenv("SUDO_UID", str(os.getuid() + 1))
    with pytest.raises(UsageError, match="not to you or root"):
        RunDir.create(theirs, "t")


def test_a_run_directory_is_reopened_with_its_rows(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "t")
    run.add([Measurement("reachability", 2, "pod-1", "pod-3", "node-1", "node-2",
                         "pod-cross-node", "ttl", 61)])
    again = RunDir.open(run.path)
    assert again.rows == run.rows and again.rows[0]["repeat"] == 2
    (run.path / "measurements.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="columns"):
        RunDir.open(run.path)
