"""What a reproduction of a run needs to know about where it ran: the code's commit and
the versions of the kernel, Python, the Debian packages and the Python packages."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from testbed.kernel import features

DEBIAN_PACKAGES = ["mininet", "frr", "iperf3", "iputils-ping", "containernetworking-plugins",
                   "catatonit", "iptables", "iproute2", "bridge-utils", "linux-base"]
PYTHON_PACKAGES = ["ipmininet", "pandas", "pyyaml", "matplotlib", "rich"]


def _cmd(argv: list[str], cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (res.stdout or res.stderr).strip() if res.returncode == 0 else ""


def git_info(repo: Path) -> dict[str, Any]:
    """The commit the code ran from, and whether the work tree had uncommitted changes."""
    commit = _cmd(["git", "rev-parse", "HEAD"], cwd=repo)
    status = _cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    return {"commit": commit or None, "dirty": bool(status) if commit else None}


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """The system's identity (ID, VERSION_ID, PRETTY_NAME, ...)."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
    return out


def environment_info() -> dict[str, Any]:
    """Kernel, system, Python, Debian and Python package versions, and what the kernel can
    emulate: what a reproduction needs."""
    debs = {}
    for pkg in DEBIAN_PACKAGES:
        debs[pkg] = _cmd(["dpkg-query", "-W", "-f=${Version}", pkg]) or None
    pys = {}
    for pkg in PYTHON_PACKAGES:
        try:
            pys[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pys[pkg] = None
    return {
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": os_release().get("PRETTY_NAME"),
        "features": features.as_dict(features.probe()),
        "debian_packages": debs,
        "python_packages": pys,
        "tools": {
            "iperf3": _cmd(["iperf3", "--version"]).splitlines()[0:1],
            "ping": _cmd(["ping", "-V"]),
        },
    }
