"""Counting KPIs on a hand-built store: volume, handled, closed, backlog, overdue, social, mentions, macros, cost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import Costs, MetricsSettings
from kpisync.core.store import Store

NOW = epoch("2026-01-10 00:00")
DAYS = {"since": "2026-01-05", "until": "2026-01-08", "period": "day", "now": NOW}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("counts") / "s.db")
    w = World(s)
    w.agent("a1", "Ann", hourly_cost=20)
    w.agent("a2", "Bob", hourly_cost=30)
    w.group("g1", "Billing")
    w.group("g2", "Tech")
    # T1 email, a1/Billing, solved 01-06 10:00 (due 01-06 09:00: overdue for an hour).
    w.ticket("1", "2026-01-05 09:00", "solved", assignee="a1", group="g1", resolution_due_at=t("2026-01-06 09:00"))
    w.msg("1", "2026-01-05 09:00", "customer")
    w.msg("1", "2026-01-05 10:00", "agent", "a1")
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-06 10:00", "solved"))
    w.macro("1", "2026-01-05 10:00", "Refund")
    # T2 chat, a2/Tech, still open; resolution due 01-06 12:00, first reply due 01-06 06:00 (replied 01-07 09:00).
    w.ticket("2", "2026-01-05 23:30", "open", assignee="a2", group="g2", channel="chat",
             resolution_due_at=t("2026-01-06 12:00"), first_response_due_at=t("2026-01-06 06:00"))
    w.msg("2", "2026-01-05 23:30", "customer")
    w.msg("2", "2026-01-07 09:00", "agent", "a2")
    w.lifecycle("2", ("2026-01-05 23:30", "new"))
    # T3 social, a2: solved 01-06 09:00, reopened 01-07 10:00, solved again 01-07 11:00.
    w.ticket("3", "2026-01-06 08:00", "solved", assignee="a2", group="g2", channel="social", is_social=True)
    w.msg("3", "2026-01-06 08:00", "customer")
    w.msg("3", "2026-01-06 08:30", "agent", "a2")
    w.lifecycle("3", ("2026-01-06 08:00", "new"), ("2026-01-06 09:00", "solved"), ("2026-01-07 10:00", "open"),
                ("2026-01-07 11:00", "solved"))
    w.macro("3", "2026-01-06 08:30", "Refund", "a2")
    w.macro("3", "2026-01-06 08:30", "Greeting", "a2")
    # T4 agent-created (outbound), open.
    w.ticket("4", "2026-01-07 12:00", "open", assignee="a1", group="g1")
    w.msg("4", "2026-01-07 12:00", "agent", "a1")
    w.msg("4", "2026-01-07 12:30", "customer")
    w.msg("4", "2026-01-07 13:00", "agent", "a1")
    w.lifecycle("4", ("2026-01-07 12:00", "new"))
    # T5 spam: never counted.
    w.ticket("5", "2026-01-06 12:00", "open", is_spam=True)
    w.msg("5", "2026-01-06 12:00", "customer")
    w.commit()
    social = World(s, "mastodon")
    social.mention("m1", "2026-01-05 08:00", "mastodon")
    social.mention("m2", "2026-01-05 09:00", "bluesky")
    social.mention("m3", "2026-01-06 09:00", "mastodon", own=True)
    social.mention("m4", "2026-01-06 10:00", "mastodon", term="acme support")
    social.commit()
    again = World(s, "mastodon_backup")  # the same post seen by a second source counts once
    again.mention("m1", "2026-01-05 08:00", "mastodon")
    again.commit()
    yield s
    s.close()


def values(store: Store, kpi: str, field: str = "value", **options: object) -> list:
    return [r[field] for r in evaluate(store, kpi, **{**DAYS, **options}).rows]  # type: ignore[arg-type]


def test_ticket_volume_inbound_outbound_and_empty_days(store: Store) -> None:
    assert values(store, "ticket_volume") == [2, 1, 1]
    assert values(store, "ticket_volume", "outbound") == [0, 0, 1]
    assert values(store, "ticket_volume", until="2026-01-10") == [2, 1, 1, 0, 0]


def test_ticket_volume_buckets_in_the_reporting_time_zone(store: Store) -> None:
    berlin = MetricsSettings(timezone="Europe/Berlin")
    # T2 at 23:30 UTC is 00:30 on 01-06 in Berlin
    assert values(store, "ticket_volume", settings=berlin) == [1, 2, 1]


def test_ticket_volume_by_channel_fills_every_bucket(store: Store) -> None:
    got = [(r["period"], r["group"], r["value"]) for r in evaluate(store, "ticket_volume", by="channel", **DAYS).rows]
    assert got == [
        ("2026-01-05", "chat", 1), ("2026-01-05", "email", 1), ("2026-01-05", "social", 0),
        ("2026-01-06", "chat", 0), ("2026-01-06", "email", 0), ("2026-01-06", "social", 1),
        ("2026-01-07", "chat", 0), ("2026-01-07", "email", 1), ("2026-01-07", "social", 0),
    ]


def test_tickets_handled_and_closed(store: Store) -> None:
    assert values(store, "tickets_handled") == [1, 1, 2]
    assert values(store, "tickets_closed") == [0, 2, 1]
    handled = {r["group"]: r["value"] for r in evaluate(store, "tickets_handled", by="agent", since="2026-01-05",
                                                           until="2026-01-08", now=NOW).rows}
    assert handled == {"Ann": 2, "Bob": 2}
    closed = {r["group"]: r["value"] for r in evaluate(store, "tickets_closed", by="group", since="2026-01-05",
                                                          until="2026-01-08", now=NOW).rows}
    assert closed == {"Billing": 1, "Tech": 1}  # T3 twice in the window, once per ticket


def test_backlog_at_end_of_each_day(store: Store) -> None:
    assert values(store, "backlog") == [2, 1, 2]
    by_agent = {(r["period"], r["group"]): r["value"] for r in evaluate(store, "backlog", by="agent", **DAYS).rows}
    assert by_agent[("2026-01-05", "Ann")] == 1 and by_agent[("2026-01-07", "Bob")] == 1


def test_backlog_today_is_measured_now(store: Store) -> None:
    # at 10:30 on 01-07: T2 open, T3 reopened at 10:00, T4 not created yet
    assert values(store, "backlog", now=epoch("2026-01-07 10:30"))[-1] == 2


def test_overdue_resolution_and_first_reply(store: Store) -> None:
    assert values(store, "overdue") == [0, 1, 1]
    assert values(store, "overdue", "first_reply_overdue") == [0, 1, 0]
    drill = evaluate(store, "overdue", tickets=True, **DAYS).rows
    assert [(r["ticket_id"], r["value"]) for r in drill] == [("2", epoch("2026-01-07 23:59:59") - epoch("2026-01-06 12:00"))]


def test_social_tickets_and_share(store: Store) -> None:
    assert values(store, "social_tickets") == [0, 1, 0]
    assert values(store, "social_tickets", "share") == [0.0, 1.0, 0.0]


def test_mentions_distinct_posts_without_own_accounts(store: Store) -> None:
    assert values(store, "mentions") == [2, 1, 0]
    by_platform = {r["group"]: r["value"] for r in evaluate(store, "mentions", by="channel", since="2026-01-05",
                                                               until="2026-01-08", now=NOW).rows}
    assert by_platform == {"bluesky": 1, "mastodon": 2}


def test_macro_usage_per_macro_with_rate(store: Store) -> None:
    got = {r["group"]: (r["value"], r["tickets"], r["rate"])
           for r in evaluate(store, "macro_usage", since="2026-01-05", until="2026-01-08", now=NOW).rows}
    # 4 tickets had an agent reply in the window
    assert got == {"Greeting": (1, 1, 0.25), "Refund": (2, 2, 0.5)}


def test_cost_per_contact_prorates_a_monthly_cost(store: Store) -> None:
    settings = MetricsSettings(costs=Costs(per_month=3100, currency="EUR"))  # 100 a day in January
    rows = evaluate(store, "cost_per_contact", settings=settings, **DAYS).rows
    assert [(r["cost"], r["contacts"], r["value"]) for r in rows] == [(100.0, 2, 50.0), (100.0, 1, 100.0), (100.0, 0, None)]
    hourly = MetricsSettings(costs=Costs(agent_hours_per_week=35))  # (20 + 30) × 35 h / 7 days = 250 a day
    assert values(store, "cost_per_contact", "cost", settings=hourly) == [250.0, 250.0, 250.0]


def test_cost_per_contact_without_costs_says_so(store: Store) -> None:
    result = evaluate(store, "cost_per_contact", **DAYS)
    assert all(r["value"] is None for r in result.rows)
    assert any("no support cost configured" in n for n in result.notes)
