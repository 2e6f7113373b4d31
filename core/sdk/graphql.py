"""GraphQL APIs: one POST per query, Relay cursor connections, calculated query costs.

    class Orders(GraphQLStream):
        name = "orders"
        path = "/admin/api/2025-01/graphql.json"
        query = ORDERS_QUERY                  # declares $first and $after (and $query)
        records_path = "orders.nodes"         # where the list is in `data`
        paginator = Connection("orders", size=100)    # pageInfo {hasNextPage endCursor} → $after
        cursor = ConnectionSince("query", "updatedAt", template="updated_at:>='{since}'")

        def map(self, node):
            return mapping.order(node)

    class Shop(RestConnector):
        def rate_policy(self):
            return CostBucket()               # paced by each body's extensions.cost.throttleStatus

A GraphQL server answers HTTP 200 whatever happened, so `GraphQL.post` reads the `errors`: a
throttled query (Shopify `THROTTLED`, GitHub `RATE_LIMITED`) waits until the CostBucket holds
its cost again and is sent again; a query over the single-query cost cap (`MAX_COST_EXCEEDED`)
is a QueryTooCostly, on which GraphQLStream shrinks the page to fit; any other error is one
ApiError line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from ..errors import ApiError, MalformedPayload
from ..httpclient import HttpClient, HttpResponse, expect
from ..timeutil import iso, to_utc
from .incremental import Cursor, State, Step, render
from .paginate import Page, Paginator, Request, dig, records_at
from .rate import CostBucket
from .stream import RestStream

THROTTLED = ("THROTTLED", "RATE_LIMITED")
TOO_COSTLY = ("MAX_COST_EXCEEDED",)


class GraphQLError(ApiError):
    """An answer with `errors` that is neither a throttle nor a cost-cap refusal."""

    def __init__(self, message: str, codes: list[str | None]) -> None:
        super().__init__(message)
        self.codes = codes


class QueryTooCostly(ApiError):
    """The query costs more than one query may (`cost` > `max_cost`); a smaller page fits."""

    def __init__(self, name: str, error: dict[str, Any], max_cost: float | None) -> None:
        extensions = error.get("extensions") or {}
        super().__init__(f"{name}: {str(error.get('message', '')).splitlines()[0]}")
        self.cost = float(extensions.get("cost") or 0)
        self.max_cost = float(extensions.get("maxCost") or max_cost or 0)

    def fitting(self, size: int) -> int | None:
        """A page size under the cap (one less than the proportional share), or None."""
        smaller = int(size * self.max_cost / max(self.cost, 1)) - 1
        return smaller if 1 <= smaller < size else None


def error_code(error: Any) -> str | None:
    """`extensions.code` (the GraphQL convention, Shopify) or `type` (GitHub)."""
    if not isinstance(error, dict):
        return None
    code = (error.get("extensions") or {}).get("code") or error.get("type")
    return str(code) if code else None


class GraphQL:
    """Queries POSTed as `{"query", "variables"}` to one endpoint of an HttpClient.

    `budget` (default: the client's rate policy when it is a CostBucket) learns the bucket's
    level from every answer and says how long a throttled query waits; without one a throttled
    query waits `default_wait` seconds. `max_cost` is the single-query cap to assume when a
    refusal does not state it.
    """

    def __init__(
        self,
        http: HttpClient,
        path: str,
        *,
        budget: CostBucket | None = None,
        throttled: tuple[str, ...] = THROTTLED,
        too_costly: tuple[str, ...] = TOO_COSTLY,
        max_waits: int = 20,
        default_wait: float = 1.0,
        max_cost: float | None = None,
    ) -> None:
        self.http, self.path, self.max_waits, self.default_wait = http, path, max_waits, default_wait
        policy = http.rate_policy
        self.budget = budget if budget is not None else (policy if isinstance(policy, CostBucket) else None)
        self.throttled, self.too_costly, self.max_cost = throttled, too_costly, max_cost
        self.what = f"{http.name} GraphQL"

    def post(self, query: str, variables: dict[str, Any] | None = None) -> HttpResponse:
        """The answer, its `data` object as `.data`; throttled answers are waited out."""
        runtime = self.http.runtime
        for _ in range(self.max_waits):
            response = self.http.request("POST", self.path, json_body={"query": query, "variables": variables or {}})
            body = response.data
            if not isinstance(body, dict):
                raise MalformedPayload(f"malformed response from {self.what}: expected a JSON object")
            if self.budget is not None:
                self.budget.learn(body, runtime)
            errors = body.get("errors")
            if not errors:
                data = expect(body, "data", dict, self.what)
                return HttpResponse(response.status, response.headers, data, response.url)
            errors = errors if isinstance(errors, list) else [errors]
            codes = [error_code(e) for e in errors]
            if any(code in self.throttled for code in codes):
                wait = self.budget.shortfall(body, runtime) if self.budget is not None else self.default_wait
                runtime.sleep(wait, f"{self.what} query cost budget (throttled)")
                continue
            for error, code in zip(errors, codes, strict=True):
                if code in self.too_costly:
                    raise QueryTooCostly(self.http.name, error, self.max_cost)
            message = errors[0].get("message") if isinstance(errors[0], dict) else str(errors[0])
            raise GraphQLError(f"{self.http.name}: GraphQL error: {message}", codes)
        raise ApiError(f"{self.http.name}: the GraphQL query was still throttled after {self.max_waits} waits")

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` object of a query."""
        data: dict[str, Any] = self.post(query, variables).data
        return data


class Connection(Paginator):
    """Relay cursor connections (Shopify, GitHub, Linear): `size` nodes a page in `$first`,
    the next page after `<path>.pageInfo.endCursor` in `$after` while `hasNextPage`. The
    request's params are the query's variables; GraphQLStream sends them."""

    def __init__(self, path: str, size: int = 50, size_variable: str = "first", cursor_variable: str = "after") -> None:
        self.path, self.size, self.size_variable, self.cursor_variable = path, size, size_variable, cursor_variable

    def first(self, path: str, params: dict[str, Any]) -> Request:
        return path, {**params, self.size_variable: self.size}

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        info = dig(response.data, f"{self.path}.pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return None
        return current[0], {**(current[1] or {}), self.cursor_variable: info["endCursor"]}


class ConnectionSince(Cursor):
    """A connection sorted ascending by a modification time (`field` of each node), filtered
    from the newest time already read: `variable` = `template` with `{since}` filled in.

    Relay cursors are keysets (the sort value and id of the last node), so the read follows
    them: an item updated while the pages are read moves behind the cursor and comes again at
    the end. The state after every page is `{state_key: newest time read}`; the next run
    repeats that second (an inclusive filter), which the upsert absorbs.
    """

    def __init__(
        self, variable: str, field: str, *, template: str = "{since}", state_key: str = "since", fmt: str = "iso"
    ) -> None:
        self.variable, self.field, self.template, self.state_key, self.fmt = variable, field, template, state_key, fmt

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        since = to_utc((state or {}).get(self.state_key)) or stream.start_date()
        params = stream.request_params()
        if since is not None:
            params[self.variable] = self.template.format(since=render(since, self.fmt))
        newest: datetime | None = None
        for page in stream.pages(params):
            for stamp in (to_utc(dig(item, self.field)) for item in page.items):
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            yield page.items, ({self.state_key: iso(newest)} if newest else None), page


class GraphQLStream(RestStream):
    """A RestStream over a GraphQL connection: `params` are the query's variables, `path` the
    endpoint, `records_path` is inside `data`. A page refused as too costly is asked again
    with the size the refusal says fits, and later pages keep that size."""

    query: ClassVar[str]
    path: ClassVar[str] = "/graphql"
    max_size: int | None = None

    @cached_property
    def graphql(self) -> GraphQL:
        return GraphQL(self.http, self.path)

    def fetch(self, request: Request) -> Page:
        variables = dict(request[1] or {})
        size_variable = getattr(self.paginator, "size_variable", None)
        while True:
            size = variables.get(size_variable) if size_variable else None
            if isinstance(size, int) and self.max_size is not None:
                variables[size_variable] = size = min(size, self.max_size)  # type: ignore[index]
            try:
                response = self.graphql.post(self.query, variables)
            except QueryTooCostly as exc:
                smaller = exc.fitting(size) if isinstance(size, int) else None
                if smaller is None:
                    raise
                self.max_size = smaller
                continue
            return Page(response, records_at(response.data, self.records_path, f"GraphQL {self.name}"))

    def pages(self, params: dict[str, Any]) -> Iterator[Page]:
        request: Request | None = self.paginator.first(self.path, params)
        while request is not None:
            page = self.fetch(request)
            yield page
            request = self.paginator.next_request(page.response, page.items, request)


__all__ = [
    "Connection", "ConnectionSince", "GraphQL", "GraphQLError", "GraphQLStream", "QueryTooCostly", "error_code",
]  # fmt: skip
