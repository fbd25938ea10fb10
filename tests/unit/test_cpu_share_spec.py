"""Node CPU shares: the topology keys, their refusals, and the CFS bandwidth as Mininet's
CPULimitedHost computes it (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.errors import SpecError
from testbed.model.cpu import bandwidth, cgroup_name, describe
from testbed.model.load import parse_spec


def doc(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "cluster_cidr": "10.0.0.0/14",
            "nodes": [{"name": "node-1", "pods": 1}, {"name": "node-2", "pods": 1}], **extra}


def test_a_default_for_every_node_and_a_node_of_its_own() -> None:
    d = doc(cpu=0.25)
    d["nodes"][0]["cpu"] = 0.5
    spec = parse_spec(d)
    assert [n.cpu for n in spec.nodes] == [0.5, 0.25]
    assert parse_spec(spec.to_dict()) == spec  # metadata reloads to the same shares
    plain = parse_spec(doc())
    assert [n.cpu for n in plain.nodes] == [None, None] and "cpu" not in plain.to_dict()


@pytest.mark.parametrize(("where", "value", "problem"), [
    ("top", 0, "out of range (0..1"),
    ("top", 1.5, "out of range"),
    ("top", "half", "must be a number"),
    ("node", -0.1, "out of range"),
    ("node", True, "must be a number"),
])
def test_refusals_name_the_field(where: str, value: Any, problem: str) -> None:
    d = doc(cpu=value) if where == "top" else doc()
    if where == "node":
        d["nodes"][1]["cpu"] = value
    with pytest.raises(SpecError) as info:
        parse_spec(d)
    field = "cpu" if where == "top" else "nodes[1].cpu"
    assert field in str(info.value) and problem in str(info.value)


def test_bandwidth_is_a_fraction_of_the_whole_machine_as_mininet_computes_it() -> None:
    # Mininet: quota = period * f * cores (CPULimitedHost.cfsInfo)
    assert bandwidth(0.25, 2).period_us == 100_000
    assert bandwidth(0.25, 2).quota_us == 50_000 and bandwidth(0.25, 2).cores == 0.5
    assert bandwidth(1.0, 8).quota_us == 800_000
    # under the kernel's 1 ms minimum quota the period grows instead
    tiny = bandwidth(0.001, 2)
    assert tiny.quota_us == 1_000 and tiny.period_us == 500_000
    assert tiny.cores == pytest.approx(0.002)
    for bad in (0.0, -0.5, 1.01):
        with pytest.raises(ValueError):
            bandwidth(bad, 2)
    with pytest.raises(ValueError):
        bandwidth(0.5, 0)


def test_names_and_descriptions() -> None:
    assert cgroup_name("node-1") == "ktb-node-1"
    assert describe(0.25, 2) == "25% of 2 CPUs (0.50 core)"
    assert describe(None, 2) == "unlimited"


def test_the_cgroup_v2_interface_on_a_made_up_hierarchy(tmp_path, monkeypatch) -> None:
    """These machines mount cgroup v1; the v2 path (cpu.max, the root handing down the
    cpu controller) checked on directories shaped like /sys/fs/cgroup."""
    from testbed.kernel import cgroups

    v2 = tmp_path / "cgroup"
    v2.mkdir()
    monkeypatch.setattr(cgroups, "V1_ROOT", tmp_path / "no-v1")
    monkeypatch.setattr(cgroups, "V2_ROOT", v2)
    (v2 / "cgroup.subtree_control").write_text("memory pids\n")
    hierarchy, why = cgroups.find()
    assert hierarchy is None and "does not hand the cpu controller" in why
    (v2 / "cgroup.subtree_control").write_text("cpu memory pids\n")
    hierarchy, why = cgroups.find()
    assert hierarchy == cgroups.Hierarchy(v2, 2) and why == ""
    bw = bandwidth(0.25, 2)
    path = cgroups.create(hierarchy, "ktb-node-1", bw.period_us, bw.quota_us)
    assert (path / "cpu.max").read_text() == "50000 100000"
    assert cgroups.read_bandwidth(hierarchy, "ktb-node-1") == (100_000, 50_000)
    (path / "cpu.max").write_text("max 100000")
    assert cgroups.read_bandwidth(hierarchy, "ktb-node-1") == (100_000, -1)
    assert cgroups.prefix("ktb-node-1") == ("cgexec", "-g", "cpu:/ktb-node-1")
