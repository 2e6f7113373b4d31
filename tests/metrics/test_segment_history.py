"""Customer segments as of ticket creation (kpi-definitions item 20, migration 007).

Two syncs write the store the way connectors do (Store.write_batch of canonical records): the
first sees the organizations and requesters as they were, the second sees them changed. The
triggers of migration 007 record each observed value set; `--by segment` then takes the value
valid when each ticket was created. All times are January 2026, UTC; every count and mean below
is worked out by hand from the tables in `_store`.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import MetricsSettings
from kpisync.core.models import Organization, User
from kpisync.core.phone import normalise_phone
from kpisync.core.store import Store, _migrations, _split_sql

WINDOW = {"since": "2026-01-01", "until": "2026-02-01", "now": "2026-02-01"}
T = "2026-01-10 00:00"  # o1 moves from "free" to "enterprise"


def _org(oid: str, tier: str | None, attributes: dict[str, Any] | None = None, updated: str | None = None,
         name: str | None = None) -> Organization:
    return Organization(external_id=oid, name=name or f"Org {oid}", tier=tier, attributes=attributes,
                        updated_at=t(updated) if updated else None)


def _customer(uid: str, segment: dict[str, Any] | None, updated: str | None = None) -> User:
    return User(external_id=uid, name=f"Customer {uid}", role="customer", segment=segment,
                updated_at=t(updated) if updated else None)


FIRST_SYNC = [
    _org("o1", "free", {"plan": "basic", "country": "DE"}, "2025-12-01 00:00"),
    _org("o3", "pro", {"plan": "plus", "country": "DE"}, "2025-12-01 00:00"),
    _org("o4", "free", None, "2025-12-01 00:00"),
    _customer("c1", {"plan": "gold"}, "2025-12-01 00:00"),
    _customer("c2", None, "2025-12-01 00:00"),
]
SECOND_SYNC = [
    _org("o1", "enterprise", {"plan": "basic", "country": "DE"}, T),  # tier changes at T
    _org("o2", "pro", None, "2026-01-14 00:00"),  # first seen now, after its ticket 4
    _org("o3", "pro", {"plan": "plus", "country": "FR"}, "2026-01-11 00:00"),  # only the country changes
    _customer("c1", {"plan": "silver"}, "2026-01-09 00:00"),
    _customer("c2", {"plan": "gold"}, "2026-01-13 00:00"),  # first value, after being seen without one
]

# ticket, created, first reply, organization, requester
TICKETS = (
    ("1", "2026-01-05 09:00", "2026-01-05 09:30", "o1", "c1"),  # 1800 s
    ("2", T, "2026-01-10 01:00", "o1", "c1"),  # 3600 s, created exactly at T
    ("3", "2026-01-12 09:00", "2026-01-12 11:00", "o1", "c2"),  # 7200 s
    ("4", "2026-01-05 10:00", "2026-01-05 14:00", "o2", "c2"),  # 14400 s
    ("5", "2026-01-06 09:00", "2026-01-06 10:00", "o3", "c1"),  # 3600 s
    ("6", "2026-01-15 09:00", "2026-01-15 09:15", "o3", "c2"),  # 900 s
    ("7", "2026-01-08 09:00", "2026-01-08 09:10", "o404", "c3"),  # 600 s; neither exists
    ("8", "2026-01-08 10:00", "2026-01-08 10:20", "o4", "c1"),  # 1200 s; o4 gets deleted
)


def _store(path: Path) -> Store:
    store = Store(path)
    store.write_batch("zd", "organizations", FIRST_SYNC, None)
    w = World(store)
    w.agent("a1", "Ann")
    for tid, created, reply, org, requester in TICKETS:
        w.ticket(tid, created, "open", requester=requester, assignee="a1", organization_id=org)
        w.msg(tid, created, "customer", requester)
        w.msg(tid, reply, "agent", "a1")
    w.commit()
    store.write_batch("zd", "organizations", SECOND_SYNC, None)
    store.conn.execute("DELETE FROM organizations WHERE source = 'zd' AND external_id = 'o4'")
    return store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = _store(tmp_path / "kpi.db")
    yield s
    s.close()


def _by_segment(store: Store, kpi: str, spec: str, field: str = "value") -> dict[str, Any]:
    rows = evaluate(store, kpi, by="segment", settings=MetricsSettings(segment=spec), **WINDOW).rows
    return {r["group"]: r[field] for r in rows}


def _history(store: Store, owner: str, oid: str) -> list[tuple[int, str | None, str | None]]:
    return [tuple(r) for r in store.conn.execute(
        "SELECT valid_from, tier, attributes FROM attribute_history WHERE source = 'zd' AND owner = ? "
        "AND external_id = ? ORDER BY valid_from", (owner, oid))]


def test_tier_taken_as_of_ticket_creation(store: Store) -> None:
    # o1: ticket 1 before T is "free", tickets 2 (at T) and 3 after it "enterprise".
    # o2 first seen after its ticket 4: the first-seen "pro" applies. o3 stays "pro" (5, 6).
    # 7: organization unknown to the store; 8: its organization was deleted.
    assert _by_segment(store, "ticket_volume", "organization.tier") == {"free": 1, "enterprise": 2, "pro": 3, "unknown": 2}
    assert _by_segment(store, "first_response_time", "organization.tier") == {
        "free": 1800.0,                     # ticket 1
        "enterprise": 5400.0,               # (3600 + 7200) / 2
        "pro": 6300.0,                      # (14400 + 3600 + 900) / 3
        "unknown": 900.0,                   # (600 + 1200) / 2
    }


def test_changed_attributes_json_keeps_an_unchanged_attribute(store: Store) -> None:
    # o3's attributes changed (country DE → FR on 01-11) but not its plan: tickets 5 and 6 stay "plus".
    assert _by_segment(store, "ticket_volume", "organization.plan") == {"basic": 3, "plus": 2, "unknown": 3}
    # ... while the attribute that did change splits them: ticket 5 (01-06) DE, ticket 6 (01-15) FR.
    assert _by_segment(store, "ticket_volume", "organization.country") == {"DE": 4, "FR": 1, "unknown": 3}
    assert [(v, json) for v, _, json in _history(store, "organization", "o3")] == [
        (0, '{"plan":"plus","country":"DE"}'), (epoch("2026-01-11 00:00"), '{"plan":"plus","country":"FR"}')]


def test_requester_segment_taken_as_of_ticket_creation(store: Store) -> None:
    # c1 gold until 01-09, silver after: tickets 1 (01-05), 5 (01-06), 8 (01-08) gold; 2 (01-10) silver.
    # c2 was seen without a segment, gold from 01-13: tickets 3 (01-12) and 4 unknown, 6 (01-15) gold.
    # c3 (ticket 7) is not in the store.
    assert _by_segment(store, "ticket_volume", "requester.plan") == {"gold": 4, "silver": 1, "unknown": 3}
    assert _by_segment(store, "first_response_time", "requester.plan") == {
        "gold": 1875.0,                     # (1800 + 3600 + 1200 + 900) / 4
        "silver": 3600.0,                   # ticket 2
        "unknown": 7400.0,                  # (7200 + 14400 + 600) / 3
    }
    assert _history(store, "user", "c2") == [(0, None, None), (epoch("2026-01-13 00:00"), None, '{"plan":"gold"}')]


def test_history_rows_per_observed_change(store: Store) -> None:
    assert _history(store, "organization", "o1") == [
        (0, "free", '{"plan":"basic","country":"DE"}'), (epoch(T), "enterprise", '{"plan":"basic","country":"DE"}')]
    assert _history(store, "organization", "o2") == [(0, "pro", None)]  # first seen: applies to all earlier tickets
    assert _history(store, "organization", "o4") == []  # deleted with its row
    before = store.count("attribute_history")
    store.write_batch("zd", "organizations", SECOND_SYNC, None)  # a re-read of unchanged data
    store.write_batch("zd", "organizations", [_org("o1", "enterprise", {"plan": "basic", "country": "DE"}, "2026-01-20 00:00",
                                                   name="Renamed")], None)  # a change of another column
    assert store.count("attribute_history") == before


def test_change_time_falls_back_to_synced_at_and_never_goes_back(tmp_path: Path) -> None:
    with Store(tmp_path / "kpi.db") as store:
        store.write_batch("zd", "organizations", [_org("o9", "free")], None)
        store.write_batch("zd", "organizations", [_org("o9", "pro")], None)  # no vendor updated_at
        synced = store.conn.execute("SELECT synced_at FROM organizations WHERE external_id = 'o9'").fetchone()[0]
        at = int(datetime.fromisoformat(synced.replace("Z", "+00:00")).timestamp())
        assert _history(store, "organization", "o9") == [(0, "free", None), (at, "pro", None)]
        # A vendor time older than the latest row cannot rewrite what was already observed:
        # the new value starts one second after it, so the latest row stays the current value.
        store.write_batch("zd", "organizations", [_org("o9", "enterprise", updated="2020-01-01 00:00")], None)
        assert _history(store, "organization", "o9")[-1] == (at + 1, "enterprise", None)


def test_migration_backfills_existing_rows_as_first_seen(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("kpisync_phone_norm", 1, normalise_phone, deterministic=True)
    for version, sql in _migrations():  # a store as it was before migration 7
        if version < 7:
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO organizations (source, external_id, tier, attributes, updated_at, synced_at) VALUES "
                 "('zd', 'o1', 'free', '{\"plan\":\"basic\"}', '2025-06-01T00:00:00Z', '2025-06-02T00:00:00Z'), "
                 "('zd', 'o2', NULL, NULL, NULL, '2025-06-02T00:00:00Z')")
    conn.execute("INSERT INTO users (source, external_id, role, segment, synced_at) VALUES "
                 "('zd', 'c1', 'customer', '{\"plan\":\"gold\"}', '2025-06-02T00:00:00Z'), "
                 "('zd', 'c2', 'customer', NULL, '2025-06-02T00:00:00Z')")
    conn.close()
    with Store(path) as store:
        assert store.version >= 7
        assert [tuple(r) for r in store.conn.execute(
            "SELECT owner, external_id, valid_from, tier, attributes FROM attribute_history ORDER BY 1, 2")] == [
            ("organization", "o1", 0, "free", '{"plan":"basic"}'), ("user", "c1", 0, None, '{"plan":"gold"}')]
        # o2 had no value: its first change records the empty value from 0 and the tier from its time.
        store.write_batch("zd", "organizations", [_org("o2", "pro", updated="2026-01-03 00:00")], None)
        assert _history(store, "organization", "o2") == [(0, None, None), (epoch("2026-01-03 00:00"), "pro", None)]


def test_one_segment_across_help_desks_whatever_their_case(tmp_path: Path) -> None:
    """Freshdesk's account tier says "Enterprise", a Zendesk tier field "enterprise": one segment."""
    store = Store(tmp_path / "kpi.db")
    store.write_batch("zd", "organizations", [_org("o1", "enterprise"), _org("o2", "free")], None)
    store.write_batch("fd", "organizations", [_org("o1", " Enterprise "), _org("o9", "FREE")], None)
    for source, tickets in (("zd", (("1", "o1"), ("2", "o2"))), ("fd", (("1", "o1"), ("2", "o9"), ("3", "o404")))):
        w = World(store, source)
        for tid, org in tickets:
            w.ticket(tid, "2026-01-06 09:00", "open", organization_id=org)
        w.commit()
    assert _by_segment(store, "ticket_volume", "organization.tier") == {"enterprise": 2, "free": 2, "unknown": 1}
    store.close()
