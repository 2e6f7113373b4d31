"""Shopify orders: the GraphQL Admin API first, the legacy REST API as a fallback.

Requests per sync ≈ ⌈changed orders / 142⌉ (GraphQL: 142 orders keep one query under the
1000-point single-query cap) or ⌈changed orders / 250⌉ (REST), plus one scope check on the first
sync. Endpoints, limits and the 60-day window are in README.md beside this file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import Batch, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, MalformedPayload
from kpisync.core.httpclient import RatePolicy, Runtime, expect
from kpisync.core.models import Order
from kpisync.core.sdk import (
    ApiKeyHeader, Auth, Connection, ConnectionSince, CostBucket, Cursor, GraphQL, GraphQLStream, LinkHeader,
    RestConnector, RestStream,
)  # fmt: skip
from kpisync.core.sdk.incremental import State, Step
from kpisync.core.sdk.paginate import Request
from kpisync.core.timeutil import iso, to_utc, utcnow

from . import mapping

#: Cost of one order node in ORDERS_QUERY: the order, customer, billing address and two MoneyBag→MoneyV2 pairs.
NODE_COST = 7
MAX_QUERY_COST = 1000
ALL_ORDERS_WINDOW = timedelta(days=60)

ORDER_FIELDS = """id legacyResourceId name email phone createdAt updatedAt cancelledAt test
      displayFinancialStatus currencyCode
      customer { legacyResourceId email phone }
      billingAddress { phone }
      totalPriceSet { shopMoney { amount currencyCode } }
      currentTotalPriceSet { shopMoney { amount currencyCode } }"""
ORDERS_QUERY = f"""query Orders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {ORDER_FIELDS} }}
  }}
}}"""
SCOPES_QUERY = "query { currentAppInstallation { accessScopes { handle } } }"
SHOP_QUERY = "query { shop { name } }"


class ShopifyConfig(ConnectorConfig):
    """Settings: KPISYNC_SHOPIFY_<FIELD> or [sources.shopify] in kpisync.toml."""

    #: The shop: "acme" or "acme.myshopify.com".
    shop: str | None = None
    #: Admin API access token (shpat_…); needs read_orders, and read_all_orders for history.
    access_token: SecretStr
    #: graphql (default) or rest — the legacy REST Admin API for existing custom-app tokens.
    api: Literal["graphql", "rest"] = "graphql"
    api_version: str = "2025-01"
    #: Orders per page: GraphQL pages are also capped by the query cost (142), REST at 250.
    page_size: int = Field(250, ge=1, le=250)
    #: REST bucket leak rate, calls per second (2 standard, 4 Advanced, 20 Plus).
    rest_calls_per_second: float = 2.0

    @model_validator(mode="after")
    def _need_shop(self) -> ShopifyConfig:
        if not self.shop and not self.base_url:
            raise ValueError("set 'shop' (e.g. acme or acme.myshopify.com) or 'base_url'")
        return self


class ShopifyConnector(RestConnector):
    name = "shopify"
    title = "Shopify"
    kind = "shop"
    config_model = ShopifyConfig
    description = "Orders (net of refunds, test and cancelled flagged) via the GraphQL Admin API, REST as a fallback."

    config: ShopifyConfig

    @cached_property
    def shop_url(self) -> str:
        shop = (self.config.shop or "").removesuffix("/")
        host = shop if "." in shop else f"{shop}.myshopify.com"
        return (self.config.base_url or f"https://{host}").rstrip("/")

    def api_base_url(self) -> str:
        return f"{self.shop_url}/admin/api/{self.config.api_version}"

    def authenticator(self) -> Auth:
        auth = ApiKeyHeader("X-Shopify-Access-Token", self.config.access_token)
        auth.hint = "check access_token (KPISYNC_SHOPIFY_ACCESS_TOKEN); the app needs the read_orders scope"
        return auth

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def rate_policy(self) -> RatePolicy:
        if self.config.api == "graphql":
            return CostBucket(name="Shopify GraphQL query cost budget")
        return LeakyBucket(self.config.rest_calls_per_second)

    @cached_property
    def graphql(self) -> GraphQL:
        return GraphQL(self.http, GraphQLOrders.path)

    def check(self) -> None:
        if self.config.api == "graphql":
            shop = expect(self.graphql.query(SHOP_QUERY), "shop", dict, "GraphQL shop")
        else:
            shop = expect(self.http.get("shop.json").data, "shop", dict, "GET shop.json")
        if not shop.get("name"):
            raise MalformedPayload("shopify: the shop has no name — is base_url a Shopify shop?")

    def streams(self) -> list[Stream]:
        return [GraphQLOrders(self) if self.config.api == "graphql" else RestOrders(self)]

    def lacks_all_orders(self) -> bool | None:
        """Whether the token misses read_all_orders (None: the scopes could not be read)."""
        try:
            if self.config.api == "graphql":
                install = expect(self.graphql.query(SCOPES_QUERY), "currentAppInstallation", dict, "GraphQL scopes")
                handles = {s.get("handle") for s in install.get("accessScopes") or []}
            else:
                response = self.http.get(f"{self.shop_url}/admin/oauth/access_scopes.json", tolerate=(403, 404))
                if response.status != 200:
                    return None
                handles = {s.get("handle") for s in expect(response.data, "access_scopes", list, "GET access_scopes.json")}
        except (ApiError, MalformedPayload):
            return None
        return "read_all_orders" not in handles

    def window_notices(self, lacks: bool | None, newest: datetime | None) -> list[str]:
        """The 60-day notice at the end of a first sync, when older orders were asked for.

        "Now" on the shop's side is estimated by the newest change read (never later than the
        shop's clock), so a wrong local clock cannot cause or hide the notice.
        """
        start = self.config.start_date
        if lacks is None:
            return ["could not read the token's access scopes; without read_all_orders, orders older than 60 days are missing"]
        shop_now = newest or utcnow()
        if not lacks or (start is not None and start >= shop_now - ALL_ORDERS_WINDOW):
            return []
        wanted = f"since {iso(start)}" if start else "from the beginning"
        return [
            f"the access token lacks the read_all_orders scope: Shopify only returns orders created in the last 60 days, "
            f"so orders older than that are missing (asked for orders {wanted}); grant read_all_orders to the app and run "
            "`kpisync pull shopify --full-refresh`"
        ]


class LeakyBucket(RatePolicy):
    """REST: `X-Shopify-Shop-Api-Call-Limit: used/size` leaks `rate` calls a second; keep one slot free."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.used = 0.0
        self.size = math.inf
        self.at = 0.0

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        used = max(0.0, self.used - (runtime.now() - self.at) * self.rate)
        over = used + 2 - self.size
        return (over / self.rate, "Shopify REST call limit (leaky bucket)") if over > 0 else (0.0, "")

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        header = response.headers.get("X-Shopify-Shop-Api-Call-Limit", "")
        used, _, size = header.partition("/")
        try:
            self.used, self.size, self.at = float(used), float(size), runtime.now()
        except ValueError:
            return


