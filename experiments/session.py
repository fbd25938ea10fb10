"""One run of the suite, start to end: the object experiments/run.py hands its arguments to.

    plan_run        the topology, parameters, experiments and wiring asked for; for
                    --resume, the interrupted run's own, checked (`Refused`: one line, 2)
    RunSession      the run directory and its metadata (testbed.results.metadata), the
                    fidelity monitor over the units, the suite (experiments/suite.py),
                    and the report at the end, written whatever happened
    main            the command: plan, preflight, session, exit status

A run's metadata is written three times: before the suite starts (what reproduces the
run: a crash leaves it resumable), when the shared cluster is up (what was built, and its
drawing, made then from the cluster itself), and at the end (status, fidelity, files).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import campaign
from experiments.claims import CLAIMS
from experiments.framework.base import COMPARABLE, Context, Experiment, Params
from experiments.framework.paths import RESULTS, ROOT, TOPOLOGIES
from experiments.registry import REGISTRY
from experiments.run_report import CLUSTER_PNG, draw_cluster, write_report
from experiments.suite import run_suite
from testbed import ClusterSpec, SpecError, TestbedError, load_spec, parse_spec
from testbed.cluster import preflight
from testbed.errors import UsageError, quote
from testbed.kernel import procs
from testbed.measure import fidelity
from testbed.measure.fidelity import Monitor
from testbed.pods.wiring import CHOICES, DEFAULT_WIRING
from testbed.results.fidelity import FidelityLog
from testbed.results.metadata import FILE, MAX_BYTES, RunMetadata
from testbed.results.progress import Reporter
from testbed.results.provenance import environment_info, git_info
from testbed.results.rundir import ERROR, FORMAT_VERSION, RunDir, give_to_invoking_user

if TYPE_CHECKING:
    from testbed import Cluster

DEFAULT_TOPOLOGY = TOPOLOGIES / "two-node.yaml"
DEFAULT_OUT = RESULTS


class Refused(Exception):
    """Input the run cannot start from: one line on stderr, exit status 2."""


# -- the command line's values -------------------------------------------------------------

def mode_names(text: str) -> tuple[str, ...]:
    """`--modes a,b`: pod networks the comparison can build, each once."""
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in COMPARABLE]
    if not modes or unknown or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(
            f"{text!r}: name each once, among {', '.join(COMPARABLE)}")
    return modes


def experiment_names(text: str) -> list[str]:
    """`--experiment a,b`: experiments of the registry, each once, in the suite's order
    (shared-cluster ones run first whatever the order given); `all` for every one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: name each once, among all, {', '.join(REGISTRY)}")
    return [n for n in REGISTRY if n in names]


def make_params(args: argparse.Namespace) -> Params:
    params = Params.quick(args.repeat) if args.quick else Params(repeat=args.repeat or 3)
    if args.duration is not None:
        params = dataclasses.replace(params, iperf_duration_s=args.duration)
    if args.modes is not None:
        params = dataclasses.replace(params, modes=args.modes)
    if args.no_pin:
        params = dataclasses.replace(params, pin=False)
    if args.target_ci is not None:
        params = dataclasses.replace(params, target_ci=args.target_ci)
    if args.budget is not None:
        params = dataclasses.replace(params, budget_s=args.budget)
    return params


def pinning(params: Params) -> dict[str, Any]:
    """Where iperf3 ran, for the metadata and the report."""
    pin = params.pin_cpus()
    if pin is None:
        return {"pinned": False, "why": "--no-pin" if not params.pin else "one CPU"}
    return {"pinned": True, "client_cpu": pin[0], "server_cpu": pin[1]}


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# -- planning and resuming -------------------------------------------------------------------

@dataclass
class Plan:
    """What a run will do: the topology, parameters, experiments and wiring, and where
    it writes (a new run directory, or the one it resumes)."""

    spec: ClusterSpec
    params: Params
    selected: list[str]
    wiring: str
    resume: RunDir | None = None  # the run being completed
    meta: RunMetadata | None = None  # its metadata
    topology_file: str = str(DEFAULT_TOPOLOGY)

    @property
    def experiments(self) -> list[Experiment]:
        """The selected experiments, in the registry's order."""
        return [e for name, e in REGISTRY.items() if name in self.selected]


