"""The fast wiring path leaves the kernel exactly as the real CNI plugins do."""

from __future__ import annotations

from testbed.cluster import Cluster
from testbed.measure.ping import parse_ping
from testbed.model.spec import ClusterSpec, ContainerSpec
from tests.support import kstate


def bring_up_and_dump(spec: ClusterSpec, wiring: str) -> dict:
    with Cluster(spec, wiring=wiring) as cluster:
        first = kstate.cluster_state(cluster)
        # a pod added and removed at runtime: ADD and DEL both compared
        cluster.add_pod("node-2", "extra", [ContainerSpec("app")])
        cluster.add_pod("node-1", "later")
        cluster.remove_pod("extra")
        second = kstate.cluster_state(cluster)
    return {"at bring-up": first, "after add/remove": second}


def test_fast_wiring_equals_the_real_plugins(two_node_spec: ClusterSpec) -> None:
    cni = bring_up_and_dump(two_node_spec, "cni")
    fast = bring_up_and_dump(two_node_spec, "fast")
    assert kstate.diff(cni, fast) == []
    # and the dumps are not trivially equal: they hold what the wiring decided
    pod1 = cni["at bring-up"]["pods"]["pod-1"]
    eth0 = next(link for link in pod1["links"] if link["ifname"] == "eth0")
    assert eth0["mtu"] == 1500 and eth0["txqlen"] is None  # ip -j omits a zero txqueuelen
    default = next(r for r in pod1["routes"] if r["dst"] == "default")
    # proto boot, which `ip -j` leaves out as it leaves out a zero txqueuelen
    assert (default["gateway"], default["dev"], default.get("protocol")) == ("10.0.0.1",
                                                                              "eth0", None)
    assert pod1["sysctls"]["net.ipv4.conf.eth0.arp_notify"] == "1"
    ports = [link for link in cni["at bring-up"]["nodes"]["node-1"]["links"]
             if link["ifname"] == "veth<8 hex>"]
    assert len(ports) == 2 and all(p["port"]["hairpin"] for p in ports)
    node = cni["at bring-up"]["nodes"]["node-1"]
    assert any("kubenet: SNAT" in rule for rule in node["iptables"])
    assert node["port_sysctls"] and cni["at bring-up"]["pairing"]["pod-1"] == {
        "host_port": "veth<8 hex>", "master": "cbr0", "hairpin": True}
    assert any(e["mac"] == "own MAC of veth<8 hex>" for e in node["fdb"])
    ipam = cni["after add/remove"]["ipam"]["node-2"]
    assert ipam["kubenet/last_reserved_ip.0"] == "10.0.1.4"
    assert "kubenet/10.0.1.4" not in ipam  # released by DEL
    assert ipam["kubenet/10.0.1.2"] == "<run>-pod-3\neth0"


def test_fast_wiring_data_plane(two_node_spec: ClusterSpec) -> None:
    with Cluster(two_node_spec, wiring="fast") as cluster:
        for src, dst, ttl in (("pod-1", "pod-2", 64), ("pod-1", "pod-4", 61),
                              ("pod-3", "router", 63)):
            res = cluster.pod(src).exec(["ping", "-c2", "-i0.05", "-W1",
                                         cluster.endpoint_ip(dst)])
            result = parse_ping(res.stdout)
            assert result.loss_pct == 0 and result.ttl == ttl, (src, dst, res.stdout)


def test_flannel_vxlan_fast_wiring_equals_the_plugins() -> None:
    from testbed.model.load import load_spec

    from .conftest import TOPOLOGIES

    spec = load_spec(TOPOLOGIES / "flannel-vxlan.yaml")
    cni = bring_up_and_dump(spec, "cni")
    assert kstate.diff(cni, bring_up_and_dump(spec, "fast")) == []
    eth0 = next(link for link in cni["at bring-up"]["pods"]["pod-1"]["links"]
                if link["ifname"] == "eth0")
    assert eth0["mtu"] == 1450


def test_flannel_host_gw_fast_wiring_equals_the_plugins_and_routes_node_to_node() -> None:
    """flannel's delegate configuration (ranges, isDefaultGateway, the default bridge
    cni0) wired both ways gives the same kernel state; pods cross nodes without the
    router (TTL 62, the router holds no pod route)."""
    from testbed.model.load import load_spec

    from .conftest import TOPOLOGIES

    spec = load_spec(TOPOLOGIES / "flannel-host-gw.yaml")
    cni = bring_up_and_dump(spec, "cni")
    fast = bring_up_and_dump(spec, "fast")
    assert kstate.diff(cni, fast) == []
    pod1 = cni["at bring-up"]["pods"]["pod-1"]
    assert {(r["dst"], r.get("gateway")) for r in pod1["routes"]} >= {
        ("default", "10.0.0.1"), ("10.0.0.0/14", "10.0.0.1")}
    node = cni["at bring-up"]["nodes"]["node-1"]
    assert any(r["dst"] == "10.0.1.0/24" and r.get("gateway") == "10.100.0.3"
               for r in node["routes"])
    assert any("FLANNEL-POSTRTG" in rule for rule in node["iptables"])
    assert cni["at bring-up"]["pairing"]["pod-1"]["master"] == "cni0"
    with Cluster(spec, wiring="fast") as cluster:
        assert cluster.router_routes() == []
        res = cluster.pod("pod-1").exec(["ping", "-c2", "-i0.05", "-W1",
                                         cluster.endpoint_ip("pod-4")])
        result = parse_ping(res.stdout)
        assert result.loss_pct == 0 and result.ttl == 62, res.stdout
