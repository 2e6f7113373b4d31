"""`kpisync pull freshdesk` against the Freshdesk simulator: what a user sees in the store.

The expectations are written from the world with Freshdesk's rules spelled out here (no
"new" status, the description is the first message, acknowledgements are not conversations,
ratings 103…−103), independently of the simulator's rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from kpisync.connectors.freshdesk import FreshdeskConfig, FreshdeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.freshdesk_sim import FreshdeskSim, Plan
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import SYSTEM_USER_ID, World, generate_world

UTC = timezone.utc
KEY = "fd-test-key-0123456789"
START = datetime(2024, 3, 1, tzinfo=UTC)

CATEGORY = {"new": "open", "open": "open", "pending": "pending", "hold": "hold", "solved": "resolved", "closed": "closed"}
CHANNEL = {"email": "email", "web": "web", "api": "web", "chat": "chat", "phone": "phone", "twitter": "social",
           "facebook": "social", "instagram": "social", "whatsapp": "social"}  # fmt: skip


def make_world(days: int = 30, per_day: float = 10, seed: int = 11) -> World:
    return generate_world(seed=seed, start=START, end=START + timedelta(days=days), tickets_per_day=per_day)


def pull(sim: FreshdeskSim, store: Store, *, time_scale: float = 1.0, **settings: Any) -> RunResult:
    config = FreshdeskConfig(base_url=sim.url, api_key=SecretStr(KEY), **settings)
    connector = FreshdeskConnector(config, Runtime(time_scale=time_scale))
    return sync_source(store, "freshdesk", connector)


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def sim(world: World) -> Iterator[FreshdeskSim]:
    with FreshdeskSim(world, api_key=KEY) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "kpi.db") as s:
        yield s


def rows(store: Store, sql: str) -> dict[str, tuple[Any, ...]]:
    return {r[0]: tuple(r[1:]) for r in store.query(sql)}


def ts(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


# -- the ground truth, in Freshdesk's terms ---------------------------------------------------
def expected_tickets(world: World, social: set[str] = frozenset({"twitter", "facebook", "instagram", "whatsapp"})) -> dict[str, tuple[Any, ...]]:
    out = {}
    for t in world.tickets:
        channel = "email" if t.is_outbound else CHANNEL[t.channel]
        if t.channel in social and not t.is_outbound:
            channel = "social"
        out[str(t.id)] = (
            "deleted" if t.is_deleted else CATEGORY[t.status], int(t.is_spam), int(t.is_deleted), channel,
            int(channel == "social"), int(t.is_outbound), str(t.requester_id), _s(t.assignee_id), _s(t.group_id),
            _s(t.organization_id), t.priority, ts(t.created_at), ts(t.updated_at),
        )  # fmt: skip
    return out


def expected_messages(world: World) -> dict[str, tuple[Any, ...]]:
    """Messages of live tickets: the description, then every comment except the bot's
    acknowledgements and automation posts (Freshdesk notifications, not conversations)."""
    out = {}
    for t in world.tickets:
        if t.is_spam or t.is_deleted:
            continue
        author = t.assignee_id if t.is_outbound else t.requester_id
        out[f"{t.id}:description"] = (str(t.id), _s(author), "agent" if t.is_outbound else "customer", 1)
        for c in t.comments[1:]:
            if c.author_kind == "bot" or c.author_id == SYSTEM_USER_ID:
                continue
            role = "customer" if c.author_kind == "customer" else "agent"
            out[str(c.id)] = (str(t.id), str(c.author_id), role, int(c.public))
    return out


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


TICKET_SQL = (
    "SELECT external_id, status_category, is_spam, is_deleted, channel, is_social, is_outbound, requester_id, "
    "assignee_id, group_id, organization_id, priority, created_at, updated_at FROM tickets"
)
MESSAGE_SQL = "SELECT external_id, ticket_id, author_id, author_role, is_public FROM messages"


def assert_store_equals_world(store: Store, world: World) -> None:
    assert rows(store, TICKET_SQL) == expected_tickets(world)
    live = {str(t.id) for t in world.tickets if not t.is_spam and not t.is_deleted}
    messages = {k: v for k, v in rows(store, MESSAGE_SQL).items() if v[0] in live}  # deletion keeps history
    assert messages == expected_messages(world)
    users = rows(store, "SELECT external_id, role, email, organization_id FROM users")
    assert users == {
        **{str(a.id): ("agent", a.email, None) for a in world.agents if not a.is_bot},
        **{str(c.id): ("customer", c.email, _s(c.organization_id)) for c in world.customers},
    }
    assert rows(store, "SELECT external_id, ticket_id, raw_value, value, sentiment, comment FROM ratings") == {
        str(r.id): (str(r.ticket_id), str(100 + r.score if r.score >= 0 else -100 + r.score), float(r.score),
                    (r.score > 0) - (r.score < 0), r.comment)
        for r in world.ratings()
    }  # fmt: skip
    assert rows(store, "SELECT external_id, ticket_id, agent_id, seconds, billable FROM time_entries") == {
        str(e.id): (str(e.ticket_id), str(e.agent_id), e.seconds // 60 * 60, int(e.billable)) for e in world.time_entries()
    }


# -- full pull --------------------------------------------------------------------------------
def test_full_pull_equals_the_world(sim: FreshdeskSim, store: Store, world: World) -> None:
    run = pull(sim, store)
    assert run.status == "success", run.error
    assert_store_equals_world(store, world)
    # spot checks a user would make by hand
    counts = world.counts()
    assert store.count("tickets") == counts["tickets"] and counts["spam"] + counts["deleted"] > 0
    assert store.query("SELECT count(*) FROM tickets WHERE is_spam")[0][0] == counts["spam"]
    assert store.query("SELECT count(*) FROM tickets WHERE is_deleted")[0][0] == counts["deleted"]
    hold = [t for t in world.tickets if t.status == "hold" and not t.is_deleted]
    for t in hold:
        assert store.query("SELECT status FROM tickets WHERE external_id=?", (str(t.id),))[0][0] == "Waiting on Third Party"
    schedule = store.query("SELECT tz, intervals, holidays, is_default FROM schedules")
    assert [tuple(r) for r in schedule] == [("Europe/Berlin", "[[0,540,1020],[1,540,1020],[2,540,1020],[3,540,1020],[4,540,1020]]", "[]", 1)]
    standard = store.query("SELECT targets FROM sla_policies WHERE title='Standard'")[0][0]
    assert '{"metric":"first_reply_time","priority":"urgent","minutes":60.0,"business_hours":true}' in standard
    assert {r[0] for r in store.query("SELECT tier FROM organizations")} <= {"Basic", "Premium", "Enterprise"}


def test_status_events_follow_each_tickets_history(sim: FreshdeskSim, store: Store, world: World) -> None:
    """No status history API: events come from `stats`. For every live ticket the last event
    lands in its current status, and a resolved ticket has its (latest) resolution time."""
    assert pull(sim, store).status == "success"
    events: dict[str, list[tuple[str, str]]] = {}
    for r in store.query("SELECT ticket_id, at, to_category FROM ticket_status_events ORDER BY ticket_id, at, rowid"):
        events.setdefault(r[0], []).append((r[1], r[2]))
    for t in world.tickets:
        if t.is_spam or t.is_deleted:
            assert str(t.id) not in events
            continue
        chain = events[str(t.id)]
        assert chain[0] == (ts(t.created_at), "open")
        assert chain[-1][1] == CATEGORY[t.status]
        last_resolution = None
        previous = None
        for u in t.updates:
            if "status" in u.changes:
                new = u.changes["status"][1]
                if new in ("solved", "closed") and previous not in ("solved", "closed"):
                    last_resolution = ts(u.at)
                previous = new
        if t.status in ("solved", "closed"):
            assert (last_resolution, "resolved") in chain


def test_hand_checked_ticket_life(sim: FreshdeskSim, store: Store, world: World) -> None:
    """One ticket: portal request, agent reply (pending), portal answer, public note, solved,
    reopened by email, solved, closed by automation — checked value by value."""
    t0 = world.now + timedelta(hours=1)
    customer = world.customers[0]
    agent = next(a for a in world.agents if not a.is_bot and a.role == "agent")
    ticket = world.add_ticket(customer.id, t0, subject="Invoice", channel="web", assignee_id=agent.id)
    reply = world.add_comment(ticket.id, agent.id, True, t0 + timedelta(minutes=30), status="pending")
    answer = world.add_comment(ticket.id, customer.id, True, t0 + timedelta(hours=2))  # via the portal
    note = world.add_comment(ticket.id, agent.id, True, t0 + timedelta(hours=3), status="solved")
    reopen = world.add_comment(ticket.id, customer.id, True, t0 + timedelta(hours=5), via="email")
    world.set_status(ticket.id, "solved", t0 + timedelta(hours=6), agent.id)
    world.set_status(ticket.id, "closed", t0 + timedelta(days=4), SYSTEM_USER_ID)
    sim.public_notes.add(note.id)

    assert pull(sim, store).status == "success"
    messages = {r[0]: tuple(r[1:]) for r in store.query(
        "SELECT external_id, author_role, is_public, via FROM messages WHERE ticket_id=? ORDER BY created_at", (str(ticket.id),))}  # fmt: skip
    assert messages == {
        f"{ticket.id}:description": ("customer", 1, "description"),
        str(reply.id): ("agent", 1, "reply"),
        str(answer.id): ("customer", 1, "reply"),  # incoming=false (portal), still the customer
        str(note.id): ("agent", 0, "note"),  # a public note is not a reply by default
        str(reopen.id): ("customer", 1, "reply"),
    }
    events = [tuple(r) for r in store.query(
        "SELECT external_id, from_category, to_category, is_synthetic FROM ticket_status_events WHERE ticket_id=? ORDER BY at",
        (str(ticket.id),))]  # fmt: skip
    unix = lambda d: int(d.timestamp())  # noqa: E731
    assert events == [
        (f"{ticket.id}:created:{unix(t0)}", None, "open", 1),
        (f"{ticket.id}:reopened:{unix(t0 + timedelta(hours=5))}", "resolved", "open", 1),
        (f"{ticket.id}:resolved:{unix(t0 + timedelta(hours=6))}", "open", "resolved", 1),
        (f"{ticket.id}:closed:{unix(t0 + timedelta(days=4))}", "resolved", "closed", 1),
    ]
    # a rerun re-reads nothing and duplicates nothing; with public notes counted they turn public
    before = store.count("ticket_status_events")
    assert pull(sim, store).rows_written == 0
    store.clear_state("freshdesk")
    pull(sim, store, count_public_notes_as_replies=True)
    assert store.query("SELECT is_public FROM messages WHERE external_id=?", (str(note.id),))[0][0] == 1
    assert store.count("ticket_status_events") == before


def test_social_sources_are_configurable(sim: FreshdeskSim, store: Store, world: World) -> None:
    whatsapp = [t for t in world.tickets if t.channel == "whatsapp" and not t.is_outbound]
    assert whatsapp
    pull(sim, store)  # default: messaging apps are social (docs/kpis.md), WhatsApp included
    social = {r[0] for r in store.query("SELECT external_id FROM tickets WHERE is_social")}
    assert {str(t.id) for t in whatsapp} <= social
    store.clear_state("freshdesk")
    pull(sim, store, social_sources=[5, 6, 17])  # WhatsApp left out: it keeps its own channel
    assert {r[0] for r in store.query("SELECT DISTINCT raw_channel FROM tickets WHERE channel='messaging'")} == {"whatsapp"}
    social = {r[0] for r in store.query("SELECT external_id FROM tickets WHERE is_social")}
    assert not {str(t.id) for t in whatsapp} & social


# -- incremental ------------------------------------------------------------------------------
def test_second_pull_costs_one_request_per_stream_and_writes_nothing(sim: FreshdeskSim, store: Store) -> None:
    assert pull(sim, store).status == "success"
    sim.clear_log()
    run = pull(sim, store)
    assert run.status == "success" and run.rows_written == 0
    per_stream = {s.name: s.requests for s in run.streams}
    # tickets also reads the ticket-field labels; time entries re-read a 7-day lookback
    assert per_stream == {"agents": 1, "contacts": 1, "groups": 1, "companies": 1, "business_hours": 1,
                          "sla_policies": 1, "tickets": 2, "spam_tickets": 1, "deleted_tickets": 1,
                          "satisfaction_ratings": 1, "time_entries": 1}  # fmt: skip
    assert sim.request_count(r"/conversations$") == 0


def test_incremental_changes_arrive_with_one_conversation_call_per_changed_ticket(
    sim: FreshdeskSim, store: Store, world: World
) -> None:
    assert pull(sim, store).status == "success"
    at = world.now + timedelta(minutes=5)
    customer = world.customers[3]
    agent = next(a for a in world.agents if not a.is_bot)
    new = world.add_ticket(customer.id, at, subject="New!", channel="email")
    open_ticket = next(t for t in world.tickets if t.status in ("open", "pending") and not t.is_spam and not t.is_deleted)
    reply = world.add_comment(open_ticket.id, agent.id, True, at + timedelta(minutes=1), status="solved")
    rated = max((t for t in world.tickets if t.rating and not t.is_deleted and t is not open_ticket),
                key=lambda t: t.rating.created_at)  # type: ignore[union-attr]
    world.rate(rated.id, -3, "Changed my mind", max(at, rated.generated_at) + timedelta(minutes=2))
    victim = next(t for t in world.tickets if t.status == "closed" and not t.is_deleted and t is not rated)
    world.delete_ticket(victim.id, at + timedelta(minutes=3))
    sim.clear_log()

    run = pull(sim, store)
    assert run.status == "success"
    assert_store_equals_world(store, world)
    assert store.query("SELECT status_category FROM tickets WHERE external_id=?", (str(open_ticket.id),))[0][0] == "resolved"
    assert store.query("SELECT author_role FROM messages WHERE external_id=?", (str(reply.id),))[0][0] == "agent"
    assert tuple(store.query("SELECT raw_value, sentiment FROM ratings WHERE external_id=?", (str(rated.rating.id),))[0]) == ("-103", -1)
    assert store.query("SELECT is_deleted FROM tickets WHERE external_id=?", (str(victim.id),))[0][0] == 1
    # conversations only of tickets whose updated_at moved (not of the deleted one)
    fetched = {r.path.split("/")[4] for r in sim.request_log() if r.path.endswith("/conversations")}
    assert fetched == {str(new.id), str(open_ticket.id), str(rated.id)}


def test_a_store_synced_by_the_earlier_connector_continues_without_a_full_re_read(
    sim: FreshdeskSim, store: Store, world: World
) -> None:
    """States in the format the pre-SDK connector wrote (tickets `{since, seen}`, windowed lists
    `{since}`) are continued: the ticket lists resume at their second minus the seen ids, the
    windowed lists at their time minus the lookback."""
    live = sorted((t for t in world.tickets if not t.is_spam and not t.is_deleted), key=lambda t: (t.updated_at, t.id))
    mark = live[len(live) // 2].updated_at
    at_mark = [t for t in live if t.updated_at == mark]
    seen = sorted(str(t.id) for t in at_mark[:1])  # one ticket at the mark already delivered
    late = world.now - timedelta(days=3)
    old_states = {
        "tickets": {"since": ts(mark), "seen": seen},
        "spam_tickets": {"since": ts(world.now), "seen": []},
        "deleted_tickets": {"since": ts(world.now), "seen": []},
        "contacts": {"since": ts(late)},
        "satisfaction_ratings": {"since": ts(late)},
        "time_entries": {"since": ts(late)},
    }
    for stream, state in old_states.items():
        store.write_batch("freshdesk", stream, [], state)
    sim.clear_log()
    assert pull(sim, store).status == "success"
    rest = {str(t.id) for t in live if t.updated_at >= mark} - set(seen)
    fetched = {r.path.split("/")[4] for r in sim.request_log() if r.path.endswith("/conversations")}
    assert fetched == rest and len(rest) < len(live) // 2 + len(at_mark)
    assert {r[0] for r in store.query("SELECT external_id FROM tickets")} == rest
    first = {r.path: r.query for r in reversed(sim.request_log())}  # the first request of each path
    assert first["/api/v2/tickets"]["updated_since"] == [ts(mark)]
    assert first["/api/v2/contacts"]["_updated_since"] == [ts(late)]
    assert first["/api/v2/surveys/satisfaction_ratings"]["created_since"] == [ts(late - timedelta(days=14))]
    assert first["/api/v2/time_entries"]["executed_after"] == [ts(late - timedelta(days=7))]
    assert store.get_state("freshdesk", "tickets") == {
        "since": ts(live[-1].updated_at), "seen": sorted(str(t.id) for t in live if t.updated_at == live[-1].updated_at)
    }


def test_first_sync_reads_tickets_older_than_the_30_day_default_window(store: Store) -> None:
    """Without `updated_since` the list holds only tickets created in the last 30 days: a
    first sync without start_date sends it anyway, from 2000 on."""
    world = make_world(days=45, per_day=4)
    assert min(t.created_at for t in world.tickets) < world.now - timedelta(days=31)
    with FreshdeskSim(world, api_key=KEY) as sim:
        assert pull(sim, store).status == "success"
        lists = [r.query for r in sim.request_log() if r.path == "/api/v2/tickets"]
    assert lists[0]["updated_since"] == ["2000-01-01T00:00:00Z"] and all("updated_since" in q for q in lists)
    assert_store_equals_world(store, world)


def test_account_larger_than_the_page_cap_syncs_exactly(store: Store) -> None:
    world = make_world(days=30, per_day=10)
    assert len(world.tickets) > 2 * 100
    with FreshdeskSim(world, api_key=KEY, page_cap=2) as sim:
        assert pull(sim, store).status == "success"
        assert sim.request_count("/api/v2/tickets$", status=400) == 0
        assert_store_equals_world(store, world)


def test_more_tickets_at_one_second_than_the_cap_fails_clearly(store: Store) -> None:
    world = make_world(days=2, per_day=5)
    at = world.now + timedelta(hours=1)
    for _ in range(230):
        world.add_ticket(world.customers[0].id, at, subject="bulk import")
    with FreshdeskSim(world, api_key=KEY, page_cap=2) as sim:
        run = pull(sim, store, social_sources=[5])
    tickets = next(s for s in run.streams if s.name == "tickets")
    assert run.status == "failed" and tickets.status == "failed"
    assert "more than 2 pages of tickets share updated_at" in (tickets.error or "")


# -- plans, limits, faults --------------------------------------------------------------------
def test_surveys_missing_from_the_plan_is_a_notice_not_a_failure(world: World, store: Store) -> None:
    with FreshdeskSim(world, api_key=KEY, plan=Plan("free-unthrottled", 10**6, 10**6, 10**6, surveys=False)) as sim:
        run = pull(sim, store)
    assert run.status == "success"
    ratings = next(s for s in run.streams if s.name == "satisfaction_ratings")
    assert ratings.status == "success" and ratings.records == 0
    assert any("surveys are not available" in n for n in run.notices)
    assert store.count("tickets") == len(world.tickets)


def test_429_storms_and_5xx_bursts_are_survived(store: Store) -> None:
    world = make_world(days=15, per_day=10)
    scale = 3000.0  # Retry-After: 30 costs 10 ms
    with FreshdeskSim(world, api_key=KEY, clock=SimClock(world.now, scale=scale)) as sim:
        sim.faults.fail_next(6, status=429, headers={"Retry-After": "30"}, path="/conversations$")
        sim.faults.fail_next(3, status=503, path="/api/v2/tickets$")
        sim.faults.reset_next(2, path="/conversations$")
        sim.faults.truncate_next(1, path="/api/v2/contacts$")
        sim.faults.random(0.05, seed=3, statuses=(500, 502, 503, 504), path="/conversations$")
        run = pull(sim, store, time_scale=scale)
    assert run.status == "success", run.error
    assert_store_equals_world(store, world)


def test_the_client_paces_itself_by_the_credit_headers(store: Store) -> None:
    """A tight plan: 40 credits a minute and a ticket list capped at 1 a minute (the cap has no
    header). The pull ends exact, with at most a couple of 429s (one to learn the window, one
    to discover the list cap), in about the time the budget allows."""
    world = make_world(days=15, per_day=10)  # two ticket pages, then the spam and deleted lists
    tight = Plan("tight", per_minute=40, ticket_list=1, contacts_list=40)
    scale = 120.0  # a credit every 1.5 s simulated = 12 ms real: the limit sets the pace, not the machine
    clock = SimClock(world.now, scale=scale)
    with FreshdeskSim(world, api_key=KEY, plan=tight, clock=clock) as sim:
        started = clock.timestamp()
        run = pull(sim, store, time_scale=scale)
        minutes = (clock.timestamp() - started) / 60
        limited = sim.request_count(status=429)
        credits = sim.credits_used
    assert run.status == "success", run.error
    assert_store_equals_world(store, world)
    assert limited <= 3, f"{limited} 429s: the client should pace by X-RateLimit-Remaining"
    bound = credits / 40
    assert bound > 2 and minutes < 1.6 * bound + 1, (minutes, bound)
