"""Run records are trusted no further than `check_record`: hostile or malformed records are
reported and never acted on, what could not be undone stays recorded, and `testbed clean`
says so with a non-zero exit. Side effects are stubbed here; the integration tests run a
hostile journal for real on a running cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from testbed.cli import main as cli
from testbed.kernel import ns, procs
from testbed.model.names import FRR_TMP, LINK_GROUP
from testbed.records import undo
from testbed.records.journal import RunState, check_record, existing_runs, new_run

GOOD: list[dict[str, Any]] = [
    {"kind": "run", "run_id": "t", "pid": 4242, "started": 1.0},
    {"kind": "dir", "path": FRR_TMP, "if_empty": True},
    {"kind": "link", "name": "ktb-ul1"},
    {"kind": "linkgroup", "group": LINK_GROUP},
    {"kind": "link", "name": "ktb-ext1"},
    {"kind": "netns", "name": "ktb-node-1-pod-1"},
    {"kind": "process", "pid": 4243, "started": 123, "what": "pause pod-1"},
    {"kind": "process", "pid": 4244, "started": None, "what": "gone when recorded"},
    {"kind": "cgroup", "path": "/sys/fs/cgroup/cpu/ktb-node-1"},
    {"kind": "cgroup", "path": "/sys/fs/cgroup/ktb-node-1"},
]
HOSTILE: list[Any] = [
    {"kind": "netns", "name": "../.."},
    {"kind": "netns", "name": "ktb-../../etc"},
    {"kind": "netns", "name": "somebody-elses"},
    {"kind": "dir", "path": "/", "if_empty": False},
    {"kind": "dir", "path": "/var/tmp/frr/../../../etc"},
    {"kind": "process", "pid": -1, "started": 5},
    {"kind": "process", "pid": 0, "started": 5},
    {"kind": "process", "pid": 1, "started": 5},
    {"kind": "process", "pid": os.getpid(), "started": 5},
    {"kind": "process", "pid": 4245},  # no start time at all
    {"kind": "process", "pid": 4246, "started": "yesterday"},
    {"kind": "process", "pid": True, "started": 5},
    {"kind": "link", "name": "eth0"},
    {"kind": "link", "name": "outside-eth0"},
    {"kind": "link", "name": "ktb-a/b"},
    {"kind": "linkgroup", "group": 0},
    {"kind": "cgroup", "path": "/sys/fs/cgroup/cpu"},  # the hierarchy's root itself
    {"kind": "cgroup", "path": "/sys/fs/cgroup/cpu/system.slice"},
    {"kind": "cgroup", "path": "/sys/fs/cgroup/cpu/ktb-node-1/../../memory"},
    {"kind": "cgroup", "path": "/sys/fs/cgroup/cpu/ktb-a/ktb-b"},
    {"kind": "cgroup", "path": "/tmp/ktb-node-1"},
    {"kind": "cgroup", "path": 7},
    {"kind": "mystery"},
    ["a", "list"],
    42,
    None,
    {"no": "kind"},
]


def test_the_testbeds_own_records_pass() -> None:
    assert [check_record(r) for r in GOOD] == [None] * len(GOOD)


@pytest.mark.parametrize("rec", HOSTILE, ids=[json.dumps(r)[:40] for r in HOSTILE])
def test_hostile_or_malformed_records_are_refused(rec: Any) -> None:
    problem = check_record(rec)
    assert problem is not None and "\n" not in problem and len(problem) < 200


class Calls:
    """Every side effect undo would have, recorded instead of done."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail

        def call(kind: str, arg: Any) -> None:
            self.calls.append((kind, arg))
            if kind in self.fail:
                raise OSError(f"{kind} {arg} failed")

        monkeypatch.setattr(undo.procs, "stop_recorded",
                            lambda pid, started: call("signal", (pid, started)))
        monkeypatch.setattr(undo, "delete_netns", lambda name: call("netns", name))
        monkeypatch.setattr(undo, "remove_dir_if_empty", lambda path: call("rmdir", path))
        monkeypatch.setattr(undo, "delete_links",
                            lambda names, group: (call("links", (tuple(names), group)),
                                                  ["link ktb-ul1: busy"] if "links" in fail
                                                  else [])[1])
        monkeypatch.setattr(undo, "frr_daemons", lambda state: [])


