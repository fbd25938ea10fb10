"""Signals held during teardown, then delivered; processes identified by start time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import pytest

from testbed.kernel import procs


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


def test_an_interrupt_python_dropped_is_raised_again_at_the_next_check() -> None:
    """Python prints and drops an exception raised in an at-fork callback or a __del__;
    a SIGTERM handled there must still stop the run at the next safe point."""
    procs.acknowledge_interrupt()
    previous = signal.signal(signal.SIGTERM, procs.raise_interrupt)
    try:
        # what Python does with an exception raised in an at-fork callback
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            procs.check_interrupted()
        procs.check_interrupted()  # raised once, not again
    finally:
        signal.signal(signal.SIGTERM, previous)
        procs.acknowledge_interrupt()


def test_an_acknowledged_interrupt_is_not_raised_again() -> None:
    previous = signal.signal(signal.SIGINT, procs.raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)
        procs.acknowledge_interrupt()  # the entry point caught it and tore down
        procs.check_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_children_die_with_the_testbed_without_a_preexec_hook() -> None:
    """The prefix sets PR_SET_PDEATHSIG in the child itself (field PDeathSig of its status
    is not exported, so check the effect): its parent ends, it gets SIGKILL."""
    script = ("import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
              "print(p.pid, flush=True)")
    parent = subprocess.run(["python3", "-c", script, *procs.DIE_WITH_PARENT, "sleep", "30"],
                            capture_output=True, text=True, timeout=10)
    pid = int(parent.stdout.strip())
    deadline = time.monotonic() + 5
    while procs.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not procs.is_alive(pid)


def test_cpu_seconds_is_what_the_kernel_counted() -> None:
    """User and system time from /proc/PID/stat, as os.times() reports them for us."""
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # some CPU time to count
        pass
    times = os.times()
    assert procs.cpu_seconds(os.getpid()) == pytest.approx(times.user + times.system,
                                                           abs=0.05)
    assert procs.cpu_seconds(2**22 + 1) is None  # above any pid_max: no such process
