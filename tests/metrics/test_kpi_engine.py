"""The KPI engine: JSON shape, periods in a time zone, comparison, targets, drill-down, notes,
grouping, spikes and forecasts, the top-agents composite and the Python API."""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.core import metrics
from kpisync.core.errors import KpisyncError
from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import MetricsSettings, load_settings
from kpisync.core.store import Store

NOW = epoch("2026-01-10 00:00")


def _frt_store(path: Path) -> Store:
    s = Store(path)
    w = World(s)
    w.agent("a1", "Ann")
    w.agent("a2", "Bob")
    w.org("o1", "Acme", tier="enterprise")
    w.org("o2", "Tiny", tier="free")
    for tid, created, reply, agent, org, channel, tags in (
        ("1", "2026-01-05 09:00", "2026-01-05 09:30", "a1", "o1", "email", ["vip"]),
        ("2", "2026-01-05 10:00", "2026-01-05 12:00", "a2", "o2", "chat", []),
        ("3", "2026-01-06 09:00", "2026-01-06 13:00", "a2", "o1", "email", ["vip", "billing"]),
        ("4", "2026-01-07 09:00", None, None, None, "email", []),
    ):
        w.ticket(tid, created, "open", assignee=agent, organization_id=org, channel=channel, tags=tags)
        w.msg(tid, created, "customer")
        if reply:
            w.msg(tid, reply, "agent", agent)
    w.commit()
    return s


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = _frt_store(tmp_path_factory.mktemp("engine") / "s.db")
    yield s
    s.close()


WINDOW = {"since": "2026-01-05", "until": "2026-01-08", "now": NOW}


def test_json_object_has_exactly_the_documented_keys(store: Store) -> None:
    result = evaluate(store, "first_response_time", period="day", **WINDOW).to_dict()
    assert list(result) == ["kpi", "unit", "definition", "params", "rows", "notes"]
    assert (result["kpi"], result["unit"]) == ("first_response_time", "seconds")
    assert result["params"]["since"] == "2026-01-05T00:00:00+00:00" and result["params"]["period"] == "day"
    assert [r["period"] for r in result["rows"]] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert {"period", "group", "value", "count", "median", "p90", "excluded"} <= set(result["rows"][0])


def test_python_api_returns_the_same_rows(store: Store) -> None:
    rows = metrics.first_response_time(store, period="day", by="agent", **WINDOW)
    assert rows == evaluate(store, "first_response_time", period="day", by="agent", **WINDOW).rows
    assert "first_response_time" in {k["kpi"] for k in metrics.list_kpis()}


def test_grouping_by_organization_segment_and_tag(store: Store) -> None:
    by_org = {r["group"]: r["value"] for r in evaluate(store, "first_response_time", by="organization", **WINDOW).rows}
    assert by_org == {"Acme": 8100.0, "Tiny": 7200.0, "no organization": None}  # Acme: 1800 and 14400
    tiers = {r["group"]: r["value"] for r in evaluate(store, "ticket_volume", by="segment", **WINDOW).rows}
    assert tiers == {"enterprise": 2, "free": 1, "unknown": 1}
    tags = {r["group"]: r["value"] for r in evaluate(store, "ticket_volume", by="tag", **WINDOW).rows}
    assert tags == {"billing": 1, "vip": 2}
    vip = MetricsSettings(segment="tag:vip,billing")
    by_tag_segment = {r["group"]: r["value"] for r in evaluate(store, "ticket_volume", by="segment", settings=vip, **WINDOW).rows}
    assert by_tag_segment == {"vip": 2, "unknown": 2}


def test_cohort_created_moves_durations_to_the_creation_period(store: Store) -> None:
    event = [r["count"] for r in evaluate(store, "first_response_time", period="day", **WINDOW).rows]
    created = [r["count"] for r in evaluate(store, "first_response_time", period="day", cohort="created", **WINDOW).rows]
    assert event == created == [2, 1, 0]  # same days here: every reply came the day the ticket was created
    late = evaluate(store, "first_response_time", period="day", cohort="created", since="2026-01-07", until="2026-01-08", now=NOW)
    assert late.rows[0]["excluded"] == 1


