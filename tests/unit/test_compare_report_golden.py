"""`testbed compare`'s Markdown, whole, against stored copies (tests/unit/golden/compare_*.md):
every heading, blank line, table and sentence a reader gets, in three situations (a verdict
changed and A was suspect; the same within the margin; both suspect, with rounds left out).
Mutation testing found that checking a few phrases left most of the page unpinned.

After a change meant to alter the page: `REGEN_GOLDEN=1 .venv/bin/pytest
tests/unit/test_compare_report_golden.py`, read the diff, commit it with the change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from testbed.results import compare, compare_report
from testbed.results.fidelity import UNIT_COLUMNS
from testbed.results.rundir import RunDir

from .test_compare_runs import STEADY, make_run

GOLDEN = Path(__file__).parent / "golden"


def load(path: Path, clean_rounds: bool = False) -> compare.Run:
    return compare.Run.load(RunDir.open(path), clean_rounds)


def page(runs: list[compare.Run], **kwargs) -> str:
    return compare_report.markdown(runs, **kwargs)


def named(path: Path) -> Path:
    """The run directory under a stable name (its parent's: a, b, ...), not the time."""
    return path.rename(path.parent.parent / f"run-{path.parent.name}")


def fidelity_units(path: Path, bad_rounds: range, rounds: int = 8) -> None:
    rows = []
    for r in range(1, rounds + 1):
        bad = r in bad_rounds
        rows.append({**dict.fromkeys(UNIT_COLUMNS, 0), "experiment": "throughput",
                     "repeat": r, "src": "a", "dst": "b", "label": f"t r{r}", "start_s": r,
                     "end_s": r + 1, "verdict": "suspect" if bad else "ok",
                     "reasons": "foreign CPU" if bad else "",
                     "codes": "foreign_cpu" if bad else "", "samples": 2})
    pd.DataFrame(rows, columns=UNIT_COLUMNS).to_csv(path / "fidelity.csv", index=False)


def situations(tmp_path: Path) -> dict[str, str]:
    a = named(make_run(tmp_path, "a", STEADY, fidelity="suspect"))
    b = named(make_run(tmp_path, "b", STEADY, speed=1 / 1.5, verdict="refuted", kernel="6.2"))
    same = named(make_run(tmp_path, "same", [0.81, 0.79, 0.80, 0.82, 0.80]))
    eight = [0.80, 0.82, 0.79, 0.81, 0.80, 0.81, 0.79, 0.80]
    c = named(make_run(tmp_path, "c", eight, fidelity="suspect"))
    d = named(make_run(tmp_path, "d", eight, fidelity="suspect"))
    meta = json.loads((d / "metadata.json").read_text())
    meta["fidelity"]["reasons"] = ["a CPU hog", "steal"]
    (d / "metadata.json").write_text(json.dumps(meta))
    fidelity_units(c, range(1, 8))  # seven of eight rounds left out: the list ends "..."
    fidelity_units(d, range(2, 3))
    return {
        "compare_differs.md": page([load(a), load(b)], figure="ratios.png"),
        "compare_same.md": page([load(b), load(same)], gate=compare.RATIOS),
        "compare_suspect.md": page([load(c), load(d)]) + "\n---\n"
        + page([load(c, True), load(d, True)], gate=compare.RATIOS, alpha=0.01),
    }


@pytest.mark.parametrize("name", ["compare_differs.md", "compare_same.md",
                                  "compare_suspect.md"])
def test_the_page_is_the_stored_one(tmp_path: Path, name: str) -> None:
    text = situations(tmp_path)[name]
    if os.environ.get("REGEN_GOLDEN"):
        (GOLDEN / name).write_text(text)
    assert text == (GOLDEN / name).read_text()
