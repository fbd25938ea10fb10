"""What a kube-proxy mode is to the node's kube-proxy process: one small protocol,
implemented once per mode in this package.

A mode's pure half (its name and the tools it runs) is its class in
testbed.model.svc.modes; the classes here subclass those and add what touches the
kernel. testbed.proxy.kubeproxy owns what every mode shares (the state file, the sync
timing, the health servers, the status it reports) and never asks which mode it runs.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from testbed.model.svc.config import ProxyConfig
from testbed.proxy.common.state import ProxyState


class KubeProxyMode(Protocol):
    """One node's kube-proxy in one mode: made with the node's name and address, started
    once, synced on every change of the state, or asked to remove its rules."""

    name: ClassVar[str]  # from the mode's pure class (testbed.model.svc.modes)
    tools: ClassVar[dict[str, str]]
    # whether a sync may be partial (only what changed since the last one); a mode that
    # cannot always does a full one, and the sync log says so
    partial_syncs: ClassVar[bool]
    proxy_ports: dict[str, int]  # service port -> the port the proxy listens on (userspace)

    def __init__(self, node: str, node_ip: str) -> None: ...

    def start(self) -> None:
        """What kube-proxy does once, before its first sync (chains, jumps, sysctls)."""

    def sync(self, state: ProxyState, config: ProxyConfig, full: bool) -> str:
        """Apply `state` (all of it if `full`, else what changed); the payload applied."""

    def cleanup(self) -> None:
        """Remove this mode's rules and chains from the node (kube-proxy --cleanup)."""
