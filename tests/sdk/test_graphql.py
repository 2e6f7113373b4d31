"""The GraphQL pieces of the SDK (kpisync.core.sdk.graphql, rate.CostBucket) against a small
GraphQL API on 127.0.0.1.

The simulator serves one Relay connection, `widgets(first, after, since)`, sorted by
(updatedAt, id) — the shapes follow the GraphQL spec's response format (spec.graphql.org
§7.1: `data`, `errors` with `message`/`extensions`), the Relay cursor connections spec
(relay.dev/graphql/connections.htm: `pageInfo { hasNextPage endCursor }`, `first`/`after`) and
Shopify's calculated query costs (shopify.dev "GraphQL Admin API rate limits": a connection
costs 2 + first × node cost, one query at most `max_cost` else MAX_COST_EXCEEDED with
`cost`/`maxCost`, a bucket restored at `restoreRate` points/s, charged the requested cost and
refunded to the actual one, reported in `extensions.cost.throttleStatus`; THROTTLED = HTTP 200
with that error code). `github_limited` answers GitHub's secondary-limit shape instead
(docs.github.com GraphQL "Rate limits": `errors: [{"type": "RATE_LIMITED", …}]`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import ApiError
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import (
    Connection, ConnectionSince, CostBucket, GraphQL, GraphQLError, GraphQLStream, QueryTooCostly, RestConnector,
)  # fmt: skip
from kpisync.core.timeutil import iso
from kpisync.fixtures.simserver import Request, Response, SimClock, SimServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NODE_COST = 5


def at(minutes: int) -> str:
    return iso(T0 + timedelta(minutes=minutes)) or ""


class WidgetSim(SimServer):
    """POST /graphql: `widgets` (a connection of {"id", "updatedAt"}), or an unknown field error."""

    def __init__(self, widgets: list[dict[str, Any]], *, clock: SimClock | None = None, bucket: float = 1e6,
                 restore: float = 50.0, max_cost: int = 1000) -> None:  # fmt: skip
        super().__init__(clock or SimClock(T0, scale=0))
        self.widgets, self.bucket, self.restore, self.max_cost = widgets, bucket, restore, max_cost
        self.points, self.points_at = bucket, self.clock.timestamp()
        self.throttled = 0
        self.left_when_throttled = 0.0  # currentlyAvailable in the last THROTTLED answer
        self.github_limited = 0  # the next n queries answer RATE_LIMITED
        self.variables: list[dict[str, Any]] = []
        self.after_page: list[Any] = []  # callbacks run after a page is answered (changes mid-read)
        self._lock = threading.Lock()
        self.route("POST", r"/graphql", self._graphql)

    def _available(self) -> float:
        return min(self.bucket, self.points + (self.clock.timestamp() - self.points_at) * self.restore)

    def drain(self) -> None:
        with self._lock:
            self.points, self.points_at = 0.0, self.clock.timestamp()

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        status = {"maximumAvailable": self.bucket, "currentlyAvailable": round(self._available(), 1), "restoreRate": self.restore}
        return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}

    def _graphql(self, request: Request) -> Response:
        body = request.json()
        query, variables = body["query"], body.get("variables") or {}
        self.variables.append(variables)
        if self.github_limited:
            self.github_limited -= 1
            return Response(json={"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]})
        if "widgets" not in query:
            error = {"message": "Field 'boom' doesn't exist on type 'QueryRoot'", "extensions": {"code": "undefinedField"}}
            return Response(json={"errors": [error]})
        first = int(variables["first"])
        requested = 2 + first * NODE_COST
        if requested > self.max_cost:
            message = f"Query cost is {requested}, which exceeds the single query max cost limit ({self.max_cost}).\n\nSee …"
            extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": self.max_cost}
            return Response(json={"errors": [{"message": message, "extensions": extensions}]})
        with self._lock:
            available = self._available()
            if requested > available:
                self.throttled += 1
                self.points, self.points_at = available, self.clock.timestamp()
                throttled = {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
                cost = self._cost(requested, None)
                self.left_when_throttled = cost["throttleStatus"]["currentlyAvailable"]
                return Response(json={"errors": [throttled], "extensions": {"cost": cost}})
            rows = sorted(self.widgets, key=lambda w: (w["updatedAt"], w["id"]))
            if variables.get("since"):
                rows = [w for w in rows if w["updatedAt"] >= variables["since"]]
            if variables.get("after"):
                stamp, _, last = variables["after"].partition("|")
                rows = [w for w in rows if (w["updatedAt"], w["id"]) > (stamp, int(last))]
            page = [dict(w) for w in rows[:first]]
            actual = 2 + len(page) * NODE_COST
            self.points, self.points_at = available - actual, self.clock.timestamp()  # charged, refunded to actual
            info = {"hasNextPage": len(rows) > first, "endCursor": f"{page[-1]['updatedAt']}|{page[-1]['id']}" if page else None}
            answer = {"data": {"widgets": {"nodes": page, "pageInfo": info}}, "extensions": {"cost": self._cost(requested, actual)}}
        for change in self.after_page:
            change()
        return Response(json=answer)


QUERY = """query Widgets($first: Int!, $after: String, $since: DateTime) {
  widgets(first: $first, after: $after, since: $since) { pageInfo { hasNextPage endCursor } nodes { id updatedAt } }
}"""


class Config(ConnectorConfig):
    pass


class Widgets(GraphQLStream):
    name = "widgets"
    query = QUERY
    records_path = "widgets.nodes"
    paginator = Connection("widgets", size=3)
    cursor = ConnectionSince("since", "updatedAt")
    got: ClassVar[list[int]] = []

    def map(self, node: dict[str, Any]) -> None:
        Widgets.got.append(node["id"])
        return None


class WidgetApi(RestConnector):
    name, title, config_model = "widgets", "Widgets", Config

    def rate_policy(self) -> CostBucket:
        return CostBucket()


class PlainApi(RestConnector):
    name, title, config_model = "widgets", "Widgets", Config


def read(sim: WidgetSim, state: dict[str, Any] | None = None, size: int = 3, scale: float = 1000.0,
         start_date: datetime | None = None, on_wait: Any = None) -> tuple[list[dict[str, Any] | None], Runtime]:  # fmt: skip
    """The states of every batch of one read, and the runtime (its waits)."""
    Widgets.got = []
    runtime = Runtime(time_scale=scale, on_wait=on_wait)
    connector = WidgetApi(Config(base_url=sim.url, start_date=start_date), runtime)
    stream = Widgets(connector)
    stream.paginator = Connection("widgets", size=size)
    try:
        return [batch.state for batch in stream.read(state)], runtime
    finally:
        connector.close()


def widgets(*minutes: int) -> list[dict[str, Any]]:
    return [{"id": n, "updatedAt": at(m)} for n, m in enumerate(minutes, start=1)]


def test_a_connection_is_read_after_each_end_cursor_and_the_state_is_the_newest_time() -> None:
    with WidgetSim(widgets(0, 1, 2, 3, 4, 5, 6)) as sim:
        states, _ = read(sim)
        assert Widgets.got == [1, 2, 3, 4, 5, 6, 7]
        assert states == [{"since": at(2)}, {"since": at(5)}, {"since": at(6)}]
        assert sim.variables == [{"first": 3}, {"first": 3, "after": f"{at(2)}|3"}, {"first": 3, "after": f"{at(5)}|6"}]

        # The next run asks from the saved time: the boundary item comes again (the upsert absorbs it).
        sim.widgets.append({"id": 8, "updatedAt": at(9)})
        sim.clear_log()
        sim.variables.clear()
        assert read(sim, states[-1])[0] == [{"since": at(9)}]
        assert Widgets.got == [7, 8] and sim.variables == [{"first": 3, "since": at(6)}]

        # Without a state, start_date is the filter.
        assert read(sim, start_date=T0 + timedelta(minutes=5))[0] == [{"since": at(9)}] and Widgets.got == [6, 7, 8]


def test_an_item_updated_while_the_pages_are_read_moves_behind_the_cursor_and_is_read_again() -> None:
    with WidgetSim(widgets(0, 1, 2, 3, 4, 5, 6)) as sim:

        def update_2_and_4() -> None:  # after the first page: 2 was read, 4 was not yet
            sim.after_page.clear()
            for w in sim.widgets:
                if w["id"] in (2, 4):
                    w["updatedAt"] = at(30)

        sim.after_page.append(update_2_and_4)
        states, _ = read(sim)
        # pages [1 2 3] [5 6 7] [2 4]: nothing skipped, the newer 2 read again at the end
        assert Widgets.got == [1, 2, 3, 5, 6, 7, 2, 4]
        assert states == [{"since": at(2)}, {"since": at(6)}, {"since": at(30)}]


def test_a_page_over_the_single_query_cost_cap_shrinks_and_later_pages_keep_the_size() -> None:
    with WidgetSim(widgets(*range(40)), max_cost=100) as sim:
        read(sim, size=30)
        # 30 cost 2 + 30×5 = 152 > 100: refused; 30 × 100/152 = 19.7 → 19, minus one = 18 (cost 92)
        assert [v["first"] for v in sim.variables] == [30, 18, 18, 18]
        assert Widgets.got == list(range(1, 41))

        sim.max_cost = 6  # not even one widget (7) fits: the refusal's first line, nothing to shrink to
        with pytest.raises(QueryTooCostly) as refused:
            read(sim, size=1)
    assert str(refused.value) == "widgets: Query cost is 7, which exceeds the single query max cost limit (6)."
    assert (refused.value.cost, refused.value.max_cost) == (7, 6)


def test_a_throttled_query_waits_for_its_cost_and_later_queries_are_paced_to_the_bucket() -> None:
    # A bucket of 100 restoring 10 points/s; pages of 18 request 92. Another client drained it.
    sim = WidgetSim(widgets(*range(40)), clock=SimClock(T0, scale=100), bucket=100, restore=10, max_cost=1000)
    waits: list[tuple[float, str]] = []
    with sim:
        sim.drain()
        states, _ = read(sim, size=18, scale=100, on_wait=lambda seconds, why: waits.append((seconds, why)))
    assert Widgets.got == list(range(1, 41)) and states[-1] == {"since": at(39)}
    assert sim.throttled == 1  # only the first, blind query; afterwards the bucket paces the client
    # The throttled query waits until its 92 points are back: (92 − what the answer said was
    # left) / 10 points/s; each later page (the last, of 4, still requests 92) waits for what the
    # previous answer left missing — never more than 9.2 s.
    assert [why for _, why in waits] == ["widgets GraphQL query cost budget (throttled)"] + ["GraphQL query cost budget"] * 2
    assert waits[0][0] == pytest.approx((92 - sim.left_when_throttled) / 10, abs=0.05)
    assert all(0 < seconds <= 9.2 for seconds, _ in waits)


def test_cost_bucket_reads_the_level_from_the_body() -> None:
    class Clock(Runtime):
        t = 0.0

        def now(self) -> float:
            return self.t

    clock = Clock(time_scale=1)
    bucket = CostBucket()
    assert bucket.wait_before("", clock) == (0.0, "")  # nothing learnt yet: no wait
    body = {"extensions": {"cost": {"requestedQueryCost": 92, "throttleStatus": {
        "maximumAvailable": 100.0, "currentlyAvailable": 40.0, "restoreRate": 10.0}}}}  # fmt: skip
    bucket.learn(body, clock)
    assert bucket.wait_before("", clock) == (5.2, "GraphQL query cost budget")  # (92 − 40) / 10
    clock.t = 3.0
    assert bucket.wait_before("", clock)[0] == pytest.approx(2.2)
    clock.t = 10.0
    assert bucket.wait_before("", clock) == (0.0, "")
    bucket.learn({"data": {}}, clock)  # an answer without a cost report changes nothing
    assert bucket.need == 92 and bucket.available == 40.0

    # Another API's names for the same numbers.
    other = CostBucket(status="data.rateLimit", available="remaining", maximum="limit", restore="perSecond",
                       requested="data.rateLimit.cost", name="Acme points")  # fmt: skip
    other.learn({"data": {"rateLimit": {"remaining": 5, "limit": 50, "perSecond": 1, "cost": 20}}}, clock)
    assert other.wait_before("", clock) == (15.0, "Acme points")


def test_other_errors_are_one_line_and_rate_limited_without_a_bucket_waits_the_default() -> None:
    with WidgetSim(widgets(0)) as sim:
        runtime = Runtime(time_scale=1000)
        connector = PlainApi(Config(base_url=sim.url), runtime)  # no CostBucket: GitHub reports no cost
        client = GraphQL(connector.http, "/graphql", default_wait=2.0)
        assert client.budget is None
        sim.github_limited = 2
        assert client.query(QUERY, {"first": 1})["widgets"]["nodes"] == [{"id": 1, "updatedAt": at(0)}]
        assert runtime.waited == 4.0 and len(sim.variables) == 3

        with pytest.raises(GraphQLError) as failed:
            client.query("query { boom }")
        assert str(failed.value) == "widgets: GraphQL error: Field 'boom' doesn't exist on type 'QueryRoot'"
        assert failed.value.codes == ["undefinedField"]

        sim.github_limited = 5
        with pytest.raises(ApiError) as stuck:
            GraphQL(connector.http, "/graphql", max_waits=3).query(QUERY, {"first": 1})
        assert str(stuck.value) == "widgets: the GraphQL query was still throttled after 3 waits"
        connector.close()


def test_the_client_learns_from_the_connectors_cost_bucket() -> None:
    with WidgetSim(widgets(0)) as sim:
        connector = WidgetApi(Config(base_url=sim.url), Runtime(time_scale=1000))
        client = GraphQL(connector.http, "/graphql")
        assert client.budget is connector.http.rate_policy
        client.query(QUERY, {"first": 10})
        assert client.budget.need == 52 and client.budget.maximum == 1e6  # 2 + 10 × 5
        connector.close()
