"""Summary statistics with the rules of kpi-definitions §A ("Aggregation", "p90").

Percentiles use linear interpolation between closest ranks (numpy's default ``linear`` method,
SQL ``percentile_cont``) so kpisync's medians and p90s match what analysts get elsewhere.
Empty input yields ``None`` rather than an exception because "no data in this period" is a
normal KPI state.  ``None`` values are skipped and counted (§A: "Nulls are excluded and counted").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Summary", "percentile", "median", "mean", "summarize", "summarize_numbers"]


def _clean(values: Iterable[float | None]) -> tuple[list[float], int]:
    """Non-null values as floats (NaN rejected: it would silently corrupt the ordering) and the null count."""
    out: list[float] = []
    nulls = 0
    for v in values:
        if v is None:
            nulls += 1
            continue
        f = float(v)
        if math.isnan(f):
            raise ValueError("NaN is not a valid KPI value; pass None for a missing value")
        out.append(f)
    return out, nulls


def _percentile_sorted(xs: list[float], q: float) -> float:
    """Percentile of already-sorted, non-empty ``xs`` (q in 0..100) by linear interpolation."""
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    frac = h - lo
    if frac == 0.0 or lo + 1 >= len(xs):
        return xs[lo]
    return xs[lo] + (xs[lo + 1] - xs[lo]) * frac


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (q in [0, 100]), or None when there are no non-null values.

    Rank ``h = (n - 1) * q / 100``; the result interpolates linearly between the values at ranks
    ``floor(h)`` and ``floor(h) + 1`` of the sorted data (numpy ``percentile`` default,
    ``percentile_cont(q / 100)``).
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    xs, _ = _clean(values)
    if not xs:
        return None
    xs.sort()
    return _percentile_sorted(xs, q)


def median(values: Iterable[float | None]) -> float | None:
    """The 50th percentile by the same rule (mean of the two middle values for even n)."""
    return percentile(values, 50.0)


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the non-null values (``math.fsum``, so long sums stay exact)."""
    xs, _ = _clean(values)
    if not xs:
        return None
    return math.fsum(xs) / len(xs)


@dataclass(frozen=True)
class Summary:
    """What every KPI reports (§A): count, mean, median, p90, min and max of non-null values.

    ``nulls`` counts the excluded ``None`` inputs so reports can show them.
    """

    count: int
    mean: float | None
    median: float | None
    p90: float | None
    min: float | None
    max: float | None
    nulls: int = 0


def summarize(values: Iterable[float | None]) -> Summary:
    """Summary of ``values`` in one pass over a sorted copy; empty gives count 0 and Nones."""
    xs, nulls = _clean(values)
    return summarize_numbers(xs, nulls)


def summarize_numbers(xs: list[float], nulls: int = 0) -> Summary:
    """`summarize` of a list that is already all numbers (ints or floats), none NaN — values
    parsed from SQL: skips the per-value checks, which cost as much as the sort on a million
    values. Sorts ``xs`` in place; the figures are floats either way."""
    if not xs:
        return Summary(0, None, None, None, None, None, nulls)
    xs.sort()
    return Summary(
        count=len(xs),
        mean=math.fsum(xs) / len(xs),
        median=float(_percentile_sorted(xs, 50.0)),
        p90=float(_percentile_sorted(xs, 90.0)),
        min=float(xs[0]),
        max=float(xs[-1]),
        nulls=nulls,
    )
