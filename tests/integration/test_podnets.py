"""Pod networks besides kubenet on a running cluster: the kernel state each mode's agent
would leave (as `ip` shows it) and the paths it gives (reply TTLs)."""

from __future__ import annotations

import json
import re

from testbed.cluster import Cluster
from testbed.measure.ping import parse_ping
from testbed.model.load import load_spec

from .conftest import TOPOLOGIES, machine_snapshot


def ttl(cluster: Cluster, src: str, dst: str) -> int:
    res = cluster.pod(src).exec(["ping", "-c2", "-i0.05", "-W1", cluster.endpoint_ip(dst)])
    result = parse_ping(res.stdout)
    assert result.loss_pct == 0, res.stdout
    return int(result.ttl)


def routes(cluster: Cluster, where: str) -> list[dict]:
    argv = ["ip", "-j", "-4", "route"]
    res = cluster.pod(where).exec(argv) if where in cluster.pods else \
        cluster.exec_node(where, argv)
    return json.loads(res.stdout)


def test_kindnet_no_bridge_a_route_per_pod_and_node_to_node() -> None:
    spec = load_spec(TOPOLOGIES / "kindnet.yaml")
    with Cluster(spec) as c:
        assert c.router_routes() == []
        links = json.loads(c.exec_node("node-1", ["ip", "-j", "link"]).stdout)
        assert not [link for link in links if link.get("linkinfo", {}).get("info_kind")
                    == "bridge"]
        assert not any(link.get("master") for link in links)  # no bridge ports either
        node_routes = routes(c, "node-1")
        for pod in ("pod-1", "pod-2"):  # ptp: one scope-host route per pod
            assert any(r["dst"] == c.endpoint_ip(pod) and r.get("scope") == "host"
                       for r in node_routes), node_routes
        assert any(r["dst"] == "10.0.1.0/24" and r.get("gateway") == "10.100.0.3"
                   for r in node_routes)
        pod_routes = {(r["dst"], r.get("gateway")) for r in routes(c, "pod-1")}
        assert {("default", "10.0.0.1"), ("10.0.0.0/24", "10.0.0.1")} <= pod_routes
        assert (ttl(c, "pod-1", "pod-2"), ttl(c, "pod-1", "pod-3")) == (63, 62)
        nat = c.exec_node("node-1", ["iptables-save", "-t", "nat"]).stdout
        assert "-A KIND-MASQ-AGENT -d 10.0.0.0/14" in nat


def test_kindnet_fast_path_equals_the_ptp_plugin() -> None:
    """The fast path makes what the ptp plugin makes (normalised kernel dumps, pods
    added and removed at runtime included), and leaves nothing behind."""
    from tests.support import kstate

    from .test_fastwire import bring_up_and_dump

    before = machine_snapshot()
    spec = load_spec(TOPOLOGIES / "kindnet.yaml")
    cni = bring_up_and_dump(spec, "cni")
    assert kstate.diff(cni, bring_up_and_dump(spec, "fast")) == []
    assert machine_snapshot() == before


