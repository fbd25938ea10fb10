"""FRR's crash-log directories (`/var/tmp/frr/<daemon>.<pid>`): every FRR process the
router starts is recorded by daemon and pid, and its directory is removed by exactly that
name once the daemon is gone; nothing else in the directory is touched. No root: the
directory is a temporary one here, and processes are this test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed.emulation.nodes import frr_daemon
from testbed.kernel.procs import DIE_WITH_PARENT
from testbed.records import journal as journal_mod
from testbed.records import undo
from testbed.records.journal import check_record, frr_crashlog

from .test_records import Calls, journal

GOOD = [{"kind": "frrlog", "daemon": "bgpd", "pid": 4247},
        {"kind": "frrlog", "daemon": "zebra", "pid": 99999}]
HOSTILE: list[Any] = [
    {"kind": "frrlog", "daemon": "../../etc", "pid": 5},
    {"kind": "frrlog", "daemon": "bash", "pid": 5},
    {"kind": "frrlog", "daemon": "bgpd", "pid": 1},
    {"kind": "frrlog", "daemon": "bgpd", "pid": True},
    {"kind": "frrlog", "daemon": "bgpd", "pid": "7"},
    {"kind": "frrlog", "daemon": "bgpd"},
]


def test_the_records_of_frr_daemons_pass_and_nothing_else_does() -> None:
    assert [check_record(r) for r in GOOD] == [None, None]
    for rec in HOSTILE:
        problem = check_record(rec)
        assert problem is not None and len(problem) < 200, rec


def test_the_crash_log_is_frrs_own_name() -> None:
    assert frr_crashlog("bgpd", 1103) == "/var/tmp/frr/bgpd.1103"
    assert frr_crashlog("staticd", 42, "/x") == "/x/staticd.42"
    for daemon, pid in (("bash", 5), ("bgpd", 1), ("bgpd", 0), ("../bgpd", 5)):
        with pytest.raises(ValueError):
            frr_crashlog(daemon, pid)


def test_the_routers_frr_commands_are_recognised() -> None:
    assert frr_daemon(["zebra", "-f", "/run/x/zebra_router.cfg"]) == "zebra"
    assert frr_daemon(["staticd", "-Cf", "/run/x/staticd_router.cfg", "-u", "root"]) \
        == "staticd"
    assert frr_daemon([*DIE_WITH_PARENT, "bgpd", "-f", "/run/x/bgpd.conf"]) == "bgpd"
    assert frr_daemon("/usr/lib/frr/bgpd -C -f x") == "bgpd"
    for other in (["ip", "route"], ["cat", "/usr/lib/frr/zebra"], [*DIE_WITH_PARENT, "bird"],
                  [], "sysctl net.ipv4.ip_forward", ["vtysh", "-c", "show ip route"]):
        assert frr_daemon(other) is None, other


def test_undo_removes_the_recorded_crash_logs_after_stopping(tmp_path: Path,
                                                             monkeypatch) -> None:
    calls = Calls(monkeypatch)
    monkeypatch.setattr(undo, "remove_frr_crashlog",
                        lambda daemon, pid: calls.calls.append(("frrlog", (daemon, pid))))
    state = journal(tmp_path, [{"kind": "run", "run_id": "t", "pid": 4242, "started": 1.0},
                               {"kind": "process", "pid": 4247, "started": 9, "what": "bgpd"},
                               *GOOD, *HOSTILE])
    undone = undo.undo_run(state)
    assert calls.calls == [("signal", (4247, 9)), ("frrlog", ("bgpd", 4247)),
                           ("frrlog", ("zebra", 99999)), ("links", ((), None))]
    assert undone.kept == HOSTILE  # refused, never acted on


def test_a_crash_log_that_could_not_go_stays_recorded(tmp_path: Path, monkeypatch) -> None:
    Calls(monkeypatch)

    def busy(daemon: str, pid: int) -> bool:
        raise PermissionError(f"{daemon}.{pid}: busy")

    monkeypatch.setattr(undo, "remove_frr_crashlog", busy)
    state = journal(tmp_path, GOOD[:1])
    undone = undo.undo_run(state)
    assert undone.errors == ["FRR crash log /var/tmp/frr/bgpd.4247: bgpd.4247: busy"]
    assert state.records() == GOOD[:1]


def test_only_that_directory_goes_and_only_once_the_daemon_is_gone(tmp_path: Path,
                                                                    monkeypatch) -> None:
    root = tmp_path / "frr"
    root.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    mine = root / f"bgpd.{gone.pid}"
    mine.mkdir()
    (mine / "logbuf.1234").write_text("x")  # FRR's per-thread log buffer ...
    (mine / "crashlog").write_text("x")  # ... and its crash log
    others = [root / f"zebra.{gone.pid}", root / f"bgpd.{gone.pid}0", root / "bgpd.1103",
              root / "unrelated"]
    for d in others:
        d.mkdir()
    assert undo.remove_frr_crashlog("bgpd", gone.pid, str(root)) is True
    assert not mine.exists() and all(d.is_dir() for d in others)
    assert undo.remove_frr_crashlog("bgpd", gone.pid, str(root)) is False  # already gone

    # a live process of that daemon's name holds the pid: the directory is its own
    monkeypatch.setattr(journal_mod, "FRR_DAEMONS", journal_mod.FRR_DAEMONS | {"sleep"})
    live = subprocess.Popen(["sleep", "30"])
    try:
        held = root / f"sleep.{live.pid}"
        held.mkdir()
        assert undo.remove_frr_crashlog("sleep", live.pid, str(root)) is False
        assert held.is_dir()
    finally:
        live.kill()
        live.wait()


def test_what_frr_does_not_write_there_is_an_error_and_stays(tmp_path: Path) -> None:
    root = tmp_path / "frr"
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    mine = root / f"bgpd.{gone.pid}"
    (mine / "logbuf.7").mkdir(parents=True)  # FRR's name, but a directory
    (mine / "notes").write_text("somebody's")
    (mine / "logbuf.8").write_text("x")
    with pytest.raises(OSError, match="holds what FRR does not write there"):
        undo.remove_frr_crashlog("bgpd", gone.pid, str(root))
    assert sorted(p.name for p in mine.iterdir()) == ["logbuf.7", "notes"]
    assert (mine / "notes").read_text() == "somebody's"


def test_a_symlink_or_a_file_by_that_name_is_not_followed(tmp_path: Path) -> None:
    root, target = tmp_path / "frr", tmp_path / "precious"
    root.mkdir()
    target.mkdir()
    (target / "keep").write_text("x")
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    os.symlink(target, root / f"bgpd.{gone.pid}")
    (root / f"zebra.{gone.pid}").write_text("a file")
    assert undo.remove_frr_crashlog("bgpd", gone.pid, str(root)) is False
    assert undo.remove_frr_crashlog("zebra", gone.pid, str(root)) is False
    assert (target / "keep").exists() and (root / f"zebra.{gone.pid}").is_file()


def test_records_are_json_the_journal_can_hold(tmp_path: Path) -> None:
    state = journal(tmp_path, [])
    state.journal.write_text("")
    state.record("frrlog", daemon="staticd", pid=1234)
    assert [json.loads(x) for x in state.journal.read_text().splitlines()] == [
        {"daemon": "staticd", "kind": "frrlog", "pid": 1234}]
