"""The stored reference run (results/reference/two-node-throughput) and `testbed compare
--fail-on-difference` against it (no root): compared with itself it is the same within its
margins (exit 0); a copy with every throughput 1.5x slower differs and says by how much
(exit 1), though its paired ratios do not move (`--gate ratios`: exit 0); a copy whose
pod-cross-node throughput fell by a third differs in the gate CI uses too; an empty
directory is bad input (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from testbed.cli import main as cli
from testbed.results import compare, compare_report
from testbed.results.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference" / "two-node-throughput"
PATHS = {"node-node", "pod-cross-node", "pod-same-node", "pod-localhost"}


def copy_with(tmp_path: Path, name: str, factor: float, paths: set[str],
              metrics: tuple[str, ...] = ("throughput_bps", "sent_bps")) -> Path:
    changed = tmp_path / name
    shutil.copytree(REFERENCE, changed)
    df = pd.read_csv(changed / "measurements.csv")
    rows = df["path"].isin(paths) & df["metric"].isin(metrics)
    df.loc[rows, "value"] *= factor
    df.to_csv(changed / "measurements.csv", index=False)
    return changed


def test_the_reference_is_a_complete_monitored_run_of_five_rounds_or_more() -> None:
    ref = compare.Run.load(RunDir.open(REFERENCE))
    tp = ref.rows[ref.rows["metric"] == "throughput_bps"]
    assert set(tp["path"]) == PATHS
    assert (tp.groupby("path")["repeat"].nunique() >= 5).all()
    meta = json.loads((REFERENCE / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["fidelity"]["verdict"] == "ok"
    assert meta["pinning"] and meta["parameters"]["repeat"] >= 5


def test_the_reference_against_itself_is_the_same(capsys) -> None:
    assert cli.main(["compare", str(REFERENCE), str(REFERENCE), "--fail-on-difference"]) == 0
    out = capsys.readouterr().out
    assert "**Same within ±15 % (retransmits ±100 %):**" in out
    assert "23 metric(s) shown the same (gate: verdicts and every metric)" in out
    assert cli.main(["compare", str(REFERENCE), str(REFERENCE), "--fail-on-difference",
                     "--gate", "ratios"]) == 0
    assert "3 metric(s) shown the same (gate: verdicts and paired ratios)" in \
        capsys.readouterr().out


def test_every_throughput_1_5x_slower_differs_by_a_third(tmp_path: Path, capsys) -> None:
    slower = copy_with(tmp_path, "slower", 1 / 1.5, PATHS)
    assert cli.main(["compare", str(REFERENCE), str(slower), "--fail-on-difference"]) == 1
    captured = capsys.readouterr()
    for path in PATHS:
        for metric in ("throughput_bps", "sent_bps"):
            assert f"{path} {metric} (throughput): 0.667x (-33.3 %, 95 % interval" in \
                captured.err
    assert captured.err.startswith("differs: ") and "lower in B" in captured.err
    assert "**Differs:**" in captured.out
    # the paired ratios did not move: the gate for other machines finds them the same
    assert cli.main(["compare", str(REFERENCE), str(slower), "--fail-on-difference",
                     "--gate", "ratios"]) == 0


def test_a_slower_pod_path_fails_the_ratio_gate(tmp_path: Path, capsys) -> None:
    changed = copy_with(tmp_path, "changed", 2 / 3, {"pod-cross-node"}, ("throughput_bps",))
    assert cli.main(["compare", str(REFERENCE), str(changed), "--fail-on-difference",
                     "--gate", "ratios"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("differs: pod-cross-node throughput / node-node ratio: 0.667x "
                          "(-33.3 %")
    assert "pod-same-node" not in err and "pod-localhost" not in err


def test_a_small_change_at_five_rounds_cannot_tell(tmp_path: Path, capsys) -> None:
    # 8 %: not shown the same within 15 % at five rounds of this spread, nor to differ
    changed = copy_with(tmp_path, "small", 0.92, {"pod-same-node"}, ("throughput_bps",))
    code = cli.main(["compare", str(REFERENCE), str(changed), "--fail-on-difference",
                     "--gate", "ratios"])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("cannot tell: pod-same-node throughput / node-node "
                                        "ratio: smallest detectable change ±")


def test_an_empty_directory_is_bad_input(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", str(REFERENCE), str(tmp_path / "empty"),
                     "--fail-on-difference"]) == 2
    assert "no measurements.csv" in capsys.readouterr().err


def test_clean_rounds_leave_out_the_rounds_with_a_suspect_unit(tmp_path: Path,
                                                                capsys) -> None:
    flagged = tmp_path / "flagged"
    shutil.copytree(REFERENCE, flagged)
    units = pd.read_csv(flagged / "fidelity.csv", keep_default_na=False, dtype=str)
    hit = (units["experiment"] == "throughput") & units["repeat"].isin(["2", "3"]) & (
        units["dst"] == units["dst"].iloc[0])
    assert hit.sum() == 2
    units.loc[hit, "verdict"] = "suspect"
    units.to_csv(flagged / "fidelity.csv", index=False)
    run = compare.Run.load(RunDir.open(flagged), clean_rounds=True)
    assert run.dropped == [("throughput", 2), ("throughput", 3)]
    kept = set(run.rows[run.rows["experiment"] == "throughput"]["repeat"].astype(int))
    everything = compare.Run.load(RunDir.open(flagged))
    assert kept == set(everything.rows["repeat"].astype(int)) - {2, 3}
    assert everything.dropped is None
    assert compare_report.fidelity(run).startswith("ok in every round compared; 2 round(s)")
    assert "throughput r2, throughput r3" in compare_report.fidelity(run)
    assert not compare_report.suspect(run)
    clean = compare.Run.load(RunDir.open(REFERENCE), clean_rounds=True)
    assert clean.dropped == [] and compare_report.fidelity(clean) == (
        "ok in every round compared (no round left out)")
    assert cli.main(["compare", str(REFERENCE), str(flagged), "--gate", "ratios",
                     "--clean-rounds", "--fail-on-difference"]) == 0
    out = capsys.readouterr().out
    assert "B ok in every round compared; 2 round(s)" in out and "flagged suspect" not in out
    (flagged / "fidelity.csv").unlink()
    assert cli.main(["compare", str(REFERENCE), str(flagged), "--clean-rounds"]) == 2
    assert "no fidelity.csv" in capsys.readouterr().err


def test_a_suspect_run_is_flagged_without_clean_rounds(tmp_path: Path, capsys) -> None:
    flagged = tmp_path / "flagged"
    shutil.copytree(REFERENCE, flagged)
    meta = json.loads((flagged / "metadata.json").read_text())
    meta["fidelity"] = {"verdict": "suspect", "reasons": ["steal"]}
    (flagged / "metadata.json").write_text(json.dumps(meta))
    assert compare_report.suspect(compare.Run.load(RunDir.open(flagged)))
    cli.main(["compare", str(REFERENCE), str(flagged), "--gate", "ratios"])
    assert "**B was flagged suspect by the fidelity monitor" in capsys.readouterr().out
