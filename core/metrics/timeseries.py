"""Spike detection and volume forecasting (kpi-definitions §B6), pure stdlib.

Series are lists of ``(bucket_start, value)`` where ``bucket_start`` is the local start of the
bucket in the reporting time zone (aware or naive).  Weekday and hour-of-week are read from the
bucket start's own wall clock, so a series bucketed in Europe/Berlin keeps "Monday 09:00" aligned
across DST changes.  Per §A, empty buckets must be present as 0.

Spike detector (§B6 default): robust same-season baseline (median + MAD), a Poisson floor on the
scale so MAD = 0 at small counts does not flag noise, an absolute minimum excess and a Poisson
tail test.  Everything is deterministic so an oracle can reproduce it.

Forecaster (§B6 default): additive Holt-Winters with damped trend (ETS A,Ad,A), guarded by a
rolling-origin backtest against seasonal naive; the simpler model wins ties.  Every method is a
linear innovations model, so its h-step error is ``ε_{T+h} + Σ_{j<h} c_j·ε_{T+h-j}``; a forecast
keeps σ and the ``c_j`` (`ErrorModel`) so that weekly/monthly/quarterly sums of daily forecasts get
the exact variance of the summed errors instead of summed daily bounds, which grow without limit.
"""

from __future__ import annotations

import bisect
import calendar
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal, NamedTuple, TypedDict

from .stats import median

__all__ = [
    "Granularity",
    "SpikePoint",
    "detect_spikes",
    "poisson_tail",
    "ForecastPoint",
    "ErrorModel",
    "BacktestResult",
    "Forecast",
    "HoltWintersFit",
    "fit_holt_winters",
    "seasonal_naive",
    "mase",
    "rolling_origin_backtest",
    "forecast",
    "aggregate_forecast",
    "Z80",
    "Z95",
]

Granularity = Literal["hour", "day", "week", "month", "quarter"]
_GRANULARITIES = ("hour", "day", "week", "month", "quarter")

MAD_TO_SIGMA = 1.4826
Z80 = 1.2815515655446004  # standard normal 0.90 quantile (two-sided 80 %)
Z95 = 1.959963984540054  # standard normal 0.975 quantile (two-sided 95 %)


def _check_granularity(granularity: str) -> None:
    if granularity not in _GRANULARITIES:
        raise ValueError(f"granularity must be one of {_GRANULARITIES}, got {granularity!r}")


