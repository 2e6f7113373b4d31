"""The monthly team report: every KPI against the previous month and the same month last year,
volume by channel, CSAT over time, top agents, SLA breaches, spikes, next month's forecast and,
where orders are synced, converted tickets and revenue.

Every number here is a row (or a field of a row) of the metrics API; this module only chooses
the windows and options and arranges the rows into sections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..metrics.registry import all_kpis
from ..metrics.settings import MetricsSettings
from ..store import Store
from .data import Reader, Span, coverage_notes, headline, month_span, name_of

#: KPIs with their own section instead of a headline figure.
OWN_SECTION = {"top_agents", "macro_usage"}
#: Months shown in the "over time" charts (CSAT, volume forecast), the report month included.
HISTORY_MONTHS = 6
TOP_AGENTS = 5
WORST_TICKETS = 10
COMMENTS = 5


@dataclass
class Change:
    """The same figure over a comparison period, and the change to it."""

    period: str
    value: Any
    change: float | None
    change_pct: float | None


@dataclass
class Figure:
    kpi: str
    name: str
    unit: str
    definition: str
    better: str | None
    period: str  # the span it covers, in words
    value: Any
    row: dict[str, Any]  # the metrics row (extras: median, p90, count, ...), without comments
    previous: Change | None = None
    year: Change | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """A titled block: its definition, period, rows and (for HTML) a chart."""

    title: str
    definition: str
    period: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TeamReport:
    span: Span
    previous: Span
    year: Span
    generated_at: str
    hours: str
    figures: list[Figure]
    missing: list[Figure]
    channels: Section
    csat: Section
    top_agents: Section
    sla: Section
    spikes: Section
    forecast: Section
    conversion: Section | None
    notes: list[str]
    kind: str = "team"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("span", "previous", "year"):
            out[key] = getattr(self, key).to_dict()
        return out


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("comments", "_i")}


def change(value: Any, prior: Any) -> tuple[float | None, float | None]:
    """(absolute, relative) change as the metrics core's --compare computes it, for KPIs without it."""
    if value is None or prior is None:
        return None, None
    return round(value - prior, 6), (round((value - prior) / abs(prior), 6) if prior else None)


def figure(reader: Reader, kpi_id: str, span: Span, hours: str = "calendar") -> Figure:
    """One KPI over `span` against the previous span and the same span a year earlier."""
    kpi = all_kpis()[kpi_id]
    options: dict[str, Any] = {"hours": hours} if hours != "calendar" and "hours" in kpi.params else {}
    previous, year = span.shifted(-span.months), span.shifted(-12)
    if "compare" in kpi.params:
        now = reader.kpi(kpi_id, span, compare="previous", **options)
        ago = reader.kpi(kpi_id, span, compare="year", **options)
        row, year_row = headline(now), headline(ago)
        prev = Change(previous.label, row.get("previous"), row.get("change"), row.get("change_pct"))
        last_year = Change(year.label, year_row.get("previous"), year_row.get("change"), year_row.get("change_pct"))
    else:
        now = reader.kpi(kpi_id, span, **options)
        row = headline(now)
        prior = headline(reader.kpi(kpi_id, previous, **options)).get("value")
        before = headline(reader.kpi(kpi_id, year, **options)).get("value")
        prev = Change(previous.label, prior, *change(row.get("value"), prior))
        last_year = Change(year.label, before, *change(row.get("value"), before))
    return Figure(kpi_id, name_of(kpi_id), now.unit, now.definition, kpi.better, span.describe(), row.get("value"),
                  _strip(row), prev, last_year, list(now.notes))


