"""The fidelity of a run's measurements, written beside them (issues 13, 23).

    fidelity.csv           one row a measured unit (UNIT_COLUMNS): the unit's key as in
                           measurements.csv (experiment, repeat, src, dst; a claim's name
                           for a claim), its window, its verdict (ok, suspect, unknown),
                           the reasons and the figures they rest on (foreign CPU in
                           cores: the mean, the busiest slice, the part seen in named
                           processes; steal: mean and busiest slice); rewritten
                           atomically as each unit finishes (a run from before issue 23
                           has fewer figures: read, they are blank)
    fidelity_samples.csv   tidy samples (SAMPLE_COLUMNS): seconds since the run started,
                           metric, value, one row a metric a sample interval
    metadata.json          "fidelity": {"verdict": "ok" | "suspect", "reasons": [...],
                           "thresholds": {...}}
    claims.csv             each claim's `fidelity`: its window's, in one cell (`summary`)

A unit's window runs from the end of the previous unit (or the start of the experiment)
to the moment its rows are written, so it covers everything the unit did; the monitor
(testbed.measure.fidelity) takes a snapshot at both ends, so no window goes unsampled.
A resumed run keeps the units of the runs before it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from testbed.measure.fidelity import SUSPECT, Judgement, Monitor, judge, judge_run, summary
from testbed.results.rundir import RunDir

UNITS_FILE = "fidelity.csv"
SAMPLES_FILE = "fidelity_samples.csv"
FIGURES = ("foreign_cpu", "foreign_cpu_peak", "foreign_seen_cpu", "foreign_runnable",
           "steal_pct", "steal_pct_peak", "softirq_max_pct", "busy_pct", "procs_running",
           "cores")
UNIT_COLUMNS = ["experiment", "repeat", "src", "dst", "label", "start_s", "end_s",
                "verdict", "reasons", "codes", "samples", *FIGURES]
# fidelity.csv as runs before issue 23 wrote it (read, for reports and resumes)
LEGACY_FIGURES = ("foreign_cpu", "foreign_runnable", "steal_pct", "softirq_max_pct",
                  "busy_pct", "procs_running")
LEGACY_UNIT_COLUMNS = [*UNIT_COLUMNS[:UNIT_COLUMNS.index("samples") + 1], *LEGACY_FIGURES]
SAMPLE_COLUMNS = ["start_s", "end_s", "metric", "value"]


class FidelityLog:
    """Judges each unit of a run as it finishes, from the monitor's samples."""

    def __init__(self, run: RunDir, monitor: Monitor) -> None:
        self.run = run
        self.monitor = monitor
        self.origin = monitor.mark()  # the run's time zero for the samples' columns
        self.units: list[dict[str, Any]] = _load(run)
        self._since = self.origin

    def begin(self) -> None:
        """A new experiment starts: its first unit's window opens now."""
        self._since = self.monitor.mark()

    def unit(self, label: str, keys: Iterable[tuple[str, int, str, str]],
             suspect: Iterable[tuple[str, str]] = ()) -> str:
        """A unit finished (its rows, or a claim's verdict, just written): judge its window,
        with what the experiment itself found suspect (code, words), and record it under
        each key; returns the verdict."""
        end = self.monitor.mark()
        judgement = with_findings(judge(self.monitor.window(self._since, end)), suspect)
        for experiment, repeat, src, dst in dict.fromkeys(keys):
            self.units = [u for u in self.units if (u["experiment"], int(u["repeat"]),
                                                    u["src"], u["dst"]) !=
                          (experiment, repeat, src, dst)]
            self.units.append({
                "experiment": experiment, "repeat": repeat, "src": src, "dst": dst,
                "label": label, "start_s": round(self._since - self.origin, 3),
                "end_s": round(end - self.origin, 3), "verdict": judgement.verdict,
                "reasons": "; ".join(judgement.reasons), "codes": ",".join(judgement.codes),
                "samples": int(judgement.figures.get("samples", 0)),
                **{f: round(float(judgement.figures.get(f, float("nan"))), 3)
                   for f in FIGURES}})
        self._since = end
        self.run.write_csv(UNITS_FILE, pd.DataFrame(self.units, columns=UNIT_COLUMNS))
        return judgement.verdict

    def last(self) -> str:
        """The last unit's fidelity in one cell (claims.csv's `fidelity`): `ok`, or
        "suspect: <reasons>", "unknown: <reasons>"."""
        return summary(self.units[-1]) if self.units else "unknown: not monitored"

    def finish(self) -> dict[str, Any]:
        """Write the samples; the run's verdict (for metadata.json)."""
        self.monitor.mark()
        rows = [{"start_s": round(s.start - self.origin, 3),
                 "end_s": round(s.end - self.origin, 3), "metric": m, "value": round(v, 4)}
                for s in self.monitor.samples if s.end > self.origin
                for m, v in s.metrics().items()]
        self.run.write_csv(SAMPLES_FILE, pd.DataFrame(rows, columns=SAMPLE_COLUMNS))
        return verdict(self.units)


def with_findings(judgement: Judgement, suspect: Iterable[tuple[str, str]]) -> Judgement:
    """A window's judgement with an experiment's own findings added (suspect if any)."""
    found = list(suspect)
    if not found:
        return judgement
    return Judgement(SUSPECT, (*judgement.reasons, *(t for _, t in found)),
                     (*judgement.codes, *(c for c, _ in found)), judgement.figures)


def verdict(units: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's verdict from its units (see testbed.measure.fidelity.judge_run)."""
    return judge_run(list(units))


def _load(run: RunDir) -> list[dict[str, Any]]:
    """The units an earlier, interrupted part of this run judged (kept on resume)."""
    data = run.read(UNITS_FILE)
    if not data:
        return []
    try:
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=str)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return []  # not ours to trust: the units are judged again as they run
    if list(frame.columns) not in (UNIT_COLUMNS, LEGACY_UNIT_COLUMNS):
        return []
    return frame.reindex(columns=UNIT_COLUMNS, fill_value="").to_dict("records")


def units_frame(run: RunDir) -> pd.DataFrame:
    """fidelity.csv as a table (empty if the run has none)."""
    return pd.DataFrame(_load(run), columns=UNIT_COLUMNS)
