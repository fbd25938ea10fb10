"""Pod wiring with the real CNI plugins (containernetworking-plugins).

`CniRuntime` executes the plugins that the pod network's configuration names
(`PodNetwork.cni_config`) the way a container runtime does: the network configuration on
stdin, the CNI_* variables in the environment, the result as JSON on stdout. The plugins
run with only the *node's network namespace* entered (nsenter --net), so they see the
node's bridge while every path (the pod's netns, the IPAM data directory) resolves in the
machine's own mount namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from testbed.errors import TestbedError
from testbed.model.podnet.base import CNI_VERSION
from testbed.model.spec import ContainerPort

CNI_PATH = "/usr/lib/cni"


def loopback_config() -> dict[str, Any]:
    """A runtime also runs the loopback plugin, which brings the pod's lo up."""
    return {"cniVersion": CNI_VERSION, "name": "cni-loopback", "type": "loopback"}


def port_mappings(ports: Sequence[ContainerPort]) -> tuple[dict[str, Any], ...]:
    """A pod's hostPorts as kubelet hands them to the runtime and the runtime to CNI
    (the `portMappings` capability's runtimeConfig)."""
    return tuple({"hostPort": p.host_port, "containerPort": p.container_port,
                  "protocol": p.protocol.lower(), "hostIP": ""} for p in ports if p.host_port)


def portmap_config(network_name: str, mappings: Sequence[dict[str, Any]],
                   prev_result: dict[str, Any] | None) -> dict[str, Any]:
    """The portmap plugin's configuration as libcni builds it for the plugin after the
    pod network's in a chain: its conflist entry (kubenet's has `capabilities:
    {portMappings: true}`), the runtime's portMappings injected as `runtimeConfig`, the
    previous plugin's result as `prevResult` (ADD only). kubenet's entry also names
    `externalSetMarkChain: KUBE-MARK-MASQ`; here portmap keeps its own SNAT chains,
    since pods start before kube-proxy has made that chain."""
    config: dict[str, Any] = {"cniVersion": CNI_VERSION, "name": network_name,
                              "type": "portmap", "capabilities": {"portMappings": True},
                              "runtimeConfig": {"portMappings": list(mappings)}}
    if prev_result is not None:
        config["prevResult"] = prev_result
    return config


def prev_result(address: IPv4Interface, gateway: str | None) -> dict[str, Any]:
    """The previous plugin's result as portmap reads it (the pod's addresses)."""
    ip: dict[str, Any] = {"version": "4", "address": str(address)}
    if gateway:
        ip["gateway"] = gateway
    return {"cniVersion": CNI_VERSION, "ips": [ip]}


@dataclass(frozen=True)
class CniResult:
    """What the bridge plugin reports for a pod: its address and the gateway."""

    address: IPv4Interface
    gateway: str | None
    raw: dict[str, Any]


def parse_result(text: str) -> CniResult:
    """Parse a CNI 0.4.0 result; the pod's eth0 address is the first IPv4 entry."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise TestbedError(f"CNI plugin printed no JSON result: {text.strip()[:200]!r}") from None
    for ip in data.get("ips", []):
        if ip.get("version", "4") == "4" or ":" not in ip["address"]:
            return CniResult(IPv4Interface(ip["address"]), ip.get("gateway"), data)
    raise TestbedError(f"CNI result has no IPv4 address: {text.strip()[:200]}")


class CniRuntime:
    """Runs CNI plugins against a node's network namespace, as a container runtime does
    (a `testbed.pods.wiring.Wiring`)."""

    concurrent = True  # the plugins are processes: nodes wired side by side use every core

    def __init__(self, plugin_dir: str = CNI_PATH) -> None:
        self.plugin_dir = plugin_dir

    def close(self) -> None:
        """Nothing held between calls."""

    def _exec(self, command: str, config: dict[str, Any], node_netns: str, container_id: str,
              pod_netns: str, ifname: str) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": pod_netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": self.plugin_dir,
        }
        plugin = str(Path(self.plugin_dir) / config["type"])
        proc = subprocess.run(
            ["nsenter", f"--net={node_netns}", "--", plugin],
            input=json.dumps(config), env=env, capture_output=True, text=True, timeout=30,
        )
        if proc.returncode != 0:
            detail = (proc.stdout.strip() or proc.stderr.strip())[:300]
            raise TestbedError(f"CNI plugin {config['type']} {command} failed for "
                               f"{container_id}: {detail}")
        return proc.stdout

    def add(self, config: dict[str, Any], node_netns: str, container_id: str,
            pod_netns: str) -> CniResult:
        """ADD: loopback first, then the bridge plugin; returns the pod's address."""
        self._exec("ADD", loopback_config(), node_netns, container_id, pod_netns, "lo")
        out = self._exec("ADD", config, node_netns, container_id, pod_netns, "eth0")
        return parse_result(out)

    def add_many(self, config: dict[str, Any], node_netns: str,
                 pods: Sequence[tuple[str, str]]) -> list[CniResult]:
        """ADD for several pods of one node, one after another, as kubelet would."""
        return [self.add(config, node_netns, cid, netns) for cid, netns in pods]

    def chained(self, command: str, config: dict[str, Any], node_netns: str,
                container_id: str, pod_netns: str) -> str:
        """One plugin chained after the pod network's (portmap), for eth0."""
        return self._exec(command, config, node_netns, container_id, pod_netns, "eth0")

    def delete(self, config: dict[str, Any], node_netns: str, container_id: str,
               pod_netns: str) -> None:
        """DEL in reverse order: releases the IPAM lease and the host-side veth."""
        self._exec("DEL", config, node_netns, container_id, pod_netns, "eth0")
        self._exec("DEL", loopback_config(), node_netns, container_id, pod_netns, "lo")
