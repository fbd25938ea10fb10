#!/usr/bin/env python3
"""Run the default experiment suite on a cluster and write a report.

    sudo make run                                   # set-up, then this with defaults
    sudo .venv/bin/python experiments/run.py --quick
    sudo python3 experiments/run.py --topology topologies/four-node.yaml --repeat 5

Writes results/<run-id>/ (measurements.csv, summary.csv, report.md, plots, metadata.json,
raw/) and prints the report's path. Started with the system Python, it re-executes itself
inside the project's environment (.venv), which holds its dependencies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ensure_project_python() -> None:
    """`sudo python3 experiments/run.py` must work: switch to .venv's Python if needed."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        return
    if not venv_python.exists():
        print("experiments/run.py: the project environment is not set up; run "
              "`sudo make setup` (or `sudo make run`) first", file=sys.stderr)
        raise SystemExit(2)
    os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _ensure_project_python()

# ruff: noqa: E402 - the imports need the project environment chosen above
import argparse
import dataclasses
import json
import shlex
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

from experiments import campaign, compare_modes
from experiments.base import COMPARABLE, Context, Params
from experiments.claims import CLAIMS
from experiments.registry import REGISTRY
from experiments.suite import run_suite
from testbed.cluster import Cluster, preflight
from testbed.errors import SpecError, TestbedError, UsageError, quote
from testbed.kernel import procs
from testbed.kernel.procs import signals_deferred
from testbed.measure import fidelity
from testbed.measure.fidelity import Monitor
from testbed.model.load import load_spec, parse_spec
from testbed.model.podnet import pod_network
from testbed.pods.wiring import CHOICES, DEFAULT_WIRING
from testbed.results import graph, report
from testbed.results.fidelity import FidelityLog, units_frame
from testbed.results.html import render_html
from testbed.results.progress import Reporter
from testbed.results.provenance import environment_info, git_info
from testbed.results.rundir import ERROR, FORMAT_VERSION, RunDir, give_to_invoking_user
from testbed.results.stats import paired_ratios

DEFAULT_TOPOLOGY = ROOT / "topologies" / "two-node.yaml"
DEFAULT_OUT = ROOT / "results"
MAX_METADATA_BYTES = 16 << 20
MAX_DRAWN_NODES = 60  # the report draws the cluster up to this size (testbed graph: any)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="experiments/run.py",
        description="Measure reachability, latency, hops and throughput along every path "
                    "class of an emulated cluster, judge the article's claims, and write a "
                    "report.")
    ap.add_argument("--topology", type=Path, default=None,
                    help="cluster topology YAML (default: topologies/two-node.yaml)")
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for run directories (default: results/)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions of each measurement (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer pings, 1 s iperf3 runs, one repeat: a smoke test in ~20 s")
    ap.add_argument("--experiment", type=_experiments, default=None, metavar="NAME[,NAME...]",
                    help="run these experiments (in the suite's order) instead of the whole "
                         f"suite: all, or names among {', '.join(REGISTRY)}")
    ap.add_argument("--duration", type=int, default=None,
                    help="whole seconds per iperf3 run (default 3; 1 with --quick)")
    ap.add_argument("--resume", type=Path, metavar="RUN_DIR",
                    help="complete an interrupted run: only what it is missing, with its "
                         "own topology and parameters")
    ap.add_argument("--wiring", choices=list(CHOICES), default=None,
                    help="pod wiring: real CNI plugins (default) or the netlink fast path")
    ap.add_argument("--modes", type=_modes, default=None, metavar="MODE,MODE...",
                    help="the pod networks pod-network-comparison builds (default: "
                         f"{', '.join(COMPARABLE)})")
    ap.add_argument("--target-ci", type=float, default=None, metavar="WIDTH",
                    help="throughput: after --repeat rounds, more rounds until every path's "
                         "paired-ratio 95%% interval is at most WIDTH of its median "
                         "(e.g. 0.1), or --budget runs out")
    ap.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                    help="with --target-ci: the most seconds of extra rounds (default 300)")
    ap.add_argument("--campaign", type=Path, metavar="FILE",
                    help="run every point of a campaign file (experiments/campaign.py), "
                         "each a run of its own; with --out a campaign directory, only "
                         "the points not complete")
    ap.add_argument("--no-pin", action="store_true",
                    help="let iperf3's client and server run on any CPU (default: the "
                         "client on the first CPU, the server on the second)")
    ap.add_argument("--no-progress", action="store_true", help="no progress display")
    args = ap.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.duration is not None and args.duration < 1:
        ap.error("--duration must be at least 1")
    if args.target_ci is not None and not 0 < args.target_ci <= 2:
        ap.error("--target-ci is a relative width in (0, 2], e.g. 0.1")
    if args.budget is not None and not 1 <= args.budget <= 86_400:
        ap.error("--budget must be 1..86400 seconds")
    if args.budget is not None and args.target_ci is None:
        ap.error("--budget goes with --target-ci")
    if args.campaign is not None:
        clash = [name for name in ("topology", "repeat", "experiment", "duration", "wiring",
                                   "modes", "resume") if getattr(args, name) is not None]
        if clash or args.quick:
            ap.error("--campaign takes the topology and parameters from its file; drop --"
                     + ", --".join(clash + (["quick"] if args.quick else [])))
    if args.resume is not None:
        clash = [name for name in ("topology", "out", "repeat", "experiment", "duration",
                                   "wiring", "modes", "target_ci", "budget")
                 if getattr(args, name) is not None] + (["quick"] if args.quick else []) + (
                     ["no-pin"] if args.no_pin else [])
        if clash:
            ap.error("--resume takes the topology and parameters from the run's metadata; "
                     f"drop --{', --'.join(clash)}")
    return args


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


