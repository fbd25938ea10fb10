"""The userspace mode's portal rules, kubelet's DNS files, and the kube-proxy state
files: pure parts of Services."""

from __future__ import annotations

import shlex
from ipaddress import IPv4Address
from pathlib import Path

from testbed.kernel.files import write_whole
from testbed.model.spec import ServicePortSpec, ServiceSpec
from testbed.model.svc import dns
from testbed.model.svc import userspace as us
from testbed.model.svc.plan import Endpoint, ServicePort
from testbed.proxy.common.state import ProxyState, ProxyStatus

WEB = ServicePort(namespace="default", name="service-test", port_name="", protocol="TCP",
                  cluster_ip="10.3.241.152", port=80,
                  endpoints=(Endpoint("10.0.0.4", 8080, "node-1"),), node_port=30080)
DNS = ServicePort(namespace="kube-system", name="kube-dns", port_name="dns", protocol="UDP",
                  cluster_ip="10.3.240.10", port=53)


def test_userspace_portals_redirect_to_the_proxy_port() -> None:
    payload = us.render([WEB, DNS], {us.port_key(WEB): 36463, us.port_key(DNS): 41000},
                        "10.100.0.2")
    lines = payload.splitlines()
    assert ("-A KUBE-PORTALS-CONTAINER -m comment --comment default/service-test -p tcp "
            "-m tcp --dport 80 -d 10.3.241.152/32 -j REDIRECT --to-ports 36463") in lines
    assert ("-A KUBE-PORTALS-HOST -m comment --comment default/service-test -p tcp -m tcp "
            "--dport 80 -d 10.3.241.152/32 -j DNAT --to-destination 10.100.0.2:36463") in lines
    assert ("-A KUBE-NODEPORT-CONTAINER -m comment --comment default/service-test -p tcp "
            "-m tcp --dport 30080 -j REDIRECT --to-ports 36463") in lines
    assert ("-A KUBE-NODEPORT-NON-LOCAL -m comment --comment default/service-test -p tcp "
            "-m tcp --dport 30080 -j ACCEPT") in lines
    assert ("-A KUBE-PORTALS-CONTAINER -m comment --comment kube-system/kube-dns:dns -p udp "
            "-m udp --dport 53 -d 10.3.240.10/32 -j REDIRECT --to-ports 41000") in lines
    # every chain is declared (and so flushed) before its rules, in both tables
    assert lines.index(":KUBE-NODEPORT-NON-LOCAL - [0:0]") < lines.index("COMMIT")


def test_userspace_without_a_proxy_port_writes_no_portal() -> None:
    assert "REDIRECT" not in us.render([WEB], {}, "10.100.0.2")


def test_userspace_jumps_portals_first_node_ports_last() -> None:
    jumps = us.jump_rules()
    assert [(t, c, pos) for t, c, pos, _ in jumps] == [
        ("nat", "PREROUTING", "I"), ("nat", "OUTPUT", "I"), ("nat", "PREROUTING", "A"),
        ("nat", "OUTPUT", "A"), ("filter", "INPUT", "I")]
    for *_, rule in jumps:  # each splits into iptables arguments as kube-proxy gave them
        assert shlex.split(rule)[-2] == "-j"


def test_resolv_conf_as_kubelet_writes_it() -> None:
    assert dns.resolv_conf(IPv4Address("10.3.240.10")) == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.3.240.10\noptions ndots:5\n")
    assert dns.resolv_conf("10.96.0.10", "shop").startswith("search shop.svc.cluster.local ")


def test_hosts_file_and_records() -> None:
    hosts = dns.hosts_file("10.0.0.3", "client")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith("10.0.0.3\tclient\n")
    svc = ServiceSpec("service-test", (("app", "x"),), (ServicePortSpec(80, 8080),),
                      cluster_ip=IPv4Address("10.3.241.152"))
    assert dns.records([svc]) == "10.3.241.152\tservice-test.default.svc.cluster.local\n"
    cmd = dns.dnsmasq_command(Path("/r/hosts"))
    assert cmd[0] == "dnsmasq" and "--addn-hosts=/r/hosts" in cmd
    assert "--local=/cluster.local/" in cmd and "--no-resolv" in cmd


def test_state_and_status_round_trip(tmp_path: Path) -> None:
    state = ProxyState(generation=3, mode="iptables", services=(WEB, DNS),
                       cluster_cidr="10.0.0.0/14")
    assert ProxyState.from_json(state.to_json()) == state
    status = ProxyStatus(node="node-1", pid=7, mode="userspace", generation=3, syncs=2,
                         proxy_ports={"default/service-test/TCP": 36463})
    assert ProxyStatus.from_json(status.to_json()) == status
    target = tmp_path / "state.json"
    write_whole(target, state.to_json())
    assert target.read_text() == state.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
