"""What an experiment is, and what it gets and gives.

An experiment is an object with a `name`, a `kind` (a measurement, or a claim that gives
a verdict), what it `needs` (the suite's shared cluster, or clusters of its own), `steps`
(for progress) and `run(ctx)`, which yields its results as they are finished:

    Rows(label, measurements)   one finished unit of measurement (one progress step)
    Verdict(claim result)       a claim's verdict, with its evidence (one progress step)
    Figure(name, png)           a plot the report shows

The runner (suite.py) writes every result the moment it is yielded, so an interrupted
run keeps what was finished; experiments never touch the run directory's tables.

An experiment may also add a section to the run's report: an optional
`report_section(frame) -> ReportSection | None`, given every row of the run
(measurements.csv as a frame, a resumed run's earlier rows too), returning the section's
markdown lines and the figures they show ({file name: PNG}), or None when the rows hold
nothing of it. The report (experiments/run_report.py) asks every experiment of the run,
so the runner names none.

The registry (experiments/registry.py) lists the experiments; to add one, write a module
in experiments/catalogue/ with a class like those there (a claim: a `Claim` with its
`name` and `statement`, a pure `judge_*` of its evidence) and list it in the registry.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, List, Protocol, Tuple, TypeVar, Union

from experiments.framework.needs import Needs
from experiments.framework.verdicts import ClaimResult, declare, not_applicable
from testbed.cluster import Cluster
from testbed.errors import TestbedError, one_line
from testbed.kernel.procs import ExecResult
from testbed.model.names import DOCKER_DEFAULT
from testbed.model.paths import classify
from testbed.model.podnet import POD_NETWORKS
from testbed.model.spec import ClusterSpec
from testbed.pods.wiring import DEFAULT_WIRING
from testbed.results.progress import Reporter
from testbed.results.rundir import ERROR, Measurement, RunDir

MEASUREMENT = "measurement"
CLAIM = "claim"
SHARED_CLUSTER = "shared-cluster"  # runs on the suite's cluster and leaves it as it was
OWN_CLUSTERS = "own-clusters"  # brings clusters of its own up and down (after the shared)

T = TypeVar("T")
# the pod networks a comparison can build: docker-default's cross-node traffic does not
# arrive, by design
COMPARABLE = tuple(m for m in POD_NETWORKS if m != DOCKER_DEFAULT)


@dataclass(frozen=True)
class Params:
    """Knobs of the default suite; --quick trades precision for a ~20 s run."""

    repeat: int = 3
    ping_count: int = 5
    ping_interval_s: float = 0.05  # root may ping faster than 0.2 s
    iperf_duration_s: int = 3  # iperf3 3.12 truncates fractional durations
    iperf_port: int = 5201
    # the pod networks pod-network-comparison builds, in order (empty: every one it can)
    modes: tuple[str, ...] = ()
    # iperf3's client and server each on a CPU of its own (`pin_cpus`), so runs compare
    pin: bool = True
    # throughput: after `repeat` rounds, more until every path's paired-ratio interval is
    # at most this wide relative to its median (None: just `repeat`), or `budget_s` is spent
    target_ci: float | None = None
    budget_s: float = 300.0

    @classmethod
    def quick(cls, repeat: int | None = None) -> Params:
        return cls(repeat=repeat or 1, ping_count=3, iperf_duration_s=1)

    def check(self) -> None:
        """ValueError unless every knob is of its type and in a range that can run."""
        ints = {"repeat": (1, 1000), "ping_count": (1, 10_000), "iperf_duration_s": (1, 3600),
                "iperf_port": (1, 65535)}
        for name, (low, high) in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number in {low}..{high}")
        interval = self.ping_interval_s
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
                0.002 <= interval <= 60):
            raise ValueError("ping_interval_s must be a number of seconds in 0.002..60")
        if not isinstance(self.modes, (list, tuple)) or not all(
                isinstance(m, str) and m in COMPARABLE for m in self.modes):
            raise ValueError(f"modes must name pod networks among {', '.join(COMPARABLE)}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError("modes names a pod network twice")
        if not isinstance(self.pin, bool):
            raise ValueError("pin must be true or false")
        if self.target_ci is not None and (
                isinstance(self.target_ci, bool) or not isinstance(self.target_ci, (int, float))
                or not 0 < self.target_ci <= 2):
            raise ValueError("target_ci must be a relative width in (0, 2], e.g. 0.1")
        if isinstance(self.budget_s, bool) or not isinstance(self.budget_s, (int, float)) or \
                not 1 <= self.budget_s <= 86_400:
            raise ValueError("budget_s must be a number of seconds in 1..86400")

    def pin_cpus(self) -> tuple[int, int] | None:
        """(client CPU, server CPU) for iperf3: the first two CPUs this process may use;
        None when not pinning or with one CPU (then nothing is pinned, and the metadata
        says so)."""
        if not self.pin:
            return None
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return (cpus[0], cpus[1]) if len(cpus) >= 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modes": list(self.modes)}


@dataclass(frozen=True)
class Rows:
    """One finished unit of measurement: its rows are written together, whole or not at
    all. Empty for a unit kept from an earlier, interrupted run."""

    label: str
    rows: tuple[Measurement, ...] = ()
    # what the experiment itself found suspect about this unit: (reason code, words),
    # judged with the monitor's samples (a shaped link short of its rate, ...)
    suspect: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict (confirmed, refuted or error) and its evidence."""

    result: ClaimResult


