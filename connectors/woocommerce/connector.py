"""WooCommerce orders through the REST API v3 (`/wp-json/wc/v3/orders`).

Requests per sync ≈ ⌈changed orders / 100⌉ + 1. Endpoint, paging and auth are in README.md
beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import ConfigError, MalformedPayload
from kpisync.core.httpclient import Runtime
from kpisync.core.models import Order
from kpisync.core.sdk import ApiKeyQuery, Auth, BasicAuth, PageNumber, RestConnector, RestStream, UpdatedSince
from kpisync.core.sdk.incremental import State, Step

ORDERS_PATH = "/wp-json/wc/v3/orders"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
GMT = "%Y-%m-%dT%H:%M:%S"  # WooCommerce's bare GMT form (the *_gmt fields; with dates_are_gmt=true)


class WooCommerceConfig(ConnectorConfig):
    """Settings: KPISYNC_WOOCOMMERCE_<FIELD> or [sources.woocommerce] in kpisync.toml.

    `base_url` is the store's address (https://shop.example.com).
    """

    consumer_key: SecretStr
    consumer_secret: SecretStr
    #: basic (HTTP Basic over HTTPS) or query (consumer_key/consumer_secret parameters, for
    #: servers that strip the Authorization header).
    auth: Literal["basic", "query"] = "basic"
    per_page: int = Field(100, ge=1, le=100)

    @model_validator(mode="after")
    def _need_https_site(self) -> WooCommerceConfig:
        if not self.base_url:
            raise ValueError("set 'base_url' to the store's address, e.g. https://shop.example.com")
        return self


class ModifiedAfter(UpdatedSince):
    """`modified_after` is strict and to the second: ask from one second before the newest
    `date_modified_gmt` read (the boundary second is read again, its seen ids dropped)."""

    def __init__(self) -> None:
        super().__init__("modified_after", "date_modified_gmt", fmt=GMT, overlap=timedelta(seconds=1), earliest=None)

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        if state and "modified" in state:  # the state of the connector before the SDK port
            state = {"since": state["modified"]}
        return super().read(stream, state)


class OrdersStream(RestStream):
    """Orders by `date_modified_gmt` ascending, restarting each page at the newest one seen.

    Restarting from the cursor instead of walking `page=1,2,…` means an order modified while we
    page is not skipped: it moves behind the cursor and is read again later. Only when a whole
    page shares the cursor's second does the stream step through `page`, up to a short page or
    X-WP-TotalPages.
    """

    name = "orders"
    path = ORDERS_PATH
    params = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true"}
    cursor = ModifiedAfter()

    def __init__(self, connector: WooCommerceConnector) -> None:
        super().__init__(connector)
        size = connector.config.per_page
        self.paginator = PageNumber(size_param="per_page", size=size, total_pages_header="X-WP-TotalPages")

    def map(self, item: dict[str, Any]) -> Order:
        return order(item)


class WooCommerceConnector(RestConnector):
    name = "woocommerce"
    title = "WooCommerce"
    kind = "shop"
    config_model = WooCommerceConfig
    description = "Orders (net of refunds, cancelled and failed flagged by status) via the WooCommerce REST API v3."
    stream_classes = [OrdersStream]

    config: WooCommerceConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        assert isinstance(config, WooCommerceConfig) and config.base_url
        parts = urlsplit(config.base_url)
        if parts.scheme != "https" and parts.hostname not in LOOPBACK:
            raise ConfigError(
                "woocommerce: the store accepts API keys only over HTTPS; set base_url to https://… "
                "(plain HTTP needs OAuth 1.0a signatures, which kpisync does not implement)"
            )
        super().__init__(config, runtime)

    def authenticator(self) -> Auth:
        key, secret = self.config.consumer_key, self.config.consumer_secret
        auth: Auth = BasicAuth(key, secret) if self.config.auth == "basic" else ApiKeyQuery({"consumer_key": key, "consumer_secret": secret})
        auth.hint = "check consumer_key and consumer_secret (KPISYNC_WOOCOMMERCE_CONSUMER_KEY/_SECRET); the key needs Read access"
        return auth

    def check(self) -> None:
        data = self.http.get(ORDERS_PATH, {"per_page": 1}).data
        if not isinstance(data, list):
            raise MalformedPayload(f"woocommerce: {ORDERS_PATH} did not answer with a list — is base_url a WooCommerce store?")


def order(item: dict[str, Any]) -> Order:
    """WooCommerce order JSON → canonical Order (net = total − refunds)."""
    total = _money(item.get("total"))
    refunded = sum((abs(_money(r.get("total"))) for r in item.get("refunds") or []), Decimal(0))
    billing = item.get("billing") or {}
    customer = item.get("customer_id")
    return Order(
        external_id=item["id"],
        platform="woocommerce",
        customer_id=customer if customer else None,  # 0 = guest checkout
        customer_email=billing.get("email") or None,
        customer_phone=billing.get("phone") or (item.get("shipping") or {}).get("phone") or None,  # shipping.phone: WC 5.6+
        created_at=item.get("date_created_gmt") or item["date_created"],
        updated_at=item.get("date_modified_gmt"),
        total=_text(total),
        net_total=_text(max(Decimal(0), total - refunded)),
        currency=item["currency"],
        status=item.get("status"),
        raw=item,
    )


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MalformedPayload(f"woocommerce: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise MalformedPayload(f"woocommerce: {value!r} is not a decimal amount")
    return amount


def _text(amount: Decimal) -> str:
    """Decimal text with at least two decimals, like the other order connectors."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")