def _channels(reader: Reader, span: Span, figures: dict[str, Figure]) -> Section:
    result = reader.kpi("ticket_volume", span, by="channel", compare="previous")
    total = sum(r["value"] or 0 for r in result.rows)
    rows = [
        {"channel": r["group"], "value": r["value"], "previous": r.get("previous"), "change": r.get("change"),
         "change_pct": r.get("change_pct"), "share": (r["value"] / total) if total else None}
        for r in sorted(result.rows, key=lambda r: -(r["value"] or 0))
    ]
    social = [figures[k] for k in ("social_tickets", "mentions") if k in figures]
    return Section(
        "Volume by channel", f"{result.definition} Grouped by the ticket's channel; share = channel ÷ all tickets created.",
        span.describe(), rows, social, list(result.notes), {"previous": span.shifted(-1).label},
    )


def _csat(reader: Reader, span: Span) -> Section:
    history = span.back_to(max(HISTORY_MONTHS, span.months))
    result = reader.kpi("csat", history, period="month")
    rows = [{k: r.get(k) for k in ("period", "value", "count", "satisfied", "neutral", "unsatisfied", "response_rate")}
            for r in result.rows]
    month = headline(reader.kpi("csat", span, compare="previous"))
    comments = month.get("comments", [])[:COMMENTS]
    return Section(
        "CSAT over time", result.definition, history.describe(), rows, notes=list(result.notes),
        extra={"comments": comments, "comments_total": month.get("comments_total", 0), "comments_period": span.describe()},
    )


def _top_agents(reader: Reader, span: Span, hours: str) -> Section:
    result = reader.kpi("top_agents", span, **({"hours": hours} if hours != "calendar" else {}))
    rows = [_strip(r) for r in result.rows[:TOP_AGENTS]]
    notes = list(result.notes)
    if not rows:
        notes.append(f"no agent resolved at least {reader.settings.min_resolved} tickets in the period "
                     "([metrics] min_resolved)")
    return Section("Top agents", result.definition + f" Eligible: at least {reader.settings.min_resolved} resolutions "
                   "in the period.", span.describe(), rows, notes=notes)


def _sla(reader: Reader, span: Span, figures: dict[str, Figure]) -> Section:
    compliance = figures.get("sla_compliance")
    section = Section("SLA breaches", "", span.describe())
    if compliance is None:
        section.notes.append("no SLA due dates synced: no SLA breaches to report")
        return section
    row = compliance.row
    section.definition = compliance.definition + " A breach is a resolution (or first reply) after its due date."
    section.figures = [f for f in (compliance, figures.get("overdue")) if f is not None]
    section.extra = {
        "resolution_breaches": (row.get("count") or 0) - (row.get("numerator") or 0),
        "resolutions_with_due": row.get("count") or 0,
        "first_reply_breaches": (row.get("first_reply_count") or 0) - (row.get("first_reply_met") or 0),
        "first_replies_with_due": row.get("first_reply_count") or 0,
    }
    by_group = reader.kpi("sla_compliance", span, by="group")
    section.rows = [
        {"group": r["group"], "value": r["value"], "count": r.get("count") or 0,
         "breaches": (r.get("count") or 0) - (r.get("numerator") or 0),
         "first_reply_breaches": (r.get("first_reply_count") or 0) - (r.get("first_reply_met") or 0)}
        for r in by_group.rows if (r.get("count") or r.get("first_reply_count"))
    ]
    worst = reader.kpi("sla_compliance", span, tickets=True, limit=WORST_TICKETS * 5).rows
    section.extra["worst"] = [
        {"ticket_id": t["ticket_id"], "source": t["source"], "url": t.get("url"), "late_by": t["value"], "at": t.get("at")}
        for t in worst if (t.get("value") or 0) > 0
    ][:WORST_TICKETS]
    return section


