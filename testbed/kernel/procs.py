"""Processes the testbed owns: identify them exactly, stop them politely, then firmly.

A pid alone can be reused after a crash, so every process we record is identified by
(pid, start time in clock ticks since boot); `stop_recorded` never signals a process whose
start time differs. Nothing here kills by name or pattern.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

# Prefix for a command that must die with the testbed: the child gets SIGKILL when the
# thread that started it ends (PR_SET_PDEATHSIG, kept across exec), so a pause process,
# container or node process never outlives a testbed that was SIGKILLed before it could
# record the child's pid. A prefix rather than a preexec_fn: with no Python code to run in
# the child, CPython spawns with vfork, whose cost does not grow with this process's
# memory, and runs no at-fork callbacks, where Python drops exceptions (a Ctrl-C handled
# there would be lost; see `raise_interrupt`). It is the *thread* that counts: start such
# children from a thread that lives as long as the cluster, the main thread in practice.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL")

# Signals turned into KeyboardInterrupt by `raise_interrupt` and not yet acknowledged.
_pending_interrupts: list[int] = []


def raise_interrupt(signum: int, _frame: Any) -> None:
    """The SIGINT/SIGTERM handler of the entry points: interrupt what runs, as Ctrl-C does.

    Python drops an exception raised where it cannot propagate (an at-fork callback, a
    `__del__`, a weakref callback) after printing "Exception ignored in". So the signal is
    also remembered, and `check_interrupted` raises again at a safe point if it was lost.
    """
    _pending_interrupts.append(signum)
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def check_interrupted() -> None:
    """Raise KeyboardInterrupt for a signal whose first exception was lost (see
    `raise_interrupt`). Call it only where no interrupt can be propagating already
    (between units of work, never in a `finally` or teardown)."""
    if _pending_interrupts:
        signum = _pending_interrupts[0]
        _pending_interrupts.clear()
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def acknowledge_interrupt() -> None:
    """The KeyboardInterrupt was caught and handled: forget the signals behind it."""
    _pending_interrupts.clear()


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, even if the shell that started us
    ignores SIGINT (as it does for background jobs)."""
    signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)


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


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on, or None if the process is gone. The
    command name (field 2) may hold spaces and parentheses: split after the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def is_alive(pid: int, started: int | None = None) -> bool:
    """True while `pid` runs (and, if given, is still the process that started at
    `started`): one read of /proc/PID/stat (state and start time), as teardown asks it
    of every pod."""
    fields = _stat(pid)
    if fields is None or fields[0] in {"Z", "X"}:
        return False
    return started is None or int(fields[19]) == started


def cpu_seconds(pid: int) -> float | None:
    """CPU time the process has used, user and system (fields 14 and 15), in seconds;
    None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else \
        (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state(pid: int) -> str | None:
    """The process's state letter (R, S, T for stopped, ...), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else fields[0]


def in_netns(inodes: set[int]) -> list[int]:
    """Every process (not thread) whose network namespace is one of `inodes`, but this
    one: the processes living in namespaces the caller identifies as its own."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                out.append(int(entry))
        except OSError:  # gone meanwhile, or a kernel thread's unreadable link
            continue
    return sorted(out)


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
    """Stop a process recorded earlier (maybe by a crashed run). True if it was ours and ran.
    Without a start time nothing is signalled: a pid alone may be anyone's by now."""
    if pid <= 1 or pid == os.getpid():
        raise ValueError(f"refusing to signal pid {pid}")
    if started is None or not is_alive(pid, started):
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


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run in a node, pod or container."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def decode_output(value: bytes | str | None) -> str:
    """A child's captured output as text, whatever form the caller got it in."""
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
