"""The fast wiring path: the kernel state of the real CNI plugins (bridge or ptp, with
host-local and loopback, in the configurations the pod networks write), made in-process
over netlink (testbed.kernel.netlink).

Why: a pod through the real plugins costs ~25 ms, nearly all of it spawning processes
(nsenter, loopback, bridge, host-local) and entering namespaces; the netlink work itself is
well under a millisecond. Here a netlink socket is opened inside each namespace (setns
into it, open, setns back: the socket stays bound to the namespace it was opened in) and
everything else is plain netlink messages and file writes.

What it reproduces, as `tests/integration/test_fastwire.py` (and, for ptp,
test_podnets.py) check against the plugins: bridge: host veth `veth<8 hex>` on the
bridge with hairpin on, pod `eth0` (MTU, txqueuelen 0, address with broadcast, IPv6 DAD
off, arp_notify on), `lo` up, host-local's routes via the gateway (proto boot, with a
default route for isDefaultGateway); ptp: see `_ptp`; both: host-local's files (`<ip>`
holding `<container id>\\neth0`, `last_reserved_ip.0`, `lock`). The real plugins stay the
reference (`wiring="cni"`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from testbed.errors import TestbedError
from testbed.kernel import netlink as nl
from testbed.kernel import ns
from testbed.model.cidrs import pod_hosts
from testbed.pods.cni import CniResult


def socket_in(path: str) -> nl.RtnlSocket:
    """A netlink socket bound to the network namespace at `path`."""
    with ns.entered(path):
        return nl.RtnlSocket()



def _node_root(node_netns: str) -> str:
    """/proc/<pid>/ns/net -> /proc/<pid>/root: the node's view of the file system."""
    return node_netns.rsplit("/ns/", 1)[0] + "/root"


def peer_index(link: tuple[int, int | None] | None) -> int | None:
    """A veth pair's pod end's index, from the creation's echo (None: not told)."""
    return None if link is None else link[1]


DEFAULT_BRIDGE = "cni0"  # the bridge plugin's bridge when its configuration names none
DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


def ipam_range(ipam: dict[str, Any]) -> tuple[IPv4Network, IPv4Address]:
    """host-local's one range: `subnet` (and `gateway`), or the first of `ranges`; the
    gateway defaults to the subnet's first address, as host-local's Canonicalize does."""
    if "ranges" in ipam:
        first = ipam["ranges"][0][0]
        subnet, gateway = IPv4Network(first["subnet"]), first.get("gateway")
    else:
        subnet, gateway = IPv4Network(ipam["subnet"]), ipam.get("gateway")
    return subnet, IPv4Address(gateway) if gateway else subnet.network_address + 1


