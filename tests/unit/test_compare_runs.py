"""`testbed compare` on run directories made here (no root): verdicts, the three answers
(differs, same within a margin, cannot tell) for paired ratios and absolute figures, the
family's correction, the gate, margins, bad input, metadata differences, the fidelity
line, files and the exit status for CI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from testbed.cli import main as cli
from testbed.errors import UsageError
from testbed.results import compare, compare_report, compare_words
from testbed.results.rundir import Measurement, RunDir

STEADY = [0.80, 0.82, 0.79, 0.81, 0.80]


def make_run(tmp_path: Path, name: str, cross: list[float], verdict: str = "confirmed",
             kernel: str = "6.1", fidelity: str | None = "ok", speed: float = 1.0,
             loss: list[float] | None = None, rtt: float = 0.1) -> Path:
    run = RunDir.create(tmp_path / name, "t")
    rows = []
    for r, ratio in enumerate(cross, 1):
        base = speed * 10e9 * (1 + 0.01 * (r % 3))  # the machine's speed moves a little
        for path, value in (("node-node", base), ("pod-cross-node", base * ratio)):
            rows.append(Measurement("throughput", r, "a", "b", "n1", "n2", path,
                                    "throughput_bps", value))
        rows.append(Measurement("reachability", r, "a", "b", "n1", "n2", "pod-cross-node",
                                "rtt_avg_ms", rtt * (1 + 0.01 * (r % 2))))
        if loss is not None:
            rows.append(Measurement("reachability", r, "a", "b", "n1", "n2",
                                    "pod-cross-node", "loss_pct", loss[r - 1]))
    run.add(rows)
    run.add_claim({"claim": "pod-ips-routable", "verdict": verdict, "evidence": "e",
                   "numbers": "{}", "statement": "s"})
    meta: dict = {"environment": {"kernel": kernel}, "parameters": {"repeat": len(cross)}}
    if fidelity is not None:
        meta["fidelity"] = {"verdict": fidelity,
                            "reasons": [] if fidelity == "ok" else ["a CPU hog"]}
    run.write_json("metadata.json", meta)
    return run.path


def load(path: Path) -> compare.Run:
    return compare.Run.load(RunDir.open(path))


def row(c: compare.Comparison, path: str, metric: str):
    t = c.table
    (r,) = t[(t["path"] == path) & (t["metric"] == metric)].itertuples()
    return r


def test_same_runs_are_the_same_within_the_margin(tmp_path: Path, capsys) -> None:
    a_dir = make_run(tmp_path, "a", STEADY)
    b_dir = make_run(tmp_path, "b", [0.81, 0.79, 0.80, 0.82, 0.80])
    c = compare.compare(load(a_dir), load(b_dir))
    r = row(c, "pod-cross-node", "ratio")
    assert r.answer == compare.SAME and r.scale == "log" and abs(r.estimate - 1) < 0.02
    assert r.ci95_low < 1 < r.ci95_high and r.margin == 0.15 and r.gated
    assert c.answer == compare.SAME and c.reasons() == []
    text = compare_report.markdown([load(a_dir), load(b_dir)])
    assert "**Same within ±15 %:** 1 verdict(s) unchanged, 4 metric(s) shown the same" in text
    assert "same within ±15 %" in text and "95 % interval" in text
    assert cli.main(["compare", str(a_dir), str(b_dir), "--fail-on-difference"]) == 0
    assert capsys.readouterr().err == ""


def test_a_real_change_differs_with_its_size_and_fails_ci(tmp_path: Path, capsys) -> None:
    a_dir = make_run(tmp_path, "a", STEADY)
    b_dir = make_run(tmp_path, "b", [0.60, 0.62, 0.61, 0.59, 0.60], verdict="refuted",
                     kernel="6.18", fidelity="suspect")
    a, b = load(a_dir), load(b_dir)
    c = compare.compare(a, b)
    r = row(c, "pod-cross-node", "ratio")
    assert r.answer == compare.DIFFERS and r.p_holm < 0.05
    assert r.ci95_high < 1.0 and r.estimate == pytest.approx(0.605 / 0.804, rel=0.01)
    why = c.reasons()
    assert why[0] == "claim pod-ips-routable: confirmed -> refuted"
    assert why[1].startswith("pod-cross-node throughput / node-node ratio: 0.751x (-24.9 %, "
                             "95 % interval -26.7 % .. -23.0 %)") and why[1].endswith("lower in B")
    assert list(compare_report.environment(a, b)["key"]) == ["environment.kernel"]
    text = compare_report.markdown([a, b])
    assert "**Differs:** claim pod-ips-routable" in text and "B suspect: a CPU hog" in text
    assert "B was flagged suspect by the fidelity monitor" in text
    assert "differs: -24.9 %" in text
    assert cli.main(["compare", str(a_dir), str(b_dir), "--fail-on-difference"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("differs: claim pod-ips-routable") and "-24.9 %" in err
    assert cli.main(["compare", str(a_dir), str(b_dir)]) == 0  # a comparison was made
    assert cli.main(["compare", str(a_dir), str(a_dir), "--fail-on-difference"]) == 0
    higher = make_run(tmp_path, "up", [1.0, 1.02, 0.99, 1.01, 1.0])
    assert "higher in B" in compare.compare(a, load(higher)).reasons()[0]


def test_three_rounds_can_show_a_large_change(tmp_path: Path) -> None:
    # a rank test could not (its smallest p at 3 against 3 is 0.10); Welch on logs can
    a = load(make_run(tmp_path, "a", [0.80, 0.82, 0.79]))
    b = load(make_run(tmp_path, "b", [0.60, 0.61, 0.62]))
    assert row(compare.compare(a, b, "ratios"), "pod-cross-node", "ratio").answer == \
        compare.DIFFERS


def test_noisy_rounds_cannot_tell_and_say_how_many_rounds(tmp_path: Path, capsys) -> None:
    a_dir = make_run(tmp_path, "a", [0.8, 0.6, 1.0])
    b_dir = make_run(tmp_path, "b", [0.7, 0.95, 0.55])
    c = compare.compare(load(a_dir), load(b_dir), "ratios")
    r = row(c, "pod-cross-node", "ratio")
    assert r.answer == compare.CANNOT and c.answer == compare.CANNOT
    assert r.detectable > 0.3 and r.rounds_needed > 3
    reason = c.reasons()[0]
    assert reason.startswith("pod-cross-node throughput / node-node ratio: smallest "
                             "detectable change ±") and "at 3/3 rounds, margin ±15 %" in reason
    assert reason.endswith(f"margin ±15 % (measure {r.rounds_needed} rounds)")
    assert f"smallest detectable change ±{100 * r.detectable:.3g} % at" in reason
    assert c.reasons(rounds=False)[0].endswith("at 3/3 rounds, margin ±15 %")
    text = compare_report.markdown([load(a_dir), load(b_dir)], gate="ratios")
    assert "**Cannot tell:** 1 of 1 metric(s)" in text
    assert f"(measure {r.rounds_needed} rounds a side)" in text
    assert cli.main(["compare", str(a_dir), str(b_dir), "--gate", "ratios",
                     "--fail-on-difference"]) == 3
    assert capsys.readouterr().err.startswith("cannot tell: pod-cross-node")


def test_the_gate_and_the_family(tmp_path: Path) -> None:
    # B's machine 1.5x slower: every absolute throughput moves, the paired ratio does not
    a_dir = make_run(tmp_path, "a", STEADY)
    b_dir = make_run(tmp_path, "b", [0.81, 0.80, 0.80, 0.80, 0.81], speed=1 / 1.5)
    a, b = load(a_dir), load(b_dir)
    everything = compare.compare(a, b)
    assert everything.answer == compare.DIFFERS
    assert row(everything, "node-node", "throughput_bps").answer == compare.DIFFERS
    assert row(everything, "pod-cross-node", "ratio").answer == compare.SAME
    ratios = compare.compare(a, b, "ratios")
    assert ratios.answer == compare.SAME
    nn = row(ratios, "node-node", "throughput_bps")
    assert not nn.gated and nn.answer == compare.DIFFERS
    assert "differs: -33.3 % (not gated)" in compare_report.markdown([a, b], gate="ratios")
    # Holm over the gated family only: the single ratio alone, the three others together
    ratio = row(ratios, "pod-cross-node", "ratio")
    assert ratio.p_holm == ratio.p
    assert row(everything, "pod-cross-node", "ratio").p_holm > ratio.p
    assert cli.main(["compare", str(a_dir), str(b_dir), "--fail-on-difference"]) == 1
    assert cli.main(["compare", str(a_dir), str(b_dir), "--fail-on-difference", "--gate",
                     "ratios"]) == 0
    with pytest.raises(UsageError, match="--gate some"):
        compare.compare(a, b, "some")


def test_family_size_sets_the_detectable_change(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", [0.8, 0.6, 1.0]))
    b = load(make_run(tmp_path, "b", [0.7, 0.95, 0.55]))
    alone = row(compare.compare(a, b, "ratios"), "pod-cross-node", "ratio")
    among = row(compare.compare(a, b, "all"), "pod-cross-node", "ratio")
    assert among.detectable > alone.detectable and among.rounds_needed > alone.rounds_needed


def test_same_wins_over_a_significant_change_smaller_than_the_margin(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", [0.800, 0.801, 0.799, 0.800, 0.801]))
    b = load(make_run(tmp_path, "b", [0.824, 0.825, 0.823, 0.824, 0.825]))  # +3 %, exact
    r = row(compare.compare(a, b, "ratios"), "pod-cross-node", "ratio")
    assert r.p < 1e-6 and r.answer == compare.SAME
    tight = row(compare.compare(a, b, "ratios", compare.Margins.parse(["0.01"])),
                "pod-cross-node", "ratio")
    assert tight.answer == compare.DIFFERS


def test_zeros_are_compared_in_their_units(tmp_path: Path) -> None:
    none = [0.0] * 5
    a = load(make_run(tmp_path, "a", STEADY, loss=none))
    same = row(compare.compare(a, load(make_run(tmp_path, "b", STEADY, loss=none))),
               "pod-cross-node", "loss_pct")
    assert same.answer == compare.SAME and same.scale == "linear" and same.margin == 1.0
    assert "a zero: compared as B - A in %" in same.note
    lossy = load(make_run(tmp_path, "c", STEADY, loss=[40.0, 50.0, 45.0, 55.0, 50.0]))
    c = compare.compare(a, lossy)
    r = row(c, "pod-cross-node", "loss_pct")
    assert r.answer == compare.DIFFERS and r.estimate == 48.0
    assert "pod-cross-node loss_pct (reachability): B - A +48" in c.reasons()[0]
    assert c.reasons()[0] == (f"pod-cross-node loss_pct (reachability): B - A +48 (95 % "
                              f"interval {r.ci95_low:+.4g} .. {r.ci95_high:+.4g}), higher in B")
    assert 40 < r.ci95_low < 48 < r.ci95_high < 56
    fewer = compare.compare(lossy, a)
    assert row(fewer, "pod-cross-node", "loss_pct").estimate == -48.0
    assert fewer.reasons()[0].endswith("), lower in B")
    text = compare_report.markdown([a, lossy])
    assert "| (+48)" in text and "differs: +48" in text and "±1 " in text


def test_small_changes_in_units(tmp_path: Path) -> None:
    def run(name: str, values: list[float]) -> compare.Run:
        d = RunDir.create(tmp_path / name, "t")
        d.add([Measurement("faults", r, "a", "b", "n1", "n2", "pod-pod", "drops", v)
               for r, v in enumerate(values, 1)])
        d.write_json("metadata.json", {})
        return load(d.path)

    zero = run("zero", [0.0] * 5)
    # up by half a unit, no unit floor: the margin is 15 % of A's mean, 0
    c = compare.compare(zero, run("half", [0.5, 0.5, 0.5, 0.6, 0.4]))
    r = row(c, "pod-pod", "drops")
    assert r.answer == compare.DIFFERS and r.margin == 0 and r.estimate == 0.5
    assert c.reasons()[0].startswith("pod-pod drops (faults): B - A +0.5 (95 % interval +0.")
    assert c.reasons()[0].endswith("higher in B")
    # noisy: cannot tell, the detectable change in units
    noisy = compare.compare(zero, run("noisy", [0.0, 3.0, 0.0, 0.0, 1.0]))
    r = row(noisy, "pod-pod", "drops")
    assert r.answer == compare.CANNOT
    assert noisy.reasons()[0] == (f"pod-pod drops (faults): smallest detectable change "
                                  f"±{r.detectable:.3g} at 5/5 rounds, margin ±0 (measure "
                                  f"{compare_words._rounds_words(r.rounds_needed)} rounds)")
    assert r.detectable > 1 and "%" not in noisy.reasons()[0]


def test_words() -> None:
    assert compare_words._rounds_words(1000) == "1000"
    assert compare_words._rounds_words(1001) == "more than 1000"
    assert compare._pct(0.15) == "15 %" and compare._pct(1.0) == "100 %"


def test_one_round_cannot_tell_and_says_why(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", [0.8]))
    b = load(make_run(tmp_path, "b", [0.8]))
    c = compare.compare(a, b, "ratios")
    r = row(c, "pod-cross-node", "ratio")
    assert r.answer == compare.CANNOT and "fewer than two rounds" in r.note
    assert c.reasons() == ["pod-cross-node throughput / node-node ratio: fewer than two "
                           "rounds on a side: no spread to judge by"]
    assert "(measure more than 1000 rounds a side)" in compare_words.headline(c)
    (cell,) = compare_report._metric_table(c.ratios)["smallest detectable change"]
    assert cell == " (measure more than 1000 rounds)"


def test_margins() -> None:
    m = compare.Margins()
    assert (m.ratios, m.absolute, m.of("ratios", "ratio"), m.of("absolute", "rtt_avg_ms"),
            m.of("absolute", "retransmits"), m.of("absolute", "ttl")) == (
        0.15, 0.15, 0.15, 0.15, 1.0, 0.01)
    assert m.describe() == "±15 % (retransmits ±100 %, ttl ±1 %)"
    assert m.describe(["throughput_bps"]) == "±15 %"
    p = compare.Margins.parse(["0.1", "absolute=0.3", "retransmits=2", "ttl=0.05"])
    assert (p.ratios, p.absolute, p.metrics["retransmits"], p.metrics["ttl"]) == (
        0.1, 0.3, 2.0, 0.05)
    assert p.describe(["x"]) == "±10 % (paired ratios), ±30 % (absolute)"
    assert compare.Margins.parse(["ratios=0.05"]).of("absolute", "x") == 0.15
    assert compare.Margins.parse(["ratios=0.05"]).of("ratios", "ratio") == 0.05
    for bad in ("x", "0", "-0.1", "nan", "inf", "ratios="):
        with pytest.raises(UsageError, match="--margin"):
            compare.Margins.parse([bad])


def test_outcome_over_several_runs(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", STEADY))
    same = compare.compare(a, load(make_run(tmp_path, "s", STEADY)), "ratios")
    cannot = compare.compare(load(make_run(tmp_path, "n1", [0.8, 0.6, 1.0])),
                             load(make_run(tmp_path, "n2", [0.7, 0.95, 0.55])), "ratios")
    differs = compare.compare(a, load(make_run(tmp_path, "d", [0.6] * 5)), "ratios")
    assert compare.outcome([same]) == compare.SAME
    assert compare.outcome([same, cannot]) == compare.CANNOT
    assert compare.outcome([cannot, differs, same]) == compare.DIFFERS
    assert compare.EXIT == {"same": 0, "differs": 1, "cannot tell": 3}


def test_the_headline_lists_a_few_and_counts_the_rest(tmp_path: Path,
                                                      monkeypatch) -> None:
    monkeypatch.setattr(compare_words, "HEADLINE_ITEMS", 1)
    a = load(make_run(tmp_path, "a", STEADY))
    b = load(make_run(tmp_path, "b", STEADY, speed=1 / 1.5, verdict="refuted"))
    text = compare_words.headline(compare.compare(a, b))
    assert text.startswith("**Differs:** claim pod-ips-routable: confirmed -> refuted; and ")
    assert text.endswith(" more.")


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
    page = html.read_text()
    assert "data:image/png;base64," in page and "95 % interval</th>" in page
    assert sorted(p.name for p in md.parent.iterdir()) == ["cmp.html", "cmp.md", "cmp.png"]


def bad(tmp_path: Path, capsys, *args: str) -> str:
    assert cli.main(["compare", *args, "--fail-on-difference"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def edit(run: Path, **values: float) -> None:
    """Set the value of the first throughput row of each named path."""
    text = (run / "measurements.csv").read_text().splitlines()
    for path, value in values.items():
        path = path.replace("_", "-")
        i = next(i for i, line in enumerate(text) if f",{path},throughput_bps," in line)
        cells = text[i].split(",")
        cells[8] = str(value)
        text[i] = ",".join(cells)
    (run / "measurements.csv").write_text("\n".join(text) + "\n")


def test_bad_input_is_exit_2_and_one_line(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path, "a", STEADY)
    assert cli.main(["compare", str(a)]) == 2
    assert "two runs or more" in capsys.readouterr().err
    assert "not a run directory" in bad(tmp_path, capsys, str(a), str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert "no measurements.csv" in bad(tmp_path, capsys, str(a), str(tmp_path / "empty"))
    assert "no measurements.csv" in bad(tmp_path, capsys, str(tmp_path / "empty"), str(a))
    nometa = make_run(tmp_path, "nometa", STEADY)
    (nometa / "metadata.json").unlink()
    assert "no metadata.json" in bad(tmp_path, capsys, str(a), str(nometa))
    (nometa / "metadata.json").write_text("{not json")
    assert "metadata.json: not JSON" in bad(tmp_path, capsys, str(a), str(nometa))
    (nometa / "metadata.json").write_text(json.dumps([1]))
    assert "not a JSON object" in bad(tmp_path, capsys, str(a), str(nometa))
    for value, shown in ((math.nan, "nan"), (math.inf, "inf"), (-1e9, "-1000000000.0")):
        b = make_run(tmp_path, f"v{shown}", STEADY)
        edit(b, pod_cross_node=value)
        err = bad(tmp_path, capsys, str(a), str(b))
        assert (f"row 2 (throughput pod-cross-node throughput_bps, round 1): {shown} is not "
                "a possible measurement") in err
    empty_value = make_run(tmp_path, "blank", STEADY)
    edit(empty_value, node_node="")
    assert "nan is not a possible" in bad(tmp_path, capsys, str(a), str(empty_value))
    zero = make_run(tmp_path, "zero", STEADY)
    edit(zero, node_node=0.0)
    assert "a node-node throughput_bps of 0" in bad(tmp_path, capsys, str(a), str(zero))
    assert "a node-node throughput_bps of 0" in bad(tmp_path, capsys, str(zero), str(a))
    loss = make_run(tmp_path, "loss", STEADY, loss=[0, 0, 0, 0, 101.0])
    assert "101.0 is not a possible measurement (it must be finite, 0 .. 100)" in bad(
        tmp_path, capsys, str(a), str(loss))
    other = RunDir.create(tmp_path / "other", "t")
    other.add([Measurement("dns", 1, "a", "b", "n1", "n2", "pod-pod", "start_s", 1.0)])
    other.write_json("metadata.json", {})
    assert "nothing in common to compare (no metric measured in both)" in bad(
        tmp_path, capsys, str(a), str(other.path))
    assert "no metric measured in both" in bad(
        tmp_path, capsys, str(a), str(other.path), "--gate", "ratios")
    rtt = RunDir.create(tmp_path / "rtt", "t")
    rtt.add([Measurement("reachability", 1, "a", "b", "n1", "n2", "pod-cross-node",
                         "rtt_avg_ms", 0.1)])
    rtt.write_json("metadata.json", {})
    assert "no paired ratio to node-node to compare" in bad(
        tmp_path, capsys, str(rtt.path), str(a), "--gate", "ratios")
    dns = RunDir.create(tmp_path / "dns", "t")
    dns.add([Measurement("dns", 1, "a", "b", "n1", "n2", "pod-pod", "start_s", 2.0)])
    dns.write_json("metadata.json", {})
    assert cli.main(["compare", str(other.path), str(dns.path)]) == 0
    capsys.readouterr()
    assert "--margin x" in bad(tmp_path, capsys, str(a), str(a), "--margin", "x")


def test_error_rows_are_not_values(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", STEADY)
    run = RunDir.open(a)
    run.rows = [dict(r) for r in run.rows]
    run.add([Measurement("throughput", 6, "a", "b", "n1", "n2", "pod-cross-node", "error",
                         math.nan, note="iperf3 failed")])
    loaded = load(a)
    assert "error" not in set(loaded.rows["metric"]) and len(loaded.rows) == 15


def test_a_run_without_the_monitor(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", STEADY, fidelity=None)
    run = load(a)
    assert "not monitored" in compare_report.fidelity(run)
    assert compare_report.fidelity(load(make_run(tmp_path, "b", STEADY))) == "ok"
    assert compare_report.fidelity(load(make_run(tmp_path, "c", STEADY, fidelity="suspect"))) == \
        "suspect: a CPU hog"


def test_a_path_the_reference_has_and_b_lost_cannot_tell(tmp_path: Path, capsys) -> None:
    a_dir = make_run(tmp_path, "a", STEADY)
    run = RunDir.create(tmp_path / "b", "t")
    rows = []
    for r in range(1, 6):
        rows.append(Measurement("throughput", r, "a", "b", "n1", "n2", "node-node",
                                "throughput_bps", 10e9))
        rows.append(Measurement("throughput", r, "a", "b", "n1", "n2", "pod-cross-node",
                                "error", math.nan, note="iperf3: connection refused"))
        rows.append(Measurement("throughput", r, "a", "b", "n1", "n2", "pod-same-node",
                                "throughput_bps", 9e9))  # new in B: nothing to compare
    run.add(rows)
    run.add_claim({"claim": "pod-ips-routable", "verdict": "confirmed", "evidence": "e",
                   "numbers": "{}", "statement": "s"})
    run.write_json("metadata.json", {})
    c = compare.compare(load(a_dir), load(run.path))
    r = row(c, "pod-cross-node", "ratio")
    assert r.answer == compare.CANNOT and r.n_b == 0 and "not measured in B" in r.note
    assert row(c, "pod-cross-node", "rtt_avg_ms").answer == compare.CANNOT
    assert row(c, "node-node", "throughput_bps").answer == compare.SAME
    assert "pod-same-node" not in set(c.table["path"])
    assert c.reasons()[0] == ("pod-cross-node throughput / node-node ratio: not measured in "
                              "B (no value, or only errors)")
    assert cli.main(["compare", str(a_dir), str(run.path), "--gate", "ratios",
                     "--fail-on-difference"]) == 3
    assert "not measured in B" in capsys.readouterr().err


def test_detectable_and_rounds_at_the_familys_level(tmp_path: Path) -> None:
    from testbed.results import stats as st

    a = load(make_run(tmp_path, "a", [0.8, 0.6, 1.0]))
    b = load(make_run(tmp_path, "b", [0.7, 0.95, 0.55]))
    for gate, size in (("ratios", 1), ("all", 4)):
        c = compare.compare(a, b, gate)
        r = row(c, "pod-cross-node", "ratio")
        ch = st.change(*(st.paired(run.rows, "throughput", "throughput_bps", "node-node")
                         ["ratio"].tolist() for run in (a, b)), 0.15)
        assert r.detectable == pytest.approx(math.expm1(st.detectable(ch, 0.05 / size)))
        assert r.rounds_needed == st.rounds_needed(ch.sd, ch.bound, ch.diff, 0.05 / size)


def test_alpha_sets_the_level_of_differs_and_of_same(tmp_path: Path, capsys) -> None:
    """A change with p between 0.01 and 0.05 differs at 0.05 and cannot be told at 0.01; a
    change inside the margin whose TOST p lies between the two is "same" only at 0.05."""
    a_dir = make_run(tmp_path, "a", [0.80, 0.84, 0.78, 0.82, 0.80])
    b_dir = make_run(tmp_path, "b", [0.98, 0.86, 1.02, 0.82, 0.95])  # +12 %
    a, b = load(a_dir), load(b_dir)
    r5 = row(compare.compare(a, b, "ratios"), "pod-cross-node", "ratio")
    r1 = row(compare.compare(a, b, "ratios", alpha=0.01), "pod-cross-node", "ratio")
    assert 0.01 < r5.p < 0.05
    assert r5.answer == compare.DIFFERS and r1.answer == compare.CANNOT
    c = make_run(tmp_path, "c", [0.88, 0.84, 0.93, 0.82, 0.89])  # +7 %
    same5 = row(compare.compare(a, load(c), "ratios"), "pod-cross-node", "ratio")
    same1 = row(compare.compare(a, load(c), "ratios", alpha=0.01), "pod-cross-node", "ratio")
    assert 0.01 < same5.p_same < 0.05
    assert same5.answer == compare.SAME and same1.answer == compare.CANNOT
    with pytest.raises(UsageError, match="--alpha"):
        compare.compare(a, b, "ratios", alpha=0.5)
    assert cli.main(["compare", str(a_dir), str(b_dir), "--gate", "ratios",
                     "--alpha", "0.01", "--fail-on-difference"]) == 3
    out = capsys.readouterr().out
    assert "is below 0.01 and" in out and "tests at 0.01" in out and "98% interval" in out
