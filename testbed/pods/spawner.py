"""Pause processes started by a small helper process instead of one `setpriv` and one
`unshare` each (issue 14).

Why: at 10,000 pods a quarter of the machine's CPU went into starting those two
dynamically linked programs (perf: the loader's CPU feature probing, page faults), two
execs a pod before catatonit, which is static. The helper (spawn_helper.py, standard
library only) forks itself, the child unshares and execs catatonit directly. The
namespaces, the process and its session are what `setpriv --pdeathsig KILL unshare --net
--uts --ipc [--mount --propagation private] catatonit -P` made; the helper dies with
the testbed, and its children with it (PR_SET_PDEATHSIG at both steps).

The pause processes are the helper's children, not the testbed's, so `PauseProcess`
stands in for the `subprocess.Popen` the rest of the code holds: pid, poll, wait,
terminate, kill, each checking the start time so that a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from testbed.errors import TestbedError
from testbed.kernel import procs

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, \
    0x40000000
HELPER = Path(__file__).with_name("spawn_helper.py")
GONE = -1  # a reaped child's exit status is the helper's to know; "ended" is what we know


class PauseProcess:
    """A pause process the helper started: the part of `subprocess.Popen` that pods use."""

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.started = procs.start_time(pid)
        self.returncode: int | None = None if self.started is not None else GONE

    def poll(self) -> int | None:
        if self.returncode is None and not procs.is_alive(self.pid, self.started):
            self.returncode = GONE
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.001)
        return GONE

    def send_signal(self, sig: int) -> None:
        """Signal it if it is still the process we started (never a reused pid)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Spawner:
    """One helper process for a cluster: started on first use (from the thread that
    lives as long as the cluster, for its death signal), closed at teardown."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._catatonit = shutil.which("catatonit") or "catatonit"
        self.outstanding = 0  # asked for (`submit`), not yet collected

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> subprocess.Popen:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [*procs.DIE_WITH_PARENT, sys.executable, "-I", "-S", str(HELPER),
                 self._catatonit],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                start_new_session=True)  # Ctrl-C reaches us, not the helper
        return self._proc

    def spawn(self, own_mounts: bool = False, cgroup_procs: str | None = None
              ) -> PauseProcess:
        """A pause process in new network, UTS and IPC namespaces (and mount, with
        `own_mounts`), in the cgroup whose `cgroup.procs` is given; not waited for."""
        with self._lock:
            self.submit(own_mounts, cgroup_procs)
            return self.collect(1)[0]

    def submit(self, own_mounts: bool = False, cgroup_procs: str | None = None) -> None:
        """Ask for a pause process (as `spawn`) without waiting for the answer: the helper
        forks while the caller does other work; `collect` takes the answers in order.
        Keep what is outstanding under a few thousand (the pipe's buffer)."""
        flags = CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | (CLONE_NEWNS if own_mounts else 0)
        proc = self.start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(f"{flags} {int(own_mounts)} {cgroup_procs or '-'}\n")
        except (BrokenPipeError, OSError) as exc:
            raise TestbedError(f"the pause spawner (pid {proc.pid}) is gone: {exc}") from None
        self.outstanding += 1

    def collect(self, count: int) -> list[PauseProcess]:
        """The next `count` pause processes asked for, in the order they were asked."""
        proc = self.start()
        assert proc.stdout is not None
        out = []
        for _ in range(count):
            try:
                answer = proc.stdout.readline().strip()
            except OSError as exc:
                raise TestbedError(f"the pause spawner (pid {proc.pid}) is gone: {exc}") \
                    from None
            self.outstanding -= 1
            if not answer or answer.startswith("E"):
                raise TestbedError("the pause spawner could not fork: " + (
                    os.strerror(int(answer.split()[1])) if answer else "no answer"))
            out.append(PauseProcess(int(answer), ["catatonit", "-P"]))
        return out

    def close(self) -> None:
        """End the helper: it kills and reaps every pause process it started (all at once,
        the teardown's way to end them), then exits."""
        if self._proc is not None:
            if self._proc.stdin is not None:
                with contextlib.suppress(OSError):  # a helper already gone: nothing to say
                    self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)  # thousands of children to reap
            except subprocess.TimeoutExpired:
                procs.stop_popen(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
            self.outstanding = 0