def _pinning(params: Params) -> dict[str, Any]:
    """Where iperf3 ran, for the metadata and the report."""
    pin = params.pin_cpus()
    if pin is None:
        return {"pinned": False, "why": "--no-pin" if not params.pin else "one CPU"}
    return {"pinned": True, "client_cpu": pin[0], "server_cpu": pin[1]}


def _modes(text: str) -> tuple[str, ...]:
    """`--modes a,b`: pod networks the comparison can build, each once."""
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in COMPARABLE]
    if not modes or unknown or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(
            f"{text!r}: name each once, among {', '.join(COMPARABLE)}")
    return modes


def _experiments(text: str) -> list[str]:
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


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Refused(Exception):
    """Input the run cannot start from: one line on stderr, exit status 2."""


@dataclass
class Plan:
    """What a run will do: the topology, parameters, experiments and wiring, and where
    it writes (a new run directory, or the one it resumes)."""

    spec: Any
    params: Params
    selected: list[str]
    wiring: str
    resume: RunDir | None = None  # the run being completed
    meta: dict[str, Any] | None = None  # its metadata


def load_for_resume(path: Path) -> tuple[RunDir, dict[str, Any]]:
    """An earlier run's directory, its metadata and the measurements it finished."""
    meta_file = path / "metadata.json"
    try:
        meta = json.loads(meta_file.read_bytes()[:MAX_METADATA_BYTES + 1])
    except FileNotFoundError:
        raise Refused(f"--resume {path}: no metadata.json there (not a run directory)") from None
    except OSError as exc:
        raise Refused(f"--resume {meta_file}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # not JSON, not UTF-8, cut at the size limit
        raise Refused(f"--resume {meta_file}: not valid JSON ({quote(str(exc))})") from None
    if not isinstance(meta, dict):
        raise Refused(f"--resume {meta_file}: not a run's metadata (a {type(meta).__name__})")
    owner = meta.get("owner") if isinstance(meta.get("owner"), dict) else {}
    pid = owner.get("pid")
    if (meta.get("status") == "running" and isinstance(pid, int) and pid > 1
            and procs.is_alive(pid, owner.get("started"))):
        raise Refused(f"--resume {path}: that run is still in progress (pid {pid})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise Refused(f"--resume {path}: written by another format version "
                      f"({quote(meta.get('format_version'))}, this is {FORMAT_VERSION})")
    try:
        return RunDir.open(path), meta
    except UsageError as exc:
        raise Refused(f"--resume {exc}") from None


def plan_run(args: argparse.Namespace) -> Plan:
    """The run the arguments ask for (SpecError or Refused if they cannot be run)."""
    if args.resume is None:
        return Plan(load_spec(args.topology or DEFAULT_TOPOLOGY), make_params(args),
                    list(REGISTRY) if args.experiment is None else args.experiment,
                    args.wiring or DEFAULT_WIRING)
    run, meta = load_for_resume(args.resume)
    source = str(args.resume / "metadata.json")
    selected = meta.get("experiments")
    if not isinstance(selected, list) or not all(isinstance(n, str) for n in selected):
        raise Refused(f"--resume {source}: 'experiments' is not a list of names")
    unknown = [name for name in selected if name not in REGISTRY]
    if unknown:
        raise Refused(f"--resume {args.resume}: unknown experiment(s) {quote(unknown)}")
    wiring = meta.get("wiring", DEFAULT_WIRING)
    if wiring not in CHOICES:
        raise Refused(f"--resume {source}: unknown wiring {quote(wiring)}")
    try:
        # a run from before pinning was measured unpinned: its rest is too
        params = Params(**{"pin": False, **meta["parameters"]})
        params.check()
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"--resume {source}: 'parameters' are not this suite's "
                      f"({quote(str(exc))})") from None
    return Plan(parse_spec(meta.get("topology"), source=f"{source} (topology)"), params,
                selected, wiring, run, meta)


