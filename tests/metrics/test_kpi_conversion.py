"""`converted_tickets` through the engine (the matching itself is tested with core/metrics/conversion.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("kpisync.core.metrics.conversion")
sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch

from kpisync.core.metrics.engine import evaluate
from kpisync.core.models import Order
from kpisync.core.store import Store

WINDOW = {"since": "2026-01-05", "until": "2026-01-08", "now": epoch("2026-01-30 00:00")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("conv") / "s.db")
    w = World(s)
    w.customer("c1", email="Ann@Example.com")
    w.customer("c2", email="bob@example.com")
    w.ticket("1", "2026-01-05 09:00", "open", requester="c1")
    w.ticket("2", "2026-01-06 09:00", "open", requester="c2")
    w.ticket("3", "2026-01-06 10:00", "open", requester="c2", channel="chat")
    w.commit()
    s.write_batch("shop", "orders", [
        # Ann buys 2 days after her ticket: converted (emails match once trimmed and lower-cased)
        Order(external_id="o1", platform="shopify", customer_email=" ann@example.com", created_at="2026-01-07T10:00:00Z",
              total="50.00", currency="EUR"),
        # Bob buys 14 days after his last ticket: outside the 5-day window
        Order(external_id="o2", platform="shopify", customer_email="bob@example.com", created_at="2026-01-20T10:00:00Z",
              total="20.00", currency="EUR"),
    ], None)
    yield s
    s.close()


def test_conversion_rate_per_day_and_channel(store: Store) -> None:
    days = [(r["period"], r["value"], r["count"]) for r in evaluate(store, "converted_tickets", period="day", **WINDOW).rows]
    assert days == [("2026-01-05", 1.0, 1), ("2026-01-06", 0.0, 2), ("2026-01-07", None, 0)]
    [row] = evaluate(store, "converted_tickets", **WINDOW).rows
    assert (row["value"], row["converted"], row["revenue"]) == (round(1 / 3, 6), 1, {"EUR": "50.00"})
    channels = {r["group"]: r["value"] for r in evaluate(store, "converted_tickets", by="channel", **WINDOW).rows}
    assert channels == {"chat": 0.0, "email": 0.5}


def test_a_longer_window_converts_bob(store: Store) -> None:
    from kpisync.core.metrics.settings import MetricsSettings

    [row] = evaluate(store, "converted_tickets", settings=MetricsSettings(conversion_window_days=15), **WINDOW).rows
    assert row["converted"] == 2  # Bob's order goes to his latest ticket only


def test_no_matchable_orders_is_said_plainly_not_computed(tmp_path: Path) -> None:
    """Only a test order and a cancelled one: nothing can convert, so the KPI says so and is n/a."""
    with Store(tmp_path / "s.db") as s:
        w = World(s)
        w.customer("c1", email="ann@example.com")
        w.ticket("1", "2026-01-05 09:00", "open", requester="c1")
        w.commit()
        s.write_batch("shop", "orders", [
            Order(external_id="t1", platform="shopify", customer_email="ann@example.com", created_at="2026-01-06T10:00:00Z",
                  total="5.00", currency="EUR", is_test=True),
            Order(external_id="x1", platform="shopify", customer_email="ann@example.com", created_at="2026-01-06T11:00:00Z",
                  total="5.00", currency="EUR", cancelled_at="2026-01-06T12:00:00Z"),
        ], None)
        result = evaluate(s, "converted_tickets", **WINDOW)
        [row] = result.rows
        assert (row["value"], row["converted"], row["orders"]) == (None, 0, 0)
        assert any(n.startswith("no orders synced that could convert a ticket") for n in result.notes)
