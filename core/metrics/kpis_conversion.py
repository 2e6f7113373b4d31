"""`converted_tickets` (§A.16): registered only when the conversion module is installed.

The matching of tickets to later orders is `conversion.converted_tickets` (its own definition
and tests); this module only maps its rows onto the engine's buckets and groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from .query import Context, Query
from .registry import Cells, Need, kpi

try:
    from .conversion import MATCHABLE_ORDER
    from .conversion import converted_tickets as _converted
except ImportError:  # the shop/orders work is not installed: no such KPI
    _converted = None

#: Engine dimension → conversion's group_by name and the row fields that make our group key.
_DIMS = {"agent": ("agent", ("source", "agent_id")), "group": ("group", ("source", "group_id")),
         "channel": ("channel", ("channel",)), "source": ("source", ("source",))}
_GRAINS = ("day", "week", "month", "quarter")


def _empty() -> dict[str, Any]:
    return {"value": None, "count": 0, "converted": 0, "tickets_with_email": 0, "tickets_with_phone": 0, "orders": 0,
            "matched_by": {}, "revenue": {}}


@contextmanager
def _automatic_indexes(q: Query) -> Iterator[None]:
    """The conversion query is written for SQLite's automatic indexes; the engine turns them off."""
    q.conn.execute("PRAGMA automatic_index = ON")
    try:
        yield
    finally:
        q.conn.execute("PRAGMA automatic_index = OFF")


def _key(row: dict[str, Any], fields: tuple[str, ...]) -> str:
    values = ["" if row.get(f) is None else str(row[f]) for f in fields]
    return "|".join(values) if len(values) > 1 else values[0]


def _cell(row: dict[str, Any]) -> dict[str, Any]:
    rate = row.get("conversion_rate")
    return {
        "value": None if rate is None else round(rate, 6), "count": row["tickets"], "converted": row["converted"],
        "tickets_with_email": row["tickets_with_email"], "tickets_with_phone": row["tickets_with_phone"],
        "orders": row["orders"], "matched_by": row["matched_by"], "revenue": row["revenue"],
    }


def _notes(ctx: Context) -> list[str]:
    """Which keys link tickets to orders, and how numbers without a country code are read."""
    country = ctx.settings.default_phone_country
    if country:
        return [f"matched by e-mail or phone (numbers written without a country code read as +{country}); "
                "matched_by counts the credited orders per key"]
    return ["matched by e-mail or phone; numbers written without a country code only match each other — set "
            "[metrics] default_phone_country (e.g. \"49\") so that \"030 1234567\" meets \"+49 30 1234567\""]


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


if _converted is not None:
    converter = _converted

    @kpi(
        "converted_tickets",
        unit="fraction",
        definition="Customer tickets followed within N days by an order of the same customer (same e-mail or phone) ÷ "
        "customer tickets created (each order credited to the latest ticket before it); revenue per currency.",
        data="tickets with requester emails or phones, shop orders",
        empty=_empty,
        better="higher",
        params=("since", "until", "period", "by"),
        dims=tuple(_DIMS),
        needs=(Need("orders", MATCHABLE_ORDER, "no orders synced that could convert a ticket (a sale with a customer "
                    "email, phone or id): add a shop source such as shopify or woocommerce", scope="any"),),
        notes=_notes,
    )
    def converted_tickets(q: Query) -> Cells:
        settings, window = q.settings, q.window
        if not q.ctx.scalar(f"SELECT EXISTS (SELECT 1 FROM orders WHERE {MATCHABLE_ORDER})"):
            return {}  # nothing to match: skip the ticket scan (the need above says why)
        group, fields = _DIMS[q.by] if q.by else (None, ())
        common = {"window_days": settings.conversion_window_days, "tz": settings.timezone,
                  "default_phone_country": settings.default_phone_country}
        cells: Cells = {}
        with _automatic_indexes(q):
            if window.period in _GRAINS:
                labels = {b.label: i for i, b in enumerate(window.buckets)}
                by = [g for g in (group, window.period) if g]
                for row in converter(q.ctx.store, _utc(window.since), _utc(window.until), group_by=by, **common):
                    index = labels.get(str(row.get("period")))
                    if index is not None:
                        cells[(index, _key(row, fields) if fields else "")] = _cell(row)
                return cells
            for index, bucket in enumerate(window.buckets):
                for row in converter(q.ctx.store, _utc(bucket.lo), _utc(bucket.hi), group_by=group, **common):
                    cells[(index, _key(row, fields) if fields else "")] = _cell(row)
        return cells
