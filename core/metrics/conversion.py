"""Converted tickets: support conversations followed by a purchase of the same customer.

Definition (kpi-definitions §A.16, issue 8; Gorgias "converted ticket", see
shared/notes/freshdesk-helprace-social-orders-api.md §4.3):

* A ticket's *anchor* is its creation (default) or its first agent reply (public, not automated,
  not shared from another account). A first reply more than ``FIRST_REPLY_HORIZON_DAYS`` after
  creation does not anchor the ticket.
* An order is credited to the customer's ticket with the latest anchor strictly before the order
  (over every help-desk source in the store), if the order is at most ``window_days`` after
  that anchor: ``anchor < order.created_at <= anchor + window``. Each order goes to at most one
  ticket; a ticket is *converted* when it is credited at least one order.
* Customers match on the normalised email (trimmed, lower-cased: ``users.email_norm`` of the
  requester, ``orders.customer_email_norm``) or — with ``phone`` (the default) — on the
  normalised phone (``users.phone_norm``, ``orders.customer_phone_norm``; core/phone.py: digits,
  numbers written without a country code read in ``default_phone_country``, too short ones never
  match). An order with an email *and* a phone reaches the tickets of both keys and still goes
  to one ticket only: the latest anchored before it, whichever key found it (on the same ticket,
  the email is reported as the key). ``match="email_or_customer_id"`` also links an order to
  the emails of the shop customer's other orders (a customer who changed address, or checked
  out without one).
* Test orders, cancelled orders (``cancelled_at`` set) and statuses that are no sale
  (:data:`NOT_A_SALE`) are ignored. Fully refunded orders still convert, with zero revenue.
* Population: customer tickets — not deleted, spam, merged away or outbound — created in
  ``[since, until)``. Rate = converted ÷ those tickets. Tickets without a requester email or
  phone stay in the denominator; ``tickets_with_email`` and ``tickets_with_phone`` make the match
  coverage visible, and ``matched_by`` counts the credited orders per key (email, phone,
  customer_id).
* Revenue = Σ ``net_total`` (after refunds; ``total`` when unknown) per currency, summed exactly
  as decimals and never across currencies.

How it runs (all SQL, see bench/bench_conversion.py for 1M tickets × 1M orders): the tickets with
a requester email or phone go to a temp table (one row per ticket) with partial indexes on
(email, anchor) and (phone, anchor); each sale then finds "the latest ticket of this email /
this phone anchored before me" with one index seek per key it has (an as-of join), keeps the
later of the two (``max`` of two "anchor#tid" texts, so no GROUP BY), and the credited (order,
ticket) pairs go to a second temp table that the aggregates join. A running
``MAX() OVER (PARTITION BY email ORDER BY at)`` window over tickets ∪ orders gives the same
pairs, but sorting two million rows cost twice the CPU of the seeks. The per-sale seeks are
MATERIALIZED: flattened, SQLite ran them again for each use of their result (3.2 → 2.3 s of the
1M case). Measured with bench/bench_conversion.py on a shared 2-core box (30 % of the customers
with a phone, 2.5 % of the orders with only a phone): 1M tickets × 1M orders take 9.6–11.7 s of
CPU per call (whole year, by agent, by month, customer-id matching; 7.8 s e-mail only), against
8.5–12.3 s for the e-mail-only code before phones on the same data without phones; 100k × 100k
take 0.5–0.8 s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ..phone import phone_key_sql
from ..store import Store
from ..timeutil import iso, to_utc

__all__ = [
    "FIRST_REPLY_HORIZON_DAYS",
    "GROUPINGS",
    "MATCHABLE_ORDER",
    "NOT_A_SALE",
    "converted_ticket_details",
    "converted_tickets",
]

Anchor = Literal["created", "first_reply"]
Match = Literal["email", "email_or_customer_id"]

#: Order statuses that are not a purchase (Shopify financial status, WooCommerce status).
NOT_A_SALE = ("cancelled", "voided", "failed", "trash", "checkout-draft", "expired", "draft")
#: Orders that can convert a ticket: a sale (not a test, not cancelled, not a status in
#: NOT_A_SALE) with something to match a customer on. SQL over the `orders` table, unaliased.
MATCHABLE_ORDER = f"""COALESCE(is_test, 0) = 0 AND cancelled_at IS NULL
    AND COALESCE(status, '') NOT IN ({", ".join(f"'{s}'" for s in NOT_A_SALE)})
    AND (customer_email_norm IS NOT NULL OR customer_phone_norm IS NOT NULL OR customer_id IS NOT NULL)"""
#: A first agent reply later than this after creation does not anchor the ticket.
FIRST_REPLY_HORIZON_DAYS = 30
#: group_by values: ticket dimensions and ticket-creation periods in the reporting time zone.
GROUPINGS = ("source", "agent", "group", "channel", "day", "week", "month", "quarter")
_TIME_GRAINS = ("day", "week", "month", "quarter")


def converted_tickets(
    store: Store,
    since: datetime | str,
    until: datetime | str,
    *,
    window_days: float = 5,
    anchor: Anchor = "created",
    match: Match = "email",
    phone: bool = True,
    default_phone_country: str | None = None,
    group_by: str | Sequence[str] | None = None,
    tz: str = "UTC",
    compare_previous: bool = False,
) -> list[dict[str, Any]]:
    """Converted-ticket KPIs of tickets created in ``[since, until)``, one dict per group.

    Each row: the group keys (``source``; ``agent_id``/``agent_name``; ``group_id``/``group_name``;
    ``channel``; ``period`` = local start date of the bucket in `tz`), then ``tickets``,
    ``tickets_with_email``, ``tickets_with_phone``, ``converted``, ``conversion_rate`` (None
    without tickets), ``orders`` (credited), ``matched_by`` ({key: credited orders}, keys email,
    phone, customer_id) and ``revenue`` ({currency: decimal text}). ``phone`` matches on phone
    numbers too; ``default_phone_country`` ("49") is the country of numbers written without
    one. With ``compare_previous`` each row
    also has ``previous`` (the same figures for the equally long period before ``since``, or
    None) and ``change`` (differences of ``converted`` and ``conversion_rate``).
    """
    groups = _groups(group_by)
    keys = _Keys(match, phone, default_phone_country)
    rows = _aggregate(store, _Period(since, until, window_days, anchor, keys), groups, tz)
    if not compare_previous:
        return rows
    start, end = _instant(since), _instant(until)
    previous = _aggregate(store, _Period(start - (end - start), start, window_days, anchor, keys), groups, tz)
    names = [name for name, _ in _key_sql(groups)]
    before = {tuple(r[k] for k in names if k not in _LABELS): r for r in previous}
    for row in rows:
        old = before.get(tuple(row[k] for k in names if k not in _LABELS))
        row["previous"] = {k: old[k] for k in _FIGURES} if old else None
        row["change"] = _change(row, old)
    return rows


def converted_ticket_details(
    store: Store,
    since: datetime | str,
    until: datetime | str,
    *,
    window_days: float = 5,
    anchor: Anchor = "created",
    match: Match = "email",
    phone: bool = True,
    default_phone_country: str | None = None,
    converted_only: bool = True,
) -> list[dict[str, Any]]:
    """Drill-down: the tickets created in ``[since, until)`` and the orders credited to each.

    Each dict: ``source``, ``ticket_id``, ``created_at``, ``anchor_at``, ``requester_email``,
    ``requester_phone`` (the phone's match key), ``agent_id``, ``group_id``, ``channel``,
    ``converted`` and ``orders`` (``source``, ``order_id``, ``created_at``, ``net_total``,
    ``currency``, ``hours_after`` the anchor, ``matched_by`` email/phone/customer_id), ordered by
    ticket creation.
    """
    period = _Period(since, until, window_days, anchor, _Keys(match, phone, default_phone_country))
    out: list[dict[str, Any]] = []
    with _prepared(store, period) as conn:
        rows = conn.execute(f"""
SELECT t.source, t.external_id, t.created_at, k.anchor, k.email, t.assignee_id, t.group_id, t.channel,
       o.source, o.external_id, o.created_at, COALESCE(o.net_total, o.total), o.currency, k.phone, c.kind
FROM tickets t
LEFT JOIN {_TK} k ON k.tid = t.rowid
{"JOIN" if converted_only else "LEFT JOIN"} {_CREDITED} c ON c.tid = t.rowid
LEFT JOIN orders o ON o.rowid = c.oid
WHERE {period.tickets_where}
ORDER BY t.created_at, t.source, t.external_id, o.created_at, o.external_id""", period.params).fetchall()
    for row in rows:
        if not out or (out[-1]["source"], out[-1]["ticket_id"]) != (row[0], row[1]):
            out.append({
                "source": row[0], "ticket_id": row[1], "created_at": row[2], "anchor_at": row[3],
                "requester_email": row[4], "requester_phone": row[13], "agent_id": row[5], "group_id": row[6],
                "channel": row[7], "converted": False, "orders": [],
            })  # fmt: skip
        if row[9] is not None:
            ticket = out[-1]
            ticket["converted"] = True
            lag = (_instant(row[10]) - _instant(row[3])).total_seconds() / 3600
            ticket["orders"].append({
                "source": row[8], "order_id": row[9], "created_at": row[10], "net_total": row[11],
                "currency": row[12], "hours_after": round(lag, 2), "matched_by": _KIND_NAMES[row[14]],
            })  # fmt: skip
    return out


# --------------------------------------------------------------------------- SQL

_TK = "temp.kpisync_conversion_tickets"
_CREDITED = "temp.kpisync_conversion_credited"
_LABELS = ("agent_name", "group_name")
_FIGURES = ("tickets", "tickets_with_email", "tickets_with_phone", "converted", "conversion_rate", "orders",
            "matched_by", "revenue")
#: Which key credited an order (`kind` of the credited pair); on a tie the higher kind is named.
_EMAIL, _PHONE, _CUSTOMER_ID = 3, 2, 1
_KIND_NAMES = {_EMAIL: "email", _PHONE: "phone", _CUSTOMER_ID: "customer_id"}
#: Each sale's seeks run once: a flattened subquery would repeat them for every use of the result.
_MATERIALIZED = "MATERIALIZED "
_TICKET_FILTER = """COALESCE(t.is_deleted, 0) = 0 AND COALESCE(t.is_spam, 0) = 0
    AND COALESCE(t.is_merged, 0) = 0 AND COALESCE(t.is_outbound, 0) = 0"""
#: Customer tickets of the period (requesters known to be staff are left out). "+" before the
#: column turns the index range into a sequential scan when the period holds most tickets.
_PERIOD_TICKETS = """{created} >= :since AND t.created_at < :until AND {filter}
    AND (t.requester_id IS NULL
         OR (t.source, t.requester_id) NOT IN (SELECT source, external_id FROM users WHERE role <> 'customer'))"""
_FIRST_REPLY = """(
    SELECT MIN(m.created_at) FROM messages m
    WHERE m.source = t.source AND m.ticket_id = t.external_id AND m.author_role = 'agent'
      AND m.is_public = 1 AND COALESCE(m.is_automated, 0) = 0 AND COALESCE(m.is_shared_external, 0) = 0
      AND m.created_at <= strftime('%Y-%m-%dT%H:%M:%SZ', t.created_at, :horizon)
)"""


class _Keys:
    """How customers are matched: email, optionally phone (with its default country) and customer id."""

    def __init__(self, match: str, phone: bool, default_phone_country: str | None) -> None:
        if match not in ("email", "email_or_customer_id"):
            raise ValueError(f"match must be 'email' or 'email_or_customer_id', not {match!r}")
        self.customer_id = match == "email_or_customer_id"
        self.phone = phone
        # Validates the code (ValueError) before it is inlined into SQL.
        self.user_phone = phone_key_sql("u.phone_norm", default_phone_country) if phone else "NULL"
        self.order_phone = phone_key_sql("o.customer_phone_norm", default_phone_country)


class _Period:
    """Validated settings of one computation and the SQL parameters they imply."""

    def __init__(self, since: datetime | str, until: datetime | str, window_days: float, anchor: str, keys: _Keys) -> None:
        if anchor not in ("created", "first_reply"):
            raise ValueError(f"anchor must be 'created' or 'first_reply', not {anchor!r}")
        if not window_days > 0:
            raise ValueError("window_days must be positive")
        start, end = _instant(since), _instant(until)
        if end <= start:
            raise ValueError("until must be after since")
        self.anchor, self.keys = anchor, keys
        self.tickets_where = ""  # set by _prepared(): depends on the store's ticket span
        window = timedelta(days=window_days)
        horizon = timedelta(days=FIRST_REPLY_HORIZON_DAYS)
        lead = horizon if anchor == "first_reply" else timedelta(0)
        self.params = {
            "since": iso(start),
            "until": iso(end),
            # Competitors of a period ticket are anchored between it and its orders: up to
            # until + window (+ the reply horizon). A ticket created before `since` (before
            # since − horizon for first replies) is anchored before every period ticket, so it
            # can never take their orders.
            "t_lo": iso(start - lead),
            "t_hi": iso(end + window + lead),
            "o_hi": iso(end + window + lead),
            "window": f"+{int(window.total_seconds())} seconds",
            "horizon": f"+{int(horizon.total_seconds())} seconds",
        }


def _seek(column: str, key: str, at: str) -> str:
    """The latest ticket with `column` = `key` anchored before `at`, as "anchor#tid" (one index seek)."""
    return f"""(SELECT x.anchor || '#' || printf('%012d', x.tid) FROM {_TK} x
        WHERE x.{column} = {key} AND x.anchor < {at} ORDER BY x.anchor DESC, x.tid DESC LIMIT 1)"""


def _prepare_sql(period: _Period) -> list[str]:
    """Statements filling the two temp tables: anchored tickets by email/phone, credited pairs."""
    anchor = "t.created_at" if period.anchor == "created" else _FIRST_REPLY
    keys = period.keys
    not_sale = ", ".join(f"'{s}'" for s in NOT_A_SALE)
    sale = f"""o.created_at > :since AND o.created_at <= :o_hi AND COALESCE(o.is_test, 0) = 0
        AND o.cancelled_at IS NULL AND COALESCE(o.status, '') NOT IN ({not_sale})"""
    phone = "o.customer_phone_norm IS NOT NULL"
    if not keys.customer_id:
        # One row per sale: the later of its email's and its phone's latest ticket (texts
        # "anchor#tid" + kind compare in time order; '' = none), without a GROUP BY.
        by_email = f"COALESCE({_seek('email', 'o.customer_email_norm', 'o.created_at')} || '{_EMAIL}', '')"
        by_phone = (f"CASE WHEN {phone} THEN COALESCE({_seek('phone', keys.order_phone, 'o.created_at')} || '{_PHONE}', '') "
                    "ELSE '' END")
        has_key = f"(o.customer_email_norm IS NOT NULL OR {phone})" if keys.phone else "o.customer_email_norm IS NOT NULL"
        latest = f"""latest AS {_MATERIALIZED}(SELECT o.rowid AS oid, o.created_at AS at,
        {f"max({by_email}, {by_phone})" if keys.phone else by_email} AS last_ticket
      FROM orders o WHERE {has_key} AND {sale})"""
    else:  # one row per (sale, key), also the emails of the shop customer's other orders
        phones = f"""
      UNION SELECT o.rowid, NULL, {keys.order_phone}, o.created_at, {_PHONE} FROM orders o
        WHERE {phone} AND {sale}""" if keys.phone else ""
        latest = f"""sale_keys AS (
      SELECT o.rowid AS oid, o.customer_email_norm AS email, NULL AS phone, o.created_at AS at, {_EMAIL} AS kind FROM orders o
        WHERE o.customer_email_norm IS NOT NULL AND {sale}{phones}
      UNION SELECT o.rowid, o2.customer_email_norm, NULL, o.created_at, {_CUSTOMER_ID} FROM orders o
        JOIN orders o2 ON o2.source = o.source AND o2.customer_id = o.customer_id
        WHERE o.customer_id IS NOT NULL AND o2.customer_email_norm IS NOT NULL
          AND o2.customer_email_norm IS NOT o.customer_email_norm AND {sale}),
    latest AS {_MATERIALIZED}(SELECT oid, at, MAX(COALESCE(CASE WHEN k.phone IS NULL THEN {_seek('email', 'k.email', 'k.at')}
                                      ELSE {_seek('phone', 'k.phone', 'k.at')} END || k.kind, '')) AS last_ticket
    FROM sale_keys k GROUP BY oid)"""
    statements = [
        f"DROP TABLE IF EXISTS {_TK}",
        f"DROP TABLE IF EXISTS {_CREDITED}",
        # Appended in scan order (a rowid key would make a million random inserts), indexed after.
        # `has`: 1 = an email, 2 = a phone, 3 = both (the coverage counts read it from the tid index).
        f"CREATE TABLE {_TK} (tid INTEGER NOT NULL, email TEXT, phone TEXT, anchor TEXT, has INTEGER NOT NULL)",
        # Users first: one index probe per requester instead of one per ticket. The "+" keeps
        # SQLite on tickets_requester: without statistics it picked tickets_source_created and
        # range-scanned the period's tickets once per customer (100k customers × 13 weeks of
        # 20k tickets: 41 s instead of 0.06 s).
        f"""INSERT INTO {_TK} (tid, email, phone, anchor, has)
    SELECT t.rowid, u.email_norm, {keys.user_phone}, {anchor},
           (u.email_norm IS NOT NULL) + 2 * ({keys.user_phone} IS NOT NULL) FROM users u
    CROSS JOIN tickets t ON t.source = u.source AND t.requester_id = u.external_id
    WHERE {"(u.email_norm IS NOT NULL OR u.phone_norm IS NOT NULL)" if keys.phone else "u.email_norm IS NOT NULL"}
      AND u.role = 'customer' AND +t.created_at >= :t_lo AND +t.created_at < :t_hi AND {_TICKET_FILTER}""",
        "CREATE INDEX temp.kpisync_conversion_asof ON kpisync_conversion_tickets (email, anchor, tid) WHERE email IS NOT NULL",
        "CREATE INDEX temp.kpisync_conversion_tid ON kpisync_conversion_tickets (tid, has)",
    ]
    if keys.phone:
        statements.append("CREATE INDEX temp.kpisync_conversion_phone_asof ON kpisync_conversion_tickets (phone, anchor, tid) "
                          "WHERE phone IS NOT NULL")
    return statements + [
        f"CREATE TABLE {_CREDITED} (oid INTEGER PRIMARY KEY, tid INTEGER NOT NULL, kind INTEGER NOT NULL)",
        # As-of join: for each sale, the latest ticket of the same email or phone anchored
        # strictly before it; credited if within the window.
        f"""INSERT INTO {_CREDITED} (oid, tid, kind)
    WITH {latest}
    SELECT oid, CAST(substr(last_ticket, 22, 12) AS INTEGER), CAST(substr(last_ticket, 34) AS INTEGER) FROM latest
    WHERE last_ticket <> '' AND at <= strftime('%Y-%m-%dT%H:%M:%SZ', substr(last_ticket, 1, 20), :window)""",
        "CREATE INDEX temp.kpisync_conversion_by_ticket ON kpisync_conversion_credited (tid)",
    ]


@contextmanager
def _prepared(store: Store, period: _Period) -> Iterator[sqlite3.Connection]:
    """The store's connection with the temp tables filled, in one read snapshot."""
    conn = store.conn
    saved = {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in _QUERY_PRAGMAS}
    for name, value in _QUERY_PRAGMAS.items():
        conn.execute(f"PRAGMA {name} = {value}")
    conn.create_function("kpisync_bucket", 2, _bucketer("UTC"), deterministic=True)
    conn.create_aggregate("kpisync_decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")  # one snapshot: a sync committing meanwhile cannot split the figures
    try:
        scan_all = _mostly_all_tickets(conn, period.params)
        created = "+t.created_at" if scan_all else "t.created_at"
        period.tickets_where = _PERIOD_TICKETS.format(created=created, filter=_TICKET_FILTER)
        for statement in _prepare_sql(period):
            conn.execute(statement, period.params if ":" in statement else ())
        yield conn
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {_TK}")
        conn.execute(f"DROP TABLE IF EXISTS {_CREDITED}")
        if began:
            conn.execute("COMMIT")
        for name, value in saved.items():
            conn.execute(f"PRAGMA {name} = {value}")


def _aggregate(store: Store, period: _Period, groups: list[str], tz: str) -> list[dict[str, Any]]:
    keys = _key_sql(groups)
    raw = [(name, expr) for name, expr in keys if name not in _LABELS]
    names = [name for name, _ in raw]
    select = "".join(f"{expr} AS {name}, " for name, expr in raw)
    positions = [str(i + 1) for i in range(len(names))]  # by position: aliases clash with orders columns
    group = ("GROUP BY " + ", ".join(positions)) if names else ""
    with _prepared(store, period) as conn:
        conn.create_function("kpisync_bucket", 2, _bucketer(tz), deterministic=True)
        ticket_rows = conn.execute(f"""
SELECT {select}COUNT(*), SUM(k.has & 1), SUM(k.has >> 1), SUM(t.rowid IN (SELECT tid FROM {_CREDITED}))
FROM tickets t LEFT JOIN {_TK} k ON k.tid = t.rowid WHERE {period.tickets_where} {group}""", period.params).fetchall()
        revenue_rows = conn.execute(f"""
SELECT {select}o.currency, c.kind, kpisync_decimal_sum(COALESCE(o.net_total, o.total)), COUNT(*)
FROM {_CREDITED} c JOIN tickets t ON t.rowid = c.tid JOIN orders o ON o.rowid = c.oid
WHERE {period.tickets_where} GROUP BY {"".join(p + ", " for p in positions)}{len(names) + 1}, {len(names) + 2}""",
                                    period.params).fetchall()
        labels = _labels(conn, groups, names, ticket_rows)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    width = len(names)
    for row in ticket_rows:
        key = tuple(row[:width])
        entry = out[key] = _empty_row(names, key)
        entry.update(labels.get(key, {}))
        count, with_email, with_phone, converted = row[width:]
        entry.update(tickets=count, tickets_with_email=with_email or 0, tickets_with_phone=with_phone or 0,
                     converted=converted or 0)
        entry["conversion_rate"] = (converted or 0) / count if count else None
    for row in revenue_rows:
        entry = out[tuple(row[:width])]
        currency, kind, total, count = row[width:]
        revenue = entry["revenue"]
        revenue[currency] = str(Decimal(revenue[currency]) + Decimal(total)) if currency in revenue else total
        entry["orders"] += count
        key = _KIND_NAMES[kind]
        entry["matched_by"][key] = entry["matched_by"].get(key, 0) + count
    ordered = [out[k] for k in sorted(out, key=lambda k: tuple("" if v is None else str(v) for v in k))]
    for entry in ordered:
        entry["revenue"] = dict(sorted(entry["revenue"].items()))
        entry["matched_by"] = {name: entry["matched_by"][name] for name in _KIND_NAMES.values() if name in entry["matched_by"]}
    return [{k: entry[k] for k in [*(n for n, _ in keys), *_FIGURES]} for entry in ordered]


def _labels(conn: sqlite3.Connection, groups: list[str], names: list[str], rows: list[Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Agent and group names of the grouped ids (looked up once per group, not per ticket)."""
    labels: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[: len(names)])
        values = dict(zip(names, key))
        found: dict[str, Any] = {}
        if "agent" in groups:
            hit = conn.execute("SELECT name FROM users WHERE source = ? AND external_id = ?", (values["source"], values["agent_id"])).fetchone()
            found["agent_name"] = hit[0] if hit else None
        if "group" in groups:
            hit = conn.execute("SELECT name FROM groups WHERE source = ? AND external_id = ?", (values["source"], values["group_id"])).fetchone()
            found["group_name"] = hit[0] if hit else None
        labels[key] = found
    return labels


def _key_sql(groups: list[str]) -> list[tuple[str, str]]:
    """(column, SQL expression over `tickets t`) of each grouping key; labels have no expression."""
    keys: list[tuple[str, str]] = []
    if any(g in ("source", "agent", "group") for g in groups):
        keys.append(("source", "t.source"))
    for g in groups:
        if g == "agent":
            keys += [("agent_id", "t.assignee_id"), ("agent_name", "")]
        elif g == "group":
            keys += [("group_id", "t.group_id"), ("group_name", "")]
        elif g == "channel":
            keys.append(("channel", "t.channel"))
        elif g in _TIME_GRAINS:
            keys.append(("period", f"kpisync_bucket(t.created_at, '{g}')"))
    return keys


def _groups(group_by: str | Sequence[str] | None) -> list[str]:
    if group_by is None:
        return []
    groups = [group_by] if isinstance(group_by, str) else list(group_by)
    unknown = [g for g in groups if g not in GROUPINGS]
    if unknown:
        raise ValueError(f"cannot group converted tickets by {', '.join(unknown)} (use {', '.join(GROUPINGS)})")
    if sum(g in _TIME_GRAINS for g in groups) > 1:
        raise ValueError("group by one period grain at a time")
    return list(dict.fromkeys(groups))


def _empty_row(names: list[str], key: tuple[Any, ...]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(names, key))
    row.update(tickets=0, tickets_with_email=0, tickets_with_phone=0, converted=0, conversion_rate=None, orders=0,
               matched_by={}, revenue={})
    return row


def _change(row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
    if old is None:
        return None
    rate = None
    if row["conversion_rate"] is not None and old["conversion_rate"] is not None:
        rate = row["conversion_rate"] - old["conversion_rate"]
    return {"converted": row["converted"] - old["converted"], "conversion_rate": rate}


#: Memory-mapped reads and a bigger page cache for the big statements, restored afterwards.
_QUERY_PRAGMAS = {"mmap_size": 1 << 30, "cache_size": -65536}


def _mostly_all_tickets(conn: sqlite3.Connection, params: dict[str, Any]) -> bool:
    """Whether the candidate range covers more than a quarter of the tickets' time span."""
    low, high = conn.execute("SELECT MIN(created_at), MAX(created_at) FROM tickets").fetchone()
    if low is None or high is None or low == high:
        return True
    span = (_instant(high) - _instant(low)).total_seconds()
    lo, hi = max(_instant(params["t_lo"]), _instant(low)), min(_instant(params["t_hi"]), _instant(high))
    return (hi - lo).total_seconds() > span / 4


# --------------------------------------------------------------------------- helpers


def _instant(value: datetime | str) -> datetime:
    dt = to_utc(value)
    if dt is None:
        raise ValueError("a period bound is missing")
    return dt


class _DecimalSum:
    """SQLite aggregate: the exact sum of decimal texts, as text (money never becomes float)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        if value is None:
            return
        try:
            self.total += Decimal(str(value))
        except InvalidOperation:
            pass  # the connectors validate money; an unreadable value is not revenue

    def finalize(self) -> str:
        return str(self.total)


def _bucketer(tz: str) -> Any:
    """kpisync_bucket(iso_utc, grain) -> local start date (ISO) of the bucket in `tz`."""
    zone = ZoneInfo(tz)

    @lru_cache(maxsize=65536)
    def hour_offset(hour_text: str) -> timedelta | None:
        """The zone's UTC offset during this UTC hour, or None when it changes within it."""
        start = datetime.fromisoformat(hour_text + ":00:00+00:00")
        first = start.astimezone(zone).utcoffset()
        last = (start + timedelta(minutes=59, seconds=59)).astimezone(zone).utcoffset()
        return first if first == last else None

    def local_day(text: str) -> date:
        offset = hour_offset(text[:13])
        instant = datetime.fromisoformat(text[:19] + "+00:00")
        if offset is None:
            return instant.astimezone(zone).date()
        return (instant + offset).date()

    def bucket(text: str | None, grain: str) -> str | None:
        if text is None:
            return None
        day = date.fromisoformat(text[:10]) if tz == "UTC" else local_day(text)
        if grain == "week":
            day -= timedelta(days=day.weekday())
        elif grain == "month":
            day = day.replace(day=1)
        elif grain == "quarter":
            day = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        return day.isoformat()

    return bucket
