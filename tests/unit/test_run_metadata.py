"""metadata.json's typed record (testbed.results.metadata): the file a run writes stays
byte for byte what it was, old runs load, unknown keys survive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed.results import metadata
from testbed.results.metadata import RunMetadata
from testbed.results.rundir import FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"

# what experiments/run.py wrote before the record existed, at the start of a run and at
# its end (the keys and values of new_metadata, cluster_meta and write_report)
TODAY = {
    "format_version": FORMAT_VERSION, "run_id": "20261127-111328-two-node",
    "started_utc": "2026-11-27T11:13:28Z", "command": "sudo python3 experiments/run.py",
    "experiments": ["reachability", "throughput"], "wiring": "cni",
    "parameters": {"repeat": 3, "modes": [], "pin": True, "target_ci": None},
    "pinning": {"pinned": False, "why": "--no-pin"}, "topology_file": "t.yaml",
    "topology": {"name": "two-node", "nodes": [{"name": "node-1", "pods": 2}]},
    "host": "vm", "git": {"commit": "abc", "dirty": False}, "environment": {"cpus": 2},
    "status": "interrupted", "complete": False, "owner": {"pid": 5, "started": 7},
    "resumed": [{"utc": "2026-11-27T11:20:00Z", "command": "c", "rows_before": 4}],
    "error": "interrupted (Ctrl-C)", "traceback": "Traceback ...",
    "pod_network": "kubenet", "pod_wiring": "cni", "expected_ttl": {"node-node": 64},
    "route_description": {"node-node": "node -> node"},
    "address_plan": {"underlay": "10.100.0.0/24", "nodes": [{"node": "node-1", "mtu": 1500}]},
    "pods": [{"pod": "pod-1", "ip": "10.0.0.2"}], "router_routes": ["10.0.0.0/24 via x"],
    "cluster_timings_s": {"up_s": 0.3}, "teardown_s": 0.068,
    "fidelity": {"verdict": "ok", "reasons": [], "thresholds": {}},
    "finished_utc": "2026-11-27T11:14:29Z", "duration_s": 60.8, "figures": ["a.png"],
    "files": ["metadata.json"], "rows": 100, "claims": {"pod-ips-routable": "confirmed"},
}


def test_every_key_written_today_is_a_field_and_round_trips() -> None:
    assert set(TODAY) == set(RunMetadata.keys())
    meta = RunMetadata.from_dict(TODAY)
    assert meta.extra == {} and meta.to_dict() == TODAY
    assert json.dumps(meta.to_dict(), sort_keys=True) == json.dumps(TODAY, sort_keys=True)


def test_a_run_just_started_writes_only_what_it_has() -> None:
    start = {k: TODAY[k] for k in ("format_version", "run_id", "experiments", "status")}
    assert RunMetadata.from_dict(start).to_dict() == start
    assert RunMetadata().to_dict() == {}


def test_the_stored_reference_loads_and_writes_back_unchanged() -> None:
    raw = json.loads((REFERENCE / "metadata.json").read_text())
    meta = metadata.read(REFERENCE)
    assert meta.to_dict() == raw and meta.current and meta.topology_name == "two-node"
    assert meta.fidelity_verdict == "ok" and meta.status == "complete"
    assert [n["node"] for n in meta.node_rows] == ["node-1", "node-2"]


def test_an_old_run_loads_with_what_it_lacks_absent() -> None:
    """Before format 2, pinning, the fidelity monitor: those keys are simply missing."""
    old = {"format_version": 1, "run_id": "r", "status": "complete",
           "parameters": {"repeat": 3}, "topology": {"name": "t"}}
    meta = RunMetadata.from_dict(old)
    assert not meta.current and meta.pinning is None and meta.fidelity is None
    assert meta.fidelity_verdict is None and meta.target_ci is None
    assert meta.node_rows == [] and meta.git_commit is None
    assert meta.to_dict() == old


def test_unknown_keys_and_nulls_are_kept() -> None:
    data = {"run_id": "r", "from_the_future": {"x": 1}, "error": None}
    meta = RunMetadata.from_dict(data)
    assert meta.extra == {"from_the_future": {"x": 1}, "error": None}
    assert meta.to_dict() == data
    meta.error = "now set"
    assert meta.to_dict()["error"] == "now set"
    meta.drop("error", "traceback")
    assert "error" not in meta.to_dict() and meta.to_dict()["from_the_future"] == {"x": 1}


@pytest.mark.parametrize("data", [[1, 2], "x", 3])
def test_something_not_an_object_is_a_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match="not a run's metadata"):
        RunMetadata.from_dict(data)


def test_read_of_a_broken_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        metadata.read(tmp_path)
    (tmp_path / "metadata.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError):
        metadata.read(tmp_path)
