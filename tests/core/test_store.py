"""The store: idempotent upserts, state written with its data, changed-ticket tracking."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kpisync.core.errors import StoreError
from kpisync.core.models import Message, Ticket, User
from kpisync.core.store import Store


def _ticket(i: int, subject: str = "s") -> Ticket:
    return Ticket(external_id=i, created_at="2026-01-05T10:00:00Z", status="open", subject=subject)


def test_upsert_is_keyed_by_source_and_external_id(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.write_batch("zendesk", "tickets", [_ticket(1), _ticket(2)], {"cursor": "a"}) == 2
        assert store.write_batch("zendesk", "tickets", [_ticket(1), _ticket(2)], {"cursor": "a"}) == 0
        assert store.write_batch("zendesk_eu", "tickets", [_ticket(1)], None) == 1
        assert store.count("tickets") == 3
        assert store.write_batch("zendesk", "tickets", [_ticket(1, "changed")], {"cursor": "b"}) == 1
        assert store.get_state("zendesk", "tickets") == {"cursor": "b"}
        row = store.query("SELECT subject, created_at FROM tickets WHERE source='zendesk' AND external_id='1'")[0]
        assert tuple(row) == ("changed", "2026-01-05T10:00:00Z")


def test_unchanged_rows_do_not_touch_synced_at_or_mark_tickets(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("zd", "tickets", [_ticket(1)], None)
        store.conn.execute("DELETE FROM changed_tickets")
        store.write_batch("zd", "tickets", [_ticket(1)], None)
        assert store.count("changed_tickets") == 0
        message = Message(external_id=9, ticket_id=1, created_at="2026-01-05T11:00:00Z", author_role="agent", is_public=True)
        store.write_batch("zd", "events", [message], None)
        assert [tuple(r) for r in store.query("SELECT * FROM changed_tickets")] == [("zd", "1")]


def test_a_failing_batch_leaves_neither_rows_nor_state(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("zd", "tickets", [_ticket(1)], {"cursor": "a"})
        store.conn.execute("CREATE TRIGGER boom BEFORE INSERT ON tickets WHEN NEW.external_id = '3' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        with pytest.raises(StoreError):
            store.write_batch("zd", "tickets", [_ticket(2), _ticket(3)], {"cursor": "b"})
        assert store.get_state("zd", "tickets") == {"cursor": "a"}
        assert store.count("tickets") == 1


def test_emails_are_normalised_for_joins(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("zd", "users", [User(external_id=1, email="  Ann@Example.COM ", role="customer")], None)
        assert store.query("SELECT email_norm FROM users")[0][0] == "ann@example.com"


def test_store_is_readable_by_plain_sqlite_while_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.write_batch("zd", "tickets", [_ticket(1)], None)
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT count(*) FROM tickets").fetchone()[0] == 1
        other.close()


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "s.db")


def test_every_model_field_has_a_column(tmp_path: Path) -> None:
    from kpisync.core.models import RECORD_TYPES

    with Store(tmp_path / "s.db") as store:
        for record_type in RECORD_TYPES:
            columns = {c.name for c in store.db[record_type.__table__].columns}
            expected = {"source", "synced_at", *record_type.model_fields, *record_type.model_computed_fields}
            assert columns == expected, record_type.__table__


def test_a_run_whose_process_died_shows_as_killed(tmp_path: Path) -> None:
    from kpisync.core.lock import SourceLock
    from kpisync.core.status import source_status

    with Store(tmp_path / "s.db") as store:
        store.start_run("zd", "zendesk", full_refresh=False)
        with SourceLock(store.path, "zd"):  # a live sync holds the lock: still running
            assert source_status(store)[0]["last_run"]["status"] == "running"
        assert source_status(store)[0]["last_run"]["status"] == "killed"  # lock free: process gone
