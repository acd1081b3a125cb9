"""Intervals for accuracies: the one place ponder turns per-problem outcomes into a statistic.

Every accuracy ponder reports (run summaries, `ponder report`, `ponder merge`, the end-of-run
line) goes through `bootstrap_mean`, so a reader sees the same 95% percentile-bootstrap interval
everywhere; `paired_difference` compares two runs that answered the same problems.

The bootstrap is seeded, so a report printed twice prints the same interval. Pure Python: the
resampling of a few hundred problems two thousand times takes a fraction of a second, and the
app layer stays free of numeric dependencies.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0

T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its `level` confidence interval."""

    point: float
    lo: float
    hi: float
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def __str__(self) -> str:
        return f"{self.point:.3f} [{self.lo:.3f}, {self.hi:.3f}]"

    def fields(self, name: str = "accuracy", digits: int = 4) -> dict[str, float]:
        """The interval as flat summary fields: `name`, `name_lo`, `name_hi`."""
        return {name: round(self.point, digits), f"{name}_lo": round(self.lo, digits), f"{name}_hi": round(self.hi, digits)}


def _quantiles(values: list[float], level: float) -> tuple[float, float]:
    """The (1 - level)/2 and (1 + level)/2 quantiles, linearly interpolated between ranks."""
    tail = (1 - level) / 2
    cuts = round(1 / tail)  # statistics.quantiles cuts at i/cuts; the first and last are the tails
    if not 0 < level < 1 or abs(cuts * tail - 1) > 1e-9:
        raise ValueError(f"level {level}: expected a level whose tails are 1/k (0.9, 0.95, 0.98, 0.99 ...)")
    cut = statistics.quantiles(values, n=cuts, method="inclusive")
    return cut[0], cut[-1]


def bootstrap(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap of `statistic` over `items` (resampled with replacement, as units).

    The items are sorted first, so the interval depends on which outcomes there are, not on
    the order the problems finished in: a run and its merged shards get the same interval."""
    if not items:
        raise ValueError("bootstrap of no items: expected at least one outcome")
    if resamples < 2:
        raise ValueError(f"resamples {resamples}: expected at least 2")
    rng = random.Random(seed)
    pool = sorted(items)  # type: ignore[type-var]
    n = len(pool)
    draws = [statistic(rng.choices(pool, k=n)) for _ in range(resamples)]
    lo, hi = _quantiles(draws, level)
    point = statistic(items)
    # Interpolation can put a bound a rounding error past the point when every draw is equal.
    return Interval(point, min(lo, point), max(hi, point), level)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def bootstrap_mean(values: Sequence[float | bool], **kw: int | float) -> Interval:
    """The mean of `values` (an accuracy when they are 0/1 or booleans) with its interval."""
    return bootstrap([float(v) for v in values], _mean, **kw)  # type: ignore[arg-type]


def _difference(pairs: Sequence[tuple[float, float]]) -> float:
    return sum(a - b for a, b in pairs) / len(pairs)


def paired_difference(a: Sequence[float | bool], b: Sequence[float | bool], **kw: int | float) -> Interval:
    """mean(a) - mean(b) for two runs over the same problems (a[i] and b[i] are problem i).

    Problems are resampled as pairs, so what both runs find easy or hard cancels out: the
    interval is that of the difference, much narrower than two separate intervals suggest."""
    if len(a) != len(b):
        raise ValueError(f"paired difference: {len(a)} outcomes against {len(b)}; expected one pair per problem")
    return bootstrap([(float(x), float(y)) for x, y in zip(a, b)], _difference, **kw)  # type: ignore[arg-type]


def interval_of(summary: Mapping[str, Any], name: str = "accuracy") -> Interval | None:
    """The interval a summary carries as `name`, `name_lo`, `name_hi`; None where it has no
    value (nothing graded) or no bounds."""
    if summary.get(name) is None or summary.get(f"{name}_lo") is None:
        return None
    return Interval(float(summary[name]), float(summary[f"{name}_lo"]), float(summary[f"{name}_hi"]))


def text(summary: Mapping[str, Any], name: str = "accuracy") -> str:
    """How every ponder command prints an accuracy: `0.360 [0.180, 0.560]`, or `-`."""
    iv = interval_of(summary, name)
    if iv is not None:
        return str(iv)
    return "-" if summary.get(name) is None else f"{summary[name]:.3f}"


def accuracy_interval(correct: Sequence[bool | None]) -> Interval | None:
    """The interval of an accuracy over graded problems; ungraded ones (None) are left out,
    and None comes back when no problem was graded."""
    graded = [bool(c) for c in correct if c is not None]
    return bootstrap_mean(graded) if graded else None
