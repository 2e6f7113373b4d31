"""Migration 003: a tombstone flags its ticket deleted in the same transaction, keeping the row."""

from __future__ import annotations

from pathlib import Path

from kpisync.connectors.helprace.records import Tombstone
from kpisync.core.models import Ticket
from kpisync.core.store import Store


def ticket(status: str = "solved", category: str = "resolved") -> Ticket:
    return Ticket(external_id="42", created_at="2024-03-01T10:00:00Z", status=status,
                  status_category=category, subject="Invoice", raw={"id": 42, "subject": "Invoice"})


def test_tombstone_flags_the_ticket_and_keeps_its_other_columns(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("helprace", "tickets", [ticket()], None)
        store.conn.execute("DELETE FROM changed_tickets")
        written = store.write_batch(
            "helprace", "tickets", [Tombstone.of("tickets", "42", "2024-03-05T08:00:00Z", "GET /tickets/42: 404")], None
        )
        assert written == 1
        row = store.query("SELECT * FROM tickets WHERE external_id = '42'")[0]
        assert (row["is_deleted"], row["status_category"], row["status"], row["subject"]) == (1, "deleted", "solved", "Invoice")
        assert '"subject":"Invoice"' in row["raw"]  # the vendor payload survives
        assert store.query("SELECT ticket_id FROM changed_tickets")[0][0] == "42"  # facts get refreshed
        stone = store.query("SELECT * FROM tombstones")[0]
        assert (stone["external_id"], stone["object_table"], stone["vanished_at"]) == ("tickets:42", "tickets", "2024-03-05T08:00:00Z")


def test_a_ticket_that_comes_back_is_undeleted_by_its_next_upsert(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("helprace", "tickets", [ticket()], None)
        store.write_batch("helprace", "tickets", [Tombstone.of("tickets", "42", "2024-03-05T08:00:00Z")], None)
        store.write_batch("helprace", "tickets", [ticket("open", "open")], None)
        row = store.query("SELECT is_deleted, status_category FROM tickets")[0]
        assert tuple(row) == (0, "open")


def test_a_tombstone_of_an_unknown_row_or_another_source_changes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_batch("helprace", "tickets", [ticket()], None)
        store.write_batch("other", "tickets", [Tombstone.of("tickets", "42", "2024-03-05T08:00:00Z")], None)
        store.write_batch("helprace", "tickets", [Tombstone.of("tickets", "7", "2024-03-05T08:00:00Z")], None)
        assert tuple(store.query("SELECT is_deleted FROM tickets")[0]) == (0,)
        assert store.count("tombstones") == 2
