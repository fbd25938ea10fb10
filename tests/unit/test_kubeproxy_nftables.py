"""kube-proxy's nftables mode, rendered by the testbed, against kube-proxy's own expected
table (tests/unit/golden/nftables-overall.txt, from TestOverallNFTablesRules) for the
same services and endpoints. The transaction is replayed (add, flush, delete) into the
table's final state, which is what upstream compares: every object, every element, and
every chain's rules in order.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from testbed.model.svc import nftables as nft
from testbed.model.svc.iptables import ProxyConfig
from testbed.model.svc.plan import Endpoint, ServicePort

from .test_kubeproxy_iptables import OVERALL

GOLDEN = Path(__file__).parent / "golden"
FAKE = ProxyConfig(node="test-node", node_ip="192.168.0.2", cluster_cidr="10.0.0.0/8",
                   mark="0x4000")
OBJECT = re.compile(r"^(add|flush|delete) (table|chain|set|map|rule|element) ip kube-proxy"
                    r"(?: (\S+))?(.*)$")


def replay(transaction: str) -> tuple[set[str], dict[str, list[str]]]:
    """The table after the transaction: (object and element lines, rules per chain)."""
    objects: dict[tuple[str, str], str] = {}
    elements: dict[str, dict[str, str]] = {}  # container -> element key -> its line
    rules: dict[str, list[str]] = {}
    for line in transaction.splitlines():
        if not line or line.startswith("#"):
            continue
        m = OBJECT.match(line)
        assert m, f"unexpected line {line!r}"
        verb, kind, name, rest = m.groups()
        if kind == "table":
            objects[("table", "")] = line
        elif kind == "rule":
            assert (("chain", name)) in objects, f"rule in a missing chain: {line}"
            rules.setdefault(name, []).append(line)
        elif kind == "element":
            assert (("set", name)) in objects or (("map", name)) in objects, line
            key = rest.strip()[2:-2].split(" comment ")[0].split(" : ")[0]
            if verb == "add":
                elements.setdefault(name, {})[key] = line
            else:
                assert key in elements.get(name, {}), f"no such element: {line}"
                del elements[name][key]
        elif verb == "add":
            key = (kind, name)
            if key not in objects or "{" in rest:  # the fullest definition wins
                objects[key] = line
        elif verb == "flush":
            (rules if kind == "chain" else elements).pop(name, None)
        elif verb == "delete":
            objects.pop((kind, name), None)
            (rules if kind == "chain" else elements).pop(name, None)
    lines = set(objects.values()) | {e for es in elements.values() for e in es.values()}
    return lines, {chain: r for chain, r in rules.items() if r}


def assert_same_table(got: str, want: str) -> None:
    g_objects, g_rules = replay(got)
    w_objects, w_rules = replay(want)
    assert sorted(g_objects - w_objects) == [] and sorted(w_objects - g_objects) == []
    for chain in sorted(set(g_rules) | set(w_rules)):
        assert g_rules.get(chain, []) == w_rules.get(chain, []), f"chain {chain} differs"


def test_overall_table_matches_kube_proxys() -> None:
    got = nft.render(OVERALL, FAKE, service_cidrs="172.30.0.0/16")
    assert_same_table(got, (GOLDEN / "nftables-overall.txt").read_text())


def test_the_golden_comparison_can_fail() -> None:
    wrong = [dataclasses.replace(s, endpoints=s.endpoints[:1]) if s.name == "svc4" else s
             for s in OVERALL]
    try:
        assert_same_table(nft.render(wrong, FAKE, service_cidrs="172.30.0.0/16"),
                          (GOLDEN / "nftables-overall.txt").read_text())
    except AssertionError:
        return
    raise AssertionError("a service with one endpoint fewer went unnoticed")


def test_names_hash_as_kube_proxy_does() -> None:
    svc1 = OVERALL[0]
    assert f"service-{nft.port_base(svc1)}" == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert f"endpoint-{nft.endpoint_base(svc1, svc1.endpoints[0])}" == \
        "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    long = dataclasses.replace(svc1, name="s" * 250)
    assert len(nft.port_base(long)) == nft.NAME_MAX and nft.port_base(long).endswith("...")


def test_stale_chains_and_affinity_sets_are_deleted() -> None:
    svc1 = OVERALL[0]
    stock = [*nft.STATIC_CHAINS, "reject-chain", *(c for c, *_ in nft.BASE_CHAINS)]
    got = nft.render([svc1], FAKE, existing_chains=[
        "service-AAAAAAAA-ns9/gone/tcp/p80", *stock, f"service-{nft.port_base(svc1)}"],
        existing_sets=["affinity-BBBBBBBB-ns9/gone/tcp/p80__10.1.1.1/80", "cluster-ips"],
        first=False)
    lines = got.splitlines()
    assert "delete chain ip kube-proxy service-AAAAAAAA-ns9/gone/tcp/p80" in lines
    assert "delete set ip kube-proxy affinity-BBBBBBBB-ns9/gone/tcp/p80__10.1.1.1/80" in lines
    assert [x for x in lines if x.startswith("delete chain")] == [
        "delete chain ip kube-proxy service-AAAAAAAA-ns9/gone/tcp/p80"]  # no stock chain
    objects, _ = replay(got)
    assert not [o for o in objects if "gone" in o]


def test_local_policy_with_a_local_endpoint_goes_to_the_local_chain() -> None:
    sp = ServicePort("ns", "web", "http", "TCP", "10.3.241.7", 80,
                     (Endpoint("10.0.0.5", 8080, "test-node"), Endpoint("10.0.1.5", 8080, "b")),
                     node_port=30080, external_local=True)
    _, rules = replay(nft.render([sp], FAKE))
    base = nft.port_base(sp)
    assert rules[f"external-{base}"][-1].endswith(f"goto local-{base}")
    (local,) = rules[f"local-{base}"]
    assert "numgen random mod 1" in local and "10.0.0.5" in local


def test_listed_objects() -> None:
    listing = ("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n"
               "\tset cluster-ips {\n\t\ttype ipv4_addr\n\t}\n"
               "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
               "\t}\n\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {\n\t}\n}\n")
    assert nft.listed_objects(listing) == (
        ["services", "service-ULMVA6XW-ns1/svc1/tcp/p80"], ["cluster-ips"])


def test_a_partial_sync_leaves_the_table_as_a_full_one_would() -> None:
    after = [dataclasses.replace(s, endpoints=(*s.endpoints, Endpoint("10.180.9.9", 80)))
             if s.name == "svc1" else s for s in OVERALL if s.name != "svc3"]
    after = [dataclasses.replace(s, endpoints=()) if s.name == "svc4" else s for s in after]
    after.append(ServicePort("ns7", "svc7", "p80", "TCP", "172.30.0.47", 80,
                             (Endpoint("10.180.0.7", 80),), node_port=3007))
    full, table = nft.render_full(OVERALL, FAKE, "172.30.0.0/16")
    partial, _ = nft.render_partial(after, FAKE, table)
    assert_same_table(full + partial, nft.render(after, FAKE, "172.30.0.0/16"))
    # an unchanged service costs nothing, and no map is flushed
    assert "svc5" not in partial and "flush map" not in partial
    nothing, again = nft.render_partial(OVERALL, FAKE, table)
    assert nothing == "" and again == table


def test_stale_chains_are_all_flushed_before_any_is_deleted() -> None:
    # the service chain's numgen map refers to the endpoint chain: deleting the endpoint
    # chain first fails in the kernel (EBUSY), whatever order the chains were made in
    _, table = nft.render_full(OVERALL[:1], FAKE)
    for text in (nft.render_partial([], FAKE, table)[0],
                 nft.render([], FAKE, existing_chains=table.chains, first=False)):
        ops = [line.split()[0] for line in text.splitlines()
               if line.startswith(("flush chain", "delete chain")) and "/" in line]
        assert ops == ["flush", "flush", "delete", "delete"], text
