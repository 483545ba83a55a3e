"""The statistics behind anomalies and forecasts: a daily series as level + trend + weekday.

A day's expected spend is `a + b·t + s[weekday]`: a line through the history (the trend, so
steady growth is expected, not anomalous) plus a weekday effect once there are two weeks of
history (so a Monday is compared with Mondays). Two fits of the same model:

- classic: least squares line, mean residual per weekday, scale = residual standard deviation;
- robust: Theil–Sen line, median residual per weekday, scale = 1.4826 · MAD of the residuals
  (past spikes move neither the line nor the scale much).

Floats inside (money comes in and leaves as Decimal, rounded by `usd` and `pct`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from costguard.money import MICRO

PCT = Decimal("0.01")


def usd(value: float | Decimal) -> Decimal:
    """A statistic as stored and served: a decimal rounded to the micro-dollar."""
    return Decimal(str(value)).quantize(MICRO)


def pct(value: float | Decimal) -> Decimal:
    return (Decimal(str(value)) * 100).quantize(PCT)


SEASONAL_MIN_DAYS = 14
"""Two of each weekday before a weekday effect is estimated."""
SCALE_FLOOR = 0.05
"""The scale is at least 5 % of the mean day: a perfectly regular tenant is not alarmed by
a cent's difference."""
MAD_TO_SIGMA = 1.4826
SPIKY_Z = 5.0
"""A history with a residual beyond 5 robust scales has outliers: it is 'spiky'."""


@dataclass(frozen=True)
class Fit:
    """A fitted daily model: expected(d) = intercept + slope·(d − origin) + weekday[d]."""

    origin: date
    intercept: float
    slope: float
    weekday: tuple[float, ...]
    """Seven additive effects, Monday first; zeros when the history is shorter than two weeks."""
    samples: tuple[int, ...]
    """History days behind each weekday's expectation (all days when not seasonal)."""
    scale: float
    center: float
    """The history's mean (classic) or median (robust) day."""
    deviation: float
    """The history's standard deviation (classic) or 1.4826·MAD (robust), around `center`."""
    residuals: tuple[float, ...]
    robust: bool

    def expected(self, day: date) -> float:
        t = (day - self.origin).days
        return max(0.0, self.intercept + self.slope * t + self.weekday[day.weekday()])


def _line(ts: Sequence[float], xs: Sequence[float], robust: bool) -> tuple[float, float]:
    if len(ts) < 2:
        return (xs[0] if xs else 0.0), 0.0
    if robust:
        slopes = [
            (xs[j] - xs[i]) / (ts[j] - ts[i])
            for i in range(len(ts))
            for j in range(i + 1, len(ts))
            if ts[j] != ts[i]
        ]
        slope = statistics.median(slopes) if slopes else 0.0
        intercept = statistics.median(x - slope * t for t, x in zip(ts, xs, strict=True))
        return intercept, slope
    mt, mx = statistics.fmean(ts), statistics.fmean(xs)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (x - mx) for t, x in zip(ts, xs, strict=True)) / var if var else 0.0
    return mx - slope * mt, slope


