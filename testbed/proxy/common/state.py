"""The files between the control plane and each node's kube-proxy.

The controller (testbed.cluster.services) plays the API server and the endpoints
controller: it writes `state.json`, every service port with its endpoints, whenever
they change. Each node's kube-proxy (testbed.proxy.kubeproxy) watches that file the way
kube-proxy watches the API server, and reports what it last applied in
`status-<node>.json` (and every sync as one line of `syncs-<node>.jsonl`).

Every file is replaced whole (written beside, then renamed): a reader never sees half.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testbed.model.svc.plan import ServicePort

STATE = "state.json"
VERSION = 1


@dataclass(frozen=True)
class ProxyState:
    """What every kube-proxy is told: the mode, its settings, and the service ports."""

    generation: int
    mode: str
    services: tuple[ServicePort, ...]
    cluster_cidr: str
    service_cidr: str = ""
    min_sync_period_s: float = 1.0  # kube-proxy's --iptables-min-sync-period default
    sync_period_s: float = 30.0  # --iptables-sync-period: a full resync at least this often
    random_fully: bool = True

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "generation": self.generation,
                           "mode": self.mode, "cluster_cidr": self.cluster_cidr,
                           "service_cidr": self.service_cidr,
                           "min_sync_period_s": self.min_sync_period_s,
                           "sync_period_s": self.sync_period_s,
                           "random_fully": self.random_fully,
                           "services": [s.to_dict() for s in self.services]})

    @classmethod
    def from_json(cls, text: str) -> ProxyState:
        d = json.loads(text)
        if d.get("version") != VERSION:
            raise ValueError(f"state version {d.get('version')!r}, expected {VERSION}")
        return cls(generation=int(d["generation"]), mode=d["mode"],
                   cluster_cidr=d["cluster_cidr"], service_cidr=d.get("service_cidr", ""),
                   min_sync_period_s=float(d["min_sync_period_s"]),
                   sync_period_s=float(d["sync_period_s"]),
                   random_fully=bool(d["random_fully"]),
                   services=tuple(ServicePort.from_dict(s) for s in d["services"]))


@dataclass(frozen=True)
class ProxyStatus:
    """What a node's kube-proxy last did."""

    node: str
    pid: int
    mode: str
    generation: int  # of the state it last applied (-1: none yet)
    syncs: int = 0
    last_sync_s: float = 0.0  # how long the last sync took (render and apply)
    rules: int = 0  # lines of the last payload
    error: str = ""  # the last sync's failure, "" if it succeeded
    proxy_ports: dict[str, int] = field(default_factory=dict)  # userspace mode

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ProxyStatus:
        return cls(**json.loads(text))


def status_file(directory: Path, node: str) -> Path:
    return directory / f"status-{node}.json"


def syncs_file(directory: Path, node: str) -> Path:
    return directory / f"syncs-{node}.jsonl"


def read_status(directory: Path, node: str) -> ProxyStatus | None:
    try:
        return ProxyStatus.from_json(status_file(directory, node).read_text())
    except (OSError, ValueError, TypeError):
        return None


def append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
