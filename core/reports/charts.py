"""Report charts: Vega-Lite specs rendered to static SVG by vl-convert, offline and server-side.

Vega-Lite (https://vega.github.io/vega-lite/) is a well-kept declarative charting library;
`vl_convert.vegalite_to_svg` runs its own bundled copy of it (no browser, CDN or network), so
the HTML report holds plain inline SVG: no script runs when it is viewed, it prints crisply and
scales to a phone's width through its viewBox. The first chart of a process pays ~1 s to start
the engine; each further chart takes well under 0.1 s.

Every chart states its unit on the axis; the report puts the definition and period beside it.
"""

from __future__ import annotations

import re
from datetime import date
from html import escape
from typing import Any

WIDTH, HEIGHT = 560, 220
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
COLORS = {"current": "#1f5f99", "previous": "#9bb7d4", "satisfied": "#2e7d32", "neutral": "#b0b0b0",
          "unsatisfied": "#c62828", "spike": "#c62828", "band80": "#1f5f99", "trend": "#e08214"}
CONFIG = {
    "font": FONT,
    "background": "white",
    "view": {"stroke": None},
    "axis": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal", "gridColor": "#e6e6e6"},
    "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "direction": "horizontal"},
    "title": {"fontSize": 14, "anchor": "start"},
}
#: Axis scale per KPI unit: durations in hours, fractions in percent.
SCALE = {"seconds": (1 / 3600, "hours"), "fraction": (100.0, "%")}


def scale(unit: str) -> tuple[float, str]:
    return SCALE.get(unit, (1.0, unit))


def month_label(period: str) -> str:
    """"2026-10-01" → "Oct 2026"."""
    try:
        return date.fromisoformat(period[:10]).strftime("%b %Y")
    except ValueError:
        return period


def _scaled(value: Any, factor: float) -> float | None:
    return None if value is None else round(float(value) * factor, 4)


def render(spec: dict[str, Any], description: str) -> str:
    """SVG text of a Vega-Lite spec, labelled for screen readers."""
    import vl_convert  # imported on first chart: the engine is only needed when HTML is rendered

    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "config": CONFIG, **spec}
    svg = vl_convert.vegalite_to_svg(spec)
    svg = re.sub(r"^<svg ", f'<svg role="img" aria-label="{escape(description)}" ', svg, count=1)
    return svg


def _x(field: str = "month", title: str | None = None) -> dict[str, Any]:
    return {"field": field, "type": "ordinal", "sort": None, "title": title, "axis": {"labelAngle": -40}}


