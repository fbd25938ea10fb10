"""A run's metadata.json as one typed record, written and read by the same code.

The runner (experiments/session.py) fills it in three times: before the run starts (what
reproduces it), when the shared cluster is up (what was built), and at the end (status,
fidelity, files). The report, `testbed compare` and campaigns read it back through
`RunMetadata.from_dict`, so the schema lives here and nowhere else.

Why every field is optional: metadata.json is written before the cluster comes up and
again as the run goes, and runs from before a field existed (the stored reference in
results/reference/, a run from before the fidelity monitor or pinning) must still load
for `--resume` and `compare`. A field that is None is absent from the file; `to_dict`
writes exactly the keys that are set, with the values as given, so the same run writes the
same metadata.json as before this record existed. Keys this code does not know (a newer
run, a hand edit) are kept in `extra` and written back unchanged.

`from_dict` does not validate types: what a key must hold to resume a run is checked where
resuming needs it (experiments/session.py), with messages that name the file and key.
The version of the whole run directory's format is rundir.FORMAT_VERSION.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from testbed.results.rundir import FORMAT_VERSION

FILE = "metadata.json"
MAX_BYTES = 16 << 20  # read no more of a metadata.json than this


@dataclass
class RunMetadata:
    """See the module docstring; the field names are metadata.json's keys."""

    # before the run: what reproduces it
    format_version: int | None = None
    run_id: str | None = None
    started_utc: str | None = None
    command: str | None = None
    experiments: list[str] | None = None
    wiring: str | None = None
    parameters: dict[str, Any] | None = None
    pinning: dict[str, Any] | None = None
    topology_file: str | None = None
    topology: dict[str, Any] | None = None
    host: str | None = None
    git: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    # while it runs: who runs it, and each time it was resumed
    status: str | None = None
    complete: bool | None = None
    owner: dict[str, Any] | None = None
    resumed: list[dict[str, Any]] | None = None
    error: str | None = None
    traceback: str | None = None
    # the shared cluster as built (absent when no experiment needed it)
    pod_network: str | None = None
    pod_wiring: str | None = None
    expected_ttl: dict[str, int] | None = None
    route_description: dict[str, str] | None = None
    address_plan: dict[str, Any] | None = None
    pods: list[dict[str, Any]] | None = None
    router_routes: list[str] | None = None
    cluster_timings_s: dict[str, float] | None = None
    teardown_s: float | None = None
    # at the end
    fidelity: dict[str, Any] | None = None
    finished_utc: str | None = None
    duration_s: float | None = None
    figures: list[str] | None = None
    files: list[str] | None = None
    rows: int | None = None
    claims: dict[str, str] | None = None
    # keys this code does not know, and known keys stored as null: written back as read
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys this record knows, in metadata.json."""
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetadata:
        """The record of a metadata.json's object, of any format version (missing keys
        stay None, unknown ones go to `extra`); ValueError for something not an object."""
        if not isinstance(data, Mapping):
            raise ValueError(f"not a run's metadata (a {type(data).__name__})")
        known = set(cls.keys())
        meta = cls(**{k: v for k, v in data.items() if k in known and v is not None})
        meta.extra = {k: v for k, v in data.items() if k not in known or v is None}
        return meta

    def to_dict(self) -> dict[str, Any]:
        """metadata.json's object: the keys that are set, and `extra` as it was read."""
        out = dict(self.extra)
        out.update((k, getattr(self, k)) for k in self.keys() if getattr(self, k) is not None)
        return out

    def drop(self, *names: str) -> None:
        """Remove keys from the file (an earlier attempt's error, say)."""
        for name in names:
            setattr(self, name, None)
            self.extra.pop(name, None)

    # what the readers ask, with the defaults they used on runs that lack it

    @property
    def topology_name(self) -> str:
        return str((self.topology or {}).get("name", ""))

    @property
    def git_commit(self) -> str | None:
        return (self.git or {}).get("commit")

    @property
    def fidelity_verdict(self) -> str | None:
        """"ok", "suspect", ...; None for a run from before the fidelity monitor."""
        return (self.fidelity or {}).get("verdict")

    @property
    def target_ci(self) -> float | None:
        return (self.parameters or {}).get("target_ci")

    @property
    def node_rows(self) -> list[dict[str, Any]]:
        """The address plan's nodes, a row each (empty before the cluster came up)."""
        return list((self.address_plan or {}).get("nodes", []))

    @property
    def current(self) -> bool:
        """Written by this code's run-directory format (only such a run resumes)."""
        return self.format_version == FORMAT_VERSION


def loads(raw: bytes | str) -> RunMetadata:
    """A metadata.json's text as a record; ValueError if it is not JSON or not an object
    (UnicodeDecodeError is a ValueError)."""
    return RunMetadata.from_dict(json.loads(raw))


def read(run_dir: Path) -> RunMetadata:
    """The metadata of the run directory `run_dir`: OSError if it cannot be read,
    ValueError if it is not a run's metadata (or longer than MAX_BYTES)."""
    with open(run_dir / FILE, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    return loads(raw)
