"""`testbed compare` on run directories made here (no root): verdicts, paired ratios
with the rank test, the multiple-comparison correction, metadata differences, the
fidelity line, files and the exit status for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.cli import main as cli
from testbed.results import compare
from testbed.results.rundir import Measurement, RunDir
from testbed.results.stats import holm


def make_run(tmp_path: Path, name: str, cross: list[float], verdict: str = "confirmed",
             kernel: str = "6.1", fidelity: str = "ok") -> Path:
    run = RunDir.create(tmp_path / name, "t")
    rows = []
    for r, ratio in enumerate(cross, 1):
        base = 10e9 * (1 + 0.5 * (r % 2))  # the machine's speed moves; ratios do not
        for path, value in (("node-node", base), ("pod-cross-node", base * ratio)):
            rows.append(Measurement("throughput", r, "a", "b", "n1", "n2", path,
                                    "throughput_bps", value))
        rows.append(Measurement("reachability", r, "a", "b", "n1", "n2", "pod-cross-node",
                                "rtt_avg_ms", 0.1 + 0.001 * r))
    run.add(rows)
    run.add_claim({"claim": "pod-ips-routable", "verdict": verdict, "evidence": "e",
                   "numbers": "{}", "statement": "s"})
    run.write_json("metadata.json", {"environment": {"kernel": kernel},
                                     "parameters": {"repeat": len(cross)},
                                     "fidelity": {"verdict": fidelity, "reasons": [] if
                                                  fidelity == "ok" else ["a CPU hog"]}})
    return run.path


def load(path: Path) -> compare.Run:
    return compare.Run.load(RunDir.open(path))


def test_same_runs_show_no_difference_and_too_few_rounds_says_so(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", [0.80, 0.82, 0.79, 0.81, 0.80]))
    b = load(make_run(tmp_path, "b", [0.81, 0.79, 0.80, 0.82, 0.80]))
    r = compare.ratios(a, b)
    assert list(r["path"]) == ["pod-cross-node"] and r.iloc[0]["finding"] == compare.SAME
    assert abs(r.iloc[0]["b_over_a"] - 1.0) < 0.02 and compare.differs(a, b) == []
    assert "no significant difference in any paired ratio" in compare.markdown([a, b])
    few_a = load(make_run(tmp_path, "fa", [0.80, 0.82, 0.79]))
    few_b = load(make_run(tmp_path, "fb", [0.60, 0.61, 0.62]))  # clearly lower, 3 rounds
    assert compare.ratios(few_a, few_b).iloc[0]["finding"] == compare.TOO_FEW
    assert "too few rounds to show a difference" in compare.markdown([few_a, few_b])


def test_a_real_change_is_significant_and_fails_ci(tmp_path: Path, capsys) -> None:
    a_dir = make_run(tmp_path, "a", [0.80, 0.82, 0.79, 0.81, 0.80])
    b_dir = make_run(tmp_path, "b", [0.60, 0.62, 0.61, 0.59, 0.60], verdict="refuted",
                     kernel="6.18", fidelity="suspect")
    a, b = load(a_dir), load(b_dir)
    r = compare.ratios(a, b)
    assert r.iloc[0]["finding"] == compare.SIGNIFICANT and r.iloc[0]["p"] < 0.05
    assert r.iloc[0]["ci95_high"] < 1.0  # B/A below 1, interval and all
    why = compare.differs(a, b)
    assert why[0] == "claim pod-ips-routable: confirmed -> refuted" and len(why) == 2
    env = compare.environment(a, b)
    assert list(env["key"]) == ["environment.kernel"]
    text = compare.markdown([a, b])
    assert "**Differs:**" in text and "B suspect: a CPU hog" in text
    assert "B was flagged suspect by the fidelity monitor" in text
    assert cli.main(["compare", str(a_dir), str(b_dir), "--fail-on-difference"]) == 1
    assert "differs: claim pod-ips-routable" in capsys.readouterr().err
    assert cli.main(["compare", str(a_dir), str(a_dir), "--fail-on-difference"]) == 0


def test_files_written_whole(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", [0.80, 0.82, 0.79])
    b = make_run(tmp_path, "b", [0.81, 0.79, 0.80])
    md = tmp_path / "out" / "cmp.md"
    md.parent.mkdir()
    assert cli.main(["compare", str(a), str(b), "-o", str(md)]) == 0
    assert "![cmp.png](cmp.png)" in md.read_text()
    assert (md.parent / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    html = tmp_path / "out" / "cmp.html"
    assert cli.main(["compare", str(a), str(b), "-o", str(html)]) == 0
    assert "data:image/png;base64," in html.read_text()
    assert sorted(p.name for p in md.parent.iterdir()) == ["cmp.html", "cmp.md", "cmp.png"]


def test_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path, "a", [0.8, 0.8])
    assert cli.main(["compare", str(a)]) == 2
    assert "two runs or more" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    nan = holm([float("nan"), 0.02])
    assert nan[1] == 0.02 and nan[0] != nan[0]


def test_a_run_without_metadata_or_monitor(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", [0.8, 0.8])
    (a / "metadata.json").write_text(json.dumps([1]))  # not a mapping: read as empty
    run = load(a)
    assert run.meta == {} and "not monitored" in compare.fidelity(run)
