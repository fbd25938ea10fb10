"""Normalised dumps of what a pod's wiring left in the kernel, for comparing two wirings.

Everything a packet or a tool can observe is kept: links (names' pattern, MTU, txqueuelen,
flags, kind, bridge and bridge-port options, how the MAC was assigned and whether it is
locally administered), which host port each pod's eth0 is paired with, addresses with
their flags, routes of every table, permanent neighbours, the bridge's forwarding
database, iptables rules of every table, sysctls of the node, of each host-side port and
of the pod, and host-local's files. Only what differs from run to run by chance is
replaced: interface indexes, MAC values, the 8 random hex digits of host veth names,
bridge ids and timers, container ids, packet counters, address lifetimes.

The normalisers are pure functions of the tools' JSON and text (tests/unit/test_kstate.py
checks them, and `diff`, on injected differences).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Callable, List  # typing's: `Run` runs on 3.8

if TYPE_CHECKING:
    from testbed.cluster import Cluster
    from testbed.pods.pause import Pod

VETH = re.compile(r"^veth[0-9a-f]{8}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
LINK_KEYS = ("ifname", "flags", "mtu", "qdisc", "operstate", "txqlen", "link_type",
             "promiscuity", "num_tx_queues", "num_rx_queues", "master", "group",
             "gso_max_size", "gso_max_segs", "allmulti", "min_mtu", "max_mtu")
PORT_KEYS = ("state", "priority", "cost", "hairpin", "guard", "root_block", "fastleave",
             "learning", "flood", "mcast_flood", "bcast_flood", "proxy_arp", "isolated",
             "mcast_to_unicast", "neigh_suppress", "vlan_tunnel", "locked")
# bridge options that change on their own or name a MAC: everything else is compared
BRIDGE_VOLATILE = ("hello_timer", "tcn_timer", "topology_change_timer", "gc_timer",
                   "bridge_id", "root_id", "group_addr", "root_port", "root_path_cost")
NODE_SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.conf.all.forwarding",
                "net.ipv4.conf.default.forwarding", "net.ipv4.conf.all.rp_filter")
PORT_SYSCTLS = ("net.ipv4.conf.{}.forwarding", "net.ipv4.conf.{}.proxy_arp",
                "net.ipv4.conf.{}.rp_filter", "net.ipv4.conf.{}.arp_notify",
                "net.ipv6.conf.{}.accept_dad", "net.ipv6.conf.{}.disable_ipv6",
                "net.ipv6.conf.{}.forwarding")
POD_SYSCTLS = ("net.ipv4.conf.eth0.arp_notify", "net.ipv6.conf.eth0.accept_dad",
               "net.ipv4.ip_forward", "net.ipv6.conf.eth0.disable_ipv6",
               "net.ipv4.conf.eth0.rp_filter", "net.ipv4.conf.eth0.proxy_arp")
MISSING = "<missing>"

Run = Callable[[List[str]], Any]  # argv -> a result with .stdout


def name(ifname: str) -> str:
    return "veth<8 hex>" if VETH.match(ifname) else ifname


def mac_class(mac: str | None) -> str | None:
    """What a wiring decides about a MAC: its kind, not its random value."""
    if not mac or not MAC.match(mac):
        return mac
    first = int(mac[:2], 16)
    kind = "multicast" if first & 1 else "unicast"
    return f"{kind}, {'local' if first & 2 else 'global'}"


def links(raw: str, only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """`ip -d -j link show`, normalised (with `only`: those names and every host veth)."""
    out = []
    for link in json.loads(raw):
        if only is not None and not (link["ifname"] in only or VETH.match(link["ifname"])):
            continue
        d = {k: link.get(k) for k in LINK_KEYS}
        d["ifname"] = name(link["ifname"])
        d["master"] = name(link["master"]) if link.get("master") else None
        d["flags"] = sorted(link.get("flags", []))
        d["address"] = mac_class(link.get("address"))
        d["broadcast"] = link.get("broadcast")
        d["peer_in_other_netns"] = "link_netnsid" in link
        info = link.get("linkinfo", {})
        d["kind"] = info.get("info_kind")
        d["slave_kind"] = info.get("info_slave_kind")
        data = info.get("info_data") or {}
        d["kind_data"] = {k: v for k, v in sorted(data.items()) if k not in BRIDGE_VOLATILE}
        slave = info.get("info_slave_data", {})
        d["port"] = {k: slave.get(k) for k in PORT_KEYS} if slave else None
        out.append(d)
    return sorted(out, key=lambda d: (d["ifname"], json.dumps(d, sort_keys=True)))


def addrs(raw: str) -> list[dict[str, Any]]:
    """`ip -j addr show`: every address with its flags; a link-local IPv6 address is
    derived from the random MAC, so only its being there (and its state) is kept."""
    out = []
    for link in json.loads(raw):
        for a in link.get("addr_info", []):
            d = {k: v for k, v in a.items()
                 if k not in ("valid_life_time", "preferred_life_time", "label")}
            d["ifname"] = name(link["ifname"])
            if a.get("family") == "inet6" and a.get("scope") == "link":
                d["local"] = "<from the MAC>"
            out.append(d)
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


LINK_LOCAL_ADDRESS = re.compile(r"^fe80::[0-9a-f:]+$")  # one address, not fe80::/64


def routes(raw: str) -> list[dict[str, Any]]:
    """`ip -j route show table all`, device names normalised; a link-local IPv6 address
    (in the local table) is derived from a random MAC, so only its being there is kept."""
    out = []
    for r in json.loads(raw):
        d = dict(r)
        if "dev" in d:
            d["dev"] = name(d["dev"])
        if LINK_LOCAL_ADDRESS.match(str(d.get("dst", ""))):
            d["dst"] = "fe80::<from the MAC>"
        out.append(d)
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


def neighbours(raw: str) -> list[dict[str, Any]]:
    """`ip -j neigh show nud permanent` (learnt entries depend on traffic, not wiring)."""
    out = []
    for n in json.loads(raw):
        d = dict(n)
        d["dev"] = name(d.get("dev", ""))
        d["lladdr"] = mac_class(d.get("lladdr"))
        out.append(d)
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


def fdb(raw: str, port_macs: dict[str, str]) -> list[dict[str, Any]]:
    """`bridge -j fdb show`: each entry's MAC named by whose it is (a port's own, or a
    multicast group), the device pattern, flags and state."""
    owners = {mac: name(port) for port, mac in port_macs.items()}
    out = []
    for entry in json.loads(raw):
        d = {k: v for k, v in entry.items() if k not in ("mac", "ifindex")}
        mac = entry.get("mac", "")
        d["mac"] = f"own MAC of {owners[mac]}" if mac in owners else mac_class(mac)
        if mac.startswith("33:33:ff:"):  # solicited-node group of a MAC-derived address
            d["mac"] = "33:33:ff:<solicited-node>"
        elif mac.startswith("33:33:") or mac.startswith("01:00:5e:"):
            d["mac"] = mac  # other multicast groups are fixed addresses
        for key in ("ifname", "master", "dev"):
            if key in d:
                d[key] = name(d[key])
        out.append(d)
    return sorted(out, key=lambda d: json.dumps(d, sort_keys=True))


_COUNTERS = re.compile(r" \[\d+:\d+\]$")


def iptables(save: str, run_id: str = "") -> list[str]:
    """`iptables-save`, every table: rules and chain policies, without the generated
    comments and packet counters, with the run's container ids replaced."""
    out = []
    for line in save.splitlines():
        if not line or line.startswith("#"):
            continue
        line = _COUNTERS.sub("", line)
        out.append(line.replace(run_id, "<run>") if run_id else line)
    return out


