"""`kpisync pull woocommerce` against the WooCommerce simulator.

Expected rows follow WooCommerce's rules spelled out here: net = total − refunds (refund totals
are negative strings), customer_id 0 means a guest, the billing email identifies the buyer,
status is WooCommerce's own (pending, processing, completed, cancelled, refunded, failed) and
there is no test flag.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from kpisync.connectors.woocommerce import WooCommerceConfig, WooCommerceConnector
from kpisync.core.errors import ConfigError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.shop_world import ShopOrder, ShopWorld, generate_shop
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.woocommerce_sim import WooCommerceSimulator
from kpisync.testing import ConformanceSuite, Expected, Harness

UTC = timezone.utc
KEY, SECRET = "ck_test_3f9a1c7e5b2d8046", "cs_test_b7e2d4f6a8c0e1f3"
START = datetime(2025, 6, 1, tzinfo=UTC)
SCALE = 1000.0


def make_shop(days: int = 20, per_day: float = 12, seed: int = 8) -> ShopWorld:
    return generate_shop(seed, START, START + timedelta(days=days), orders_per_day=per_day,
                         currencies=(("EUR", 2), ("USD", 1), ("GBP", 1)), test_share=0)  # fmt: skip


def woo_status(o: ShopOrder) -> str:
    if o.cancelled_at:
        return "failed" if o.cancel_reason == "declined" else "cancelled"
    if not o.paid:
        return "pending"
    if o.refunds and o.refunded >= o.total:
        return "refunded"
    return "completed" if o.fulfilled_at else "processing"


def expected_row(o: ShopOrder) -> dict[str, Any]:
    stamp = lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {
        "platform": "woocommerce", "customer_id": str(o.customer_id) if o.customer_id else None,
        "customer_email": o.email or None, "customer_email_norm": o.email.strip().lower() if o.email else None,
        "created_at": stamp(o.created_at), "updated_at": stamp(o.updated_at),
        "total": format(o.total.quantize(Decimal("0.01")), "f"), "net_total": format(o.net_total.quantize(Decimal("0.01")), "f"),
        "currency": o.currency, "status": woo_status(o), "is_test": 0, "cancelled_at": None,
    }  # fmt: skip


def pull(sim: WooCommerceSimulator, store: Store, source: str = "woocommerce", **settings: Any) -> RunResult:
    config = WooCommerceConfig(base_url=sim.url, consumer_key=SecretStr(KEY), consumer_secret=SecretStr(SECRET), **settings)
    return sync_source(store, source, WooCommerceConnector(config, Runtime(time_scale=SCALE)))


def stored(store: Store, source: str = "woocommerce") -> dict[str, dict[str, Any]]:
    columns = list(expected_row(make_shop(1).orders[0]))
    rows = store.query(f"SELECT external_id, {', '.join(columns)} FROM orders WHERE source = ?", (source,))
    return {r[0]: dict(zip(columns, tuple(r)[1:])) for r in rows}


def simulator(shop: ShopWorld, **kwargs: Any) -> WooCommerceSimulator:
    return WooCommerceSimulator(shop, KEY, SECRET, clock=SimClock(shop.now, scale=SCALE), **kwargs)


# --------------------------------------------------------------------------- conformance


class WooHarness(Harness):
    source = "woocommerce"
    connector_class = WooCommerceConnector
    time_scale = SCALE
    auth = "basic"

    def world(self) -> ShopWorld:
        return make_shop()

    def simulator(self, world: ShopWorld) -> WooCommerceSimulator:
        return simulator(world)

    def settings(self, sim: WooCommerceSimulator) -> dict[str, Any]:
        return {"base_url": sim.url, "consumer_key": SecretStr(KEY), "consumer_secret": SecretStr(SECRET),
                "auth": self.auth, "per_page": 25}  # fmt: skip

    def bad_settings(self, sim: WooCommerceSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "consumer_secret": SecretStr("cs_wrong_000000000000")}

    def expected(self, world: ShopWorld) -> Expected:
        return {"orders": {str(o.id): expected_row(o) for o in world.orders}}

    def change(self, world: ShopWorld, sim: WooCommerceSimulator) -> None:
        at = world.now + timedelta(minutes=10)
        world.now = at + timedelta(minutes=10)
        world.add_order(at, "19.99", "EUR", email="New.Buyer@Example.com")
        paid = [o for o in world.orders if o.paid and not o.cancelled_at and not o.refunds]
        world.refund(paid[0].id, "2.50", at + timedelta(minutes=1))
        world.cancel(paid[1].id, at + timedelta(minutes=2))


class QueryAuthHarness(WooHarness):
    """Keys in the query string: the secret is in every URL and still must not leak anywhere."""

    auth = "query"


class TestWooCommerceConformance(ConformanceSuite):
    harness = WooHarness()


class TestWooCommerceQueryAuthConformance(ConformanceSuite):
    harness = QueryAuthHarness()


# --------------------------------------------------------------------------- behaviour


def test_requests_ask_for_modified_orders_in_gmt_oldest_first(tmp_path: Path) -> None:
    shop = make_shop()
    with simulator(shop) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store).status == "success"
        first = sim.request_log()[0].query
        assert (first["orderby"], first["order"], first["per_page"], first["dates_are_gmt"]) == (["modified"], ["asc"], ["100"], ["true"])
        assert "modified_after" not in first  # the first sync has no start date: everything
        later = sim.request_log()[1].query
        newest = max(o.updated_at for o in shop.orders if o.updated_at <= datetime.fromisoformat(later["modified_after"][0] + "+00:00") + timedelta(seconds=1))
        assert later["modified_after"] == [(newest - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")]
        before = sim.request_count()
        again = pull(sim, store)
        assert (again.rows_written, sim.request_count() - before) == (0, 1)


def test_an_order_modified_while_paging_is_not_skipped(tmp_path: Path) -> None:
    """Walking page=1,2,… would skip one order here: the refunded one moves to the end and the
    rest shift one place forward under the client's feet."""
    shop = make_shop()
    done: list[bool] = []

    class Busy(WooCommerceSimulator):
        def _orders(self, request: Any) -> Any:
            answer = super()._orders(request)
            if not done:
                done.append(True)
                oldest = min((o for o in shop.orders if o.paid and not o.cancelled_at and not o.refunds), key=lambda o: o.updated_at)
                shop.now += timedelta(minutes=5)
                shop.refund(oldest.id, "1.00", shop.now)  # already read on page 1 → moves behind us
            return answer

    with Busy(shop, KEY, SECRET, clock=SimClock(shop.now, scale=SCALE)) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store, per_page=20).status == "success"
        assert stored(store) == {str(o.id): expected_row(o) for o in shop.orders}


