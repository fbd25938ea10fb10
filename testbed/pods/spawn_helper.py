"""The pause spawner's helper process (testbed.pods.spawner), run as
`python3 -I -S spawn_helper.py CATATONIT`: the standard library only, nothing of the
testbed, so that it starts in milliseconds and forking it copies little.

Protocol, one line each way a pause process: the testbed writes
`<unshare flags> <1: a private mount namespace, 0: none> <cgroup.procs file or ->`, the
helper forks and answers with the child's pid (or `E <errno>` if fork failed). The child
dies with the helper (PR_SET_PDEATHSIG), starts a session, joins the node's cgroup,
unshares the namespaces (marking its mounts private when it has its own), restores the
signal dispositions Python changed, and execs catatonit -P with /dev/null as stdin,
stdout and stderr: what `setpriv --pdeathsig KILL unshare ... catatonit -P` did, without
two dynamically linked programs to load per pod. Exit codes of a failed child:
121-125 name the step that failed.

The helper reaps its children itself (once a second), so a pid it signals is always its
own child, alive or a zombie, never a reused one. When the testbed closes its stdin (the
teardown's one step for every pause process), it sends SIGKILL to every child, reaps
each, and exits: no child outlives it to be reparented (an init that does not reap, as
on some VMs, would keep them as zombies).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
MS_REC, MS_PRIVATE = 16384, 1 << 18
REAP_EVERY_S = 1.0
libc = ctypes.CDLL(None, use_errno=True)


def child(flags: int, own_mounts: bool, cgroup: str, catatonit: str, helper: int) -> None:
    """In the forked child: never returns."""
    try:
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(121)
        if os.getppid() != helper:  # the helper died before the line above
            os._exit(121)
        os.setsid()
        if cgroup != "-":
            fd = os.open(cgroup, os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        if libc.unshare(flags) != 0:
            os._exit(122)
        if own_mounts and libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            os._exit(123)
        for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.execv(catatonit, ["catatonit", "-P"])  # argv as unshare gave it (PATH look-up)
    except BaseException:  # noqa: BLE001 - nothing may return into the helper's loop
        pass
    os._exit(125)


def reap(children: set[int]) -> None:
    """Reap every child that has ended (a zombie until then: its pid stays ours)."""
    while children:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


def end_all(children: set[int]) -> None:
    """SIGKILL every child, then reap each."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):  # not to an unreaped child
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def main() -> None:
    catatonit = sys.argv[1]
    helper = os.getpid()
    children: set[int] = set()
    out = sys.stdout
    pending = b""
    reaped = time.monotonic()
    while True:
        readable, _, _ = select.select([0], [], [], REAP_EVERY_S)
        if time.monotonic() - reaped >= REAP_EVERY_S:
            # not on every read: a wait for any child walks the kernel's list of all our
            # children, 10,000 at 10,000 pods, and a read comes every few pods
            reap(children)
            reaped = time.monotonic()
        if not readable:
            continue
        data = os.read(0, 65536)
        if not data:  # the testbed closed our stdin: end every child, then exit
            end_all(children)
            return
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            flags, mounts, cgroup = line.decode().split()
            try:
                pid = os.fork()
            except OSError as exc:
                out.write(f"E {exc.errno}\n")
                out.flush()
                continue
            if pid == 0:
                child(int(flags), mounts == "1", cgroup, catatonit, helper)
            children.add(pid)
            out.write(f"{pid}\n")
            out.flush()


if __name__ == "__main__":
    main()