def sysctls(run: Run, keys: tuple[str, ...]) -> dict[str, str]:
    """Each key's value, MISSING where the kernel has no such key."""
    out = {}
    for key in keys:
        res = run(["sysctl", "-n", key])
        out[key] = res.stdout.strip() if res.returncode == 0 else MISSING
    return out


def node_state(cluster: Cluster, node: str) -> dict[str, Any]:
    """A node's side of the pod network: the bridge and its ports, addresses, routes,
    neighbours, forwarding database, iptables, sysctls."""
    bridge = cluster.network.bridge or ""
    run = lambda argv: cluster.exec_node(node, argv)  # noqa: E731
    raw_links = run(["ip", "-d", "-j", "link", "show"]).stdout
    ports = [link["ifname"] for link in json.loads(raw_links) if VETH.match(link["ifname"])]
    macs = {link["ifname"]: link.get("address", "") for link in json.loads(raw_links)}
    state = cluster.state
    return {
        "links": links(raw_links, only=(bridge,)),
        "addrs": [a for a in addrs(run(["ip", "-j", "addr", "show"]).stdout)
                  if a["ifname"] in (bridge, "veth<8 hex>")],
        "routes": routes(run(["ip", "-j", "route", "show", "table", "all"]).stdout),
        "neighbours": neighbours(run(["ip", "-j", "neigh", "show", "nud",
                                      "permanent"]).stdout),
        "fdb": fdb(run(["bridge", "-j", "fdb", "show", "br", bridge]).stdout, macs)
        if bridge else [],
        "iptables": iptables(run(["iptables-save"]).stdout, state.run_id if state else ""),
        "sysctls": sysctls(run, NODE_SYSCTLS),
        "port_sysctls": sorted(json.dumps(sysctls(run, tuple(k.format(p) for k in PORT_SYSCTLS))
                                          ).replace(p, "veth<8 hex>") for p in ports),
    }


