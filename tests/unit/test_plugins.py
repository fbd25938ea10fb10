"""The plug-in registry (testbed.model.plugins): one lookup for every kind (pod networks,
kube-proxy modes, wirings, experiments), whose unknown name is a UsageError listing the
names there are."""

from __future__ import annotations

import pytest

from testbed.errors import TestbedError, UsageError
from testbed.model.plugins import Registry, UnknownPluginError
from testbed.model.podnet import POD_NETWORKS, REGISTRY, pod_network


class _One:
    name = "one"


class _Two:
    name = "two"


def test_a_registry_is_a_mapping_in_the_order_given() -> None:
    r = Registry("widget", (_Two, _One))
    assert r.names == ("two", "one") and list(r) == ["two", "one"] and len(r) == 2
    assert r["one"] is _One and dict(r.items()) == {"two": _Two, "one": _One}
    assert "one" in r and "three" not in r and ["one"] not in r  # unhashable: not in
    assert r.get("three") is None  # Mapping.get relies on a KeyError


def test_an_unknown_name_lists_the_names_there_are() -> None:
    r = Registry("widget", (_One, _Two))
    with pytest.raises(UsageError) as info:
        r["three"]
    assert str(info.value) == "unknown widget 'three'; the widgets are one, two"
    assert isinstance(info.value, KeyError) and isinstance(info.value, TestbedError)
    assert info.value.kind == "widget" and info.value.known == ("one", "two")
    with pytest.raises(UnknownPluginError, match=r"unknown widget \['x'\]"):
        r[["x"]]  # type: ignore[index]  # what a YAML list would be


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="two widgets are called 'one'"):
        Registry("widget", (_One, _One))


def test_a_registry_can_key_by_something_else() -> None:
    r = Registry("number", (1, 2), key=str)
    assert r["2"] == 2 and r.names == ("1", "2")


def test_an_unknown_pod_network_lists_the_pod_networks() -> None:
    with pytest.raises(UsageError) as info:
        pod_network("flannel")
    assert str(info.value) == (
        "unknown pod network 'flannel'; the pod networks are " + ", ".join(POD_NETWORKS))
    assert "kubenet, docker-default, flannel-host-gw" in str(info.value)
    assert REGISTRY.names == POD_NETWORKS


def test_an_unknown_wiring_lists_the_wirings() -> None:
    from testbed.pods.wiring import CHOICES, WIRINGS, make_wiring

    with pytest.raises(UsageError) as info:
        make_wiring("telepathy")
    assert str(info.value) == "unknown wiring 'telepathy'; the wirings are cni, fast, calico"
    assert set(CHOICES) <= set(WIRINGS.names)


def test_an_unknown_experiment_lists_the_experiments() -> None:
    from experiments.registry import REGISTRY as EXPERIMENTS

    with pytest.raises(UsageError) as info:
        EXPERIMENTS["nope"]
    assert str(info.value).startswith("unknown experiment 'nope'; the experiments are "
                                      "reachability, throughput, faults, ")
    assert EXPERIMENTS.names[-1] == "pod-network-comparison" and len(EXPERIMENTS) > 20
