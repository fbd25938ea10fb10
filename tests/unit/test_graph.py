"""The cluster drawing (no root): what it shows, at 2 and at 20 nodes, and the command."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from testbed.cli import main as cli
from testbed.model.load import load_spec, parse_spec
from testbed.model.podnet import pod_network
from testbed.results import graph

ROOT = Path(__file__).resolve().parents[2]


def svg_of(spec, pod_ips=None, routes=None) -> str:  # type: ignore[no-untyped-def]
    network = pod_network(spec.pod_network)
    p = network.plan(spec)
    ips = graph.predicted_pod_ips(spec, p, network.bridge) if pod_ips is None else pod_ips
    return graph.render(spec, p, network.bridge, spec.pod_network, "svg", ips,
                        routes).decode()


def test_two_nodes_every_address_as_text() -> None:
    svg = svg_of(load_spec(ROOT / "topologies" / "two-node.yaml"),
                 routes=["10.0.0.0/24 via 10.100.0.2", "10.0.1.0/24 via 10.100.0.3"])
    for text in ("router (FRR)", "10.0.0.0/24 via 10.100.0.2", "node-1  10.100.0.2",
                 "pod CIDR 10.0.1.0/24", "cbr0 10.0.1.1", "pod-4  10.0.1.3",
                 "underlay 10.100.0.0/24 (router 10.100.0.1)"):
        assert text in svg, text


def test_twenty_nodes_on_racks_with_shaped_links_stay_readable() -> None:
    nodes = [{"name": f"node-{i}", "pods": 12 if i == 4 else 2,
              "rack": "rack-a" if i <= 10 else "rack-b"} for i in range(1, 21)]
    nodes[2]["uplink"] = {"rate_mbit": 50}
    nodes[5]["cpu"] = 0.25
    spec = parse_spec({"name": "big", "cluster_cidr": "10.0.0.0/14",
                       "racks": [{"name": "rack-a", "underlay": "10.100.0.0/24"},
                                 {"name": "rack-b", "underlay": "10.100.1.0/24"}],
                       "nodes": nodes})
    svg = svg_of(spec)
    assert all(f"node-{i}  " in svg for i in range(1, 21))
    assert "50 Mbit/s" in svg and "... and 4 more pods" in svg  # node-4's 12 pods: 8 shown
    assert svg.count("cpu 25%") == 1  # node-6's CPU share, and no other node's
    assert "rack-b 10.100.1.0/24 (router 10.100.1.1)" in svg
    # five nodes a row: the page grows down, not sideways, and fonts keep their size
    width, height = (float(x) for x in re.search(
        r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())  # type: ignore[union-attr]
    assert width < 20 * 72 and height > width * 0.6
    assert min(float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", svg)) >= 6


def test_no_bridge_modes_guess_no_addresses() -> None:
    spec = load_spec(ROOT / "topologies" / "calico.yaml")
    network = pod_network(spec.pod_network)
    assert graph.predicted_pod_ips(spec, network.plan(spec), network.bridge) == {}
    assert "no bridge (routed veths)" in svg_of(spec)


def test_the_command(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.svg"
    assert cli.main(["graph", str(ROOT / "topologies" / "four-node.yaml"), "-o",
                     str(out)]) == 0
    assert out.read_text().startswith("<?xml") and "node-4" in out.read_text()
    assert cli.main(["graph", str(ROOT / "topologies" / "two-node.yaml"), "-o",
                     str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["graph", str(ROOT / "topologies" / "two-node.yaml"), "-o",
                     str(tmp_path / "c.pdf")]) == 2
    assert ".svg or .png" in capsys.readouterr().err


def test_the_report_draws_the_cluster_as_built_up_to_a_size() -> None:
    """Drawn when the cluster is up, from the cluster's own spec and plan and the addresses
    its pods really got (experiments/session.py's on_cluster), not from a re-read topology."""
    from experiments.run_report import MAX_DRAWN_NODES, draw_cluster

    spec = load_spec(ROOT / "topologies" / "two-node.yaml")
    network = pod_network(spec.pod_network)
    pods = [{"pod": "pod-1", "ip": "10.0.0.9"}, "not a row"]  # the address it really got
    routes = ["10.0.0.0/24 via 10.100.0.2 proto static"]
    png = draw_cluster(spec, network.plan(spec), network.bridge, pods, routes)
    assert png is not None and png[:4] == b"\x89PNG"
    nodes = spec.nodes * (MAX_DRAWN_NODES // len(spec.nodes) + 1)  # too many to draw
    big = dataclasses.replace(spec, nodes=type(spec.nodes)(nodes))
    assert draw_cluster(big, network.plan(spec), network.bridge, [], None) is None
