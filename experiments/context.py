"""What an experiment gets: the running cluster, the run directory, parameters, progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from experiments.claims import ClaimResult
from testbed.cluster import Cluster
from testbed.model.paths import classify
from testbed.results.progress import Reporter
from testbed.results.rundir import Measurement, RunDir

T = TypeVar("T")


def retry(call: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 5.0,
          interval_s: float = 0.1) -> T:
    """Call until `ok(result)` or the time is up; return the last result (for servers that
    are still starting, routes that FRR is still installing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = call()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval_s)


def two_pods(cluster: Cluster) -> tuple[str, str]:
    """The first and the last pod: the pair the claims about pods use (on two nodes when
    the topology has several)."""
    pods = list(cluster.pods)
    if len(pods) < 2:
        raise ValueError("needs at least two pods")
    return pods[0], pods[-1]


@dataclass(frozen=True)
class Params:
    """Knobs of the default suite; --quick trades precision for a ~30 s run."""

    repeat: int = 3
    ping_count: int = 5
    ping_interval_s: float = 0.05  # root may ping faster than 0.2 s
    iperf_duration_s: int = 3  # iperf3 3.12 truncates fractional durations
    iperf_port: int = 5201

    @classmethod
    def quick(cls, repeat: int | None = None) -> Params:
        return cls(repeat=repeat or 1, ping_count=3, iperf_duration_s=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    cluster: Cluster
    run: RunDir
    params: Params
    progress: Reporter
    # (experiment, repeat, src, dst) of the measurement units already in measurements.csv:
    # a resumed run skips them. A unit's rows are written together, so it is whole or absent.
    done: set[tuple[str, int, str, str]] = field(default_factory=set)

    def is_done(self, experiment: str, repeat: int, src: str, dst: str) -> bool:
        return (experiment, repeat, src, dst) in self.done

    def claim(self, result: ClaimResult) -> None:
        """Record a claim's verdict in claims.csv and say it."""
        self.run.add_claim(result.row())
        self.progress.note(f"claim {result.claim}: {result.verdict.upper()}: {result.evidence}")

    def measurement(self, experiment: str, repeat: int, src: str, dst: str, path: str | None,
                    metric: str, value: float) -> Measurement:
        """A row with the endpoints' nodes and the path class filled in from the cluster."""
        c = self.cluster
        s, d = c.endpoint(src), c.endpoint(dst)
        return Measurement(experiment=experiment, repeat=repeat, src=src, dst=dst,
                           src_node=s.node, dst_node=d.node, path=path or classify(s, d),
                           metric=metric, value=float(value))
