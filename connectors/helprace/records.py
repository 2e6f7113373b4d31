"""A record kind the canonical models do not have yet: the tombstone of a vanished row.

Helprace's API cannot say that a ticket was deleted; the ticket just stops being listed (and
`GET /tickets/{id}` answers 404). The connector then yields a `Tombstone`; the store writes it to
the `tombstones` table (migration 003) and a trigger flags the ticket row `is_deleted = 1` in the
same transaction, keeping the ticket's other columns and raw payload. Generic on purpose: move
it to core/models.py when another connector needs it.
"""

from __future__ import annotations

from typing import ClassVar

from kpisync.core.models import Id, Record, UtcDatetime


class Tombstone(Record):
    """`object_table` row `object_id` is no longer returned by the source (noticed at `vanished_at`)."""

    __table__: ClassVar[str] = "tombstones"
    __ticket_column__: ClassVar[str | None] = None

    object_table: str
    object_id: Id
    vanished_at: UtcDatetime
    reason: str | None = None

    @classmethod
    def of(cls, table: str, object_id: str, vanished_at: object, reason: str | None = None) -> Tombstone:
        """The tombstone of `table` row `object_id`; its key is "<table>:<id>"."""
        return cls(
            external_id=f"{table}:{object_id}", object_table=table, object_id=object_id,
            vanished_at=vanished_at, reason=reason,
        )