def channel_bars(rows: list[dict[str, Any]], current: str, previous: str) -> str:
    """Tickets per channel, this period next to the previous one."""
    data = []
    for r in rows:
        data.append({"channel": r["channel"], "period": current, "tickets": r["value"] or 0})
        data.append({"channel": r["channel"], "period": previous, "tickets": r.get("previous") or 0})
    spec = {
        "width": WIDTH, "height": HEIGHT, "data": {"values": data},
        "mark": {"type": "bar", "tooltip": False},
        "encoding": {
            "x": {"field": "channel", "type": "nominal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
            "xOffset": {"field": "period", "sort": [current, previous]},
            "y": {"field": "tickets", "type": "quantitative", "title": "tickets created"},
            "color": {"field": "period", "type": "nominal", "sort": [current, previous], "title": None,
                      "scale": {"range": [COLORS["current"], COLORS["previous"]]}},
        },
    }
    return render(spec, f"Tickets created per channel, {current} compared with {previous}")


def csat_stacked(rows: list[dict[str, Any]]) -> str:
    """Satisfied / neutral / unsatisfied ratings per month (bars) and CSAT % (line)."""
    counts, rates = [], []
    for r in rows:
        month = month_label(r["period"])
        for mood in ("satisfied", "neutral", "unsatisfied"):
            counts.append({"month": month, "rating": mood, "ratings": r.get(mood) or 0})
        rates.append({"month": month, "csat": _scaled(r.get("value"), 100)})
    spec = {
        "width": WIDTH, "height": HEIGHT,
        "layer": [
            {"data": {"values": counts}, "mark": {"type": "bar", "opacity": 0.85},
             "encoding": {"x": _x(), "y": {"field": "ratings", "type": "quantitative", "stack": True, "title": "ratings"},
                          "color": {"field": "rating", "type": "nominal", "title": None,
                                    "sort": ["satisfied", "neutral", "unsatisfied"],
                                    "scale": {"domain": ["satisfied", "neutral", "unsatisfied"],
                                              "range": [COLORS["satisfied"], COLORS["neutral"], COLORS["unsatisfied"]]}},
                          "order": {"field": "rating", "sort": "descending"}}},
            {"data": {"values": rates}, "mark": {"type": "line", "point": True, "color": "#222", "strokeWidth": 2},
             "encoding": {"x": _x(), "y": {"field": "csat", "type": "quantitative", "title": "CSAT %",
                                           "scale": {"domain": [0, 100]}}}},
        ],
        "resolve": {"scale": {"y": "independent"}},
    }
    return render(spec, "Satisfied, neutral and unsatisfied ratings per month with the CSAT percentage")


def daily_spikes(daily: list[dict[str, Any]]) -> str:
    """Tickets created per day; spike days in red, the spike baseline as a line."""
    data = [{"day": d["period"][5:10], "tickets": d["value"] or 0, "kind": "spike" if d["spike"] else "normal day",
             "baseline": d.get("baseline")} for d in daily]
    spec = {
        "width": WIDTH, "height": HEIGHT, "data": {"values": data},
        "layer": [
            {"mark": "bar", "encoding": {
                "x": {"field": "day", "type": "ordinal", "sort": None, "title": None, "axis": {"labelAngle": -60}},
                "y": {"field": "tickets", "type": "quantitative", "title": "tickets created"},
                "color": {"field": "kind", "type": "nominal", "title": None, "sort": ["normal day", "spike"],
                          "scale": {"domain": ["normal day", "spike"], "range": [COLORS["previous"], COLORS["spike"]]}}}},
            {"mark": {"type": "line", "color": "#444", "strokeDash": [4, 3], "strokeWidth": 1.5},
             "transform": [{"filter": "datum.baseline != null"}],
             "encoding": {"x": {"field": "day", "type": "ordinal", "sort": None},
                          "y": {"field": "baseline", "type": "quantitative"}}},
        ],
    }
    return render(spec, "Tickets created per day with spike days highlighted and the expected baseline dashed")


def line_with_forecast(points: list[dict[str, Any]], forecast: list[dict[str, Any]], unit: str, title: str,
                       fitted: list[float] | None = None) -> str:
    """Monthly values (line), optional trend (dashed) and forecast with 80%/95% bands fanning out
    from the last actual month."""
    factor, axis = scale(unit)
    actual = [{"month": month_label(p["period"]), "value": _scaled(p.get("value"), factor), "series": "actual"}
              for p in points]
    layers: list[dict[str, Any]] = []
    order = [a["month"] for a in actual] + [month_label(f["period"]) for f in forecast]
    x = {"field": "month", "type": "ordinal", "sort": order, "title": None, "axis": {"labelAngle": -40}}
    if forecast:
        last = next((a for a in reversed(actual) if a["value"] is not None), None)
        band = [{"month": last["month"], "lo80": last["value"], "hi80": last["value"], "lo95": last["value"],
                 "hi95": last["value"], "value": last["value"]}] if last else []
        band += [{"month": month_label(f["period"]), "value": _scaled(f["value"], factor),
                  **{k: _scaled(f.get(k), factor) for k in ("lo80", "hi80", "lo95", "hi95")}} for f in forecast]
        layers += [
            {"data": {"values": band}, "mark": {"type": "area", "opacity": 0.15, "color": COLORS["band80"]},
             "encoding": {"x": x, "y": {"field": "lo95", "type": "quantitative"}, "y2": {"field": "hi95"}}},
            {"data": {"values": band}, "mark": {"type": "area", "opacity": 0.3, "color": COLORS["band80"]},
             "encoding": {"x": x, "y": {"field": "lo80", "type": "quantitative"}, "y2": {"field": "hi80"}}},
            {"data": {"values": band}, "mark": {"type": "line", "point": True, "strokeDash": [2, 2],
                                                "color": COLORS["current"]},
             "encoding": {"x": x, "y": {"field": "value", "type": "quantitative"}}},
        ]
    if fitted:
        trend = [{"month": a["month"], "trend": round(v * factor, 4)} for a, v in zip(actual, fitted)]
        layers.append({"data": {"values": trend}, "mark": {"type": "line", "strokeDash": [6, 4], "strokeWidth": 1.5,
                                                            "color": COLORS["trend"]},
                       "encoding": {"x": x, "y": {"field": "trend", "type": "quantitative"}}})
    layers.append({"data": {"values": [a for a in actual if a["value"] is not None]},
                   "mark": {"type": "line", "point": True, "strokeWidth": 2.5, "color": COLORS["current"]},
                   "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": axis}}})
    parts = ["monthly values"] + (["trend line dashed"] if fitted else []) + (
        ["forecast with 80% and 95% bands"] if forecast else [])
    return render({"width": WIDTH, "height": HEIGHT, "layer": layers}, f"{title}: {', '.join(parts)}")


def group_lines(months: list[str], groups: list[dict[str, Any]], unit: str, title: str) -> str:
    """One line per group over the months."""
    factor, axis = scale(unit)
    data = [{"month": month_label(m), "group": g["group"], "value": _scaled(v, factor)}
            for g in groups for m, v in zip(months, g["values"]) if v is not None]
    spec = {
        "width": WIDTH, "height": HEIGHT, "data": {"values": data},
        "mark": {"type": "line", "point": True},
        "encoding": {"x": {**_x(), "sort": [month_label(m) for m in months]},
                     "y": {"field": "value", "type": "quantitative", "title": axis},
                     "color": {"field": "group", "type": "nominal", "title": None,
                               "sort": [g["group"] for g in groups]}},
    }
    return render(spec, f"{title} per month, one line per group")


def bars(groups: list[dict[str, Any]], unit: str, title: str) -> str:
    """Horizontal bars of each group's value over the whole period."""
    factor, axis = scale(unit)
    data = [{"group": g["group"], "value": _scaled(g["overall"], factor)} for g in groups if g["overall"] is not None]
    spec = {
        "width": WIDTH, "height": max(60, 26 * len(data)), "data": {"values": data},
        "mark": {"type": "bar", "color": COLORS["current"]},
        "encoding": {"y": {"field": "group", "type": "nominal", "sort": None, "title": None},
                     "x": {"field": "value", "type": "quantitative", "title": axis}},
    }
    return render(spec, f"{title} per segment over the whole period")
