"""An experiment's own report section, asked of its plug-in (experiments/framework/base.py's
optional `report_section`), by the report (experiments/run_report.py), which names no experiment."""

from __future__ import annotations

import pandas as pd

from experiments import run_report
from experiments.catalogue.measurements import compare_modes
from experiments.registry import REGISTRY


def comparison_rows() -> pd.DataFrame:
    name = compare_modes.NAME
    return pd.DataFrame([
        {"experiment": f"{name}/kubenet", "repeat": 1, "path": "pod-cross-node",
         "metric": "cmp_throughput_ratio", "value": 0.8},
        {"experiment": "throughput", "repeat": 1, "path": "pod-cross-node",
         "metric": "throughput_bps", "value": 1e9}])


def test_the_comparison_gives_its_section_through_its_plug_in() -> None:
    frame = comparison_rows()
    section = REGISTRY[compare_modes.NAME].report_section(frame)
    assert section is not None
    lines, figures = section
    assert lines == compare_modes.comparison_markdown(frame)
    assert list(figures) == [compare_modes.PNG] and figures[compare_modes.PNG][:4] == b"\x89PNG"
    assert f"![{compare_modes.PNG}]({compare_modes.PNG})" in lines
    assert REGISTRY[compare_modes.NAME].report_section(frame.iloc[1:]) is None


def test_the_report_asks_every_experiment_and_skips_those_without_a_section() -> None:
    frame = comparison_rows()
    got = run_report.sections(REGISTRY.values(), frame)
    assert [lines[0] for lines, _ in got] == ["## Pod networks compared"]
    assert run_report.sections(REGISTRY.values(), frame.iloc[1:]) == []

    class Own:
        name = "own"

        @classmethod
        def report_section(cls, frame: pd.DataFrame) -> tuple[list[str], dict[str, bytes]]:
            return ["## Mine", "", f"{len(frame)} rows"], {}

    got = run_report.sections([Own(), REGISTRY["throughput"]], frame)  # type: ignore[list-item]
    assert got == [(["## Mine", "", "2 rows"], {})]


def test_the_report_splices_the_section_of_each_experiment_of_the_run(tmp_path) -> None:
    from testbed.results.metadata import RunMetadata
    from testbed.results.rundir import Measurement, RunDir

    run = RunDir.create(tmp_path, "t")
    run.add([Measurement(f"{compare_modes.NAME}/kubenet", 1, "pod-1", "pod-3", "node-1",
                         "node-2", "pod-cross-node", "cmp_throughput_ratio", 0.8, "ratio")])
    meta = RunMetadata(run_id=run.run_id, topology={"name": "t"})
    run_report.write_report(run, meta, [REGISTRY["throughput"], REGISTRY[compare_modes.NAME]])
    text = (run.path / "report.md").read_text()
    assert "## Pod networks compared" in text.split("## Files")[1]  # after the rest
    assert text.endswith(f"![{compare_modes.PNG}]({compare_modes.PNG})\n")
    assert run.exists(compare_modes.PNG) and compare_modes.PNG in (meta.files or [])
    assert meta.rows == 1 and meta.figures == []
    run_report.write_report(run, meta, [REGISTRY["throughput"]])  # not in this run: not asked
    assert "## Pod networks compared" not in (run.path / "report.md").read_text()
