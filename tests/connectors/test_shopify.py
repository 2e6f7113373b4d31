"""`kpisync pull shopify` against the Shopify simulator, GraphQL and REST.

Expected rows are written from the shop world with Shopify's rules spelled out here: the order id
is the numeric id in both APIs, money is decimal text with two decimals, net = current total
(after refunds), status = the financial status, test and cancelled orders are kept and flagged.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from kpisync.connectors.shopify import ShopifyConfig, ShopifyConnector
from kpisync.connectors.shopify import connector as shopify_module
from kpisync.connectors.shopify.mapping import money
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.core.timeutil import iso
from kpisync.fixtures.shop_world import ShopOrder, ShopWorld, generate_shop
from kpisync.fixtures.shopify_sim import ShopifySimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.testing import ConformanceSuite, Expected, Harness

UTC = timezone.utc
TOKEN = "shpat_test_7c1d9e2f4a6b8c0d"
START = datetime(2025, 5, 1, tzinfo=UTC)
SCALE = 1000.0


def make_shop(days: int = 20, per_day: float = 12, seed: int = 5) -> ShopWorld:
    return generate_shop(seed, START, START + timedelta(days=days), orders_per_day=per_day,
                         currencies=(("EUR", 3), ("USD", 1), ("JPY", 0.5)), test_share=0.05)  # fmt: skip


def two_decimals(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount, "f")  # type: ignore[operator]


def expected_row(o: ShopOrder) -> dict[str, Any]:
    email = o.email or None
    return {
        "platform": "shopify", "customer_id": str(o.customer_id) if o.customer_id else None,
        "customer_email": email, "customer_email_norm": email.strip().lower() if email else None,
        "created_at": o.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "updated_at": o.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "total": two_decimals(o.total), "net_total": two_decimals(o.net_total), "currency": o.currency,
        "status": o.financial_status, "is_test": int(o.test),
        "cancelled_at": o.cancelled_at.strftime("%Y-%m-%dT%H:%M:%SZ") if o.cancelled_at else None,
    }  # fmt: skip


def pull(sim: ShopifySimulator, store: Store, source: str = "shopify", scale: float = SCALE, **settings: Any) -> RunResult:
    config = ShopifyConfig(shop="acme-demo", base_url=sim.url, access_token=SecretStr(sim.access_token), **settings)
    return sync_source(store, source, ShopifyConnector(config, Runtime(time_scale=scale)))


def stored(store: Store, source: str = "shopify") -> dict[str, dict[str, Any]]:
    columns = list(expected_row(make_shop(1).orders[0]))
    rows = store.query(f"SELECT external_id, {', '.join(columns)} FROM orders WHERE source = ?", (source,))
    return {r[0]: dict(zip(columns, tuple(r)[1:])) for r in rows}


# --------------------------------------------------------------------------- conformance


class ShopifyHarness(Harness):
    source = "shopify"
    connector_class = ShopifyConnector
    time_scale = SCALE
    api = "graphql"

    def world(self) -> ShopWorld:
        return make_shop()

    def simulator(self, world: ShopWorld) -> ShopifySimulator:
        return ShopifySimulator(world, access_token=TOKEN, clock=SimClock(world.now, scale=self.time_scale))

    def settings(self, sim: ShopifySimulator) -> dict[str, Any]:
        return {"shop": "acme-demo", "base_url": sim.url, "access_token": SecretStr(TOKEN), "api": self.api, "page_size": 40}

    def bad_settings(self, sim: ShopifySimulator) -> dict[str, Any]:
        return {**self.settings(sim), "access_token": SecretStr("shpat_wrong_0000000000")}

    def expected(self, world: ShopWorld) -> Expected:
        return {"orders": {str(o.id): expected_row(o) for o in world.orders}}

    def change(self, world: ShopWorld, sim: ShopifySimulator) -> None:
        at = world.now + timedelta(minutes=10)
        world.now = at + timedelta(minutes=10)
        world.add_order(at, "42.00", "EUR", email="new.buyer@example.com")
        paid = [o for o in world.orders if o.paid and not o.cancelled_at and not o.refunds]
        world.refund(paid[0].id, "5.00", at + timedelta(minutes=1), "damaged")
        world.cancel(paid[1].id, at + timedelta(minutes=2))


class RestHarness(ShopifyHarness):
    api = "rest"


class TestShopifyGraphQLConformance(ConformanceSuite):
    harness = ShopifyHarness()


class TestShopifyRestConformance(ConformanceSuite):
    harness = RestHarness()


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_without_read_all_orders_only_the_last_60_days_arrive_and_a_notice_says_so(tmp_path: Path, api: str) -> None:
    shop = make_shop(days=120, per_day=4)
    clock = SimClock(shop.now + timedelta(hours=1), scale=0)  # frozen: the 60-day edge stays put
    sim = ShopifySimulator(shop, access_token=TOKEN, clock=clock, scopes=("read_orders",), bucket_size=1e6)
    cutoff = clock.now() - timedelta(days=60)
    with sim, Store(tmp_path / "s.db") as store:
        run = pull(sim, store, api=api)
        assert run.status == "success", run.error
        assert set(stored(store)) == {str(o.id) for o in shop.orders if o.created_at > cutoff}
        assert len(stored(store)) < len(shop.orders)
        assert any("read_all_orders" in n and "60 days" in n for n in run.notices), run.notices
        recent = pull(sim, store, source="recent", api=api, start_date=cutoff + timedelta(days=1))
        assert recent.notices == []  # nothing older than 60 days was asked for


def test_throttled_queries_wait_for_the_budget_and_pacing_avoids_more(tmp_path: Path) -> None:
    shop = make_shop(days=20, per_day=20)
    sim = ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE), bucket_size=1000, restore_rate=50)
    answer = sim.handle
    drained: list[bool] = []

    def drain_before_first_query(request: Any) -> Any:
        # Another process of the same app spends every point just before our first query arrives
        # (draining at the request, not before the pull, keeps the 1000x clock from refilling it).
        if not drained and request.path.endswith("graphql.json"):
            drained.append(True)
            sim.drain_bucket()
        return answer(request)

    sim.handle = drain_before_first_query  # type: ignore[method-assign]
    with sim, Store(tmp_path / "s.db") as store:
        run = pull(sim, store)
        assert run.status == "success", run.error
        assert stored(store) == {str(o.id): expected_row(o) for o in shop.orders}
        assert 1 <= sim.throttled <= 2  # the first blind query; afterwards the connector paces itself
        # Each full page costs ~998 of a 1000-point bucket restoring 50/s: the client waits between
        # pages (how long depends on how fast the machine answers on the 1000× clock).
        assert run.streams[0].waited > 0


def test_a_page_over_the_single_query_cost_cap_is_shrunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shopify_module, "NODE_COST", 3)  # underestimate: 250 orders would cost 1502
    shop = make_shop()
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        run = pull(sim, store)
        assert run.status == "success", run.error
        assert len(stored(store)) == len(shop.orders)
        # the scope check, the refused 250-order query, then pages of 165 (250 × 1000/1502, minus one)
        assert sim.request_count(r"graphql\.json$") == 1 + 1 + -(-len(shop.orders) // 165)


def test_an_order_updated_while_paging_is_not_lost(tmp_path: Path) -> None:
    shop = make_shop()

    class Busy(ShopifySimulator):
        """After the first orders page, refund an order the client has not reached yet."""

        def _orders(self, field: Any, variables: dict[str, Any]) -> Any:
            answer = super()._orders(field, variables)
            if variables.get("after") is None and "query" in variables:
                last = max(shop.orders, key=lambda o: (o.updated_at, o.id))
                victim = next(o for o in sorted(shop.orders, key=lambda o: o.updated_at, reverse=True)
                              if o.paid and not o.cancelled_at and o.refunded < o.total and o is not last)  # fmt: skip
                shop.now += timedelta(minutes=5)
                shop.refund(victim.id, "1.00", shop.now)
            return answer

    with Busy(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store, page_size=40).status == "success"
        assert stored(store) == {str(o.id): expected_row(o) for o in shop.orders}


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_state_saved_by_the_connector_before_the_sdk_port_is_continued(tmp_path: Path, api: str) -> None:
    shop = make_shop()
    mark = sorted(o.updated_at for o in shop.orders)[-10]  # the 10th newest change
    # The formats the pre-SDK connector saved: GraphQL the newest updatedAt committed; REST the
    # newest updated_at of a complete pass and how far back the next pass starts.
    saved = {"updated_at": iso(mark)} if api == "graphql" else {"updated_at": iso(mark), "overlap_s": 600}
    since = mark if api == "graphql" else mark - timedelta(seconds=600)
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        store.write_batch("shopify", "orders", [], saved)
        run = pull(sim, store, api=api)
        assert run.status == "success", run.error
        assert set(stored(store)) == {str(o.id) for o in shop.orders if o.updated_at >= since}
        assert run.requests == 1  # one page, no scope check (not a first sync)
        newest = iso(max(o.updated_at for o in shop.orders))
        assert store.get_state("shopify", "orders")["updated_at"] == newest  # type: ignore[index]
        if api == "rest":
            assert sim.request_log()[0].query["updated_at_min"] == [iso(since)]


def test_graphql_and_rest_write_the_same_rows(tmp_path: Path) -> None:
    shop = make_shop()
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store, source="via_graphql").status == "success"
        assert pull(sim, store, source="via_rest", api="rest").status == "success"
        assert stored(store, "via_graphql") == stored(store, "via_rest") == {str(o.id): expected_row(o) for o in shop.orders}


def test_rest_filters_go_on_the_first_request_only(tmp_path: Path) -> None:
    shop = make_shop()
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store, api="rest", page_size=30).status == "success"
        pages = [r for r in sim.request_log() if r.path.endswith("orders.json")]
        assert len(pages) == -(-len(shop.orders) // 30)
        assert pages[0].query["status"] == ["any"] and "page_info" not in pages[0].query
        assert all(set(r.query) == {"page_info", "limit"} for r in pages[1:])
        # …because Shopify refuses a filter next to page_info:
        url = sim.url + "/admin/api/2025-01/orders.json"
        headers = {"X-Shopify-Access-Token": TOKEN}
        first = requests.get(url, params={"status": "any", "limit": 5}, headers=headers, timeout=5)
        next_url = first.links["next"]["url"]
        refused = requests.get(next_url + "&status=any", headers=headers, timeout=5)
        assert refused.status_code == 400
        assert "status cannot be passed when page_info is present" in refused.json()["errors"]["status"]
        assert first.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")


def test_rest_paces_to_the_leaky_bucket_instead_of_hitting_429(tmp_path: Path) -> None:
    shop = make_shop(days=10)
    # A slow clock (10×): requests come faster than the bucket leaks, so pacing has to kick in.
    sim = ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=10), rest_bucket=4, rest_leak_rate=2)
    with sim, Store(tmp_path / "s.db") as store:
        run = pull(sim, store, api="rest", page_size=10, scale=10)
        assert run.status == "success", run.error
        assert len(stored(store)) == len(shop.orders)
        assert sim.request_count() > 8
        assert sim.request_count(status=429) == 0
        assert run.streams[0].waited > 0


def test_rest_default_status_would_miss_cancelled_orders(tmp_path: Path) -> None:
    """Why the connector sends status=any: Shopify's default lists open orders only."""
    shop = make_shop()
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim:
        url = sim.url + "/admin/api/2025-01/orders.json"
        headers = {"X-Shopify-Access-Token": TOKEN}
        default = requests.get(url, params={"limit": 250}, headers=headers, timeout=5).json()["orders"]
        everything = requests.get(url, params={"limit": 250, "status": "any"}, headers=headers, timeout=5).json()["orders"]
        assert len(everything) == len(shop.orders) > len(default)
        assert not any(o["cancelled_at"] for o in default)


def test_money_text_is_the_same_whatever_the_api_prints() -> None:
    assert money("199.0") == money("199.00") == "199.00"
    assert money("24.9") == "24.90"
    assert money("5000") == money("5000.0") == "5000.00"  # JPY
    assert money("0.125") == "0.125"


def test_a_wrong_token_is_one_auth_error_without_the_token(tmp_path: Path) -> None:
    shop = make_shop(days=2)
    with ShopifySimulator(shop, access_token=TOKEN, clock=SimClock(shop.now, scale=SCALE)) as sim:
        config = ShopifyConfig(shop="acme-demo", base_url=sim.url, access_token=SecretStr("shpat_nope_123456"))
        with pytest.raises(AuthError) as caught:
            ShopifyConnector(config, Runtime(time_scale=SCALE)).check()
        assert "authentication failed (HTTP 401)" in str(caught.value)
        assert "shpat_nope_123456" not in str(caught.value)