class HostLocal:
    """host-local IPAM's on-disk store, the same files the plugin keeps and reads."""

    def __init__(self, data_dir: Path, network: str, subnet: IPv4Network) -> None:
        self.dir = data_dir / network  # the plugin keeps each network's leases apart
        self.subnet = subnet
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lock").touch()
        self._hosts = list(pod_hosts(subnet))
        self._position = {ip: i for i, ip in enumerate(self._hosts)}

    def allocate(self, container_id: str, ifname: str = "eth0") -> IPv4Address:
        """The plugin's order: the first free address after the last one reserved."""
        return self.allocate_many([container_id], ifname)[0]

    def allocate_many(self, container_ids: list[str], ifname: str = "eth0"
                      ) -> list[IPv4Address]:
        """Addresses for several containers, in the plugin's order, as if it had run once
        for each: the same files result. The last-reserved file is read once (the real
        plugin may have allocated meanwhile) and written once, at the end."""
        hosts = self._hosts
        last_file = self.dir / "last_reserved_ip.0"
        start = 0
        with contextlib.suppress(FileNotFoundError, ValueError):
            last = IPv4Address(last_file.read_text().strip())
            start = self._position.get(last, -1) + 1
        out: list[IPv4Address] = []
        for container_id in container_ids:
            for i in range(len(hosts)):
                ip = hosts[(start + i) % len(hosts)]
                try:
                    fd = os.open(self.dir / str(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o644)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w") as f:
                    f.write(f"{container_id}\n{ifname}")
                out.append(ip)
                start = self._position[ip] + 1
                break
            else:
                if out:
                    last_file.write_text(str(out[-1]))
                raise TestbedError(f"host-local: no free address left in {self.subnet}")
        if out:
            last_file.write_text(str(out[-1]))
        return out

    def release(self, container_id: str) -> None:
        for entry in self.dir.iterdir():
            if entry.name in ("lock", "last_reserved_ip.0"):
                continue
            with contextlib.suppress(OSError):
                if entry.read_text().split("\n", 1)[0] == container_id:
                    entry.unlink()


class FastWiring:
    """Pods wired over netlink; one socket per node, kept for the cluster's lifetime (a
    `testbed.pods.wiring.Wiring`)."""

    concurrent = False  # in-process netlink: threads would only take turns

    def __init__(self) -> None:
        # seconds spent on the nodes' side (veth pairs, hairpin) and in the pods (eth0,
        # lo, address, routes), over every call: bring-up's stage timings
        self.timings: dict[str, float] = {"node_side_s": 0.0, "pod_side_s": 0.0}
        self._node_sockets: dict[str, nl.RtnlSocket] = {}
        self._bridges: dict[tuple[str, str], int] = {}
        self._ipam: dict[str, HostLocal] = {}

    def close(self) -> None:
        for sock in self._node_sockets.values():
            sock.close()
        self._node_sockets.clear()

    def _node(self, node_netns: str) -> nl.RtnlSocket:
        if node_netns not in self._node_sockets:
            self._node_sockets[node_netns] = socket_in(node_netns)
        return self._node_sockets[node_netns]

    def _bridge_index(self, node_netns: str, name: str) -> int:
        key = (node_netns, name)
        if key not in self._bridges:
            self._bridges[key] = self._node(node_netns).link_index(name)
        return self._bridges[key]

    def _store(self, config: dict[str, Any]) -> HostLocal:
        ipam = config["ipam"]
        data_dir = ipam["dataDir"]
        if data_dir not in self._ipam:
            self._ipam[data_dir] = HostLocal(Path(data_dir), config["name"],
                                             ipam_range(ipam)[0])
        return self._ipam[data_dir]

    def add(self, config: dict[str, Any], node_netns: str, container_id: str,
            pod_netns: str) -> CniResult:
        """What CNI ADD of loopback + bridge (host-local) leaves in the kernel."""
        return self.add_many(config, node_netns, [(container_id, pod_netns)])[0]

    def add_many(self, config: dict[str, Any], node_netns: str,
                 pods: Sequence[tuple[str, str]]) -> list[CniResult]:
        """CNI ADD for several pods of one node: (container id, pod netns path) each.

        The node's side goes in one batch of requests; each pod's side in one more.
        """
        if config.get("type") not in ("bridge", "ptp") or \
                config.get("ipam", {}).get("type") != "host-local":
            raise TestbedError("the fast wiring path makes what the bridge and ptp plugins "
                               f"with host-local make; this pod network uses "
                               f"{config.get('type')}")
        if config.get("ipMasq"):
            raise TestbedError("the fast wiring path does not make the bridge plugin's "
                               "masquerade rules (ipMasq): wire this pod network with the "
                               "real plugins (--wiring cni)")
        ipam = config["ipam"]
        store = self._store(config)
        subnet = store.subnet
        gateway = ipam_range(ipam)[1]
        mtu = int(config["mtu"])
        ips = store.allocate_many([container_id for container_id, _ in pods])
        host_ifs = [f"veth{secrets.token_hex(4)}" for _ in pods]
        if config["type"] == "ptp":
            return self._ptp(node_netns, pods, ips, host_ifs, subnet, gateway, mtu,
                             ipam.get("routes", []))
        t0 = time.monotonic()
        bridge = self._bridge_index(node_netns, config.get("bridge", DEFAULT_BRIDGE))
        fds = []
        try:
            for _, pod_netns in pods:
                fds.append(os.open(pod_netns, os.O_RDONLY))
            # up and enslaved in the create message itself: one request a pod, not three;
            # echoed back with the pod end's index, so no pod looks its eth0 up
            links = self._node(node_netns).create_links(
                [nl.veth_pair(name, "eth0", fd, mtu=mtu, txqlen=0, master=bridge, echo=True)
                 for name, fd in zip(host_ifs, fds)],
                [f"veth pair for {cid}" for cid, _ in pods])
        finally:
            for fd in fds:
                os.close(fd)
        if config.get("hairpinMode"):
            # the node's own /sys (Mininet remounts it in the node's mount namespace):
            # a file write instead of a netlink GET and SET
            root = _node_root(node_netns)
            for name in host_ifs:
                with open(f"{root}/sys/class/net/{name}/brport/hairpin_mode", "w") as f:
                    f.write("1")
        t1 = time.monotonic()
        self.timings["node_side_s"] += t1 - t0
        routes = [(IPv4Network(r["dst"]), IPv4Address(r.get("gw", gateway)))
                  for r in ipam.get("routes", [])]
        if config.get("isDefaultGateway") and DEFAULT_ROUTE not in [d for d, _ in routes]:
            routes.append((DEFAULT_ROUTE, gateway))  # the bridge plugin appends it last
        with ns.own_procfs() as proc:  # short look-ups (ns.write_sysctl)
            self._pod_side(pods, ips, subnet, routes, proc, [peer_index(x) for x in links])
        self.timings["pod_side_s"] += time.monotonic() - t1
        return [CniResult(IPv4Interface(f"{ip}/{subnet.prefixlen}"), str(gateway), {})
                for ip in ips]

    @staticmethod
    def _pod_side(pods: Sequence[tuple[str, str]], ips: Sequence[IPv4Address],
                  subnet: IPv4Network, routes: Sequence[tuple[IPv4Network, IPv4Address]],
                  proc: int | None, eth0s: Sequence[int | None]) -> None:
        """The bridge plugin's work inside each pod: eth0 (DAD off, arp_notify, up, its
        address), lo up, host-local's routes. `eth0s`: each pod's eth0 index, where the
        kernel told it at creation (None: looked up here)."""
        for (container_id, pod_netns), ip, index in zip(pods, ips, eth0s):
            with ns.entered(pod_netns):
                # IPv6 settings have no netlink request; arp_notify goes with eth0 up
                ns.write_sysctl("net.ipv6.conf.eth0.accept_dad", "0", proc)
                with nl.RtnlSocket() as pod:
                    eth0 = index if index is not None else pod.link_index("eth0")
                    pod.request(
                        [nl.link_up(nl.LO_INDEX),
                         nl.link_up_inet_conf(eth0, {nl.IPV4_DEVCONF_ARP_NOTIFY: 1}),
                         nl.addr_add(eth0, ip, subnet)]
                        + [nl.route_add(dst, gw, eth0, nl.RTPROT_BOOT) for dst, gw in routes],
                        [f"{container_id}: {step}" for step in
                         ["lo up", "eth0 up, arp_notify", f"address {ip}"]
                         + [f"route {dst}" for dst, _ in routes]])

    def _ptp(self, node_netns: str, pods: Sequence[tuple[str, str]],
             ips: Sequence[IPv4Address], host_ifs: Sequence[str], subnet: IPv4Network,
             gateway: IPv4Address, mtu: int, ipam_routes: Sequence[dict[str, Any]]
             ) -> list[CniResult]:
        """What the ptp plugin leaves (plugins/main/ptp): the host end holds the gateway
        as a /32 and a scope-host route to the pod; in the pod, after host-local's
        address and routes, the connected route gives way to a scope-link route to the
        gateway and the subnet via the gateway (setupContainerVeth)."""
        t0 = time.monotonic()
        fds = []
        try:
            for _, pod_netns in pods:
                fds.append(os.open(pod_netns, os.O_RDONLY))
            node = self._node(node_netns)
            links = node.create_links([nl.veth_pair(name, "eth0", fd, mtu=mtu, txqlen=0,
                                                    echo=True)
                                       for name, fd in zip(host_ifs, fds)],
                                      [f"veth pair for {cid}" for cid, _ in pods])
        finally:
            for fd in fds:
                os.close(fd)
        steps, names = [], []
        for name, ip, link in zip(host_ifs, ips, links):
            index = link[0] if link is not None else node.link_index(name)
            steps += [nl.addr_add(index, gateway, IPv4Network(f"{gateway}/32"),
                                  broadcast=False),
                      nl.route_add(IPv4Network(f"{ip}/32"), None, index,
                                   scope=nl.RT_SCOPE_HOST)]
            names += [f"{name}: gateway address", f"{name}: route to {ip}"]
        node.request(steps, names)
        t1 = time.monotonic()
        self.timings["node_side_s"] += t1 - t0
        routes = [(IPv4Network(r["dst"]), IPv4Address(r.get("gw", gateway)))
                  for r in ipam_routes]
        gw32 = IPv4Network(f"{gateway}/32")
        for (container_id, pod_netns), ip, link in zip(pods, ips, links):
            # unlike the bridge plugin, ptp leaves IPv6 DAD and arp_notify as they are
            with ns.entered(pod_netns), nl.RtnlSocket() as pod:
                index = peer_index(link)
                eth0 = index if index is not None else pod.link_index("eth0")
                pod.request(
                    [nl.link_up(nl.LO_INDEX), nl.link_up(eth0), nl.addr_add(eth0, ip, subnet)]
                    + [nl.route_add(dst, gw, eth0, nl.RTPROT_BOOT) for dst, gw in routes]
                    + [nl.route_del(subnet, eth0),
                       nl.route_add(gw32, None, eth0, scope=nl.RT_SCOPE_LINK, prefsrc=ip),
                       nl.route_add(subnet, gateway, eth0, prefsrc=ip)],
                    [f"{container_id}: {step}" for step in
                     ["lo up", "eth0 up", f"address {ip}"]
                     + [f"route {dst}" for dst, _ in routes]
                     + ["connected route out", "route to the gateway",
                        "route to the subnet via the gateway"]])
        self.timings["pod_side_s"] += time.monotonic() - t1
        return [CniResult(IPv4Interface(f"{ip}/{subnet.prefixlen}"), str(gateway), {})
                for ip in ips]

    def delete(self, config: dict[str, Any], node_netns: str, container_id: str,
               pod_netns: str) -> None:
        """What CNI DEL leaves: the veth pair gone, the address released."""
        with ns.entered(pod_netns), nl.RtnlSocket() as pod:
            try:
                pod.request([nl.link_del("eth0")])  # takes the host end with it
            except nl.NetlinkError as exc:
                if exc.errno != errno.ENODEV:
                    raise
        self._store(config).release(container_id)
