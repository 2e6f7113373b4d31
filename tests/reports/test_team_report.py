"""The team report's numbers are the metrics API's, on a hand-built store, and render cleanly."""

from __future__ import annotations

import json
import re
from typing import Any

from report_store import NOW, SETTINGS

from kpisync.core import metrics
from kpisync.core.metrics.registry import all_kpis
from kpisync.core.reports import TeamReport, render
from kpisync.core.store import Store

HAS_CONVERSION = "converted_tickets" in all_kpis()  # registered only with the orders module installed
OCT = {"since": "2026-10-01", "until": "2026-11-01", "now": NOW, "settings": SETTINGS}


def api(store: Store, kpi: str, **options: Any) -> list[dict[str, Any]]:
    return metrics.kpi(store, kpi, **{**OCT, **options}).rows


def test_every_figure_is_the_metrics_api_row_vs_previous_month_and_last_year(store: Store, team: TeamReport) -> None:
    assert len(team.figures) >= 20
    for fig in team.figures:
        if fig.kpi == "converted_tickets":  # no --compare: the report evaluates the other months itself
            now = api(store, fig.kpi)[0]
            before = api(store, fig.kpi, since="2026-09-01", until="2026-10-01")[0]
            assert (fig.value, fig.previous.value) == (now["value"], before["value"])
            continue
        [prev] = [r for r in api(store, fig.kpi, compare="previous") if not r.get("forecast")]
        [year] = api(store, fig.kpi, compare="year")
        assert fig.value == prev["value"], fig.kpi
        assert (fig.previous.value, fig.previous.change, fig.previous.change_pct) == (
            prev["previous"], prev["change"], prev["change_pct"]), fig.kpi
        assert (fig.year.value, fig.year.change, fig.year.change_pct) == (year["previous"], year["change"], year["change_pct"])
        assert fig.definition == metrics.kpi(store, fig.kpi, **OCT).definition
        assert fig.period == "October 2026 (2026-10-01 – 2026-10-31, UTC)"


def test_hand_checked_figures(team: TeamReport) -> None:
    fig = {f.kpi: f for f in team.figures}
    # first replies in October: Ann 3 × 30 min, Bob 2 × 2 h, Cem 2 × 5 h, Dora 1 × 9 h; September took twice as long
    frt = fig["first_response_time"]
    assert frt.value == (3 * 1800 + 2 * 7200 + 2 * 18000 + 32400) / 8 == 11025
    assert (frt.previous.value, frt.previous.change, frt.previous.change_pct) == (22050, -11025, -0.5)
    assert fig["ticket_volume"].value == 8 + 31 + 12  # agents' tickets, one web ticket a day, the social spike
    assert (fig["csat"].value, fig["csat"].previous.value) == (0.75, 0.5)
    assert (fig["mentions"].value, fig["mentions"].previous.value) == (5, 1)
    assert fig["social_tickets"].value == 12
    assert (fig["sla_compliance"].row["numerator"], fig["sla_compliance"].row["count"]) == (3, 5)  # Bob's 2 are late
    assert {f.kpi for f in team.missing} == {"handle_time", "nps", "cost_per_contact"}


def test_channels_csat_and_top_agents_are_api_rows(store: Store, team: TeamReport) -> None:
    channels = {r["group"]: (r["value"], r["previous"], r["change"]) for r in api(store, "ticket_volume", by="channel",
                                                                                    compare="previous")}
    assert {r["channel"]: (r["value"], r["previous"], r["change"]) for r in team.channels.rows} == channels
    assert channels["social"][0] == 12 and [r["channel"] for r in team.channels.rows][0] == "web"  # largest first
    assert {f.kpi for f in team.channels.figures} == {"social_tickets", "mentions"}

    months = api(store, "csat", since="2026-05-01", period="month")
    assert [(r["period"], r["value"], r["satisfied"], r["unsatisfied"]) for r in team.csat.rows] == [
        (r["period"], r["value"], r["satisfied"], r["unsatisfied"]) for r in months]
    assert team.csat.rows[-1]["satisfied"] == 3 and team.csat.rows[-1]["unsatisfied"] == 1
    assert [c["comment"] for c in team.csat.extra["comments"]][0] == "Bob took days to answer"  # least satisfied first

    top = api(store, "top_agents")
    assert [(a["group"], a["value"], a["rank"]) for a in team.top_agents.rows] == [
        (a["group"], a["value"], a["rank"]) for a in top[:5]]