def test_flannel_vxlan_device_neighbours_fdb_and_the_mtu() -> None:
    """flannel.1 as flanneld's VXLAN backend programs it, and its cost: pods get an MTU 50
    below the underlay's (a DF ping filling it passes, one byte more fails)."""
    from testbed.model.podnet.flannel import vtep_mac

    with Cluster(load_spec(TOPOLOGIES / "flannel-vxlan.yaml")) as c:
        assert c.router_routes() == []
        (dev,) = json.loads(c.exec_node("node-1", ["ip", "-j", "-d", "link", "show",
                                                   "flannel.1"]).stdout)
        data = dev["linkinfo"]["info_data"]
        assert (data["id"], data["local"], data["port"], data.get("learning")) == (
            1, "10.100.0.2", 8472, False)
        assert dev["mtu"] == 1450 and dev["address"] == vtep_mac("node-1")
        neigh = c.exec_node("node-1", ["ip", "neigh", "show", "dev", "flannel.1"]).stdout
        assert f"10.0.1.0 lladdr {vtep_mac('node-2')} PERMANENT" in neigh
        fdb = c.exec_node("node-1", ["bridge", "fdb", "show", "dev", "flannel.1"]).stdout
        assert f"{vtep_mac('node-2')} dst 10.100.0.3 self permanent" in fdb
        assert any(r["dst"] == "10.0.1.0/24" and r.get("gateway") == "10.0.1.0"
                   and "onlink" in r.get("flags", []) for r in routes(c, "node-1"))
        dst = c.endpoint_ip("pod-3")
        fits = c.pod("pod-1").exec(["ping", "-c1", "-W1", "-M", "do", "-s", "1422", dst])
        over = c.pod("pod-1").exec(["ping", "-c1", "-W1", "-M", "do", "-s", "1423", dst])
        assert fits.ok and not over.ok, (fits.stdout, over.stdout + over.stderr)
        assert ttl(c, "pod-1", "pod-3") == 62


def _racks_spec(mode: str):  # noqa: ANN202 - a ClusterSpec
    import dataclasses

    return dataclasses.replace(load_spec(TOPOLOGIES / "racks.yaml"), pod_network=mode)


def test_racks_vxlan_crosses_the_router_host_gw_cannot() -> None:
    """Two racks joined by the router: flannel-vxlan's pods reach each other (the router
    sees only node-to-node UDP); host-gw's cannot, and the bring-up says why, as flanneld
    would; pods of one node still talk. Nothing is left behind."""
    before = machine_snapshot()
    with Cluster(_racks_spec("flannel-vxlan")) as c:
        assert c.node_plan("node-2").underlay_ip.ip.exploded == "10.100.1.2"
        assert {r["dst"] for r in routes(c, "router")} >= {"10.100.0.0/24", "10.100.1.0/24"}
        assert ttl(c, "pod-1", "pod-3") == 62  # the router is inside the tunnel: no hop
        assert c.node_notes == {"node-1": [], "node-2": []}
    with Cluster(_racks_spec("flannel-host-gw")) as c:
        assert ttl(c, "pod-1", "pod-2") == 64
        res = c.pod("pod-1").exec(["ping", "-c1", "-W1", c.endpoint_ip("pod-3")])
        assert not res.ok
        assert "network is unreachable" in c.node_notes["node-1"][0]
    assert machine_snapshot() == before


def test_calico_vxlan_proxy_arp_blocks_and_tunnel() -> None:
    """Calico's workloads as its plugin and Felix leave them, the VXLAN device, and a pod
    added and removed at runtime (its address back in the block)."""
    from testbed.model.podnet.calico import vtep_mac

    with Cluster(load_spec(TOPOLOGIES / "calico-vxlan.yaml")) as c:
        assert c.wiring_name == "calico" and c.router_routes() == []
        assert c.endpoint_ip("pod-1") == "10.0.0.1" and c.endpoint_ip("pod-3") == "10.0.0.65"
        ttl(c, "pod-1", "pod-3")  # traffic first, so the gateway is resolved
        neigh = c.pod("pod-1").exec(["ip", "neigh", "show", "169.254.1.1"]).stdout
        assert "lladdr ee:ee:ee:ee:ee:ee" in neigh  # answered by the host side's proxy ARP
        pod_routes = {(r["dst"], r.get("gateway"), r.get("scope")) for r in routes(c, "pod-1")}
        assert ("default", "169.254.1.1", None) in pod_routes
        assert ("169.254.1.1", None, "link") in pod_routes
        node = routes(c, "node-1")
        assert any(r["dst"] == "10.0.0.0/26" and r.get("type") == "blackhole"
                   and r.get("protocol") == "80" for r in node), node
        assert any(r["dst"] == "10.0.0.1" and r.get("scope") == "link"
                   and r["dev"].startswith("cali") for r in node)
        assert any(r["dst"] == "10.0.0.64/26" and r.get("gateway") == "10.0.0.64"
                   and r.get("dev") == "vxlan.calico" for r in node)
        (dev,) = json.loads(c.exec_node("node-1", ["ip", "-j", "-d", "link", "show",
                                                   "vxlan.calico"]).stdout)
        data = dev["linkinfo"]["info_data"]
        assert (data["id"], data["port"], dev["mtu"], dev["address"]) == (
            4096, 4789, 1450, vtep_mac("node-1"))
        assert (ttl(c, "pod-1", "pod-2"), ttl(c, "pod-1", "pod-3")) == (63, 62)
        c.add_pod("node-1", "later")
        assert c.endpoint_ip("later") == "10.0.0.3"
        c.remove_pod("later")
        c.add_pod("node-1", "again")
        assert c.endpoint_ip("again") == "10.0.0.3"  # released, and handed out again


