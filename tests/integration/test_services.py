"""Services on a running cluster (topologies/services.yaml, up once for this module):
cluster DNS, kube-proxy's rules on every node, and the controller following pods that
are added, removed, turn unready, and kube-proxy that dies or changes mode."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from testbed.cluster import Cluster
from testbed.model.load import load_spec
from testbed.model.names import ROUTER
from testbed.model.spec import ContainerSpec
from testbed.model.svc import iptables as ipt
from testbed.model.svc.plan import ServicePort

from .conftest import TOPOLOGIES

VIP = "10.3.241.152"
CURL = ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(load_spec(TOPOLOGIES / "services.yaml")) as c:
        yield c


def nat_rules(cluster: Cluster, node: str) -> str:
    res = cluster.exec_node(node, ["iptables-save", "-t", "nat"])
    assert res.ok, res.stderr
    return res.stdout


def svc_chain_rules(cluster: Cluster, node: str) -> list[str]:
    """The KUBE-SVC chain's rules of default/service-test on `node`."""
    sp = ServicePort("default", "service-test", "", "TCP", VIP, 80)
    chain = ipt.service_chain("SVC", sp)
    return [line for line in nat_rules(cluster, node).splitlines()
            if line.startswith(f"-A {chain} ")]


def endpoint_ips(cluster: Cluster, node: str = "node-1") -> set[str]:
    return set(re.findall(r"-> ([\d.]+):8080", "\n".join(svc_chain_rules(cluster, node))))


def wait_for(check, timeout_s: float = 15.0):  # noqa: ANN001, ANN201 - a predicate
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def served(cluster: Cluster, pod: str) -> list[str]:
    """Client addresses in a server pod's access log (python3 -m http.server)."""
    log = cluster.records.subdir("containers") / f"{pod}_web.log"
    return re.findall(r"^(\d+\.\d+\.\d+\.\d+) - - ", log.read_text(errors="replace"), re.M)


def test_dns_resolves_services_by_short_and_full_name(cluster: Cluster) -> None:
    client = cluster.pod("client")
    for name in ("service-test", "service-test.default",
                 "service-test.default.svc.cluster.local"):
        res = client.exec(["getent", "hosts", name])
        assert res.ok and res.stdout.split()[0] == VIP, (name, res)
    assert not client.exec(["getent", "hosts", "no-such-service"]).ok
    resolv = client.exec(["cat", "/etc/resolv.conf"]).stdout
    assert "nameserver 10.3.240.10" in resolv and "options ndots:5" in resolv
    assert client.exec(["cat", "/etc/hosts"]).stdout.rstrip().endswith(
        f"{cluster.endpoint_ip('client')}\tclient")
    with open("/etc/resolv.conf") as f:  # the machine's own file is untouched
        assert "10.3.240.10" not in f.read()


def test_client_reaches_the_service_by_name_and_both_servers_serve(cluster: Cluster) -> None:
    before = {p: len(served(cluster, p)) for p in ("server-1", "server-2")}
    client = cluster.pod("client")
    for _ in range(30):
        res = client.exec([*CURL, "http://service-test/"])
        assert res.stdout == "200", res
    after = {p: len(served(cluster, p)) - before[p] for p in before}
    assert sum(after.values()) == 30 and all(after.values()), after


def test_every_node_has_kube_proxys_chains(cluster: Cluster) -> None:
    for node in cluster.node_names:
        rules = nat_rules(cluster, node)
        assert '-A PREROUTING -m comment --comment "kubernetes service portals" ' \
               "-j KUBE-SERVICES" in rules
        assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in rules
        assert endpoint_ips(cluster, node) == {cluster.endpoint_ip("server-1"),
                                               cluster.endpoint_ip("server-2")}
    # no interface anywhere holds the virtual IP, and the router has no route for it
    assert VIP not in cluster.exec_node("node-1", ["ip", "-o", "addr"]).stdout
    assert "10.3.240.0" not in cluster.exec_node(ROUTER, ["ip", "route"]).stdout


def test_node_port_from_outside_the_nodes(cluster: Cluster) -> None:
    for node in cluster.node_names:
        ip = cluster.endpoint_ip(node)
        res = cluster.exec_node(ROUTER, [*CURL, f"http://{ip}:30080/"])
        assert res.stdout == "200", (node, res)


