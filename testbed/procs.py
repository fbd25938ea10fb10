"""Processes the testbed owns: identify them exactly, stop them politely, then firmly.

A pid alone can be reused after a crash, so every process we record is identified by
(pid, start time in clock ticks since boot); `stop_recorded` never signals a process whose
start time differs. Nothing here kills by name or pattern.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For preexec_fn: the child gets SIGKILL when the thread that started it ends.

    So a pause process or container never outlives a testbed that was SIGKILLed before it
    could record the child's pid. (It is the *thread* that counts: start such children
    from a thread that lives as long as the cluster, the main thread in practice.)
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
                     ) -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the body runs, then act on the first one that came.

    Only the main thread can set handlers; elsewhere the body simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            handler = previous[pending[0]]
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                if pending[0] == signal.SIGINT:
                    raise KeyboardInterrupt
                os.kill(os.getpid(), pending[0])


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def is_alive(pid: int, started: int | None = None) -> bool:
    """True while `pid` runs (and, if given, is still the process that started at `started`)."""
    st = start_time(pid)
    if st is None:
        return False
    if _is_zombie(pid):
        return False
    return started is None or st == started


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split()[0] in {"Z", "X"}


def stop_popen(proc: subprocess.Popen, timeout: float = 2.0) -> None:
    """Terminate a child we started, wait, then kill and reap it: never leaves a zombie."""
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=timeout)


def stop_recorded(pid: int, started: int | None, timeout: float = 2.0) -> bool:
    """Stop a process recorded earlier (maybe by a crashed run). True if it was ours and ran."""
    if started is not None and not is_alive(pid, started):
        return False
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, started):
            _reap(pid)
            return True
        time.sleep(0.02)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child (otherwise its parent or init does)."""
    with suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