def new_metadata(args: argparse.Namespace, plan: Plan, run: RunDir, command: str,
                 started: float) -> dict[str, Any]:
    """Everything needed to reproduce the run, written before it starts."""
    return {
        "format_version": FORMAT_VERSION,
        "run_id": run.run_id,
        "started_utc": _utc(started),
        "command": command,
        "experiments": plan.selected,
        "wiring": plan.wiring,
        "parameters": plan.params.to_dict(),
        "pinning": _pinning(plan.params),
        "topology_file": str(args.topology or DEFAULT_TOPOLOGY),
        "topology": plan.spec.to_dict(),
        "host": socket.gethostname(),
        "git": git_info(ROOT),
        "environment": environment_info(),
    }


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.campaign is not None:
        return run_campaign(args)
    command = shlex.join(["sudo", "python3", "experiments/run.py",
                          *(argv if argv is not None else sys.argv[1:])])
    try:
        plan = plan_run(args)
    except (SpecError, Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if plan.meta is not None and plan.meta.get("status") == "complete":
        print(f"{args.resume}: already complete, nothing to do")
        return 0
    try:
        preflight.check_all()  # before anything is written: not root, or a tool missing
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    procs.install_interrupt_handlers()  # Ctrl-C and SIGTERM tear down and keep the data

    started = time.time()
    if plan.resume is not None and plan.meta is not None:
        run, meta = plan.resume, plan.meta
        meta.setdefault("resumed", []).append({"utc": _utc(started), "command": command,
                                               "rows_before": len(run.rows)})
        run.figures = list(meta.get("figures", []))
    else:
        try:
            run = RunDir.create(args.out or DEFAULT_OUT, plan.spec.name)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        meta = new_metadata(args, plan, run, command, started)
    run.claim_order = list(CLAIMS)
    meta.update(status="running", complete=False,
                owner={"pid": os.getpid(), "started": procs.start_time(os.getpid())})
    meta.pop("error", None)
    meta.pop("traceback", None)
    run.write_json("metadata.json", meta)
    status, code = execute(plan, run, meta, progress=not args.no_progress, started=started)
    if code == 0:
        print(f"report: {run.path / 'report.md'}")
    else:
        print(f"error: {meta.get('error')}\npartial results: {run.path}", file=sys.stderr)
    return code


def execute(plan: Plan, run: RunDir, meta: dict[str, Any], progress: bool,
            started: float) -> tuple[str, int]:
    """Run the suite, then write the report from whatever was measured, whatever
    happened (a failure or an interrupt keeps the finished measurements)."""
    # units that could not be measured before are measured again
    run.rows = [r for r in run.rows if r["metric"] != ERROR]
    done = {(r["experiment"], int(r["repeat"]), r["src"], r["dst"]) for r in run.rows}
    status, code = "complete", 0
    with Reporter(enabled=progress) as reporter:
        reporter.note(f"run {run.run_id}: topology {plan.spec.name}"
                      + (f", resuming with {len(run.rows)} rows kept" if done else ""))

        def on_cluster(cluster: Cluster) -> None:
            meta.update(cluster_meta(cluster))
            run.write_json("metadata.json", meta)

        monitor = Monitor()
        monitor.start()
        log = FidelityLog(run, monitor)
        ctx = Context(plan.spec, run, plan.params, reporter, wiring=plan.wiring, done=done,
                      fidelity=log)
        try:
            shared = run_suite([REGISTRY[name] for name in plan.selected], ctx, on_cluster)
            if shared is not None:
                meta["teardown_s"] = round(shared.timings.get("down_s", 0.0), 3)
        except KeyboardInterrupt as exc:
            procs.acknowledge_interrupt()
            status, code = "interrupted", 130
            meta["error"] = (f"interrupted ({str(exc) or 'Ctrl-C'}); finished measurements are "
                             f"kept: complete it with --resume {run.path}")
        except TestbedError as exc:
            status, code = "failed", 1
            meta["error"] = str(exc)
        except Exception as exc:  # an unexpected bug: keep the data and the traceback
            status, code = "failed", 1
            meta["error"] = f"{type(exc).__name__}: {exc}"
            meta["traceback"] = traceback.format_exc()
        finally:
            monitor.stop()
            meta["fidelity"] = {**log.finish(), "thresholds": fidelity.THRESHOLDS}
            finished = time.time()
            meta.update(status=status, complete=status == "complete",
                        finished_utc=_utc(finished), duration_s=round(finished - started, 1))
            with signals_deferred():  # a second Ctrl-C must not leave half a report
                write_report(run, meta)
                give_to_invoking_user(run)
    return status, code


def cluster_meta(cluster: Cluster) -> dict[str, Any]:
    """The running cluster as built: addresses, MTUs, pods, the router's routes, timings."""
    plan = cluster.plan
    bridge = cluster.network.bridge or "bridge"
    shaped = any(n.uplink.shaped for n in cluster.spec.nodes)
    return {
        "pod_network": cluster.network.name,
        "expected_ttl": cluster.network.expected_ttls(),
        "route_description": cluster.network.route_descriptions(),
        "address_plan": {
            "underlay": str(plan.underlay),
            "router": str(plan.router_ip),
            "cluster_cidr": str(plan.cluster_cidr),
            "nodes": [{"node": n.name, "underlay_ip": str(n.underlay_ip),
                       "pod_cidr": str(n.pod_cidr), bridge: str(n.bridge_ip),
                       "mtu": cluster.mtu.get(n.name),
                       **({"uplink": cluster.spec.nodes[n.index].uplink.describe()}
                          if shaped else {})} for n in plan.nodes],
        },
        "pod_wiring": cluster.wiring_name,
        "pods": cluster.describe(),
        "router_routes": [f"{r['dst']} via {r.get('gateway')} proto {r.get('protocol')}"
                          for r in cluster.router_routes()],
        "cluster_timings_s": {k: round(v, 3) for k, v in cluster.timings.items()},
    }


# (file, metric, scale, unit, title) of the bar charts every report has
PLOTS = (
    ("throughput.png", "throughput_bps", 1e9, "Gbit/s",
     "TCP throughput by path class (mean, 95 % CI)"),
    ("rtt.png", "rtt_avg_ms", 1.0, "ms", "Average ping RTT by path class (mean, 95 % CI)"),
)


def cluster_drawing(meta: dict[str, Any]) -> bytes | None:
    """The cluster as built (testbed.results.graph), with the addresses its pods got;
    None before the cluster came up."""
    if "pods" not in meta or "topology" not in meta:
        return None
    nodes = meta["topology"].get("nodes", []) if isinstance(meta["topology"], dict) else []
    if len(nodes) > MAX_DRAWN_NODES:  # a page a few metres long helps nobody
        return None
    try:
        spec = parse_spec(meta["topology"])
    except SpecError:
        return None
    network = pod_network(spec.pod_network)
    ips = {row["pod"]: row["ip"] for row in meta["pods"] if isinstance(row, dict)}
    return graph.render(spec, network.plan(spec), network.bridge, spec.pod_network, "png",
                        ips, meta.get("router_routes"))


def write_report(run: RunDir, meta: dict[str, Any]) -> None:
    """Summary, plots, report and metadata from whatever was measured (even a partial run)."""
    df = run.frame()
    summary = report.summarize(df)
    run.write_csv("summary.csv", summary)
    ratios = paired_ratios(df)
    if not ratios.empty:
        run.write_csv("ratios.csv", ratios)
    plots = []
    for name, metric, scale, label, title in PLOTS:
        png = report.plot_png(summary, metric, scale, label, title)
        if png is not None:
            run.write(name, png)
            plots.append(name)
    plots += [name for name in run.figures if run.exists(name)]
    drawing = cluster_drawing(meta)
    if drawing is not None:  # from the metadata: a resumed run draws it too
        run.write("cluster.png", drawing)
        plots.insert(0, "cluster.png")
    comparison = compare_modes.comparison_markdown(df)
    if comparison:  # drawn from the rows, so a resumed run has it too
        run.write("pod_network_comparison.png", compare_modes.comparison_png(df))
    meta["figures"] = list(run.figures)
    markdown = report.render_markdown(df, summary, meta, plots, run.claims_frame(),
                                      units_frame(run))
    if comparison:
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(comparison)
    run.write("report.md", markdown)
    title = f"Pod network report: {meta.get('topology', {}).get('name', '')}"
    run.write("report.html", render_html(markdown, run.read, title))
    meta["files"] = [name for name in run.listdir() if not name.startswith(".")]
    meta["rows"] = len(df)
    meta["claims"] = {c: row["verdict"] for c, row in run.claims.items()}
    run.write_json("metadata.json", meta)


if __name__ == "__main__":
    sys.exit(main())