def load_for_resume(path: Path) -> tuple[RunDir, RunMetadata]:
    """An earlier run's directory, its metadata and the measurements it finished."""
    meta_file = path / FILE
    try:
        data = json.loads(meta_file.read_bytes()[:MAX_BYTES + 1])
    except FileNotFoundError:
        raise Refused(f"--resume {path}: no metadata.json there (not a run directory)") from None
    except OSError as exc:
        raise Refused(f"--resume {meta_file}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # not JSON, not UTF-8, cut at the size limit
        raise Refused(f"--resume {meta_file}: not valid JSON ({quote(str(exc))})") from None
    try:
        meta = RunMetadata.from_dict(data)
    except ValueError as exc:  # a list, a number: not an object
        raise Refused(f"--resume {meta_file}: {exc}") from None
    owner = meta.owner if isinstance(meta.owner, dict) else {}
    pid = owner.get("pid")
    if (meta.status == "running" and isinstance(pid, int) and pid > 1
            and procs.is_alive(pid, owner.get("started"))):
        raise Refused(f"--resume {path}: that run is still in progress (pid {pid})")
    if not meta.current:
        raise Refused(f"--resume {path}: written by another format version "
                      f"({quote(meta.format_version)}, this is {FORMAT_VERSION})")
    try:
        return RunDir.open(path), meta
    except UsageError as exc:
        raise Refused(f"--resume {exc}") from None


def plan_run(args: argparse.Namespace) -> Plan:
    """The run the arguments ask for (SpecError or Refused if they cannot be run)."""
    if args.resume is None:
        return Plan(load_spec(args.topology or DEFAULT_TOPOLOGY), make_params(args),
                    list(REGISTRY) if args.experiment is None else args.experiment,
                    args.wiring or DEFAULT_WIRING,
                    topology_file=str(args.topology or DEFAULT_TOPOLOGY))
    run, meta = load_for_resume(args.resume)
    source = str(args.resume / FILE)
    selected = meta.experiments
    if not isinstance(selected, list) or not all(isinstance(n, str) for n in selected):
        raise Refused(f"--resume {source}: 'experiments' is not a list of names")
    unknown = [name for name in selected if name not in REGISTRY]
    if unknown:
        raise Refused(f"--resume {args.resume}: unknown experiment(s) {quote(unknown)}")
    wiring = meta.wiring if meta.wiring is not None else DEFAULT_WIRING
    if wiring not in CHOICES:
        raise Refused(f"--resume {source}: unknown wiring {quote(wiring)}")
    try:
        if meta.parameters is None:
            raise KeyError("parameters")
        # a run from before pinning was measured unpinned: its rest is too
        params = Params(**{"pin": False, **meta.parameters})
        params.check()
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"--resume {source}: 'parameters' are not this suite's "
                      f"({quote(str(exc))})") from None
    return Plan(parse_spec(meta.topology, source=f"{source} (topology)"), params,
                selected, wiring, run, meta)


def new_metadata(plan: Plan, run: RunDir, command: str, started: float) -> RunMetadata:
    """Everything needed to reproduce the run, written before it starts."""
    return RunMetadata(
        format_version=FORMAT_VERSION, run_id=run.run_id, started_utc=_utc(started),
        command=command, experiments=plan.selected, wiring=plan.wiring,
        parameters=plan.params.to_dict(), pinning=pinning(plan.params),
        topology_file=plan.topology_file, topology=plan.spec.to_dict(),
        host=socket.gethostname(), git=git_info(ROOT), environment=environment_info())


def record_cluster(meta: RunMetadata, cluster: Cluster) -> None:
    """The running cluster as built: addresses, MTUs, pods, the router's routes, timings."""
    plan = cluster.plan
    bridge = cluster.network.bridge or "bridge"
    shaped = any(n.uplink.shaped for n in cluster.spec.nodes)
    meta.pod_network = cluster.network.name
    meta.expected_ttl = cluster.network.expected_ttls()
    meta.route_description = cluster.network.route_descriptions()
    meta.address_plan = {
        "underlay": str(plan.underlay),
        "router": str(plan.router_ip),
        "cluster_cidr": str(plan.cluster_cidr),
        "nodes": [{"node": n.name, "underlay_ip": str(n.underlay_ip),
                   "pod_cidr": str(n.pod_cidr), bridge: str(n.bridge_ip),
                   "mtu": cluster.mtu.get(n.name),
                   **({"uplink": cluster.spec.nodes[n.index].uplink.describe()}
                      if shaped else {})} for n in plan.nodes],
    }
    meta.pod_wiring = cluster.wiring_name
    meta.pods = cluster.describe()
    meta.router_routes = [f"{r['dst']} via {r.get('gateway')} proto {r.get('protocol')}"
                          for r in cluster.router_routes()]
    meta.cluster_timings_s = {k: round(v, 3) for k, v in cluster.timings.items()}


# -- the run -----------------------------------------------------------------------------------

