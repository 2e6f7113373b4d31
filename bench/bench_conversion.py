"""Benchmark: converted tickets over N tickets × M orders in one SQLite store.

Rows are generated straight into the canonical tables with executemany (no pydantic, no HTTP),
so the figure measures the KPI query alone. Customers buy more often shortly after a ticket, so
a realistic share converts. 30 % of the customers have a phone (as in fixtures/world.py); half of
their orders after a ticket carry it written nationally ("030 …"), a third of those without an
e-mail (phone and chat customers), and a fifth of the other orders carry a phone nobody has.
Phones come from their own random stream, so e-mails, times and totals are the same as without.

    python bench/bench_conversion.py                 # 1M tickets, 1M orders
    python bench/bench_conversion.py --tickets 100000 --orders 100000 --db /tmp/conv.db
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kpisync.core.metrics.conversion import converted_tickets
from kpisync.core.phone import normalise_phone
from kpisync.core.store import Store

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN_S = 365 * 86400
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP")


def populate(store: Store, tickets: int, orders: int, seed: int = 1) -> None:
    """Customers (one per 3 tickets), tickets in 2 help desks, orders (half by requesters)."""
    rng = random.Random(seed)
    phones = random.Random(seed + 1)  # its own stream: the other columns do not change with it
    customers = max(1, tickets // 3)
    synced = "2026-01-01T00:00:00Z"
    conn = store.conn
    conn.execute("BEGIN")
    phone_of = {i: f"30 {10_000_000 + i}" for i in range(customers) if phones.random() < 0.3}  # Berlin numbers
    conn.executemany(
        "INSERT INTO users (source, external_id, email, email_norm, phone, phone_norm, role, synced_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'customer', ?)",
        ((("zendesk", "freshdesk")[i % 2], str(i), f"C{i}@Example.com", f"c{i}@example.com",
          *_phone(f"+49 {phone_of[i]}" if i in phone_of else None), synced) for i in range(customers)),
    )
    ticket_times: list[tuple[int, int]] = []

    def ticket_rows():
        for i in range(tickets):
            customer = rng.randrange(customers)
            at = rng.randrange(SPAN_S)
            if len(ticket_times) < orders // 2:
                ticket_times.append((customer, at))
            yield (
                ("zendesk", "freshdesk")[customer % 2], str(i), rng.choice(("email", "chat", "web")),
                (START + timedelta(seconds=at)).strftime(FORMAT), "solved", "resolved", str(customer),
                str(rng.randrange(40)), str(rng.randrange(6)), synced,
            )  # fmt: skip

    conn.executemany(
        "INSERT INTO tickets (source, external_id, channel, created_at, status, status_category, requester_id, "
        "assignee_id, group_id, is_spam, is_deleted, is_merged, is_outbound, synced_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)",
        ticket_rows(),
    )

    def order_rows():
        for i in range(orders):
            phone: str | None = None
            if i < len(ticket_times):  # a requester buying 0–8 days after a ticket
                customer, at = ticket_times[i]
                email, at = f"c{customer}@example.com", at + rng.randrange(3600, 8 * 86400)
                if customer in phone_of and phones.random() < 0.5:
                    phone = "0" + phone_of[customer]
                    email = None if phones.random() < 1 / 3 else email
            else:
                email, at = f"shopper{rng.randrange(orders)}@example.com", rng.randrange(SPAN_S)
                phone = f"+49 170 {phones.randrange(10**7, 10**8)}" if phones.random() < 0.2 else None
            total = f"{rng.randrange(500, 40000) / 100:.2f}"
            yield (
                "shopify", str(i), "shopify", email, email, *_phone(phone), (START + timedelta(seconds=at)).strftime(FORMAT),
                total, total, rng.choice(CURRENCIES), int(rng.random() < 0.01), synced,
            )  # fmt: skip

    conn.executemany(
        "INSERT INTO orders (source, external_id, platform, customer_email, customer_email_norm, customer_phone, "
        "customer_phone_norm, created_at, total, net_total, currency, is_test, synced_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        order_rows(),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


def _phone(text: str | None) -> tuple[str | None, str | None]:
    return text, normalise_phone(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="reuse or create this store (default: a temp file)")
    args = parser.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "bench_conversion.db"
    fresh = not path.exists()
    with Store(path) as store:
        if fresh:
            started = time.perf_counter()
            populate(store, args.tickets, args.orders)
            print(f"populated {args.tickets:,} tickets and {args.orders:,} orders in {time.perf_counter() - started:.1f} s")
        since, until = START.strftime(FORMAT), (START + timedelta(days=365)).strftime(FORMAT)
        for label, kwargs in (
            ("whole year, no grouping", {}),
            ("by agent", {"group_by": "agent"}),
            ("by month (Europe/Berlin)", {"group_by": "month", "tz": "Europe/Berlin"}),
            ("email_or_customer_id", {"match": "email_or_customer_id"}),
            ("e-mail only (phone=False)", {"phone": False}),
        ):
            started, cpu = time.perf_counter(), time.process_time()
            rows = converted_tickets(store, since, until, default_phone_country="49", **kwargs)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            total = rows[0] if len(rows) == 1 else None
            detail = (
                f"{total['converted']:,} of {total['tickets']:,} converted, by {total['matched_by']}, revenue {total['revenue']}"
                if total else f"{len(rows)} groups"
            )
            print(f"{label:26s} {seconds:6.1f} s wall {cpu:6.1f} s cpu  {detail}")
    if not args.db:
        os.remove(path)


if __name__ == "__main__":
    main()
