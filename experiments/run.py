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
import json
import shlex
import socket
import time
import traceback
from typing import Any

import pandas as pd

from experiments import REGISTRY, Context, Params, claims, docker0_collision
from testbed.cluster import Cluster, preflight
from testbed.errors import SpecError, TestbedError
from testbed.kernel import procs
from testbed.kernel.procs import signals_deferred
from testbed.model.load import load_spec, parse_spec
from testbed.results import report
from testbed.results.html import render_html
from testbed.results.progress import Reporter
from testbed.results.provenance import environment_info, git_info
from testbed.results.rundir import FORMAT_VERSION, RunDir, atomic_write, give_to_invoking_user

DEFAULT_TOPOLOGY = ROOT / "topologies" / "two-node.yaml"
DEFAULT_OUT = ROOT / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="experiments/run.py",
        description="Measure reachability, latency, hops and throughput along every path "
                    "class of an emulated kubenet cluster, and write a report.")
    ap.add_argument("--topology", type=Path, default=None,
                    help="cluster topology YAML (default: topologies/two-node.yaml)")
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for run directories (default: results/)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions of each measurement (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer pings, 1 s iperf3 runs, one repeat: a smoke test in ~20 s")
    ap.add_argument("--experiment", choices=["all", *REGISTRY], default=None,
                    help="run one experiment instead of the whole suite")
    ap.add_argument("--duration", type=int, default=None,
                    help="whole seconds per iperf3 run (default 3; 1 with --quick)")
    ap.add_argument("--resume", type=Path, metavar="RUN_DIR",
                    help="complete an interrupted run: only what it is missing, with its "
                         "own topology and parameters")
    ap.add_argument("--wiring", choices=["cni", "fast"], default=None,
                    help="pod wiring: real CNI plugins (default) or the netlink fast path")
    ap.add_argument("--no-progress", action="store_true", help="no progress display")
    args = ap.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.duration is not None and args.duration < 1:
        ap.error("--duration must be at least 1")
    if args.resume is not None:
        clash = [name for name in ("topology", "out", "repeat", "experiment", "duration",
                                   "wiring")
                 if getattr(args, name) is not None] + (["quick"] if args.quick else [])
        if clash:
            ap.error("--resume takes the topology and parameters from the run's metadata; "
                     f"drop --{', --'.join(clash)}")
    return args


def make_params(args: argparse.Namespace) -> Params:
    params = Params.quick(args.repeat) if args.quick else Params(repeat=args.repeat or 3)
    if args.duration is not None:
        params = Params(**{**params.to_dict(), "iperf_duration_s": args.duration})
    return params


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Refused(Exception):
    """Input the run cannot start from: one line on stderr, exit status 2."""


def load_for_resume(path: Path) -> tuple[RunDir, dict[str, Any]]:
    """An earlier run's directory, its metadata and the measurements it finished."""
    meta_file = path / "metadata.json"
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise Refused(f"--resume {path}: no metadata.json there (not a run directory)") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"--resume {meta_file}: not valid JSON ({exc})") from None
    owner = meta.get("owner") or {}
    if meta.get("status") == "running" and owner.get("pid") and procs.is_alive(
            int(owner["pid"]), owner.get("started")):
        raise Refused(f"--resume {path}: that run is still in progress (pid {owner['pid']})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise Refused(f"--resume {path}: written by another format version "
                      f"({meta.get('format_version')}, this is {FORMAT_VERSION})")
    run = RunDir(path)
    csv = path / "measurements.csv"
    if csv.exists():
        frame = pd.read_csv(csv, keep_default_na=False)
        run.rows = frame.to_dict("records")
    claims_csv = path / "claims.csv"
    if claims_csv.exists():
        frame = pd.read_csv(claims_csv, keep_default_na=False, dtype=str)
        run.claims = {row["claim"]: row for row in frame.to_dict("records")}
    return run, meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["sudo", "python3", "experiments/run.py",
                          *(argv if argv is not None else sys.argv[1:])])
    try:
        if args.resume is not None:
            run, meta = load_for_resume(args.resume)
            if meta.get("status") == "complete":
                print(f"{args.resume}: already complete, nothing to do")
                return 0
            spec = parse_spec(meta["topology"], source=str(args.resume / "metadata.json"))
            params = Params(**meta["parameters"])
            selected = list(meta["experiments"])
            wiring = meta.get("wiring", "cni")
            unknown = [name for name in selected if name not in REGISTRY]
            if unknown:
                raise Refused(f"--resume {args.resume}: unknown experiment(s) {unknown}")
        else:
            topology = args.topology or DEFAULT_TOPOLOGY
            spec = load_spec(topology)
            params = make_params(args)
            selected = (list(REGISTRY) if args.experiment in (None, "all")
                        else [args.experiment])
            wiring = args.wiring or "cni"
    except (SpecError, Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        preflight.check_all()  # before anything is written: not root, or a tool missing
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM always tear down and keep the data.
    procs.install_interrupt_handlers()

    started = time.time()
    if args.resume is not None:
        meta.setdefault("resumed", []).append({"utc": _utc(started), "command": command,
                                               "rows_before": len(run.rows)})
    else:
        run = RunDir.create(args.out or DEFAULT_OUT, spec.name)
        meta = {
            "format_version": FORMAT_VERSION,
            "run_id": run.run_id,
            "started_utc": _utc(started),
            "command": command,
            "experiments": selected,
            "wiring": wiring,
            "parameters": params.to_dict(),
            "topology_file": str(args.topology or DEFAULT_TOPOLOGY),
            "topology": spec.to_dict(),
            "host": socket.gethostname(),
            "git": git_info(ROOT),
            "environment": environment_info(),
        }
    run.claim_order = list(claims.CLAIMS)
    meta.update(status="running", complete=False,
                owner={"pid": os.getpid(), "started": procs.start_time(os.getpid())})
    meta.pop("error", None)
    meta.pop("traceback", None)
    run.write_json("metadata.json", meta)
    done = {(r["experiment"], int(r["repeat"]), r["src"], r["dst"]) for r in run.rows}
    status, code = "complete", 0
    with Reporter(enabled=not args.no_progress) as progress:
        progress.note(f"run {run.run_id}: topology {spec.name}"
                      + (f", resuming with {len(run.rows)} rows kept" if done else ""))
        shared = [n for n in selected if not getattr(REGISTRY[n], "STANDALONE", False)]
        alone = [n for n in selected if n not in shared]
        try:
            if shared:
                with Cluster(spec, progress=progress.note, wiring=wiring) as cluster:
                    meta.update(_cluster_meta(cluster))
                    run.write_json("metadata.json", meta)
                    ctx = Context(cluster, run, params, progress, done)
                    progress.set_total(sum(REGISTRY[name].steps(ctx) for name in shared)
                                       + len(alone))
                    for name in shared:
                        run_experiment(ctx, name)
                        procs.check_interrupted()
                meta["teardown_s"] = round(cluster.timings.get("down_s", 0.0), 3)
            else:
                progress.set_total(len(alone))
            for name in alone:  # each brings up (and down) clusters of its own
                run_standalone(name, spec, run, params, progress)
                procs.check_interrupted()
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
            finished = time.time()
            meta.update(status=status, complete=status == "complete",
                        finished_utc=_utc(finished), duration_s=round(finished - started, 1))
            with signals_deferred():  # a second Ctrl-C must not leave half a report
                write_report(run, meta)
                give_to_invoking_user(run.path)
    if code == 0:
        print(f"report: {run.path / 'report.md'}")
    else:
        print(f"error: {meta.get('error')}\npartial results: {run.path}", file=sys.stderr)
    return code


def _judged(run: RunDir, name: str) -> bool:
    return run.claims.get(name, {}).get("verdict") in ("confirmed", "refuted")


def run_standalone(name: str, spec: Any, run: RunDir, params: Params,
                   progress: Reporter) -> None:
    """A claim that needs clusters of its own (another layout); failures -> `error`."""
    if _judged(run, name):
        progress.step(f"claim {name} (kept from before)")
        return
    try:
        REGISTRY[name].run_standalone(spec, run, params, progress)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the claim's `error`
        result = claims.error(name, f"{type(exc).__name__}: {exc}")
        run.add_claim(result.row())
        progress.note(f"claim {name}: ERROR: {result.evidence}")
        progress.step(f"claim {name}")


def run_experiment(ctx: Context, name: str) -> None:
    """Run one experiment. A claim that cannot run gets the verdict `error` with the reason
    (never a silent pass) and the suite goes on; a claim already judged (resume) is kept."""
    module = REGISTRY[name]
    if getattr(module, "KIND", "") != "claim":
        module.run(ctx)
        return
    if _judged(ctx.run, name):
        ctx.progress.step(f"claim {name} (kept from before)")
        return
    try:
        module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the claim's `error`
        ctx.claim(claims.error(name, f"{type(exc).__name__}: {exc}"))
        ctx.progress.step(f"claim {name}")


def _cluster_meta(cluster: Cluster) -> dict[str, Any]:
    plan = cluster.plan
    return {
        "address_plan": {
            "underlay": str(plan.underlay),
            "router": str(plan.router_ip),
            "cluster_cidr": str(plan.cluster_cidr),
            "nodes": [{"node": n.name, "underlay_ip": str(n.underlay_ip),
                       "pod_cidr": str(n.pod_cidr), "cbr0": str(n.bridge_ip),
                       "mtu": cluster.mtu.get(n.name)} for n in plan.nodes],
        },
        "pod_wiring": cluster.wiring_name,
        "pods": cluster.describe(),
        "router_routes": [f"{r['dst']} via {r.get('gateway')} proto {r.get('protocol')}"
                          for r in cluster.router_routes()],
        "cluster_timings_s": {k: round(v, 3) for k, v in cluster.timings.items()},
    }


def write_report(run: RunDir, meta: dict[str, Any]) -> None:
    """Summary, plots, report and metadata from whatever was measured (even a partial run)."""
    df = run.frame()
    summary = report.summarize(df)
    run.write_csv("summary.csv", summary)
    plots = []
    for name, metric, scale, label, title in (
        ("throughput.png", "throughput_bps", 1e9, "Gbit/s",
         "TCP throughput by path class (mean, 95 % CI)"),
        ("rtt.png", "rtt_avg_ms", 1.0, "ms", "Average ping RTT by path class (mean, 95 % CI)"),
    ):
        png = report.plot_png(summary, metric, scale, label, title)
        if png is not None:
            atomic_write(run.path / name, png)
            plots.append(name)
    if (run.path / docker0_collision.HEATMAP).exists():  # drawn by that claim
        plots.append(docker0_collision.HEATMAP)
    claims_table = claims.claims_frame(run.claims.values())
    markdown = report.render_markdown(df, summary, meta, plots, claims_table)
    atomic_write(run.path / "report.md", markdown)
    title = f"Pod network report: {meta.get('topology', {}).get('name', '')}"
    atomic_write(run.path / "report.html", render_html(markdown, run.path, title))
    meta["files"] = sorted(p.name for p in run.path.iterdir() if not p.name.startswith("."))
    meta["rows"] = len(df)
    meta["claims"] = {c: row["verdict"] for c, row in run.claims.items()}
    run.write_json("metadata.json", meta)


if __name__ == "__main__":
    sys.exit(main())