class RunSession:
    """One run: its directory, its metadata, the fidelity monitor over its units, the
    suite, and the report. `open` starts a new run or takes up an interrupted one;
    `execute` runs what is missing and writes the report, whatever happens."""

    def __init__(self, plan: Plan, run: RunDir, meta: RunMetadata, started: float) -> None:
        self.plan, self.run, self.meta, self.started = plan, run, meta, started

    @classmethod
    def open(cls, plan: Plan, out: Path | None, command: str, started: float) -> RunSession:
        """The session of `plan`: its run directory (created, or the resumed one) with
        metadata saying it is running and who runs it; UsageError if --out cannot hold
        a run."""
        if plan.resume is not None and plan.meta is not None:
            run, meta = plan.resume, plan.meta
            meta.resumed = [*(meta.resumed or []), {"utc": _utc(started), "command": command,
                                                    "rows_before": len(run.rows)}]
            run.figures = list(meta.figures or [])
        else:
            run = RunDir.create(out or DEFAULT_OUT, plan.spec.name)
            meta = new_metadata(plan, run, command, started)
        run.claim_order = list(CLAIMS)
        meta.status, meta.complete = "running", False
        meta.owner = {"pid": os.getpid(), "started": procs.start_time(os.getpid())}
        meta.drop("error", "traceback")
        session = cls(plan, run, meta, started)
        session.save()
        return session

    def save(self) -> None:
        self.run.write_json(FILE, self.meta.to_dict())

    def on_cluster(self, cluster: Cluster) -> None:
        """The shared cluster is up: record it as built, and draw it (from the cluster
        itself, so the report never re-reads the topology)."""
        record_cluster(self.meta, cluster)
        self.save()
        png = draw_cluster(cluster.spec, cluster.plan, cluster.network.bridge,
                           self.meta.pods or [], self.meta.router_routes)
        if png is not None:
            self.run.write(CLUSTER_PNG, png)

    def execute(self, progress: bool) -> tuple[str, int]:
        """Run the suite, then write the report from whatever was measured, whatever
        happened (a failure or an interrupt keeps the finished measurements)."""
        run, meta = self.run, self.meta
        # units that could not be measured before are measured again
        run.rows = [r for r in run.rows if r["metric"] != ERROR]
        done = {(r["experiment"], int(r["repeat"]), r["src"], r["dst"]) for r in run.rows}
        with Reporter(enabled=progress) as reporter:
            reporter.note(f"run {run.run_id}: topology {self.plan.spec.name}"
                          + (f", resuming with {len(run.rows)} rows kept" if done else ""))
            monitor = Monitor()
            monitor.start()
            log = FidelityLog(run, monitor)
            ctx = Context(self.plan.spec, run, self.plan.params, reporter,
                          wiring=self.plan.wiring, done=done, fidelity=log)
            status, code = "complete", 0
            try:
                status, code = self._run_suite(ctx)
            finally:
                monitor.stop()
                meta.fidelity = {**log.finish(), "thresholds": fidelity.THRESHOLDS}
                self._finish(status)
        return status, code

    def _run_suite(self, ctx: Context) -> tuple[str, int]:
        """The suite's status and exit code; a failure is recorded in the metadata (an
        interrupt says how to complete the run)."""
        meta = self.meta
        try:
            shared = run_suite([REGISTRY[name] for name in self.plan.selected], ctx,
                               self.on_cluster)
            if shared is not None:
                meta.teardown_s = round(shared.timings.get("down_s", 0.0), 3)
        except KeyboardInterrupt as exc:
            procs.acknowledge_interrupt()
            meta.error = (f"interrupted ({str(exc) or 'Ctrl-C'}); finished measurements are "
                          f"kept: complete it with --resume {self.run.path}")
            return "interrupted", 130
        except TestbedError as exc:
            meta.error = str(exc)
            return "failed", 1
        except Exception as exc:  # an unexpected bug: keep the data and the traceback
            meta.error = f"{type(exc).__name__}: {exc}"
            meta.traceback = traceback.format_exc()
            return "failed", 1
        return "complete", 0

    def _finish(self, status: str) -> None:
        """The end of the run in its metadata, then the report (and the files given back
        to whoever ran sudo), whole even if a second Ctrl-C comes."""
        finished = time.time()
        self.meta.status, self.meta.complete = status, status == "complete"
        self.meta.finished_utc = _utc(finished)
        self.meta.duration_s = round(finished - self.started, 1)
        with procs.signals_deferred():  # a second Ctrl-C must not leave half a report
            write_report(self.run, self.meta, self.plan.experiments)
            give_to_invoking_user(self.run)


# -- the command ------------------------------------------------------------------------------

def run_campaign(args: argparse.Namespace) -> int:
    """--campaign FILE: every point, each a run of its own (experiments/campaign.py)."""
    try:
        plan = campaign.load(args.campaign)
        preflight.check_all()
    except (SpecError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    procs.install_interrupt_handlers()  # Ctrl-C and SIGTERM: the point's run stops cleanly
    out, code = campaign.execute(plan, args.out)
    print(f"campaign: {out / 'campaign.md'}")
    return code


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """experiments/run.py's parsed command line (`argv`, as typed, is kept in the metadata
    as the command that reproduces the run): the exit status."""
    if args.campaign is not None:
        return run_campaign(args)
    command = shlex.join(["sudo", "python3", "experiments/run.py", *argv])
    try:
        plan = plan_run(args)
    except (SpecError, Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if plan.meta is not None and plan.meta.status == "complete":
        print(f"{args.resume}: already complete, nothing to do")
        return 0
    try:
        preflight.check_all()  # before anything is written: not root, or a tool missing
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    procs.install_interrupt_handlers()  # Ctrl-C and SIGTERM tear down and keep the data
    try:
        session = RunSession.open(plan, args.out, command, time.time())
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status, code = session.execute(progress=not args.no_progress)
    if code == 0:
        print(f"report: {session.run.path / 'report.md'}")
    else:
        print(f"error: {session.meta.error}\npartial results: {session.run.path}",
              file=sys.stderr)
    return code
