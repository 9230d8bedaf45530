"""scripts.stats (issue 20): Welch's t with t quantiles, ties only by equivalence, undecided otherwise. Each case has
the spreads and seed counts of the suite's own evidence (SE above the 0.5 pp floor, n of 3 and 5), chosen so that
the planted shortcuts (a fixed 2 SE, one group's SE, pooled degrees of freedom, z instead of t, a wider margin, no
floor) give another answer."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from scripts.stats import (
    AHEAD,
    BEHIND,
    EQUIVALENCE_MARGIN_PP,
    FLOOR_PP,
    TIE,
    UNDECIDED,
    Stat,
    compare,
    detectable,
    seeds_to_settle,
    t_quantile,
    welch,
)


def group(mean, std, n, failed=""):
    return Stat("g", mean, std, n, failed, n)


def test_welch_degrees_of_freedom_and_se_by_hand():
    a, b = group(85.0, 1.6, 3), group(82.7, 0.7, 5)
    va, vb = 1.6 ** 2 / 3, 0.7 ** 2 / 5
    diff, se, df = welch(a, b)
    assert diff == pytest.approx(2.3) and se == pytest.approx(math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 4))
    assert 2 < df < 3  # far from the pooled n_a + n_b - 2 = 6


def test_agrees_with_scipys_welch_test():
    a, b = group(85.5, 1.1, 5), group(83.0, 1.9, 3)
    o = compare(a, b)
    expected = scipy_stats.ttest_ind_from_stats(85.5, 1.1, 5, 83.0, 1.9, 3, equal_var=False)
    assert o.p == pytest.approx(expected.pvalue, rel=1e-9)


def test_two_standard_errors_are_not_enough_at_n_3():
    """2.5 SE apart with 2-3 Welch degrees of freedom: p ≈ 0.1, undecided (a fixed '2 SE' rule says ahead)."""
    a, b = group(84.0, 1.6, 3), group(81.0, 1.2, 3)
    o = compare(a, b)
    assert abs(o.diff) / o.se > 2 and o.p > 0.05 and o.word == UNDECIDED
    assert "this n detects only |diff| >" in o.text and "seeds per group would settle it" in o.text


def test_both_groups_spread_counts():
    """A tight group against a wide one: the difference's SE is the wide one's (one group's SE would call it)."""
    a, b = group(84.0, 0.1, 5), group(82.0, 2.5, 3)
    o = compare(a, b)
    assert o.word == UNDECIDED and o.se > 1.4
    assert compare(a, group(82.0, 0.1, 3)).word == AHEAD


def test_welch_not_pooled_degrees_of_freedom():
    """Unequal spreads and n: significant with pooled df (n_a + n_b - 2 = 8), not with Welch's (about 2)."""
    a, b = group(84.0, 0.2, 7), group(82.0, 1.2, 3)
    _, se, df = welch(a, b)
    assert df < 2.5 and 2.0 > t_quantile(0.975, 8) * se and 2.0 < t_quantile(0.975, df) * se
    assert compare(a, b).word == UNDECIDED


def test_a_tie_needs_the_90_percent_interval_inside_the_margin_with_t_not_z():
    """diff 0.2, SE 0.45, df 4: the t interval (±0.96) reaches past ±1 pp, the z one (±0.74) would not."""
    a, b = group(82.2, 0.55, 3), group(82.0, 0.55, 3)
    o = compare(a, b)
    assert o.high > EQUIVALENCE_MARGIN_PP and o.diff + 1.645 * o.se < EQUIVALENCE_MARGIN_PP
    assert o.word == UNDECIDED
    tight = compare(group(82.2, 0.2, 5), group(82.0, 0.2, 5))
    assert tight.word == TIE and -EQUIVALENCE_MARGIN_PP < tight.low < tight.high < EQUIVALENCE_MARGIN_PP


def test_the_margin_is_one_point_not_two():
    """90 % interval [-1.2, +1.6]: inside ±2 pp, not inside ±1 pp."""
    o = compare(group(82.2, 1.2, 5), group(82.0, 1.2, 5))
    assert o.low < -1 and 1 < o.high < 2 and o.word == UNDECIDED


def test_the_floor_keeps_a_significant_sliver_from_being_a_lead():
    o = compare(group(82.4, 0.05, 5), group(82.0, 0.05, 5))
    assert o.p < 0.001 and o.diff < FLOOR_PP and o.word == TIE
    assert compare(group(82.6, 0.05, 5), group(82.0, 0.05, 5)).word == AHEAD
    assert detectable(0.0, 8) == FLOOR_PP


def test_divergence_decides_and_two_failures_do_not():
    assert compare(group(80, 1, 3), group(90, 1, 2, failed="2")).word == AHEAD
    assert compare(group(90, 1, 2, failed="1"), group(80, 1, 3)).word == BEHIND
    assert compare(group(90, 1, 2, failed="1"), group(80, 1, 2, failed="0")).word == UNDECIDED
    assert compare(group(90, 1, 1), group(80, 1, 3)).word == UNDECIDED  # one completed seed: no spread


def test_seeds_to_settle_decides_at_that_n_and_not_before():
    a, b = group(84.0, 1.6, 3), group(81.0, 1.2, 3)
    n = seeds_to_settle(a, b)
    assert n is not None and n > 3
    assert compare(a._replace(n=n), b._replace(n=n)).word == AHEAD
    assert compare(a._replace(n=n - 1), b._replace(n=n - 1)).word == UNDECIDED
    assert seeds_to_settle(group(82.0, 30.0, 3), group(81.9, 30.0, 3)) is None  # beyond 100 seeds
