"""The robust baseline: median and scaled MAD, the tolerance and the ratio that must both be passed."""

from __future__ import annotations

import pytest

from django_etl.monitoring.baselines import MAD_SCALE, Baseline, clean_values, deviation, robust_baseline


def test_robust_baseline_median_and_mad_ignore_one_outlier():
    baseline = robust_baseline([10, 11, 9, 10, 12, 10, 9, 11, 10, 500], min_history=10)
    assert baseline == Baseline(median=10.0, mad=1.0, n=10)
    assert baseline.scaled_mad == pytest.approx(MAD_SCALE)


def test_robust_baseline_too_little_history_is_none():
    assert robust_baseline([10] * 9, min_history=10) is None
    # Missing or broken figures do not count as history (never as zero).
    assert robust_baseline([10] * 9 + [None, "x", float("nan"), True], min_history=10) is None


def test_clean_values_keeps_finite_numbers_only():
    assert clean_values([1, "2.5", None, "abc", float("inf"), False, 3.0]) == [1.0, 2.5, 3.0]


def test_deviation_slow_value_past_tolerance_and_ratio():
    baseline = Baseline(median=10.0, mad=1.0, n=12)
    found = deviation("duration_seconds", 40, baseline, tolerance=3, min_ratio=1.5)
    assert found is not None
    assert (found.direction, found.ratio) == ("above", 4.0)
    assert found.score == pytest.approx(30 / MAD_SCALE)
    assert found.as_dict(window=30)["baseline"] == {"median": 10.0, "mad": 1.0, "scaled_mad": 1.483}


def test_deviation_within_tolerance_is_none():
    baseline = Baseline(median=10.0, mad=1.0, n=12)
    assert deviation("duration_seconds", 14, baseline, tolerance=3, min_ratio=1.2) is None


def test_deviation_stable_history_needs_the_ratio_too():
    # MAD 0: any change is "infinitely many MADs"; the ratio keeps 10.2 s against 10 s quiet.
    baseline = Baseline(median=10.0, mad=0.0, n=12)
    assert deviation("duration_seconds", 10.2, baseline, tolerance=3, min_ratio=1.5) is None
    assert deviation("duration_seconds", 16, baseline, tolerance=3, min_ratio=1.5) is not None


def test_deviation_below_only_when_asked():
    baseline = Baseline(median=1000.0, mad=10.0, n=12)
    assert deviation("rows", 100, baseline, tolerance=3, min_ratio=2) is None
    found = deviation("rows", 100, baseline, tolerance=3, min_ratio=2, direction="either")
    assert found is not None and found.direction == "below" and found.ratio == 0.1
    assert deviation("rows", 600, baseline, tolerance=3, min_ratio=2, direction="below") is None


def test_deviation_zero_median_any_rise_counts():
    baseline = Baseline(median=0.0, mad=0.0, n=12)
    found = deviation("rows", 5, baseline, tolerance=3, min_ratio=2, direction="either")
    assert found is not None and found.ratio is None
    assert deviation("rows", 0, baseline, tolerance=3, min_ratio=2, direction="either") is None
