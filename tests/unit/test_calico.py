"""Calico VXLAN's planned state and its workload IPAM (pure, no root)."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from testbed.errors import SpecError, TestbedError
from testbed.kernel import procs
from testbed.model.load import load_spec, parse_spec
from testbed.model.names import FRR_TMP
from testbed.model.podnet import pod_network
from testbed.model.podnet.calico import tunnel_ip, vtep_mac
from testbed.pods.calico import BlockIpam, veth_name
from testbed.records import undo
from testbed.records.journal import frr_crashlog

TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "calico-vxlan.yaml"


def test_blocks_tunnel_and_vxlan_programming() -> None:
    spec = load_spec(TOPOLOGY)
    network = pod_network("calico-vxlan")
    p = network.plan(spec)
    n1, n2 = p.nodes
    assert (n1.pod_cidr, n2.pod_cidr) == (IPv4Network("10.0.0.0/26"),
                                          IPv4Network("10.0.0.64/26"))
    assert (tunnel_ip(n1), tunnel_ip(n2)) == ("10.0.0.0", "10.0.0.64")
    assert network.router_routes(p) == [] and network.bridge is None
    assert network.wiring == "calico"
    assert network.mtu({"node-1-eth0": 1500}) == 1450
    setup = network.node_setup(spec, p, n1, 1450)
    cmds = [" ".join(c) for c in setup.commands]
    assert cmds[0] == (f"ip link add vxlan.calico address {vtep_mac('node-1')} mtu 1450 type "
                       "vxlan id 4096 local 10.100.0.2 dev node-1-eth0 dstport 4789 nolearning")
    assert cmds[1:] == [
        "ip addr add 10.0.0.0/32 dev vxlan.calico", "ip link set vxlan.calico up",
        f"ip neigh replace 10.0.0.64 lladdr {vtep_mac('node-2')} dev vxlan.calico nud "
        "permanent",
        f"bridge fdb replace {vtep_mac('node-2')} dev vxlan.calico dst 10.100.0.3 self "
        "permanent",
        "ip route replace 10.0.0.64/26 via 10.0.0.64 dev vxlan.calico onlink",
        "ip route add blackhole 10.0.0.0/26 proto 80"]
    assert "--random-fully" in setup.iptables[-1] and "10.0.0.0/14" in setup.iptables[-1]
    cfg = network.cni_config(p, n1, 1450, Path("/i"))
    assert cfg["type"] == "calico" and cfg["ipam"]["block"] == "10.0.0.0/26"
    assert cfg["ipam"]["reserved"] == ["10.0.0.0"]
    assert network.expected_ttls()["pod-same-node"] == 63


def test_calico_refuses_what_it_cannot_build() -> None:
    d = {"name": "c", "cluster_cidr": "10.0.0.0/26", "pod_network": "calico-vxlan",
         "node_cidr_prefix": 26,
         "nodes": [{"name": "a", "pods": 1}, {"name": "b", "pods": 1}]}
    with pytest.raises(SpecError, match="do not fit"):
        parse_spec(d)
    d = {"name": "c", "cluster_cidr": "10.0.0.0/16", "pod_network": "calico-vxlan",
         "nodes": [{"name": "a", "pods": 64}]}
    with pytest.raises(SpecError, match="room for 63"):
        parse_spec(d)
    d = {"name": "c", "cluster_cidr": "10.0.0.0/16", "pod_network": "calico-vxlan",
         "nodes": [{"name": "a", "pod_cidr": "10.0.1.0/24"}]}
    with pytest.raises(SpecError, match="not used"):
        parse_spec(d)


def test_block_ipam_by_ordinal_skipping_reserved(tmp_path: Path) -> None:
    ipam = BlockIpam(tmp_path, IPv4Network("10.0.0.64/30"), ["10.0.0.64"])
    assert ipam.allocate("a") == IPv4Address("10.0.0.65")
    assert ipam.allocate("b") == IPv4Address("10.0.0.66")
    ipam.release("a")
    assert ipam.allocate("c") == IPv4Address("10.0.0.65")  # lowest free first
    assert ipam.allocate("d") == IPv4Address("10.0.0.67")
    with pytest.raises(TestbedError, match="full"):
        ipam.allocate("e")
    # kept on disk: a second store over the same directory sees the same leases
    assert BlockIpam(tmp_path, IPv4Network("10.0.0.64/30"), []).allocate("f") == \
        IPv4Address("10.0.0.64")


def test_veth_names_have_calicos_shape() -> None:
    name = veth_name("run-pod-1")
    assert name.startswith("cali") and len(name) == 15 and name != veth_name("run-pod-2")


def test_calico_bgp_runs_bird_in_a_mesh_and_waits_for_the_blocks() -> None:
    from testbed.model.podnet import bird

    spec = load_spec(TOPOLOGY.parent / "calico.yaml")
    network = pod_network("calico")
    p = network.plan(spec)
    n1, n2, n3 = p.nodes
    setup = network.node_setup(spec, p, n1, 1500)
    assert setup.commands == () and setup.bridge is None and network.mtu({"e": 1500}) == 1500
    (daemon,) = setup.daemons
    assert daemon.argv[:3] == ("bird", "-f", "-c") and "{dir}/bird.conf" in daemon.argv
    assert setup.await_routes == (n2.pod_cidr, n3.pod_cidr)
    conf = dict(daemon.files)["bird.conf"]
    assert "route 10.0.0.0/26 blackhole;" in conf and "local as 64512;" in conf
    assert "protocol bgp Mesh_10_100_0_3 from bgp_template {" in conf
    assert "neighbor 10.100.0.3 as 64512;" in conf and "passive on;" in conf
    # the other side of the session is the active one: its peer compares smaller
    conf2 = dict(network.node_setup(spec, p, n2, 1500).daemons[0].files)["bird.conf"]
    assert "passive on;" not in _protocol(conf2, "Mesh_10_100_0_2")
    assert "passive on;" in _protocol(conf2, "Mesh_10_100_0_4")
    assert network.cni_config(p, n1, 1500, Path("/i"))["ipam"]["reserved"] == []
    assert bird.peer_protocol(IPv4Address("192.168.0.3")) == "Mesh_192_168_0_3"
    assert "protocol bgp Global_10_100_0_1 from bgp_template {" in conf
    assert "neighbor 10.100.0.1 as 64513;" in conf  # the router, a global BGP peer
    router = network.router_setup(spec, p)
    assert router is not None and router.await_routes == (n1.pod_cidr, n2.pod_cidr,
                                                          n3.pod_cidr)
    (bgpd,) = router.daemons
    assert "{frr}/quagga_router.api" in bgpd.argv and "--vty_socket" in bgpd.argv
    frr = dict(bgpd.files)["bgpd.conf"]
    assert "router bgp 64513" in frr and " neighbor 10.100.0.2 remote-as 64512" in frr
    assert "  neighbor 10.100.0.3 activate" in frr and "no bgp ebgp-requires-policy" in frr
    assert pod_network("calico-vxlan").router_setup(spec, p) is None


def _protocol(conf: str, name: str) -> str:
    """One `protocol bgp <name> ... }` block of a BIRD configuration."""
    start = conf.index(f"protocol bgp {name} ")
    return conf[start:conf.index("}", start)]


def test_a_node_leaving_is_dropped_from_every_bird_config_and_awaited_route() -> None:
    """The mesh without node-3, as confd regenerates it: no session to it, its block not
    awaited; the router keeps it as a neighbour (a ToR's ports) but awaits only the
    members' blocks; BIRD re-reads its file through birdc."""
    spec = load_spec(TOPOLOGY.parent / "calico.yaml")
    network = pod_network("calico")
    p = network.plan(spec)
    n1, n2, n3 = p.nodes
    mesh = network.mesh(spec, p, n1, [n1, n2])
    assert mesh is not None and mesh.await_routes == (n2.pod_cidr,)
    (daemon,) = mesh.daemons
    conf = dict(daemon.files)["bird.conf"]
    assert "Mesh_10_100_0_3" in conf and "Mesh_10_100_0_4" not in conf
    assert daemon.reload == ("birdc", "-s", "{dir}/bird.ctl", "configure")
    full = network.mesh(spec, p, n1, p.nodes)
    assert full is not None and full.daemons == network.node_setup(spec, p, n1, 1500).daemons
    router = network.mesh(spec, p, None, [n1, n2])
    assert router is not None and router.await_routes == (n1.pod_cidr, n2.pod_cidr)
    assert "neighbor 10.100.0.4 remote-as 64512" in dict(router.daemons[0].files)["bgpd.conf"]
    # a joining node's own BIRD names every member
    own = network.mesh(spec, p, n3, p.nodes)
    assert own is not None and own.await_routes == (n1.pod_cidr, n2.pod_cidr)
    for mode in ("calico-vxlan", "kubenet", "flannel-host-gw", "kindnet"):
        assert pod_network(mode).mesh(spec, p, n1, [n1]) is None, mode


def test_bgpd_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from testbed.model.podnet import bird

    bgpd = shutil.which("bgpd") or "/usr/lib/frr/bgpd"
    if not Path(bgpd).exists():
        pytest.skip("FRR's bgpd not installed")
    conf = tmp_path / "bgpd.conf"
    conf.write_text(bird.frr_bgpd([IPv4Address("10.100.0.1")],
                                  [IPv4Address("10.100.0.2"), IPv4Address("10.100.0.3")]))
    # `bgpd -C` exits without its shutdown: its crash-log directory, /var/tmp/frr/bgpd.<pid>,
    # stays unless removed by that pid (and /var/tmp/frr itself, if this made it)
    made_frr_tmp = not os.path.isdir(FRR_TMP)
    proc = subprocess.Popen([bgpd, "-C", "-f", str(conf), "--vty_socket", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        procs.stop_popen(proc)
        undo.remove_frr_crashlog("bgpd", proc.pid)
        if made_frr_tmp:
            undo.remove_dir_if_empty(FRR_TMP)
    assert proc.returncode == 0, out
    assert not os.path.exists(frr_crashlog("bgpd", proc.pid))


def test_bird_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from testbed.model.podnet import bird

    if shutil.which("bird") is None:
        pytest.skip("bird2 not installed")
    conf = tmp_path / "bird.conf"
    conf.write_text(bird.render(IPv4Address("10.100.0.2"), [IPv4Network("10.0.0.0/26")],
                                IPv4Network("10.0.0.0/14"),
                                [IPv4Address("10.100.0.3"), IPv4Address("10.100.0.4")],
                                tor=IPv4Address("10.100.0.1")))
    res = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
