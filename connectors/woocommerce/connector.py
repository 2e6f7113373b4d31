"""WooCommerce orders through the REST API v3 (`/wp-json/wc/v3/orders`).

Requests per sync ≈ ⌈changed orders / 100⌉ + 1. Endpoint, paging and auth are in README.md
beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ConfigError, MalformedPayload
from kpisync.core.httpclient import HttpClient, Runtime
from kpisync.core.models import Order
from kpisync.core.timeutil import to_utc

ORDERS_PATH = "/wp-json/wc/v3/orders"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


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


class WooCommerceConnector(Connector):
    name = "woocommerce"
    title = "WooCommerce"
    kind = "shop"
    config_model = WooCommerceConfig
    description = "Orders (net of refunds, cancelled and failed flagged by status) via the WooCommerce REST API v3."

    config: WooCommerceConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, WooCommerceConfig) and config.base_url
        parts = urlsplit(config.base_url)
        if parts.scheme != "https" and parts.hostname not in LOOPBACK:
            raise ConfigError(
                "woocommerce: the store accepts API keys only over HTTPS; set base_url to https://… "
                "(plain HTTP needs OAuth 1.0a signatures, which kpisync does not implement)"
            )
        key, secret = config.consumer_key.get_secret_value(), config.consumer_secret.get_secret_value()
        self.auth_params = {"consumer_key": key, "consumer_secret": secret} if config.auth == "query" else {}
        self.http = HttpClient(
            config.base_url,
            runtime,
            name="woocommerce",
            basic_auth=(key, secret) if config.auth == "basic" else None,
            secrets=config.secret_values(),
            auth_hint="check consumer_key and consumer_secret (KPISYNC_WOOCOMMERCE_CONSUMER_KEY/_SECRET); the key needs Read access",
        )

    def check(self) -> None:
        data = self.http.get(ORDERS_PATH, {"per_page": 1, **self.auth_params}).data
        if not isinstance(data, list):
            raise MalformedPayload(f"woocommerce: {ORDERS_PATH} did not answer with a list — is base_url a WooCommerce store?")

    def streams(self) -> list[Stream]:
        return [OrdersStream(self)]

    def close(self) -> None:
        self.http.close()


class OrdersStream(Stream):
    """Orders by `date_modified_gmt` ascending, restarting each page at the newest one seen.

    `modified_after` is strict and to the second, so each request asks for everything after
    (cursor − 1 s) and the boundary second is read again (the upsert absorbs it). Restarting from
    the cursor instead of walking `page=1,2,…` means an order modified while we page is not
    skipped: it moves behind the cursor and is read again later. Only when a whole page shares
    the cursor's second does the stream step through `page`.
    """

    name = "orders"

    def __init__(self, connector: WooCommerceConnector) -> None:
        self.woo = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        config = self.woo.config
        cursor = to_utc((state or {}).get("modified")) or config.start_date
        page = 1
        while True:
            params: dict[str, Any] = {
                "per_page": config.per_page, "orderby": "modified", "order": "asc", "dates_are_gmt": "true",
                "page": page, **self.woo.auth_params,
            }  # fmt: skip
            if cursor is not None:
                params["modified_after"] = _gmt(cursor - timedelta(seconds=1))
            response = self.woo.http.get(ORDERS_PATH, params)
            if not isinstance(response.data, list):
                raise MalformedPayload(f"malformed response from GET {ORDERS_PATH}: expected a list")
            records = [order(item) for item in response.data]
            newest = records[-1].updated_at if records else None
            if newest is not None and (cursor is None or newest > cursor):
                cursor, page = newest, 1
            else:
                page += 1
            last_page = len(records) < config.per_page or _int(response.headers.get("X-WP-TotalPages")) <= 1
            yield Batch(records, {"modified": _gmt(cursor)} if cursor else None)
            if last_page:
                return


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
        customer_phone=billing.get("phone") or None,
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


def _gmt(at: datetime) -> str:
    """WooCommerce's bare GMT form (the *_gmt fields; with dates_are_gmt=true)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 1
    except ValueError:
        return 1
