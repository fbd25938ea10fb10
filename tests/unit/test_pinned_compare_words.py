"""`testbed compare`'s words and tables, pinned: what mutation testing (`make mutate`) found
unpinned in testbed/results/compare.py (a changed key, a lost margin or level, a flipped
direction word, a header or figure line dropped). A reader acts on these words, so each is
checked exactly where it matters."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from testbed.errors import UsageError
from testbed.results import compare, compare_report, compare_words

from .test_compare_runs import STEADY, load, make_run


def with_meta(path: Path, meta: dict) -> Path:
    (path / "metadata.json").write_text(json.dumps(meta))
    return path


def test_flatten_dots_nested_keys_and_writes_lists_as_sorted_json() -> None:
    data = {"environment": {"kernel": "6.1", "debs": {"frr": "8.4"}},
            "list": [{"b": 1, "a": Path("/x")}], "n": 3}
    assert compare_report._flatten(data) == {
        "environment.kernel": "6.1", "environment.debs.frr": "8.4",
        "list": '[{"a": "/x", "b": 1}]', "n": "3"}


def test_environment_lists_each_key_that_differs_with_a_dash_where_missing(
        tmp_path: Path) -> None:
    a = with_meta(make_run(tmp_path, "a", STEADY), {
        "environment": {"kernel": "6.1", "python": "3.11"}, "host": "h1",
        "git": {"commit": "c1"}, "run_id": "not compared"})
    b = with_meta(make_run(tmp_path, "b", STEADY), {
        "environment": {"kernel": "6.2", "python": "3.11"}, "wiring": "fast",
        "git": {"commit": "c1"}, "run_id": "another"})
    env = compare_report.environment(load(a), load(b))
    expected = pd.DataFrame([{"key": "environment.kernel", "a": "6.1", "b": "6.2"},
                             {"key": "host", "a": "h1", "b": "-"},
                             {"key": "wiring", "a": "-", "b": "fast"}],
                            columns=["key", "a", "b"])
    pd.testing.assert_frame_equal(env.reset_index(drop=True), expected)
    same = compare_report.environment(load(a), load(a))
    assert list(same.columns) == ["key", "a", "b"] and same.empty


def test_fmt_blanks_nan_rounds_to_four_digits_and_has_no_index() -> None:
    text = compare_report._fmt(pd.DataFrame({"x": [1.234567, math.nan], "y": ["p", "q"]}))
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "x"  # no index column before x
    assert "1.235" in lines[2] and "1.234567" not in text
    assert lines[3].split("|")[1].strip() == ""  # NaN is a blank cell, not "nan"
    assert compare_report._fmt(pd.DataFrame({"x": []})) == "(none)"


@pytest.mark.parametrize("scale, estimate, word", [
    (compare.LOG, 1.5, "higher"), (compare.LOG, 0.5, "lower"), (compare.LOG, 1.0, "lower"),
    ("units", 2.0, "higher"), ("units", -2.0, "lower"), ("units", 0.0, "lower")])
def test_change_words_say_higher_only_for_a_rise(scale: str, estimate: float,
                                                 word: str) -> None:
    r = SimpleNamespace(scale=scale, estimate=estimate, ci95_low=estimate, ci95_high=estimate,
                        what="throughput", path="pod-cross-node", metric="throughput_bps")
    assert compare_words._change_words(r).endswith(f", {word} in B")


def test_a_margin_not_above_zero_says_what_a_margin_is() -> None:
    with pytest.raises(UsageError) as err:
        compare.Margins.parse(["0"])
    assert str(err.value) == "--margin 0: the margin must be above 0 (0.1 is +-10 %)"


def test_the_method_sentence_states_the_level_and_its_interval() -> None:
    five = compare_report._about(compare.Margins())
    one = compare_report._about(compare.Margins(), 0.01)
    assert "(the 90% interval of B/A" in five and "(the 98% interval of B/A" in one
    assert five.endswith("(retransmits ±100 %, ttl ±1 %) (`--margin`).")


def test_markdown_header_gate_figure_and_level(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", STEADY))
    b = load(make_run(tmp_path, "b", [0.81, 0.79, 0.80, 0.82, 0.80]))
    lines = compare_report.markdown([a, b], figure="r.png", gate=compare.RATIOS).splitlines()
    assert lines[0] == f"# Runs compared: {a.name}, {b.name}" and lines[1] == ""
    assert lines[2].startswith(f"Reference (A): `{a.name}`. Gate: `ratios` (verdicts and "
                               "paired ratios decide; absolute figures are shown, not "
                               "gated). Each metric")
    assert lines[2].endswith("(`--margin`).") and lines[3] == ""
    assert lines[4:6] == ["![r.png](r.png)", ""]
    every = compare_report.markdown([a, b]).splitlines()
    assert "Gate: `all` (verdicts and every metric decide). Each metric" in every[2]
    assert every[3] == "" and every[4].startswith("## B:")
    assert "is below 0.01 and" in compare_report.markdown([a, b], alpha=0.01)
    assert "is below 0.05 and" in compare_report.markdown([a])  # nothing compared, no level lost


def test_markdown_uses_the_margins_it_is_given(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", [0.800, 0.801, 0.799, 0.800, 0.801]))
    b = load(make_run(tmp_path, "b", [0.824, 0.825, 0.823, 0.824, 0.825]))  # +3 %
    assert "**Same within ±15 %" in compare_report.markdown([a, b], gate=compare.RATIOS)
    tight = compare_report.markdown([a, b], gate=compare.RATIOS,
                             margins=compare.Margins.parse(["0.01"]))
    assert "**Differs:**" in tight


def test_markdown_names_the_suspect_run(tmp_path: Path) -> None:
    a = load(make_run(tmp_path, "a", STEADY, fidelity="suspect"))
    b = load(make_run(tmp_path, "b", STEADY))
    text = compare_report.markdown([a, b])
    assert "**A was flagged suspect by the fidelity monitor" in text
    text = compare_report.markdown([b, a])
    assert "**B was flagged suspect by the fidelity monitor" in text