def journal(tmp_path: Path, records: list[Any]) -> RunState:
    state = RunState("t", tmp_path / "t")
    state.directory.mkdir()
    state.journal.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn')
    return state


def test_undo_acts_on_good_records_only_and_reports_the_rest(tmp_path: Path,
                                                            monkeypatch) -> None:
    calls = Calls(monkeypatch)
    state = journal(tmp_path, GOOD + HOSTILE)
    undone = undo.undo_run(state)
    assert calls.calls == [
        ("signal", (4243, 123)),  # the process gone when recorded is not signalled
        ("netns", "ktb-node-1-pod-1"),
        ("rmdir", FRR_TMP),  # only ever removed if empty
        ("links", (("ktb-ext1", "ktb-ul1"), LINK_GROUP)),
    ]
    assert len(undone.errors) == len(HOSTILE)
    assert all(e.startswith("record not acted on: ") for e in undone.errors)
    # the hostile records stay in the journal (never acted on, never dropped silently)
    assert undone.kept == HOSTILE
    assert state.records() == [GOOD[0], *HOSTILE]


def test_what_could_not_be_undone_stays_recorded(tmp_path: Path, monkeypatch) -> None:
    Calls(monkeypatch, fail={"netns", "signal"})
    state = journal(tmp_path, GOOD)
    undone = undo.undo_run(state)
    assert undone.errors == ["process 4243 ('pause pod-1'): signal (4243, 123) failed",
                             "netns ktb-node-1-pod-1: netns ktb-node-1-pod-1 failed"]
    assert [r["kind"] for r in state.records()] == ["run", "process", "netns"]


def test_clean_keeps_a_run_it_could_not_undo_and_exits_non_zero(tmp_path: Path,
                                                                monkeypatch, capsys) -> None:
    Calls(monkeypatch, fail={"netns"})
    root = tmp_path / "state"
    root.mkdir()
    bad = journal(root, GOOD)
    good = new_run("ok", root)
    monkeypatch.setattr(undo, "STATE_ROOT", root)
    monkeypatch.setattr(undo, "clean", lambda: undo.clean_stale_runs(root))
    monkeypatch.setattr(cli, "undo", undo, raising=False)
    monkeypatch.setattr("testbed.cluster.preflight.check_root", lambda: None)
    assert cli.main(["clean"]) == 1
    out, err = capsys.readouterr()
    assert "removed the leftovers of 2 run(s)" in out
    (line,) = err.strip().splitlines()
    assert line.startswith("error: t: netns ktb-node-1-pod-1: ") and "remove it by hand" in line
    assert [s.run_id for s in existing_runs(root)] == [bad.run_id]  # kept for a retry
    assert not good.directory.exists()  # nothing left: removed


def test_a_journal_of_garbage_is_no_traceback(tmp_path: Path, monkeypatch) -> None:
    calls = Calls(monkeypatch)
    state = RunState("g", tmp_path / "g")
    state.directory.mkdir()
    state.journal.write_bytes(b"\x00\xff garbage\n[1, 2]\n\"text\"\n{}\n" + b"9" * 5000 + b"\n")
    undone = undo.undo_run(state)
    assert calls.calls == [("links", ((), None))] and len(undone.errors) == 5


def test_the_kernel_helpers_refuse_what_no_record_may_name() -> None:
    for name in ("../..", "", ".", "a/b", "x\0y"):
        with pytest.raises(ValueError):
            ns.delete_netns(name)
    for pid in (-1, 0, 1, os.getpid()):
        with pytest.raises(ValueError):
            procs.stop_recorded(pid, 5)
    assert procs.stop_recorded(os.getppid(), None) is False  # no start time: not signalled
