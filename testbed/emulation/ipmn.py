"""ipmininet and Mininet, imported without leaving files behind or running their
machine-wide cleanup.

Importing `ipmininet.router.config` runs ssh-keygen at import time and leaves a key pair
in /tmp (for its SSHd daemon, which the testbed never uses). Every ipmininet import of the
testbed goes through this module, which removes that pair at once.

Mininet's `cleanup()` kills processes by pattern and deletes files in /tmp; ipmininet calls
it when a router's configuration check fails. `guard_global_cleanup` replaces it, for this
process, with a function that raises, so a failure becomes an ordinary error and the
testbed's own scoped teardown runs instead.
"""

from __future__ import annotations

import contextlib
import os

import ipmininet.clean as ipmininet_clean
import ipmininet.router.config.sshd as _sshd
import mininet.clean
from ipmininet.cli import IPCLI
from ipmininet.ipnet import IPNet
from ipmininet.ipswitch import IPSwitch
from ipmininet.iptopo import IPTopo
from ipmininet.link import IPIntf, IPLink
from ipmininet.router import Router
from ipmininet.router.config import STATIC, RouterConfig, StaticRoute
from mininet.log import setLogLevel

from testbed.errors import TestbedError

FRR_DIR = "/usr/lib/frr"

for _path in (_sshd.KEYFILE, _sshd.PUBKEY):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_path)



class GlobalCleanupRefused(TestbedError):
    """Something asked for Mininet's machine-wide cleanup; the testbed never runs it."""


def _refuse_global_cleanup(*_args: object, **_kwargs: object) -> None:
    raise GlobalCleanupRefused(
        "Mininet's global cleanup was requested (ipmininet does this when a router's "
        "configuration check fails); refused: the testbed removes only what it created"
    )


def guard_global_cleanup() -> None:
    """Make mininet.clean.cleanup (and ipmininet's alias of it) raise instead of running."""
    mininet.clean.cleanup = _refuse_global_cleanup
    ipmininet_clean.cleanup = _refuse_global_cleanup


def ensure_frr_on_path() -> None:
    """ipmininet starts FRR daemons by bare name; Debian keeps them in /usr/lib/frr."""
    path = os.environ.get("PATH", "")
    if FRR_DIR not in path.split(os.pathsep):
        os.environ["PATH"] = path + os.pathsep + FRR_DIR


__all__ = ["IPCLI", "STATIC", "GlobalCleanupRefused", "IPIntf", "IPLink", "IPNet", "IPSwitch",
           "IPTopo", "Router", "RouterConfig", "StaticRoute", "ensure_frr_on_path",
           "guard_global_cleanup", "ipmininet_clean", "setLogLevel"]