@dataclass(frozen=True)
class Figure:
    """A plot an experiment drew, as PNG: written beside the report and shown in it."""

    name: str
    png: bytes


Result = Union[Rows, Verdict, Figure]  # typing's Union: runs on 3.8
# an experiment's own report section: markdown lines, and {file name: PNG} they show
ReportSection = Tuple[List[str], Dict[str, bytes]]  # typing's generics: runs on 3.8


@dataclass
class Context:
    """What an experiment gets: the shared cluster (None for one with clusters of its
    own), the topology, parameters, progress, and where raw tool output goes."""

    spec: ClusterSpec
    run: RunDir
    params: Params
    progress: Reporter
    cluster: Cluster | None = None
    wiring: str = DEFAULT_WIRING
    # (experiment, repeat, src, dst) of the measurement units already in measurements.csv:
    # a resumed run skips them.
    done: set[tuple[str, int, str, str]] = field(default_factory=set)
    # judges each unit's window as it is written (testbed.results.fidelity); None: no
    # monitor (tests that drive an experiment directly)
    fidelity: Any = None

    def require_cluster(self) -> Cluster:
        """The shared cluster (an error for an experiment that runs on its own)."""
        if self.cluster is None:
            raise TestbedError("this experiment needs the suite's cluster")
        return self.cluster

    def is_done(self, experiment: str, repeat: int, src: str, dst: str) -> bool:
        return (experiment, repeat, src, dst) in self.done

    def raw(self, name: str, text: str) -> None:
        """Keep a tool's raw output (iperf3 JSON, ping text) for later inspection."""
        self.run.raw(name, text)

    def measurement(self, experiment: str, repeat: int, src: str, dst: str, path: str | None,
                    metric: str, value: float, cluster: Cluster | None = None,
                    note: str = "") -> Measurement:
        """A row with the endpoints' nodes and the path class filled in from the cluster."""
        c = cluster or self.require_cluster()
        s, d = c.endpoint(src), c.endpoint(dst)
        return Measurement(experiment=experiment, repeat=repeat, src=src, dst=dst,
                           src_node=s.node, dst_node=d.node, path=path or classify(s, d),
                           metric=metric, value=float(value), note=note)

    def error(self, experiment: str, repeat: int, src: str, dst: str, path: str | None,
              reason: str) -> Measurement:
        """The row of a unit that could not be measured: no number, the reason."""
        return self.measurement(experiment, repeat, src, dst, path, ERROR, math.nan,
                                note=one_line(reason, 300))


class Experiment(Protocol):
    """See the module docstring."""

    name: ClassVar[str]
    kind: ClassVar[str]  # MEASUREMENT or CLAIM
    needs: ClassVar[str]  # SHARED_CLUSTER or OWN_CLUSTERS

    def steps(self, ctx: Context) -> int:
        """How many Rows and Verdicts `run` will yield (for progress)."""
        ...

    def run(self, ctx: Context) -> Iterator[Result]:
        ...


class Claim:
    """Defaults for a claim of the article (its class sets `name` and `statement`, which
    the claims table is derived from): one verdict, on the shared cluster, on any
    topology (`requires`: what it needs of the topology it runs on, experiments/framework/needs.py;
    a claim on clusters of its own built from a fixed topology needs nothing of it)."""

    name: ClassVar[str]
    statement: ClassVar[str]  # the claim in the article's words (claims.csv, the report)
    kind: ClassVar[str] = CLAIM
    needs: ClassVar[str] = SHARED_CLUSTER
    requires: ClassVar[Needs] = Needs()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that states a claim declares it to the verdicts
        (experiments/framework/verdicts.py); a base shared by several claims states none."""
        super().__init_subclass__(**kwargs)
        if "statement" in vars(cls):
            declare(cls.name, cls.statement)

    def steps(self, ctx: Context) -> int:
        return 1

    def inapplicable(self, spec: ClusterSpec) -> ClaimResult | None:
        """`not applicable` with the reasons when `spec` lacks what the claim needs."""
        reason = self.requires.reason(spec)
        return not_applicable(self.name, reason) if reason else None


def outcome(result: ExecResult) -> dict[str, Any]:
    """A probe's result as evidence: whether it succeeded and what it printed."""
    return {"ok": result.ok, "stdout": result.stdout}


def keep_evidence(ctx: Context, claim: str, evidence: Mapping[str, Any]) -> None:
    """What a verdict rests on, kept in the run (raw/<claim>/evidence.json)."""
    ctx.raw(f"{claim}/evidence.json", json.dumps(evidence, indent=2, sort_keys=True,
                                                 default=str) + "\n")


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
