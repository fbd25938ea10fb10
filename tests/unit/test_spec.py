"""Topology specs: parsing, defaults, to_dict round trips, and every validation rule."""

from __future__ import annotations

import copy
import dataclasses
import os
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import SpecError, TestbedError
from testbed.model.load import load_spec, parse_spec
from testbed.model.load.yamlfile import MAX_FILE_BYTES
from testbed.model.spec import ClusterSpec, ContainerSpec, NodeSpec, PodSpec

SRC = "topo.yaml"

# The seed article's figure: two nodes, two pods each.
TWO_NODE: dict[str, Any] = {
    "name": "two-node",
    "cluster_cidr": "10.0.0.0/14",
    "node_cidr_prefix": 24,
    "underlay": "10.100.0.0/24",
    "nodes": [{"name": "node-1", "pods": 2}, {"name": "node-2", "pods": 2}],
}

TWO_NODE_YAML = """\
name: two-node
cluster_cidr: 10.0.0.0/14
node_cidr_prefix: 24
underlay: 10.100.0.0/24
nodes:
  - name: node-1
    pods: 2
  - name: node-2
    pods: 2
"""


def doc(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of the two-node document with top-level keys replaced."""
    d = copy.deepcopy(TWO_NODE)
    d.update(overrides)
    return d


def without(key: str) -> dict[str, Any]:
    d = doc()
    del d[key]
    return d


def with_nodes(*nodes: Any, **overrides: Any) -> dict[str, Any]:
    return doc(nodes=list(nodes), **overrides)


def one_pod(**pod: Any) -> dict[str, Any]:
    """A document whose single node has one pod given as a mapping."""
    return with_nodes({"name": "node-1", "pods": [{"name": "web", **pod}]})


# ---------------------------------------------------------------------------------------------
# The two-node figure
# ---------------------------------------------------------------------------------------------


def test_two_node_figure_parses_to_expected_spec() -> None:
    spec = parse_spec(doc(), SRC)

    assert spec.name == "two-node"
    assert spec.cluster_cidr == IPv4Network("10.0.0.0/14")
    assert spec.node_cidr_prefix == 24
    assert spec.underlay == IPv4Network("10.100.0.0/24")
    assert spec.non_masquerade_cidr == IPv4Network("10.0.0.0/8")
    assert spec.description == ""
    assert spec.source == SRC
    assert [n.name for n in spec.nodes] == ["node-1", "node-2"]
    assert all(n.pod_cidr is None for n in spec.nodes)
    # Pod names are numbered across the cluster, not per node.
    assert [p.name for p in spec.nodes[0].pods] == ["pod-1", "pod-2"]
    assert [p.name for p in spec.nodes[1].pods] == ["pod-3", "pod-4"]
    assert all(p.containers == () for _, p in spec.pods)


def test_two_node_figure_equals_hand_built_spec() -> None:
    expected = ClusterSpec(
        name="two-node",
        cluster_cidr=IPv4Network("10.0.0.0/14"),
        nodes=(
            NodeSpec("node-1", (PodSpec("pod-1"), PodSpec("pod-2"))),
            NodeSpec("node-2", (PodSpec("pod-3"), PodSpec("pod-4"))),
        ),
        source=SRC,
    )
    assert parse_spec(doc(), SRC) == expected


def test_pods_property_lists_node_pod_pairs_in_file_order() -> None:
    spec = parse_spec(doc(), SRC)
    assert [(n.name, p.name) for n, p in spec.pods] == [
        ("node-1", "pod-1"),
        ("node-1", "pod-2"),
        ("node-2", "pod-3"),
        ("node-2", "pod-4"),
    ]


def test_defaults_when_optional_keys_are_omitted() -> None:
    spec = parse_spec({"name": "tiny", "cluster_cidr": "10.0.0.0/16",
                       "nodes": [{"name": "n1"}]})
    assert spec.node_cidr_prefix == 24
    assert spec.underlay == IPv4Network("10.100.0.0/24")
    assert spec.non_masquerade_cidr == IPv4Network("10.0.0.0/8")
    assert spec.description == ""
    assert spec.source == ""
    assert spec.nodes == (NodeSpec("n1", (), None),)


def test_specs_are_frozen() -> None:
    spec = parse_spec(doc(), SRC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.nodes[0].name = "other"  # type: ignore[misc]


def test_container_defaults() -> None:
    assert ContainerSpec("app").command == ("sleep", "infinity")
    assert PodSpec("p").containers == ()
    assert NodeSpec("n").pods == ()
    assert NodeSpec("n").pod_cidr is None


# ---------------------------------------------------------------------------------------------
# Pods as lists, containers, explicit pod CIDRs
# ---------------------------------------------------------------------------------------------


def test_pods_as_list_with_containers() -> None:
    spec = parse_spec(
        with_nodes(
            {
                "name": "node-1",
                "pods": [
                    {
                        "name": "web",
                        "containers": [
                            {"name": "server", "command": "sh -c 'echo hi; sleep 5'"},
                            {"name": "sidecar", "command": ["nc", "-l", "-p", "8080"]},
                            {"name": "idle"},
                            {"command": "true"},
                        ],
                    },
                    "client",
                ],
            },
            {"name": "node-2", "pods": ["db", {"containers": []}]},
        ),
        SRC,
    )
    web, client = spec.nodes[0].pods
    assert web.name == "web"
    assert web.containers == (
        ContainerSpec("server", ("sh", "-c", "echo hi; sleep 5")),  # shlex-split
        ContainerSpec("sidecar", ("nc", "-l", "-p", "8080")),
        ContainerSpec("idle", ("sleep", "infinity")),  # default command
        ContainerSpec("c4", ("true",)),  # default name from its position
    )
    assert isinstance(web.containers[0].command, tuple)
    assert client == PodSpec("client", ())
    db, unnamed = spec.nodes[1].pods
    assert db == PodSpec("db", ())
    # An unnamed pod takes its cluster-wide number: it is the 4th pod of the file.
    assert unnamed == PodSpec("pod-4", ())


def test_pods_given_as_plain_strings() -> None:
    spec = parse_spec(with_nodes({"name": "node-1", "pods": ["alpha", "beta"]}), SRC)
    assert spec.nodes[0].pods == (PodSpec("alpha"), PodSpec("beta"))


def test_count_pods_continue_numbering_after_list_pods() -> None:
    spec = parse_spec(
        with_nodes({"name": "node-1", "pods": ["web"]}, {"name": "node-2", "pods": 2}), SRC
    )
    assert [p.name for _, p in spec.pods] == ["web", "pod-2", "pod-3"]


def test_zero_pods_and_empty_list_are_allowed() -> None:
    spec = parse_spec(with_nodes({"name": "node-1", "pods": 0}, {"name": "node-2", "pods": []}))
    assert spec.nodes[0].pods == ()
    assert spec.nodes[1].pods == ()


def test_explicit_node_pod_cidr() -> None:
    spec = parse_spec(
        with_nodes({"name": "node-1", "pods": 1},
                   {"name": "node-2", "pod_cidr": "10.2.0.0/16", "pods": 3}),
        SRC,
    )
    assert spec.nodes[0].pod_cidr is None
    assert spec.nodes[1].pod_cidr == IPv4Network("10.2.0.0/16")
    assert isinstance(spec.nodes[1].pod_cidr, IPv4Network)


def test_description_and_non_masquerade_cidr_are_read() -> None:
    spec = parse_spec(doc(description="the article's figure", non_masquerade_cidr="10.0.0.0/12"))
    assert spec.description == "the article's figure"
    assert spec.non_masquerade_cidr == IPv4Network("10.0.0.0/12")


@pytest.mark.parametrize(
    "data",
    [
        # A node name of exactly MAX_NODE_NAME (10) characters: `<node>-eth0` is 15.
        with_nodes({"name": "abcdefgh-1", "pods": 1}),
        # A /30 holds exactly one pod, a /29 exactly five.
        with_nodes({"name": "node-1", "pod_cidr": "10.0.0.0/30", "pods": 1}),
        with_nodes({"name": "node-1", "pod_cidr": "10.0.0.0/29", "pods": 5}),
        doc(node_cidr_prefix=30, nodes=[{"name": "node-1", "pods": 1}]),
        # A /23 cluster holds exactly two /24 node CIDRs.
        doc(cluster_cidr="10.0.0.0/23"),
        # A /29 underlay has six hosts: the router and five nodes.
        doc(underlay="10.100.0.0/29",
            nodes=[{"name": f"node-{i}", "pods": 1} for i in range(1, 6)]),
        # node_cidr_prefix equal to the cluster prefix: one node owns the whole CIDR.
        doc(cluster_cidr="10.0.0.0/24", node_cidr_prefix=24, nodes=[{"name": "n", "pods": 3}]),
        # A 40-character pod name is allowed.
        with_nodes({"name": "node-1", "pods": ["p" * 40]}),
    ],
    ids=["node-name-10", "slash30-1pod", "slash29-5pods", "prefix30", "slash23-2nodes",
         "underlay29-5nodes", "prefix-equals-cluster", "pod-name-40"],
)
def test_boundary_specs_are_accepted(data: dict[str, Any]) -> None:
    spec = parse_spec(data, SRC)
    assert spec.nodes


# ---------------------------------------------------------------------------------------------
# to_dict and round trips
# ---------------------------------------------------------------------------------------------


def test_to_dict_of_two_node_figure() -> None:
    assert parse_spec(doc(), SRC).to_dict() == {
        "name": "two-node",
        "description": "",
        "cluster_cidr": "10.0.0.0/14",
        "node_cidr_prefix": 24,
        "underlay": "10.100.0.0/24",
        "non_masquerade_cidr": "10.0.0.0/8",
        "pod_network": "kubenet",
        "underlay_switch": "linux-bridge",
        "service_cidr": "10.3.240.0/20",
        "kube_proxy_mode": "iptables",
        "nodes": [
            {"name": "node-1", "pods": [{"name": "pod-1", "containers": []},
                                        {"name": "pod-2", "containers": []}]},
            {"name": "node-2", "pods": [{"name": "pod-3", "containers": []},
                                        {"name": "pod-4", "containers": []}]},
        ],
    }


def test_to_dict_includes_pod_cidr_and_commands_as_lists() -> None:
    spec = parse_spec(
        with_nodes({"name": "node-1", "pod_cidr": "10.1.0.0/24",
                    "pods": [{"name": "web", "containers": [{"name": "s", "command": "a b"}]}]}),
        SRC,
    )
    node = spec.to_dict()["nodes"][0]
    assert node == {
        "name": "node-1",
        "pod_cidr": "10.1.0.0/24",
        "pods": [{"name": "web", "containers": [{"name": "s", "command": ["a", "b"]}]}],
    }
    assert "source" not in spec.to_dict()


ROUND_TRIP_DOCS = {
    "two-node": doc(),
    "containers-and-cidrs": with_nodes(
        {"name": "node-1", "pods": [{"name": "web", "containers": [
            {"name": "server", "command": "python3 -m http.server 8080"},
            {"name": "idle"}]}, "client"]},
        {"name": "node-2", "pod_cidr": "10.3.0.0/16", "pods": 3},
        {"name": "node-3", "pods": 0},
        description="mixed", non_masquerade_cidr="10.0.0.0/12", service_cidr="10.200.0.0/16",
    ),
    "other-ranges": {
        "name": "wide", "cluster_cidr": "172.16.0.0/16", "node_cidr_prefix": 26,
        "underlay": "192.168.50.0/28", "nodes": [{"name": "a", "pods": 4}, {"name": "b"}],
    },
}


@pytest.mark.parametrize("data", ROUND_TRIP_DOCS.values(), ids=ROUND_TRIP_DOCS.keys())
def test_to_dict_round_trip(data: dict[str, Any]) -> None:
    spec = parse_spec(data, SRC)
    again = parse_spec(spec.to_dict())
    assert again == dataclasses.replace(spec, source="")
    # And the expanded form is a fixed point.
    assert again.to_dict() == spec.to_dict()


# ---------------------------------------------------------------------------------------------
# Validation: every refusal is a one-line SpecError naming the source and the field
# ---------------------------------------------------------------------------------------------

INVALID: list[tuple[str, Any, str, str]] = [
    # (id, document, expected field, fragment of the problem)
    ("missing-name", without("name"), "name", "is required"),
    ("missing-cluster-cidr", without("cluster_cidr"), "cluster_cidr", "is required"),
    ("missing-nodes", without("nodes"), "nodes", "is required"),
    ("missing-node-name", with_nodes({"pods": 1}), "nodes[0].name", "is required"),
    ("unknown-node-key-podz", with_nodes({"name": "node-1"}, {"name": "node-2", "podz": 2}),
     "nodes[1].podz", "did you mean 'pods'"),
    ("unknown-top-key", doc(clustr_cidr="10.0.0.0/14"), "clustr_cidr",
     "did you mean 'cluster_cidr'"),
    ("unknown-top-key-no-hint", doc(zzz=1), "zzz", "unknown key; allowed: cluster_cidr"),
    ("unknown-pod-key", one_pod(container=[]), "nodes[0].pods[0].container",
     "did you mean 'containers'"),
    ("unknown-container-key", one_pod(containers=[{"name": "a", "cmd": "x"}]),
     "nodes[0].pods[0].containers[0].cmd", "unknown key"),
    ("non-string-key", {"name": "x", 5: "y", "cluster_cidr": "10.0.0.0/14", "nodes": []},
     "(top level)", "key 5 is not a string"),
    ("invalid-cidr-text", doc(cluster_cidr="banana"), "cluster_cidr", "is not a valid network"),
    ("invalid-cidr-prefix", doc(cluster_cidr="10.0.0.0/33"), "cluster_cidr",
     "is not a valid network"),
    ("cidr-host-bits", doc(cluster_cidr="10.0.0.1/14"), "cluster_cidr", "has host bits set"),
    ("cidr-ipv6", doc(cluster_cidr="fd00::/64"), "cluster_cidr", "is not IPv4"),
    ("underlay-ipv6", doc(underlay="fd00:100::/64"), "underlay", "is not IPv4"),
    ("underlay-not-string", doc(underlay=42), "underlay", "must be a CIDR string"),
    ("nmc-invalid", doc(non_masquerade_cidr="10.0.0.0/x"), "non_masquerade_cidr",
     "is not a valid network"),
    ("node-pod-cidr-invalid", with_nodes({"name": "node-1", "pod_cidr": "10.0.0.5/24"}),
     "nodes[0].pod_cidr", "has host bits set"),
    ("nodes-not-list", doc(nodes={"node-1": {"pods": 2}}), "nodes", "must be a list of nodes"),
    ("nodes-none", doc(nodes=None), "nodes", "got nothing"),
    ("node-not-mapping", with_nodes("node-1"), "nodes[0]", "must be a mapping"),
    ("pods-string", with_nodes({"name": "node-1", "pods": "2"}), "nodes[0].pods",
     "must be a count or a list of pods"),
    ("pods-bool", with_nodes({"name": "node-1", "pods": True}), "nodes[0].pods",
     "must be a count or a list of pods"),
    ("pods-float", with_nodes({"name": "node-1", "pods": 2.0}), "nodes[0].pods",
     "must be a count or a list of pods"),
    ("pod-not-mapping", with_nodes({"name": "node-1", "pods": [7]}), "nodes[0].pods[0]",
     "must be a mapping"),
    ("prefix-string", doc(node_cidr_prefix="24"), "node_cidr_prefix", "must be an integer"),
    ("prefix-true", doc(node_cidr_prefix=True), "node_cidr_prefix", "must be an integer"),
    ("prefix-below-cluster", doc(node_cidr_prefix=12), "node_cidr_prefix",
     "12 is out of range 14..30"),
    ("prefix-above-30", doc(node_cidr_prefix=31), "node_cidr_prefix",
     "31 is out of range 14..30"),
    ("negative-pods", with_nodes({"name": "node-1", "pods": -1}), "nodes[0].pods",
     "-1 is negative"),
    ("empty-nodes", doc(nodes=[]), "nodes", "at least one node"),
    ("duplicate-node", with_nodes({"name": "node-1"}, {"name": "node-1"}), "nodes[1].name",
     "duplicate node name 'node-1'"),
    ("duplicate-pod-across-nodes",
     with_nodes({"name": "node-1", "pods": ["web"]}, {"name": "node-2", "pods": ["web"]}),
     "nodes[1].pods[0].name", "duplicate pod name 'web' (also on node-1)"),
    ("duplicate-pod-same-node", with_nodes({"name": "node-1", "pods": ["db", "web", "web"]}),
     "nodes[0].pods[2].name", "duplicate pod name 'web'"),
    ("explicit-pod-clashes-with-numbered",
     with_nodes({"name": "node-1", "pods": ["pod-2"]}, {"name": "node-2", "pods": 1}),
     "nodes[1].pods[0].name", "duplicate pod name 'pod-2'"),
    ("duplicate-container", one_pod(containers=[{"name": "app"}, {"name": "app"}]),
     "nodes[0].pods[0].containers[1].name", "duplicate container name 'app'"),
    ("node-name-too-long", with_nodes({"name": "node-123456"}), "nodes[0].name",
     "longer than 10 characters"),
    ("node-name-uppercase", with_nodes({"name": "Node-1"}), "nodes[0].name",
     "must be lower-case letters"),
    ("node-name-underscore", with_nodes({"name": "node_1"}), "nodes[0].name",
     "must be lower-case letters"),
    ("node-name-leading-digit", with_nodes({"name": "1node"}), "nodes[0].name",
     "starting with a letter"),
    ("node-name-trailing-dash", with_nodes({"name": "node-"}), "nodes[0].name",
     "not ending with '-'"),
    ("node-name-trailing-newline", with_nodes({"name": "node-1\n"}), "nodes[0].name",
     "must be lower-case letters"),
    ("node-name-empty", with_nodes({"name": ""}), "nodes[0].name", "must be lower-case"),
    ("node-name-not-string", with_nodes({"name": 1}), "nodes[0].name", "must be a string"),
    ("node-name-router", with_nodes({"name": "router"}), "nodes[0].name",
     "'router' is reserved for the router"),
    ("cluster-name-invalid", doc(name="Two Node"), "name", "must be lower-case letters"),
    ("cluster-name-trailing-newline", doc(name="two-node\n"), "name", "must be lower-case"),
    ("pod-name-invalid", with_nodes({"name": "node-1", "pods": ["Web"]}),
     "nodes[0].pods[0].name", "must be lower-case letters"),
    ("pod-name-too-long", with_nodes({"name": "node-1", "pods": ["p" * 41]}),
     "nodes[0].pods[0].name", "longer than 40 characters"),
    ("container-name-invalid", one_pod(containers=[{"name": "App"}]),
     "nodes[0].pods[0].containers[0].name", "must be lower-case letters"),
    ("description-not-string", doc(description=3), "description", "must be a string"),
    ("pod-cidr-outside-cluster",
     with_nodes({"name": "node-1", "pod_cidr": "192.168.0.0/24", "pods": 1}),
     "nodes[0].pod_cidr", "192.168.0.0/24 is outside cluster_cidr 10.0.0.0/14"),
    ("pod-cidr-overlap-explicit",
     with_nodes({"name": "node-1", "pod_cidr": "10.0.5.0/24"},
                {"name": "node-2", "pod_cidr": "10.0.5.128/25"}),
     "nodes[1].pod_cidr", "overlaps the pod CIDR 10.0.5.0/24 of node node-1"),
    ("pod-cidr-overlap-carved",
     with_nodes({"name": "node-1"}, {"name": "node-2", "pod_cidr": "10.0.0.0/24"}),
     "nodes[1].pod_cidr", "overlaps the pod CIDR 10.0.0.0/24 of node node-1"),
    ("pod-cidr-too-small", with_nodes({"name": "node-1", "pod_cidr": "10.0.0.0/31"}),
     "nodes[0].pod_cidr", "too small for a bridge and a pod"),
    ("too-many-pods-slash30",
     with_nodes({"name": "node-1", "pod_cidr": "10.0.0.0/30", "pods": 2}),
     "nodes[0].pods", "2 pods do not fit in 10.0.0.0/30 (room for 1 "),
    ("too-many-pods-slash29",
     with_nodes({"name": "node-1", "pods": 1},
                {"name": "node-2", "pod_cidr": "10.1.0.0/29", "pods": 6}),
     "nodes[1].pods", "6 pods do not fit in 10.1.0.0/29 (room for 5 "),
    ("too-many-pods-prefix", doc(node_cidr_prefix=30), "nodes[0].pods",
     "2 pods do not fit in 10.0.0.0/30"),
    ("too-many-nodes",
     doc(cluster_cidr="10.0.0.0/23",
         nodes=[{"name": "node-1"}, {"name": "node-2"}, {"name": "node-3"}]),
     "nodes", "3 nodes do not fit: cluster_cidr 10.0.0.0/23 holds 2 /24 pod CIDRs"),
    ("underlay-overlaps-cluster", doc(underlay="10.1.0.0/24"), "underlay",
     "10.1.0.0/24 overlaps cluster_cidr 10.0.0.0/14"),
    ("underlay-too-small", doc(underlay="10.100.0.0/30"), "underlay",
     "holds 2 addresses; the router and 2 nodes need 3"),
    ("empty-document", None, "(top level)", "the file is empty"),
    ("top-level-list", [TWO_NODE], "(top level)", "must be a mapping, got list"),
    ("top-level-string", "two-node", "(top level)", "must be a mapping, got str"),
    ("containers-not-list", one_pod(containers={"name": "a"}), "nodes[0].pods[0].containers",
     "must be a list"),
    ("container-not-mapping", one_pod(containers=["sleep 1"]),
     "nodes[0].pods[0].containers[0]", "must be a mapping"),
    ("command-empty-list", one_pod(containers=[{"name": "a", "command": []}]),
     "nodes[0].pods[0].containers[0].command", "must be a non-empty string or list"),
    ("command-empty-string", one_pod(containers=[{"name": "a", "command": "  "}]),
     "nodes[0].pods[0].containers[0].command", "must be a non-empty string or list"),
    ("command-not-strings", one_pod(containers=[{"name": "a", "command": ["sleep", 5]}]),
     "nodes[0].pods[0].containers[0].command", "must be a non-empty string or list"),
    ("command-number", one_pod(containers=[{"name": "a", "command": 5}]),
     "nodes[0].pods[0].containers[0].command", "must be a non-empty string or list"),
    # hostile or ambiguous input: refused before anything is expanded or created
    ("command-unbalanced-quote", one_pod(containers=[{"name": "a", "command": "echo 'x"}]),
     "nodes[0].pods[0].containers[0].command", "cannot be split into words"),
    ("command-nul", one_pod(containers=[{"name": "a", "command": ["sleep", "1\0"]}]),
     "nodes[0].pods[0].containers[0].command", "none with a NUL character"),
    ("pods-a-billion", with_nodes({"name": "node-1", "pods": 1_000_000_000}), "nodes[0].pods",
     "1000000000 pods make more than 100000 in the cluster"),
    ("pods-over-the-cluster-cap",
     with_nodes({"name": "node-1", "pods": 60_000}, {"name": "node-2", "pods": 50_000}),
     "nodes[1].pods", "more than 100000"),
    ("too-many-nodes-listed", doc(nodes=[{"name": f"n{i}"} for i in range(1001)]), "nodes",
     "1001 entries; at most 1000"),
    ("too-many-containers", one_pod(containers=[{"name": f"c{i}"} for i in range(65)]),
     "nodes[0].pods[0].containers", "65 entries; at most 64"),
    ("pod-named-router", with_nodes({"name": "node-1", "pods": ["router"]}),
     "nodes[0].pods[0].name", "'router' is the name of the router"),
    ("pod-named-like-a-later-node",
     with_nodes({"name": "node-1", "pods": ["node-2"]}, {"name": "node-2"}),
     "nodes[0].pods[0].name", "'node-2' is the name of node node-2"),
    ("netns-names-collide",
     with_nodes({"name": "a", "pods": ["b-c"]}, {"name": "a-b", "pods": ["c"]}),
     "nodes[1].pods[0].name", "would get the network namespace name 'ktb-a-b-c' of pod 'b-c'"),
    ("node-named-like-the-underlay-bridge", with_nodes({"name": "ktb-ul1"}), "nodes[0].name",
     "names starting with 'ktb-' are the testbed's own"),
    ("underlay-loopback", doc(underlay="127.0.0.0/24"), "underlay", "overlaps loopback"),
    ("cluster-multicast", doc(cluster_cidr="224.0.0.0/14"), "cluster_cidr",
     "overlaps multicast"),
    ("cluster-this-network", doc(cluster_cidr="0.0.0.0/14"), "cluster_cidr",
     "overlaps 'this network'"),
    ("underlay-link-local", doc(underlay="169.254.1.0/24"), "underlay", "link-local"),
    ("underlay-reserved", doc(underlay="250.0.0.0/24"), "underlay", "reserved"),
    ("pod-cidr-loopback",
     doc(cluster_cidr="10.0.0.0/14",
         nodes=[{"name": "node-1", "pod_cidr": "127.0.0.0/24"}]),
     "nodes[0].pod_cidr", "overlaps loopback"),
    ("prefix-huge-number", doc(node_cidr_prefix=10**5000), "node_cidr_prefix",
     "a number of more than 30 digits is out of range"),
    ("pod-network-not-a-string", doc(pod_network=["kubenet"]), "pod_network",
     "is not one of kubenet, docker-default"),
    ("underlay-switch-unknown", doc(underlay_switch="cisco"), "underlay_switch",
     "'cisco' is not one of linux-bridge, ovs"),
    ("docker-over-capacity",
     doc(pod_network="docker-default", nodes=[{"name": "node-1", "pods": 70_000}]),
     "nodes[0].pods", "do not fit in 172.17.0.0/16"),
]


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_spec_is_refused(data: Any, field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data, SRC)
    err = info.value
    message = str(err)
    assert err.field == field
    assert err.source == SRC
    assert fragment in err.problem
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{SRC}: ")
    assert message == f"{SRC}: {field}: {err.problem}"
    assert isinstance(err, TestbedError)


def test_invalid_spec_without_source_omits_the_prefix() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc(nodes=[]))
    assert str(info.value) == "nodes: must list at least one node"


def test_validation_does_not_mutate_the_document() -> None:
    data = with_nodes({"name": "node-1", "pods": ["a", {"name": "b", "containers": [
        {"name": "c", "command": "sleep 1"}]}]})
    before = copy.deepcopy(data)
    parse_spec(data, SRC)
    assert data == before


# ---------------------------------------------------------------------------------------------
# load_spec
# ---------------------------------------------------------------------------------------------


def test_load_spec_good_file(tmp_path: Path) -> None:
    path = tmp_path / "two-node.yaml"
    path.write_text(TWO_NODE_YAML, encoding="utf-8")
    spec = load_spec(path)
    assert spec.source == str(path)
    assert dataclasses.replace(spec, source="") == parse_spec(doc())
    # A string path works the same.
    assert load_spec(str(path)) == spec


def test_load_spec_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "name: t\ncluster_cidr: 10.0.0.0/14\nnodes:\n  - name: node-1\n   pods: 2\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    err = info.value
    assert err.field == "line 5"
    assert err.source == str(path)
    assert err.problem.startswith("YAML syntax error: ")
    assert "YAML syntax error" in str(err)
    assert str(err).startswith(f"{path}: line 5: ")
    assert "\n" not in str(err)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank",
                                                                          "comment"])
def test_load_spec_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "(top level)"
    assert str(info.value) == f"{path}: (top level): the file is empty"


def test_load_spec_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "(file)"
    assert str(info.value) == f"{path}: (file): no such file"


def test_load_spec_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.field == "(file)"
    assert str(info.value) == f"{tmp_path}: (file): is a directory, not a topology file"


def test_load_spec_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "(file)"
    assert info.value.problem.startswith("cannot be read: ")
    assert "\n" not in str(info.value)


def test_load_spec_validation_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(TWO_NODE_YAML.replace("    pods: 2\n  - name: node-2",
                                          "    podz: 2\n  - name: node-2"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "nodes[0].podz"
    assert str(info.value).startswith(f"{path}: nodes[0].podz: unknown key (did you mean 'pods'?)")


def test_load_spec_block_scalar_name_with_trailing_newline_is_refused(tmp_path: Path) -> None:
    # `name: |` keeps a trailing newline; it must not slip through as a node name.
    path = tmp_path / "newline.yaml"
    path.write_text("name: t\ncluster_cidr: 10.0.0.0/14\nnodes:\n  - name: |\n      node-1\n",
                    encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "nodes[0].name"
    assert "\n" not in str(info.value)


def test_a_huge_value_is_quoted_in_a_few_dozen_characters() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc(name="x" * 1_000_000), SRC)
    assert len(str(info.value)) < 300 and "longer than 40" in str(info.value)
    with pytest.raises(SpecError) as info:
        parse_spec(doc(nodes={"k" * 100_000: [list(range(10_000))] * 1000}), SRC)
    assert len(str(info.value)) < 300


def test_a_hostile_key_and_file_name_stay_on_one_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc(**{"bad\nkey": 1}), "a\nb.yaml")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("a\\nb.yaml: bad\\nkey: unknown key")


def test_non_masquerade_cidr_may_be_everything() -> None:
    """0.0.0.0/0 means `never masquerade`: a real kubelet setting, not a special range."""
    assert parse_spec(doc(non_masquerade_cidr="0.0.0.0/0")).non_masquerade_cidr == \
        IPv4Network("0.0.0.0/0")


# -- hostile files: refused before they are expanded, read or waited on ----------------

BOMB = "\n".join([
    "a: &a [x, x, x, x, x, x, x, x, x, x]",
    *[f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]"
      for i in range(8)],
    "name: *i", "cluster_cidr: 10.0.0.0/14", "nodes: [{name: n}]", ""])


@pytest.mark.parametrize(("text", "field", "fragment"), [
    (BOMB, "line 2", "aliases (*a) are not supported"),
    (TWO_NODE_YAML + "name: other\n", "line 10", "duplicate key 'name'"),
    (TWO_NODE_YAML.replace("    pods: 2\n  - name: node-2", "    pods: 2\n    pods: 3\n"
                           "  - name: node-2"), "line 8", "duplicate key 'pods'"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "line 1", "nested more than 20 levels deep"),
    ("name: t\nnode_cidr_prefix: " + "9" * 5000 + "\n", "(file)", "cannot be read"),
], ids=["alias-bomb", "duplicate-top-key", "duplicate-node-key", "deep-nesting",
        "huge-integer"])
def test_hostile_yaml_is_refused_in_one_line(tmp_path: Path, text: str, field: str,
                                             fragment: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == field and fragment in info.value.problem
    assert "\n" not in str(info.value) and len(str(info.value)) < 600


def test_files_that_are_not_regular_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path in (fifo, Path("/dev/zero"), Path("/dev/null")):
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert info.value.problem == "is not a regular file (a FIFO, socket or device)"


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problem.startswith(f"is {MAX_FILE_BYTES + 1} bytes")
