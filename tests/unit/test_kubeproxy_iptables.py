"""kube-proxy's iptables mode, rendered by the testbed, against kube-proxy's own expected
outputs (tests/unit/golden/, from pkg/proxy/iptables/proxier_test.go) for the same
services and endpoints: every chain declared, every rule of every chain, in order.

The inputs mirror the upstream tests' (NewFakeProxier): node `test-node` at 192.168.0.2,
the local-traffic detector on cluster CIDR 10.0.0.0/8, mark 0x4000, localhost node ports
on; nfacct counters present in the newer tests, absent in the older ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from testbed.model.svc import iptables as ipt
from testbed.model.svc.plan import Endpoint, ServicePort

GOLDEN = Path(__file__).parent / "golden"
NODE = "test-node"
FAKE = ipt.ProxyConfig(node=NODE, node_ip="192.168.0.2", cluster_cidr="10.0.0.0/8",
                       mark="0x4000", nfacct=True, localhost_nodeports=True)


def parse(payload: str) -> dict[str, tuple[set[str], dict[str, list[str]]]]:
    """table -> (chains declared, rules of each chain in order; `-X` lines under '-X')."""
    out: dict[str, tuple[set[str], dict[str, list[str]]]] = {}
    table = ""
    for line in payload.splitlines():
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            out[table] = (set(), {})
        elif line.startswith(":"):
            out[table][0].add(line[1:].split()[0])
        elif line.startswith("-A "):
            chain = line.split()[1]
            out[table][1].setdefault(chain, []).append(line)
        elif line.startswith("-X "):
            out[table][1].setdefault("-X", []).append(line)
        else:
            raise AssertionError(f"unexpected line {line!r}")
    return out


def assert_same(got: str, want: str, tables: tuple[str, ...] = ("filter", "nat")) -> None:
    g, w = parse(got), parse(want)
    for table in tables:
        assert g[table][0] == w[table][0], f"{table}: chains differ"
        for chain in sorted(set(g[table][1]) | set(w[table][1])):
            assert g[table][1].get(chain, []) == w[table][1].get(chain, []), \
                f"{table} {chain} differs"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def sp(ns: str, name: str, ip: str, eps: list[Endpoint], **kw: object) -> ServicePort:
    return ServicePort(namespace=ns, name=name, port_name="p80", protocol="TCP",
                       cluster_ip=ip, port=80, endpoints=tuple(eps), **kw)  # type: ignore[arg-type]


def ep(ip: str, node: str = "") -> Endpoint:
    return Endpoint(ip, 80, node)


OVERALL = [
    sp("ns1", "svc1", "172.30.0.41", [ep("10.180.0.1")]),
    # LoadBalancer, externalTrafficPolicy Local; its endpoint has no node: not local
    sp("ns2", "svc2", "172.30.0.42", [ep("10.180.0.2")], node_port=3001,
       load_balancer_ips=("1.2.3.4",), external_ips=("192.168.99.22",),
       health_check_node_port=30000, external_local=True),
    sp("ns3", "svc3", "172.30.0.43", [ep("10.180.0.3")], node_port=3003),
    sp("ns4", "svc4", "172.30.0.44", [ep("10.180.0.4"), ep("10.180.0.5", NODE)],
       external_ips=("192.168.99.33",)),
    # LoadBalancer, Cluster policy, source ranges (with the upstream test's stray space)
    # and ClientIP affinity
    sp("ns5", "svc5", "172.30.0.45", [ep("10.180.0.3")], node_port=3002,
       load_balancer_ips=("5.6.7.8",), source_ranges=(" 203.0.113.0/25",),
       health_check_node_port=30000, affinity_timeout_s=10800),
    sp("ns6", "svc6", "172.30.0.46", []),
]


def test_overall_rules_match_kube_proxys() -> None:
    # svc5's health check node port gets no rule: kube-proxy keeps one only for the
    # Local policy (NeedsHealthCheck)
    assert_same(ipt.render(OVERALL, FAKE), golden("iptables-overall.txt"))


def test_older_release_without_nfacct_or_affinity() -> None:
    """TestOverallIPTablesRulesWithMultipleServices, the same services one release
    earlier: no nfacct counters (so no localhost node-port rules either) and no affinity."""
    services = [dataclasses.replace(s, affinity_timeout_s=0) if s.name == "svc5" else s
                for s in OVERALL]
    got = parse(ipt.render(services, dataclasses.replace(FAKE, nfacct=False)))
    rules = got["filter"][1]["KUBE-FORWARD"]
    assert rules[0] == "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    assert got["nat"][1]["KUBE-NODEPORTS"] == [
        "-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 "
        "-j KUBE-EXT-GNZBNJ2PO5MGZ6GT",
        "-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 "
        "-j KUBE-EXT-X27LE4BHSL4DOUIK",
        "-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 "
        "-j KUBE-EXT-NUKIZ6OKUXPJNT4C"]
    assert got["nat"][1]["KUBE-SEP-I77PXRDZVX7PMWMN"][1] == (
        "-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT "
        "--to-destination 10.180.0.3:80")


def test_repeated_first_sync_matches_kube_proxys() -> None:
    services = [
        sp("ns1", "svc1", "172.30.0.41", [Endpoint("10.0.1.1", 80)]),
        dataclasses.replace(sp("ns2", "svc2", "172.30.0.42", [Endpoint("10.0.2.1", 8080)]),
                            port_name="p8080", port=8080),
    ]
    assert_same(ipt.render(services, FAKE), golden("iptables-repeated-first-sync.txt"))


def test_only_local_external_ips_match_kube_proxys() -> None:
    services = [sp("ns1", "svc1", "172.30.0.41", [ep("10.180.0.1"), ep("10.180.2.1", NODE)],
                   external_ips=("192.168.99.11",), external_local=True)]
    assert_same(ipt.render(services, FAKE), golden("iptables-only-local-external-ips.txt"),
                tables=("nat",))


@pytest.mark.parametrize(("text", "want"), [
    ("ns1/svc1:p80tcp", "XPGD46QRK7WJZT7O"), ("ns2/svc2:p8080tcp", "2VJB64SDSIJUP5T6"),
    ("ns4/svc4:p80tcp", "4SW47YFZTEDKD3PK"), ("ns3/svc3:p80tcp", "X27LE4BHSL4DOUIK")])
def test_chain_hash(text: str, want: str) -> None:
    key, proto = text[:-3], text[-3:]
    assert ipt.port_proto_hash(key, proto) == want


def test_probabilities_and_three_endpoints() -> None:
    assert [ipt.probability(n) for n in (3, 2)] == ["0.3333333333", "0.5000000000"]
    s = sp("ns", "web", "10.3.241.152", [ep("10.0.1.2"), ep("10.0.0.3"), ep("10.0.0.2")])
    rules = parse(ipt.render([s], FAKE))["nat"][1][ipt.service_chain("SVC", s)]
    # the masquerade rule, then endpoints in `ip:port` string order, the last unconditional
    assert [r.split('"')[1] for r in rules[1:]] == [
        "ns/web:p80 -> 10.0.0.2:80", "ns/web:p80 -> 10.0.0.3:80", "ns/web:p80 -> 10.0.1.2:80"]
    assert "--probability 0.3333333333" in rules[1] and "--probability 0.5000000000" in rules[2]
    assert "statistic" not in rules[3]


def test_unready_endpoints_are_left_out_and_none_ready_rejects() -> None:
    s = sp("ns", "web", "10.3.241.152", [ep("10.0.0.2"), dataclasses.replace(
        ep("10.0.1.2"), ready=False)])
    nat = parse(ipt.render([s], FAKE))["nat"][1]
    assert not any("10.0.1.2" in r for rules in nat.values() for r in rules)
    none = dataclasses.replace(s, endpoints=tuple(dataclasses.replace(e, ready=False)
                                                  for e in s.endpoints))
    got = parse(ipt.render([none], FAKE))
    assert got["filter"][1]["KUBE-SERVICES"] == [
        '-A KUBE-SERVICES -m comment --comment "ns/web:p80 has no endpoints" -m tcp -p tcp '
        "-d 10.3.241.152 --dport 80 -j REJECT"]
    assert not [c for c in got["nat"][0] if ipt.is_service_chain(c)]


def test_no_endpoints_rejects_the_node_port_too() -> None:
    s = sp("ns", "np", "10.3.241.9", [], node_port=30080)
    assert parse(ipt.render([s], FAKE))["filter"][1]["KUBE-EXTERNAL-SERVICES"] == [
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns/np:p80 has no endpoints" '
        "-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT"]


def test_stale_chains_are_deleted_and_foreign_ones_kept() -> None:
    s = sp("ns1", "svc1", "172.30.0.41", [ep("10.180.0.1")])
    payload = ipt.render([s], FAKE, existing_nat_chains=[
        "KUBE-SVC-GONE000000000000", "KUBE-SEP-GONE000000000000", "DOCKER",
        ipt.service_chain("SVC", s)])
    got = parse(payload)["nat"]
    assert got[1]["-X"] == ["-X KUBE-SEP-GONE000000000000", "-X KUBE-SVC-GONE000000000000"]
    assert "KUBE-SVC-GONE000000000000" in got[0] and "DOCKER" not in got[0]


def test_large_clusters_drop_endpoint_comments() -> None:
    eps = [ep(f"10.1.{i // 250}.{i % 250 + 1}") for i in range(1001)]
    s = sp("ns", "big", "10.3.241.7", eps)
    nat = parse(ipt.render([s], FAKE))["nat"][1]
    svc = nat[ipt.service_chain("SVC", s)]
    assert "comment" in svc[0]  # the cluster-IP masquerade rule keeps its comment
    assert all("comment" not in r for r in svc[1:])
    sep = nat[ipt.endpoint_chain(s, eps[0])]
    assert sep[0] == f"-A {ipt.endpoint_chain(s, eps[0])} -s 10.1.0.1 -j KUBE-MARK-MASQ"


def test_udp_and_random_fully_and_default_mark() -> None:
    s = dataclasses.replace(sp("kube-system", "kube-dns", "10.3.240.10", [
        Endpoint("10.0.0.5", 53)]), port_name="dns", protocol="UDP", port=53)
    cfg = ipt.ProxyConfig(node="node-1", cluster_cidr="10.0.0.0/14", random_fully=True)
    got = parse(ipt.render([s], cfg))["nat"][1]
    assert got["KUBE-SERVICES"][0] == (
        '-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns cluster IP" '
        f"-m udp -p udp -d 10.3.240.10 --dport 53 -j {ipt.service_chain('SVC', s)}")
    assert got["KUBE-POSTROUTING"][0] == (
        "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN")
    assert got["KUBE-POSTROUTING"][2].endswith("-j MASQUERADE --random-fully")


def test_jump_rules_in_kube_proxys_order() -> None:
    rules = ipt.jump_rules(FAKE)
    assert rules[0] == ("filter", "INPUT", '-m conntrack --ctstate NEW -m comment --comment '
                        '"kubernetes externally-visible service portals" -j '
                        "KUBE-EXTERNAL-SERVICES")
    assert ("nat", "PREROUTING", '-m comment --comment "kubernetes service portals" '
            "-j KUBE-SERVICES") in rules
    assert rules[-2:] == [("filter", "INPUT", "-j KUBE-FIREWALL"),
                          ("filter", "OUTPUT", "-j KUBE-FIREWALL")]


def restore(state: dict[str, dict[str, list[str]]], payload: str) -> None:
    """What `iptables-restore --noflush` does to the tables: a declared chain is created
    or flushed, `-A` appends, `-X` deletes; chains not mentioned are kept."""
    table = ""
    for line in payload.splitlines():
        if line.startswith("*"):
            table = line[1:]
            state.setdefault(table, {})
        elif line.startswith(":"):
            state[table][line[1:].split()[0]] = []
        elif line.startswith("-A "):
            chain = line.split()[1]
            assert chain in state[table], f"rule in a missing chain: {line}"
            state[table][chain].append(line)
        elif line.startswith("-X "):
            del state[table][line.split()[1]]


def test_a_partial_sync_leaves_the_node_as_a_full_one_would() -> None:
    before = OVERALL
    after = [dataclasses.replace(s, endpoints=(*s.endpoints, ep("10.180.9.9")))
             if s.name == "svc1" else s for s in OVERALL if s.name != "svc3"]
    after.append(sp("ns7", "svc7", "172.30.0.47", [ep("10.180.0.7")]))
    first = ipt.render_sync(before, FAKE)
    node: dict[str, dict[str, list[str]]] = {}
    restore(node, first.payload)
    unchanged = {(s.key, s.protocol) for s in after if s in before}
    partial = ipt.render_sync(after, FAKE, first.active_chains, unchanged)
    restore(node, partial.payload)
    fresh: dict[str, dict[str, list[str]]] = {}
    restore(fresh, ipt.render_sync(after, FAKE).payload)
    assert node == fresh
    # and the partial payload left the unchanged services' own chains out
    svc4 = next(s for s in after if s.name == "svc4")
    assert f":{ipt.service_chain('SVC', svc4)} " not in partial.payload
    assert f":{ipt.service_chain('SVC', after[0])} " in partial.payload
    assert f"-X {ipt.service_chain('SVC', OVERALL[2])}" in partial.payload  # svc3, gone
    assert partial.active_chains == ipt.render_sync(after, FAKE).active_chains
