"""Signals held during teardown, then delivered; processes identified by start time."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from testbed import procs


def test_signals_are_held_until_the_body_finishes() -> None:
    done = []

    def raise_interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"), procs.signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            done.append("body finished")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert done == ["body finished"]  # the signal did not cut the body short
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored


def test_stop_recorded_spares_a_reused_pid() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = procs.start_time(proc.pid)
        assert started is not None and procs.is_alive(proc.pid, started)
        # a record whose start time differs names another process: it must not be touched
        assert procs.stop_recorded(proc.pid, started + 1) is False
        assert proc.poll() is None
        assert procs.stop_recorded(proc.pid, started) is True
        assert proc.wait(timeout=5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
