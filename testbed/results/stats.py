"""Statistics for noisy measurements (issue 13): paired ratios, bootstrap intervals,
physically possible bounds, and the rank test that compares two runs. Pure.

Why paired ratios: on a small machine the same path's throughput moves by 1.4-1.9x
between runs, while the ratio of two paths measured back to back in the same round moves
far less (a slow moment weighs on both). The throughput experiment measures its paths in
interleaved rounds (ABCD ABCD ...), so round r of a path pairs with round r of the
baseline.

Why bootstrap percentile intervals: they stay inside the range the data can take (a
ratio's interval never goes below zero, as a t interval on three repeats did), and make no
normality assumption. With few rounds they are narrow and optimistic: the report always
says how many rounds an interval rests on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
RESAMPLES = 4999
SEED = 20261127  # fixed: the same data give the same interval in every report
ALPHA = 0.05
# the range each metric can take; anything else measured here is >= 0
BOUNDS = {"loss_pct": (0.0, 100.0), "missed_intended_pct": (0.0, 100.0), "ttl": (0.0, 255.0)}
RATIO_COLUMNS = ["path", "baseline", "rounds", "median", "ci95_low", "ci95_high"]


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
    than two values, the value itself when all are equal."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
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


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value a rank test of n_a against n_b values can give
    (complete separation): 2 / C(n_a + n_b, n_a). Below ALPHA or no difference can show."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def rank_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (exact for small samples without ties); NaN for
    an empty side."""
    a = [v for v in a if not math.isnan(v)]
    b = [v for v in b if not math.isnan(v)]
    if not a or not b:
        return math.nan
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def ratio_of_medians_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Bootstrap interval of median(b) / median(a), each side resampled on its own."""
    xa = np.asarray([v for v in a if not math.isnan(v)], dtype=float)
    xb = np.asarray([v for v in b if not math.isnan(v)], dtype=float)
    if len(xa) < 2 or len(xb) < 2 or np.median(xa) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(SEED)
    ma = np.median(rng.choice(xa, (RESAMPLES, len(xa))), axis=1)
    mb = np.median(rng.choice(xb, (RESAMPLES, len(xb))), axis=1)
    ok = ma > 0
    ratios = mb[ok] / ma[ok]
    if not len(ratios):
        return math.nan, math.nan
    tail = 100 * (1 - LEVEL) / 2
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


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
