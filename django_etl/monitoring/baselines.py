"""Robust baselines: the median and MAD of a pipeline's recent values, and when a new value is far from them.

Pure arithmetic (no Django, no database), shared by the end-of-run checks and the running-run check.

The baseline of a measure (a run's duration, a step's duration, rows per second, rows) is the **median** of
its last successful values and their **MAD** (median absolute deviation), scaled by 1.4826 so that it estimates
one standard deviation of normally distributed values — robust: one earlier outlier moves neither. A value
*deviates* when it is past ``median ± tolerance * scaled MAD`` **and** its ratio to the median is at least
``min_ratio`` (or at most ``1 / min_ratio`` for a drop): the ratio keeps a very stable history (a MAD near zero)
from flagging a few milliseconds or a handful of rows.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

# MAD * 1.4826 estimates the standard deviation of normally distributed values.
MAD_SCALE = 1.4826

Direction = Literal["above", "below", "either"]


@dataclass(frozen=True)
class Baseline:
    """Median and (unscaled) MAD of ``n`` values; ``scaled_mad`` is comparable to a standard deviation."""

    median: float
    mad: float
    n: int

    @property
    def scaled_mad(self) -> float:
        return self.mad * MAD_SCALE

    def as_dict(self) -> dict[str, Any]:
        return {"median": _round(self.median), "mad": _round(self.mad), "scaled_mad": _round(self.scaled_mad)}


@dataclass(frozen=True)
class Deviation:
    """``observed`` is past the baseline: ``ratio`` = observed / median, ``score`` = distance in scaled MADs."""

    measure: str
    observed: float
    baseline: Baseline
    ratio: float | None
    score: float | None
    direction: Literal["above", "below"]
    step_id: str | None = None
    step_name: str | None = None

    def as_dict(self, window: int) -> dict[str, Any]:
        entry = {
            "measure": self.measure,
            "direction": self.direction,
            "observed": _round(self.observed),
            "baseline": self.baseline.as_dict(),
            "ratio": _round(self.ratio),
            "score": _round(self.score),
            "window": window,
            "n": self.baseline.n,
        }
        if self.step_id is not None:
            entry.update(step_id=self.step_id, step_name=self.step_name)
        return entry


def clean_values(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (a missing or broken figure is left out, never counted as zero)."""
    cleaned = []
    for value in values:
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            cleaned.append(number)
    return cleaned


def robust_baseline(values: Iterable[Any], *, min_history: int) -> Baseline | None:
    """The baseline of ``values``, or None with fewer than ``min_history`` usable values (no alert before it)."""
    numbers = clean_values(values)
    if len(numbers) < max(1, min_history):
        return None
    median = statistics.median(numbers)
    mad = statistics.median(abs(v - median) for v in numbers)
    return Baseline(median=median, mad=mad, n=len(numbers))


def deviation(
    measure: str,
    observed: Any,
    baseline: Baseline | None,
    *,
    tolerance: float,
    min_ratio: float,
    direction: Direction = "above",
    step_id: str | None = None,
    step_name: str | None = None,
) -> Deviation | None:
    """A :class:`Deviation` when ``observed`` is far from ``baseline`` in ``direction``; None otherwise."""
    numbers = clean_values([observed])
    if baseline is None or not numbers:
        return None
    value = numbers[0]
    spread = tolerance * baseline.scaled_mad
    ratio = value / baseline.median if baseline.median else None
    score = abs(value - baseline.median) / baseline.scaled_mad if baseline.scaled_mad else None
    # A zero median (a step that usually moves no rows): any value above it is "infinitely" higher.
    higher = value > baseline.median + spread and (ratio is None or ratio >= min_ratio)
    if direction in {"above", "either"} and higher:
        return Deviation(measure, value, baseline, ratio, score, "above", step_id, step_name)
    lower = value < baseline.median - spread and ratio is not None and ratio <= 1 / min_ratio
    if direction in {"below", "either"} and lower:
        return Deviation(measure, value, baseline, ratio, score, "below", step_id, step_name)
    return None


def past(observed: float, baseline: Baseline, *, tolerance: float, min_ratio: float) -> bool:
    """Whether a value that can only grow (a running run's elapsed time) is already past ``baseline``."""
    return deviation("elapsed", observed, baseline, tolerance=tolerance, min_ratio=min_ratio) is not None


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 3) if abs(value) < 1e6 else round(value)
