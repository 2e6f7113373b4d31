"""Converted tickets against hand-computed cases (stores built by hand with Store.write_batch).

The shared store holds a Zendesk and a Freshdesk help desk and two shops. Ann writes to both
help desks (with different email spelling), Bob buys before and after his ticket, Cat's order
is fully refunded, Dan is a guest who never wrote in. Every expected figure below is worked out
in the comment next to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kpisync.core.metrics.conversion import converted_ticket_details, converted_tickets
from kpisync.core.models import Group, Message, Order, Ticket, User
from kpisync.core.store import Store

MARCH = ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")


def _ticket(tid: str, at: str, requester: str | None, **extra: object) -> Ticket:
    return Ticket(external_id=tid, created_at=at, status="open", requester_id=requester, **extra)


def _order(oid: str, at: str, email: str | None, total: str, currency: str = "EUR", **extra: object) -> Order:
    return Order(external_id=oid, platform="shopify", created_at=at, customer_email=email, total=total,
                 net_total=extra.pop("net_total", total), currency=currency, **extra)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "conv.db")
    s.write_batch("zendesk", "users", [
        User(external_id="u1", email="Ann@Example.com", role="customer"),
        User(external_id="u2", email="bob@example.com", role="customer"),
        User(external_id="u3", email=None, role="customer"),  # phoned in, no email
        User(external_id="a1", email="smith@acme.test", name="Agent Smith", role="agent"),
    ], None)  # fmt: skip
    s.write_batch("zendesk", "groups", [Group(external_id="g1", name="Billing")], None)
    s.write_batch("freshdesk", "users", [
        User(external_id="u10", email="  ANN@example.com ", role="customer"),
        User(external_id="u11", email="cat@example.com", role="customer"),
    ], None)  # fmt: skip
    s.write_batch("zendesk", "tickets", [
        _ticket("T1", "2025-03-01T10:00:00Z", "u1", assignee_id="a1", group_id="g1", channel="email"),
        _ticket("T3", "2025-03-05T12:00:00Z", "u2", assignee_id="a1", channel="email"),
        _ticket("T4", "2025-03-06T08:00:00Z", "u3", channel="phone"),
        _ticket("T6", "2025-03-02T08:00:00Z", "u1", is_outbound=True),  # outbound: not a customer ticket
        _ticket("T7", "2025-03-02T09:00:00Z", "u2", is_spam=True),
    ], None)  # fmt: skip
    s.write_batch("freshdesk", "tickets", [
        _ticket("T2", "2025-03-03T10:00:00Z", "u10", channel="chat"),
        _ticket("T5", "2025-03-10T00:00:00Z", "u11", channel="chat"),
    ], None)  # fmt: skip
    s.write_batch("shopify", "orders", [
        _order("O1", "2025-03-02T09:00:00Z", "ANN@example.com", "100.00"),  # → T1 (23 h after)
        _order("O2", "2025-03-04T10:00:00Z", "ann@example.com", "50.00", net_total="30.00"),  # → T2, not T1
        _order("O3", "2025-03-08T10:00:00Z", " Ann@Example.com", "20.00", "USD"),  # T2 + 5 d exactly → T2
        _order("O4", "2025-03-08T10:00:01Z", "ann@example.com", "99.00"),  # one second too late
        _order("O5", "2025-03-05T11:00:00Z", "bob@example.com", "70.00"),  # before Bob's ticket
        _order("O6", "2025-03-06T10:00:00Z", "bob@example.com", "80.00", is_test=True),
        _order("O7", "2025-03-06T11:00:00Z", "bob@example.com", "90.00", cancelled_at="2025-03-06T12:00:00Z"),
        _order("O8", "2025-03-11T00:00:00Z", "cat@example.com", "5000", "JPY", net_total="0"),  # refunded
        _order("O9", "2025-03-06T00:00:00Z", "dan@example.com", "10.00"),  # guest, never wrote in
        _order("O10", "2025-03-07T12:00:00Z", "BOB@example.com", "15.50", "GBP"),  # → T3
        _order("O13", "2025-03-07T13:00:00Z", "bob@example.com", "40.00", status="voided"),  # no sale
    ], None)  # fmt: skip
    s.write_batch("woo", "orders", [
        Order(external_id="O11", platform="woocommerce", created_at="2025-03-12T00:00:00Z",
              customer_email="cat@example.com", total="12.34", currency="EUR", status="processing"),  # → T5
    ], None)  # fmt: skip
    yield s
    s.close()


def test_march_totals_hand_computed(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH)
    # T1..T5 count (T6 outbound, T7 spam do not); T4's requester has no email.
    assert (row["tickets"], row["tickets_with_email"]) == (5, 4)
    # T1 (O1), T2 (O2, O3), T3 (O10), T5 (O8, O11) converted: 4 of 5.
    assert row["converted"] == 4
    assert row["conversion_rate"] == pytest.approx(0.8)
    assert row["orders"] == 6
    # Net totals per currency: EUR 100.00 + 30.00 + 12.34; O8 was refunded in full.
    assert row["revenue"] == {"EUR": "142.34", "GBP": "15.50", "JPY": "0", "USD": "20.00"}


def test_each_order_goes_to_the_latest_ticket_only(store: Store) -> None:
    details = {d["ticket_id"]: d for d in converted_ticket_details(store, *MARCH)}
    assert [o["order_id"] for o in details["T1"]["orders"]] == ["O1"]  # O2 is also in T1's window
    assert [(o["order_id"], o["hours_after"]) for o in details["T2"]["orders"]] == [("O2", 24.0), ("O3", 120.0)]
    assert [o["order_id"] for o in details["T3"]["orders"]] == ["O10"]
    assert [(o["source"], o["order_id"]) for o in details["T5"]["orders"]] == [("shopify", "O8"), ("woo", "O11")]
    assert details["T2"]["requester_email"] == "ann@example.com"
    assert set(details) == {"T1", "T2", "T3", "T5"}
    everything = converted_ticket_details(store, *MARCH, converted_only=False)
    assert [d["ticket_id"] for d in everything] == ["T1", "T2", "T3", "T4", "T5"]
    assert [d["converted"] for d in everything] == [True, True, True, False, True]


def test_by_source_and_agent(store: Store) -> None:
    by_source = {r["source"]: r for r in converted_tickets(store, *MARCH, group_by="source")}
    assert (by_source["zendesk"]["tickets"], by_source["zendesk"]["converted"]) == (3, 2)
    assert by_source["zendesk"]["revenue"] == {"EUR": "100.00", "GBP": "15.50"}
    assert (by_source["freshdesk"]["tickets"], by_source["freshdesk"]["converted"]) == (2, 2)
    assert by_source["freshdesk"]["revenue"] == {"EUR": "42.34", "JPY": "0", "USD": "20.00"}
    agents = converted_tickets(store, *MARCH, group_by="agent")
    smith = next(r for r in agents if r["agent_id"] == "a1")
    assert (smith["source"], smith["agent_name"], smith["tickets"], smith["converted"]) == ("zendesk", "Agent Smith", 2, 2)
    groups = converted_tickets(store, *MARCH, group_by=["group", "channel"])
    billing = next(r for r in groups if r["group_id"] == "g1")
    assert (billing["group_name"], billing["channel"], billing["converted"]) == ("Billing", "email", 1)


def test_tickets_without_a_known_requester_stay_in_the_denominator(store: Store) -> None:
    store.write_batch("zendesk", "tickets", [
        _ticket("T11", "2025-03-20T00:00:00Z", None),  # no requester at all
        _ticket("T12", "2025-03-21T00:00:00Z", "u99"),  # requester not synced (yet)
        _ticket("T13", "2025-03-22T00:00:00Z", "a1"),  # filed by an agent for themselves: not a customer ticket
    ], None)  # fmt: skip
    [row] = converted_tickets(store, *MARCH)
    assert (row["tickets"], row["tickets_with_email"], row["converted"]) == (7, 4, 4)


def test_window_length_is_a_setting(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH, window_days=1)
    # 1 day: O1 (23 h), O2 (24 h, the edge) and O8 (24 h) still count; O3, O10, O11 do not.
    assert row["converted"] == 3
    assert row["revenue"] == {"EUR": "130.00", "JPY": "0"}


def test_a_later_ticket_outside_the_period_takes_the_order(store: Store) -> None:
    # Ann writes again on 1 April; her order of 2 April belongs to that April ticket.
    store.write_batch("zendesk", "tickets", [_ticket("T9", "2025-04-01T06:00:00Z", "u1")], None)
    store.write_batch("shopify", "orders", [_order("O12", "2025-04-02T00:00:00Z", "ann@example.com", "5.00")], None)
    [march] = converted_tickets(store, *MARCH)
    assert march["revenue"]["EUR"] == "142.34"
    [april] = converted_tickets(store, "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z")
    assert (april["tickets"], april["converted"], april["revenue"]) == (1, 1, {"EUR": "5.00"})


def test_first_reply_anchor(store: Store) -> None:
    # T3 (Bob, created 12:00) is first answered at 15:00; an order at 13:00 precedes the anchor.
    store.write_batch("zendesk", "events", [
        Message(external_id="m1", ticket_id="T3", created_at="2025-03-05T14:00:00Z", author_role="agent", is_public=False),
        Message(external_id="m2", ticket_id="T3", created_at="2025-03-05T14:30:00Z", author_role="bot", is_public=True),
        Message(external_id="m3", ticket_id="T3", created_at="2025-03-05T15:00:00Z", author_role="agent", is_public=True),
    ], None)  # fmt: skip
    store.write_batch("shopify", "orders", [_order("O14", "2025-03-05T13:00:00Z", "bob@example.com", "7.00")], None)
    created = {d["ticket_id"]: d for d in converted_ticket_details(store, *MARCH)}
    assert [o["order_id"] for o in created["T3"]["orders"]] == ["O14", "O10"]
    replied = {d["ticket_id"]: d for d in converted_ticket_details(store, *MARCH, anchor="first_reply")}
    # Only T3 has an agent reply (the note and the bot do not count); O10 is 45 h after it.
    assert list(replied) == ["T3"]
    assert replied["T3"]["anchor_at"] == "2025-03-05T15:00:00Z"
    assert [(o["order_id"], o["hours_after"]) for o in replied["T3"]["orders"]] == [("O10", 45.0)]
    [row] = converted_tickets(store, *MARCH, anchor="first_reply")
    assert (row["tickets"], row["converted"]) == (5, 1)


def test_customer_id_links_a_changed_email(store: Store) -> None:
    store.write_batch("shopify", "orders", [
        _order("O20", "2025-01-10T00:00:00Z", "cat@example.com", "1.00", customer_id="77"),
        _order("O21", "2025-03-20T00:00:00Z", "cat.new@example.com", "60.00", customer_id="77"),
    ], None)  # fmt: skip
    store.write_batch("freshdesk", "tickets", [_ticket("T8", "2025-03-18T00:00:00Z", "u11")], None)
    [by_email] = converted_tickets(store, *MARCH)
    [by_customer] = converted_tickets(store, *MARCH, match="email_or_customer_id")
    assert by_email["converted"] == 4
    assert by_customer["converted"] == 5
    assert by_customer["revenue"]["EUR"] == "202.34"


def test_period_buckets_use_the_reporting_time_zone(store: Store) -> None:
    # T1 2025-03-01 10:00 UTC is Saturday; T2 03-03 is Monday. Berlin: same days (UTC+1).
    weeks = converted_tickets(store, *MARCH, group_by="week", tz="Europe/Berlin")
    assert [(r["period"], r["tickets"], r["converted"]) for r in weeks] == [
        ("2025-02-24", 1, 1), ("2025-03-03", 3, 2), ("2025-03-10", 1, 1),
    ]  # fmt: skip
    store.write_batch("zendesk", "tickets", [_ticket("T10", "2025-03-30T22:30:00Z", "u2")], None)
    berlin = converted_tickets(store, *MARCH, group_by="day", tz="Europe/Berlin")
    utc = converted_tickets(store, *MARCH, group_by="day")
    assert berlin[-1]["period"] == "2025-03-31"  # 00:30 CEST, the day after the DST switch
    assert utc[-1]["period"] == "2025-03-30"


def test_compared_with_the_previous_period(store: Store) -> None:
    store.write_batch("zendesk", "tickets", [
        _ticket("F1", "2025-02-10T00:00:00Z", "u2"),
        _ticket("F2", "2025-02-11T00:00:00Z", "u3"),
    ], None)  # fmt: skip
    store.write_batch("shopify", "orders", [_order("OF", "2025-02-12T00:00:00Z", "bob@example.com", "9.99")], None)
    [row] = converted_tickets(store, *MARCH, compare_previous=True)
    assert row["previous"] == {
        "tickets": 2, "tickets_with_email": 1, "tickets_with_phone": 0, "converted": 1, "conversion_rate": 0.5,
        "orders": 1, "matched_by": {"email": 1}, "revenue": {"EUR": "9.99"},
    }  # fmt: skip
    assert row["change"]["converted"] == 3
    assert row["change"]["conversion_rate"] == pytest.approx(0.3)


def test_empty_store_and_bad_settings(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db") as empty:
        [row] = converted_tickets(empty, *MARCH)
        assert (row["tickets"], row["converted"], row["conversion_rate"], row["revenue"]) == (0, 0, None, {})
        assert converted_tickets(empty, *MARCH, group_by="agent") == []
        with pytest.raises(ValueError, match="anchor"):
            converted_tickets(empty, *MARCH, anchor="closed")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="group"):
            converted_tickets(empty, *MARCH, group_by="brand")
        with pytest.raises(ValueError, match="after"):
            converted_tickets(empty, MARCH[1], MARCH[0])
