"""The fast wiring path: the kernel state of the real CNI plugins (bridge, host-local,
loopback, with kubenet's configuration), made in-process over netlink (pyroute2).

Why: a pod through the real plugins costs ~25 ms, nearly all of it spawning processes
(nsenter, loopback, bridge, host-local) and entering namespaces; the netlink work itself is
well under a millisecond. Here a netlink socket is opened inside each namespace (setns
into it, open, setns back: the socket stays bound to the namespace it was opened in) and
everything else is plain netlink messages and file writes.

What it reproduces, as `tests/integration/test_fastwire.py` checks against the plugins:
host veth `veth<8 hex>` on the bridge with hairpin on, pod `eth0` (MTU, txqueuelen 0,
address with broadcast, IPv6 DAD off, arp_notify on), `lo` up, the default route via the
gateway (proto boot), and host-local's files (`<ip>` holding `<container id>\\neth0`,
`last_reserved_ip.0`, `lock`). The real plugins stay the reference (`wiring="cni"`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from testbed.addressing import pod_hosts
from testbed.cni import NETWORK_NAME, CniResult
from testbed.errors import TestbedError

CLONE_NEWNET = 0x40000000
RTPROT_BOOT = 3  # what the plugins' routes carry (iproute2 shows no "proto")
LO_INDEX = 1  # the loopback device is always the first in a new network namespace


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body with this thread in another network namespace, then come back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def socket_in(path: str) -> IPRoute:
    """A netlink socket bound to the network namespace at `path`."""
    with in_netns(path):
        return IPRoute()


def write_sysctl_in(path: str, key: str, value: str) -> None:
    """Set a net sysctl of another namespace (/proc/sys/net follows the caller's netns)."""
    with in_netns(path), open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
        f.write(value)


def _node_root(node_netns: str) -> str:
    """/proc/<pid>/ns/net -> /proc/<pid>/root: the node's view of the file system."""
    return node_netns.rsplit("/ns/", 1)[0] + "/root"


class HostLocal:
    """host-local IPAM's on-disk store, the same files the plugin keeps and reads."""

    def __init__(self, data_dir: Path, subnet: IPv4Network) -> None:
        self.dir = data_dir / NETWORK_NAME
        self.subnet = subnet
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lock").touch()

    def allocate(self, container_id: str, ifname: str = "eth0") -> IPv4Address:
        """The plugin's order: the first free address after the last one reserved."""
        hosts = list(pod_hosts(self.subnet))
        last_file = self.dir / "last_reserved_ip.0"
        start = 0
        if last_file.exists():
            with contextlib.suppress(ValueError):
                start = hosts.index(IPv4Address(last_file.read_text().strip())) + 1
        for i in range(len(hosts)):
            ip = hosts[(start + i) % len(hosts)]
            try:
                fd = os.open(self.dir / str(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{container_id}\n{ifname}")
            last_file.write_text(str(ip))
            return ip
        raise TestbedError(f"host-local: no free address left in {self.subnet}")

    def release(self, container_id: str) -> None:
        for entry in self.dir.iterdir():
            if entry.name in ("lock", "last_reserved_ip.0"):
                continue
            with contextlib.suppress(OSError):
                if entry.read_text().split("\n", 1)[0] == container_id:
                    entry.unlink()


class FastWiring:
    """Pods wired over netlink; one socket per node, kept for the cluster's lifetime."""

    def __init__(self) -> None:
        self._node_sockets: dict[str, IPRoute] = {}
        self._bridges: dict[tuple[str, str], int] = {}
        self._ipam: dict[str, HostLocal] = {}

    def close(self) -> None:
        for ipr in self._node_sockets.values():
            ipr.close()
        self._node_sockets.clear()

    def _bridge_index(self, node_netns: str, name: str) -> int:
        key = (node_netns, name)
        if key not in self._bridges:
            (msg,) = self._node(node_netns).link("get", ifname=name)
            self._bridges[key] = msg["index"]
        return self._bridges[key]

    def _node(self, node_netns: str) -> IPRoute:
        if node_netns not in self._node_sockets:
            self._node_sockets[node_netns] = socket_in(node_netns)
        return self._node_sockets[node_netns]

    def add(self, config: dict[str, Any], node_netns: str, container_id: str,
            pod_netns: str) -> CniResult:
        """What CNI ADD of loopback + bridge (host-local) leaves in the kernel."""
        ipam = config["ipam"]
        subnet = IPv4Network(ipam["subnet"])
        store = self._ipam.setdefault(ipam["dataDir"], HostLocal(Path(ipam["dataDir"]),
                                                                 subnet))
        ip = store.allocate(container_id)
        address = IPv4Interface(f"{ip}/{subnet.prefixlen}")
        mtu = int(config["mtu"])
        node = self._node(node_netns)
        bridge = self._bridge_index(node_netns, config["bridge"])
        host_if = f"veth{secrets.token_hex(4)}"
        pod_fd = os.open(pod_netns, os.O_RDONLY)
        try:
            # master and up in the create message itself: one round trip instead of three
            node.link("add", ifname=host_if, kind="veth", mtu=mtu, txqlen=0, master=bridge,
                      state="up",
                      peer={"ifname": "eth0", "mtu": mtu, "txqlen": 0, "net_ns_fd": pod_fd})
        finally:
            os.close(pod_fd)
        if config.get("hairpinMode"):
            # the node's own /sys (Mininet remounts it in the node's mount namespace):
            # a file write instead of a netlink GET and SET
            with open(f"{_node_root(node_netns)}/sys/class/net/{host_if}/brport/hairpin_mode",
                      "w") as f:
                f.write("1")
        write_sysctl_in(pod_netns, "net.ipv6.conf.eth0.accept_dad", "0")
        write_sysctl_in(pod_netns, "net.ipv4.conf.eth0.arp_notify", "1")
        with socket_in(pod_netns) as pod:
            pod.link("set", index=LO_INDEX, state="up")
            (msg,) = pod.link("get", ifname="eth0")
            eth0 = msg["index"]
            pod.link("set", index=eth0, state="up")
            pod.addr("add", index=eth0, address=str(ip), prefixlen=subnet.prefixlen,
                     broadcast=str(subnet.broadcast_address))
            for route in ipam.get("routes", []):
                pod.route("add", dst=route["dst"], gateway=route.get("gw", ipam["gateway"]),
                          oif=eth0, proto=RTPROT_BOOT)
        return CniResult(address, ipam["gateway"], {})

    def delete(self, config: dict[str, Any], node_netns: str, container_id: str,
               pod_netns: str) -> None:
        """What CNI DEL leaves: the veth pair gone, the address released."""
        with socket_in(pod_netns) as pod:
            try:
                (eth0,) = pod.link_lookup(ifname="eth0")
                pod.link("del", index=eth0)  # takes the host end with it
            except ValueError:
                pass  # already gone
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    raise
        ipam = config["ipam"]
        store = self._ipam.setdefault(ipam["dataDir"], HostLocal(Path(ipam["dataDir"]),
                                                                 IPv4Network(ipam["subnet"])))
        store.release(container_id)
