"""kube-proxy's modes as plug-ins, the pure half: each mode's name, what it is, and the
tools its process runs (what preflight checks). Pure.

Each mode has its renderer beside it in this package (iptables.py, nftables.py,
userspace.py) and its process side in testbed.proxy.modes, a subclass of the class
here that adds start, sync and cleanup. Everything else (the topology file's
validation, kube-proxy's and the shell's command lines, preflight) takes the modes from
`PROXY_MODES` and asks the mode, never compares its name: a new mode is a class here,
its renderer, its subclass in testbed.proxy.modes, and a test.
"""

from __future__ import annotations

from typing import ClassVar

from testbed.model.plugins import Registry


class ProxyMode:
    """What the testbed knows of a kube-proxy mode without running it."""

    name: ClassVar[str]  # kube-proxy's --proxy-mode, the topology's kube_proxy_mode
    description: ClassVar[str]
    tools: ClassVar[dict[str, str]]  # programs its process runs -> their Debian package


class IptablesMode(ProxyMode):
    name = "iptables"
    description = ("the node's rules rendered whole (testbed.model.svc.iptables) and "
                   "applied in one iptables-restore --noflush")
    tools = {"iptables-restore": "iptables", "iptables-save": "iptables",
             "iptables": "iptables", "conntrack": "conntrack"}


class NftablesMode(ProxyMode):
    name = "nftables"
    description = ("the node's `ip kube-proxy` table (testbed.model.svc.nftables), "
                   "applied in one nft -f transaction")
    tools = {"nft": "nftables", "conntrack": "conntrack"}


class UserspaceMode(ProxyMode):
    name = "userspace"
    description = ("a proxy socket per service port and portal rules to it "
                   "(testbed.model.svc.userspace), the connections carried by kube-proxy")
    tools = {"iptables-restore": "iptables", "iptables-save": "iptables",
             "iptables": "iptables"}


# ipvs is not here: it needs the kernel's IPVS, which these kernels lack
PROXY_MODES: Registry[type[ProxyMode]] = Registry(
    "kube-proxy mode", (IptablesMode, NftablesMode, UserspaceMode))


def proxy_mode(name: str) -> type[ProxyMode]:
    """The mode called `name` (a UsageError listing the modes if there is none)."""
    return PROXY_MODES[name]