def test_targets_with_group_overrides(store: Store) -> None:
    settings = load_settings({"targets": {"first_response_time": {
        "median_max": "1h", "agent": {"Bob": {"median_max": "5h"}}}}})
    rows = {r["group"]: r["target"] for r in evaluate(store, "first_response_time", by="agent", settings=settings, **WINDOW).rows}
    assert rows["Ann"]["met"] is True and rows["Ann"]["checks"][0]["gap"] == 1800 - 3600
    assert rows["Bob"]["met"] is True  # median 3 h against his own 5 h target
    assert rows["unassigned"]["met"] is None  # no data is not a miss
    strict = load_settings({"targets": {"first_response_time": {"p90_max": "2h"}}})
    [row] = evaluate(store, "first_response_time", settings=strict, **WINDOW).rows
    assert row["target"]["met"] is False and row["target"]["checks"][0]["rule"] == "p90 ≤ 2h"


def test_drill_down_lists_tickets_worst_first_with_links(store: Store) -> None:
    rows = evaluate(store, "first_response_time", tickets=True, **WINDOW).rows
    assert [(r["ticket_id"], r["value"]) for r in rows] == [("3", 14400), ("2", 7200), ("1", 1800)]
    assert rows[0]["url"] == "https://acme.example/agent/tickets/3" and rows[0]["at"] == "2026-01-06T13:00:00+00:00"


def test_hour_buckets_across_a_dst_change(tmp_path: Path) -> None:
    with Store(tmp_path / "dst.db") as s:
        w = World(s)
        w.ticket("1", "2026-03-29 00:30", "open")  # 01:30 CET
        w.ticket("2", "2026-03-29 01:30", "open")  # 03:30 CEST
        w.commit()
        berlin = MetricsSettings(timezone="Europe/Berlin")
        rows = evaluate(s, "ticket_volume", period="hour", settings=berlin, since="2026-03-29", until="2026-03-30",
                        now=epoch("2026-04-01 00:00")).rows
    assert len(rows) == 23
    assert [(r["period"], r["value"]) for r in rows[1:4]] == [
        ("2026-03-29T01:00+01:00", 1), ("2026-03-29T03:00+02:00", 1), ("2026-03-29T04:00+02:00", 0)]


def test_compare_with_last_year(tmp_path: Path) -> None:
    with Store(tmp_path / "yoy.db") as s:
        w = World(s)
        for tid, day in (("1", "2025-01-06"), ("2", "2025-01-07"), ("3", "2026-01-06")):
            w.ticket(tid, f"{day} 10:00", "open")
        w.commit()
        [row] = evaluate(s, "ticket_volume", since="2026-01-01", until="2026-02-01", compare="year", now=NOW).rows
    assert (row["value"], row["previous"], row["change"], row["change_pct"]) == (1, 2, -1, -0.5)


def test_missing_data_is_said_not_zeroed(tmp_path: Path) -> None:
    with Store(tmp_path / "two.db") as s:
        zd = World(s, "zendesk")
        zd.ticket("1", "2026-01-05 09:00", "open")
        zd.time_entry("1", "2026-01-05 10:00", 300)
        zd.commit()
        hr = World(s, "helprace")
        hr.ticket("1", "2026-01-05 09:00", "open")
        hr.commit()
        result = evaluate(s, "handle_time", by="source", **WINDOW)
        assert {r["group"]: r["value"] for r in result.rows} == {"helprace": None, "zendesk": 300.0}
        assert "no time entries or calls synced for source helprace: handle time unavailable" in result.notes
        macros = evaluate(s, "macro_usage", by="source", **WINDOW)
        assert all(r["value"] is None for r in macros.rows)
        assert "no macro applications synced for source zendesk" in macros.notes


def test_the_window_ends_at_the_latest_data_when_it_is_old(store: Store) -> None:
    result = evaluate(store, "ticket_volume", now=epoch("2026-06-01 00:00"))
    assert result.params["until"] == "2026-01-08T00:00:00+00:00"
    assert any("latest data is from 2026-01-07" in n for n in result.notes)


def test_bad_options_are_one_line_errors(store: Store) -> None:
    with pytest.raises(KpisyncError, match="unknown KPI"):
        evaluate(store, "nope")
    with pytest.raises(KpisyncError, match="cannot be grouped by 'macro'"):
        evaluate(store, "first_response_time", by="macro")
    with pytest.raises(KpisyncError, match="--hours business applies to durations"):
        evaluate(store, "ticket_volume", hours="business")
    with pytest.raises(KpisyncError, match="--spikes/--forecast"):
        evaluate(store, "csat", spikes=True)


