"""Helprace connector against the Helprace simulator: exact pulls, vanished tickets, faults, secrets.

Expected rows are computed from the neutral world with rules written out here (not with the
connector's mapping): visible tickets are the ones neither deleted nor spam; a ticket's
messages are its description (by the submitter) plus the later comments by people.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kpisync.connectors.helprace import HelpraceConfig, HelpraceConnector
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, StreamResult, SyncObserver, sync_source
from kpisync.fixtures.helprace_sim import HelpraceSimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import UTC, Agent, World, generate_world

START = datetime(2024, 3, 1, tzinfo=UTC)
EMAIL, KEY = "ops@acme.test", "hr-key-5f1c9e2a7b"
CATEGORY = {"new": "new", "open": "open", "pending": "pending", "hold": "hold", "solved": "resolved", "closed": "closed"}
TICKETS, USERS = "/api/v1/tickets/", "/api/v1/users/"


def make_world(seed: int = 11, days: int = 30) -> World:
    return generate_world(seed, START, START + timedelta(days=days), tickets_per_day=8)


def make(sim: HelpraceSimulator, runtime: Runtime | None = None, **overrides: Any) -> HelpraceConnector:
    settings: dict[str, Any] = {"base_url": sim.url, "email": EMAIL, "api_key": KEY, "requests_per_minute": 1e6}
    settings.update(overrides)
    return HelpraceConnector(HelpraceConfig(**settings), runtime or Runtime(time_scale=1))


def sync(sim: HelpraceSimulator, store: Store, runtime: Runtime | None = None, **kwargs: Any) -> RunResult:
    connector = make(sim, runtime, **kwargs.pop("settings", {}))
    result = sync_source(store, "helprace", connector, **kwargs)
    assert sim.errors == []
    return result


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the world as a Helprace user would see it in the store ------------------------------------------
def visible(world: World) -> list[Any]:
    return [tk for tk in world.tickets if not (tk.is_deleted or tk.is_spam)]


def expected_tickets(world: World) -> dict[str, tuple[Any, ...]]:
    return {
        str(tk.id): (CATEGORY[tk.status], tk.priority, _s(tk.requester_id), _s(tk.assignee_id), _s(tk.group_id),
                     int(tk.submitter_id != tk.requester_id), iso(tk.created_at), iso(tk.updated_at), 0)
        for tk in visible(world)
    }  # fmt: skip


def expected_messages(world: World) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for tk in visible(world):
        first = tk.updates[0].comment
        assert first is not None
        out[f"{tk.id}-description"] = (str(tk.id), str(tk.submitter_id), _kind(world, tk.submitter_id), 1, iso(tk.created_at))
        for c in tk.comments[1:]:
            if c.author_kind in ("customer", "agent"):
                out[str(c.id)] = (str(tk.id), str(c.author_id), c.author_kind, int(c.public), iso(c.created_at))
    return out


def expected_users(world: World) -> dict[str, str]:
    return {
        str(u.id): ("customer" if not isinstance(u, Agent) else "admin" if u.role == "admin" else "agent")
        for u in world.users() if not (isinstance(u, Agent) and u.is_bot)
    }  # fmt: skip


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _kind(world: World, user_id: int) -> str:
    return "agent" if isinstance(world.user(user_id), Agent) else "customer"


def got_tickets(store: Store, deleted: bool = False) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: tuple(r[1:])
        for r in store.query(
            "SELECT external_id, status_category, priority, requester_id, assignee_id, group_id, is_outbound, "
            "created_at, updated_at, is_deleted FROM tickets WHERE source = 'helprace' AND is_deleted = ?", (int(deleted),)
        )
    }


def got_messages(store: Store) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: tuple(r[1:])
        for r in store.query("SELECT external_id, ticket_id, author_id, author_role, is_public, created_at FROM messages")
    }


def got_users(store: Store) -> dict[str, str]:
    return {r[0]: r[1] for r in store.query("SELECT external_id, role FROM users")}


def assert_store_matches(store: Store, world: World) -> None:
    for name, got, want in (
        ("tickets", got_tickets(store), expected_tickets(world)),
        ("users", got_users(store), expected_users(world)),
    ):
        assert got == want, f"{name}: missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}, " \
                            f"differ {[k for k in want if k in got and got[k] != want[k]][:5]}"  # fmt: skip
    want_msgs = expected_messages(world)
    listed = {str(tk.id) for tk in visible(world)}
    got_msgs = {k: v for k, v in got_messages(store).items() if v[0] in listed}
    assert got_msgs == want_msgs, f"messages: missing {sorted(set(want_msgs) - set(got_msgs))[:5]}, extra {sorted(set(got_msgs) - set(want_msgs))[:5]}"


def replies_calls(sim: HelpraceSimulator) -> int:
    return sim.request_count(r"/replies")


class StopAfter(SyncObserver):
    """Stops the run after `batches` batches of the tickets stream: a clean kill mid-stream."""

    def __init__(self, runtime: Runtime, batches: int) -> None:
        self.runtime, self.left = runtime, batches

    def batch_written(self, source: str, result: StreamResult) -> None:
        if result.name == "tickets":
            self.left -= 1
            if self.left <= 0:
                self.runtime.stop.set()


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def sim(world: World) -> Iterator[HelpraceSimulator]:
    with HelpraceSimulator(world, email=EMAIL, api_key=KEY, limit_per_min=1_000_000) as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "kpisync.db") as s:
        yield s


# -- tests ----------------------------------------------------------------------------------------------
def test_full_pull_matches_the_world_with_one_replies_request_per_ticket(world: World, sim: HelpraceSimulator, store: Store) -> None:
    result = sync(sim, store)
    assert result.status == "success", result.error
    assert_store_matches(store, world)
    # Hand-checked against the seed-11 world: 30 days at 8 tickets a day.
    assert (store.count("tickets"), store.count("users"), store.count("groups")) == (231, 92, 4)
    assert len(visible(world)) == 231 and sum(tk.is_deleted or tk.is_spam for tk in world.tickets) == 2
    # requests: 1 users page (92 users) + 3 ticket pages (100 a page) + one replies call per ticket
    assert replies_calls(sim) == 231
    assert sim.request_count(TICKETS + "$") == 3 and sim.request_count(USERS) == 1
    assert result.requests == 1 + 3 + 231
    assert result.notices == ["Helprace's API has no satisfaction ratings: import Helprace's satisfaction export with "
                              "`kpisync import helprace-ratings FILE.csv`"]  # fmt: skip


def test_second_pull_fetches_replies_only_for_changed_tickets(world: World, sim: HelpraceSimulator, store: Store) -> None:
    assert sync(sim, store).status == "success"
    before = {tk.id: sim.ticket_json(tk) for tk in visible(world)}
    sim.clear_log()
    unchanged = sync(sim, store)
    assert unchanged.status == "success" and unchanged.rows_written == 0
    assert replies_calls(sim) == 0 and unchanged.requests == 1 + 3  # users page + ticket pages

    open_tk = next(tk for tk in visible(world) if tk.status == "open")
    agent = next(a for a in world.agents if not a.is_bot and a.role == "agent")
    world.add_comment(open_tk.id, agent.id, False, world.now + timedelta(minutes=5), "internal: check logs")
    world.advance(world.now + timedelta(days=2), rng_seed=4)
    changed = {tk.id for tk in visible(world) if sim.ticket_json(tk) != before.get(tk.id)}
    sim.clear_log()
    second = sync(sim, store)
    assert second.status == "success", second.error
    assert_store_matches(store, world)
    assert replies_calls(sim) == len(changed) and 20 < len(changed) < 60
    note = store.query("SELECT author_role, is_public FROM messages WHERE ticket_id = ? ORDER BY created_at DESC LIMIT 1", (str(open_tk.id),))[0]
    assert tuple(note) == ("agent", 0)


def test_vanished_tickets_are_marked_deleted_after_a_404(world: World, sim: HelpraceSimulator, store: Store) -> None:
    assert sync(sim, store).status == "success"
    gone = [tk for tk in visible(world) if tk.status == "closed"][:2]
    spam = [tk for tk in visible(world) if tk.status == "new"][0]
    at = world.now + timedelta(hours=1)
    for tk in gone:
        world.delete_ticket(tk.id, at)
    world.mark_spam(spam.id, at)
    never_seen = world.add_ticket(world.customers[0].id, at + timedelta(minutes=1))
    world.delete_ticket(never_seen.id, at + timedelta(minutes=2))
    sim.clear_log()
    result = sync(sim, store)
    assert result.status == "success", result.error
    flagged = {str(tk.id) for tk in [*gone, spam]}
    assert set(got_tickets(store, deleted=True)) == flagged
    assert store.query("SELECT count(*) FROM tickets WHERE status_category = 'deleted'")[0][0] == 3
    assert str(never_seen.id) not in {r[0] for r in store.query("SELECT external_id FROM tickets")}
    assert sim.request_count(r"^/api/v1/tickets/\d+/?$", status=404) == 3  # one confirmation each
    assert "3 ticket(s) no longer returned by Helprace (404) were marked deleted" in result.notices
    assert_store_matches(store, world)  # the others are untouched
    # the deleted tickets keep their conversation; the next pull asks about them no more
    assert store.query("SELECT count(*) FROM messages WHERE ticket_id IN (?, ?, ?)", tuple(flagged))[0][0] > 3
    sim.clear_log()
    assert sync(sim, store).status == "success" and sim.request_count(r"^/api/v1/tickets/\d+/?$") == 0


def test_a_ticket_skipped_by_moving_pages_is_confirmed_not_deleted(world: World, sim: HelpraceSimulator, store: Store) -> None:
    """A deletion while the scan pages shifts the next ticket onto the page already read: it is
    never listed, and a GET finds it alive, so it is not marked deleted."""
    assert sync(sim, store).status == "success"
    newest_first = sorted(visible(world), key=lambda t: (t.created_at, t.id), reverse=True)
    victim, skipped = newest_first[50], newest_first[100]  # page 1 and the first ticket of page 2

    original = sim._tickets

    def delete_after_first_page(req: Any) -> Any:
        response = original(req)
        if req.arg("page") == "1":
            world.delete_ticket(victim.id, world.now + timedelta(minutes=1))
        return response

    sim.route("GET", r"/api/v1/tickets/?", delete_after_first_page)
    sim._routes.insert(0, sim._routes.pop())
    sim.clear_log()
    result = sync(sim, store)
    assert result.status == "success", result.error
    assert sim.request_count(rf"^/api/v1/tickets/{skipped.id}/?$", status=200) == 1
    assert got_tickets(store, deleted=True) == {}  # the victim was listed on page 1 of this scan
    sim.clear_log()
    assert sync(sim, store).status == "success"
    assert set(got_tickets(store, deleted=True)) == {str(victim.id)}  # the next scan misses it
    assert_store_matches(store, world)


def test_status_history_is_synthesised_from_what_each_sync_saw(world: World, sim: HelpraceSimulator, store: Store) -> None:
    tk = world.add_ticket(world.customers[3].id, world.now + timedelta(minutes=1), subject="Refund")
    agent = next(a for a in world.agents if not a.is_bot and a.role == "agent")
    replied_at = world.now + timedelta(minutes=30)
    world.add_comment(tk.id, agent.id, True, replied_at, "Done", status="pending")
    assert sync(sim, store).status == "success"
    solved_at = world.now + timedelta(hours=3)
    world.set_status(tk.id, "solved", solved_at, agent.id)
    assert sync(sim, store).status == "success"
    events = [tuple(r) for r in store.query(
        "SELECT at, from_status, to_status, to_category, is_synthetic FROM ticket_status_events WHERE ticket_id = ? ORDER BY at",
        (str(tk.id),))]  # fmt: skip
    assert events == [
        (iso(tk.created_at), None, "new", "new", 1),
        (iso(replied_at), "new", "pending", "pending", 1),  # first sight: the status at the last update
        (iso(solved_at), "pending", "solved", "resolved", 1),
    ]


def test_kill_between_batches_then_rerun_converges(world: World, sim: HelpraceSimulator, tmp_path: Path) -> None:
    clean = Store(tmp_path / "clean.db")
    assert sync(sim, clean).status == "success"
    with Store(tmp_path / "killed.db") as store:
        for batches in (1, 2):  # stop after the first batch of tickets, then after another one
            runtime = Runtime(time_scale=1)
            result = sync(sim, store, runtime, observer=StopAfter(runtime, batches), settings={"page_size": 20})
            assert result.status == "interrupted"
        calls_before = replies_calls(sim)
        assert sync(sim, store, settings={"page_size": 20}).status == "success"
        # the committed tickets were not fetched again: fewer than all 231 replies calls
        assert replies_calls(sim) - calls_before < 231
        for table, columns in (("tickets", "*"), ("messages", "*"), ("users", "*"), ("ticket_status_events", "*")):
            assert _dump(store, table) == _dump(clean, table), table
    clean.close()


def _dump(store: Store, table: str) -> list[tuple[Any, ...]]:
    rows = [dict(r) for r in store.query(f"SELECT * FROM {table} ORDER BY external_id")]
    return [tuple(v for k, v in r.items() if k != "synced_at") for r in rows]


def test_rate_limits_and_server_errors_are_survived_on_a_scaled_clock(tmp_path: Path) -> None:
    world = make_world(days=8)
    scale = 600.0  # a 60 s Retry-After costs 0.1 s
    clock = SimClock(world.now + timedelta(minutes=2), scale=scale)
    with HelpraceSimulator(world, email=EMAIL, api_key=KEY, clock=clock, limit_per_min=8) as sim, \
            Store(tmp_path / "s.db") as store:  # fmt: skip
        sim.faults.fail_next(2, 503, path=r"/replies")
        sim.faults.fail_next(1, 500, path=r"^/api/v1/tickets/$")
        sim.faults.reset_next(1, path=r"/replies")
        sim.faults.truncate_next(1, path=r"^/api/v1/users/?$")
        sim.faults.fail_next(2, 429, headers={"Retry-After": "30"}, path=r"/replies", body={"error": "Too Many Requests"})
        sim.faults.fail_next(1, 429, path=r"/replies", body={"error": "Too Many Requests"})  # no Retry-After: 60 s
        runtime = Runtime(time_scale=scale)
        started = datetime.now()
        result = sync(sim, store, runtime, settings={"requests_per_minute": 1000})
        assert result.status == "success", result.error
        assert_store_matches(store, world)
        assert sim.request_count(status=429) >= 3  # the 3 above, plus the limiter's (66 requests at 8 a minute)
        assert runtime.waited >= 30 + 30 + 60  # Retry-After honoured, 60 s when missing
        assert sorted(kind for kind, _ in sim.faults.fired) == ["reset"] + ["status"] * 6 + ["truncate"]
        assert (datetime.now() - started).total_seconds() < 20


def test_pacing_keeps_requests_under_the_configured_rate(tmp_path: Path) -> None:
    world = make_world(days=8)
    scale = 200.0  # one request every 2 s of clock = 10 ms real, longer than a request takes
    clock = SimClock(world.now + timedelta(minutes=2), scale=scale)
    # the limit sits a little above the pace: on a busy machine arrival times jitter
    with HelpraceSimulator(world, email=EMAIL, api_key=KEY, clock=clock, limit_per_min=36) as sim, \
            Store(tmp_path / "s.db") as store:  # fmt: skip
        runtime = Runtime(time_scale=scale)
        assert sync(sim, store, runtime, settings={"requests_per_minute": 30}).status == "success"
        log = sim.request_log()
        assert sim.request_count(status=429) == 0 and len(log) == 66  # 1 users + 1 tickets page + 64 replies
        assert (log[-1].at - log[0].at).total_seconds() >= 0.95 * 2 * (len(log) - 1)  # 2 s apart, give or take jitter
    assert HelpraceConfig(subdomain="acme", email=EMAIL, api_key=KEY).requests_per_minute == 60  # the default


def test_a_bad_key_is_one_clear_line(sim: HelpraceSimulator) -> None:
    connector = make(sim, api_key="wrong-key-123")
    with pytest.raises(AuthError) as failure:
        connector.check()
    message = str(failure.value)
    assert message == (
        "helprace: authentication failed (HTTP 401) — check email and api_key (KPISYNC_HELPRACE_EMAIL, "
        "KPISYNC_HELPRACE_API_KEY); the key is under Settings > Integrations > API in Helprace"
    )
    assert "wrong-key-123" not in message and "\n" not in message


def test_start_date_skips_older_tickets_and_stops_paging(world: World, sim: HelpraceSimulator, store: Store) -> None:
    cutoff = START + timedelta(days=20)
    result = sync(sim, store, settings={"start_date": cutoff, "page_size": 25})
    assert result.status == "success", result.error
    want = {str(tk.id) for tk in visible(world) if tk.created_at >= cutoff}
    assert set(got_tickets(store)) == want and len(want) == 76
    assert sim.request_count(TICKETS + "$") == 4  # the 76 newest tickets: pages 1-4 of 25, then stop
    assert replies_calls(sim) == 76


def test_secrets_never_reach_the_store(world: World, sim: HelpraceSimulator, store: Store) -> None:
    import base64

    assert sync(sim, store).status == "success"
    store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    token = base64.b64encode(f"{EMAIL}/api_key:{KEY}".encode()).decode()
    blobs = [p.read_bytes() for p in (store.path, store.path.with_name(store.path.name + "-wal")) if p.exists()]
    assert not any(secret.encode() in blob for blob in blobs for secret in (KEY, token))


def test_bodies_are_kept_only_when_asked(world: World, sim: HelpraceSimulator, store: Store) -> None:
    assert sync(sim, store).status == "success"
    assert store.query("SELECT count(*) FROM messages WHERE body IS NOT NULL OR raw LIKE '%\"body\"%'")[0][0] == 0
    assert store.query("SELECT count(*) FROM tickets WHERE raw LIKE '%\"body\"%'")[0][0] == 0
    sync(sim, store, full_refresh=True, settings={"store_bodies": True})
    assert store.query("SELECT count(*) FROM messages WHERE body IS NOT NULL")[0][0] == len(expected_messages(world))
