"""Statistics for noisy measurements (issues 13 and 23): paired ratios, bootstrap
intervals, physically possible bounds, and the test that compares two runs. Pure.

Why paired ratios: on a small machine the same path's throughput moves by 1.4-1.9x
between runs, while the ratio of two paths measured back to back in the same round moves
far less (a slow moment weighs on both). The throughput experiment measures its paths in
interleaved rounds (ABCD ABCD ...), so round r of a path pairs with round r of the
baseline.

Why bootstrap percentile intervals for one run's figures: they stay inside the range the
data can take and make no normality assumption. With few rounds they are narrow and
optimistic: the report always says how many rounds an interval rests on.

Comparing two runs (`change`): what is tested, exactly. Throughputs, times and their
ratios are multiplicative (a slower machine scales them), so a metric whose values are
all above zero is compared on the log scale: the estimate is the ratio of the geometric
means B/A = exp(mean(log b) - mean(log a)), with Welch's t interval (unequal variances,
Welch-Satterthwaite degrees of freedom) and three tests on the difference d of the log
means:

- "no change" (H0: d = 0), two-sided Welch t: its p-value, adjusted by the caller over
  the family it reports (Holm);
- "the change is at least the margin" (H0: d <= -log(1+m) or d >= log(1+m)), two one-sided
  tests (TOST): p_same is the larger of the two one-sided p-values, below alpha exactly
  when the 1 - 2 alpha interval of B/A lies inside [1/(1+m), 1+m];
- power: the smallest change the two-sided test at level alpha would detect with
  probability POWER at these rounds and this spread, (t_{1-alpha/2} + t_POWER) * se, and
  the rounds a side at which a true change as large as the one observed would get a
  definite answer, "same" or "differs", with that probability (`rounds_needed`).

A rank test cannot do this at few rounds: at three rounds a side its smallest possible
p-value is 0.10, so no difference can ever show; Welch's t on the logs can.

A metric with a value of zero (a loss, a count, an outage) has no log: it is compared on
its own scale, B - A in its units, the same three tests with the margin in its units. Both
sides without any spread (every value the same): the difference is exact, p is 0 or 1, and
the interval is that one value. Fewer than two values on a side: no spread to judge by,
every p is NaN (the caller says "cannot tell" and why).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
RESAMPLES = 4999
SEED = 20261127  # fixed: the same data give the same interval in every report
ALPHA = 0.05
POWER = 0.80  # the chance of detecting the smallest detectable change
MAX_ROUNDS = 1000  # `rounds_needed` stops looking here
# the range each metric can take; anything else measured here is >= 0
BOUNDS = {"loss_pct": (0.0, 100.0), "missed_intended_pct": (0.0, 100.0), "ttl": (0.0, 255.0)}
RATIO_COLUMNS = ["path", "baseline", "rounds", "median", "ci95_low", "ci95_high"]
LOG, LINEAR = "log", "linear"


def bounds(metric: str) -> tuple[float, float]:
    """The physically possible range of a metric (a count, a time, a rate: >= 0)."""
    return BOUNDS.get(metric, (0.0, math.inf))


def clip(interval: tuple[float, float], metric: str) -> tuple[float, float]:
    """An interval cut to what the metric can be (NaN stays NaN)."""
    lo, hi = bounds(metric)
    low, high = interval
    return (low if math.isnan(low) else min(max(low, lo), hi),
            high if math.isnan(high) else min(max(high, lo), hi))


def bootstrap_ci(values: Sequence[float],
                 statistic: Callable[[np.ndarray], float] = np.median,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` (default the median); NaN for fewer
    than two values (every resample of equal values gives that value: the interval is
    the value itself)."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(SEED)
    resampled = rng.choice(data, (RESAMPLES, len(data)))
    values_ = np.array([statistic(row) for row in resampled]) if statistic is not np.median \
        else np.median(resampled, axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values_, tail)), float(np.percentile(values_, 100 - tail))


def paired(df: pd.DataFrame, experiment: str, metric: str, baseline: str) -> pd.DataFrame:
    """Per path class and round: the path's value over the baseline path's in the same
    round (`repeat`): columns path, repeat, ratio. Rounds missing either side are left
    out (an `error` row has no value)."""
    rows = df[(df["experiment"] == experiment) & (df["metric"] == metric)]
    rows = rows[rows["value"].notna()]
    base = rows[rows["path"] == baseline].groupby("repeat")["value"].median()
    out = []
    for (path, repeat), g in rows[rows["path"] != baseline].groupby(["path", "repeat"]):
        if repeat in base.index and base[repeat] > 0:
            out.append({"path": path, "repeat": int(repeat),
                        "ratio": float(g["value"].median()) / float(base[repeat])})
    return pd.DataFrame(out, columns=["path", "repeat", "ratio"])


def paired_ratios(df: pd.DataFrame, experiment: str = "throughput",
                  metric: str = "throughput_bps", baseline: str = "node-node") -> pd.DataFrame:
    """Per path class: rounds, median paired ratio to the baseline, its bootstrap 95 %
    interval (RATIO_COLUMNS)."""
    pairs = paired(df, experiment, metric, baseline)
    out = []
    for path, g in pairs.groupby("path", sort=False):
        values = g["ratio"].tolist()
        low, high = clip(bootstrap_ci(values), "ratio")
        out.append({"path": path, "baseline": baseline, "rounds": len(values),
                    "median": float(np.median(values)), "ci95_low": low, "ci95_high": high})
    return pd.DataFrame(out, columns=RATIO_COLUMNS)


@dataclass(frozen=True)
class Change:
    """Run B against run A for one metric (see the module's docstring for the tests).

    On the log scale `estimate`, `low` and `high` are B/A (ratio of geometric means) and
    `margin` is relative (same within [1/(1+margin), 1+margin]); on the linear scale they
    are B - A and the margin is in the metric's units. `se`, `df` and `sd` are on the
    scale of the test (log values or the values themselves)."""

    scale: str
    n_a: int
    n_b: int
    center_a: float  # geometric mean (log scale) or mean (linear)
    center_b: float
    estimate: float
    low: float  # the LEVEL interval of the estimate
    high: float
    p: float  # two-sided, H0 "no change"
    p_same: float  # TOST, H0 "the change is at least the margin"
    margin: float
    diff: float  # d: difference of the (log) means
    se: float
    df: float
    sd: float  # the two sides' pooled standard deviation, for `rounds_needed`

    @property
    def bound(self) -> float:
        """The margin on the test's scale: log(1 + m), or m units."""
        return math.log1p(self.margin) if self.scale == LOG else self.margin

    def to_scale(self, delta: float) -> float:
        """A change on the test's scale as reported: relative (e^delta - 1) or units."""
        return math.expm1(delta) if self.scale == LOG else delta


def _welch(xa: np.ndarray, xb: np.ndarray) -> tuple[float, float, float, float]:
    """d = mean(b) - mean(a), its standard error, Welch-Satterthwaite degrees of freedom,
    and the pooled standard deviation."""
    va, vb = float(np.var(xa, ddof=1)), float(np.var(xb, ddof=1))
    na, nb = len(xa), len(xb)
    se2 = va / na + vb / nb
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if se2 > 0 \
        else float(na + nb - 2)
    sd = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    return float(np.mean(xb) - np.mean(xa)), math.sqrt(se2), df, sd


def change(a: Sequence[float], b: Sequence[float], margin: float,
           margin_units: float | None = None, alpha: float = ALPHA,
           level: float = LEVEL) -> Change:
    """Run B's values against run A's (NaN values dropped; none may be negative): the
    estimate, its `level` interval, the two-sided p of "no change" and the TOST p of "the
    change is at least the margin" at `alpha`. On the log scale when every value is above
    zero (`margin` relative), else on the linear scale with `margin_units` (default:
    `margin` times A's mean)."""
    xa = np.asarray([v for v in a if not math.isnan(v)], dtype=float)
    xb = np.asarray([v for v in b if not math.isnan(v)], dtype=float)
    if (xa < 0).any() or (xb < 0).any():
        raise ValueError("a negative value cannot be compared as a measurement")
    log = len(xa) > 0 and len(xb) > 0 and bool((xa > 0).all() and (xb > 0).all())
    if log:
        ta, tb = np.log(xa), np.log(xb)
        center_a = float(np.exp(ta.mean()))
        center_b = float(np.exp(tb.mean()))
        m = margin
    else:
        ta, tb = xa, xb
        center_a = float(xa.mean()) if len(xa) else math.nan
        center_b = float(xb.mean()) if len(xb) else math.nan
        m = margin_units if margin_units is not None else margin * abs(center_a)
    scale = LOG if log else LINEAR
    back = (lambda d: math.exp(d)) if log else (lambda d: d)  # noqa: E731
    if len(ta) < 2 or len(tb) < 2:
        est = back(float(tb.mean() - ta.mean())) if len(ta) and len(tb) else math.nan
        return Change(scale, len(ta), len(tb), center_a, center_b, est, math.nan, math.nan,
                      math.nan, math.nan, m, math.nan, math.nan, math.nan, math.nan)
    d, se, df, sd = _welch(ta, tb)
    bound = math.log1p(m) if log else m
    if se == 0:  # no spread on either side: the difference is exact
        p = 1.0 if d == 0 else 0.0
        p_same = 0.0 if d == 0 or abs(d) < bound else 1.0  # identical: the same
        return Change(scale, len(ta), len(tb), center_a, center_b, back(d), back(d), back(d),
                      p, p_same, m, d, 0.0, df, 0.0)
    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * se
    p = float(2 * stats.t.sf(abs(d) / se, df))
    p_same = max(float(stats.t.sf((d + bound) / se, df)),   # H0: d <= -bound
                 float(stats.t.cdf((d - bound) / se, df)))  # H0: d >= +bound
    return Change(scale, len(ta), len(tb), center_a, center_b, back(d), back(d - half),
                  back(d + half), p, p_same, m, d, se, df, sd)


def detectable(c: Change, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest change (on the test's scale) that the two-sided test at `alpha`
    detects with probability `power` at these rounds and this spread: (t_{1-alpha/2} +
    t_power) * se. NaN without a spread to judge by."""
    if math.isnan(c.se):
        return math.nan
    return (float(stats.t.ppf(1 - alpha / 2, c.df)) + float(stats.t.ppf(power, c.df))) * c.se


@functools.lru_cache(maxsize=64)
def _round_factors(alpha: float, power: float, alpha_same: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """For n = 2 .. MAX_ROUNDS rounds a side, per unit of sd: the smallest change the
    two-sided test at alpha detects with `power`, (t_{1-alpha/2} + t_power) * sqrt(2/n),
    and the room within the margin that the TOST at alpha_same needs to show "same" with
    `power`, (t_{1-alpha_same} + t_{1-(1-power)/2}) * sqrt(2/n), at 2n - 2 degrees of
    freedom. Computed once per levels: `rounds_needed` is then a look-up."""
    n = np.arange(2, MAX_ROUNDS + 1)
    df = 2 * n - 2
    root = np.sqrt(2 / n)
    differ = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * root
    same = (stats.t.ppf(1 - alpha_same, df) + stats.t.ppf(1 - (1 - power) / 2, df)) * root
    return differ, same


def rounds_needed(sd: float, bound: float, diff: float = 0.0, alpha: float = ALPHA,
                  power: float = POWER, alpha_same: float = ALPHA) -> int:
    """Rounds a side (both sides alike, this pooled sd) at which a true change of `diff`
    (on the test's scale; the observed one, for "cannot tell") gets a definite answer with
    probability `power`: "same", when |diff| < bound (the margin on the test's scale) and
    (t_{1-alpha_same} + t_{1-(1-power)/2}) * sd * sqrt(2/n) <= bound - |diff|, or "differs",
    when (t_{1-alpha/2} + t_power) * sd * sqrt(2/n) <= |diff|; whichever comes first.
    No spread (sd 0): two rounds. MAX_ROUNDS + 1 when even MAX_ROUNDS are not enough, or
    nothing to judge by (a NaN)."""
    d = abs(diff)  # a NaN sd or diff: no comparison holds, MAX_ROUNDS + 1
    differ, same = _round_factors(alpha, power, alpha_same)
    ok = (same * sd <= bound - d) | ((differ * sd <= d) & (d > 0))
    found = np.nonzero(ok)[0]
    return int(found[0]) + 2 if len(found) else MAX_ROUNDS + 1


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN): comparing many metrics at once,
    some fall below ALPHA by chance alone; the adjusted ones keep the chance of any false
    finding in the family below ALPHA."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
