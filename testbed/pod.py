"""Pods and containers: a pause process holding namespaces, and processes that join them.

    node (Mininet host netns)                 pod (netns ktb-<node>-<pod>)
    +------------------------------+          +----------------------------+
    | cbr0 10.0.0.1/24             |  veth    | eth0 10.0.0.2/24           |
    |   vethXXXX (hairpin) --------+----------+ lo 127.0.0.1               |
    | node-1-eth0 10.100.0.2 ------+-> router |  catatonit -P (pause)      |
    +------------------------------+          |  containers: nsenter'd     |
                                              +----------------------------+

The pause process is started from the machine's own mount namespace with fresh network,
UTS and IPC namespaces (Mininet hosts have private mount namespaces, so a netns attached
from inside a node would be invisible to the rest of the machine). It is then attached as
a named netns, so `ip netns exec ktb-node-1-pod-1 ...` works machine-wide.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface

from testbed import procs
from testbed.errors import TestbedError
from testbed.state import PREFIX

CLONE_NEWUTS = 0x04000000
NETNS_DIR = "/var/run/netns"
PAUSE_COMMAND = ("catatonit", "-P")


def pod_netns_name(node: str, pod: str) -> str:
    """The machine-wide name of a pod's network namespace."""
    return f"{PREFIX}-{node}-{pod}"


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run in a node, pod or container."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Container:
    """An app process in a pod's namespaces: it shares the pod's IP and localhost."""

    name: str
    command: tuple[str, ...]
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Pod:
    """A pod on a node: pause process, named netns, CNI-assigned address, containers."""

    name: str
    node: str
    netns: str
    pause: subprocess.Popen
    pause_started: int | None
    ip: IPv4Interface | None = None
    container_id: str = ""
    containers: dict[str, Container] = field(default_factory=dict)

    @property
    def netns_path(self) -> str:
        return f"{NETNS_DIR}/{self.netns}"

    @property
    def pause_pid(self) -> int:
        return self.pause.pid

    def nsenter_prefix(self) -> list[str]:
        """The nsenter arguments that put a command into this pod's namespaces."""
        pid = self.pause_pid
        return ["nsenter", f"--net={self.netns_path}", f"--uts=/proc/{pid}/ns/uts",
                f"--ipc=/proc/{pid}/ns/ipc", "--"]

    def exec(self, command: list[str] | str, timeout: float | None = 60,
             container: str | None = None) -> ExecResult:
        """Run a command to completion in the pod (as `kubectl exec` into a container would)."""
        if container is not None:
            c = self.containers.get(container)
            if c is None:
                raise TestbedError(f"pod {self.name} has no container {container!r}")
            if not c.running:
                raise TestbedError(f"container {container!r} of pod {self.name} is not running")
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        try:
            proc = subprocess.run(self.nsenter_prefix() + argv, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(124, _text(exc.stdout), _text(exc.stderr) + "\n(timed out)")
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        """Start a process in the pod's namespaces; the caller owns it and must stop it."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("preexec_fn", procs.die_with_parent)  # noqa: PLW1509
        return subprocess.Popen(self.nsenter_prefix() + list(command), **kwargs)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# setpriv: die with the testbed (PR_SET_PDEATHSIG); unshare: the pod's own network, UTS and
# IPC namespaces; then the pause process itself. Each execs the next, so the pid is the
# pause's, and no Python code runs in the child: CPython can then spawn with vfork, whose
# cost does not grow with this process's memory (a preexec_fn forces a full fork).
PAUSE_ARGV = ("setpriv", "--pdeathsig", "KILL", "unshare", "--net", "--uts", "--ipc",
              *PAUSE_COMMAND)
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20


def start_pause(hostname: str, timeout_s: float = 5.0) -> tuple[subprocess.Popen, int | None]:
    """Start a pause process in new net/UTS/IPC namespaces, named `hostname`; returns it
    and its start time once it runs (namespaces made, catatonit executed)."""
    proc = subprocess.Popen(
        list(PAUSE_ARGV),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches us, not the pause process
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.readlink(f"/proc/{proc.pid}/exe").endswith("/catatonit"):
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.stop_popen(proc)
            raise TestbedError(f"pause process for {hostname} did not start "
                               f"({' '.join(PAUSE_ARGV)})")
        time.sleep(0.0002)
    _set_hostname(proc.pid, hostname)
    return proc, procs.start_time(proc.pid)


def _setns(fd: int, nstype: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _set_hostname(pid: int, hostname: str) -> None:
    """The pod's hostname, set from here: enter its UTS namespace, set, come back."""
    own = os.open("/proc/thread-self/ns/uts", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
    try:
        _setns(target, CLONE_NEWUTS)
        try:
            socket.sethostname(hostname)
        finally:
            _setns(own, CLONE_NEWUTS)
    finally:
        os.close(target)
        os.close(own)


def _mount(source: str | None, target: str, flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(source.encode() if source else None, target.encode(), None, flags, None)
    return 0 if rc == 0 else ctypes.get_errno()


def _ensure_netns_dir(path: str = "/run/netns") -> None:
    """As iproute2 does: /run/netns is a shared mount point, so the netns bind mounts made
    in it reach mount namespaces that copy it later."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    err = _mount(None, path, MS_SHARED | MS_REC)
    if err == errno.EINVAL:  # not a mount point yet: make it one, then shared
        err = _mount(path, path, MS_BIND | MS_REC) or _mount(None, path, MS_SHARED | MS_REC)
    if err:
        raise OSError(err, f"mount {path}: {os.strerror(err)}")


def attach_netns(name: str, pid: int) -> None:
    """Give the pause process's network namespace a machine-wide name, as `ip netns attach`
    does (an empty file, then a bind mount of /proc/PID/ns/net on it), in-process."""
    _ensure_netns_dir()
    path = f"{NETNS_DIR}/{name}"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    err = _mount(f"/proc/{pid}/ns/net", path, MS_BIND)
    if err:
        os.unlink(path)
        raise OSError(err, f"bind mount of /proc/{pid}/ns/net on {path}: {os.strerror(err)}")


MNT_DETACH = 2


def delete_netns(name: str) -> None:
    """Remove a named netns we attached, as `ip netns delete` does (lazy unmount, unlink),
    in-process: a spawn per pod would cost more than the whole operation. Missing is fine.
    """
    path = f"{NETNS_DIR}/{name}"
    if not os.path.exists(path):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: not mounted (a half-made pod); just unlink
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
