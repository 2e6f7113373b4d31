"""Phones reach the store from every connector that has them (converted tickets match on them).

Mapping checks use payloads shaped like each vendor's documented JSON; the Shopify and
WooCommerce checks pull a shop with phone-only guest orders from the simulators.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from kpisync.connectors.freshdesk import mapping as freshdesk
from kpisync.connectors.helpscout import mapping as helpscout
from kpisync.connectors.shopify import ShopifyConfig, ShopifyConnector
from kpisync.connectors.shopify import mapping as shopify
from kpisync.connectors.woocommerce import connector as woocommerce
from kpisync.connectors.zendesk import mapping as zendesk
from kpisync.core.httpclient import Runtime
from kpisync.core.phone import phone_key
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
from kpisync.fixtures.shop_world import generate_shop
from kpisync.fixtures.shopify_sim import ShopifySimulator
from kpisync.fixtures.simserver import SimClock

UTC = timezone.utc
START = datetime(2025, 5, 1, tzinfo=UTC)


def test_help_desk_people_bring_their_phone() -> None:
    user = zendesk.user({"id": 1, "role": "end-user", "email": None, "phone": "+49 30 1234567", "shared_phone_number": False})
    assert (user.phone, user.phone_norm) == ("+49 30 1234567", "49301234567")
    office = zendesk.user({"id": 2, "role": "end-user", "phone": "+49 30 1234500", "shared_phone_number": True})
    assert office.phone is None  # a shared line is not one customer's key
    mobile_only = freshdesk.contact({"id": 3, "name": "Ann", "email": None, "phone": None, "mobile": "0171 2345678"})
    assert (mobile_only.phone, mobile_only.phone_norm) == ("0171 2345678", "01712345678")
    customer = helpscout.customer({"id": 4, "firstName": "Vernon", "lastName": "Bear", "_embedded": {
        "emails": [], "phones": [{"id": 1, "value": "+1 555 0100 999", "type": "fax"},
                                 {"id": 2, "value": "222-333-4444", "type": "home"}]}})  # fmt: skip
    assert (customer.email, customer.phone) == (None, "222-333-4444")


def test_orders_fall_back_to_the_billing_and_shipping_phone() -> None:
    node = {"legacyResourceId": "9", "email": None, "phone": None, "customer": None, "createdAt": "2025-05-02T10:00:00Z",
            "billingAddress": {"phone": "030 1234567"}, "totalPriceSet": {"shopMoney": {"amount": "5.0", "currencyCode": "EUR"}},
            "currencyCode": "EUR"}  # fmt: skip
    rest = {"id": 9, "email": "", "phone": None, "customer": None, "created_at": "2025-05-02T12:00:00+02:00",
            "billing_address": {"phone": "030 1234567"}, "total_price": "5.00", "currency": "EUR"}  # fmt: skip
    assert shopify.graphql_order(node).customer_phone_norm == shopify.rest_order(rest).customer_phone_norm == "0301234567"
    woo = woocommerce.order({"id": 7, "total": "5.00", "currency": "EUR", "date_created_gmt": "2025-05-02T10:00:00",
                             "billing": {"email": "", "phone": ""}, "shipping": {"phone": "+49 170 1234567"}})  # fmt: skip
    assert woo.customer_phone_norm == "491701234567"


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_phone_only_guest_orders_arrive_with_their_phone(api: str, tmp_path: Path) -> None:
    contacts = [(f"+49 30 {2000000 + i}", START + timedelta(days=i % 12, hours=i)) for i in range(60)]
    shop = generate_shop(11, START, START + timedelta(days=20), orders_per_day=4, phone_contacts=contacts)
    phone_only = {str(o.id): o for o in shop.orders if o.email is None and o.customer_id is None}
    assert phone_only and any(o.billing_phone for o in phone_only.values()) and any(o.phone for o in phone_only.values())
    with ShopifySimulator(shop, clock=SimClock(shop.now)) as sim, Store(tmp_path / "s.db") as store:
        config = ShopifyConfig(shop="acme-demo", base_url=sim.url, access_token=SecretStr(sim.access_token), api=api)
        assert sync_source(store, "shopify", ShopifyConnector(config, Runtime(time_scale=1000.0))).status == "success"
        rows = {r[0]: r[1] for r in store.query("SELECT external_id, customer_phone_norm FROM orders WHERE customer_email IS NULL "
                                                "AND customer_id IS NULL")}  # fmt: skip
    # Every phone-only order is stored with the contact's number, whatever way it was written
    # ("030 2000005" is kept national: the default country applies when matching).
    assert set(rows) >= set(phone_only)
    assert {phone_key(rows[k], "49") for k in phone_only} <= {f"49302{i:06d}" for i in range(60)}