def test_more_orders_in_one_second_than_fit_a_page(tmp_path: Path) -> None:
    shop = make_shop(days=5)
    bulk = shop.now + timedelta(minutes=1)
    shop.now = bulk
    for order in [o for o in shop.orders if o.paid and not o.cancelled_at and o.refunded < o.total][:45]:
        shop.refund(order.id, "0.01", bulk)  # a bulk action: 45 orders modified in the same second
    with simulator(shop) as sim, Store(tmp_path / "s.db") as store:
        run = pull(sim, store, per_page=10)
        assert run.status == "success", run.error
        assert stored(store) == {str(o.id): expected_row(o) for o in shop.orders}
        assert [r.query.get("page") for r in sim.request_log()][-5:] == [["1"], ["2"], ["3"], ["4"], ["5"]]


def test_dates_are_read_in_the_site_zone_unless_gmt_is_asked_for() -> None:
    shop = make_shop(days=3)
    with simulator(shop, site_timezone="Europe/Berlin") as sim:
        auth = (KEY, SECRET)
        o = sorted(shop.orders, key=lambda o: o.updated_at)[len(shop.orders) // 2]
        bound = o.updated_at.strftime("%Y-%m-%dT%H:%M:%S")
        gmt = requests.get(sim.url + "/wp-json/wc/v3/orders", auth=auth, params={"modified_after": bound, "dates_are_gmt": "true", "per_page": 100}, timeout=5)
        local = requests.get(sim.url + "/wp-json/wc/v3/orders", auth=auth, params={"modified_after": bound, "per_page": 100}, timeout=5)
        assert int(local.headers["X-WP-Total"]) > int(gmt.headers["X-WP-Total"])  # Berlin is ahead of GMT: an earlier bound
        assert all(row["date_modified_gmt"] > bound for row in gmt.json())


def test_invalid_parameters_are_refused_like_wordpress() -> None:
    shop = make_shop(days=2)
    with simulator(shop) as sim:
        url, auth = sim.url + "/wp-json/wc/v3/orders", (KEY, SECRET)
        bad = requests.get(url, auth=auth, params={"orderby": "date_modified"}, timeout=5)
        assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"
        assert "date, id, include, title, slug, and modified" in bad.json()["data"]["params"]["orderby"]
        assert requests.get(url, auth=auth, params={"per_page": 101}, timeout=5).status_code == 400
        paged = requests.get(url, auth=auth, params={"per_page": 5, "page": 2}, timeout=5)
        assert 'rel="next"' in paged.headers["Link"] and 'rel="prev"' in paged.headers["Link"]
        assert int(paged.headers["X-WP-TotalPages"]) == -(-len(shop.orders) // 5)
        nobody = requests.get(url, timeout=5)
        assert (nobody.status_code, nobody.json()["code"]) == (401, "woocommerce_rest_cannot_view")


def test_refunds_guests_and_statuses_land_as_a_user_expects(tmp_path: Path) -> None:
    shop = make_shop()
    with simulator(shop) as sim, Store(tmp_path / "s.db") as store:
        assert pull(sim, store).status == "success"
        rows = stored(store)
        partial = next(o for o in shop.orders if o.refunds and o.refunded < o.total)
        assert Decimal(rows[str(partial.id)]["net_total"]) == partial.total - partial.refunded
        guest = next(o for o in shop.orders if o.customer_id is None)
        assert rows[str(guest.id)]["customer_id"] is None and rows[str(guest.id)]["customer_email_norm"]
        assert {r["status"] for r in rows.values()} >= {"completed", "cancelled", "refunded"}


def test_plain_http_sites_are_refused_before_any_request() -> None:
    config = WooCommerceConfig(base_url="http://shop.example.com", consumer_key=SecretStr(KEY), consumer_secret=SecretStr(SECRET))
    with pytest.raises(ConfigError, match="HTTPS"):
        WooCommerceConnector(config, Runtime())
