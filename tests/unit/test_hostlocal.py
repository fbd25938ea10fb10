"""host-local's on-disk store as the fast path keeps it (no root needed: plain files)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.model.load import load_spec
from testbed.model.podnet import POD_NETWORKS, pod_network
from testbed.pods.fastwire import FastWiring, HostLocal

SUBNET = IPv4Network("10.0.3.0/29")  # hosts .1-.6; .1 is the gateway, pods get .2-.6


def files(store: HostLocal) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(store.dir.iterdir())}


def test_first_addresses_after_the_gateway_in_order(tmp_path: Path) -> None:
    store = HostLocal(tmp_path, "kubenet", SUBNET)
    assert store.allocate_many(["a", "b"]) == [IPv4Address("10.0.3.2"), IPv4Address("10.0.3.3")]
    assert files(store) == {"10.0.3.2": "a\neth0", "10.0.3.3": "b\neth0",
                            "last_reserved_ip.0": "10.0.3.3", "lock": ""}


def test_batch_leaves_the_same_files_as_one_at_a_time(tmp_path: Path) -> None:
    one = HostLocal(tmp_path / "one", "kubenet", SUBNET)
    many = HostLocal(tmp_path / "many", "kubenet", SUBNET)
    for cid in ("a", "b", "c"):
        one.allocate(cid)
    many.allocate_many(["a", "b", "c"])
    assert files(one) == files(many)


def test_continues_after_the_last_reserved_and_wraps_around(tmp_path: Path) -> None:
    store = HostLocal(tmp_path, "kubenet", SUBNET)
    store.allocate_many(["a", "b", "c", "d"])  # .2 .. .5
    store.release("b")  # .3 is free again, but the plugin goes on from .5
    assert store.allocate("e") == IPv4Address("10.0.3.6")
    assert store.allocate("f") == IPv4Address("10.0.3.3")  # wrapped, first free
    assert (store.dir / "last_reserved_ip.0").read_text() == "10.0.3.3"


def test_an_address_taken_by_someone_else_is_skipped(tmp_path: Path) -> None:
    store = HostLocal(tmp_path, "kubenet", SUBNET)
    (store.dir / "10.0.3.2").write_text("other\neth0")  # e.g. the real plugin's lease
    assert store.allocate("a") == IPv4Address("10.0.3.3")
    assert (store.dir / "10.0.3.2").read_text() == "other\neth0"


def test_exhaustion_is_an_error_and_keeps_what_was_allocated(tmp_path: Path) -> None:
    store = HostLocal(tmp_path, "kubenet", SUBNET)
    with pytest.raises(TestbedError, match="no free address left in 10.0.3.0/29"):
        store.allocate_many([f"c{i}" for i in range(6)])
    assert len([n for n in files(store) if n.startswith("10.")]) == 5
    assert (store.dir / "last_reserved_ip.0").read_text() == "10.0.3.6"


def test_the_fast_path_refuses_what_it_does_not_make(tmp_path: Path) -> None:
    """docker-default's plugin masquerades (ipMasq) and Calico's pods have a wiring of
    their own: the fast path makes neither, so it says so before touching anything,
    rather than build different state unnoticed."""
    root = Path(__file__).resolve().parents[2]
    refused = []
    for mode in POD_NETWORKS:
        spec = load_spec(root / "topologies" / ("two-node-docker.yaml" if mode ==
                                                "docker-default" else "two-node.yaml"))
        network = pod_network(mode)
        p = network.plan(spec)
        config = network.cni_config(p, p.nodes[0], 1500, tmp_path / mode)
        try:
            FastWiring().add_many(config, "/nonexistent/ns", [("c", "/nonexistent/pod")])
        except TestbedError as exc:
            refused.append((mode, str(exc)))
        except OSError:
            pass  # got as far as the kernel: the fast path makes this mode
    assert [m for m, _ in refused] == ["docker-default", "calico-vxlan", "calico"]
    assert "ipMasq" in refused[0][1]
    assert "calico" in refused[1][1]  # Calico's pods: its own wiring, whatever is asked
    assert not (tmp_path / "docker-default").exists()  # nothing was written first
