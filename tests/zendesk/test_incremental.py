"""Incremental Zendesk pulls: nothing changed → almost nothing done; changes arrive exactly."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from kpisync.core.timeutil import to_utc
from kpisync.fixtures.world import World

from .conftest import assert_store_matches_world, make_sim, make_world, offered_surveys, pull, rows, snapshot


def rating_pages(world: World, start_time: int) -> int:
    """Pages of 100 the ratings list needs from ``start_time`` on (updated_at): the answers and,
    since the simulator lists offered surveys as Zendesk does, the unanswered surveys too."""
    times = [r.updated_at for r in world.ratings()] + list(offered_surveys(world).values())
    n = sum(1 for t in times if t.timestamp() >= start_time)
    return max(1, -(-n // 100))


def test_second_pull_costs_one_request_per_stream_and_writes_nothing(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        pull(db, sim)
        before = snapshot(db)
        run = pull(db, sim)
    assert run.status == "success"
    assert run.rows_written == 0
    assert snapshot(db) == before
    # `satisfaction_ratings` re-reads its 14-day edit lookback: with the offered surveys listed
    # (as Zendesk lists them) that is more than one page of 100 here.
    firsts = [r for r in sim.requests if r.path == "/api/v2/satisfaction_ratings.json" and "page[after]" not in r.query]
    rating_requests = rating_pages(world, int(firsts[-1].query["start_time"][0]))  # the second pull's
    assert rating_requests == 2
    for stream in run.streams:
        # `schedules` reads the list plus each schedule's holidays; `tickets` needs the agents list;
        # `ticket_events` reads the Time Tracking app's field ids (ticket fields).
        allowed = {"schedules": 1 + len(world.schedules), "tickets": 2, "ticket_events": 2,
                   "satisfaction_ratings": rating_requests}.get(stream.name, 1)  # fmt: skip
        assert stream.requests <= allowed, (stream.name, stream.requests)


def test_changes_arrive_on_the_next_pull(tmp_path: Path) -> None:
    world = make_world(days=20, per_day=10, seed=11)
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        pull(db, sim)
        t0 = world.now + timedelta(minutes=5)
        open_ticket = next(t for t in world.tickets if t.status == "open" and not t.is_deleted)
        world.add_comment(open_ticket.id, open_ticket.requester_id, True, t0)
        world.set_status(open_ticket.id, "solved", t0 + timedelta(minutes=10), world.admin().id)
        rated = next(t for t in world.tickets if t.rating is not None and not t.is_deleted)
        world.rate(rated.id, -2, "changed my mind", t0 + timedelta(minutes=20))
        victim = next(t for t in world.tickets if t.status == "closed" and not t.is_deleted)
        world.delete_ticket(victim.id, t0 + timedelta(minutes=30))
        world.advance(world.now + timedelta(days=2), rng_seed=5)
        sim.sync_clock()
        run = pull(db, sim)
        assert run.status == "success", run.error
    assert_store_matches_world(db, world)
    assert rows(db, f"SELECT is_deleted FROM tickets WHERE external_id = '{victim.id}'") == [(1,)]
    assert rows(db, f"SELECT sentiment, comment FROM ratings WHERE ticket_id = '{rated.id}'") == [(-1, "changed my mind")]
    solved = rows(db, f"SELECT to_status FROM ticket_status_events WHERE ticket_id = '{open_ticket.id}' ORDER BY at")
    assert ("solved",) in solved


def test_full_refresh_rereads_everything_and_changes_nothing(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        pull(db, sim)
        before = snapshot(db)
        run = pull(db, sim, full_refresh=True)
    assert run.status == "success"
    assert run.records > 0 and run.rows_written == 0
    assert snapshot(db) == before


def test_a_ratings_state_saved_before_the_sdk_port_is_continued(tmp_path: Path, world: World) -> None:
    """The connector before its SDK port saved {"since": <unix seconds>}; an upgraded install
    must go on from there (minus the edit lookback), not read every rating again."""
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        pull(db, sim)
        before = snapshot(db)
        (saved,) = rows(db, "SELECT state FROM sync_state WHERE source = 'zendesk' AND stream = 'satisfaction_ratings'")[0]
        since = int(to_utc(json.loads(saved)["since"]).timestamp())
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "UPDATE sync_state SET state = ? WHERE source = 'zendesk' AND stream = 'satisfaction_ratings'",
                (json.dumps({"since": since}),),
            )
        conn.close()
        first = len(sim.requests)
        run = pull(db, sim)
        ratings = [r for r in sim.requests[first:] if r.path == "/api/v2/satisfaction_ratings.json"]
    assert run.status == "success" and run.rows_written == 0
    assert snapshot(db) == before
    assert int(ratings[0].query["start_time"][0]) == since - 14 * 86400  # ratings_lookback_days
    assert len(ratings) == rating_pages(world, since - 14 * 86400) == 2  # not every rating again


def test_a_survey_answered_after_a_pull_is_the_same_rating_row_answered(tmp_path: Path) -> None:
    """A pull stores an offered survey (no answer); the customer answers later; the next pull
    turns that same row (same id, same offered_at) into the answer — no stale offered row stays,
    so the response rate counts the ticket once, as answered."""
    world = make_world(days=20, per_day=10, seed=11)
    db = tmp_path / "zd.db"
    offered = offered_surveys(world)
    tid = max(offered, key=lambda t: offered[t])
    sql = f"SELECT external_id, offered_at, responded_at, sentiment, comment FROM ratings WHERE ticket_id = '{tid}'"
    with make_sim(world) as sim:
        pull(db, sim)
        [(rid, offered_at, responded, sentiment, _)] = rows(db, sql)
        assert (rid, responded, sentiment) == (str(5 * 10**12 + tid), None, None)
        world.rate(tid, 2, "all good now", world.now + timedelta(minutes=5))
        sim.sync_clock()
        assert pull(db, sim).status == "success"
    [(rid2, offered2, responded2, sentiment2, comment)] = rows(db, sql)
    assert (rid2, offered2, sentiment2, comment) == (rid, offered_at, 1, "all good now")
    assert responded2 is not None and responded2 > offered_at
    assert_store_matches_world(db, world)
