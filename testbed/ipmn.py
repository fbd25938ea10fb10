"""ipmininet, imported without leaving files behind.

Importing `ipmininet.router.config` runs ssh-keygen at import time and leaves a key pair
in /tmp (for its SSHd daemon, which the testbed never uses). Every ipmininet import of the
testbed goes through this module, which removes that pair at once.
"""

from __future__ import annotations

import contextlib
import os

import ipmininet.clean as ipmininet_clean
import ipmininet.router.config.sshd as _sshd
from ipmininet.cli import IPCLI
from ipmininet.ipnet import IPNet
from ipmininet.ipswitch import IPSwitch
from ipmininet.iptopo import IPTopo
from ipmininet.link import IPIntf, IPLink
from ipmininet.router import Router
from ipmininet.router.config import STATIC, RouterConfig, StaticRoute

for _path in (_sshd.KEYFILE, _sshd.PUBKEY):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_path)

__all__ = ["IPCLI", "STATIC", "IPIntf", "IPLink", "IPNet", "IPSwitch", "IPTopo", "Router",
           "RouterConfig", "StaticRoute", "ipmininet_clean"]
