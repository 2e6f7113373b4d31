"""Tests for kpisync.core.metrics.stats (hand-computed values)."""

from __future__ import annotations

import math
import random

import pytest

from kpisync.core.metrics.stats import Summary, mean, median, percentile, summarize, summarize_numbers


class TestPercentile:
    def test_linear_interpolation_between_closest_ranks(self) -> None:
        # n=4: rank h = 3q/100. p25 -> h=0.75 -> 1 + 0.75*(2-1); p90 -> h=2.7 -> 3 + 0.7*(4-3)
        assert percentile([1, 2, 3, 4], 25) == pytest.approx(1.75)
        assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
        assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)

    def test_unsorted_input(self) -> None:
        # sorted [15, 20, 35, 40, 50]; p40 -> h=1.6 -> 20 + 0.6*15 = 29; p90 -> h=3.6 -> 40 + 0.6*10 = 46
        assert percentile([50, 15, 40, 20, 35], 40) == pytest.approx(29.0)
        assert percentile([50, 15, 40, 20, 35], 90) == pytest.approx(46.0)

    def test_exact_ranks_and_extremes(self) -> None:
        xs = [7, 1, 3]
        assert percentile(xs, 0) == 1
        assert percentile(xs, 50) == 3
        assert percentile(xs, 100) == 7

    def test_single_value_and_duplicates(self) -> None:
        assert percentile([42], 90) == 42
        assert percentile([5, 5, 5, 9], 50) == 5
        assert percentile([5, 5, 5, 9], 90) == pytest.approx(7.8)  # h=2.7 -> 5 + 0.7*4

    def test_empty_and_nulls(self) -> None:
        assert percentile([], 50) is None
        assert percentile([None, None], 50) is None
        assert percentile([None, 4, None, 2], 50) == pytest.approx(3.0)

    def test_invalid_input(self) -> None:
        with pytest.raises(ValueError):
            percentile([1, 2], 101)
        with pytest.raises(ValueError):
            percentile([1, 2], -1)
        with pytest.raises(ValueError):
            percentile([1, float("nan")], 50)

    def test_accepts_generators(self) -> None:
        assert percentile((x for x in range(11)), 90) == pytest.approx(9.0)

    def test_matches_numpy_default_when_available(self) -> None:
        np = pytest.importorskip("numpy")  # optional cross-check, not a dependency
        rng = random.Random(1)
        for _ in range(200):
            xs = [rng.uniform(-50, 500) for _ in range(rng.randint(1, 40))]
            q = rng.choice([0, 10, 25, 50, 75, 90, 95, 99, 100, rng.uniform(0, 100)])
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-12, abs=1e-9)


class TestMedianMean:
    def test_median(self) -> None:
        assert median([3, 1, 2]) == 2
        assert median([4, 1, 3, 2]) == pytest.approx(2.5)
        assert median([]) is None

    def test_mean(self) -> None:
        assert mean([1, 2, 3, 4]) == pytest.approx(2.5)
        assert mean([None, 10, 20]) == pytest.approx(15.0)
        assert mean([]) is None
        assert mean([None]) is None

    def test_mean_is_exactly_summed(self) -> None:
        # Naive float summation gives 0.0 here; fsum keeps the 1.
        assert mean([1e16, 1.0, -1e16]) == pytest.approx(1 / 3)


class TestSummarize:
    def test_empty(self) -> None:
        assert summarize([]) == Summary(0, None, None, None, None, None, 0)
        assert summarize([None, None]) == Summary(0, None, None, None, None, None, 2)

    def test_values_with_nulls(self) -> None:
        s = summarize([10, None, 30, 20, 40])
        # sorted [10, 20, 30, 40]: mean 25, median 25, p90 h=2.7 -> 30 + 7 = 37
        assert s.count == 4 and s.nulls == 1
        assert s.mean == pytest.approx(25.0)
        assert s.median == pytest.approx(25.0)
        assert s.p90 == pytest.approx(37.0)
        assert (s.min, s.max) == (10.0, 40.0)

    def test_single(self) -> None:
        assert summarize([7]) == Summary(1, 7.0, 7.0, 7.0, 7.0, 7.0, 0)

    def test_consistent_with_functions(self) -> None:
        rng = random.Random(5)
        xs = [rng.expovariate(1 / 3600) for _ in range(101)]
        s = summarize(xs)
        assert s.median == percentile(xs, 50) and s.p90 == percentile(xs, 90)
        assert math.isclose(s.mean, math.fsum(xs) / len(xs))
        assert s.min == min(xs) and s.max == max(xs)

    def test_rejects_nan(self) -> None:
        with pytest.raises(ValueError):
            summarize([1.0, math.nan])


class TestSummarizeNumbers:
    """The fast path for values parsed from SQL: same figures as `summarize`, always floats."""

    def test_ints_give_the_figures_of_summarize_as_floats(self) -> None:
        # sorted [10, 20, 30, 40]: mean 25; median h=1.5 -> 25; p90 h=2.7 -> 30 + 0.7*10 = 37
        s = summarize_numbers([40, 10, 30, 20], nulls=2)
        assert (s.count, s.mean, s.median, s.p90, s.min, s.max, s.nulls) == (4, 25.0, 25.0, 37.0, 10.0, 40.0, 2)
        assert all(isinstance(v, float) for v in (s.median, s.min, s.max))
        odd = summarize_numbers([3, 1, 2])  # exact middle rank: still a float
        assert odd.median == 2.0 and isinstance(odd.median, float)
        rng = random.Random(4)
        xs = [rng.randint(0, 10**6) for _ in range(999)]
        assert summarize_numbers(list(xs)) == summarize(xs)

    def test_empty(self) -> None:
        assert summarize_numbers([], nulls=3) == Summary(0, None, None, None, None, None, 3)
