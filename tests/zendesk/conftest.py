"""Zendesk end-to-end fixtures: a generated world served by the Zendesk simulator on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest


from kpisync.connectors.zendesk import ZendeskConfig, ZendeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world
from kpisync.fixtures.zendesk_sim import ZendeskSimulator

#: Simulated seconds per real second, shared by the simulator and the client, so a 60 s
#: Retry-After or the 10 requests/min export pacing cost milliseconds.
TIME_SCALE = 2000.0
END = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)


def make_world(days: int = 40, per_day: float = 12, seed: int = 7) -> World:
    return generate_world(seed=seed, start=END - timedelta(days=days), end=END, tickets_per_day=per_day)


def make_sim(world: World, **kwargs: Any) -> ZendeskSimulator:
    clock = SimClock(world.now + timedelta(minutes=2), scale=TIME_SCALE)
    return ZendeskSimulator(world, clock=clock, api_token="zd-secret-token-123", **kwargs)


def pull(db: Path, sim: ZendeskSimulator, full_refresh: bool = False, **settings: Any) -> RunResult:
    """One real pull through the connector's HTTP code path."""
    config = ZendeskConfig(
        subdomain="acme", email=sim.email, api_token=sim.api_token, base_url=sim.url, **settings
    )
    connector = ZendeskConnector(config, Runtime(time_scale=TIME_SCALE))
    with Store(db) as store:
        return sync_source(store, "zendesk", connector, full_refresh=full_refresh)


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical row without `synced_at`, for exact store comparisons."""
    conn = sqlite3.connect(db)
    out = {}
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE '%external_id%' ORDER BY name"
    ):
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "synced_at"]
        out[table] = conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY source, external_id"
        ).fetchall()
    conn.close()
    return out


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture()
def sim(world: World) -> Iterator[ZendeskSimulator]:
    with make_sim(world) as server:
        yield server
        assert server.errors == []


RATING_ID = 5 * 10**12
"""The simulator's satisfaction rating id of ticket N is RATING_ID + N (offered or answered)."""


def offered_surveys(world: World) -> dict[int, datetime]:
    """Tickets whose CSAT survey went out unanswered -> when (the first solve): solved once,
    asked by the requester (not outbound), email/web/API, not merged away, not spam, no rating."""
    out = {}
    for t in world.tickets:
        if t.rating or t.channel not in ("email", "web", "api") or t.is_outbound or t.merged_into_id or t.is_spam:
            continue
        solves = [u.at for u in t.updates if u.changes.get("status", (None, None))[1] in ("solved", "closed")]
        if solves:
            out[t.id] = solves[0]
    return out


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_store_matches_world(db: Path, world: World) -> None:
    """Tickets, comments (role, public), ratings, users and current statuses equal the world."""
    tickets = {int(r[0]): r[1:] for r in rows(db, "SELECT external_id, status, is_deleted, is_spam, is_merged, is_outbound FROM tickets")}
    assert set(tickets) == {t.id for t in world.tickets}
    for t in world.tickets:
        status, deleted, spam, merged, outbound = tickets[t.id]
        assert bool(deleted) == (t.is_deleted or t.is_spam), t.id
        assert bool(spam) == t.is_spam, t.id
        assert bool(merged) == (t.merged_into_id is not None), t.id
        assert bool(outbound) == t.is_outbound, t.id
        if not (t.is_deleted or t.is_spam):
            assert status == t.status, t.id

    messages = {int(r[0]): r[1:] for r in rows(db, "SELECT external_id, ticket_id, author_role, is_public, body FROM messages")}
    comments = list(world.all_comments())
    assert set(messages) == {c.id for c in comments}
    for c in comments:
        ticket_id, role, public, body = messages[c.id]
        assert int(ticket_id) == c.ticket_id
        # Triggers (auto-acks) and merges are "system", AI agents "bot": neither is ever an agent.
        automated = {"bot", "system"}
        assert role == c.author_kind or {role, c.author_kind} <= automated, c
        assert bool(public) == c.public
        assert body is None  # store_bodies is off by default

    # One legacy CSAT record per ticket (id 5e12 + ticket id): the answer, or the survey offered
    # and not answered (no sentiment, no response time).
    ratings = {int(r[0]): r[1:] for r in rows(db, "SELECT external_id, ticket_id, sentiment, responded_at FROM ratings")}
    offered = offered_surveys(world)
    assert set(ratings) == {RATING_ID + r.ticket_id for r in world.ratings()} | {RATING_ID + t for t in offered}
    for r in world.ratings():
        ticket_id, sentiment, responded = ratings[RATING_ID + r.ticket_id]
        assert (ticket_id, sentiment, responded is not None) == (str(r.ticket_id), 1 if r.score > 0 else -1, True)
    for t in offered:
        assert ratings[RATING_ID + t] == (str(t), None, None)

    users = {int(r[0]): r[1] for r in rows(db, "SELECT external_id, role FROM users")}
    assert {a.id for a in world.agents} <= set(users)
    assert {c.id for c in world.customers} <= set(users)

    # The status history ends where the ticket is now.
    last_status = dict(rows(db, """
        SELECT ticket_id, to_status FROM ticket_status_events e
        WHERE at = (SELECT max(at) FROM ticket_status_events WHERE ticket_id = e.ticket_id)
          AND external_id = (SELECT max(external_id) FROM ticket_status_events
                             WHERE ticket_id = e.ticket_id AND at = e.at)"""))
    for t in world.tickets:
        if not (t.is_deleted or t.is_spam):
            assert last_status[str(t.id)] == t.status, t.id
