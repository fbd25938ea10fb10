"""Checks for what a running cluster needs, and guards against Mininet's global cleanup.

Mininet's `cleanup()` kills processes by pattern and deletes files in /tmp; ipmininet calls
it when a router's configuration check fails. `guard_global_cleanup` replaces it, for this
process, with a function that raises, so a failure becomes an ordinary error and our own
scoped teardown runs instead.
"""

from __future__ import annotations

import os
import shutil

from testbed.errors import MissingDependencyError, PrivilegeError, TestbedError

FRR_DIR = "/usr/lib/frr"
# tool -> Debian package that provides it
TOOLS = {
    "mnexec": "mininet",
    "brctl": "bridge-utils",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "catatonit": "catatonit",
    "iptables": "iptables",
    "ping": "iputils-ping",
    "iperf3": "iperf3",
    "zebra": "frr",
    "staticd": "frr",
}
CNI_PLUGINS = ("bridge", "host-local", "loopback")


class GlobalCleanupRefused(TestbedError):
    """Something asked for Mininet's machine-wide cleanup; the testbed never runs it."""


def _refuse_global_cleanup(*_args: object, **_kwargs: object) -> None:
    raise GlobalCleanupRefused(
        "Mininet's global cleanup was requested (ipmininet does this when a router's "
        "configuration check fails); refused: the testbed removes only what it created"
    )


def guard_global_cleanup() -> None:
    """Make mininet.clean.cleanup (and ipmininet's alias of it) raise instead of running."""
    import mininet.clean

    from testbed import ipmn

    mininet.clean.cleanup = _refuse_global_cleanup
    ipmn.ipmininet_clean.cleanup = _refuse_global_cleanup


def ensure_frr_on_path() -> None:
    """ipmininet starts FRR daemons by bare name; Debian keeps them in /usr/lib/frr."""
    path = os.environ.get("PATH", "")
    if FRR_DIR not in path.split(os.pathsep):
        os.environ["PATH"] = path + os.pathsep + FRR_DIR


def check_root() -> None:
    if os.geteuid() != 0:
        raise PrivilegeError("this needs root (network namespaces, bridges, netfilter): "
                             "run it with sudo")


def missing_tools() -> list[tuple[str, str]]:
    """(tool, Debian package) for every required tool not found."""
    ensure_frr_on_path()
    missing = [(tool, pkg) for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    from testbed.cni import CNI_PATH

    for plugin in CNI_PLUGINS:
        if not os.access(os.path.join(CNI_PATH, plugin), os.X_OK):
            missing.append((f"{CNI_PATH}/{plugin}", "containernetworking-plugins"))
    return missing


def check_python_modules() -> None:
    for module, how in (("mininet", "the Debian package mininet"),
                        ("ipmininet", "scripts/setup.sh (pip install --no-deps ipmininet)")):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"Python module {module} is missing: install {how}, or run `sudo make setup`"
            ) from None


def check_all() -> None:
    """Everything a bring-up needs, checked before anything is created."""
    check_root()
    missing = missing_tools()
    if missing:
        pkgs = sorted({pkg for _, pkg in missing})
        tools = ", ".join(tool for tool, _ in missing)
        raise MissingDependencyError(
            f"missing {tools}: install the Debian package(s) {' '.join(pkgs)} "
            "(or run `sudo make setup`)"
        )
    check_python_modules()
    guard_global_cleanup()
