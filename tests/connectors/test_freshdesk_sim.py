"""The Freshdesk simulator answers like the documented API (raw HTTP, no connector)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import requests

from kpisync.fixtures.freshdesk_sim import FreshdeskSim
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world

KEY = "sim-key"
START = datetime(2024, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=2, start=START, end=START + timedelta(days=60), tickets_per_day=8)


@pytest.fixture
def sim(world: World) -> Iterator[FreshdeskSim]:
    with FreshdeskSim(world, api_key=KEY, page_cap=3, clock=SimClock(world.now, scale=0)) as server:
        yield server
    assert server.errors == []


def get(sim: FreshdeskSim, path: str, key: str = KEY, **params: object) -> requests.Response:
    return requests.get(sim.url + path, params=params, auth=(key, "X"), timeout=10)


def test_basic_auth_with_the_key_as_user(sim: FreshdeskSim) -> None:
    assert get(sim, "/api/v2/agents/me").json()["contact"]["email"] == "ops@acme.test"
    denied = get(sim, "/api/v2/agents/me", key="nope")
    assert denied.status_code == 401 and denied.json()["code"] == "invalid_credentials"


def test_without_updated_since_only_the_last_30_days_newest_first(sim: FreshdeskSim, world: World) -> None:
    body = get(sim, "/api/v2/tickets", per_page=100).json()
    recent = [t for t in world.tickets if t.created_at >= world.now - timedelta(days=30) and not t.is_spam and not t.is_deleted]
    assert len(body) == min(100, len(recent))
    assert body[0]["id"] == max(recent, key=lambda t: (t.created_at, t.id)).id  # created_at desc by default


def test_page_cap_error_and_per_page_maximum(sim: FreshdeskSim) -> None:
    capped = get(sim, "/api/v2/tickets", updated_since="2000-01-01T00:00:00Z", per_page=10, page=4)
    assert capped.status_code == 400
    assert capped.json() == {"description": "Validation failed", "errors": [{
        "field": "page", "message": "You cannot access tickets beyond the 3th page. Please provide a smaller page number.",
        "code": "invalid_value"}]}  # fmt: skip
    too_big = get(sim, "/api/v2/tickets", per_page=101)
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["field"] == "per_page"


def test_link_header_until_the_last_page(sim: FreshdeskSim) -> None:
    first = get(sim, "/api/v2/contacts", per_page=50)
    assert first.links["next"]["url"].endswith("per_page=50&page=2")
    assert len(first.json()) == 50
    last = requests.get(first.links["next"]["url"], auth=(KEY, "X"), timeout=10)
    while "next" in last.links:
        last = requests.get(last.links["next"]["url"], auth=(KEY, "X"), timeout=10)
    assert "next" not in last.links and len(last.json()) <= 50


def test_spam_and_deleted_only_through_their_filters(sim: FreshdeskSim, world: World) -> None:
    since = "2000-01-01T00:00:00Z"
    listed = {t["id"] for t in get(sim, "/api/v2/tickets", updated_since=since, per_page=100, order_by="updated_at",
                                   order_type="asc").json()}  # fmt: skip
    spam = {t["id"] for t in get(sim, "/api/v2/tickets", filter="spam", updated_since=since, per_page=100).json()}
    deleted = get(sim, "/api/v2/tickets", filter="deleted", updated_since=since, per_page=100).json()
    assert spam == {t.id for t in world.tickets if t.is_spam} and spam and not spam & listed
    assert {t["id"] for t in deleted} == {t.id for t in world.tickets if t.is_deleted} and all(t["deleted"] for t in deleted)


def test_includes_cost_two_credits_each_and_embed_stats(sim: FreshdeskSim) -> None:
    plain = get(sim, "/api/v2/tickets", updated_since="2000-01-01T00:00:00Z", per_page=1)
    full = get(sim, "/api/v2/tickets", updated_since="2000-01-01T00:00:00Z", per_page=1, include="stats,requester,description")
    assert plain.headers["X-RateLimit-Used-CurrentRequest"] == "1" and "stats" not in plain.json()[0]
    assert full.headers["X-RateLimit-Used-CurrentRequest"] == "7"
    ticket = full.json()[0]
    assert set(ticket["stats"]) == {"agent_responded_at", "requester_responded_at", "first_responded_at", "status_updated_at",
                                    "reopened_at", "resolved_at", "closed_at", "pending_since"}  # fmt: skip
    assert set(ticket["requester"]) == {"id", "name", "email", "mobile", "phone"} and "description_text" in ticket


def test_growth_plan_per_minute_limit_and_retry_after(world: World) -> None:
    clock = SimClock(datetime(2024, 5, 1, 12, 0, 10, tzinfo=timezone.utc), scale=0)
    with FreshdeskSim(world, api_key=KEY, plan="growth", clock=clock) as sim:
        answers = [get(sim, "/api/v2/groups") for _ in range(201)]
        assert [a.status_code for a in answers[:200]] == [200] * 200
        assert answers[199].headers["X-RateLimit-Remaining"] == "0" and answers[0].headers["X-RateLimit-Total"] == "200"
        assert answers[200].status_code == 429 and answers[200].headers["Retry-After"] == "50"
        clock.advance(50)
        assert get(sim, "/api/v2/groups").status_code == 200
        # the ticket list has its own, smaller cap on Growth (20 a minute)
        lists = [get(sim, "/api/v2/tickets").status_code for _ in range(21)]
        assert lists == [200] * 20 + [429]


def test_surveys_are_forbidden_on_the_free_plan(world: World) -> None:
    with FreshdeskSim(world, api_key=KEY, plan="free", clock=SimClock(world.now, scale=0)) as sim:
        answer = get(sim, "/api/v2/surveys/satisfaction_ratings")
    assert answer.status_code == 403 and answer.json()["code"] == "require_feature"


def test_ratings_and_time_entries_shapes(sim: FreshdeskSim, world: World) -> None:
    rating = get(sim, "/api/v2/surveys/satisfaction_ratings", per_page=100).json()[0]
    first = min(world.ratings(), key=lambda r: r.id)
    assert rating["ratings"] == {"default_question": {3: 103, 2: 102, 1: 101, 0: 100, -1: -101, -2: -102, -3: -103}[first.score]}
    entry = get(sim, "/api/v2/time_entries", per_page=1).json()[0]
    seconds = min(world.time_entries(), key=lambda e: e.id).seconds
    assert entry["time_spent"] == f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
    since = world.now - timedelta(days=3)
    recent = get(sim, "/api/v2/time_entries", per_page=100, executed_after=since.strftime("%Y-%m-%dT%H:%M:%SZ")).json()
    assert {e["id"] for e in recent} == {e.id for e in world.time_entries() if e.executed_at >= since}
