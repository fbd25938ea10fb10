"""Progress for long runs: a bar on a terminal, plain timestamped lines elsewhere (CI logs)."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter:
    """Counts steps of a run and says what is happening; safe to use without a terminal."""

    def __init__(self, total: int = 0, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.interactive = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.total = total
        self.done = 0
        self._t0 = time.monotonic()
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> Reporter:
        if self.interactive:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total or None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def set_total(self, total: int) -> None:
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def step(self, description: str) -> None:
        """One unit of work finished."""
        self.done += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=description)
        elif self.enabled and (self.done == self.total or self.done % 10 == 0):
            self.note(f"[{self.done}/{self.total}] {description}")

    def note(self, message: str) -> None:
        """A line worth keeping in the log (phase changes, warnings)."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._t0
        if self._progress is not None:
            self._progress.console.print(f"[dim]{elapsed:6.1f}s[/dim] {message}")
        else:
            print(f"{elapsed:6.1f}s {message}", file=sys.stderr, flush=True)
