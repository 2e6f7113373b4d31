"""Handle time from Zendesk: Time Tracking app entries (ticket events) and Talk calls.

The world logs time with an agent's reply and has one call per answered phone ticket; the
simulator serves the app's custom-field changes in the ticket events export and the calls from
the Talk API's Incremental Calls Export. A pull must land exactly those, and the handle_time KPI
must equal the figure computed by hand from the world.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from kpisync.core.metrics.engine import evaluate
from kpisync.core.store import Store
from kpisync.core.timeutil import to_utc
from kpisync.fixtures.world import World
from kpisync.fixtures.zendesk_sim import TALK_CALLS_PATH, TIME_LAST_FIELD_ID

from .conftest import END, make_sim, make_world, pull, rows, snapshot


def _iso(dt: object) -> str:
    return to_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]


def world_entries(world: World) -> Counter[tuple[str, str, int, str]]:
    return Counter((str(e.ticket_id), str(e.agent_id), e.seconds, _iso(e.executed_at)) for e in world.time_entries())


def stored_entries(db: Path) -> Counter[tuple[str, str, int, str]]:
    found = rows(db, "SELECT ticket_id, agent_id, seconds, executed_at, source_kind FROM time_entries")
    assert {r[4] for r in found} <= {"time_tracking_app"}
    return Counter((r[0], r[1], r[2], _iso(r[3])) for r in found)


def world_calls(world: World) -> set[tuple[object, ...]]:
    return {(str(c.id), str(c.ticket_id), str(c.agent_id), c.direction, _iso(c.started_at), c.talk_s, c.hold_s,
             c.wrap_up_s, c.wait_s, c.status) for c in world.calls()}  # fmt: skip


def stored_calls(db: Path) -> set[tuple[object, ...]]:
    found = rows(db, "SELECT external_id, ticket_id, agent_id, direction, started_at, talk_s, hold_s, wrap_up_s, "
                     "wait_s, status FROM calls")  # fmt: skip
    return {(*r[:4], _iso(r[4]), *r[5:]) for r in found}


def test_a_full_pull_lands_exactly_the_logged_time_and_the_calls(tmp_path: Path, world: World) -> None:
    assert len(world.time_entries()) > 100 and len(world.calls()) > 10
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        run = pull(db, sim)
        assert run.status == "success", run.error
        assert sim.errors == []
    assert stored_entries(db) == world_entries(world)
    assert stored_calls(db) == world_calls(world)
    by_stream = {s.name: s for s in run.streams}
    assert by_stream["calls"].notices == [] and by_stream["ticket_events"].notices == []
    # [TALK] no page size is documented: the export ends on a page with nothing newer (+1).
    assert by_stream["calls"].requests == -(-len(world.calls()) // 1000) + 1


def test_a_rerun_adds_nothing_and_new_work_arrives_exactly(tmp_path: Path) -> None:
    world = make_world(days=20, per_day=14, seed=3)
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        pull(db, sim)
        before = snapshot(db)
        again = pull(db, sim)
        assert again.rows_written == 0 and snapshot(db) == before
        assert {s.name: s.requests for s in again.streams}["calls"] == 1
        calls, entries = len(world.calls()), len(world.time_entries())
        world.advance(world.now + timedelta(days=3), rng_seed=9)
        assert len(world.calls()) > calls and len(world.time_entries()) > entries
        sim.sync_clock()
        assert pull(db, sim).status == "success"
    assert stored_entries(db) == world_entries(world)
    assert stored_calls(db) == world_calls(world)


def test_the_same_time_logged_twice_is_counted_twice(tmp_path: Path) -> None:
    """[TT]: logging the same time as the previous update records no change of "Time spent last
    update (sec)", only of the total — the entry must still arrive."""
    world = make_world(days=20, per_day=14, seed=3)
    ticket = next(t for t in world.tickets if len(t.time_entries) >= 2)
    ticket.time_entries[1].seconds = ticket.time_entries[0].seconds
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        sim.invalidate()
        assert pull(db, sim).status == "success"
    assert stored_entries(db) == world_entries(world)


def test_configured_field_id_skips_the_lookup(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        run = pull(db, sim, time_spent_last_update_field_id=TIME_LAST_FIELD_ID)
        assert run.status == "success", run.error
        assert not any("ticket_fields" in r.path for r in sim.requests)
    # "time spent last update" alone: right unless an agent logged the same time twice in a row
    repeats = sum(1 for t in world.tickets for a, b in zip(t.time_entries, t.time_entries[1:]) if a.seconds == b.seconds)
    assert repeats == 0
    assert stored_entries(db) == world_entries(world)


def test_a_plan_without_talk_is_a_notice_not_a_failure(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world, talk=False) as sim:
        run = pull(db, sim)
        assert sim.errors == []
    assert run.status == "success", run.error
    calls = next(s for s in run.streams if s.name == "calls")
    assert calls.status == "success" and len(calls.notices) == 1 and "Talk is not on this plan" in calls.notices[0]
    assert rows(db, "SELECT count(*) FROM calls") == [(0,)]
    assert stored_entries(db) == world_entries(world)
    assert any(r.path.startswith(TALK_CALLS_PATH) and r.status == 403 for r in sim.requests)


def test_without_the_time_tracking_app_the_run_says_so(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world, time_tracking=False) as sim:
        run = pull(db, sim)
    assert run.status == "success", run.error
    events = next(s for s in run.streams if s.name == "ticket_events")
    assert len(events.notices) == 1 and "Time Tracking app fields not found" in events.notices[0]
    assert rows(db, "SELECT count(*) FROM time_entries") == [(0,)]
    assert stored_calls(db) == world_calls(world)


def test_handle_time_equals_the_worlds(tmp_path: Path, world: World) -> None:
    """Mean per ticket of logged seconds + call talk + hold + wrap-up (include_wrap_up defaults
    on), over tickets that count (not deleted, spam or merged) and have any."""
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        assert pull(db, sim).status == "success"
    per_ticket: dict[int, int] = {}
    for t in world.tickets:
        if t.is_deleted or t.is_spam or t.merged_into_id is not None:
            continue
        seconds = sum(e.seconds for e in t.time_entries) + sum(c.talk_s + c.hold_s + c.wrap_up_s for c in t.calls)
        if t.time_entries or t.calls:
            per_ticket[t.id] = seconds
    expected = round(sum(per_ticket.values()) / len(per_ticket), 3)
    with Store(db) as store:
        result = evaluate(store, "handle_time", by="source", since=(END - timedelta(days=60)).isoformat(),
                          until=(END + timedelta(days=1)).isoformat(), now=END.isoformat())  # fmt: skip
    row = next(r for r in result.rows if r["group"] == "zendesk")
    assert row["value"] == expected and row["count"] == len(per_ticket)
    assert row["total"] == sum(per_ticket.values())
    assert not any("handle time unavailable" in note for note in result.notes)