def test_sla_breaches_spikes_forecast_and_conversion(store: Store, team: TeamReport) -> None:
    assert team.sla.extra["resolution_breaches"] == 2 and team.sla.extra["resolutions_with_due"] == 5
    by_group = {r["group"]: r["value"] for r in api(store, "sla_compliance", by="group") if r.get("count")}
    assert {r["group"]: r["value"] for r in team.sla.rows if r["count"]} == by_group
    assert {t["ticket_id"] for t in team.sla.extra["worst"]} == {"bob-1", "bob-2"}

    spikes = [r for r in team.spikes.rows if r["kpi"] == "ticket_volume"]
    assert [s["period"] for s in spikes] == ["2026-10-20"]
    assert spikes[0]["explain"][0]["group"] == "social"
    api_spikes = [r for r in api(store, "ticket_volume", period="day", spikes=True) if r.get("spike")]
    assert [(r["period"], r["value"], r["baseline"]) for r in api_spikes] == [
        (s["period"], s["value"], s["baseline"]) for s in spikes]

    ahead = team.forecast.extra["next"]
    [expected] = [r for r in api(store, "ticket_volume", since="2026-05-01", period="month", forecast=1) if r.get("forecast")]
    assert (ahead["period"], ahead["value"], ahead["lo80"], ahead["hi95"]) == (
        expected["period"], expected["value"], expected["lo80"], expected["hi95"])
    assert ahead["period"] == "2026-11-01" and team.forecast.extra["next_period"] == "November 2026"

    if not HAS_CONVERSION:
        assert team.conversion is None
        return
    assert team.conversion is not None
    [conv] = team.conversion.figures
    assert (conv.row["converted"], conv.row["orders"], team.conversion.extra["revenue"]) == (1, 1, {"EUR": "49.90"})


def _table_rows(markdown: str) -> list[list[str]]:
    """Markdown tables as cell lists (escaped pipes are not separators)."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_is_clean_and_states_definitions_and_periods(team: TeamReport) -> None:
    md = render(team, "md")
    tables = _table_rows(md)
    assert len(tables) >= 6
    for table in tables:
        assert all(len(row) == len(table[0]) for row in table), table[0]  # no row breaks its table
        assert re.fullmatch(r"(-+:?\|?)+", "|".join(table[1]).replace(" ", "").replace("---:", "---"))
    assert "| First response time | 3h 4m | ▼ −3h 4m (−50.0%) (better) — was 6h 8m |" in md
    assert "R&D &lt;Team&gt;" in md and "<Team>" not in md  # a group name cannot inject markup
    assert md.count("October 2026 (2026-10-01 – 2026-10-31, UTC)") >= 6  # every section states its period
    assert "- **First response time** (`first_response_time`, seconds): Time from ticket creation" in md
    assert "2026-10-20" in md and ("49.90 EUR" in md or team.conversion is None)


def test_html_is_one_self_contained_file_with_charts(team: TeamReport) -> None:
    html = render(team, "html")
    assert html.startswith("<!DOCTYPE html>") and '<meta name="viewport"' in html
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"""\b(?:src|xlink:href)\s*=\s*["']?(?:https?:)?//""", html)  # nothing loads from a network
    assert html.count("<svg") == 4  # channels, CSAT, daily volume with spikes, forecast
    assert "R&amp;D &lt;Team&gt;" in html and "<Team>" not in html
    assert "@media print" in html and "@media (max-width: 600px)" in html


def test_json_has_the_same_numbers(team: TeamReport) -> None:
    data = json.loads(render(team, "json"))
    assert data["kind"] == "team" and data["span"]["first"] == "2026-10-01"
    frt = next(f for f in data["figures"] if f["kpi"] == "first_response_time")
    assert (frt["value"], frt["previous"]["value"], frt["year"]["period"]) == (11025, 22050, "October 2025")
