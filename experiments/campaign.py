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
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from testbed.errors import SpecError, UsageError
from testbed.kernel.files import write_whole
from testbed.model.load import parse_spec
from testbed.pods.wiring import CHOICES
from testbed.results import metadata
from testbed.results.rundir import RunDir, give_to_invoking_user, output_directory
from testbed.results.stats import paired_ratios

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
        out = Path(__file__).resolve().parent.parent / "results" / \
            f"campaign-{campaign.name}-{stamp}"
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


# -- across points -------------------------------------------------------------------------

def tidy(state: Mapping[str, Any]) -> pd.DataFrame:
    """Every point's measurements, with a column per swept parameter and the point's id."""
    frames = []
    for p in state["points"]:
        if not p.get("run"):
            continue
        csv = Path(p["run"]) / "measurements.csv"
        if not csv.exists():
            continue
        df = pd.read_csv(csv)
        df.insert(0, "point", p["id"])
        for i, key in enumerate(state["sweep"]):
            df.insert(1 + i, key, p["values"][key])
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def ratios(state: Mapping[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """Paired ratios to node-node, per point."""
    frames = []
    for point_id, g in df.groupby("point", sort=False) if len(df) else []:
        r = paired_ratios(g[g["metric"] != "error"])
        if len(r):
            for key in reversed(state["sweep"]):
                r.insert(0, key, g[key].iloc[0])
            r.insert(0, "point", point_id)
            frames.append(r)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rate_binding(df: pd.DataFrame) -> pd.DataFrame:
    """With `links.rate_mbit` swept: node-node throughput against the configured rate
    (where the rate binds, HTB should hold TCP within a few % of it)."""
    key = "links.rate_mbit"
    if key not in df.columns or not len(df):
        return pd.DataFrame()
    nn = df[(df["metric"] == "throughput_bps") & (df["path"] == "node-node")]
    others = [c for c in df.columns[1:df.columns.get_loc("experiment")] if c != key]
    rows = []
    for values, g in nn.groupby([key, *others], sort=False):
        values = values if isinstance(values, tuple) else (values,)
        rate = float(values[0])
        median = float(g["value"].median()) / 1e6
        rows.append({key: rate, **dict(zip(others, values[1:])), "runs": len(g),
                     "node-node median Mbit/s": round(median, 2),
                     "of the rate": round(median / rate, 3)})
    return pd.DataFrame(rows)


def plot_png(df: pd.DataFrame, param: str, sweep: Sequence[str]) -> bytes | None:
    """Throughput (and RTT where measured) per path class against one swept parameter;
    a line per path class and combination of the other swept parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.results.plots import figure_png

    metrics = [(m, label, scale) for m, label, scale in (
        ("throughput_bps", "throughput (Mbit/s)", 1e6), ("rtt_avg_ms", "RTT (ms)", 1.0))
        if len(df) and (df["metric"] == m).any()]
    if not metrics:
        return None
    others = [k for k in sweep if k != param]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8),
                             squeeze=False)
    for ax, (metric, label, scale) in zip(axes[0], metrics):
        rows = df[df["metric"] == metric]
        groups = rows.groupby(["path", *others], sort=False)
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            med = g.groupby(param, sort=True)["value"].median() / scale
            name = key[0] + "".join(f", {o}={v}" for o, v in zip(others, key[1:]))
            ax.plot([str(x) for x in med.index] if med.index.dtype == object else med.index,
                    med.values, marker="o", label=name)
        if param == "links.rate_mbit" and metric == "throughput_bps":
            xs = sorted(df[param].unique())
            ax.plot(xs, xs, "k--", linewidth=0.8, label="the configured rate")
        values = rows["value"] / scale
        if len(values) and values.min() > 0 and values.max() / values.min() > 20:
            ax.set_yscale("log")  # shaped and unshaped paths differ by orders
        xs = pd.to_numeric(pd.Series(df[param].unique()), errors="coerce")
        if xs.notna().all() and xs.min() > 0 and xs.max() / xs.min() >= 4:
            ax.set_xscale("log")
            ax.set_xticks(sorted(xs), [f"{x:g}" for x in sorted(xs)])
            ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel(param)
        ax.set_ylabel(label)
        ax.set_title(f"{label} against {param} (medians)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure_png(fig)


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


def _fidelity(run: str | None) -> str:
    if not run:
        return "-"
    try:
        meta = metadata.read(Path(run))
    except (OSError, ValueError):
        return "-"
    return str((meta.fidelity or {}).get("verdict", "-"))


def markdown(state: Mapping[str, Any], df: pd.DataFrame, r: pd.DataFrame,
             plots: Sequence[str]) -> str:
    points = pd.DataFrame([{"point": p["id"], **p["values"], "status": p["status"],
                            "fidelity": _fidelity(p.get("run")),
                            "run": Path(p["run"]).name if p.get("run") else "-"}
                           for p in state["points"]])
    lines = [f"# Campaign {state['name']}", "",
             f"From `{state['source']}`: {len(state['points'])} point(s) so far, sweeping "
             + ", ".join(f"`{k}`" for k in state["sweep"]) + ".", "",
             points.to_markdown(index=False) if len(points) else "(no point yet)", ""]
    binding = rate_binding(df)
    if len(binding):
        lines += ["## Where the rate binds", "",
                  "node-node TCP against the configured uplink rate (HTB on both ends):",
                  "", binding.to_markdown(index=False), ""]
    if len(r):
        show = r.copy()
        show["95% CI"] = [f"{lo:.3f} .. {hi:.3f}" if not math.isnan(lo) else ""
                          for lo, hi in zip(show.pop("ci95_low"), show.pop("ci95_high"))]
        lines += ["## Paired ratios to node-node, per point", "",
                  show.drop(columns=["baseline"]).round(3).to_markdown(index=False), ""]
    lines += [f"![{p}]({p})\n" for p in plots]
    lines += ["Files: `campaign.csv` (every measurement, a column per swept parameter), "
              "`campaign_ratios.csv`, `campaign.json` (the points and their runs), "
              "`points/<id>/` (each point's topology and run).", ""]
    return "\n".join(lines)
