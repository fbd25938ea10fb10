"""The leak check itself (conftest.machine_snapshot), on the real machine: files and
processes of unrelated programs appearing meanwhile do not fail it; a leftover of the
testbed's kind does, each kind on its own. Everything planted is removed in a finally."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from testbed.model.names import FRR_TMP

from .conftest import machine_snapshot


def _dead_pid() -> int:
    """A pid that no process has now (one of ours that has ended)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_other_programs_writing_tmp_meanwhile_do_not_count() -> None:
    before = machine_snapshot()
    tag = uuid.uuid4().hex[:8]
    made = [Path(f"/tmp/unrelated-{tag}.txt"), Path(f"/tmp/tmp{tag}"),
            Path(f"/var/tmp/unrelated-{tag}"), Path(f"/tmp/unrelated-dir-{tag}")]
    # an unrelated program (not of this session: a clean environment) writes /tmp and
    # /var/tmp, as an editor or a package manager would, and keeps running
    script = (f"echo x > {made[0]}; echo y > {made[1]}; mkdir {made[2]} {made[3]}; "
              f"touch {made[3]}/f; exec sleep 60")
    other = subprocess.Popen(["env", "-i", "PATH=/usr/bin:/bin", "sh", "-c", script])
    try:
        for _ in range(100):
            if all(p.exists() for p in made):
                break
            time.sleep(0.05)
        assert all(p.exists() for p in made)
        assert machine_snapshot() == before
    finally:
        other.kill()
        other.wait()
        for p in made:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with suppress(FileNotFoundError):
                    p.unlink()


@contextmanager
def _frr_crashlog() -> Iterator[None]:
    made_root = not os.path.isdir(FRR_TMP)
    path = Path(FRR_TMP) / f"bgpd.{_dead_pid()}"
    path.mkdir(parents=True)
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if made_root:
            with suppress(OSError):
                os.rmdir(FRR_TMP)


@contextmanager
def _netns() -> Iterator[None]:
    name = f"ktb-leakcheck-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@contextmanager
def _link() -> Iterator[None]:
    name = f"ktb-lk{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


@contextmanager
def _session_process() -> Iterator[None]:
    proc = subprocess.Popen(["sleep", "60"])  # started by this session: its mark
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def _ipmininet_file() -> Iterator[None]:
    path = Path(f"/tmp/zebra_leakcheck{os.getpid()}.cfg")
    path.write_text("hostname leakcheck\n")
    try:
        yield
    finally:
        path.unlink()


@contextmanager
def _key_pair() -> Iterator[None]:
    private = Path(f"/tmp/tmp{uuid.uuid4().hex[:8]}")
    try:
        private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        Path(f"{private}.pub").write_text("ssh-rsa AAAA leakcheck\n")
        yield
    finally:
        for p in (private, Path(f"{private}.pub")):
            with suppress(FileNotFoundError):
                p.unlink()


@pytest.mark.parametrize(("plant", "kind"), [
    (_frr_crashlog, "frr"), (_netns, "netns"), (_link, "links"), (_session_process, "procs"),
    (_ipmininet_file, "tmp"), (_key_pair, "tmp"),
], ids=["frr-crash-log", "ktb-netns", "ktb-link", "session-process", "ipmininet-file",
        "ipmininet-key-pair"])
def test_a_leftover_of_the_testbeds_kind_fails_it(plant: Callable[[], object],
                                                  kind: str) -> None:
    before = machine_snapshot()
    with plant():  # type: ignore[attr-defined]
        during = machine_snapshot()
        assert during != before
        assert {k for k in before if during[k] != before[k]} == {kind}
        assert during[kind] > before[kind]
    assert machine_snapshot() == before
