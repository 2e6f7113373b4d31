"""Shopify orders: the GraphQL Admin API first, the legacy REST API as a fallback.

Requests per sync ≈ ⌈changed orders / 166⌉ (GraphQL: 166 orders keep one query under the
1000-point single-query cap) or ⌈changed orders / 250⌉ (REST), plus one scope check on the first
sync. Endpoints, limits and the 60-day window are in README.md beside this file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, MalformedPayload
from kpisync.core.httpclient import HttpClient, RatePolicy, Runtime, expect
from kpisync.core.sdk.paginate import link_url
from kpisync.core.timeutil import iso, to_utc, utcnow

from . import mapping

#: Cost of one order node in ORDERS_QUERY: the order, customer, and two MoneyBag→MoneyV2 pairs.
NODE_COST = 6
MAX_QUERY_COST = 1000
THROTTLE_RETRIES = 20
ALL_ORDERS_WINDOW = timedelta(days=60)

ORDER_FIELDS = """id legacyResourceId name email phone createdAt updatedAt cancelledAt test
      displayFinancialStatus currencyCode
      customer { legacyResourceId email phone }
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
    #: Orders per page: GraphQL pages are also capped by the query cost (166), REST at 250.
    page_size: int = Field(250, ge=1, le=250)
    #: REST bucket leak rate, calls per second (2 standard, 4 Advanced, 20 Plus).
    rest_calls_per_second: float = 2.0

    @model_validator(mode="after")
    def _need_shop(self) -> ShopifyConfig:
        if not self.shop and not self.base_url:
            raise ValueError("set 'shop' (e.g. acme or acme.myshopify.com) or 'base_url'")
        return self


