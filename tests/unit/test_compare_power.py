"""The test that compares two runs (testbed.results.stats.change) and the three answers
built on it (testbed.results.compare): checked against scipy, against known cases, and by
simulation with a fixed seed (how often a 1.5x change is found, missed or, never, called
the same; how often no change is called a difference)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from testbed.results import compare
from testbed.results import stats as st


def logs(x: list[float] | np.ndarray) -> np.ndarray:
    return np.log(np.asarray(x, dtype=float))


def test_change_on_the_log_scale_is_welch_as_scipy_computes_it() -> None:
    rng = np.random.default_rng(1)
    for n_a, n_b in ((3, 3), (5, 7), (10, 4)):
        a, b = rng.lognormal(0, 0.3, n_a), rng.lognormal(0.2, 0.1, n_b)
        c = st.change(a, b, 0.15)
        ref = stats.ttest_ind(logs(b), logs(a), equal_var=False)
        ci = ref.confidence_interval(0.95)
        assert c.scale == st.LOG and (c.n_a, c.n_b) == (n_a, n_b)
        assert c.p == pytest.approx(ref.pvalue, rel=1e-9)
        assert c.df == pytest.approx(ref.df, rel=1e-9)
        assert math.log(c.low) == pytest.approx(ci.low, rel=1e-9)
        assert math.log(c.high) == pytest.approx(ci.high, rel=1e-9)
        assert c.estimate == pytest.approx(math.exp(logs(b).mean() - logs(a).mean()))
        assert c.diff == pytest.approx(logs(b).mean() - logs(a).mean())
        assert c.center_a == pytest.approx(stats.gmean(a))
        assert c.center_b == pytest.approx(stats.gmean(b))
        # TOST: the larger of the two one-sided p-values against -+log(1.15)
        bound = math.log(1.15)
        lower = stats.ttest_ind(logs(b) + bound, logs(a), equal_var=False,
                                alternative="greater").pvalue
        upper = stats.ttest_ind(logs(b) - bound, logs(a), equal_var=False,
                                alternative="less").pvalue
        assert c.p_same == pytest.approx(max(lower, upper), rel=1e-9)
        assert c.bound == pytest.approx(bound) and c.margin == 0.15
        pooled = np.sqrt(((n_a - 1) * logs(a).var(ddof=1) + (n_b - 1) * logs(b).var(ddof=1))
                         / (n_a + n_b - 2))
        assert c.sd == pytest.approx(pooled)


def test_tost_holds_exactly_when_the_90_interval_is_inside_the_margin() -> None:
    a = [1.0, 1.05, 0.97, 1.02, 0.99]
    seen = set()
    for shift in (1.0, 1.05, 1.1, 1.13, 1.2, 0.9, 0.85):
        b = [v * shift for v in [1.01, 0.98, 1.03, 1.0, 0.96]]
        c = st.change(a, b, 0.15)
        c90 = st.change(a, b, 0.15, level=0.90)
        inside = c90.low > 1 / 1.15 and c90.high < 1.15
        assert (c.p_same < 0.05) == inside, shift
        seen.add(inside)
    assert seen == {True, False}


def test_the_95_interval_covers_95_percent() -> None:
    # coverage of the true ratio (1.5) over many seeded samples: 95 %, not 90 %
    rng = np.random.default_rng(11)
    hits = hits90 = 0
    trials = 1000
    for _ in range(trials):
        a, b = rng.lognormal(0, 0.2, 5), rng.lognormal(math.log(1.5), 0.2, 5)
        c = st.change(a, b, 0.15)
        hits += c.low < 1.5 < c.high
        c90 = st.change(a, b, 0.15, level=0.90)
        hits90 += c90.low < 1.5 < c90.high
    assert 0.93 < hits / trials < 0.97  # +-3 binomial sd
    assert 0.87 < hits90 / trials < 0.93


def test_no_spread_fewer_than_two_and_zeros() -> None:
    same = st.change([64.0, 64.0], [64.0, 64.0, 64.0], 0.01)
    assert (same.p, same.p_same, same.low, same.high, same.se) == (1.0, 0.0, 1.0, 1.0, 0.0)
    assert same.df == 3.0 and same.sd == 0.0  # n_a + n_b - 2
    assert (same.scale, same.margin, same.diff) == (st.LOG, 0.01, 0.0)
    assert same.center_a == pytest.approx(64.0) == same.center_b
    hop = st.change([64.0, 64.0], [63.0, 63.0], 0.01)  # one hop fewer, exactly
    assert hop.p == 0.0 and hop.p_same == 1.0 and hop.estimate == pytest.approx(63 / 64)
    assert hop.diff == pytest.approx(math.log(63 / 64)) and hop.center_b == pytest.approx(63)
    # exact differences in units: the margin is exclusive, and not on the log scale
    assert st.change([0.0, 0.0], [0.5, 0.5], 0.1, margin_units=0.6).p_same == 0.0
    assert st.change([0.0, 0.0], [1.0, 1.0], 0.1, margin_units=1.0).p_same == 1.0
    within = st.change([64.0, 64.0], [63.0, 63.0], 0.02)
    assert within.p == 0.0 and within.p_same == 0.0
    one = st.change([1.0], [2.0, 2.1], 0.1)
    assert one.n_b == 2 and one.margin == 0.1 and one.scale == st.LOG
    assert all(math.isnan(x) for x in (one.diff, one.df, one.sd, one.high))
    assert one.n_a == 1 and one.estimate == pytest.approx(math.exp(
        logs([2.0, 2.1]).mean())) and all(math.isnan(x) for x in (one.p, one.p_same,
                                                                   one.low, one.se))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty side is taken
        empty = st.change([], [1.0], 0.1)
        assert math.isnan(empty.estimate) and empty.scale == st.LINEAR
        assert math.isnan(empty.center_a) and empty.center_b == 1.0
        lost = st.change([1.0, 2.0], [], 0.1)
        assert lost.scale == st.LINEAR and lost.n_b == 0 and math.isnan(lost.estimate)
    assert st.change([1.0, 2.0], [0.0, 1.0], 0.1).scale == st.LINEAR  # a zero in B alone
    # a zero: no log; B - A in the units, Welch on the values themselves
    loss = st.change([0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0], 0.1, margin_units=1.0)
    ref = stats.ttest_ind([0.0, 2.0, 0.0, 1.0], [0.0] * 4, equal_var=False)
    assert loss.scale == st.LINEAR and loss.estimate == 0.75 and loss.margin == 1.0
    assert loss.p == pytest.approx(ref.pvalue) and loss.bound == 1.0
    assert loss.to_scale(0.5) == 0.5 and st.change([1.0, 2.0], [1.0, 2.0], 0.1).to_scale(
        math.log(1.5)) == pytest.approx(0.5)
    default_units = st.change([0.0, 4.0], [0.0, 4.0], 0.5)
    assert default_units.margin == 1.0  # half of A's mean
    zeros = st.change([0.0, 0.0], [0.0, 0.0], 0.1, margin_units=1.0)
    assert zeros.p == 1.0 and zeros.p_same == 0.0  # identical: the same
    no_margin = st.change([0.0, 0.0], [0.0, 0.0], 0.1, margin_units=0.0)
    assert no_margin.p_same == 0.0  # identical is the same even with a margin of 0
    assert st.change([0.0, 0.0], [1.0, 1.0], 0.1, margin_units=0.0).p_same == 1.0
    with pytest.raises(ValueError, match="^a negative value cannot be compared as a "
                                         "measurement$"):
        st.change([1.0, -1.0], [1.0, 1.0], 0.1)
    nan = st.change([1.0, math.nan, 1.1], [1.0, 1.1], 0.1)
    assert nan.n_a == 2


def test_detectable_change_has_the_power_it_claims() -> None:
    rng = np.random.default_rng(5)
    sigma, n = 0.2, 6
    c = st.change(rng.lognormal(0, sigma, n), rng.lognormal(0, sigma, n), 0.15)
    delta = st.detectable(c, 0.05)
    t = stats.t
    assert delta == pytest.approx((t.ppf(0.975, c.df) + t.ppf(0.8, c.df)) * c.se)
    assert st.detectable(c, 0.05 / 3) > delta  # a family asks for more
    assert st.detectable(c, 0.05, power=0.9) > delta
    assert math.isnan(st.detectable(st.change([1.0], [1.0, 2.0], 0.1)))
    # with the spread known (se fixed), a change of delta is found about 80 % of the time
    found = 0
    for _ in range(2000):
        d = rng.normal(delta, c.se)
        found += 2 * t.sf(abs(d) / c.se, c.df) < 0.05
    assert 0.77 < found / 2000 < 0.83


def factors(k):  # int or array of ints
    """(differ, same) per unit of sd at k rounds a side, straight from scipy."""
    df = 2 * k - 2
    root = np.sqrt(2 / k)
    return ((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * root,
            (stats.t.ppf(0.95, df) + stats.t.ppf(0.9, df)) * root)


def test_rounds_needed() -> None:
    bound = math.log(1.15)
    # no change observed: the rounds at which the TOST shows "same" with 80 % power
    n = st.rounds_needed(0.1, bound)
    assert n == 10
    assert factors(n)[1] * 0.1 <= bound < factors(n - 1)[1] * 0.1  # the first enough
    # a change observed inside the margin: less room left, more rounds
    inside = st.rounds_needed(0.1, bound, math.log(1.07))
    assert factors(inside)[1] * 0.1 <= bound - math.log(1.07) < factors(inside - 1)[1] * 0.1
    assert st.rounds_needed(0.1, bound, -math.log(1.07)) == inside > n
    # one outside it: the rounds that detect it
    out = st.rounds_needed(0.1, bound, math.log(1.3))
    assert factors(out)[0] * 0.1 <= math.log(1.3) < factors(out - 1)[0] * 0.1
    # at the margin itself, only detection can tell
    at = st.rounds_needed(0.1, bound, bound)
    assert factors(at)[0] * 0.1 <= bound < factors(at - 1)[0] * 0.1
    # near the margin, whichever comes first
    ks = np.arange(2, st.MAX_ROUNDS + 1)
    table = factors(ks)

    def first(ok) -> int:
        hits = np.nonzero(ok(*table))[0]
        return int(ks[hits[0]]) if len(hits) else st.MAX_ROUNDS + 1

    for frac in (0.5, 0.8, 0.95):
        d = frac * bound
        assert st.rounds_needed(0.1, bound, d) == min(
            first(lambda _differ, same, d=d: same * 0.1 <= bound - d),
            first(lambda differ, _same, d=d: differ * 0.1 <= d))
    assert st.rounds_needed(0.1, bound, alpha=0.05 / 23, diff=math.log(1.3)) > out
    assert st.rounds_needed(0.1, bound, power=0.9) > n
    assert st.rounds_needed(0.1, bound, alpha_same=0.01) > n
    assert st.rounds_needed(0.1, bound, alpha=0.01) == n  # "same" needs no family level
    assert st.rounds_needed(0.0, bound) == 2 and st.rounds_needed(0.0, bound, 0.3) == 2
    # a margin of 0 (a metric all zero in A, no unit floor): only detection can tell
    assert st.rounds_needed(0.1, 0.0, math.log(1.3)) == out
    # exactly at a factor's edge: enough (<=, not <)
    differ_f, same_f = st._round_factors(0.05, 0.8, 0.05)
    assert st.rounds_needed(0.1, same_f[8] * 0.1) == 10
    assert st.rounds_needed(0.1, 1e-6, differ_f[8] * 0.1) == 10
    assert st.rounds_needed(0.0, math.nan, 0.0) == st.MAX_ROUNDS + 1
    assert st.rounds_needed(10.0, bound) == st.MAX_ROUNDS + 1
    assert st.rounds_needed(0.1, bound, 1e-9) == n  # a tiny change is not found first
    for nothing in ((math.nan, bound, 0.0), (0.1, math.nan, 0.0), (0.1, 0.0, 0.0),
                    (0.1, bound, math.nan)):
        assert st.rounds_needed(*nothing) == st.MAX_ROUNDS + 1


def test_holm_orders_and_keeps_monotone() -> None:
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm([0.04, 0.001, 0.02, 0.5]) == pytest.approx([0.08, 0.004, 0.06, 0.5])
    assert st.holm([0.3, 0.2]) == pytest.approx([0.4, 0.4])  # never below an earlier step
    assert st.holm([0.9, 0.8]) == [1.0, 1.0]
    nan = st.holm([math.nan, 0.02])
    assert nan[1] == 0.02 and math.isnan(nan[0])
    assert st.holm([]) == []


def simulate(n: int, sigma: float, factor: float, trials: int, seed: int = 7,
             paths: int = 3) -> dict[str, dict[str, float]]:
    """A family of `paths` paired ratios, per-round log-normal noise `sigma`, `n` rounds a
    side; the first path's ratio multiplied by `factor` in B. Shares of each answer for
    that path and for the family (the gate)."""
    rng = np.random.default_rng(seed)
    first: list[str] = []
    overall: list[str] = []
    for _ in range(trials):
        rows = []
        for i in range(paths):
            a = np.exp(rng.normal(0, sigma, n)) * 0.8
            b = np.exp(rng.normal(0, sigma, n)) * 0.8 * (factor if i == 0 else 1)
            rows.append(compare._row("throughput / node-node", f"p{i}", "ratio", list(a),
                                     list(b), 0.15, "", True))
        compare._judge(rows)
        answers = [r["answer"] for r in rows]
        first.append(answers[0])
        overall.append(compare.DIFFERS if compare.DIFFERS in answers else
                       compare.SAME if all(a == compare.SAME for a in answers) else
                       compare.CANNOT)
    return {name: {a: sum(x == a for x in xs) / trials
                   for a in (compare.DIFFERS, compare.SAME, compare.CANNOT)}
            for name, xs in (("path", first), ("family", overall))}


@pytest.mark.parametrize(("n", "sigma", "low", "high"), [
    (5, 0.15, 0.65, 0.97),   # 0.84 in 400 trials
    (5, 0.30, 0.08, 0.40),   # 0.23: at the noise the project quotes, 5 rounds mostly
    (10, 0.15, 0.95, 1.0),   # 1.00   cannot tell (and say so), never "same"
    (10, 0.30, 0.45, 0.82),  # 0.64
])
def test_a_1_5x_change_is_found_or_cannot_tell_never_same(n: int, sigma: float, low: float,
                                                          high: float) -> None:
    shares = simulate(n, sigma, 1 / 1.5, 120)
    assert low <= shares["path"][compare.DIFFERS] <= high, shares
    assert shares["path"][compare.SAME] == 0 and shares["family"][compare.SAME] == 0
    assert shares["path"][compare.CANNOT] == pytest.approx(
        1 - shares["path"][compare.DIFFERS])


@pytest.mark.parametrize(("n", "sigma", "same_low"), [(5, 0.15, 0.0), (10, 0.05, 0.9)])
def test_no_change_is_rarely_a_difference(n: int, sigma: float, same_low: float) -> None:
    shares = simulate(n, sigma, 1.0, 200, seed=3)
    assert shares["family"][compare.DIFFERS] <= 0.09, shares  # about alpha (0.05)
    assert shares["family"][compare.SAME] >= same_low, shares
