"""One self-contained HTML file per report: inline CSS, inline SVG charts, no script, no fetch.

It reads on a phone (fluid layout, charts scale through their viewBox, wide tables scroll and
drop secondary columns) and prints (A4 page rules, no breaks inside charts, cards or rows).
Agent reports carry no charts: they are also the e-mail body, and mail clients drop SVG.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from ..metrics.roles import DEFAULT
from . import charts
from .templating import context as base_context, environment


def _svg(svg: str | None) -> Markup | None:
    return Markup(svg) if svg else None  # vl-convert output: every text in it is XML-escaped by Vega


def team_charts(report: Any) -> dict[str, Markup | None]:
    r = report
    out: dict[str, Markup | None] = {"channels": None, "csat": None, "spikes": None, "forecast": None}
    if r.channels.rows:
        out["channels"] = _svg(charts.channel_bars(r.channels.rows, r.span.label, r.channels.extra["previous"]))
    if any(c.get("count") for c in r.csat.rows):
        out["csat"] = _svg(charts.csat_stacked(r.csat.rows))
    if r.spikes.extra.get("daily"):
        out["spikes"] = _svg(charts.daily_spikes(r.spikes.extra["daily"]))
    if r.forecast.extra.get("next"):
        history = [p for p in r.forecast.rows if not p["forecast"]]
        ahead = [p for p in r.forecast.rows if p["forecast"]]
        out["forecast"] = _svg(charts.line_with_forecast(history, ahead, "tickets", "Tickets created per month"))
    return out


def trends_charts(report: Any) -> dict[str, Any]:
    r = report
    series = {s.kpi: _svg(charts.line_with_forecast(s.points, s.forecast, s.unit, s.name,
                                                      s.trend["fitted"] if s.trend else None)) for s in r.series}
    groups = {b.kpi: _svg(charts.group_lines(b.months, b.groups, b.unit, b.name)) for b in r.groups if b.groups}
    segments = {b.kpi: _svg(charts.bars(b.groups, b.unit, b.name)) for b in r.segments
                if any(g["overall"] is not None for g in b.groups)}
    return {"series": series, "groups": groups, "segments": segments}


def html(report: Any) -> str:
    """The report as one HTML document."""
    context = base_context(report)
    if report.kind == "team":
        context["charts"] = team_charts(report)
        by_id = {f.kpi: f for f in report.figures}
        context["headline"] = [by_id[k] for k in DEFAULT if k in by_id]
    elif report.kind == "trends":
        context["charts"] = trends_charts(report)
    return environment(True).get_template(f"{report.kind}.html.j2").render(**context)
