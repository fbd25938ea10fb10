"""`testbed compare`'s words: a metric's change, its margin, what these rounds could
detect, and the one-line headline. Apart from the comparison (testbed/results/compare.py)
so that each stays short; the comparison imports the answers' names from here."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from testbed.results.stats import LOG

if TYPE_CHECKING:
    from testbed.results.compare import Comparison

DIFFERS, SAME, CANNOT = "differs", "same", "cannot tell"
RATIOS = "ratios"  # the gate of the paired ratios (compare.GATES)
HEADLINE_ITEMS = 6


def _pct(m: float) -> str:
    return f"{100 * m:.3g} %"


def _name(r: Any) -> str:
    return (f"{r.path} {r.what} ratio" if r.metric == "ratio"
            else f"{r.path} {r.metric} ({r.what})")


def _rel(x: float) -> str:
    """A ratio as a signed percentage: 0.667 -> -33.3 %."""
    return f"{100 * (x - 1):+.1f} %"


def _units(x: float) -> str:
    return f"{x:+.4g}"


def _change_words(r: Any) -> str:
    """`pod-cross-node throughput_bps (throughput): 0.667x (-33.3 %, 95 % interval
    -35.0 % .. -31.6 %), lower in B`; in units for a metric with a zero."""
    if r.scale == LOG:
        size = (f"{r.estimate:.3g}x ({_rel(r.estimate)}, 95 % interval {_rel(r.ci95_low)} .. "
                f"{_rel(r.ci95_high)})")
        up = r.estimate > 1
    else:
        size = (f"B - A {_units(r.estimate)} (95 % interval {_units(r.ci95_low)} .. "
                f"{_units(r.ci95_high)})")
        up = r.estimate > 0
    return f"{_name(r)}: {size}, {'higher' if up else 'lower'} in B"


def _margin_words(r: Any) -> str:
    return f"±{_pct(r.margin)}" if r.scale == LOG else f"±{r.margin:.3g}"


def _detectable_words(r: Any) -> str:
    if math.isnan(r.detectable):
        return ""
    return f"±{_pct(r.detectable)}" if r.scale == LOG else f"±{r.detectable:.3g}"


def _rounds_words(n: int) -> str:
    return f"more than {n - 1}" if n > 1000 else str(n)


def _cannot_words(r: Any, rounds: bool) -> str:
    if math.isnan(r.detectable):
        return r.note
    return (f"smallest detectable change {_detectable_words(r)} at {r.n_a}/{r.n_b} rounds, "
            f"margin {_margin_words(r)}"
            + (f" (measure {_rounds_words(r.rounds_needed)} rounds)" if rounds else ""))


def _answer_words(r: Any) -> str:
    if r.answer == SAME:
        return f"same within {_margin_words(r)}"
    if r.answer == DIFFERS:
        return "differs: " + (_rel(r.estimate) if r.scale == LOG else _units(r.estimate))
    return "cannot tell"


def headline(c: Comparison) -> str:
    """One line: what changed and by how much, or same within which margins, or why it
    cannot tell and how many rounds would."""
    reasons = c.reasons(rounds=False)
    more = (f"; and {len(reasons) - HEADLINE_ITEMS} more" if len(reasons) > HEADLINE_ITEMS
            else "")
    gated = c.table[c.table["gated"]]
    if c.answer == DIFFERS:
        return "**Differs:** " + "; ".join(reasons[:HEADLINE_ITEMS]) + more + "."
    scope = "verdicts and paired ratios" if c.gate == RATIOS else "verdicts and every metric"
    within = c.margins.describe(list(gated["metric"]))
    claims = (f"{len(c.verdicts)} verdict(s) unchanged" if len(c.verdicts) else
              "no verdicts in either run")
    if c.answer == SAME:
        return (f"**Same within {within}:** {claims}, {len(gated)} metric(s) shown the same "
                f"(gate: {scope}).")
    cannot = gated[gated["answer"] == CANNOT]
    rounds = int(cannot["rounds_needed"].max())
    return (f"**Cannot tell:** {len(cannot)} of {len(gated)} metric(s) neither differ nor "
            f"are shown the same within {within}: "
            + "; ".join(reasons[:HEADLINE_ITEMS]) + more
            + f" (measure {_rounds_words(rounds)} rounds a side); {claims}.")