def _sorted_series(series: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    pts = sorted(((t, float(v)) for t, v in series), key=lambda p: p[0])
    for v in (v for _, v in pts):
        if math.isnan(v):
            raise ValueError("series contains NaN; emit empty buckets as 0 (§A)")
    return pts


def _wall(t: datetime) -> datetime:
    """Naive local wall time of a bucket start (its own tz), used for season keys and windows."""
    return t.replace(tzinfo=None)


# =============================================================================== spikes
def poisson_tail(x: float, lam: float) -> float:
    """P(X >= x) for X ~ Poisson(lam), summed in log space so large lam neither over- nor underflows.

    Above the mean the upper-tail terms are summed directly (they shrink geometrically); at or
    below it the tail is 1 minus the lower-tail sum, which is then >= ~0.4 so the subtraction
    loses no meaningful precision.  Non-integer ``x`` is rounded up (counts are integers).
    """
    if lam < 0 or math.isnan(lam):
        raise ValueError(f"lambda must be >= 0, got {lam}")
    k0 = math.ceil(x)
    if k0 <= 0:
        return 1.0
    if lam == 0:
        return 0.0
    log_lam = math.log(lam)

    def log_pmf(k: int) -> float:
        return k * log_lam - lam - math.lgamma(k + 1)

    total, term = 0.0, 1.0
    if k0 > lam:
        k = k0
        while True:  # sum of pmf(k)/pmf(k0) for k >= k0
            total += term
            k += 1
            term *= lam / k
            if term < 1e-17 * total:
                break
        return min(1.0, math.exp(log_pmf(k0) + math.log(total)))
    k = k0 - 1
    base = log_pmf(k)
    while True:  # sum of pmf(j)/pmf(k0-1) for j <= k0-1
        total += term
        if k == 0:
            break
        term *= k / lam
        k -= 1
        if term < 1e-17 * total:
            break
    return max(0.0, 1.0 - math.exp(base + math.log(total)))


@dataclass(frozen=True)
class SpikePoint:
    """One bucket's verdict.  Baseline fields are None when the history was too short."""

    bucket_start: datetime
    value: float
    baseline: float | None
    scale: float | None  # max(1.4826·MAD, sqrt(max(baseline, 1))): the scale used for z and the threshold
    z: float | None
    p_value: float | None  # P(X >= value | Poisson(max(baseline, 0.5)))
    is_spike: bool
    n_history: int = 0  # history points behind the baseline

    @property
    def label(self) -> datetime:
        """Alias of ``bucket_start`` (the bucket's label in reports)."""
        return self.bucket_start


_SPIKE_DEFAULT_MIN_ABS = {"hour": 3.0, "day": 5.0, "week": 5.0, "month": 5.0, "quarter": 5.0}


def detect_spikes(
    series: Sequence[tuple[datetime, float]],
    granularity: Granularity = "day",
    *,
    k: float = 3.0,
    min_abs: float | None = None,
    alpha: float = 0.001,
    min_history: int = 4,
) -> list[SpikePoint]:
    """Flag unusually high buckets (§B6), returned in chronological order.

    History for a bucket at ``t`` (strictly before ``t``):

    * ``day``: same weekday within the prior 8 weeks (wall-clock ``[t - 56 days, t)``), <= 8 points;
    * ``hour``: same hour-of-week within the prior 4 weeks, <= 4 points (a repeated fall-back
      hour may add one);
    * ``week``/``month``/``quarter``: the prior 8 buckets (no seasonal matching).

    With fewer than ``min_history`` points no flag is raised.  Otherwise ``b`` = median,
    ``s`` = 1.4826·MAD, ``scale = max(s, sqrt(max(b, 1)))`` and a spike needs all of
    ``x >= b + k·scale``, ``x - b >= min_abs`` (default 5, or 3 hourly) and
    ``poisson_tail(x, max(b, 0.5)) < alpha``.  Missing buckets are simply absent from the
    history, which is why §A asks for empty buckets as 0.
    """
    _check_granularity(granularity)
    if min_abs is None:
        min_abs = _SPIKE_DEFAULT_MIN_ABS[granularity]
    pts = _sorted_series(series)

    histories: list[list[float]] = []
    if granularity in ("day", "hour"):
        window = timedelta(weeks=8 if granularity == "day" else 4)
        groups: dict[tuple[int, int], tuple[list[datetime], list[float]]] = {}
        for t, v in pts:
            w = _wall(t)
            key = (w.weekday(), w.hour if granularity == "hour" else 0)
            times, vals = groups.setdefault(key, ([], []))
            lo = bisect.bisect_left(times, w - window)
            hi = bisect.bisect_left(times, w)  # strictly before t (drops a same-wall duplicate)
            histories.append(vals[lo:hi])
            times.append(w)
            vals.append(v)
    else:
        values = [v for _, v in pts]
        histories = [values[max(0, i - 8) : i] for i in range(len(values))]

    out: list[SpikePoint] = []
    for (t, x), hist in zip(pts, histories):
        if len(hist) < min_history:
            out.append(SpikePoint(t, x, None, None, None, None, False, len(hist)))
            continue
        b = median(hist)
        assert b is not None
        mad = median(abs(h - b) for h in hist)
        assert mad is not None
        scale = max(MAD_TO_SIGMA * mad, math.sqrt(max(b, 1.0)))
        z = (x - b) / scale
        p = poisson_tail(x, max(b, 0.5))
        spike = x >= b + k * scale and x - b >= min_abs and p < alpha
        out.append(SpikePoint(t, x, b, scale, z, p, spike, len(hist)))
    return out


# =============================================================================== forecasting
class ForecastPoint(NamedTuple):
    """A forecast bucket: point value and 80 % / 95 % prediction bounds, all clipped at 0."""

    bucket_start: datetime
    value: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


class BacktestResult(TypedDict):
    """Rolling-origin backtest figures; None when no origin had enough history."""

    mase_model: float | None
    mase_naive: float | None
    error_ratio: float | None  # mase_model / mase_naive (0/0 -> 1.0)
    origins: int
    horizon: int


@dataclass(frozen=True)
class ErrorModel:
    """How a method's forecast errors build up: ``e_{T+h} = ε_{T+h} + Σ_{j=1}^{h-1} c_j·ε_{T+h-j}``.

    ``coef[j]`` is ``c_j`` (``coef[0] = 1``); the one-step errors ε are independent with standard
    deviation ``sigma`` (Hyndman et al. 2008, ch. 6, "class 1" linear models; fpp2 §7.7).
    """

    sigma: float
    coef: tuple[float, ...]

    def sd(self, h: int) -> float:
        """Standard deviation of the h-step error: ``σ·√(Σ_{j<h} c_j²)``."""
        return self.sigma * math.sqrt(sum(c * c for c in self.coef[:h]))

    def sum_sd(self, first: int, last: int) -> float:
        """Standard deviation of the summed errors of steps ``first..last`` (1-based, inclusive).

        ``Σ_{h=a}^{b} e_{T+h} = Σ_{k=1}^{b} ε_{T+k}·w_k`` with ``w_k = Σ_{h=max(a,k)}^{b} c_{h-k}``,
        so the variance is ``σ²·Σ w_k²``; ``w_k`` comes from cumulative sums of ``c``.
        """
        cum = [0.0]
        for c in self.coef[:last]:
            cum.append(cum[-1] + c)  # cum[n] = c_0 + ... + c_{n-1}
        total = 0.0
        for k in range(1, last + 1):
            w = cum[last - k + 1] - (cum[first - k] if k < first else 0.0)
            total += w * w
        return self.sigma * math.sqrt(total)


def _random_walk(sigma: float, horizon: int) -> ErrorModel:
    """Flat mean forecast, σ_h = σ·√h: every past shock persists (c_j = 1)."""
    return ErrorModel(sigma, (1.0,) * horizon)


def _seasonal_walk(sigma: float, horizon: int, m: int) -> ErrorModel:
    """Seasonal naive, σ_h = σ·√(⌊(h-1)/m⌋+1): a shock persists in its own season (c_j = [m | j])."""
    return ErrorModel(sigma, tuple(1.0 if j % m == 0 else 0.0 for j in range(horizon)))


@dataclass(frozen=True)
class Forecast:
    """A published forecast.

    ``method`` is ``holt_winters``, ``seasonal_naive`` (daily, period 7), ``seasonal_mean``
    (hourly, mean of the same hour-of-week over 4 weeks) or ``mean`` (short or coarse series).
    ``params`` holds the fitted Holt-Winters parameters whenever a fit was made, even if the
    guard then published seasonal naive.  ``errors`` is the published method's error model
    (what :func:`aggregate_forecast` needs for the intervals of sums).
    """

    method: str
    points: list[ForecastPoint]
    backtest: BacktestResult
    params: dict[str, float] | None = None
    errors: ErrorModel | None = None


_NO_BACKTEST: BacktestResult = {
    "mase_model": None,
    "mase_naive": None,
    "error_ratio": None,
    "origins": 0,
    "horizon": 0,
}


# ------------------------------------------------------------------------ Holt-Winters core
@dataclass(frozen=True)
class HoltWintersFit:
    """Fitted additive damped Holt-Winters (ETS A,Ad,A) in error-correction form.

    With one-step error ``e_t = y_t - (l + φb + s_{t-m})``:
    ``l_t = l_{t-1} + φb_{t-1} + αe_t``, ``b_t = φb_{t-1} + αβe_t``, ``s_t = s_{t-m} + γe_t``,
    which is the component form ``l_t = α(y_t - s_{t-m}) + (1-α)(l_{t-1} + φb_{t-1})``,
    ``b_t = β(l_t - l_{t-1}) + (1-β)φb_{t-1}``, ``s_t = γ(y_t - l_{t-1} - φb_{t-1}) + (1-γ)s_{t-m}``.
    """

    alpha: float
    beta: float
    gamma: float
    phi: float
    level: float
    trend: float
    season: tuple[float, ...]  # season[(t) % m] is the latest seasonal state for time index t
    n: int
    m: int
    sse: float
    sigma: float  # RMS of one-step errors after the first season (initialisation warm-up)

    def errors(self, horizon: int) -> ErrorModel:
        """ETS(A,Ad,A) error coefficients ``c_j = α + αβ(φ + … + φ^j) + γ·[m | j]``.

        Hyndman et al. (2008) Table 6.2 / fpp2 §7.7 with their trend smoothing β* = αβ here
        (``b_t = φb_{t-1} + αβe_t``).  The h-step variance is ``σ²(1 + Σ_{j<h} c_j²)``.
        """
        coef = [1.0]
        damp, ph = 0.0, 1.0
        for j in range(1, horizon):
            ph *= self.phi
            damp += ph
            coef.append(self.alpha + self.alpha * self.beta * damp + (self.gamma if j % self.m == 0 else 0.0))
        return ErrorModel(self.sigma, tuple(coef))

    def predict(self, horizon: int) -> list[float]:
        """ŷ_{T+h} = l_T + (φ + … + φ^h)·b_T + s_{T+h-m⌈h/m⌉}, unclipped."""
        out = []
        damp = 0.0
        ph = 1.0
        for h in range(1, horizon + 1):
            ph *= self.phi
            damp += ph
            out.append(self.level + damp * self.trend + self.season[(self.n + h - 1) % self.m])
        return out


def _hw_initial(y: Sequence[float], m: int) -> tuple[float, float, list[float]]:
    """Initial level (at time -1), trend and seasonal states from up to 4 full seasons.

    A least-squares line through the season means gives level and trend; seasonals are the mean
    detrended deviations per phase, centred to sum 0.  This is exact for a linear trend plus a
    fixed weekly pattern, which keeps the constant/pattern/trend tests exact.
    """
    k = min(len(y) // m, 4)
    if k < 2:
        raise ValueError(f"Holt-Winters needs at least 2 full seasons ({2 * m} points)")
    means = [sum(y[i * m : (i + 1) * m]) / m for i in range(k)]
    centres = [i * m + (m - 1) / 2 for i in range(k)]
    cbar = sum(centres) / k
    mbar = sum(means) / k
    slope = sum((c - cbar) * (v - mbar) for c, v in zip(centres, means)) / sum((c - cbar) ** 2 for c in centres)

    def line(t: float) -> float:
        return mbar + slope * (t - cbar)

    season = [sum(y[i * m + j] - line(i * m + j) for i in range(k)) / k for j in range(m)]
    shift = sum(season) / m
    season = [s - shift for s in season]
    return line(-1), slope, season


def _hw_sse(
    y: Sequence[float], m: int, alpha: float, beta: float, gamma: float, phi: float,
    level: float, trend: float, season0: Sequence[float],
) -> float:
    """One-step SSE; kept minimal because the grid search calls it a few hundred times."""
    s = list(season0)
    l, b = level, trend
    ab = alpha * beta
    sse = 0.0
    i = 0
    for yt in y:
        lb = l + phi * b
        e = yt - lb - s[i]
        sse += e * e
        l = lb + alpha * e
        b = phi * b + ab * e
        s[i] += gamma * e
        i += 1
        if i == m:
            i = 0
    return sse


#: Smoothing lattice: §B6's {0.1, …, 0.9} plus 0.01/0.02/0.05.  A stable series is fitted best by
#: a nearly fixed level and season; with 0.1 as the floor the model had to treat it as a random
#: walk, and the intervals of monthly sums grew to several times the point value.
_GRID = (0.01, 0.02, 0.05) + tuple(round(0.1 * i, 1) for i in range(1, 10))
_COARSE = (0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9)


def fit_holt_winters(
    values: Sequence[float],
    m: int = 7,
    *,
    phi: float = 0.98,
    exhaustive: bool = False,
) -> HoltWintersFit:
    """Fit α, β, γ on the {0.01, 0.02, 0.05, 0.1, …, 0.9} lattice minimising one-step SSE, φ fixed.

    Default search: a 7×7×7 coarse grid, then greedy moves to the best of the 26 lattice
    neighbours until none improves (~400 SSE evaluations instead of 1728; ties keep the earlier
    candidate so results are deterministic).  ``exhaustive=True`` scans all 1728 points.
    """
    y = [float(v) for v in values]
    level0, trend0, season0 = _hw_initial(y, m)

    def sse(p: tuple[float, float, float]) -> float:
        return _hw_sse(y, m, p[0], p[1], p[2], phi, level0, trend0, season0)

    best: tuple[float, float, float] | None = None
    best_sse = math.inf
    seen: dict[tuple[float, float, float], float] = {}
    candidates = [(a, b, g) for a in (_GRID if exhaustive else _COARSE)
                  for b in (_GRID if exhaustive else _COARSE)
                  for g in (_GRID if exhaustive else _COARSE)]
    for p in candidates:
        v = seen[p] = sse(p)
        if v < best_sse:
            best, best_sse = p, v
    assert best is not None
    if not exhaustive:
        while True:
            idx = [_GRID.index(x) for x in best]
            move = None
            for da in (-1, 0, 1):
                for db in (-1, 0, 1):
                    for dg in (-1, 0, 1):
                        j = (idx[0] + da, idx[1] + db, idx[2] + dg)
                        if not all(0 <= q < len(_GRID) for q in j):
                            continue
                        p = (_GRID[j[0]], _GRID[j[1]], _GRID[j[2]])
                        if p not in seen:
                            seen[p] = sse(p)
                        if seen[p] < best_sse:
                            move, best_sse = p, seen[p]
            if move is None:
                break
            best = move

    alpha, beta, gamma = best
    # Final pass to obtain the states and the residuals.
    s = list(season0)
    l, b = level0, trend0
    errors = []
    for t, yt in enumerate(y):
        i = t % m
        lb = l + phi * b
        e = yt - lb - s[i]
        errors.append(e)
        l = lb + alpha * e
        b = phi * b + alpha * beta * e
        s[i] += gamma * e
    tail = errors[m:] if len(errors) > m else errors
    sigma = math.sqrt(sum(e * e for e in tail) / len(tail))
    return HoltWintersFit(alpha, beta, gamma, phi, l, b, tuple(s), len(y), m, sum(e * e for e in errors), sigma)


def seasonal_naive(values: Sequence[float], horizon: int, m: int = 7) -> list[float]:
    """ŷ_{T+h} = y_{T+h-m⌈h/m⌉}: repeat the last full season."""
    n = len(values)
    if n < m:
        raise ValueError(f"seasonal naive needs at least one season ({m} points)")
    return [float(values[n - 1 + h - m * math.ceil(h / m)]) for h in range(1, horizon + 1)]


def mase(actual: Sequence[float], predicted: Sequence[float], training: Sequence[float], m: int = 7) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006).

    Scale = in-sample MAE of the one-step seasonal naive ``|y_t - y_{t-m}|`` on ``training``.
    A zero scale (perfectly periodic training data) gives 0.0 for perfect forecasts and inf
    otherwise, so a model can still be compared against a perfect seasonal naive.
    """
    if len(actual) != len(predicted) or not actual:
        raise ValueError("actual and predicted must be non-empty and of equal length")
    if len(training) <= m:
        raise ValueError(f"training needs more than m={m} points for the MASE scale")
    scale = sum(abs(training[t] - training[t - m]) for t in range(m, len(training))) / (len(training) - m)
    mae = sum(abs(a - p) for a, p in zip(actual, predicted)) / len(actual)
    if scale == 0.0:
        return 0.0 if mae == 0.0 else math.inf
    return mae / scale


def rolling_origin_backtest(
    values: Sequence[float],
    forecaster: Callable[[Sequence[float], int], Sequence[float]],
    *,
    origins: int = 4,
    horizon: int = 14,
    step: int = 7,
    m: int = 7,
    min_train: int = 28,
    max_train: int = 182,
) -> tuple[float | None, int]:
    """Mean MASE of ``forecaster`` over rolling origins, and how many origins were usable.

    Origins are ``T_j = n - horizon - j·step`` for j = 0..origins-1 (the latest windows), each
    forecasting ``values[T_j : T_j + horizon]`` from ``values[max(0, T_j - max_train) : T_j]``
    (the same ≤26-week window the published model uses).  Origins with fewer than ``min_train``
    points of history are dropped.  Every origin has the same horizon, so the mean of per-origin
    MASE equals the MASE of the pooled scaled errors.
    """
    n = len(values)
    scores = []
    for j in range(origins - 1, -1, -1):
        t0 = n - horizon - j * step
        if t0 < max(min_train, m + 1):
            continue
        train = values[max(0, t0 - max_train) : t0]
        pred = forecaster(train, horizon)
        scores.append(mase(values[t0 : t0 + horizon], pred, train, m))
    if not scores:
        return None, 0
    return sum(scores) / len(scores), len(scores)


# ------------------------------------------------------------------------ calendar helpers
def _add_months(t: datetime, months: int) -> datetime:
    y, mo = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=mo + 1, day=1)


def _next_buckets(last: datetime, horizon: int, granularity: str) -> list[datetime]:
    out = []
    for h in range(1, horizon + 1):
        if granularity == "hour":
            if last.tzinfo is not None:
                u = last.astimezone(timezone.utc) + timedelta(hours=h)
                out.append(u.astimezone(last.tzinfo))
            else:
                out.append(last + timedelta(hours=h))
        elif granularity == "day":
            out.append(last + timedelta(days=h))  # wall-clock: stays at local midnight
        elif granularity == "week":
            out.append(last + timedelta(weeks=h))
        elif granularity == "month":
            out.append(_add_months(last, h))
        else:
            out.append(_add_months(last, 3 * h))
    return out


def _points(starts: Sequence[datetime], preds: Sequence[float], errors: ErrorModel) -> list[ForecastPoint]:
    out = []
    for h, (t, p) in enumerate(zip(starts, preds), start=1):
        sd = errors.sd(h)
        out.append(
            ForecastPoint(
                t,
                max(0.0, p),
                max(0.0, p - Z80 * sd),
                max(0.0, p + Z80 * sd),
                max(0.0, p - Z95 * sd),
                max(0.0, p + Z95 * sd),
            )
        )
    return out


def _rms(xs: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in xs) / len(xs)) if xs else 0.0


def _mean_forecast(values: Sequence[float], horizon: int, window: int) -> tuple[list[float], ErrorModel]:
    """Flat mean of the last ``window`` values; σ from the same rule's one-step errors, × √h."""
    recent = values[-window:]
    level = sum(recent) / len(recent)
    errs = [values[t] - sum(values[max(0, t - window) : t]) / (t - max(0, t - window)) for t in range(1, len(values))]
    return [level] * horizon, _random_walk(_rms(errs), horizon)


# ------------------------------------------------------------------------ public forecast
_MEAN_WINDOW = {"week": 4, "month": 3, "quarter": 2}


def forecast(
    series: Sequence[tuple[datetime, float]],
    horizon: int,
    granularity: Granularity = "day",
    *,
    max_weeks: int = 26,
    phi: float = 0.98,
    require_mase_below_one: bool = False,
) -> Forecast:
    """Forecast the next ``horizon`` buckets after the series' last bucket.

    * ``day``: Holt-Winters (A,Ad,A), m = 7, fitted on the last ≤ ``max_weeks`` weeks, if there
      are ≥ 4 full weeks; published only if its rolling-origin backtest MASE (4 origins, 14-day
      horizon, step 7) is strictly below seasonal naive's (and below 1 when
      ``require_mase_below_one``, the literal §B6 wording), else seasonal naive.  Fewer than 7
      days: the flat mean.  Daily series must be gap-free (empty days as 0, §A).
    * ``hour``: the mean of the same hour-of-week over the last 4 weeks (seasonal naive, period
      168, averaged); hours with no history use the mean of the last 4 weeks.
    * ``week``/``month``/``quarter``: the flat mean of the last 4/3/2 buckets.  Prefer forecasting
      daily and calling :func:`aggregate_forecast` (§B6: coarse forecasts are sums of daily ones).

    Prediction intervals are normal bounds ``ŷ ± z·σ_h``.  σ is the RMS of the method's in-sample
    one-step errors.  Holt-Winters uses the exact ETS(A,Ad,A) variance ``σ²(1 + Σ_{j<h} c_j²)``
    (:meth:`HoltWintersFit.errors`); the mean uses ``σ·√h`` (random walk); seasonal methods use
    ``σ·√(⌊(h-1)/m⌋ + 1)`` because their in-sample errors are already one-season-ahead errors.
    Values and bounds are clipped at 0.
    """
    _check_granularity(granularity)
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    pts = _sorted_series(series)
    if not pts:
        raise ValueError("cannot forecast an empty series")
    starts = _next_buckets(pts[-1][0], horizon, granularity)
    values = [v for _, v in pts]

    if granularity == "hour":
        return _forecast_hourly(pts, starts)
    if granularity != "day":
        preds, err = _mean_forecast(values, horizon, _MEAN_WINDOW[granularity])
        return Forecast("mean", _points(starts, preds, err), dict(_NO_BACKTEST), errors=err)

    for (a, _), (b, _) in zip(pts, pts[1:]):
        if _wall(b).date() - _wall(a).date() != timedelta(days=1):
            raise ValueError(f"daily series must have one bucket per day without gaps ({a} -> {b}); emit empty days as 0")
    m = 7
    y = values[-max_weeks * m :]
    n = len(y)
    if n < m:
        preds, err = _mean_forecast(y, horizon, n)
        return Forecast("mean", _points(starts, preds, err), dict(_NO_BACKTEST), errors=err)

    naive_preds = seasonal_naive(y, horizon, m)
    naive_err = _seasonal_walk(_rms([y[t] - y[t - m] for t in range(m, n)]), horizon, m)
    naive = Forecast("seasonal_naive", _points(starts, naive_preds, naive_err), dict(_NO_BACKTEST), errors=naive_err)
    if n < 4 * m:
        return naive

    fit = fit_holt_winters(y, m, phi=phi)
    params = {"alpha": fit.alpha, "beta": fit.beta, "gamma": fit.gamma, "phi": fit.phi}
    bt_h = 14
    mase_model, origins = rolling_origin_backtest(
        values, lambda tr, h: fit_holt_winters(tr, m, phi=phi).predict(h),
        horizon=bt_h, m=m, min_train=4 * m, max_train=max_weeks * m,
    )
    mase_naive, _ = rolling_origin_backtest(
        values, lambda tr, h: seasonal_naive(tr, h, m),
        horizon=bt_h, m=m, min_train=4 * m, max_train=max_weeks * m,
    )
    backtest: BacktestResult = {
        "mase_model": mase_model,
        "mase_naive": mase_naive,
        "error_ratio": None,
        "origins": origins,
        "horizon": bt_h if origins else 0,
    }
    if mase_model is not None and mase_naive is not None:
        if mase_naive == 0.0:
            backtest["error_ratio"] = 1.0 if mase_model == 0.0 else math.inf
        else:
            backtest["error_ratio"] = mase_model / mase_naive
    publish_hw = (
        mase_model is not None
        and mase_naive is not None
        and mase_model < mase_naive
        and (not require_mase_below_one or mase_model < 1.0)
    )
    if publish_hw:
        err = fit.errors(horizon)
        return Forecast("holt_winters", _points(starts, fit.predict(horizon), err), backtest, params, err)
    return Forecast("seasonal_naive", naive.points, backtest, params, naive_err)


def _forecast_hourly(pts: list[tuple[datetime, float]], starts: list[datetime]) -> Forecast:
    """Mean of the same hour-of-week over the last 4 weeks (seasonal naive, period 168)."""
    window = timedelta(weeks=4)
    origin = _wall(pts[-1][0])
    by_key: dict[tuple[int, int], list[float]] = {}
    recent: list[float] = []
    for t, v in pts:
        w = _wall(t)
        if w > origin - window:
            by_key.setdefault((w.weekday(), w.hour), []).append(v)
            recent.append(v)
    fallback = sum(recent) / len(recent)

    # In-sample one-step errors of the same rule (needs at least one earlier same-hour value).
    groups: dict[tuple[int, int], tuple[list[datetime], list[float]]] = {}
    errs = []
    for t, v in pts:
        w = _wall(t)
        times, vals = groups.setdefault((w.weekday(), w.hour), ([], []))
        lo = bisect.bisect_left(times, w - window)
        if lo < len(times):
            hist = vals[lo:]
            errs.append(v - sum(hist) / len(hist))
        times.append(w)
        vals.append(v)
    err = _seasonal_walk(_rms(errs), len(starts), 168)

    preds = []
    for t in starts:
        w = _wall(t)
        hist = by_key.get((w.weekday(), w.hour))
        preds.append(sum(hist) / len(hist) if hist else fallback)
    return Forecast("seasonal_mean", _points(starts, preds, err), dict(_NO_BACKTEST), errors=err)


def _bucket_of(d: date, granularity: str) -> date:
    if granularity == "week":
        return d - timedelta(days=d.weekday())
    if granularity == "month":
        return d.replace(day=1)
    if granularity == "quarter":
        return d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    raise ValueError("aggregate_forecast granularity must be week, month or quarter")


def _bucket_days(start: date, granularity: str) -> int:
    if granularity == "week":
        return 7
    if granularity == "month":
        return calendar.monthrange(start.year, start.month)[1]
    return sum(calendar.monthrange(start.year, start.month + i)[1] for i in range(3))


def aggregate_forecast(
    daily: Forecast,
    granularity: Literal["week", "month", "quarter"],
    *,
    include_partial: bool = False,
) -> Forecast:
    """Sum a daily forecast into ISO weeks (Monday), months or quarters (§B6).

    Point values add up.  The interval of a sum is ``Σŷ ± z·σ_Σ`` with ``σ_Σ`` the standard
    deviation of the summed errors from the daily method's error model (`ErrorModel.sum_sd`),
    clipped at 0.  Summing the daily bounds instead (comonotonic errors) gave monthly 95 % bands
    of several times the point value three months out.  Buckets the daily horizon covers only
    partly are dropped unless ``include_partial`` (then they hold only the forecast days; add the
    period's actuals yourself).
    """
    if daily.errors is None:
        raise ValueError("aggregate_forecast needs the daily forecast's error model")
    steps: dict[date, list[int]] = {}
    values: dict[date, float] = {}
    tzinfo = {}
    for h, p in enumerate(daily.points, start=1):
        key = _bucket_of(_wall(p.bucket_start).date(), granularity)
        steps.setdefault(key, []).append(h)
        values[key] = values.get(key, 0.0) + p.value
        tzinfo[key] = p.bucket_start.tzinfo
    points = []
    for key in sorted(steps):
        if not include_partial and len(steps[key]) < _bucket_days(key, granularity):
            continue
        start = datetime.combine(key, time(), tzinfo=tzinfo[key])
        v, sd = values[key], daily.errors.sum_sd(steps[key][0], steps[key][-1])
        points.append(ForecastPoint(start, v, max(0.0, v - Z80 * sd), v + Z80 * sd, max(0.0, v - Z95 * sd), v + Z95 * sd))
    return Forecast(daily.method, points, daily.backtest, daily.params, daily.errors)