# -- spikes and forecasts ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """10 email tickets (Billing) a day from 11-01 to 12-31, and 30 more chats (Tech) on 12-31."""
    s = Store(tmp_path_factory.mktemp("spikes") / "s.db")
    w = World(s)
    w.group("g1", "Billing")
    w.group("g2", "Tech")
    start = t("2025-11-01 00:00")
    n = 0
    for day in range(61):
        for i in range(10):
            n += 1
            w.ticket(str(n), (start + timedelta(days=day, hours=8, minutes=i)).strftime("%Y-%m-%d %H:%M"), "open",
                     group="g1")
    for i in range(30):
        n += 1
        w.ticket(str(n), (start + timedelta(days=60, hours=12, minutes=i)).strftime("%Y-%m-%d %H:%M"), "open",
                 group="g2", channel="chat")
    w.commit()
    yield s
    s.close()


def test_spike_flagged_scored_and_explained(volume: Store) -> None:
    rows = evaluate(volume, "ticket_volume", period="day", spikes=True, since="2025-12-24", until="2026-01-01",
                    now=epoch("2026-01-01 00:00")).rows
    last = rows[-1]
    assert (last["period"], last["value"], last["spike"], last["baseline"]) == ("2025-12-31", 40, True, 10.0)
    assert last["spike_score"] == round(30 / 10 ** 0.5, 3)
    assert [(e["by"], e["group"], e["excess"]) for e in last["explain"][:2]] == [("channel", "chat", 30.0), ("group", "Tech", 30.0)]
    assert not any(r["spike"] for r in rows[:-1])


def test_periods_cut_short_by_the_window_are_marked_partial_and_not_scored(volume: Store) -> None:
    """A day cut at noon holds its morning's 10 tickets (they come at 08:00): marked partial, not
    scored against whole days; a window starting mid-day marks its first bucket too."""
    result = evaluate(volume, "ticket_volume", period="day", spikes=True, since="2025-12-29 06:00",
                      until="2025-12-31 12:00", now=epoch("2026-01-01 00:00"))
    assert [(r["period"], r["value"], r.get("partial", False)) for r in result.rows] == [
        ("2025-12-29", 10, True), ("2025-12-30", 10, False), ("2025-12-31", 10, True)]
    assert ["spike" in r for r in result.rows] == [False, True, False]
    assert any("2 period(s) cut short by the window (marked partial) not scored" in n for n in result.notes)
    whole = evaluate(volume, "ticket_volume", period="day", since="2025-12-29", until="2026-01-01",
                     now=epoch("2026-01-01 00:00"))
    assert not any("partial" in r for r in whole.rows)
    assert not any("partial" in r for r in evaluate(volume, "ticket_volume", since="2025-12-29 06:00",
                                                  until="2025-12-31 12:00", now=epoch("2026-01-01 00:00")).rows)


def test_forecast_of_a_flat_series_with_its_backtest(volume: Store) -> None:
    result = evaluate(volume, "ticket_volume", period="day", forecast=7, since="2025-12-20", until="2025-12-30",
                      now=epoch("2026-01-01 00:00"))
    future = [r for r in result.rows if r.get("forecast")]
    assert [r["period"] for r in future] == [f"2025-12-{d}" for d in range(30, 32)] + [f"2026-01-0{d}" for d in range(1, 6)]
    assert all(r["value"] == 10.0 and r["lo80"] <= 10.0 <= r["hi80"] for r in future)
    assert any("backtest" in n and "error ratio" in n for n in result.notes)


@pytest.fixture(scope="module")
def year_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """13 months + 1 (2024-12-01 .. 2026-01-31): "Steady" gets exactly 25 tickets each weekday and
    8 each weekend day; "Noisy" the same rates with seeded Gaussian noise (sd = √rate)."""
    s = Store(tmp_path_factory.mktemp("year") / "s.db")
    w = World(s)
    w.group("g1", "Steady")
    w.group("g2", "Noisy")
    rng = random.Random(4)
    day, n = t("2024-12-01 00:00"), 0
    while day < t("2026-02-01 00:00"):
        rate = 25 if day.weekday() < 5 else 8
        for group, count in (("g1", rate), ("g2", max(0, round(rng.gauss(rate, rate ** 0.5))))):
            for i in range(count):
                n += 1
                w.ticket(str(n), (day + timedelta(hours=8, minutes=10 * i)).strftime("%Y-%m-%d %H:%M"), "open",
                         group=group)
        day += timedelta(days=1)
    w.commit()
    yield s
    s.close()


