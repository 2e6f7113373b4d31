"""A full Zendesk pull lands exactly the simulated account: every ticket, comment, rating."""

from __future__ import annotations

from pathlib import Path

from kpisync.fixtures.world import World
from kpisync.fixtures.zendesk_sim import ZendeskSimulator

from .conftest import assert_store_matches_world, pull, rows


def test_full_pull_equals_the_world(tmp_path: Path, world: World, sim: ZendeskSimulator) -> None:
    db = tmp_path / "zd.db"
    run = pull(db, sim)
    assert run.status == "success", run.error

    assert_store_matches_world(db, world)


def test_a_full_pull_costs_about_the_lower_bound(tmp_path: Path, world: World, sim: ZendeskSimulator) -> None:
    run = pull(tmp_path / "zd.db", sim)
    by_stream = {s.name: s.requests for s in run.streams}
    tickets = len(world.tickets)
    assert by_stream["tickets"] <= -(-tickets // 1000) + 1 + 1  # + the agents list
    events = sum(len(t.updates) for t in world.tickets) + tickets
    assert by_stream["ticket_events"] <= -(-events // 1000) + 1
    assert by_stream["satisfaction_ratings"] <= -(-len(world.ratings()) // 100) + 1


def test_comment_bodies_are_stored_only_when_asked(tmp_path: Path, world: World, sim: ZendeskSimulator) -> None:
    pull(tmp_path / "off.db", sim)
    pull(tmp_path / "on.db", sim, store_bodies=True)
    off = rows(tmp_path / "off.db", "SELECT body, raw FROM messages")
    assert all(body is None and '"body"' not in raw and "html_body" not in raw for body, raw in off)
    bodies = {int(r[0]): r[1] for r in rows(tmp_path / "on.db", "SELECT external_id, body FROM messages")}
    assert all(bodies[c.id] == c.body for c in world.all_comments())
