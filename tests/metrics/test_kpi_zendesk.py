"""KPIs on a real Zendesk pull (simulator over HTTP) agree with the generated world's ground truth.

The oracle below reads the World directly — comments, status changes, ratings — and applies the
definitions of kpi-definitions §A by hand, independently of core/facts.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kpisync.connectors.zendesk import ZendeskConfig, ZendeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.metrics.engine import evaluate
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world
from kpisync.fixtures.zendesk_sim import ZendeskSimulator

SCALE = 2000.0
END = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)
START = END - timedelta(days=20)
RESOLVED = ("solved", "closed")


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Store]:
    world = generate_world(seed=11, start=START, end=END, tickets_per_day=10)
    clock = SimClock(world.now + timedelta(minutes=2), scale=SCALE)
    db = tmp_path_factory.mktemp("zd") / "s.db"
    with ZendeskSimulator(world, clock=clock, api_token="zd-secret-token-123") as sim:
        config = ZendeskConfig(subdomain="acme", email=sim.email, api_token=sim.api_token, base_url=sim.url)
        with Store(db) as store:
            run = sync_source(store, "zendesk", ZendeskConnector(config, Runtime(time_scale=SCALE)))
            assert run.status == "success", run.error
            assert store.count("changed_tickets") == 0  # the sync refreshed the facts
    store = Store(db)
    yield world, store
    store.close()


def counted(world: World) -> list:
    return [t for t in world.tickets if not (t.is_deleted or t.is_spam or t.merged_into_id is not None)]


def options() -> dict:
    return {"since": (START - timedelta(days=1)).isoformat(), "until": (END + timedelta(days=1)).isoformat(),
            "now": END.isoformat()}


def test_volume_matches_the_world(pulled: tuple[World, Store]) -> None:
    world, store = pulled
    [row] = evaluate(store, "ticket_volume", **options()).rows
    tickets = counted(world)
    assert (row["value"], row["outbound"]) == (len(tickets), sum(t.is_outbound for t in tickets))


def test_first_response_time_matches_the_world(pulled: tuple[World, Store]) -> None:
    world, store = pulled
    values = []
    unanswered = 0
    for t in counted(world):
        if t.is_outbound:
            continue
        replies = [c.created_at for c in t.comments if c.public and c.author_kind == "agent"]
        if replies:
            values.append((min(replies) - t.created_at).total_seconds())
        else:
            unanswered += 1
    [row] = evaluate(store, "first_response_time", **options()).rows
    assert row["count"] == len(values) and row["excluded"] == unanswered
    assert row["value"] == pytest.approx(sum(values) / len(values), abs=0.001)


def test_full_resolution_time_matches_the_world(pulled: tuple[World, Store]) -> None:
    world, store = pulled
    values = []
    for t in counted(world):
        if t.status not in RESOLVED:
            continue
        last, previous = None, None
        for u in t.updates:
            change = u.changes.get("status")
            if change:
                if change[1] in RESOLVED and previous not in RESOLVED:
                    last = u.at
                previous = change[1]
        values.append((last - t.created_at).total_seconds())
    [row] = evaluate(store, "resolution_time", **options()).rows
    assert row["count"] == len(values)
    assert row["value"] == pytest.approx(sum(values) / len(values), abs=0.001)


def test_csat_matches_the_world(pulled: tuple[World, Store]) -> None:
    world, store = pulled
    ids = {t.id for t in counted(world)}
    ratings = [r for r in world.ratings() if r.ticket_id in ids]
    [row] = evaluate(store, "csat", **options()).rows
    assert row["count"] == len(ratings)
    assert row["satisfied"] == sum(1 for r in ratings if r.score > 0)


def test_csat_response_rate_counts_the_surveys_offered_and_not_answered(pulled: tuple[World, Store]) -> None:
    """Zendesk lists a survey from the moment it is offered (score "offered"), so the response
    rate is answered ÷ offered: every rated ticket, plus the surveys that went out unanswered —
    solved email/web/API tickets the requester asked for, without a rating. (Rated phone, chat
    and social tickets count as offered too: they were answered.)"""
    world, store = pulled
    tickets = counted(world)
    answered = sum(1 for t in tickets if t.rating is not None)
    unanswered = sum(
        1 for t in tickets
        if t.rating is None and t.channel in ("email", "web", "api") and not t.is_outbound
        and any(u.changes.get("status", (None, None))[1] in RESOLVED for u in t.updates)
    )  # fmt: skip
    assert (answered, unanswered) == (47, 57)
    [row] = evaluate(store, "csat", **options()).rows
    assert (row["offered"], row["response_rate"]) == (answered + unanswered, pytest.approx(47 / 104, abs=1e-4))
    assert evaluate(store, "csat", **options()).notes == []  # no "lists only answered surveys"


def test_backlog_at_the_end_matches_the_world(pulled: tuple[World, Store]) -> None:
    world, store = pulled
    at = END - timedelta(days=2)
    day_end = at.replace(hour=23, minute=59, second=59)
    expected = sum(
        1 for t in counted(world)
        if t.created_at <= day_end and (world.status_at(t, day_end) or "new") not in RESOLVED
    )
    rows = evaluate(store, "backlog", period="day", since=(at - timedelta(days=1)).date().isoformat(),
                    until=(at + timedelta(days=1)).date().isoformat(), now=END.isoformat()).rows
    assert rows[-1]["value"] == expected
