"""Tests for kpisync.core.metrics.timeseries (spike detector and forecaster, §B6)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kpisync.core.metrics.timeseries import (
    Z80,
    Z95,
    ErrorModel,
    aggregate_forecast,
    detect_spikes,
    fit_holt_winters,
    forecast,
    mase,
    poisson_tail,
    rolling_origin_backtest,
    seasonal_naive,
)

MON = datetime(2024, 1, 1)  # a Monday
BER = ZoneInfo("Europe/Berlin")
PATTERN = [30, 25, 24, 26, 22, 8, 5]  # Mon..Sun


def daily(values: list[float], start: datetime = MON) -> list[tuple[datetime, float]]:
    return [(start + timedelta(days=i), v) for i, v in enumerate(values)]


# =============================================================================== Poisson tail
class TestPoissonTail:
    def test_hand_values(self) -> None:
        # P(X >= 3 | 0.5) = 1 - e^-0.5 (1 + 0.5 + 0.125) = 0.0143876779...
        assert poisson_tail(3, 0.5) == pytest.approx(1 - math.exp(-0.5) * 1.625, rel=1e-12)
        assert poisson_tail(1, 2.0) == pytest.approx(1 - math.exp(-2.0), rel=1e-12)
        # P(X >= 5 | 0.5) = 1 - e^-0.5 (1 + .5 + .125 + .5^3/6 + .5^4/24)
        assert poisson_tail(5, 0.5) == pytest.approx(1 - math.exp(-0.5) * (1.625 + 0.125 / 6 + 0.0625 / 24), rel=1e-9)

    def test_reference_values(self) -> None:
        # scipy.stats.poisson.sf(x - 1, lam), recorded once (scipy is not a dependency).
        assert poisson_tail(25, 10) == pytest.approx(4.694938142679987e-05, rel=1e-9)
        assert poisson_tail(10, 10) == pytest.approx(0.5420702855281478, rel=1e-12)
        assert poisson_tail(70, 30) == pytest.approx(3.36252170665041e-10, rel=1e-9)
        assert poisson_tail(10_500, 10_000) == pytest.approx(3.599589794812039e-07, rel=1e-7)

    def test_edges(self) -> None:
        assert poisson_tail(0, 3.0) == 1.0
        assert poisson_tail(-2, 3.0) == 1.0
        assert poisson_tail(1, 0.0) == 0.0
        assert poisson_tail(2.2, 0.5) == poisson_tail(3, 0.5)  # counts round up
        with pytest.raises(ValueError):
            poisson_tail(3, -1.0)

    def test_monotone_and_continuous_across_branches(self) -> None:
        for lam in (0.5, 3.7, 40.0, 2500.0):
            prev = 1.0
            for x in range(0, int(lam + 8 * math.sqrt(lam) + 10)):
                p = poisson_tail(x, lam)
                assert 0.0 <= p <= prev + 1e-12
                prev = p

    def test_huge_lambda_is_finite(self) -> None:
        p = poisson_tail(1_000_000 + 6_000, 1_000_000)  # 6 sigma
        assert 0 < p < 1e-8


# =============================================================================== spikes
class TestSpikes:
    def test_hand_checked_point(self) -> None:
        # Eight prior Wednesdays; the 9th Wednesday has 25.
        wed = [10, 12, 9, 11, 10, 13, 8, 10]
        values = []
        for w in range(9):
            values += [10, 10, wed[w] if w < 8 else 25, 10, 10, 10, 10]
        res = detect_spikes(daily(values), "day")
        p = res[8 * 7 + 2]
        # sorted history [8,9,10,10,10,11,12,13]: median 10; |dev| sorted [0,0,0,1,1,2,2,3]: MAD 1
        assert p.baseline == 10 and p.n_history == 8
        assert p.scale == pytest.approx(math.sqrt(10))  # max(1.4826, sqrt(10))
        assert p.z == pytest.approx(15 / math.sqrt(10))
        assert p.p_value == pytest.approx(4.694938142679987e-05, rel=1e-9)
        assert p.is_spike
        assert p.label == p.bucket_start == MON + timedelta(days=58)
        assert [q.bucket_start for q in res if q.is_spike] == [p.bucket_start]

    def test_weekday_pattern_is_not_a_spike_but_an_injected_spike_is(self) -> None:
        rng = random.Random(4)
        values = [(60 if i % 7 == 0 else 12) + rng.randint(-2, 2) for i in range(10 * 7)]
        values[9 * 7 + 3] = 45  # a Thursday in week 10
        res = detect_spikes(daily(values), "day")
        flagged = [p for p in res if p.is_spike]
        assert [p.bucket_start for p in flagged] == [MON + timedelta(days=66)]
        mondays = [p for p in res if p.bucket_start.weekday() == 0 and p.baseline is not None]
        assert mondays and all(not p.is_spike and p.baseline >= 58 for p in mondays)

    def test_mad_scale_dominates_on_volatile_history(self) -> None:
        # history alternates 20/40: median 30, MAD 10 -> s = 14.826 > sqrt(30)
        hist = [20, 40] * 4
        values = []
        for w in range(9):
            values += [hist[w] if w < 8 else 70] + [0] * 6
        p = detect_spikes(daily(values), "day")[56]
        assert p.baseline == 30 and p.scale == pytest.approx(14.826)
        assert p.z == pytest.approx(40 / 14.826)
        assert p.p_value is not None and p.p_value < 1e-9
        assert not p.is_spike  # 70 < 30 + 3 * 14.826

    def test_small_counts_blocked_by_min_abs(self) -> None:
        # b = 0, x = 3: x >= 0 + 3*1 holds but x - b = 3 < 5 (and the tail is 0.0144 anyway)
        values = [0] * 28 + [3]
        p = detect_spikes(daily(values), "day")[-1]
        assert p.baseline == 0 and p.scale == 1 and not p.is_spike
        # history [0,1,0,1] (b = 0.5): x = 5 passes the threshold and the tail test
        # (P(X>=5|0.5) = 1.7e-4) but x - b = 4.5 < 5, so only min_abs blocks it.
        values = []
        for w, h in enumerate([0, 1, 0, 1, 5]):
            values += [h] + [0] * 6
        p = detect_spikes(daily(values[:29]), "day")[28]
        assert p.baseline == 0.5 and p.p_value == pytest.approx(1.7211562995584072e-4, rel=1e-9)
        assert not p.is_spike
        assert detect_spikes(daily(values[:29]), "day", min_abs=4)[28].is_spike
        values[28] = 6
        assert detect_spikes(daily(values[:29]), "day")[28].is_spike

    def test_hourly_min_abs_and_tail(self) -> None:
        start = datetime(2024, 1, 1)
        series = [(start + timedelta(hours=i), 0.0) for i in range(4 * 168)]
        series.append((start + timedelta(hours=4 * 168), 3.0))  # b = 0, x = 3 >= min_abs 3
        p = detect_spikes(series, "hour")[-1]
        assert p.n_history == 4 and p.baseline == 0
        assert p.p_value == pytest.approx(0.014387677966970684, rel=1e-12)
        assert not p.is_spike  # fails the Poisson tail, not min_abs
        series[-1] = (series[-1][0], 5.0)
        assert detect_spikes(series, "hour")[-1].is_spike

    def test_needs_four_history_points(self) -> None:
        values = [10] * 21 + [500]  # only 3 prior Mondays
        res = detect_spikes(daily(values), "day")
        assert res[-1].n_history == 3
        assert res[-1].baseline is None and res[-1].z is None and res[-1].p_value is None
        assert not any(p.is_spike for p in res)
        assert detect_spikes(daily([10] * 28 + [500]), "day")[-1].is_spike  # 4 points suffice

    def test_history_window_is_eight_weeks(self) -> None:
        values = [100] * 7 * 4 + [10] * 7 * 8 + [40]  # the old 100s are outside the window
        p = detect_spikes(daily(values), "day")[-1]
        assert p.n_history == 8 and p.baseline == 10 and p.is_spike

    def test_input_order_does_not_matter(self) -> None:
        s = daily([10] * 35 + [60])
        assert detect_spikes(list(reversed(s)), "day") == detect_spikes(s, "day")

    def test_hourly_uses_local_hour_of_week_across_dst(self) -> None:
        # Hourly buckets in Berlin from UTC hours, 9-17 local busy; Berlin springs forward on
        # 2024-03-31.  Keys by local wall clock keep the pattern aligned after the change.
        series = []
        u = datetime(2024, 3, 4, tzinfo=timezone.utc)
        while u < datetime(2024, 4, 20, tzinfo=timezone.utc):
            loc = u.astimezone(BER)
            series.append((loc, 40.0 if 9 <= loc.hour < 17 else 2.0))
            u += timedelta(hours=1)
        spike_at = datetime(2024, 4, 17, 20, tzinfo=BER)
        series = [(t, 30.0 if t == spike_at else v) for t, v in series]
        res = detect_spikes(series, "hour")
        assert [p.bucket_start for p in res if p.is_spike] == [spike_at]

    def test_weekly_uses_prior_eight_buckets(self) -> None:
        weeks = [(MON + timedelta(weeks=i), float(v)) for i, v in enumerate([100, 104, 98, 101, 99, 103, 97, 102, 100, 160])]
        res = detect_spikes(weeks, "week")
        assert res[3].baseline is None and res[4].n_history == 4
        last = res[-1]
        assert last.n_history == 8 and last.baseline == pytest.approx(100.5)  # median of 104..100
        assert last.is_spike

    def test_bad_granularity(self) -> None:
        with pytest.raises(ValueError):
            detect_spikes(daily([1, 2]), "minute")  # type: ignore[arg-type]


# =============================================================================== MASE & backtest
class TestMase:
    def test_hand_values(self) -> None:
        training = [1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8]  # |y_t - y_{t-7}| = 1 each
        assert mase([3, 4], [2, 6], training, 7) == pytest.approx(1.5)  # MAE 1.5 / 1
        # m = 1: diffs |3-1|, |2-3|, |5-2| -> scale 2; MAE 1
        assert mase([4], [5], [1, 3, 2, 5], 1) == pytest.approx(0.5)

    def test_zero_scale(self) -> None:
        assert mase([5, 5], [5, 5], [5] * 10, 7) == 0.0
        assert mase([5, 5], [5, 6], [5] * 10, 7) == math.inf

    def test_invalid(self) -> None:
        with pytest.raises(ValueError):
            mase([1], [1, 2], [1] * 10)
        with pytest.raises(ValueError):
            mase([1], [1], [1] * 7, 7)

    def test_rolling_origin_hand_example(self) -> None:
        values = [1, 3, 2, 5, 4, 6, 8, 7, 9, 12]

        def naive(train: list[float], h: int) -> list[float]:
            return [train[-1]] * h

        got, n = rolling_origin_backtest(values, naive, origins=2, horizon=2, step=1, m=1, min_train=2)
        # T=7: train [1,3,2,5,4,6,8] scale 11/6, forecast 8 vs [7, 9] -> MAE 1 -> 6/11
        # T=8: train adds 7 -> scale 12/7, forecast 7 vs [9, 12] -> MAE 3.5 -> 49/24
        assert n == 2
        assert got == pytest.approx((6 / 11 + 49 / 24) / 2)

    def test_rolling_origin_drops_short_origins(self) -> None:
        # n=20, horizon 5, step 3 -> origins 15, 12, 9, 6; min_train 9 drops 6.
        # m=1 scale is 1; forecasting 0 gives MAE 17, 14, 11 -> mean 14.
        got, n = rolling_origin_backtest(list(range(20)), lambda tr, h: [0.0] * h, origins=4, horizon=5, step=3, m=1, min_train=9)
        assert n == 3 and got == pytest.approx(14.0)
        assert rolling_origin_backtest(list(range(10)), lambda tr, h: [0.0] * h, min_train=28) == (None, 0)

    def test_seasonal_naive(self) -> None:
        y = list(range(1, 15))  # 1..14
        assert seasonal_naive(y, 9, 7) == [8, 9, 10, 11, 12, 13, 14, 8, 9]
        with pytest.raises(ValueError):
            seasonal_naive([1, 2], 3, 7)


# =============================================================================== Holt-Winters
class TestHoltWinters:
    def test_pure_weekly_pattern_is_reproduced(self) -> None:
        y = PATTERN * 8
        fit = fit_holt_winters(y)
        assert fit.sse == pytest.approx(0.0, abs=1e-18)
        assert fit.predict(14) == pytest.approx(PATTERN * 2, abs=1e-9)

    def test_constant(self) -> None:
        fit = fit_holt_winters([10.0] * 35)
        assert fit.predict(10) == pytest.approx([10.0] * 10, abs=1e-12)

    def test_linear_trend_is_followed_and_damped(self) -> None:
        y = [5 + 2 * i for i in range(56)]
        pred = fit_holt_winters(y).predict(14)
        truth = [5 + 2 * (56 + h) for h in range(14)]
        assert pred[0] == pytest.approx(truth[0], abs=0.2)
        assert all(b > a for a, b in zip(pred, pred[1:]))
        assert all(p <= t + 1e-9 for p, t in zip(pred, truth))  # φ < 1 bends below the line
        # Level ≈ last value 115, slope ≈ 2: ŷ_h ≈ 115 + 2·(φ + … + φ^h), i.e. 139.14 at h = 14
        damped = [115 + 2 * sum(0.98**i for i in range(1, h + 1)) for h in range(1, 15)]
        assert pred == pytest.approx(damped, abs=0.3)

    def test_refined_search_matches_exhaustive_grid(self) -> None:
        rng = random.Random(9)
        for _ in range(6):
            pat = [rng.uniform(5, 80) for _ in range(7)]
            y = [max(0.0, pat[i % 7] + 0.2 * i + rng.gauss(0, 8)) for i in range(rng.randint(28, 182))]
            a, b = fit_holt_winters(y), fit_holt_winters(y, exhaustive=True)
            assert (a.alpha, a.beta, a.gamma) == (b.alpha, b.beta, b.gamma)
            assert a.sse == b.sse

    def test_needs_two_seasons(self) -> None:
        with pytest.raises(ValueError):
            fit_holt_winters([1.0] * 13)



# =============================================================================== forecast
class TestForecast:
    def test_constant_series_gives_flat_forecast(self) -> None:
        fc = forecast(daily([10.0] * 70), 14)
        assert fc.method == "seasonal_naive"  # HW ties (both perfect); the simpler model wins
        assert [p.value for p in fc.points] == [10.0] * 14
        assert all(p.lo95 == p.hi95 == 10.0 for p in fc.points)
        assert fc.backtest["mase_model"] == 0.0 and fc.backtest["mase_naive"] == 0.0
        assert fc.backtest["error_ratio"] == 1.0 and fc.backtest["origins"] == 4

    def test_weekly_pattern(self) -> None:
        fc = forecast(daily(PATTERN * 10), 14)
        assert [p.value for p in fc.points] == pytest.approx(PATTERN * 2, abs=1e-9)
        assert fc.points[0].bucket_start == MON + timedelta(days=70)

    def test_trend_and_pattern_publishes_holt_winters(self) -> None:
        # y = pattern + 0.5 t.  Seasonal naive is always one week behind: its errors are 3.5
        # for h <= 7 and 7 for h = 8..14 (MAE 5.25) against an in-sample scale of 3.5, so its
        # backtest MASE is exactly 1.5 at every origin.
        y = [PATTERN[i % 7] + 0.5 * i for i in range(84)]
        fc = forecast(daily(y), 14)
        bt = fc.backtest
        assert bt["mase_naive"] == pytest.approx(1.5)
        assert bt["origins"] == 4 and bt["horizon"] == 14
        assert bt["mase_model"] is not None and bt["mase_model"] < 0.3
        assert bt["error_ratio"] == pytest.approx(bt["mase_model"] / 1.5)
        assert fc.method == "holt_winters" and fc.params is not None
        truth = [PATTERN[(84 + h) % 7] + 0.5 * (84 + h) for h in range(14)]
        assert [p.value for p in fc.points] == pytest.approx(truth, abs=1.5)

    def test_guard_publishes_seasonal_naive_when_it_wins(self) -> None:
        # Noisy first 6 weeks, then an exact weekly pattern: seasonal naive is perfect in the
        # backtest, Holt-Winters still carries some noise in its states.
        rng = random.Random(2)
        y = [PATTERN[i % 7] + rng.gauss(0, 6) for i in range(42)] + [PATTERN[i % 7] for i in range(42, 98)]
        fc = forecast(daily(y), 14)
        assert fc.method == "seasonal_naive"
        assert fc.backtest["mase_naive"] == 0.0 and fc.backtest["mase_model"] > 0
        assert fc.backtest["error_ratio"] == math.inf
        assert fc.params is not None  # HW was fitted, just not published
        assert [p.value for p in fc.points] == PATTERN * 2

    def test_require_mase_below_one(self) -> None:
        rng = random.Random(8)
        y = [PATTERN[i % 7] + 0.5 * i + rng.gauss(0, 2) for i in range(84)]
        fc = forecast(daily(y), 7, require_mase_below_one=True)
        assert fc.method == ("holt_winters" if fc.backtest["mase_model"] < min(1.0, fc.backtest["mase_naive"]) else "seasonal_naive")

    def test_short_series_falls_back(self) -> None:
        fc = forecast(daily(PATTERN * 3 + [40]), 9)  # 22 days < 4 weeks
        assert fc.method == "seasonal_naive" and fc.backtest["origins"] == 0
        assert fc.backtest["mase_model"] is None and fc.params is None
        # last 7 values are PATTERN[1:] + [40]
        assert [p.value for p in fc.points] == PATTERN[1:] + [40] + PATTERN[1:3]
        fc = forecast(daily([4, 6, 8]), 3)
        assert fc.method == "mean" and [p.value for p in fc.points] == [6.0] * 3

    def test_exactly_four_weeks_fits_but_cannot_backtest(self) -> None:
        fc = forecast(daily([PATTERN[i % 7] + 0.3 * i for i in range(28)]), 7)
        assert fc.method == "seasonal_naive" and fc.params is not None
        assert fc.backtest["origins"] == 0

    def test_holt_winters_intervals_follow_the_ets_variance(self) -> None:
        # σ_h² = σ²(1 + Σ_{j<h} c_j²), c_j = α + αβ(φ + … + φ^j) + γ·[7 | j] (fpp2 §7.7).
        rng = random.Random(3)
        y = [100 + PATTERN[i % 7] + 0.5 * i + rng.gauss(0, 2) for i in range(140)]
        fc = forecast(daily(y), 16)
        assert fc.method == "holt_winters" and fc.params is not None and fc.errors is not None
        a, b, g, phi = (fc.params[k] for k in ("alpha", "beta", "gamma", "phi"))
        c = [a + a * b * sum(phi ** i for i in range(1, j + 1)) + (g if j % 7 == 0 else 0.0) for j in range(1, 16)]
        w = [p.hi80 - p.value for p in fc.points]
        for h in (1, 4, 8, 16):
            assert w[h - 1] == pytest.approx(Z80 * fc.errors.sigma * math.sqrt(1 + sum(x * x for x in c[: h - 1])))
        p = fc.points[0]
        assert (p.hi95 - p.value) / (p.hi80 - p.value) == pytest.approx(Z95 / Z80)
        assert p.lo80 == pytest.approx(2 * p.value - p.hi80)

    def test_error_model_sums(self) -> None:
        walk = ErrorModel(1.0, (1.0, 1.0, 1.0))
        # e1 = ε1, e2 = ε1+ε2, e3 = ε1+ε2+ε3: sum = 3ε1+2ε2+ε3 (var 14); e2+e3 = 2ε1+2ε2+ε3 (var 9)
        assert walk.sd(3) == pytest.approx(math.sqrt(3))
        assert walk.sum_sd(1, 3) == pytest.approx(math.sqrt(14)) and walk.sum_sd(2, 3) == pytest.approx(3.0)
        seasonal = ErrorModel(2.0, (1.0, 0.0, 1.0, 0.0))  # m = 2: e3 = ε3+ε1, e4 = ε4+ε2
        assert seasonal.sum_sd(1, 4) == pytest.approx(2.0 * math.sqrt(10))  # 2ε1+2ε2+ε3+ε4

    def test_seasonal_naive_interval_steps_per_season(self) -> None:
        rng = random.Random(6)
        y = [PATTERN[i % 7] + rng.gauss(0, 1) + 20 for i in range(20)]
        fc = forecast(daily(y), 14)
        w = [p.hi95 - p.value for p in fc.points]
        assert w[0] == pytest.approx(w[6]) and w[7] == pytest.approx(math.sqrt(2) * w[0])
        sd = math.sqrt(sum((y[t] - y[t - 7]) ** 2 for t in range(7, 20)) / 13)
        assert w[0] == pytest.approx(Z95 * sd)

    def test_clipped_at_zero(self) -> None:
        y = [200 - 4 * i + PATTERN[i % 7] for i in range(49)]
        fc = forecast(daily(y), 42)
        assert fc.method == "holt_winters"
        assert min(p.value for p in fc.points) == 0.0
        assert all(min(p[1:]) >= 0.0 for p in fc.points)

    def test_gap_and_empty_rejected(self) -> None:
        s = daily([1.0] * 30)
        del s[10]
        with pytest.raises(ValueError):
            forecast(s, 7)
        with pytest.raises(ValueError):
            forecast([], 7)
        with pytest.raises(ValueError):
            forecast(daily([1.0] * 30), 0)

    def test_fits_on_at_most_26_weeks(self) -> None:
        old = [1000.0] * 70  # far past, must not matter
        y = old + [PATTERN[i % 7] for i in range(70, 70 + 182)]
        fc = forecast(daily(y), 7)
        assert [p.value for p in fc.points] == pytest.approx([PATTERN[(252 + h) % 7] for h in range(7)], abs=1e-9)

    def test_daily_buckets_across_dst_stay_at_midnight(self) -> None:
        start = datetime(2024, 2, 1, tzinfo=BER)
        s = [(start + timedelta(days=i), 10.0) for i in range(59)]  # up to 2024-03-30
        fc = forecast(s, 3)
        assert [p.bucket_start for p in fc.points] == [datetime(2024, 3, 31, tzinfo=BER), datetime(2024, 4, 1, tzinfo=BER), datetime(2024, 4, 2, tzinfo=BER)]
        assert [p.bucket_start.utcoffset() for p in fc.points] == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=2)]



class TestOtherGranularities:
    def test_hourly_seasonal_mean(self) -> None:
        start = datetime(2024, 1, 1)
        series = []
        for i in range(5 * 168):
            t = start + timedelta(hours=i)
            week = i // 168
            series.append((t, float(t.hour + 10 * (week >= 1) + week)))  # weeks 1..4: hour + 10 + week
        fc = forecast(series, 30, "hour")
        assert fc.method == "seasonal_mean"
        # last 4 weeks are weeks 1..4 -> mean of (hour + 10 + w) = hour + 12.5
        assert [p.value for p in fc.points[:24]] == pytest.approx([h + 12.5 for h in range(24)])
        assert fc.points[0].bucket_start == start + timedelta(hours=5 * 168)

    def test_hourly_buckets_across_dst(self) -> None:
        series = [(datetime(2024, 3, 2, tzinfo=BER) + timedelta(days=d, hours=h), 5.0) for d in range(29) for h in range(24)]
        series = [(t, v) for t, v in series if t <= datetime(2024, 3, 30, 23, tzinfo=BER)]
        fc = forecast(series, 5, "hour")
        hours = [p.bucket_start.strftime("%d %H:%M%z") for p in fc.points]
        assert hours == ["31 00:00+0100", "31 01:00+0100", "31 03:00+0200", "31 04:00+0200", "31 05:00+0200"]
        assert all(p.value == 5.0 for p in fc.points)

    def test_coarse_granularity_mean(self) -> None:
        weeks = [(MON + timedelta(weeks=i), float(v)) for i, v in enumerate([50, 60, 70, 80, 90])]
        fc = forecast(weeks, 3, "week")
        assert fc.method == "mean"
        assert [p.value for p in fc.points] == [75.0] * 3  # mean of the last 4
        assert fc.points[0].bucket_start == MON + timedelta(weeks=5)
        months = [(datetime(2024, m, 1), 10.0 * m) for m in range(1, 12)]
        fc = forecast(months, 3, "month")
        assert [p.bucket_start for p in fc.points] == [datetime(2024, 12, 1), datetime(2025, 1, 1), datetime(2025, 2, 1)]
        assert fc.points[0].value == pytest.approx(100.0)  # mean of 90, 100, 110
        quarters = [(datetime(2024, 1, 1), 1.0), (datetime(2024, 4, 1), 3.0)]
        fc = forecast(quarters, 2, "quarter")
        assert [p.bucket_start for p in fc.points] == [datetime(2024, 7, 1), datetime(2024, 10, 1)]

    def test_aggregate_forecast(self) -> None:
        fc = forecast(daily([10.0] * 70), 24)  # next days: Mon 2024-03-11 .. Wed 2024-04-03
        weekly = aggregate_forecast(fc, "week")
        assert [p.bucket_start for p in weekly.points] == [datetime(2024, 3, 11), datetime(2024, 3, 18), datetime(2024, 3, 25)]
        assert [p.value for p in weekly.points] == [70.0] * 3
        assert weekly.method == fc.method and weekly.backtest == fc.backtest
        partial = aggregate_forecast(fc, "week", include_partial=True)
        assert partial.points[-1].value == 30.0  # Mon..Wed only
        assert aggregate_forecast(fc, "month").points == []  # March is only partly covered
        march = aggregate_forecast(fc, "month", include_partial=True).points[0]
        assert march.bucket_start == datetime(2024, 3, 1) and march.value == 210.0

    def test_aggregate_interval_is_that_of_the_summed_errors(self) -> None:
        # 3 weeks: seasonal naive (period 7).  Week 1 sums 7 independent one-step errors
        # (σ√7); in week 2 each day is ε_h + ε_{h-7}, so its sum has variance 14σ².
        rng = random.Random(3)
        y = [100 + PATTERN[i % 7] + rng.gauss(0, 4) for i in range(21)]  # ends on a Sunday
        fc = forecast(daily(y), 14)
        assert fc.method == "seasonal_naive" and fc.errors is not None
        sigma = math.sqrt(sum((y[t] - y[t - 7]) ** 2 for t in range(7, 21)) / 14)
        first, second = aggregate_forecast(fc, "week").points
        assert first.value == pytest.approx(sum(p.value for p in fc.points[:7]))
        assert first.hi95 - first.value == pytest.approx(Z95 * sigma * math.sqrt(7))
        assert second.hi80 - second.value == pytest.approx(Z80 * sigma * math.sqrt(14))
        assert first.hi95 < sum(p.hi95 for p in fc.points[:7])  # not the sum of the daily bounds

    def test_aggregate_bounds_stay_near_the_point_months_ahead(self) -> None:
        rng = random.Random(3)
        y = [100 + PATTERN[i % 7] + rng.gauss(0, 4) for i in range(77)]  # ends on a Sunday
        quarterly = aggregate_forecast(forecast(daily(y), 200), "quarter")
        assert [p.bucket_start for p in quarterly.points] == [datetime(2024, 4, 1), datetime(2024, 7, 1)]
        # The process has mean 120 a day: 10,920 in Q2 (91 days), 11,040 in Q3 (92 days).
        for p, truth in zip(quarterly.points, (120 * 91, 120 * 92)):
            assert p.lo95 <= truth <= p.hi95
            assert p.hi95 < 1.25 * p.value and p.lo95 > 0.75 * p.value  # summed daily bounds: ±52 %, ±84 %
