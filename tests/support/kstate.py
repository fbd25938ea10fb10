"""Normalised dumps of what a pod's wiring left in the kernel, for comparing two wirings.

Everything random or incidental is dropped or replaced (interface indexes, MAC addresses,
the 8 random hex digits of host veth names, bridge port ids and timers, container ids);
everything a wiring decides is kept (names' pattern, MTU, txqueuelen, flags, bridge port
flags, addresses, routes, sysctls, IPAM files).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from testbed.cluster import Cluster
from testbed.pods.pause import Pod

VETH = re.compile(r"^veth[0-9a-f]{8}$")
LINK_KEYS = ("ifname", "flags", "mtu", "qdisc", "operstate", "txqlen", "link_type",
             "promiscuity", "num_tx_queues", "num_rx_queues", "master")
PORT_KEYS = ("state", "priority", "cost", "hairpin", "guard", "root_block", "fastleave",
             "learning", "flood", "mcast_flood", "bcast_flood", "proxy_arp", "isolated")
NODE_SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
POD_SYSCTLS = ("net.ipv4.conf.eth0.arp_notify", "net.ipv6.conf.eth0.accept_dad",
               "net.ipv4.ip_forward")


def _name(name: str) -> str:
    return "veth<8 hex>" if VETH.match(name) else name


def _links(raw: str, only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    out = []
    for link in json.loads(raw):
        if only is not None and not (link["ifname"] in only or VETH.match(link["ifname"])):
            continue
        d = {k: link.get(k) for k in LINK_KEYS}
        d["ifname"] = _name(link["ifname"])
        d["flags"] = sorted(link.get("flags", []))
        info = link.get("linkinfo", {})
        d["kind"] = info.get("info_kind")
        d["slave_kind"] = info.get("info_slave_kind")
        slave = info.get("info_slave_data", {})
        d["port"] = {k: slave.get(k) for k in PORT_KEYS} if slave else None
        out.append(d)
    return sorted(out, key=lambda d: d["ifname"])


def _addrs(raw: str) -> list[dict[str, Any]]:
    out = []
    for link in json.loads(raw):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet6" and a.get("scope") == "link":
                out.append({"ifname": _name(link["ifname"]), "family": "inet6",
                            "scope": "link", "tentative": bool(a.get("tentative"))})
            else:
                out.append({"ifname": _name(link["ifname"]), **{
                    k: a.get(k) for k in ("family", "local", "prefixlen", "broadcast", "scope")}})
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


def _routes(raw: str) -> list[dict[str, Any]]:
    keep = ("dst", "gateway", "dev", "protocol", "scope", "prefsrc", "metric", "flags")
    return sorted(({k: r.get(k) for k in keep} for r in json.loads(raw)),
                  key=lambda d: json.dumps(d, sort_keys=True))


def _sysctls(run, keys: tuple[str, ...]) -> dict[str, str]:
    res = run(["sysctl", "-n", *keys])
    return dict(zip(keys, res.stdout.split(), strict=True))


def node_state(cluster: Cluster, node: str) -> dict[str, Any]:
    """A node's side of the pod network: the bridge, its ports, routes, sysctls."""
    bridge = cluster.network.bridge

    def run(argv: list[str]):
        return cluster.exec_node(node, argv)

    return {
        "links": _links(run(["ip", "-d", "-j", "link", "show"]).stdout, only=(bridge,)),
        "bridge_addrs": _addrs(run(["ip", "-j", "addr", "show", "dev", bridge]).stdout),
        "routes": _routes(run(["ip", "-j", "route", "show"]).stdout),
        "sysctls": _sysctls(run, NODE_SYSCTLS),
    }


def pod_state(pod: Pod) -> dict[str, Any]:
    """A pod's side: lo and eth0, addresses, routes, sysctls."""
    return {
        "links": _links(pod.exec(["ip", "-d", "-j", "link", "show"]).stdout),
        "addrs": _addrs(pod.exec(["ip", "-j", "addr", "show"]).stdout),
        "routes": _routes(pod.exec(["ip", "-j", "route", "show"]).stdout),
        "sysctls": _sysctls(pod.exec, POD_SYSCTLS),
    }


def ipam_state(cluster: Cluster, node: str) -> dict[str, str]:
    """host-local's files for a node, with the run-specific container ids replaced."""
    assert cluster.state is not None
    base = cluster.state.directory / "ipam" / node
    out = {}
    for f in sorted(base.rglob("*")):
        if f.is_file():
            text = f.read_text().replace(cluster.state.run_id, "<run>")
            out[str(f.relative_to(base))] = text
    return out


def settle(cluster: Cluster, timeout_s: float = 3.0) -> None:
    """Wait until each node bridge's operstate is no longer UNKNOWN: the kernel's link
    watcher updates it with a delay of up to a second after ports come up."""
    deadline = time.monotonic() + timeout_s
    for node in cluster.node_names:
        while time.monotonic() < deadline:
            raw = cluster.exec_node(node, ["ip", "-j", "link", "show", cluster.network.bridge])
            if json.loads(raw.stdout)[0].get("operstate") != "UNKNOWN":
                break
            time.sleep(0.05)


def cluster_state(cluster: Cluster) -> dict[str, Any]:
    """Every node's and pod's normalised state, by name (after `settle`)."""
    settle(cluster)
    return {
        "nodes": {n: node_state(cluster, n) for n in cluster.node_names},
        "pods": {p.name: pod_state(p) for p in cluster.pods.values()},
        "ipam": {n: ipam_state(cluster, n) for n in cluster.node_names},
    }


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two dumps differ, as readable paths (empty when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]

