"""The management trends report: 12+ months of each headline KPI with a trend line and, for
counts, the metrics core's forecast with 80%/95% bands; a per-group breakdown; response time by
customer segment.

The monthly values, forecasts and groupings are metrics API rows. The trend line is an ordinary
least-squares line through the monthly values (`statistics.linear_regression`): a description
of the direction, not a KPI, and labelled as such.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import KpisyncError
from ..metrics.registry import all_kpis
from ..metrics.roles import DEFAULT
from ..metrics.settings import MetricsSettings
from ..store import Store
from .data import Reader, Span, coverage_notes, month_span, name_of

GROUP_KPIS = ("ticket_volume", "first_response_time", "csat", "sla_compliance")
SEGMENT_KPIS = ("first_response_time", "response_time")
MAX_GROUPS = 12
MIN_MONTHS = 2
#: A trend moving the value by less than this share of its mean over the window is "flat".
FLAT = 0.02
TREND_DEFINITION = ("Trend: least-squares line through the monthly values; the slope is the change per month. "
                    "It describes the past months, it is not a forecast.")


@dataclass
class Series:
    kpi: str
    name: str
    unit: str
    definition: str
    better: str | None
    period: str
    points: list[dict[str, Any]]  # {"period", "value", "count"?}
    trend: dict[str, Any] | None
    forecast: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Breakdown:
    """One KPI per group (or segment): monthly values and the value over the whole span."""

    kpi: str
    name: str
    unit: str
    definition: str
    by: str
    period: str
    months: list[str]
    groups: list[dict[str, Any]]  # {"group", "values": [...per month], "overall", "count"}
    notes: list[str] = field(default_factory=list)


@dataclass
class TrendsReport:
    span: Span
    generated_at: str
    hours: str
    series: list[Series]
    groups: list[Breakdown]
    segments: list[Breakdown]
    segment_spec: str
    notes: list[str]
    kind: str = "trends"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["span"] = self.span.to_dict()
        return out


def trend_line(values: list[float | None]) -> dict[str, Any] | None:
    """Slope per month, fitted values at each month and the direction ("rising", "falling", "flat")."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < MIN_MONTHS or len({x for x, _ in points}) < 2:
        return None
    fit = statistics.linear_regression([float(x) for x, _ in points], [float(v) for _, v in points])
    mean = statistics.fmean(v for _, v in points)
    moved = fit.slope * (len(values) - 1)
    flat = abs(moved) <= FLAT * abs(mean) if mean else moved == 0
    return {
        "slope": round(fit.slope, 6),
        "intercept": round(fit.intercept, 6),
        "fitted": [round(fit.intercept + fit.slope * i, 6) for i in range(len(values))],
        "direction": "flat" if flat else ("rising" if fit.slope > 0 else "falling"),
        "months": len(points),
    }


def _options(kpi_id: str, hours: str) -> dict[str, Any]:
    return {"hours": hours} if hours != "calendar" and "hours" in all_kpis()[kpi_id].params else {}


def _series(reader: Reader, kpi_id: str, span: Span, hours: str, forecast: int) -> Series:
    kpi = all_kpis()[kpi_id]
    options = _options(kpi_id, hours)
    if kpi.series and forecast:
        options["forecast"] = forecast
    result = reader.kpi(kpi_id, span, period="month", **options)
    points = [{"period": r["period"], "value": r.get("value"), "count": r.get("count")}
              for r in result.rows if not r.get("forecast")]
    ahead = [{k: r.get(k) for k in ("period", "value", "lo80", "hi80", "lo95", "hi95")}
             for r in result.rows if r.get("forecast")]
    return Series(kpi_id, name_of(kpi_id), result.unit, result.definition, kpi.better, span.describe(), points,
                  trend_line([p["value"] for p in points]), ahead, list(result.notes))


def _breakdown(reader: Reader, kpi_id: str, by: str, span: Span, hours: str) -> Breakdown:
    options = _options(kpi_id, hours)
    monthly = reader.kpi(kpi_id, span, period="month", by=by, **options)
    overall = reader.kpi(kpi_id, span, by=by, **options)
    months = span.month_labels()
    index = {m: i for i, m in enumerate(months)}
    groups: dict[str, dict[str, Any]] = {}
    for r in overall.rows:
        groups[r["group"]] = {"group": r["group"], "values": [None] * len(months), "overall": r.get("value"),
                              "count": r.get("count", r.get("value"))}
    for r in monthly.rows:
        entry = groups.setdefault(r["group"], {"group": r["group"], "values": [None] * len(months), "overall": None,
                                               "count": None})
        if r["period"] in index:
            entry["values"][index[r["period"]]] = r.get("value")
    ranked = sorted(groups.values(), key=lambda g: (-(g["count"] or 0), g["group"]))
    notes = list(overall.notes)
    if len(ranked) > MAX_GROUPS:
        notes.append(f"the {MAX_GROUPS} largest of {len(ranked)} {by}s are shown")
    return Breakdown(kpi_id, name_of(kpi_id), overall.unit, overall.definition, by, span.describe(), months,
                     ranked[:MAX_GROUPS], notes)


def _has_data(series: Series) -> bool:
    return any(p["value"] not in (None, 0) for p in series.points)


def trends_report(store: Store, settings: MetricsSettings | None = None, *, months: int = 12, month: str | None = None,
                  forecast: int = 3, hours: str = "calendar", now: int | None = None) -> TrendsReport:
    """`months` whole months ending with `month` (default: the last complete month with data)."""
    if months < MIN_MONTHS:
        raise KpisyncError(f"--months must be at least {MIN_MONTHS} for a trend")
    if forecast < 0:
        raise KpisyncError("--forecast must be 0 (none) or a number of months")
    settings = settings or MetricsSettings()
    span, notes = month_span(store, settings, month, months, now=now)
    notes += coverage_notes(store, settings, [span])
    reader = Reader(store, settings, now)
    wanted = list(DEFAULT) + ["social_tickets", "mentions"]
    if reader.has_rows("orders") and "converted_tickets" in all_kpis():
        wanted.append("converted_tickets")
    series, missing = [], []
    for kpi_id in dict.fromkeys(k for k in wanted if k in all_kpis()):
        item = _series(reader, kpi_id, span, hours, forecast)
        (series if _has_data(item) else missing).append(item)
    notes += [f"{name_of(s.kpi)}: no data in the period" + (f" ({s.notes[0]})" if s.notes else "") for s in missing]
    available = {s.kpi for s in series}
    groups = [_breakdown(reader, k, "group", span, hours) for k in GROUP_KPIS if k in available]
    segments = [_breakdown(reader, k, "segment", span, hours) for k in SEGMENT_KPIS if k in available or k == "response_time"]
    notes += [n for n in reader.notes if not n.startswith("facts rebuilt")]
    return TrendsReport(span, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), hours, series, groups,
                        segments, settings.segment, list(dict.fromkeys(notes)))