def _spikes(reader: Reader, span: Span, available: set[str]) -> Section:
    section = Section("Spikes", "", span.describe())
    definitions = []
    for kpi_id in ("ticket_volume", "social_tickets", "mentions"):
        if kpi_id not in available:
            continue
        result = reader.kpi(kpi_id, span, period="day", spikes=True)
        definitions.append(name_of(kpi_id).lower())
        if kpi_id == "ticket_volume":
            section.extra["daily"] = [
                {"period": r["period"], "value": r["value"], "baseline": r.get("baseline"), "spike": bool(r.get("spike"))}
                for r in result.rows
            ]
        for r in result.rows:
            if r.get("spike"):
                section.rows.append({"kpi": kpi_id, "name": name_of(kpi_id), "period": r["period"], "value": r["value"],
                                     "baseline": r.get("baseline"), "score": r.get("spike_score"),
                                     "explain": r.get("explain", [])[:3]})
        section.notes += [f"{name_of(kpi_id)}: {n}" for n in result.notes]
    section.definition = ("A day is a spike when its count is improbably high against a robust baseline of earlier "
                          "same-weekday days (Poisson tail < 0.001); the explanation names the channel, group or tag "
                          f"that grew most. Series checked: {', '.join(definitions)}.")
    return section


def _forecast(reader: Reader, span: Span) -> Section:
    history = span.back_to(max(HISTORY_MONTHS, span.months))
    result = reader.kpi("ticket_volume", history, period="month", forecast=1)
    rows = [{"period": r["period"], "value": r["value"], "forecast": bool(r.get("forecast")),
             **{k: r.get(k) for k in ("lo80", "hi80", "lo95", "hi95")}} for r in result.rows]
    ahead = next((r for r in rows if r["forecast"]), None)
    following = span.shifted(span.months)
    return Section(
        "Forecast for next month",
        "Tickets created per month; the forecast is the metrics core's daily model (Holt-Winters when it beats the "
        "seasonal naive forecast in a rolling backtest) summed over the month, with 80% and 95% intervals.",
        f"history {history.describe()}; forecast {following.describe()}", rows, notes=list(result.notes),
        extra={"next": ahead, "next_period": following.label},
    )


def _conversion(reader: Reader, figures: dict[str, Figure], span: Span) -> Section | None:
    fig = figures.get("converted_tickets")
    if fig is None or not reader.has_rows("orders"):
        return None
    return Section("Converted tickets and revenue", fig.definition, span.describe(), figures=[fig], notes=list(fig.notes),
                   extra={"revenue": fig.row.get("revenue") or {}})


def team_report(store: Store, settings: MetricsSettings | None = None, *, month: str | None = None,
                hours: str = "calendar", now: int | None = None) -> TeamReport:
    """The team report of `month` ("2026-10"; default: the last complete month with data)."""
    settings = settings or MetricsSettings()
    span, notes = month_span(store, settings, month, now=now)
    notes += coverage_notes(store, settings, [span.shifted(-12), span.shifted(-1), span])
    reader = Reader(store, settings, now)
    figures, missing = [], []
    orders = reader.has_rows("orders")
    for kpi_id, kpi in all_kpis().items():
        if kpi_id in OWN_SECTION:
            continue
        if kpi_id == "converted_tickets" and not orders:  # nothing to match tickets with: say so, skip the work
            missing.append(Figure(kpi_id, name_of(kpi_id), kpi.unit, kpi.definition, kpi.better, span.describe(), None,
                                  {}, notes=[need.message for need in kpi.needs]))
            continue
        fig = figure(reader, kpi_id, span, hours)
        empty = fig.value is None and all(c is None or c.value is None for c in (fig.previous, fig.year))
        (missing if empty else figures).append(fig)
    by_id = {f.kpi: f for f in figures}
    available = set(by_id)
    report = TeamReport(
        span=span, previous=span.shifted(-1), year=span.shifted(-12),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), hours=hours,
        figures=figures, missing=missing,
        channels=_channels(reader, span, by_id),
        csat=_csat(reader, span),
        top_agents=_top_agents(reader, span, hours),
        sla=_sla(reader, span, by_id),
        spikes=_spikes(reader, span, available),
        forecast=_forecast(reader, span),
        conversion=_conversion(reader, by_id, span),
        notes=[],
    )
    report.notes = list(dict.fromkeys(notes + [n for n in reader.notes if not n.startswith("facts rebuilt")]))
    return report

