"""The trends report: monthly API rows, a least-squares trend, forecasts, groups and segments."""

from __future__ import annotations

import re
from typing import Any

import pytest
from report_store import NOW, SETTINGS

from kpisync.core import metrics
from kpisync.core.errors import KpisyncError
from kpisync.core.reports import TrendsReport, render, trends_report
from kpisync.core.reports.trends import trend_line
from kpisync.core.store import Store

SPAN = {"since": "2025-10-01", "until": "2026-11-01", "now": NOW, "settings": SETTINGS}


def api(store: Store, kpi: str, **options: Any) -> list[dict[str, Any]]:
    return metrics.kpi(store, kpi, **{**SPAN, **options}).rows


def test_trend_line_is_least_squares_per_month() -> None:
    line = trend_line([10, 12, None, 16])  # a gap is skipped, not read as zero
    assert (line["slope"], line["intercept"], line["direction"]) == (2.0, 10.0, "rising")
    assert line["fitted"] == [10.0, 12.0, 14.0, 16.0]
    assert trend_line([100, 101, 100, 101])["direction"] == "flat"  # +0.6 over the window: < 2% of the mean
    assert trend_line([5, None]) is None


def test_series_are_monthly_api_rows_with_forecasts(store: Store, trends: TrendsReport) -> None:
    assert trends.span.months == 13 and trends.span.label == "Oct 2025 – Oct 2026"
    series = {s.kpi: s for s in trends.series}
    assert {"ticket_volume", "first_response_time", "csat", "backlog", "mentions"} <= set(series)
    for kpi, s in series.items():
        rows = api(store, kpi, period="month", **({"forecast": 3} if s.forecast else {}))
        assert [(p["period"], p["value"]) for p in s.points] == [
            (r["period"], r["value"]) for r in rows if not r.get("forecast")], kpi
        assert [(f["period"], f["value"], f["lo80"], f["hi95"]) for f in s.forecast] == [
            (r["period"], r["value"], r["lo80"], r["hi95"]) for r in rows if r.get("forecast")], kpi
        assert len(s.points) == 13
    assert [f["period"] for f in series["ticket_volume"].forecast] == ["2026-11-01", "2026-12-01", "2027-01-01"]
    assert series["first_response_time"].forecast == []  # forecasts are for counts only
    volume = [p["value"] for p in series["ticket_volume"].points]
    assert volume[-1] == 51 and series["ticket_volume"].trend["direction"] == "rising"


def test_groups_and_segments_are_api_rows(store: Store, trends: TrendsReport) -> None:
    for breakdown in trends.groups + trends.segments:
        overall = {r["group"]: r["value"] for r in api(store, breakdown.kpi, by=breakdown.by)}
        assert {g["group"]: g["overall"] for g in breakdown.groups} == overall, (breakdown.kpi, breakdown.by)
        monthly = api(store, breakdown.kpi, by=breakdown.by, period="month")
        for g in breakdown.groups:
            expected = {r["period"]: r["value"] for r in monthly if r["group"] == g["group"]}
            assert dict(zip(breakdown.months, g["values"])) == {m: expected.get(m) for m in breakdown.months}
    assert [b.kpi for b in trends.segments] == ["first_response_time", "response_time"]
    frt = {g["group"]: g["overall"] for g in trends.segments[0].groups}
    assert frt["enterprise"] < frt["free"]  # Ann and Cem (BigCo, enterprise) answer faster than Bob and Dora
    assert trends.segment_spec == "organization.tier"


def test_renderings(trends: TrendsReport) -> None:
    md = render(trends, "md")
    assert "| Tickets created | 8 | 51 |" in md and "Oct 2025 – Oct 2026 (2025-10-01 – 2026-10-31, UTC)" in md
    assert re.search(r"\| Tickets created \|.*\| [▁▂▃▄▅▆▇█ ]{13} \|", md)  # a 13-month sparkline
    html = render(trends, "html")
    assert "<script" not in html and html.count("<svg") >= len(trends.series) + len(trends.groups)


def test_bad_options(store: Store) -> None:
    with pytest.raises(KpisyncError, match="at least 2"):
        trends_report(store, SETTINGS, months=1, now=NOW)
    with pytest.raises(KpisyncError, match="YEAR-MONTH"):
        trends_report(store, SETTINGS, month="October", now=NOW)