def fit(history: Sequence[tuple[date, float]], robust: bool = False) -> Fit:
    """Fit the daily model to a history of (day, spend) without gaps (zeros included)."""
    if not history:
        raise ValueError("an empty history has no fit")
    origin = history[0][0]
    ts = [float((d - origin).days) for d, _ in history]
    xs = [x for _, x in history]
    # A trend and a weekday effect need two weeks: a line through a few days extrapolates a
    # weekend dip into Monday (measured: a false alarm every Monday at 7 days of history).
    seasonal = len(history) >= SEASONAL_MIN_DAYS
    weekday = [0.0] * 7
    center_fn = statistics.median if robust else statistics.fmean
    intercept, slope = 0.0, 0.0
    # Backfitting, two rounds: the line on the deseasonalized days, the weekday effects on
    # what the line leaves (a 30-day window does not hold whole weeks, so one round is biased).
    for _ in range(2 if seasonal else 1):
        adjusted = [x - weekday[d.weekday()] for (d, _), x in zip(history, xs, strict=True)]
        if seasonal:
            intercept, slope = _line(ts, adjusted, robust)
        else:
            intercept, slope = center_fn(adjusted), 0.0
        if seasonal:
            by_day: dict[int, list[float]] = {}
            for (d, x), t in zip(history, ts, strict=True):
                by_day.setdefault(d.weekday(), []).append(x - intercept - slope * t)
            weekday = [center_fn(by_day[w]) if w in by_day else 0.0 for w in range(7)]
    residuals = [
        x - (intercept + slope * t + weekday[d.weekday()])
        for (d, x), t in zip(history, ts, strict=True)
    ]
    if robust:
        # The median of four Mondays sits on them: its own residuals understate how far the
        # next Monday may fall. Each day is judged against the median of its other weekdays
        # (leave one out), which is how the next one will be judged.
        errors = residuals
        if seasonal:
            line = [x - intercept - slope * t for (_, x), t in zip(history, ts, strict=True)]
            errors = []
            for i, (d, _) in enumerate(history):
                others = [
                    line[j]
                    for j, (e, _) in enumerate(history)
                    if j != i and e.weekday() == d.weekday()
                ]
                errors.append(line[i] - (statistics.median(others) if others else 0.0))
        scale = MAD_TO_SIGMA * statistics.median(abs(r) for r in errors)
        residuals = errors
        center = statistics.median(xs)
        deviation = MAD_TO_SIGMA * statistics.median(abs(x - center) for x in xs)
    else:
        parameters = 2 + (6 if seasonal else 0)
        dof = max(1, len(residuals) - parameters)
        scale = math.sqrt(sum(r * r for r in residuals) / dof)
        center = statistics.fmean(xs)
        deviation = statistics.stdev(xs) if len(xs) > 1 else 0.0
    counts = [sum(1 for d, _ in history if d.weekday() == w) for w in range(7)]
    samples = tuple(counts) if seasonal else (len(history),) * 7
    return Fit(
        origin,
        intercept,
        slope,
        tuple(weekday),
        samples,
        scale,
        center,
        deviation,
        tuple(residuals),
        robust,
    )


@dataclass(frozen=True)
class Verdict:
    """How a day's value compares with its expectation from the history."""

    value: float
    expected: float
    threshold: float
    scale: float
    fit: Fit
    spiky: bool

    @property
    def exceeds(self) -> bool:
        return self.value > self.threshold


def judge(
    history: Sequence[tuple[date, float]], day: date, value: float, sigmas: float, method: str
) -> Verdict:
    """Compare `value` on `day` with the history's expectation + `sigmas` scales.

    `method`: `stddev` (classic fit), `mad` (robust fit) or `auto` (robust when the history
    itself has outliers — a spiky tenant, whose past spikes would inflate σ and hide the next).
    """
    mean_day = statistics.fmean(x for _, x in history)
    floor = SCALE_FLOOR * abs(mean_day)
    robust = fit(history, robust=True)
    spiky = any(abs(r) > SPIKY_Z * max(robust.scale, floor) for r in robust.residuals)
    chosen = robust if method == "mad" or (method == "auto" and spiky) else fit(history)
    # A prediction, not the history's spread: the expectation itself is estimated from the
    # few days behind it (four Mondays), which widens the band by √(1 + 1/n). (The robust
    # scale is already one of prediction errors, see `fit`.)
    samples = max(1, chosen.samples[day.weekday()])
    spread = 0.0 if chosen.robust else 1 / samples
    scale = max(chosen.scale * math.sqrt(1 + spread), floor)
    expected = chosen.expected(day)
    return Verdict(value, expected, expected + sigmas * scale, scale, chosen, spiky)