class ShopifyConnector(Connector):
    name = "shopify"
    title = "Shopify"
    kind = "shop"
    config_model = ShopifyConfig
    description = "Orders (net of refunds, test and cancelled flagged) via the GraphQL Admin API, REST as a fallback."

    config: ShopifyConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, ShopifyConfig)
        shop = (config.shop or "").removesuffix("/")
        host = shop if "." in shop else f"{shop}.myshopify.com"
        self.base_url = (config.base_url or f"https://{host}").rstrip("/")
        self.api_path = f"/admin/api/{config.api_version}"
        self.budget: CostBudget | LeakyBucket = (
            CostBudget() if config.api == "graphql" else LeakyBucket(config.rest_calls_per_second)
        )
        self.http = HttpClient(
            self.base_url,
            runtime,
            name="shopify",
            headers={"X-Shopify-Access-Token": config.access_token.get_secret_value(), "Content-Type": "application/json"},
            secrets=config.secret_values(),
            rate_policy=self.budget,
            auth_hint="check access_token (KPISYNC_SHOPIFY_ACCESS_TOKEN); the app needs the read_orders scope",
        )

    def check(self) -> None:
        if self.config.api == "graphql":
            shop = expect(self.graphql(SHOP_QUERY, {}), "shop", dict, "GraphQL shop")
        else:
            shop = expect(self.http.get(f"{self.api_path}/shop.json").data, "shop", dict, "GET shop.json")
        if not shop.get("name"):
            raise MalformedPayload("shopify: the shop has no name — is base_url a Shopify shop?")

    def streams(self) -> list[Stream]:
        return [GraphQLOrdersStream(self) if self.config.api == "graphql" else RestOrdersStream(self)]

    def close(self) -> None:
        self.http.close()

    # -- helpers -------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """`data` of a query; waits out THROTTLED answers (HTTP 200 with an error code)."""
        path = f"{self.api_path}/graphql.json"
        for _ in range(THROTTLE_RETRIES):
            body = self.http.request("POST", path, json_body={"query": query, "variables": variables}).data
            if not isinstance(body, dict):
                raise MalformedPayload("malformed response from Shopify GraphQL: expected a JSON object")
            cost = (body.get("extensions") or {}).get("cost")
            if isinstance(cost, dict):
                self.budget.update(cost, self.runtime)  # type: ignore[union-attr]
            errors = body.get("errors")
            if not errors:
                return expect(body, "data", dict, "Shopify GraphQL")
            codes = [((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)]
            if "THROTTLED" in codes:
                wait = self.budget.shortfall(cost, self.runtime) if isinstance(self.budget, CostBudget) else 1.0
                self.runtime.sleep(wait, "Shopify GraphQL query cost budget (THROTTLED)")
                continue
            if "MAX_COST_EXCEEDED" in codes:
                raise QueryTooCostly(next(e for e in errors if (e.get("extensions") or {}).get("code") == "MAX_COST_EXCEEDED"))
            message = errors[0].get("message") if isinstance(errors[0], dict) else str(errors)
            raise ApiError(f"shopify: GraphQL error: {message}")
        raise ApiError(f"shopify: the GraphQL query was still throttled after {THROTTLE_RETRIES} waits")

    def lacks_all_orders(self) -> bool | None:
        """Whether the token misses read_all_orders (None: the scopes could not be read)."""
        try:
            if self.config.api == "graphql":
                install = expect(self.graphql(SCOPES_QUERY, {}), "currentAppInstallation", dict, "GraphQL scopes")
                handles = {s.get("handle") for s in install.get("accessScopes") or []}
            else:
                response = self.http.get("/admin/oauth/access_scopes.json", tolerate=(403, 404))
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


class QueryTooCostly(ApiError):
    """MAX_COST_EXCEEDED: the page was too large for the single-query cost cap."""

    def __init__(self, error: dict[str, Any]) -> None:
        extensions = error.get("extensions") or {}
        super().__init__(f"shopify: {str(error.get('message', '')).splitlines()[0]}")
        self.cost = float(extensions.get("cost") or 0)
        self.max_cost = float(extensions.get("maxCost") or MAX_QUERY_COST)


# --------------------------------------------------------------------------- rate policies


class CostBudget(RatePolicy):
    """GraphQL calculated query cost: pace by `currentlyAvailable` and `restoreRate`.

    Each answer's `extensions.cost.throttleStatus` says how many points are left and how fast
    they come back; before the next query, wait until its requested cost fits.
    """

    def __init__(self) -> None:
        self.available: float | None = None
        self.maximum = 0.0
        self.restore = 0.0
        self.need = 0.0
        self.at = 0.0

    def update(self, cost: dict[str, Any], runtime: Runtime) -> None:
        status = cost.get("throttleStatus") or {}
        try:
            self.available = float(status["currentlyAvailable"])
            self.maximum = float(status.get("maximumAvailable") or self.available)
            self.restore = float(status.get("restoreRate") or 0)
            self.need = max(self.need, float(cost.get("requestedQueryCost") or 0))
        except (KeyError, TypeError, ValueError):
            return
        self.at = runtime.now()

    def shortfall(self, cost: dict[str, Any] | None, runtime: Runtime) -> float:
        """Seconds until the throttled query's requested cost is available again."""
        if isinstance(cost, dict):
            self.need = max(self.need, float(cost.get("requestedQueryCost") or 0))
        return max(self.wait_before("", runtime)[0], 0.1)

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        if self.available is None or self.restore <= 0:
            return 0.0, ""
        now = min(self.maximum, self.available + (runtime.now() - self.at) * self.restore)
        missing = min(self.need, self.maximum) - now
        return (missing / self.restore, "Shopify GraphQL query cost budget") if missing > 0 else (0.0, "")


class LeakyBucket(RatePolicy):
    """REST: `X-Shopify-Shop-Api-Call-Limit: used/size` leaks `rate` calls a second; keep one slot free."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.used = 0.0
        self.size = math.inf
        self.at = 0.0

    def update(self, cost: dict[str, Any], runtime: Runtime) -> None:
        """GraphQL cost data does not apply to the REST bucket."""

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


class GraphQLOrdersStream(Stream):
    """Orders by `updatedAt` ascending; the state is the last `updatedAt` committed.

    Shopify's cursors continue after (updated_at, id) of the last node, so an order updated
    while we page moves behind us and is read again at the end; a rerun repeats the boundary
    second (`updated_at:>=`), which the upsert absorbs.
    """

    name = "orders"

    def __init__(self, connector: ShopifyConnector) -> None:
        self.shopify = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        config = self.shopify.config
        since = (state or {}).get("updated_at") or (iso(config.start_date) if config.start_date else None)
        lacks = self.shopify.lacks_all_orders() if state is None else False
        size = min(config.page_size, (MAX_QUERY_COST - 2) // NODE_COST)
        variables: dict[str, Any] = {"first": size, "after": None, "query": f"updated_at:>='{since}'" if since else None}
        newest: datetime | None = None
        while True:
            try:
                data = self.shopify.graphql(ORDERS_QUERY, variables)
            except QueryTooCostly as exc:  # the shop's cost model differs from ours: shrink the page
                smaller = int(variables["first"] * exc.max_cost / max(exc.cost, 1)) - 1
                if smaller < 1 or smaller >= variables["first"]:
                    raise
                variables["first"] = smaller
                continue
            orders = expect(data, "orders", dict, "GraphQL orders")
            nodes = expect(orders, "nodes", list, "GraphQL orders")
            page = orders.get("pageInfo") or {}
            records = [mapping.graphql_order(node) for node in nodes]
            newest = records[-1].updated_at if records else newest
            last = not page.get("hasNextPage") or not page.get("endCursor")
            notices = self.shopify.window_notices(lacks, newest) if last else []
            yield Batch(records, {"updated_at": iso(newest)} if newest else None, notices)
            if last:
                return
            variables["after"] = page["endCursor"]


class RestOrdersStream(Stream):
    """Every order updated since the state, `status=any`, Link/page_info pages of 250.

    The REST order is not documented, so the state moves only when a pass is complete, to the
    newest `updated_at` seen; the next pass starts that far back plus the length of this pass
    (+5 minutes), which covers every change made while this pass was paging.
    """

    name = "orders"

    def __init__(self, connector: ShopifyConnector) -> None:
        self.shopify = connector
        self.http = connector.http

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        config = self.shopify.config
        runtime = self.shopify.runtime
        newest = to_utc((state or {}).get("updated_at"))
        since = newest - timedelta(seconds=float((state or {}).get("overlap_s", 0))) if newest else config.start_date
        lacks = self.shopify.lacks_all_orders() if state is None else False
        params: dict[str, Any] | None = {"status": "any", "limit": min(config.page_size, 250)}
        if since is not None:
            params["updated_at_min"] = iso(since)  # type: ignore[index]
        url: str | None = f"{self.shopify.api_path}/orders.json"
        started = runtime.now()
        while url:
            response = self.http.get(url, params)
            items = expect(response.data, "orders", list, "GET orders.json")
            records = [mapping.rest_order(item) for item in items]
            newest = max([newest, *(r.updated_at for r in records if r.updated_at)], default=None, key=_sortable)
            url, params = link_url(response), None  # later pages carry page_info only
            done = url is None and newest is not None
            overlap = runtime.now() - started + 300
            notices = self.shopify.window_notices(lacks, newest) if url is None else []
            yield Batch(records, {"updated_at": iso(newest), "overlap_s": round(overlap)} if done else None, notices)


def _sortable(value: datetime | None) -> float:
    return value.timestamp() if value is not None else -math.inf
