"""app/run/stats.py against answers known in closed form: a bootstrap of 0/1 outcomes resamples a
binomial, so its percentile interval sits at the binomial's quantiles."""

from __future__ import annotations

import math

import pytest

from ponder.app.run.stats import Interval, accuracy_interval, bootstrap_mean, interval_of, paired_difference, text


def binomial_quantile(n: int, p: float, q: float) -> float:
    """The smallest k/n with P(Binomial(n, p) <= k) >= q."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if cdf >= q:
            return k / n
    raise AssertionError("unreachable: the cdf reaches 1")


def test_interval_of_an_accuracy_is_at_the_binomial_quantiles():
    outcomes = [1] * 9 + [0] * 16  # 25 problems at 36%: about +-19 points
    iv = bootstrap_mean(outcomes)
    assert iv.point == pytest.approx(0.36)
    assert iv.level == 0.95
    # the exact quantiles of Binomial(25, 0.36)/25; 2000 resamples land within one problem of them
    assert abs(iv.lo - binomial_quantile(25, 0.36, 0.025)) <= 1 / 25 + 1e-9
    assert abs(iv.hi - binomial_quantile(25, 0.36, 0.975)) <= 1 / 25 + 1e-9
    assert 0.17 <= iv.half_width <= 0.21


def test_interval_narrows_with_more_problems():
    small = bootstrap_mean([True] * 9 + [False] * 16)
    large = bootstrap_mean([True] * 90 + [False] * 160)
    assert large.point == pytest.approx(small.point)
    # the half width scales as 1/sqrt(n): ten times the problems, about a third of the width
    assert large.half_width == pytest.approx(small.half_width / math.sqrt(10), rel=0.2)


def test_all_right_and_all_wrong_have_no_width():
    assert bootstrap_mean([True] * 12) == Interval(1.0, 1.0, 1.0)
    assert bootstrap_mean([False] * 12) == Interval(0.0, 0.0, 0.0)


def test_the_interval_is_deterministic_and_the_seed_is_the_only_randomness():
    values = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.05, 0.95, 0.15, 0.85]  # scores, not 0/1
    assert bootstrap_mean(values) == bootstrap_mean(values)
    assert bootstrap_mean(values, seed=1) != bootstrap_mean(values, seed=2)


def test_level_sets_the_width():
    values = [1] * 30 + [0] * 20
    assert bootstrap_mean(values, level=0.99).half_width > bootstrap_mean(values).half_width > bootstrap_mean(values, level=0.9).half_width
    with pytest.raises(ValueError, match="level 0.97"):
        bootstrap_mean(values, level=0.97)


def test_paired_difference_resamples_problems_as_pairs():
    # a is right on 10 problems b misses; both agree on the other 40 (20 right, 20 wrong)
    a = [1] * 10 + [1] * 20 + [0] * 20
    b = [0] * 10 + [1] * 20 + [0] * 20
    d = paired_difference(a, b)
    assert d.point == pytest.approx(0.2)
    # the difference per problem is 1 on 10 of 50 and 0 elsewhere: Binomial(50, 0.2)/50 again
    assert abs(d.lo - binomial_quantile(50, 0.2, 0.025)) <= 1 / 50 + 1e-9
    assert abs(d.hi - binomial_quantile(50, 0.2, 0.975)) <= 1 / 50 + 1e-9
    # far narrower than the spread two independent intervals would give the difference
    ia, ib = bootstrap_mean(a), bootstrap_mean(b)
    assert d.half_width < 0.75 * math.hypot(ia.half_width, ib.half_width)
    assert d.lo > 0  # shared problems make this difference clear where separate intervals overlap
    assert ia.lo < ib.hi


def test_paired_difference_of_a_run_with_itself_is_zero():
    a = [1, 0, 1, 1, 0, 0, 1]
    assert paired_difference(a, a) == Interval(0.0, 0.0, 0.0)


def test_bad_input_is_refused_with_one_line():
    with pytest.raises(ValueError, match="expected at least one outcome"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="3 outcomes against 2"):
        paired_difference([1, 0, 1], [1, 0])


def test_accuracy_interval_leaves_out_ungraded_problems():
    iv = accuracy_interval([True, None, False, True, None])
    assert iv is not None and iv.point == pytest.approx(2 / 3)
    assert accuracy_interval([None, None]) is None


def test_fields_and_text():
    iv = Interval(0.36, 0.18, 0.56)
    assert iv.fields() == {"accuracy": 0.36, "accuracy_lo": 0.18, "accuracy_hi": 0.56}
    assert iv.fields("coverage")["coverage_hi"] == 0.56
    assert str(iv) == "0.360 [0.180, 0.560]"


def test_the_interval_does_not_depend_on_the_order_of_problems():
    values = [1] * 7 + [0] * 13
    assert bootstrap_mean(values) == bootstrap_mean(values[::-1]) == bootstrap_mean(values[::3] + values[1::3] + values[2::3])


def test_summary_text():
    assert text({"accuracy": 0.36, "accuracy_lo": 0.18, "accuracy_hi": 0.56}) == "0.360 [0.180, 0.560]"
    assert text({"accuracy": None, "accuracy_lo": None, "accuracy_hi": None}) == "-"
    assert text({"accuracy": 0.5}) == "0.500"  # a summary written before intervals: the point alone
    assert interval_of({"coverage": 0.9, "coverage_lo": 0.8, "coverage_hi": 1.0}, "coverage") == Interval(0.9, 0.8, 1.0)