@pytest.mark.parametrize("period", ["month", "quarter"])
def test_monthly_and_quarterly_forecasts_are_sums_of_the_daily_model(year_store: Store, period: str) -> None:
    """13 months of history up to 2026-01-01; January 2026 (22 weekdays, 9 weekend days) is known."""
    result = evaluate(year_store, "ticket_volume", period=period, by="group", forecast=1, since="2025-01-01",
                      until="2026-01-01", now=epoch("2026-02-01 00:00"))
    future = {r["group"]: r for r in result.rows if r.get("forecast")}
    assert {r["period"] for r in future.values()} == {"2026-01-01"}
    steady = future["Steady"]  # the weekly pattern is exact: the forecast is the true count, no spread
    january, february, march = 22 * 25 + 9 * 8, 20 * 25 + 8 * 8, 22 * 25 + 9 * 8  # 622, 564, 622
    truth = january if period == "month" else january + february + march
    assert steady["value"] == truth and steady["lo95"] == steady["hi95"] == truth
    noisy = future["Noisy"]
    actual = len(year_store.query("SELECT 1 FROM tickets WHERE group_id = 'g2' AND created_at >= '2026-01-01'"))
    if period == "month":
        assert abs(noisy["value"] - actual) <= 0.10 * actual
        assert noisy["lo95"] <= actual <= noisy["hi95"]
    assert noisy["lo95"] >= 0.8 * noisy["value"] and noisy["hi95"] <= 1.2 * noisy["value"]  # no runaway bands


# -- top agents --------------------------------------------------------------------------------
def test_top_agents_composite(tmp_path: Path) -> None:
    with Store(tmp_path / "top.db") as s:
        w = World(s)
        for uid in ("A", "B", "C"):
            w.agent(uid, f"Agent {uid}")
        spec = [  # ticket, agent, first reply after (s), resolution after (s), extra reply
            ("1", "A", 600, 3600, False), ("2", "A", 600, 3600, False), ("3", "A", 600, 3600, False),
            ("4", "B", 600, 7200, False), ("5", "B", 600, 7200, True), ("6", "C", 1200, 1800, False),
        ]
        base = epoch("2026-01-05 09:00")
        for tid, agent, reply, solve, extra in spec:
            w.ticket(tid, "2026-01-05 09:00", "solved", assignee=agent)
            w.msg(tid, "2026-01-05 09:00", "customer")
            w.msg(tid, f"2026-01-05 09:{reply // 60:02d}", "agent", agent)
            if extra:
                w.msg(tid, "2026-01-05 09:25", "customer")
                w.msg(tid, "2026-01-05 09:30", "agent", agent)
            end = base + solve
            w.lifecycle(tid, ("2026-01-05 09:00", "new"), (f"2026-01-05 {end // 3600 % 24:02d}:{end // 60 % 60:02d}", "solved"))
        w.rating("1", "good", responded="2026-01-05 12:00", agent="A")
        w.rating("4", "bad", responded="2026-01-05 12:00", agent="B")
        w.commit()
        settings = MetricsSettings(min_resolved=1)
        rows = evaluate(s, "top_agents", settings=settings, **WINDOW).rows
    assert [(r["group"], r["rank"], r["value"]) for r in rows] == [("Agent A", 1, 85.0), ("Agent B", 2, 30.0), ("Agent C", 3, 30.0)]
    assert rows[2]["csat"] is None and set(rows[2]["components"]) == {"resolved", "first_response_median", "resolution_median", "one_touch"}


def test_no_kpi_reads_a_whole_source_by_its_key_index(tmp_path: Path) -> None:
    """Every KPI aggregate starts from an event-time index, and every "does this source have
    such data" probe from an index of the rows that say yes. A filter on the source alone must
    not pull SQLite onto a (source, ...) key index instead: that reads every row of the source —
    per bucket for an aggregate (automated_resolution_rate took 3.6 s instead of 0.1 s at 1M
    tickets), and for a probe whenever the source lacks the data (1 s per call)."""
    from kpisync.core.metrics.registry import all_kpis

    store = _frt_store(tmp_path / "s.db")
    w = World(store)
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "solved"))  # a status history with `via`
    w.commit()
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        for kpi_id, kpi in all_kpis().items():
            options = {"period": "day"} if "period" in kpi.params else {}
            evaluate(store, kpi_id, **WINDOW, **options)
    finally:
        store.conn.set_trace_callback(None)
    key_scans = ("sqlite_autoindex_ticket_facts_1 (source=?)", "status_events_ticket (source=?)", "ratings_ticket (source=?)")
    whole_source: list[str] = []
    for sql in {s.strip() for s in statements if s.lstrip().startswith("SELECT")}:
        if sql.startswith("SELECT EXISTS") and sql.endswith("AND (1))"):
            continue  # any row of the source answers: the first one found ends the probe
        plan = " | ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        if any(scan in plan for scan in key_scans):
            whole_source.append(f"{sql[:160]} -> {plan}")
    store.close()
    assert whole_source == []