def pod_state(pod: Pod) -> dict[str, Any]:
    """A pod's side: lo and eth0, addresses, routes of every table, neighbours, sysctls."""
    return {
        "links": links(pod.exec(["ip", "-d", "-j", "link", "show"]).stdout),
        "addrs": addrs(pod.exec(["ip", "-j", "addr", "show"]).stdout),
        "routes": routes(pod.exec(["ip", "-j", "route", "show", "table", "all"]).stdout),
        "neighbours": neighbours(pod.exec(["ip", "-j", "neigh", "show", "nud",
                                           "permanent"]).stdout),
        "iptables": iptables(pod.exec(["iptables-save"]).stdout),
        "sysctls": sysctls(pod.exec, POD_SYSCTLS),
    }


def pairing(cluster: Cluster) -> dict[str, Any]:
    """Which host port each pod's eth0 is paired with: its master and hairpin, found by
    the peer's interface index (a pod wired to the wrong node or port shows here)."""
    out = {}
    by_node = {}
    for node in cluster.node_names:
        raw = json.loads(cluster.exec_node(node, ["ip", "-d", "-j", "link", "show"]).stdout)
        by_node[node] = {link["ifindex"]: link for link in raw}
    for pod in cluster.pods.values():
        (eth0,) = json.loads(pod.exec(["ip", "-d", "-j", "link", "show", "eth0"]).stdout)
        host = by_node[pod.node].get(eth0.get("link_index"), {})
        slave = host.get("linkinfo", {}).get("info_slave_data", {})
        out[pod.name] = {"host_port": name(host.get("ifname", MISSING)),
                         "master": host.get("master"), "hairpin": slave.get("hairpin")}
    return out


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
    """Wait until each node bridge's operstate is no longer UNKNOWN (the kernel's link
    watcher updates it with a delay of up to a second after ports come up), and until
    no pod or node has an IPv6 address still in duplicate address detection (the ptp
    plugin leaves DAD on: whether a dump catches one tentative is timing, not wiring)."""
    deadline = time.monotonic() + timeout_s
    tentative = ["ip", "-6", "addr", "show", "tentative"]
    for where in [*cluster.pods.values(), *cluster.node_names]:
        while time.monotonic() < deadline + 2.0:
            res = (cluster.exec_node(where, tentative) if isinstance(where, str)
                   else where.exec(tentative))
            if not res.stdout.strip():
                break
            time.sleep(0.05)
    if cluster.network.bridge is None:  # no bridge (ptp): nothing more to wait for
        return
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
        "pairing": pairing(cluster),
        "ipam": {n: ipam_state(cluster, n) for n in cluster.node_names},
    }


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two dumps differ, as readable paths (empty when equal). A key missing on
    one side differs from any value on the other, None included."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += diff(a.get(k, MISSING), b.get(k, MISSING), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries != {len(b)}: {a!r} != {b!r}"]
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]
