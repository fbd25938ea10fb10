"""Namespace system calls made in-process (ctypes), as iproute2 and util-linux make them.

Why not spawn `ip netns attach`, `nsenter` or `unshare`: a process per pod costs more than
the operation itself, and bring-up does these a thousand times.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator

CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2
# the new mount API (Linux 5.2; the same numbers on every architecture since 5.1)
SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def netns_of(pid: int) -> str:
    """The path of a process's network namespace (what `entered` and nsenter take)."""
    return f"/proc/{pid}/ns/net"


def netns_inode(path: str) -> int:
    """A network namespace's identity: the inode of its file (a pid's, or a named one)."""
    return os.stat(path).st_ino


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


@contextlib.contextmanager
def entered(path: str, nstype: int = CLONE_NEWNET) -> Iterator[None]:
    """Run the body with this thread in another namespace of kind `nstype`, then come
    back. Only this thread moves: sockets opened inside stay bound to that namespace.

    The way back runs whatever happens, even if a Ctrl-C lands right after the move:
    a thread left in a pod's namespace would send the rest of the testbed's work
    (teardown included) there."""
    kind = {CLONE_NEWNET: "net", CLONE_NEWUTS: "uts"}[nstype]
    own = os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY)
    try:
        try:
            target = os.open(path, os.O_RDONLY)
            try:
                setns(target, nstype)
            finally:
                os.close(target)
            yield
        finally:
            setns(own, nstype)  # also when the move never happened: a no-op then
    finally:
        os.close(own)


def write_sysctl(key: str, value: str, proc: int | None = None) -> None:
    """Set a net sysctl of the network namespace this thread is in (/proc/sys/net follows
    the thread; see `entered`): through the machine's /proc, or through a procfs
    instance of the caller's own (`procfs`, a mount file descriptor).

    Why an instance of one's own: every network namespace adds dentries for its
    /proc/sys/net/... under the same parent dentries of a procfs instance, and a path
    look-up compares the name with each (proc_sys_compare). With 10,000 pods one
    `eth0/accept_dad` write through /proc cost ~9 ms and a third of the machine's CPU
    went there (perf); an instance used for one node's namespaces only stays short."""
    path = f"sys/{key.replace('.', '/')}"
    fd = os.open(path if proc is not None else f"/proc/{path}", os.O_WRONLY, dir_fd=proc)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def procfs() -> int | None:
    """A procfs instance of this process's own, mounted nowhere (fsopen and fsmount: no
    mount point, nothing another process can see), as a file descriptor to open paths
    under; the caller closes it, and the instance goes with it. None where the kernel
    cannot (before 5.2), and callers then use /proc."""
    fs = _libc.syscall(SYS_FSOPEN, b"proc", FSOPEN_CLOEXEC)
    if fs < 0:
        return None
    try:
        if _libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            return None
        mnt = _libc.syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0)
        return mnt if mnt >= 0 else None
    finally:
        os.close(fs)


@contextlib.contextmanager
def own_procfs() -> Iterator[int | None]:
    """`procfs()` for the body (for one node's sysctls, or one batch of its pods'),
    closed after; None inside where the kernel cannot make one."""
    fd = procfs()
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _mount(source: str | None, target: str, flags: int) -> int:
    rc = _libc.mount(source.encode() if source else None, target.encode(), None, flags, None)
    return 0 if rc == 0 else ctypes.get_errno()


_netns_dir_ready = False


def _ensure_netns_dir(path: str = NETNS_DIR) -> None:
    """As iproute2 does: /run/netns is a shared mount point, so the netns bind mounts made
    in it reach mount namespaces that copy it later. Once per process: the recursive
    remount walks every mount below it, which grows with the pods."""
    global _netns_dir_ready
    if _netns_dir_ready:
        return
    os.makedirs(path, mode=0o755, exist_ok=True)
    err = _mount(None, path, MS_SHARED | MS_REC)
    if err == errno.EINVAL:  # not a mount point yet: make it one, then shared
        err = _mount(path, path, MS_BIND | MS_REC) or _mount(None, path, MS_SHARED | MS_REC)
    if err:
        raise OSError(err, f"mount {path}: {os.strerror(err)}")
    _netns_dir_ready = True


def attach_netns(name: str, pid: int) -> None:
    """Give a process's network namespace a machine-wide name, as `ip netns attach` does
    (an empty file, then a bind mount of /proc/PID/ns/net on it)."""
    _ensure_netns_dir()
    path = f"{NETNS_DIR}/{name}"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    source = netns_of(pid)
    err = _mount(source, path, MS_BIND)
    if err:
        os.unlink(path)
        raise OSError(err, f"bind mount of {source} on {path}: {os.strerror(err)}")


def delete_netns(name: str) -> None:
    """Remove a named netns we attached, as `ip netns delete` does (lazy unmount, unlink).
    Missing is fine; a name that is not a plain file name in /run/netns is refused."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"not a network namespace name: {name!r}")
    path = f"{NETNS_DIR}/{name}"
    if not os.path.exists(path):
        return
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: not mounted (a half-made pod); just unlink
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
