"""Point-in-time KPIs (backlog, overdue) in buckets after "now": no value, never today's again.

Hand-built store, fixed clock Thu 2026-01-08 10:00 UTC. Three tickets:
T1 created Mon 01-05 09:00, solved Thu 01-08 09:00 (resolution due 01-06 09:00);
T2 created Tue 01-06 12:00, still open (due 01-07 12:00);
T3 created Thu 01-08 09:30, solved Thu 01-08 15:00 — after now, so open when measured at now.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.cli.kpi import show
from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import MetricsSettings, parse_targets
from kpisync.core.store import Store

NOW = epoch("2026-01-08 10:00")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("future") / "s.db")
    w = World(s)
    w.agent("a1", "Ann")
    w.ticket("1", "2026-01-05 09:00", "solved", assignee="a1", resolution_due_at=t("2026-01-06 09:00"))
    w.msg("1", "2026-01-05 09:00", "customer")
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-08 09:00", "solved"))
    w.ticket("2", "2026-01-06 12:00", "open", assignee="a1", resolution_due_at=t("2026-01-07 12:00"))
    w.msg("2", "2026-01-06 12:00", "customer")
    w.lifecycle("2", ("2026-01-06 12:00", "new"))
    w.ticket("3", "2026-01-08 09:30", "solved", assignee="a1")
    w.msg("3", "2026-01-08 09:30", "customer")
    w.lifecycle("3", ("2026-01-08 09:30", "new"), ("2026-01-08 15:00", "solved"))
    w.commit()
    yield s
    s.close()


def rows(store: Store, kpi: str, **options: object) -> list[dict]:
    return evaluate(store, kpi, now=NOW, **options).rows  # type: ignore[arg-type]


def test_days_after_now_have_no_backlog(store: Store) -> None:
    result = evaluate(store, "backlog", since="2026-01-05", until="2026-01-11", period="day", now=NOW)
    # 01-05: T1. 01-06: T1, T2. 01-07: T1, T2. 01-08 at now (10:00): T2, T3 — T1 was solved at 09:00,
    # and T3 counts because it is solved only at 15:00. 01-09 and 01-10 have not begun: unknown.
    assert [r["value"] for r in result.rows] == [1, 2, 2, 2, None, None]
    assert any("2 periods after now (2026-01-08T10:00:00+00:00) have no backlog" in n for n in result.notes)


def test_the_bucket_containing_now_is_measured_at_now_not_at_its_end(store: Store) -> None:
    # at the end of 01-08 only T2 would be open (T3 solved at 15:00); at now it is T2 and T3
    assert [r["value"] for r in rows(store, "backlog", since="2026-01-08", until="2026-01-09", period="day")] == [2]
    # a week containing now: measured at now too, the next week is unknown
    weeks = rows(store, "backlog", since="2026-01-05", until="2026-01-19", period="week")
    assert [(r["period"], r["value"]) for r in weeks] == [("2026-01-05", 2), ("2026-01-12", None)]


def test_hours_after_now_have_no_backlog(store: Store) -> None:
    hours = rows(store, "backlog", since="2026-01-08T08:00:00+00:00", until="2026-01-08T13:00:00+00:00", period="hour")
    # 08:xx ends with T1 and T2 open; 09:xx: T2, T3 (T1 solved 09:00); 10:xx contains now: T2, T3
    assert [r["value"] for r in hours] == [2, 2, 2, None, None]


def test_overdue_after_now_is_unknown_too(store: Store) -> None:
    got = rows(store, "overdue", since="2026-01-06", until="2026-01-10", period="day")
    # 01-06: T1 (due 01-06 09:00). 01-07: T1, T2. 01-08 at now: T2 (T1 solved 09:00). 01-09: unknown.
    assert [(r["value"], r["first_reply_overdue"]) for r in got] == [(1, 0), (2, 0), (1, 0), (None, None)]


def test_future_buckets_are_null_for_every_group_and_carry_no_target_verdict(store: Store) -> None:
    settings = MetricsSettings(targets=parse_targets({"backlog": {"max": 1}}))
    got = rows(store, "backlog", since="2026-01-08", until="2026-01-10", period="day", by="agent", settings=settings)
    assert [(r["period"], r["group"], r["value"]) for r in got] == [("2026-01-08", "Ann", 2), ("2026-01-09", "Ann", None)]
    assert got[0]["target"]["met"] is False and got[1]["target"]["met"] is None


def test_a_window_entirely_after_now(store: Store) -> None:
    result = evaluate(store, "backlog", since="2026-01-12", until="2026-01-14", period="day", now=NOW)
    assert [r["value"] for r in result.rows] == [None, None]
    assert evaluate(store, "backlog", since="2026-01-12", until="2026-01-14", now=NOW, tickets=True).rows == []


def test_event_counts_are_not_affected(store: Store) -> None:
    # ticket_volume counts events: a day without tickets is 0, whether past or future
    assert [r["value"] for r in rows(store, "ticket_volume", since="2026-01-07", until="2026-01-10", period="day")] == [0, 1, 0]


def test_compare_keeps_the_previous_value_and_has_no_change(store: Store) -> None:
    got = rows(store, "backlog", since="2026-01-08", until="2026-01-10", period="day", compare="previous")
    # previous window 01-06..01-07: 2 and 2
    assert [(r["value"], r["previous"], r["change"]) for r in got] == [(2, 2, 0), (None, 2, None)]


def test_json_says_null_and_the_table_a_dash(store: Store) -> None:
    result = evaluate(store, "backlog", since="2026-01-08", until="2026-01-10", period="day", now=NOW)
    assert json.loads(json.dumps(result.to_dict()))["rows"][1]["value"] is None
    console = Console(record=True, width=120)
    show(result, console)
    lines = console.export_text().splitlines()
    assert any(line.split()[:2] == ["2026-01-09", "—"] for line in lines)
    assert any("1 period after now" in line and "has no backlog" in line for line in lines)
