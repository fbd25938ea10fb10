"""Calico's workload plumbing, as its CNI plugin and Felix leave it (a `Wiring`).

Calico's own plugin and IPAM are not packaged here, so this wiring makes, per pod, what
projectcalico/calico's cni-plugin (pkg/dataplane/linux/dataplane_linux.go, DoNetworking)
and Felix's route table make:

    host side   `cali` + 11 hex of a SHA-1 (VethNameForWorkload), MAC ee:ee:ee:ee:ee:ee,
                up; proxy_arp, route_localnet and forwarding on, proxy_delay 0; a
                `scope link` route to the pod's /32, and a permanent neighbour entry for
                it (Felix's static ARP entries)
    pod side    eth0 with the pod's address as a /32, `169.254.1.1 dev eth0 scope link`,
                `default via 169.254.1.1 dev eth0` (the host's proxy ARP answers for the
                gateway that exists nowhere); lo up (the runtime's loopback plugin)

Addresses come from the node's IPAM block (Calico's block affinity: calico-ipam hands out
the block's addresses by ordinal, lowest free first), kept per node in a JSON file in the
node's IPAM directory; `reserved` addresses (the VXLAN tunnel address) are skipped.

Where it differs: the veth name hashes the container id, not `namespace.pod` (a wiring
knows the id only); the address store is the testbed's, not Calico's datastore.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from testbed.errors import TestbedError
from testbed.kernel import netlink as nl
from testbed.kernel import ns
from testbed.pods.cni import CniResult

HOST_MAC = "ee:ee:ee:ee:ee:ee"
GATEWAY = "169.254.1.1"
STORE = "calico-ipam.json"


def veth_name(container_id: str) -> str:
    """`cali` + the first 11 hex characters of a SHA-1 (VethNameForWorkload's shape)."""
    return "cali" + hashlib.sha1(container_id.encode()).hexdigest()[:11]  # noqa: S324


class BlockIpam:
    """A node's block: addresses by ordinal, lowest free first; a JSON file per node."""

    def __init__(self, data_dir: Path, block: IPv4Network, reserved: Sequence[str]) -> None:
        self.path = data_dir / STORE
        self.block = block
        self.reserved = {IPv4Address(a) for a in reserved}

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def _save(self, taken: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(taken, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def allocate(self, container_id: str) -> IPv4Address:
        taken = self._load()
        for ip in self.block:
            if ip in self.reserved or str(ip) in taken:
                continue
            taken[str(ip)] = container_id
            self._save(taken)
            return ip
        raise TestbedError(f"calico-ipam: block {self.block} is full")

    def release(self, container_id: str) -> None:
        taken = self._load()
        self._save({ip: cid for ip, cid in taken.items() if cid != container_id})


def _ip_batch(netns: str, commands: Sequence[str]) -> None:
    """`ip -batch -` in a network namespace (by path): one process for many commands."""
    res = subprocess.run(["nsenter", f"--net={netns}", "--", "ip", "-batch", "-"],
                         input="\n".join(commands) + "\n", capture_output=True, text=True,
                         timeout=30)
    if res.returncode != 0:
        raise TestbedError(f"calico wiring: {res.stderr.strip()[:300]}")


class CalicoWiring:
    """See the module docstring. The configuration is the pod network's (`type: calico`)."""

    concurrent = True  # `ip` processes: nodes side by side use every core

    def close(self) -> None:
        """Nothing held between calls."""

    def _ipam(self, config: dict[str, Any]) -> BlockIpam:
        ipam = config["ipam"]
        return BlockIpam(Path(ipam["dataDir"]), IPv4Network(ipam["block"]),
                         ipam.get("reserved", ()))

    def add_many(self, config: dict[str, Any], node_netns: str,
                 pods: Sequence[tuple[str, str]]) -> list[CniResult]:
        if config.get("type") != "calico":
            raise TestbedError(f"the calico wiring makes Calico's workloads; this pod network "
                               f"uses {config.get('type')}")
        return [self._add(config, node_netns, cid, netns) for cid, netns in pods]

    def _add(self, config: dict[str, Any], node_netns: str, container_id: str,
             pod_netns: str) -> CniResult:
        ipam = self._ipam(config)
        ip = ipam.allocate(container_id)
        host = veth_name(container_id)
        mtu = int(config["mtu"])
        fd = os.open(pod_netns, os.O_RDONLY)
        try:
            with ns.own_procfs() as proc, ns.entered(node_netns), nl.RtnlSocket() as sock:
                sock.request([nl.veth_pair(host, "eth0", fd, mtu=mtu, mac=HOST_MAC)],
                             [f"veth pair {host} for {container_id}"])
                for key in ("proxy_arp", "route_localnet", "forwarding"):
                    ns.write_sysctl(f"net.ipv4.conf.{host}.{key}", "1", proc)
                # proxy ARP answers at once, not after up to 0.8 s (as the plugin sets it)
                ns.write_sysctl(f"net.ipv4.neigh.{host}.proxy_delay", "0", proc)
        finally:
            os.close(fd)
        _ip_batch(pod_netns, ["link set lo up", f"addr add {ip}/32 dev eth0",
                              "link set eth0 up",
                              f"route add {GATEWAY} dev eth0 scope link",
                              f"route add default via {GATEWAY} dev eth0"])
        pod_mac = _pod_mac(pod_netns)
        _ip_batch(node_netns, [f"route add {ip} dev {host} scope link",
                               f"neigh replace {ip} lladdr {pod_mac} dev {host} nud permanent"])
        return CniResult(IPv4Interface(f"{ip}/32"), GATEWAY,
                         {"cniVersion": config.get("cniVersion", "0.3.1"),
                          "interfaces": [{"name": host, "mac": HOST_MAC},
                                         {"name": "eth0", "mac": pod_mac,
                                          "sandbox": pod_netns}],
                          "ips": [{"version": "4", "address": f"{ip}/32",
                                   "gateway": GATEWAY, "interface": 1}]})

    def delete(self, config: dict[str, Any], node_netns: str, container_id: str,
               pod_netns: str) -> None:
        """The pod's eth0 removed (its host end and route go with it), the address freed."""
        res = subprocess.run(["nsenter", f"--net={pod_netns}", "--", "ip", "link", "del",
                              "eth0"], capture_output=True, text=True, timeout=30)
        if res.returncode != 0 and "Cannot find device" not in res.stderr:
            raise TestbedError(f"calico wiring DEL: {res.stderr.strip()[:300]}")
        self._ipam(config).release(container_id)


def _pod_mac(pod_netns: str) -> str:
    res = subprocess.run(["nsenter", f"--net={pod_netns}", "--", "ip", "-j", "link", "show",
                          "eth0"], capture_output=True, text=True, timeout=30)
    try:
        return str(json.loads(res.stdout)[0]["address"])
    except (ValueError, IndexError, KeyError):
        raise TestbedError(f"calico wiring: no eth0 in {pod_netns}: "
                           f"{res.stderr.strip()[:200]}") from None
