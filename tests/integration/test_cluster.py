"""The article's two-node cluster, up once for this module: data plane, wiring, pods."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from testbed.cluster import Cluster
from testbed.measure.ping import parse_ping
from testbed.model.spec import ClusterSpec, ContainerSpec


@pytest.fixture(scope="module")
def cluster(two_node_spec: ClusterSpec) -> Iterator[Cluster]:
    with Cluster(two_node_spec) as c:
        yield c


def ping(cluster: Cluster, src: str, dst: str):
    res = cluster.pod(src).exec(["ping", "-n", "-c", "2", "-i", "0.05", "-W", "1",
                                 cluster.endpoint_ip(dst)])
    return parse_ping(res.stdout)


def test_pods_get_kubenet_addresses_in_order(cluster: Cluster) -> None:
    ips = {name: str(p.ip) for name, p in cluster.pods.items()}
    assert ips == {"pod-1": "10.0.0.2/24", "pod-2": "10.0.0.3/24",
                   "pod-3": "10.0.1.2/24", "pod-4": "10.0.1.3/24"}


def test_router_has_one_frr_static_route_per_node(cluster: Cluster) -> None:
    routes = {r["dst"]: r["gateway"] for r in cluster.router_routes()}
    assert routes == {"10.0.0.0/24": "10.100.0.2", "10.0.1.0/24": "10.100.0.3"}
    assert all(r["protocol"] == "static" for r in cluster.router_routes())


def test_nodes_are_set_up_as_kubenet_does(cluster: Cluster) -> None:
    """What Mininet, ipmininet and kubenet leave in a node (the testbed makes it over
    netlink, not with their shell commands: this is the state they would make)."""
    for node, cidr, gw, ul in (("node-1", "10.0.0.0/24", "10.0.0.1", "10.100.0.2"),
                               ("node-2", "10.0.1.0/24", "10.0.1.1", "10.100.0.3")):
        links = {link["ifname"]: link for link in json.loads(
            cluster.exec_node(node, ["ip", "-j", "-d", "addr", "show"]).stdout)}
        assert {"lo", f"{node}-eth0", "cbr0"} <= set(links)
        for name in ("lo", f"{node}-eth0", "cbr0"):
            assert "UP" in links[name]["flags"], name
        inet = {name: [(a["local"], a["prefixlen"], a.get("broadcast"))
                       for a in link["addr_info"] if a["family"] == "inet"]
                for name, link in links.items()}
        # `ip address add A/P dev D`, as ipmininet and kubenet run it: no broadcast
        assert inet["cbr0"] == [(gw, 24, None)]
        assert inet[f"{node}-eth0"] == [(ul, 24, None)]
        assert inet["lo"] == [("127.0.0.1", 8, None)]
        assert links["cbr0"]["linkinfo"]["info_kind"] == "bridge"
        assert links["cbr0"]["mtu"] == cluster.mtu[node] == 1500
        assert links[f"{node}-eth0"]["linkinfo"]["info_kind"] == "veth"
        assert IPv4Address(gw) in IPv4Network(cidr)
        for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"):
            assert cluster.exec_node(node, ["sysctl", "-n", key]).stdout.strip() == "1", key
        (route,) = json.loads(cluster.exec_node(node, ["ip", "-j", "route", "show", "default"]
                                                ).stdout)
        assert (route["gateway"], route["dev"]) == ("10.100.0.1", f"{node}-eth0")
        assert route.get("protocol", "boot") == "boot"
        nat = cluster.exec_node(node, ["iptables", "-t", "nat", "-S", "POSTROUTING"]).stdout
        assert "! -d 10.0.0.0/8" in nat and "MASQUERADE" in nat and "--dst-type LOCAL" in nat


def test_underlay_is_a_bridge_with_every_node_and_the_router(cluster: Cluster) -> None:
    ports = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show", "master", "ktb-ul1"],
                                      capture_output=True, text=True, check=True).stdout)
    assert sorted(p["ifname"] for p in ports) == ["ktb-ul1-eth1", "ktb-ul1-eth2",
                                                  "ktb-ul1-eth3"]
    for port in ports:
        assert "UP" in port["flags"] and "LOWER_UP" in port["flags"]
        slave = port["linkinfo"]["info_slave_data"]
        assert slave["state"] == "forwarding" and slave["cost"] == 1  # ipmininet's path cost
    (bridge,) = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show", "ktb-ul1"],
                                          capture_output=True, text=True, check=True).stdout)
    assert bridge["linkinfo"]["info_data"]["stp_state"] == 0
    # every node's underlay address answers from the router (ARP over the bridge)
    for ip in ("10.100.0.2", "10.100.0.3"):
        assert cluster.exec_node("router", ["ping", "-c1", "-W2", ip]).ok, ip


def test_every_pod_reaches_every_other_with_expected_ttl(cluster: Cluster) -> None:
    for src, sp in cluster.pods.items():
        for dst, dp in cluster.pods.items():
            if src == dst:
                continue
            result = ping(cluster, src, dst)
            assert result.loss_pct == 0.0, (src, dst)
            assert result.ttl == (64 if sp.node == dp.node else 61), (src, dst, result.ttls)


def test_pod_to_nodes_and_router_ttls(cluster: Cluster) -> None:
    assert ping(cluster, "pod-1", "node-1").ttl == 64  # its own node answers directly
    assert ping(cluster, "pod-1", "node-2").ttl == 62  # node-1, router
    assert ping(cluster, "pod-1", "router").ttl == 63  # node-1


def test_pods_are_named_netns_visible_machine_wide(cluster: Cluster) -> None:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for pod in cluster.pods.values():
        assert pod.netns in listed
        out = subprocess.run(["ip", "netns", "exec", pod.netns, "ip", "-j", "addr", "show",
                              "eth0"], capture_output=True, text=True, check=True).stdout
        info = json.loads(out)[0]
        assert str(pod.ip.ip) in [a["local"] for a in info["addr_info"]]
        assert info["mtu"] == cluster.mtu[pod.node] == 1500


def test_pod_wiring_matches_the_bridge_plugin(cluster: Cluster) -> None:
    pod = cluster.pod("pod-1")
    assert pod.exec(["hostname"]).stdout.strip() == "pod-1"
    route = pod.exec(["ip", "route", "show", "default"]).stdout
    assert "via 10.0.0.1 dev eth0" in route
    ports = json.loads(cluster.exec_node("node-1", ["bridge", "-j", "-d", "link", "show"]).stdout)
    cbr0_ports = [p for p in ports if p.get("master") == "cbr0"]
    assert len(cbr0_ports) == 2
    assert all(p["hairpin"] for p in cbr0_ports)
    with open(f"/proc/{pod.pause_pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"catatonit"
    own = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True)
    pause_ns = subprocess.run(["readlink", f"/proc/{pod.pause_pid}/ns/net"],
                              capture_output=True, text=True)
    assert pause_ns.stdout != own.stdout


def test_containers_of_a_pod_share_localhost(cluster: Cluster) -> None:
    server = ["python3", "-c", (
        "import socket,time\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('127.0.0.1', 7777)); s.listen()\n"
        "while True:\n c,_=s.accept(); c.sendall(b'hello from web'); c.close()\n")]
    client = ["python3", "-c", (
        "import socket; s=socket.create_connection(('127.0.0.1', 7777), timeout=2);"
        "print(s.recv(100).decode())")]
    cluster.add_container("pod-2", "web", server)
    cluster.add_container("pod-2", "sidecar", ["sleep", "infinity"])
    try:
        deadline = time.monotonic() + 10
        while True:
            res = cluster.pod("pod-2").exec(client, container="sidecar")
            if res.ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert res.stdout.strip() == "hello from web"
        other = cluster.pod("pod-1").exec(client)  # another pod's localhost is its own
        assert not other.ok and "refused" in other.stderr.lower()
    finally:
        cluster.remove_container("pod-2", "web")
        cluster.remove_container("pod-2", "sidecar")


def test_pods_come_and_go_while_running(cluster: Cluster) -> None:
    pod = cluster.add_pod("node-2", "extra", [ContainerSpec("app")])
    try:
        assert str(pod.ip) == "10.0.1.4/24"
        assert ping(cluster, "pod-1", "extra").ttl == 61
        assert pod.containers["app"].running
    finally:
        cluster.remove_pod("extra")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "ktb-node-2-extra" not in listed
    leases = cluster.state.directory / "ipam" / "node-2" / "kubenet"
    assert not (leases / "10.0.1.4").exists()
    ports = json.loads(cluster.exec_node("node-2", ["bridge", "-j", "link", "show"]).stdout)
    assert len([p for p in ports if p.get("master") == "cbr0"]) == 2
