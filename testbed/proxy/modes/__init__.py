"""kube-proxy's modes as plug-ins, the process half: one module per mode, each a class
behind `KubeProxyMode` (base.py) that subclasses the mode's pure class
(testbed.model.svc.modes) and adds start, sync and cleanup.

To add a mode: its pure class and renderer in testbed.model.svc, its module here, and
one line in `PROXIERS` (a unit test checks both registries name the same modes).
"""

from __future__ import annotations

from testbed.model.plugins import Registry
from testbed.proxy.modes.base import KubeProxyMode
from testbed.proxy.modes.iptables import IptablesKubeProxy
from testbed.proxy.modes.nftables import NftablesKubeProxy
from testbed.proxy.modes.userspace import UserspaceKubeProxy

PROXIERS: Registry[type[KubeProxyMode]] = Registry(
    "kube-proxy mode", (IptablesKubeProxy, NftablesKubeProxy, UserspaceKubeProxy))


def proxier(name: str, node: str, node_ip: str) -> KubeProxyMode:
    """The mode called `name`, for one node (a UsageError listing the modes if none)."""
    return PROXIERS[name](node, node_ip)


__all__ = ["PROXIERS", "KubeProxyMode", "proxier"]
