"""Duration KPIs on a hand-built store; every expected number is worked out in the comments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch

from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import MetricsSettings, parse_schedule
from kpisync.core.store import Store

NOW = epoch("2026-01-10 00:00")
WINDOW = {"since": "2026-01-05", "until": "2026-01-08", "now": NOW}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("durations") / "s.db")
    w = World(s)
    w.agent("a1", "Ann")
    w.agent("a2", "Bob")
    # T1: FRT 1 h (a1); turn 2 answered in 30 min (a2); solved after 3 h.
    w.ticket("1", "2026-01-05 09:00", "solved", assignee="a1")
    w.msg("1", "2026-01-05 09:00", "customer")
    w.msg("1", "2026-01-05 10:00", "agent", "a1")
    w.msg("1", "2026-01-05 11:00", "customer")
    w.msg("1", "2026-01-05 11:30", "agent", "a2")
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "open"), ("2026-01-05 12:00", "solved"))
    # T2: never answered (FRT excluded, counted on its creation day).
    w.ticket("2", "2026-01-05 10:00", "open")
    w.msg("2", "2026-01-05 10:00", "customer")
    w.lifecycle("2", ("2026-01-05 10:00", "new"))
    # T3: FRT 20 min; solved, reopened, pending, solved again the next day.
    w.ticket("3", "2026-01-06 09:00", "solved", assignee="a1")
    w.msg("3", "2026-01-06 09:00", "customer")
    w.msg("3", "2026-01-06 09:20", "agent", "a1")
    w.msg("3", "2026-01-06 11:00", "customer")
    w.msg("3", "2026-01-06 12:00", "agent", "a1")
    w.lifecycle("3", ("2026-01-06 09:00", "new"), ("2026-01-06 10:00", "solved"), ("2026-01-06 11:00", "open"),
                ("2026-01-06 12:00", "pending"), ("2026-01-07 09:00", "solved"))
    # T4: agent-created (outbound): no FRT; the customer's answer is replied to in 1 h.
    w.ticket("4", "2026-01-06 09:00", "open", assignee="a2")
    w.msg("4", "2026-01-06 09:00", "agent", "a2")
    w.msg("4", "2026-01-06 10:00", "customer")
    w.msg("4", "2026-01-06 11:00", "agent", "a2")
    # T5 spam, T6 deleted: excluded from everything.
    w.ticket("5", "2026-01-05 09:00", "open", is_spam=True)
    w.msg("5", "2026-01-05 09:00", "customer")
    w.msg("5", "2026-01-05 09:01", "agent", "a1")
    w.ticket("6", "2026-01-06 12:00", "deleted", is_deleted=True)
    w.msg("6", "2026-01-06 12:00", "customer")
    w.msg("6", "2026-01-06 13:00", "agent", "a1")
    # Handle time: T1 600 s (a1) + 300 s (a2); T3 a call, talk 400 + hold 100 + wrap-up 50 (a1).
    w.time_entry("1", "2026-01-05 10:00", 600, "a1")
    w.time_entry("1", "2026-01-05 11:30", 300, "a2")
    w.call("3", "2026-01-06 09:10", talk=400, hold=100, wrap=50, agent="a1")
    w.commit()
    yield s
    s.close()


def rows(store: Store, kpi: str, **options: object) -> list[dict]:
    return evaluate(store, kpi, **{**WINDOW, **options}).rows  # type: ignore[arg-type]


def test_first_response_time_by_day_counts_unanswered_on_creation_day(store: Store) -> None:
    got = [(r["period"], r["value"], r["count"], r["excluded"]) for r in rows(store, "first_response_time", period="day")]
    assert got == [("2026-01-05", 3600.0, 1, 1), ("2026-01-06", 1200.0, 1, 0), ("2026-01-07", None, 0, 0)]


def test_first_response_time_mean_median_p90(store: Store) -> None:
    [row] = rows(store, "first_response_time")
    # values 3600 and 1200: mean = median = 2400; p90 = 1200 + 0.9 * 2400 = 3360 (linear interpolation)
    assert (row["value"], row["median"], row["p90"], row["count"], row["excluded"]) == (2400.0, 2400.0, 3360.0, 2, 1)


def test_zendesk_mode_measures_agent_created_tickets_to_the_second_reply(store: Store) -> None:
    [row] = rows(store, "first_response_time", settings=MetricsSettings(frt_outbound="zendesk"))
    # T4: created 09:00, 2nd public agent reply 11:00 → 7200; values 3600, 1200, 7200
    assert (row["value"], row["count"]) == (4000.0, 3)


def test_response_time_pairs_every_customer_turn(store: Store) -> None:
    got = [(r["period"], r["value"], r["count"], r["excluded"]) for r in rows(store, "response_time", period="day")]
    # 01-05: T1 3600, 1800 (T2's turn unanswered); 01-06: T3 1200, 3600 and T4 3600
    assert got == [("2026-01-05", 2700.0, 2, 1), ("2026-01-06", 2800.0, 3, 0), ("2026-01-07", None, 0, 0)]


def test_response_time_credits_the_replying_agent(store: Store) -> None:
    got = {r["group"]: (r["value"], r["count"], r["excluded"]) for r in rows(store, "response_time", by="agent")}
    assert got == {"Ann": (2800.0, 3, 0), "Bob": (2700.0, 2, 0), "unassigned": (None, 0, 1)}


def test_resolution_times_go_to_the_last_resolution_day(store: Store) -> None:
    full = [(r["period"], r["value"]) for r in rows(store, "resolution_time", period="day")]
    first = [(r["period"], r["value"]) for r in rows(store, "first_resolution_time", period="day")]
    assert full == [("2026-01-05", 10800.0), ("2026-01-06", None), ("2026-01-07", 86400.0)]
    assert first == [("2026-01-05", 10800.0), ("2026-01-06", None), ("2026-01-07", 3600.0)]


def test_wait_times_from_status_history(store: Store) -> None:
    requester = [r["value"] for r in rows(store, "requester_wait_time", period="day")]
    agent = [r["value"] for r in rows(store, "agent_wait_time", period="day")]
    # T1: new 1 h + open 2 h; T3: new 1 h + open 1 h, pending 21 h
    assert requester == [10800.0, None, 7200.0]
    assert agent == [0.0, None, 75600.0]


def test_handle_time_per_ticket_with_coverage(store: Store) -> None:
    got = [(r["value"], r["count"], r["total"], r["coverage"]) for r in rows(store, "handle_time", period="day")]
    # 01-05: T1 = 900 s, worked tickets {T1}; 01-06: T3 = 550 s, worked {T3, T4} → coverage 0.5
    assert got == [(900.0, 1, 900, 1.0), (550.0, 1, 550, 0.5), (None, 0, 0, None)]
    without_wrap = rows(store, "handle_time", settings=MetricsSettings(include_wrap_up=False))
    assert without_wrap[0]["total"] == 1400


def test_handle_time_by_agent(store: Store) -> None:
    got = {r["group"]: (r["value"], r["count"]) for r in rows(store, "handle_time", by="agent")}
    assert got == {"Ann": (575.0, 2), "Bob": (300.0, 1)}


def test_compare_previous_period(store: Store) -> None:
    [row] = rows(store, "first_response_time", since="2026-01-06", until="2026-01-07", compare="previous")
    assert (row["value"], row["previous"], row["change"], row["change_pct"]) == (1200.0, 3600.0, -2400.0, round(-2 / 3, 6))


# -- business hours ------------------------------------------------------------------------------
def _bh_store(path: Path) -> Store:
    s = Store(path)
    w = World(s)
    w.schedule("s1", "Europe/Berlin", [(d, 9 * 60, 17 * 60) for d in range(5)])
    # Weekend: Fri 16:00 → Mon 10:00 Berlin (CET, UTC+1)
    w.ticket("1", "2026-01-09 15:00", "open")
    w.msg("1", "2026-01-09 15:00", "customer")
    w.msg("1", "2026-01-12 09:00", "agent", "a1")
    # DST weekend: Fri 16:30 CET → Mon 09:30 CEST
    w.ticket("2", "2026-03-27 15:30", "open")
    w.msg("2", "2026-03-27 15:30", "customer")
    w.msg("2", "2026-03-30 07:30", "agent", "a1")
    w.commit()
    return s


def test_business_hours_skip_weekends_and_survive_dst(tmp_path: Path) -> None:
    with _bh_store(tmp_path / "bh.db") as s:
        opts = {"since": "2026-01-01", "until": "2026-04-01", "now": epoch("2026-04-01 00:00"), "period": "month"}
        calendar = {r["period"]: r["value"] for r in evaluate(s, "first_response_time", **opts).rows}
        business = {r["period"]: r["value"] for r in evaluate(s, "first_response_time", hours="business", **opts).rows}
    # T1: 66 h on the calendar; business 16-17 Fri + 9-10 Mon = 2 h.
    # T2: 64 h of real time (the wall clock says 65 h); business 16:30-17 + 9-9:30 = 1 h.
    assert calendar == {"2026-01-01": 237600.0, "2026-02-01": None, "2026-03-01": 230400.0}
    assert business == {"2026-01-01": 7200.0, "2026-02-01": None, "2026-03-01": 3600.0}


def test_business_hours_on_a_23_hour_day_and_holidays(tmp_path: Path) -> None:
    with Store(tmp_path / "dst.db") as s:
        w = World(s)
        w.ticket("1", "2026-03-28 11:00", "open")      # Sat 12:00 CET
        w.msg("1", "2026-03-28 11:00", "customer")
        w.msg("1", "2026-03-29 10:00", "agent", "a1")  # Sun 12:00 CEST
        w.commit()
        always = parse_schedule({"timezone": "Europe/Berlin", "hours": {"mon-sun": "00:00-24:00"}})
        opts = {"since": "2026-03-01", "until": "2026-04-01", "now": epoch("2026-04-01 00:00"), "hours": "business"}
        [row] = evaluate(s, "first_response_time", settings=MetricsSettings(business_hours=always), **opts).rows
        assert row["value"] == 82800.0  # a 24x7 schedule counts the 23 real hours
        holiday = parse_schedule({"timezone": "Europe/Berlin", "hours": {"mon-sun": "00:00-24:00"}, "holidays": ["2026-03-29"]})
        [row] = evaluate(s, "first_response_time", settings=MetricsSettings(business_hours=holiday), **opts).rows
        assert row["value"] == 12 * 3600.0  # Saturday 12:00-24:00 only


def test_business_hours_without_a_schedule_say_so(tmp_path: Path) -> None:
    with Store(tmp_path / "none.db") as s:
        w = World(s)
        w.ticket("1", "2026-01-05 09:00", "open")
        w.msg("1", "2026-01-05 09:00", "customer")
        w.msg("1", "2026-01-05 10:00", "agent", "a1")
        w.commit()
        assert evaluate(s, "first_response_time", **WINDOW).rows[0]["value"] == 3600.0
        result = evaluate(s, "first_response_time", hours="business", **WINDOW)
    assert result.rows[0]["value"] is None
    assert any("no business-hours schedule for source zd" in n for n in result.notes)
