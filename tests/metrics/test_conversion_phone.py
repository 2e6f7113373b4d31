"""Converted tickets matched by phone: normalisation, the SQL key, and hand-computed conversions.

The store: phone-only customers (Paula writes a national number, Piet an international one with
"(0)"), a customer whose number is too short to trust, and Ann/Bob/Cat who have e-mails (Bob
and Cat also phones). Every expected figure is worked out in the comment next to it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kpisync.connectors.csv_orders import CsvOrdersConfig, CsvOrdersConnector
from kpisync.core.errors import ConfigError
from kpisync.core.httpclient import Runtime
from kpisync.core.metrics.conversion import converted_ticket_details, converted_tickets
from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.settings import MetricsSettings, load_settings
from kpisync.core.models import Order, Ticket, User
from kpisync.core.phone import normalise_phone, phone_key, phone_key_sql
from kpisync.core.store import Store, _migrations, _split_sql
from kpisync.core.sync import sync_source

MARCH = ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("text, stored", [
    ("+49 30 1234567", "49301234567"),
    ("0049301234567", "49301234567"),
    ("+49 (0)30 123 45 67", "49301234567"),  # the "(0)" is not dialled from abroad
    ("(+49) 30-1234567", "49301234567"),
    ("030 1234567", "0301234567"),  # no country code: "0" + national number without its trunk 0
    ("030/123 45 67", "0301234567"),
    ("+1 (415) 555-0100 ext. 7", "14155550100"),  # the extension is not part of the number
    ("(415) 555-0100", "04155550100"),
    ("1-415-555-0100", "014155550100"),
])  # fmt: skip
def test_numbers_are_stored_as_digits_with_their_country_when_written(text: str, stored: str) -> None:
    assert normalise_phone(text) == stored


@pytest.mark.parametrize("text", [None, "", "n/a", "112", "12345", "030 1234", "+49 1234", "000 000 0000",
                                  "+49 000 0000000", "+1 234 567 890 123 456"])  # fmt: skip
def test_short_placeholder_and_overlong_numbers_never_get_a_key(text: str | None) -> None:
    assert normalise_phone(text) is None


def test_three_spellings_of_a_berlin_number_meet_with_default_country_49() -> None:
    keys = {phone_key(normalise_phone(t), "49") for t in ("+49 30 1234567", "030 1234567", "0049301234567")}
    assert keys == {"49301234567"}
    # Without the setting a national number only meets national numbers.
    assert phone_key(normalise_phone("030 1234567")) == "0301234567"
    # North America: the trunk "1" of "1-415-555-0100" is dropped like Europe's "0".
    assert {phone_key(normalise_phone(t), "1") for t in ("(415) 555-0100", "1-415-555-0100", "+14155550100")} == {
        "14155550100"
    }


def test_the_sql_key_is_the_python_key() -> None:
    stored = [normalise_phone(t) for t in ("+49 30 1234567", "030 1234567", "(415) 555-0100", "1-415-555-0100",
                                           "0171 9876543", "+44 20 7946 0958")]  # fmt: skip
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (n TEXT)")
    conn.executemany("INSERT INTO p VALUES (?)", [(s,) for s in [*stored, None]])
    for country in (None, "49", "1", "44"):
        got = [r[0] for r in conn.execute(f"SELECT {phone_key_sql('n', country)} FROM p ORDER BY rowid")]
        assert got == [phone_key(s, country) for s in [*stored, None]], country


def test_the_setting_accepts_plus_and_00_and_rejects_what_is_no_country_code() -> None:
    assert load_settings({"metrics": {"default_phone_country": "+49"}}).default_phone_country == "49"
    assert load_settings({"metrics": {"default_phone_country": 1}}).default_phone_country == "1"
    assert load_settings({"metrics": {"default_phone_country": "0044"}}).default_phone_country == "44"
    assert load_settings({}).default_phone_country is None
    with pytest.raises(ConfigError, match="default_phone_country"):
        load_settings({"metrics": {"default_phone_country": "Germany"}})
    with pytest.raises(ConfigError, match="default_phone_country"):
        load_settings({"metrics": {"default_phone_country": "4912"}})


# --------------------------------------------------------------------------- conversions


def _ticket(tid: str, at: str, requester: str, channel: str = "phone") -> Ticket:
    return Ticket(external_id=tid, created_at=at, status="open", requester_id=requester, channel=channel)


def _order(oid: str, at: str, total: str, email: str | None = None, phone: str | None = None) -> Order:
    return Order(external_id=oid, platform="shopify", created_at=at, customer_email=email, customer_phone=phone,
                 total=total, currency="EUR")  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "phone.db")
    s.write_batch("zendesk", "users", [
        User(external_id="paula", phone="030 1234567", role="customer"),  # phone only, national
        User(external_id="piet", phone="+49 (0)170 555 1234", role="customer"),  # phone only, international
        User(external_id="shorty", phone="12345", role="customer"),  # too short to trust
        User(external_id="ann", email="ann@example.com", role="customer"),
        User(external_id="bob", email="bob@example.com", phone="+49 30 7654321", role="customer"),
        User(external_id="cat", email="cat@example.com", phone="+44 20 7946 0958", role="customer"),
    ], None)  # fmt: skip
    s.write_batch("zendesk", "tickets", [
        _ticket("P1", "2025-03-03T10:00:00Z", "paula"),
        _ticket("P2", "2025-03-05T10:00:00Z", "piet", "chat"),
        _ticket("P3", "2025-03-07T10:00:00Z", "shorty"),
        _ticket("A1", "2025-03-10T08:00:00Z", "ann", "email"),
        _ticket("B1", "2025-03-10T12:00:00Z", "bob"),
        _ticket("C1", "2025-03-15T09:00:00Z", "cat", "email"),
    ], None)  # fmt: skip
    s.write_batch("shopify", "orders", [
        _order("OP1", "2025-03-04T10:00:00Z", "25.00", phone="+49 30 1234567"),  # Paula, other spelling: → P1 (with +49)
        _order("OP2", "2025-03-06T10:00:00Z", "40.00", phone="0049 170 5551234"),  # Piet: → P2 (both international)
        _order("OP3", "2025-03-08T10:00:00Z", "10.00", phone="12345"),  # no key: converts nothing
        # Ann's e-mail but the phone of Bob (030 7654321 = +49 30 7654321): one order, one ticket —
        # the later of A1 (08:00, by e-mail) and B1 (12:00, by phone) → B1.
        _order("OX", "2025-03-11T09:00:00Z", "60.00", email="ann@example.com", phone="030 7654321"),
        # Cat by e-mail and phone: one ticket, reported as matched by e-mail.
        _order("OC", "2025-03-16T09:00:00Z", "30.00", email="CAT@example.com", phone="+44 20 7946 0958"),
    ], None)  # fmt: skip
    yield s
    s.close()


def test_phone_only_customers_convert_and_spellings_meet(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH, default_phone_country="49")
    # 6 tickets; e-mail: A1, B1, C1; a usable phone: P1, P2, B1, C1 (P3's "12345" is too short).
    assert (row["tickets"], row["tickets_with_email"], row["tickets_with_phone"]) == (6, 3, 4)
    # P1 (OP1), P2 (OP2), B1 (OX), C1 (OC): 4 of 6; OP3 converts nothing.
    assert (row["converted"], row["orders"]) == (4, 4)
    assert row["conversion_rate"] == pytest.approx(4 / 6)
    assert row["matched_by"] == {"email": 1, "phone": 3}  # OC by e-mail; OP1, OP2, OX by phone
    assert row["revenue"] == {"EUR": "155.00"}  # 25 + 40 + 60 + 30


def test_email_and_phone_of_different_people_credit_one_ticket_once(store: Store) -> None:
    details = {d["ticket_id"]: d for d in converted_ticket_details(store, *MARCH, default_phone_country="49",
                                                                   converted_only=False)}  # fmt: skip
    assert [(o["order_id"], o["matched_by"], o["hours_after"]) for o in details["B1"]["orders"]] == [("OX", "phone", 21.0)]
    assert details["A1"]["converted"] is False  # OX went to Bob's later ticket, not to both
    assert [(o["order_id"], o["matched_by"]) for o in details["C1"]["orders"]] == [("OC", "email")]
    assert [o["order_id"] for o in details["P1"]["orders"]] == ["OP1"]
    assert details["P3"]["converted"] is False
    assert (details["P1"]["requester_email"], details["P1"]["requester_phone"]) == (None, "49301234567")
    assert details["P3"]["requester_phone"] is None


def test_without_a_default_country_national_numbers_only_meet_national_ones(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH)
    # "030 1234567" ≠ "+49 30 1234567" now: OP1 converts nothing; OX's "030 7654321" misses Bob's
    # "+49 30 7654321", so OX goes to Ann by e-mail. Converted: P2 (OP2), A1 (OX), C1 (OC).
    assert (row["converted"], row["matched_by"], row["revenue"]) == (3, {"email": 2, "phone": 1}, {"EUR": "130.00"})
    store.write_batch("shopify", "orders", [_order("OP4", "2025-03-05T09:00:00Z", "5.00", phone="030-123 45 67")], None)
    [row] = converted_tickets(store, *MARCH)
    assert (row["converted"], row["orders"]) == (4, 4)  # national meets national: OP4 → P1


def test_email_only_matching_is_still_available(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH, phone=False, default_phone_country="49")
    # A1 (OX by e-mail) and C1 (OC): 2 of 6; phones are not looked at.
    assert (row["converted"], row["tickets_with_phone"], row["matched_by"]) == (2, 0, {"email": 2})


def test_customer_id_matching_keeps_phones(store: Store) -> None:
    [row] = converted_tickets(store, *MARCH, match="email_or_customer_id", default_phone_country="49")
    assert (row["converted"], row["matched_by"]) == (4, {"email": 1, "phone": 3})


def test_the_kpi_says_which_keys_matched(store: Store) -> None:
    window = {"since": "2025-03-01", "until": "2025-04-01", "now": 1_750_000_000}
    result = evaluate(store, "converted_tickets", settings=MetricsSettings(default_phone_country="49"), **window)
    [row] = result.rows
    assert (row["converted"], row["tickets_with_phone"], row["matched_by"]) == (4, 4, {"email": 1, "phone": 3})
    assert any(n.startswith("matched by e-mail or phone (numbers written without a country code read as +49)")
               for n in result.notes)  # fmt: skip
    plain = evaluate(store, "converted_tickets", **window)
    assert plain.rows[0]["converted"] == 3
    assert any("set [metrics] default_phone_country" in n for n in plain.notes)


def test_csv_orders_with_a_phone_column_convert_phone_customers(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "Order ID,Email,Phone,Created at,Total,Currency\n"
        "K-1,,030 123 45 67,2025-03-04T08:00:00Z,12.00,EUR\n"  # Paula, written nationally → P1
        "K-2,,+49 170 0000001,2025-03-04T09:00:00Z,8.00,EUR\n",  # nobody's number
        encoding="utf-8",
    )
    result = sync_source(store, "shop_csv", CsvOrdersConnector(CsvOrdersConfig(path=str(path)), Runtime()))
    assert (result.status, result.records) == ("success", 2)
    stored = store.query("SELECT external_id, customer_phone, customer_phone_norm FROM orders WHERE source = 'shop_csv' "
                         "ORDER BY external_id")  # fmt: skip
    assert [tuple(r) for r in stored] == [("K-1", "030 123 45 67", "0301234567"), ("K-2", "+49 170 0000001", "491700000001")]
    details = {d["ticket_id"]: d for d in converted_ticket_details(store, *MARCH, default_phone_country="49")}
    assert [(o["source"], o["order_id"]) for o in details["P1"]["orders"]] == [("shop_csv", "K-1"), ("shopify", "OP1")]


def test_phones_stored_before_the_migration_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # a store written by the version before migration 005
    for version, sql in _migrations():
        if version < 5:
            for statement in _split_sql(sql):
                conn.execute(statement)
    conn.execute("INSERT INTO orders (source, external_id, platform, customer_phone, created_at, total, currency, synced_at) "
                 "VALUES ('shop', 'O1', 'shopify', '+49 (0)30 1234567', '2025-03-04T10:00:00Z', '1.00', 'EUR', '2025-03-05T00:00:00Z')")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with Store(path) as s:
        assert s.version >= 5
        assert s.query("SELECT customer_phone_norm FROM orders")[0][0] == "49301234567"
        assert [r[1] for r in s.query("PRAGMA table_info(users)") if "phone" in r[1]] == ["phone", "phone_norm"]
