#!/usr/bin/env python3
"""Run the default experiment suite on a cluster and write a report.

    sudo make run                                   # set-up, then this with defaults
    sudo .venv/bin/python experiments/run.py --quick
    sudo python3 experiments/run.py --topology topologies/four-node.yaml --repeat 5

Writes results/<run-id>/ (measurements.csv, summary.csv, report.md, plots, metadata.json,
raw/) and prints the report's path. Started with the system Python, it re-executes itself
inside the project's environment (.venv), which holds its dependencies. This file is the
command line; the run itself is experiments/session.py's.
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

from experiments import session
from experiments.framework.base import COMPARABLE
from experiments.registry import REGISTRY
from testbed.pods.wiring import CHOICES

# options a campaign's file or a resumed run's metadata gives instead
CAMPAIGN_GIVES = ("topology", "repeat", "experiment", "duration", "wiring", "modes", "resume")
RESUME_GIVES = ("topology", "out", "repeat", "experiment", "duration", "wiring", "modes",
                "target_ci", "budget")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="experiments/run.py",
        description="Measure reachability, latency, hops and throughput along every path "
                    "class of an emulated cluster, judge the article's claims, and write a "
                    "report.")
    add = ap.add_argument
    add("--topology", type=Path, default=None,
        help="cluster topology YAML (default: topologies/two-node.yaml)")
    add("--out", type=Path, default=None, help="directory for run directories (default: results/)")
    add("--repeat", type=int, default=None,
        help="repetitions of each measurement (default 3; 1 with --quick)")
    add("--quick", action="store_true",
        help="fewer pings, 1 s iperf3 runs, one repeat: every experiment and claim once (~3 min)")
    add("--experiment", type=session.experiment_names, default=None, metavar="NAME[,NAME...]",
        help="run these experiments (in the suite's order) instead of the whole suite: all, "
             f"or names among {', '.join(REGISTRY)}")
    add("--duration", type=int, default=None,
        help="whole seconds per iperf3 run (default 3; 1 with --quick)")
    add("--resume", type=Path, metavar="RUN_DIR",
        help="complete an interrupted run: only what it is missing, with its own topology "
             "and parameters")
    add("--wiring", choices=list(CHOICES), default=None,
        help="pod wiring: real CNI plugins (default) or the netlink fast path")
    add("--modes", type=session.mode_names, default=None, metavar="MODE,MODE...",
        help=f"the pod networks pod-network-comparison builds (default: {', '.join(COMPARABLE)})")
    add("--target-ci", type=float, default=None, metavar="WIDTH",
        help="throughput: after --repeat rounds, more rounds until every path's paired-ratio "
             "95%% interval is at most WIDTH of its median (e.g. 0.1), or --budget runs out")
    add("--budget", type=float, default=None, metavar="SECONDS",
        help="with --target-ci: the most seconds of extra rounds (default 300)")
    add("--campaign", type=Path, metavar="FILE",
        help="run every point of a campaign file (experiments/campaign.py), each a run of its "
             "own; with --out a campaign directory, only the points not complete")
    add("--no-pin", action="store_true",
        help="let iperf3's client and server run on any CPU (default: the client on the "
             "first CPU, the server on the second)")
    add("--no-progress", action="store_true", help="no progress display")
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
    given = [name for name in CAMPAIGN_GIVES if getattr(args, name) is not None]
    if args.campaign is not None and (given or args.quick):
        ap.error("--campaign takes the topology and parameters from its file; drop --"
                 + ", --".join(given + (["quick"] if args.quick else [])))
    given = [name for name in RESUME_GIVES if getattr(args, name) is not None] + (
        ["quick"] if args.quick else []) + (["no-pin"] if args.no_pin else [])
    if args.resume is not None and given:
        ap.error("--resume takes the topology and parameters from the run's metadata; "
                 f"drop --{', --'.join(given)}")
    return args


def main(argv: list[str] | None = None) -> int:
    return session.main(parse_args(argv), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
