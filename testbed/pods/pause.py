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

import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Any

from testbed.errors import TestbedError
from testbed.kernel import ns, procs
from testbed.kernel.procs import ExecResult, decode_output

NETNS_DIR = ns.NETNS_DIR
PAUSE_COMMAND = ("catatonit", "-P")


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
    pause: Any  # a testbed.pods.spawner.PauseProcess: Popen's poll, wait, terminate, kill
    pause_started: int | None
    ip: IPv4Interface | None = None
    container_id: str = ""
    containers: dict[str, Container] = field(default_factory=dict)
    own_mounts: bool = False  # a mount namespace of its own (for resolv.conf and hosts)
    port_mappings: tuple[dict[str, Any], ...] = ()  # hostPorts, as the runtime passes them
    # what starts a process in the node's cpu cgroup (testbed.kernel.cgroups.prefix), so a
    # container and what is exec'd in the pod count against the node's CPU share
    run_prefix: tuple[str, ...] = ()

    @property
    def netns_path(self) -> str:
        return f"{NETNS_DIR}/{self.netns}"

    @property
    def pause_pid(self) -> int:
        return self.pause.pid

    def nsenter_prefix(self) -> list[str]:
        """The nsenter arguments that put a command into this pod's namespaces."""
        pid = self.pause_pid
        mounts = [f"--mount=/proc/{pid}/ns/mnt"] if self.own_mounts else []
        return ["nsenter", f"--net={self.netns_path}", f"--uts=/proc/{pid}/ns/uts",
                f"--ipc=/proc/{pid}/ns/ipc", *mounts, "--"]

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
            proc = subprocess.run([*self.run_prefix, *self.nsenter_prefix(), *argv],
                                  capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(124, decode_output(exc.stdout),
                              decode_output(exc.stderr) + "\n(timed out)")
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        """Start a process in the pod's namespaces; the caller owns it and must stop it."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen([*self.run_prefix, *procs.DIE_WITH_PARENT,
                                 *self.nsenter_prefix(), *command], **kwargs)


def wait_pause(proc: Any, hostname: str, timeout_s: float = 5.0) -> None:
    """Wait until a spawned pause process runs catatonit (its namespaces exist), then name
    its UTS namespace `hostname`. On failure the process is stopped and an error raised."""
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
                               f"({' '.join(proc.args)})")
        time.sleep(0.0002)
    _set_hostname(proc.pid, hostname)


def bind_files(pod: Pod, files: dict[str, str]) -> None:
    """Bind-mount files over paths in the pod's own mount namespace (kubelet's
    /etc/resolv.conf and /etc/hosts), before its containers start."""
    if not pod.own_mounts:
        raise TestbedError(f"pod {pod.name} has no mount namespace of its own")
    script = " && ".join(f'mount --bind "${i * 2 + 1}" "${i * 2 + 2}"' for i in range(len(files)))
    argv = ["nsenter", f"--mount=/proc/{pod.pause_pid}/ns/mnt", "--", "sh", "-c", script, "sh"]
    for source, target in files.items():
        argv += [source, target]
    res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         timeout=30)
    if res.returncode != 0:
        raise TestbedError(f"pod {pod.name}: mounting {', '.join(files.values())} failed: "
                           f"{res.stderr.strip()[:300]}")


def _set_hostname(pid: int, hostname: str) -> None:
    """The pod's hostname, set from here: enter its UTS namespace, set, come back."""
    with ns.entered(f"/proc/{pid}/ns/uts", ns.CLONE_NEWUTS):
        socket.sethostname(hostname)
