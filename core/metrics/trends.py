"""Spikes and forecasts for count series (ticket_volume, social_tickets, mentions), §B6.

The math lives in `timeseries` (robust seasonal baseline + Poisson test; Holt-Winters guarded
by a rolling-origin backtest against seasonal naive). This module builds the series from the
KPI over enough history, puts the verdicts on the rows and explains a spike by the channel,
group or term that grew the most.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..errors import KpisyncError
from .clock import local_midnight
from .periods import Window, buckets, floor, local_date, next_period, period_start
from .query import Context, Query, labels
from .registry import Kpi
from .timeseries import aggregate_forecast, detect_spikes, forecast

#: History needed before the window: 8 weeks of days, 4 weeks of hours, 8 coarser periods.
HISTORY_DAYS = {"hour": 28, "day": 56}
FORECAST_HISTORY_DAYS = 26 * 7
EXPLAIN_BY = {"mentions": ("channel", "tag"), "default": ("channel", "group", "tag")}
MAX_GROUPS = 25


def _series(kpi: Kpi, ctx: Context, window: Window, by: str | None) -> tuple[Window, dict[str, list[tuple[datetime, float]]]]:
    saved = ctx.by
    ctx.by = by
    try:
        cells = kpi.compute(Query(ctx, window))
    finally:
        ctx.by = saved
    keys = sorted({k for _, k in cells}) or [""]
    zone = ctx.zone
    out: dict[str, list[tuple[datetime, float]]] = {}
    for key in keys[:MAX_GROUPS]:
        out[key] = [
            (datetime.fromtimestamp(floor(b.lo, window.period or "day", zone), zone),
             float((cells.get((i, key)) or {}).get("value") or 0))
            for i, b in enumerate(window.buckets)
        ]
    return window, out


def _history_window(window: Window, ctx: Context) -> Window:
    """The window extended back by the history the spike baseline needs."""
    period, zone = window.period, ctx.zone
    assert period is not None
    if period == "hour":
        since = floor(window.since, "hour", zone) - HISTORY_DAYS["hour"] * 86400
    elif period == "day":
        since = local_midnight(local_date(window.since, zone) - timedelta(days=HISTORY_DAYS["day"]), zone)
    else:
        day = period_start(local_date(window.since, zone), period)
        for _ in range(8):
            day = period_start(day - timedelta(days=1), period)
        since = local_midnight(day, zone)
    return Window(since, window.until, period, buckets(since, window.until, period, zone))


def add_spikes(kpi: Kpi, ctx: Context, window: Window, rows: list[dict[str, Any]]) -> list[str]:
    """Mark rows with spike, spike_score (z) and baseline; explain spikes of the total series."""
    if window.period not in ("hour", "day", "week", "month", "quarter"):
        raise KpisyncError("--spikes needs --period hour, day, week, month or quarter")
    history = _history_window(window, ctx)
    _, series = _series(kpi, ctx, history, ctx.by)
    names = labels(ctx, ctx.by, series.keys())
    verdicts: dict[tuple[str, str], Any] = {}
    for key, points in series.items():
        for point in detect_spikes(points, window.period):  # type: ignore[arg-type]
            verdicts[(names[key], _label(point.bucket_start, window.period))] = point
    flagged = partial = 0
    for row in rows:
        point = verdicts.get((row["group"], row["period"]))
        if point is None:
            continue
        if row.get("partial"):  # part of a period against whole ones: it would always read low
            partial += 1
            continue
        row["spike"] = point.is_spike
        row["spike_score"] = None if point.z is None else round(point.z, 3)
        row["baseline"] = None if point.baseline is None else round(point.baseline, 3)
        if point.is_spike:
            flagged += 1
            if ctx.by is None:
                row["explain"] = _explain(kpi, ctx, history, row["period"])
    notes = [f"{flagged} spike(s) flagged (robust same-weekday baseline, Poisson tail < 0.001)"]
    if partial:
        notes.append(f"{partial} period(s) cut short by the window (marked partial) not scored: part of a period "
                     "would read low against whole ones")
    if all(r.get("baseline") is None for r in rows):
        notes.append("not enough history before the window for a spike baseline (needs 4 earlier same-weekday periods)")
    return notes


def _explain(kpi: Kpi, ctx: Context, history: Window, label: str) -> list[dict[str, Any]]:
    """Which channel / group / term grew: the largest excess over its own baseline."""
    found = []
    for by in EXPLAIN_BY.get(kpi.id, EXPLAIN_BY["default"]):
        if by not in kpi.dims:
            continue
        _, series = _series(kpi, ctx, history, by)
        names = labels(ctx, by, series.keys())
        for key, points in series.items():
            for point in detect_spikes(points, history.period):  # type: ignore[arg-type]
                if _label(point.bucket_start, history.period) == label and point.baseline is not None:
                    excess = point.value - point.baseline
                    if excess > 0:
                        found.append({"by": by, "group": names[key], "value": point.value,
                                      "baseline": round(point.baseline, 3), "excess": round(excess, 3)})
    found.sort(key=lambda e: -e["excess"])
    return found[:5]


def _label(start: datetime, period: str | None) -> str:
    if period == "hour":
        return start.isoformat(timespec="minutes")
    return start.date().isoformat()


def add_forecast(kpi: Kpi, ctx: Context, window: Window, rows: list[dict[str, Any]], horizon: int) -> list[str]:
    """Append `horizon` forecast rows per group (daily model, summed for coarser periods)."""
    period = window.period or "day"
    if period == "year":
        raise KpisyncError("--forecast works with --period hour, day, week, month or quarter")
    zone = ctx.zone
    end = local_midnight(local_date(window.until, zone), zone) if period != "hour" else floor(window.until, "hour", zone)
    if period == "hour":
        since = end - 28 * 86400
        hist = Window(since, end, "hour", buckets(since, end, "hour", zone))
    else:
        since = local_midnight(local_date(end, zone) - timedelta(days=FORECAST_HISTORY_DAYS), zone)
        hist = Window(since, end, "day", buckets(since, end, "day", zone))
    if not hist.buckets:
        return ["no history to forecast from"]
    _, series = _series(kpi, ctx, hist, ctx.by)
    names = labels(ctx, ctx.by, series.keys())
    notes = []
    for key, points in series.items():
        while points and points[0][1] == 0:  # before the first data: not zero demand, no data
            points = points[1:]
        if len(points) < 2:
            notes.append(f"forecast ({names[key]}): not enough history")
            continue
        if period in ("hour", "day"):
            result = forecast(points, horizon, period)  # type: ignore[arg-type]
        else:
            first = period_start(local_date(end, zone), period)
            target = first
            for _ in range(horizon + 1):
                target = next_period(target, period)
            days = (target - local_date(end, zone)).days
            daily = forecast(points, days, "day")
            result = aggregate_forecast(daily, period)  # type: ignore[arg-type]
        for point in result.points[:horizon]:
            rows.append({
                "period": _label(point.bucket_start, period),
                "group": names[key],
                "value": round(point.value, 2),
                "lo80": round(point.lo80, 2), "hi80": round(point.hi80, 2),
                "lo95": round(point.lo95, 2), "hi95": round(point.hi95, 2),
                "forecast": True,
            })
        bt = result.backtest
        detail = f"forecast ({names[key]}): {result.method}"
        if bt.get("error_ratio") is not None:
            detail += (f"; backtest over {bt['origins']} origins, {bt['horizon']}-day horizon: MASE {bt['mase_model']:.3f} "
                       f"vs seasonal naive {bt['mase_naive']:.3f} (error ratio {bt['error_ratio']:.3f})")
        notes.append(detail)
    return notes
