"""One cluster at a time on a machine: an flock under the state root."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from testbed.errors import LeftoverError
from testbed.records.journal import STATE_ROOT


class ClusterLock:
    """One cluster at a time on a machine: Mininet's interface names are machine-wide.

    The lock is an flock, so it is released by the kernel when its holder dies, however
    it dies; a run directory without a live lock holder is a crashed run's leftovers.
    """

    def __init__(self, root: Path = STATE_ROOT) -> None:
        self.root = root
        self._fd: int | None = None

    def acquire(self, owner: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise LeftoverError(
                    f"another cluster is running on this machine ({holder}); "
                    "stop it first (one cluster at a time)"
                ) from None
            # The previous holder unlinks the file when it releases: make sure we locked
            # the file that is at the path now, not an unlinked one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{owner}, pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        """Unlock and remove the lock file (and the state root, if nothing else is in it)."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / "lock")
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                self.root.rmdir()

    @property
    def held(self) -> bool:
        return self._fd is not None
