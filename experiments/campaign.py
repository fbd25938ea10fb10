"""Campaigns (issue 13): one file sweeps topologies' settings and run parameters; every
point is a run of its own (a run directory each), and one tidy table and plots go across
them all.

    sudo .venv/bin/python experiments/run.py --campaign campaigns/uplink-rate.yaml
    sudo .venv/bin/python experiments/run.py --campaign campaigns/uplink-rate.yaml \\
        --out results/campaign-uplink-rate-20261127-093000     # resume: the rest only

A campaign file:

    name: uplink-rate
    topology: ../topologies/two-node.yaml   # relative to the campaign file
    experiment: throughput                  # optional; default: the whole suite
    repeat: 3                               # optional: repeat, duration, quick
    sweep:                                  # every combination, in file order
      links.rate_mbit: [25, 50, 100]        # a path into the topology document
      wiring: [cni, fast]                   # or a run parameter: wiring, repeat, duration

A path's parts are mapping keys, or `*` for every element of a list (`nodes.*.pods: [2,
4]` gives every node that many pods). Each point's topology is written into its own
directory and validated before anything runs: a point that cannot be built stops the
campaign before the first run.

The campaign directory holds `campaign.json` (the file as read, the points, each one's
run directory and status), `points/<id>/` (its topology and its run), and, rewritten
after every point: `campaign.csv` (every point's measurements, a column per swept
parameter), `campaign_ratios.csv` (paired ratios per point), `campaign.md` and one plot
per swept parameter (`campaign_<parameter>.png`). Running the same campaign with `--out`
its directory again runs only the points not complete (an interrupted point is resumed
from its own run directory).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.campaign_report import markdown, plot_png, ratios, tidy
from experiments.framework.paths import RESULTS
from testbed.errors import SpecError, UsageError
from testbed.kernel.files import write_whole
from testbed.model.load import parse_spec
from testbed.pods.wiring import CHOICES
from testbed.results import metadata
from testbed.results.rundir import RunDir, give_to_invoking_user, output_directory

RUN_PARAMETERS = {"wiring", "repeat", "duration"}
KEYS = {"name", "description", "topology", "experiment", "repeat", "duration", "quick",
        "sweep"}
MAX_POINTS = 200
STATE = "campaign.json"
RUN_PY = Path(__file__).resolve().parent / "run.py"


@dataclass(frozen=True)
class Point:
    """One combination of the swept values."""

    index: int
    values: tuple[tuple[str, Any], ...]  # (parameter, value), in the file's order

    @property
    def id(self) -> str:
        parts = [f"{k.split('.')[-1] if k != 'nodes.*.pods' else 'pods'}={v}"
                 for k, v in self.values]
        return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", f"p{self.index:02d}-" + "-".join(parts))


@dataclass(frozen=True)
class Campaign:
    """A campaign file, validated."""

    name: str
    source: Path
    topology: dict[str, Any]  # the document, as loaded
    sweep: tuple[tuple[str, tuple[Any, ...]], ...]
    experiment: str | None = None
    run: dict[str, Any] = field(default_factory=dict)  # repeat, duration, quick

    def points(self) -> list[Point]:
        names = [k for k, _ in self.sweep]
        combos = itertools.product(*(values for _, values in self.sweep))
        return [Point(i, tuple(zip(names, combo))) for i, combo in enumerate(combos, 1)]


def _fail(source: Path, where: str, problem: str) -> SpecError:
    return SpecError(str(source), where, problem)


def load(path: Path) -> Campaign:
    """Read and check a campaign file and every point's topology (SpecError if any
    cannot be built)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--campaign {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise _fail(path, "(top level)", "must be a mapping")
    unknown = sorted(set(map(str, doc)) - KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key; allowed: {', '.join(sorted(KEYS))}")
    for key in ("name", "topology", "sweep"):
        if key not in doc:
            raise _fail(path, key, "is required")
    if not isinstance(doc["name"], str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,40}",
                                                             doc["name"]):
        raise _fail(path, "name", "lower-case letters, digits and '-', at most 41")
    topo_path = (path.parent / str(doc["topology"])).resolve()
    try:
        topology = yaml.safe_load(topo_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(path, "topology", f"{topo_path}: {exc}") from None
    sweep = doc["sweep"]
    if not isinstance(sweep, dict) or not sweep:
        raise _fail(path, "sweep", "must map parameters to lists of values")
    items: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise _fail(path, f"sweep.{key}", "must be a non-empty list of values")
        if len(set(map(repr, values))) != len(values):
            raise _fail(path, f"sweep.{key}", "names a value twice")
        if key == "wiring" and any(v not in CHOICES for v in values):
            raise _fail(path, "sweep.wiring", f"values must be among {', '.join(CHOICES)}")
        if key in ("repeat", "duration") and any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise _fail(path, f"sweep.{key}", "values must be whole numbers >= 1")
        items.append((str(key), tuple(values)))
    run = {k: doc[k] for k in ("repeat", "duration", "quick") if k in doc}
    experiment = doc.get("experiment")
    campaign = Campaign(doc["name"], path, topology, tuple(items),
                        str(experiment) if experiment else None, run)
    points = campaign.points()
    if len(points) > MAX_POINTS:
        raise _fail(path, "sweep", f"{len(points)} points; at most {MAX_POINTS}")
    for point in points:  # every point's topology valid before anything runs
        try:
            parse_spec(topology_of(campaign, point), source=f"{path} ({point.id})")
        except (KeyError, IndexError, TypeError) as exc:
            raise _fail(path, f"sweep ({point.id})", f"cannot apply: {exc}") from None
    return campaign


def _set(doc: Any, parts: Sequence[str], value: Any) -> None:
    """Set a dotted path in a document; `*` stands for every element of a list; missing
    mappings on the way are made."""
    head, rest = parts[0], parts[1:]
    if head == "*":
        if not isinstance(doc, list) or not rest:
            raise TypeError("'*' stands for a list's elements, inside a path")
        for item in doc:
            _set(item, rest, value)
        return
    if not isinstance(doc, dict):
        raise TypeError(f"{head!r} needs a mapping, found {type(doc).__name__}")
    if not rest:
        doc[head] = value
        return
    doc.setdefault(head, {})
    _set(doc[head], rest, value)


def topology_of(campaign: Campaign, point: Point) -> dict[str, Any]:
    """The point's topology document: the campaign's, its swept paths set, named for the
    point (so its run directory says which)."""
    doc = copy.deepcopy(campaign.topology)
    for key, value in point.values:
        if key not in RUN_PARAMETERS:
            _set(doc, key.split("."), value)
    return doc


def run_argv(campaign: Campaign, point: Point, topology: Path, out: Path) -> list[str]:
    """experiments/run.py for one point."""
    values = dict(point.values)
    argv = [sys.executable, str(RUN_PY), "--topology", str(topology), "--out", str(out)]
    if campaign.experiment:
        argv += ["--experiment", campaign.experiment]
    if campaign.run.get("quick"):
        argv.append("--quick")
    for key, option in (("repeat", "--repeat"), ("duration", "--duration")):
        value = values.get(key, campaign.run.get(key))
        if value is not None:
            argv += [option, str(value)]
    if "wiring" in values:
        argv += ["--wiring", str(values["wiring"])]
    return argv


# -- running -----------------------------------------------------------------------------

def _run_dir(point_dir: Path) -> Path | None:
    runs = sorted(p for p in point_dir.iterdir() if p.is_dir()) if point_dir.exists() else []
    return runs[-1] if runs else None


def _status(run_dir: Path | None) -> str:
    if run_dir is None:
        return "not started"
    try:
        meta = metadata.read(run_dir)
    except (OSError, ValueError):
        return "not started"
    return str(meta.status if meta.status is not None else "unknown")


def execute(campaign: Campaign, out: Path | None, say: Any = print) -> tuple[Path, int]:
    """Run every point not complete yet; the campaign directory and an exit status (0:
    every point complete)."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = RESULTS / f"campaign-{campaign.name}-{stamp}"
    output_directory(out)  # made if missing; under sudo, only root's or the user's
    state_file = out / STATE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("name") != campaign.name:
            raise UsageError(f"{out} holds campaign {state.get('name')!r}, not "
                             f"{campaign.name!r}")
    points = campaign.points()
    state = {"name": campaign.name, "source": str(campaign.source),
             "campaign": yaml.safe_load(campaign.source.read_text()),
             "sweep": [k for k, _ in campaign.sweep], "points": []}
    code = 0
    for n, point in enumerate(points, 1):
        point_dir = out / "points" / point.id
        point_dir.mkdir(parents=True, exist_ok=True)
        run_dir = _run_dir(point_dir)
        status = _status(run_dir)
        label = ", ".join(f"{k}={v}" for k, v in point.values)
        if status == "complete":
            say(f"campaign {campaign.name}: point {n}/{len(points)} ({label}): complete, kept")
        else:
            topo = point_dir / "topology.yaml"
            write_whole(topo, yaml.safe_dump(topology_of(campaign, point), sort_keys=False))
            if run_dir is not None and status in ("interrupted", "failed", "running"):
                argv = [sys.executable, str(RUN_PY), "--resume", str(run_dir)]
            else:
                argv = run_argv(campaign, point, topo, point_dir)
            say(f"campaign {campaign.name}: point {n}/{len(points)} ({label})")
            returncode = _run_point(argv)
            run_dir = _run_dir(point_dir)
            status = _status(run_dir)
            if returncode != 0:
                code = returncode
        state["points"].append({"id": point.id, "values": dict(point.values),
                                "run": str(run_dir) if run_dir else None, "status": status})
        write_whole(state_file, json.dumps(state, indent=2, default=str) + "\n")
        write_outputs(out, state)
        if code == 130:  # interrupted: stop; the same command resumes
            break
    held = RunDir.open(out)
    give_to_invoking_user(held)  # under sudo, the campaign directory is the user's
    held.close()
    return out, code


def _run_point(argv: list[str]) -> int:
    """One point's run, waited for whatever happens. On Ctrl-C or SIGTERM (the runner
    installs handlers that raise KeyboardInterrupt) the run is asked to stop as Ctrl-C
    asks it, and waited for while it tears down and keeps what it measured; never killed
    (subprocess.run would kill it a quarter second into its teardown). Returns 130 then."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # a SIGTERM to us alone: pass it on
        while True:
            try:
                proc.wait()
                return 130
            except KeyboardInterrupt:  # again: it is tearing down already
                continue


# -- across points: the outputs (their content is campaign_report.py's) ---------------------

def write_outputs(out: Path, state: Mapping[str, Any]) -> None:
    """campaign.csv, campaign_ratios.csv, the plots and campaign.md, from what finished."""
    df = tidy(state)
    if len(df):
        write_whole(out / "campaign.csv", df.to_csv(index=False))
    r = ratios(state, df)
    if len(r):
        write_whole(out / "campaign_ratios.csv", r.to_csv(index=False))
    plots = []
    for param in state["sweep"]:
        png = plot_png(df, param, state["sweep"]) if len(df) else None
        if png is not None:
            name = "campaign_" + re.sub(r"[^A-Za-z0-9]+", "_", param).strip("_") + ".png"
            write_whole(out / name, png)
            plots.append(name)
    write_whole(out / "campaign.md", markdown(state, df, r, plots))