def test_calico_bgp_across_racks_through_the_router() -> None:
    """calico on two racks: BIRD on each node, the router's bgpd learning both blocks;
    node-1 reaches node-2's block through the router (BGP's recursive next hop), pods
    answer across racks, and nothing is left behind."""
    before = machine_snapshot()
    with Cluster(_racks_spec("calico")) as c:
        assert c.timings["converge_s"] > 0
        router = {r["dst"]: r for r in routes(c, "router")}
        for node in ("node-1", "node-2"):
            block = str(c.node_plan(node).pod_cidr)
            assert router[block]["protocol"] == "bgp"
            assert router[block]["gateway"] == c.endpoint_ip(node)
        learnt = {r["dst"]: r for r in routes(c, "node-1")}
        other = learnt[str(c.node_plan("node-2").pod_cidr)]
        assert other["protocol"] == "bird" and other["gateway"] == "10.100.0.1"
        assert ttl(c, "pod-1", "pod-3") == 61  # node, router, node
    assert machine_snapshot() == before


def test_calico_node_leaves_and_joins_and_the_cli_times_it() -> None:
    """`leave`/`join` from the CLI on topologies/calico.yaml (three nodes): node-3's block
    withdrawn from the others and the router, then learnt again and its pod reachable;
    the daemons are followed to teardown (nothing left); a mode without routing daemons
    and a second leave are refused in one line."""
    from .test_cli import run

    before = machine_snapshot()
    res = run("up", str(TOPOLOGIES / "calico.yaml"),
              "-c", "leave node-3", "-c", "node-1 ip -4 route",
              "-c", "pod-1 ping -c1 -W1 10.0.0.128",
              "-c", "join node-3", "-c", "node-1 ip -4 route",
              "-c", "router ip -4 route", "-c", "pod-1 ping -c1 -W1 10.0.0.128")
    out = res.stdout
    assert "node-3 left the pod network: every kernel agreed in" in out, res.stderr
    assert "node-3 joined the pod network: every kernel agreed in" in out
    left, joined = out.split("node-3 joined the pod network")
    assert "10.0.0.128/26" not in left.split("left the pod network")[1]
    assert " 0 received" in left  # node-3's pod out of reach while it is out ...
    assert "10.0.0.128/26 via 10.100.0.4 dev node-1-eth0 proto bird" in joined
    assert re.search(r"10\.0\.0\.128/26 (nhid \d+ )?via 10\.100\.0\.4 dev router-\S+ "
                     r"proto bgp", joined), joined  # the router learnt it again
    assert " 1 received" in joined  # ... and answers once it is back
    assert res.returncode == 1  # the one failed command: the ping while node-3 was out
    assert machine_snapshot() == before
    with Cluster(load_spec(TOPOLOGIES / "kindnet.yaml")) as c:
        try:
            c.leave("node-2")
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            assert "nodes joining and leaving are emulated where routing daemons" in str(exc)
        else:
            raise AssertionError("kindnet let a node leave")
    assert machine_snapshot() == before