def test_added_and_removed_pods_follow_their_labels(cluster: Cluster) -> None:
    cluster.add_pod("node-2", "server-3", [ContainerSpec("web", ("python3", "-m", "http.server",
                                                                 "8080"))],
                    labels={"app": "service-test"})
    ip = cluster.endpoint_ip("server-3")
    cluster.services.wait_synced()
    assert ip in endpoint_ips(cluster)
    cluster.add_pod("node-2", "other", labels={"app": "other"})
    cluster.services.wait_synced()
    assert cluster.endpoint_ip("other") not in endpoint_ips(cluster)
    cluster.remove_pod("server-3")
    cluster.remove_pod("other")
    cluster.services.wait_synced()
    assert ip not in endpoint_ips(cluster)


def test_an_unready_pod_leaves_the_rules_and_comes_back(cluster: Cluster) -> None:
    ip2 = cluster.endpoint_ip("server-2")
    cluster.stop_container("server-2", "health")
    try:
        assert wait_for(lambda: ip2 not in endpoint_ips(cluster)), "still an endpoint"
        assert not cluster.services.readiness()["server-2"]
        before = len(served(cluster, "server-2"))
        for _ in range(10):
            assert cluster.pod("client").exec([*CURL, f"http://{VIP}/"]).stdout == "200"
        assert len(served(cluster, "server-2")) == before  # no new connection
    finally:
        cluster.restart_container("server-2", "health")
    assert wait_for(lambda: ip2 in endpoint_ips(cluster)), "not back"


def test_traffic_survives_a_dead_kube_proxy_in_iptables_mode(cluster: Cluster) -> None:
    controller = cluster.services
    controller.kill_proxy("node-1")
    try:
        for _ in range(5):
            assert cluster.pod("client").exec([*CURL, f"http://{VIP}/"]).stdout == "200"
    finally:
        controller.start_proxy("node-1")
        controller.wait_synced()


def test_userspace_mode_proxies_through_kube_proxy(cluster: Cluster) -> None:
    controller = cluster.services
    controller.set_mode("userspace")
    try:
        rules = nat_rules(cluster, "node-1")
        assert "KUBE-PORTALS-CONTAINER" in rules and "KUBE-SVC-" not in rules
        before = {p: len(served(cluster, p)) for p in ("server-1", "server-2")}
        assert cluster.pod("client").exec([*CURL, "http://service-test/"]).stdout == "200"
        assert cluster.pod("client").exec([*CURL, f"http://{VIP}/"]).stdout == "200"
        seen = [ip for p, n in before.items() for ip in served(cluster, p)[n:]]
        # the server sees the node (cbr0 towards server-1, the underlay towards server-2)
        node_side = {cluster.endpoint_ip("node-1"), str(cluster.node_plan("node-1").gateway)}
        assert len(seen) == 2 and set(seen) <= node_side, seen
        controller.kill_proxy("node-1")
        res = cluster.pod("client").exec([*CURL, f"http://{VIP}/"])
        assert res.stdout != "200", res  # nobody carries the connection any more
        controller.start_proxy("node-1")
        controller.wait_synced()
        assert cluster.pod("client").exec([*CURL, f"http://{VIP}/"]).stdout == "200"
    finally:
        controller.set_mode("iptables")
    rules = nat_rules(cluster, "node-1")
    assert "KUBE-PORTALS" not in rules and "KUBE-SVC-" in rules


def test_nftables_mode_serves_the_same_services(cluster: Cluster) -> None:
    controller = cluster.services
    controller.set_mode("nftables")
    try:
        table = cluster.exec_node("node-1", ["nft", "list", "table", "ip", "kube-proxy"])
        assert table.ok, table.stderr
        assert "numgen random mod 2 vmap" in table.stdout
        assert f"{VIP} . tcp . 80 : goto service-" in table.stdout
        assert "KUBE-SVC-" not in nat_rules(cluster, "node-1")  # iptables mode cleaned up
        before = {p: len(served(cluster, p)) for p in ("server-1", "server-2")}
        for _ in range(20):
            assert cluster.pod("client").exec([*CURL, "http://service-test/"]).stdout == "200"
        assert all(len(served(cluster, p)) > n for p, n in before.items())
        ip2 = cluster.endpoint_ip("server-2")
        cluster.stop_container("server-2", "health")
        try:
            assert wait_for(lambda: ip2 not in cluster.exec_node(
                "node-1", ["nft", "list", "table", "ip", "kube-proxy"]).stdout)
        finally:
            cluster.restart_container("server-2", "health")
        controller.kill_proxy("node-1")  # the table stays, and so does the service
        assert cluster.pod("client").exec([*CURL, f"http://{VIP}/"]).stdout == "200"
        controller.start_proxy("node-1")
        controller.wait_synced()
    finally:
        controller.set_mode("iptables")
    assert not cluster.exec_node("node-1", ["nft", "list", "table", "ip", "kube-proxy"]).ok