# --------------------------------------------------------------------------- streams


class Orders(RestStream):
    """What both APIs share: the scope check before a first sync, the 60-day notice after it."""

    name = "orders"
    connector: ShopifyConnector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        self.lacks = self.connector.lacks_all_orders() if state is None else False
        self.newest: datetime | None = None
        yield from super().read(state)

    def seen(self, order: Order) -> Order:
        if order.updated_at is not None and (self.newest is None or order.updated_at > self.newest):
            self.newest = order.updated_at
        return order

    def notices(self) -> list[str]:
        return self.connector.window_notices(self.lacks, self.newest)


class GraphQLOrders(Orders, GraphQLStream):
    """Orders by `updatedAt` ascending, following the connection's cursors (keysets after the
    (updated_at, id) of the last node: an order updated while we page moves behind us and is
    read again at the end); the state is the last `updatedAt` committed, and a rerun repeats
    the boundary second (`updated_at:>=`), which the upsert absorbs."""

    path = "graphql.json"
    query = ORDERS_QUERY
    records_path = "orders.nodes"
    cursor = ConnectionSince("query", "updatedAt", template="updated_at:>='{since}'", state_key="updated_at")

    def __init__(self, connector: ShopifyConnector) -> None:
        super().__init__(connector)
        self.paginator = Connection("orders", size=min(connector.config.page_size, (MAX_QUERY_COST - 2) // NODE_COST))

    def map(self, node: dict[str, Any]) -> Order:
        return self.seen(mapping.graphql_order(node))


class CompletePasses(Cursor):
    """REST lists orders in no documented order, so the state moves only when a pass is
    complete, to the newest `updated_at` seen; the next pass starts that far back plus the
    length of this pass (+5 minutes), which covers every change made while this pass paged."""

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        runtime = stream.connector.runtime
        newest = to_utc((state or {}).get("updated_at"))
        since = newest - timedelta(seconds=float((state or {}).get("overlap_s", 0))) if newest else stream.start_date()
        params = stream.request_params()
        if since is not None:
            params["updated_at_min"] = iso(since)
        started = runtime.now()
        request: Request | None = stream.paginator.first(stream.path, params)
        while request is not None:
            page = stream.fetch(request)
            for stamp in (to_utc(item.get("updated_at")) for item in page.items):
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            request = stream.paginator.next_request(page.response, page.items, request)  # page_info only
            done = request is None and newest is not None
            overlap = runtime.now() - started + 300
            yield page.items, ({"updated_at": iso(newest), "overlap_s": round(overlap)} if done else None), page


class RestOrders(Orders):
    """Every order updated since the state, `status=any`, Link/page_info pages of up to 250."""

    path = "orders.json"
    records_path = "orders"
    paginator = LinkHeader()
    cursor = CompletePasses()

    def request_params(self) -> dict[str, Any]:
        return {"status": "any", "limit": min(self.connector.config.page_size, 250)}

    def map(self, item: dict[str, Any]) -> Order:
        return self.seen(mapping.rest_order(item))
