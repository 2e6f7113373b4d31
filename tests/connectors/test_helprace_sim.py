"""The Helprace simulator itself: the documented shapes and the conservative assumptions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests

from kpisync.fixtures.helprace_sim import HelpraceSimulator, replies_of
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import UTC, World, generate_world

KEY = "sim-key-1"
START = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return generate_world(11, START, START + timedelta(days=10), tickets_per_day=8)


@pytest.fixture
def hr(world: World) -> Iterator[HelpraceSimulator]:
    with HelpraceSimulator(world, api_key=KEY, clock=SimClock(world.now, scale=0), limit_per_min=1000) as sim:
        yield sim
        assert sim.errors == []


def get(hr: HelpraceSimulator, path: str, **params: object) -> requests.Response:
    return requests.get(hr.url + path, params=params, auth=("ops@acme.test/api_key", KEY), timeout=10)


def test_basic_auth_needs_the_api_key_user_form(hr: HelpraceSimulator) -> None:
    assert requests.get(hr.url + "/api/v1/users", auth=("ops@acme.test", KEY), timeout=10).status_code == 401
    assert requests.get(hr.url + "/api/v1/users", auth=("ops@acme.test/api_key", "x"), timeout=10).json() == {"error": "Unauthorized"}
    assert get(hr, "/api/v1/users").status_code == 200


def test_lists_are_paginators_newest_first_with_a_clamped_page_size(world: World, hr: HelpraceSimulator) -> None:
    body = get(hr, "/api/v1/tickets/", per_page=500)
    page = body.json()["tickets"]
    visible = [tk for tk in world.tickets if not (tk.is_deleted or tk.is_spam)]
    assert (page["per_page"], page["total"], page["current_page"], page["last_page"]) == (100, len(visible), 1, 1)
    created = [t["created"] for t in page["data"]]
    assert created == sorted(created, reverse=True)
    assert get(hr, "/api/v1/tickets/", page=9).json()["tickets"]["data"] == []
    assert get(hr, "/api/v1/tickets/").json()["tickets"]["per_page"] == 25
    trimmed = get(hr, "/api/v1/tickets/", fields="status", per_page=1).json()["tickets"]["data"][0]
    assert set(trimmed) == {"id", "status"}


def test_no_sort_by_update_time(hr: HelpraceSimulator) -> None:
    answer = get(hr, "/api/v1/tickets/", sort_by="updated")
    assert answer.status_code == 400 and "created, id" in answer.json()["description"]


def test_replies_follow_the_description_and_mark_internal_notes(world: World, hr: HelpraceSimulator) -> None:
    tk = next(t for t in world.tickets if any(not c.public for c in replies_of(t)))
    data = get(hr, f"/api/v1/tickets/{tk.id}/replies").json()["replies"]["data"]
    assert [r["id"] for r in data] == [c.id for c in replies_of(tk)]
    assert tk.updates[0].comment.id not in [r["id"] for r in data]
    assert any(r["internal"] for r in data) and {"id", "ticket_id", "created", "author", "body", "internal"} <= set(data[0])


def test_deleted_and_spam_tickets_vanish(world: World, hr: HelpraceSimulator) -> None:
    tk = world.tickets[0]
    world.delete_ticket(tk.id, world.now + timedelta(minutes=1))
    assert get(hr, f"/api/v1/tickets/{tk.id}").status_code == 404
    assert get(hr, f"/api/v1/tickets/{tk.id}/replies").status_code == 404
    assert tk.id not in [t["id"] for t in get(hr, "/api/v1/tickets/", per_page=100).json()["tickets"]["data"]]
    other = world.tickets[1]
    assert get(hr, f"/api/v1/tickets/{other.id}").json()["ticket"]["id"] == other.id


def test_over_the_limit_is_a_429_with_retry_after(world: World) -> None:
    clock = SimClock(world.now.replace(second=0), scale=0)
    with HelpraceSimulator(world, api_key=KEY, clock=clock, limit_per_min=3) as hr:
        statuses = [get(hr, "/api/v1/users").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = get(hr, "/api/v1/users")
        assert limited.headers["Retry-After"] == "60" and limited.json()["error"] == "Too Many Requests"
        hr.omit_retry_after_next()
        assert "Retry-After" not in get(hr, "/api/v1/users").headers
        clock.advance(60)
        assert get(hr, "/api/v1/users").status_code == 200
