"""The SDK's building blocks against small simulators: what a connector author relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from kpisync.connectors.helpscout import HelpScoutConfig, HelpScoutConnector
from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import (
    ApiKeyQuery, EnumMap, LinkHeader, PageCapReached, PageNumber, RestConnector, RestStream, SinceId, StartTime,
    TimeWindows, UpdatedSince,
)  # fmt: skip
from kpisync.fixtures.helpscout_sim import HelpScoutSim
from kpisync.fixtures.simserver import Request, Response, SimClock, SimServer
from kpisync.fixtures.world import generate_world

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class ListSim(SimServer):
    """`/items?since=&page=` sorted by `at` with an inclusive filter, 5 a page, page cap 4;
    `/report?start=&end=&page=` with an inclusive range."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.items = items
        self.route("GET", r"/items", self._items)
        self.route("GET", r"/report", self._report)

    def _items(self, request: Request) -> Response:
        since, page = request.arg("since") or "", int(request.arg("page") or 1)
        if page > 4:
            return Response(400, json={"error": "beyond the page cap"})
        rows = sorted((i for i in self.items if i["at"] >= since), key=lambda i: (i["at"], i["id"]))
        chunk = rows[(page - 1) * 5 : page * 5]
        more = page * 5 < len(rows)
        return Response(json={"items": chunk, "links": {"next": f"{self.url}/items?since={since}&page={page + 1}" if more else None}})

    def _report(self, request: Request) -> Response:
        lo, hi = request.arg("start") or "", request.arg("end") or ""
        rows = [i for i in self.items if lo <= i["at"] <= hi]
        return Response(json={"items": rows})


class ListConfig(ConnectorConfig):
    pass


class Items(RestStream):
    name = "items"
    path = "/items"
    records_path = "items"
    paginator = PageNumber(size=5, max_pages=4)
    cursor = UpdatedSince("since", "at")
    seen: ClassVar[list[str]] = []

    def map(self, item: dict[str, Any]) -> None:
        Items.seen.append(str(item["id"]))
        return None


class ListConnector(RestConnector):
    name, title, config_model, check_path = "items", "Items", ListConfig, "/items"
    stream_classes = [Items]


def read_all(connector: RestConnector, state: dict[str, Any] | None = None) -> dict[str, Any] | None:
    for batch in connector.streams()[0].read(state):
        state = batch.state or state
    return state


def test_updated_since_keyset_reads_past_the_page_cap_once_each_even_at_one_second() -> None:
    # 12 items share one second (more than two pages), then 20 more, one a second: 32 items,
    # 7 pages by offset, beyond the cap of 4 pages — the keyset restarts at page 1 each time.
    items = [{"id": n, "at": stamp(0)} for n in range(12)] + [{"id": 100 + n, "at": stamp(n + 1)} for n in range(20)]
    with ListSim(items) as sim:
        Items.seen = []
        connector = ListConnector(ListConfig(base_url=sim.url), Runtime(time_scale=1000))
        state = read_all(connector)
        assert sorted(Items.seen, key=int) == [str(i["id"]) for i in items]  # each exactly once
        assert state == {"since": stamp(20), "seen": ["119"]}
        # nothing new: one request, nothing delivered
        Items.seen, before = [], sim.request_count()
        read_all(connector, state)
        assert Items.seen == [] and sim.request_count() - before == 1
        # a new item at the very same second as the cursor still arrives
        items.append({"id": 999, "at": stamp(20)})
        read_all(connector, state)
        assert Items.seen == ["999"]


def test_page_number_cap_is_an_error_not_a_silent_stop() -> None:
    with ListSim([{"id": n, "at": stamp(0)} for n in range(30)]) as sim:
        connector = ListConnector(ListConfig(base_url=sim.url), Runtime(time_scale=1000))
        with pytest.raises(PageCapReached, match="at most 4 pages"):
            read_all(connector)


class Report(RestStream):
    name = "report"
    path = "/report"
    records_path = "items"
    cursor = StartTime("start", "at", end_param="end", window=timedelta(seconds=10), overlap=timedelta(seconds=1),
                       horizon=timedelta(seconds=5))
    got: ClassVar[list[str]] = []

    def start_date(self) -> datetime:
        return T0

    def now(self) -> datetime:
        return T0 + timedelta(seconds=35)

    def map(self, item: dict[str, Any]) -> None:
        Report.got.append(str(item["id"]))
        return None


class ReportConnector(ListConnector):
    stream_classes = [Report]


def test_time_windows_overlap_and_dedupe() -> None:
    windows = list(TimeWindows(timedelta(seconds=10), timedelta(seconds=1)).windows(T0, T0 + timedelta(seconds=25)))
    assert [(w.start - T0).seconds for w in windows] == [0, 9, 18]
    items = [{"id": n, "at": stamp(n)} for n in range(0, 36, 3)]  # 0, 3, … 33: 9 and 18 fall in two windows
    with ListSim(items) as sim:
        Report.got = []
        connector = ReportConnector(ListConfig(base_url=sim.url), Runtime(time_scale=1000))
        state = read_all(connector)
    assert Report.got == [str(i["id"]) for i in items]  # boundary items once
    assert state == {"since": stamp(33)}  # the newest item: the open last window may still grow


def test_enum_map_names_unknown_codes_once() -> None:
    status = EnumMap({"Open": "open", "closed": "closed"}, unknown="unknown", name="status")
    assert [status("open"), status("OPEN "), status("archived"), status("archived"), status(None)] == [
        "open", "open", "unknown", "unknown", "unknown"]  # fmt: skip
    assert status.notices() == ["unrecognised status archived mapped to 'unknown'"]


# -- OAuth2 client credentials and vendor-named Retry-After, on the Help Scout simulator -------
def hs_sim(per_minute: int = 400) -> HelpScoutSim:
    end = datetime(2026, 6, 1, tzinfo=UTC)
    world = generate_world(seed=2, start=end - timedelta(days=3), end=end, tickets_per_day=5)
    return HelpScoutSim(world, client_id="app", client_secret="s3cret-value", clock=SimClock(end, scale=1000), per_minute=per_minute)


def connector(sim: HelpScoutSim, secret: str = "s3cret-value") -> HelpScoutConnector:
    config = HelpScoutConfig(base_url=sim.url, client_id="app", client_secret=SecretStr(secret))
    return HelpScoutConnector(config, Runtime(time_scale=1000))


def test_token_is_cached_renewed_after_a_401_and_a_refusal_is_one_clear_line() -> None:
    with hs_sim() as hs:
        connector(hs).check()
        connector(hs).check()  # a second connector reuses the cached token
        assert hs.request_count("/oauth2/token") == 1 and len(hs.issued_tokens) == 1
        hs.expire_tokens()  # revoked: the next call gets a 401, logs in again and is resent once
        again = connector(hs)
        again.check()
        assert hs.request_count("/oauth2/token") == 2 and hs.request_count("/users/me", status=401) == 1
        assert again.http.redact(f"token {hs.issued_tokens[-1]}") == "token ***"  # issued tokens are redacted too
        bad = connector(hs, secret="wrong")
        bad.http.session.auth.cache.clear(bad.http.session.auth.cache_key)  # type: ignore[union-attr]
        with pytest.raises(AuthError) as refused:
            bad.check()
    assert "token request was refused (Bad client credentials)" in str(refused.value) and "wrong" not in str(refused.value)


def test_the_minute_budget_is_paced_and_x_ratelimit_retry_after_pauses_every_request() -> None:
    with hs_sim(per_minute=6) as hs:
        c = connector(hs)
        for _ in range(8):  # 6 a minute, the token POST counting 2: the budget runs out twice
            c.check()
        assert hs.request_count(status=429) == 0  # X-RateLimit-Remaining-Minute paced the client
        assert c.runtime.waited >= 50
        waited = c.runtime.waited
        hs.faults.fail_next(1, 429, headers={"X-RateLimit-Retry-After": "45"})
        c.check()
        assert c.runtime.waited - waited >= 45  # the vendor-named header, not a blind default


# -- since_id feeds with Link-header pages, an API key in the query ------------------------------
class FeedSim(SimServer):
    """Newest-first `/feed?since_id=&max_id=` of 4 a page, `Link: rel="next"`; key in `?key=`."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.ids = ids
        self.route("GET", r"/feed", self._feed)

    def handle(self, request: Request) -> Response:
        if request.arg("key") != "q-secret-key":
            return Response(401, json={"error": "bad key"})
        return self.route_request(request)

    def _feed(self, request: Request) -> Response:
        since, below = int(request.arg("since_id") or 0), int(request.arg("max_id") or 10**9)
        rows = sorted((i for i in self.ids if since < i < below), reverse=True)[:4]
        headers = {}
        if len(rows) == 4:
            headers["Link"] = f'<{self.url}/feed?since_id={since}&max_id={rows[-1]}&key=q-secret-key>; rel="next"'
        return Response(json=[{"id": i} for i in rows], headers=headers)


class Feed(RestStream):
    name = "feed"
    path = "/feed"
    paginator = LinkHeader()
    cursor = SinceId("since_id")
    got: ClassVar[list[int]] = []

    def map(self, item: dict[str, Any]) -> None:
        Feed.got.append(item["id"])
        return None


class FeedConnector(ListConnector):
    stream_classes = [Feed]

    def authenticator(self) -> ApiKeyQuery:
        return ApiKeyQuery("key", SecretStr("q-secret-key"))


def test_since_id_polls_resume_mid_poll_and_the_query_key_is_redacted() -> None:
    with FeedSim(list(range(1, 11))) as sim:
        c = FeedConnector(ListConfig(base_url=sim.url), Runtime(time_scale=1000))
        Feed.got = []
        batches = list(c.streams()[0].read(None))
        assert Feed.got == list(range(10, 0, -1)) and batches[-1].state == {"since_id": 10}
        mid = batches[0].state  # a poll killed after its first page resumes from its next link
        assert mid is not None and mid["since_id"] is None and mid["newest"] == 10 and "max_id=7" in mid["next"][0]
        assert "q-secret-key" not in json.dumps(mid)  # the Link URL echoes the key: not into the state
        Feed.got = []
        assert read_all(c, mid) == {"since_id": 10} and Feed.got == [6, 5, 4, 3, 2, 1]
        sim.ids += [11, 12]
        Feed.got = []
        assert read_all(c, {"since_id": 10}) == {"since_id": 12} and Feed.got == [12, 11]
        assert c.http.redact(f"GET {sim.url}/feed?key=q-secret-key") == f"GET {sim.url}/feed?key=***"


def test_a_changed_client_secret_logs_in_again_instead_of_reusing_the_cached_token() -> None:
    with hs_sim() as hs:
        connector(hs).check()
        wrong = connector(hs, secret="not-the-secret")  # no cache clearing: the key names the secret
        with pytest.raises(AuthError):
            wrong.check()
        assert hs.request_count("/oauth2/token") == 2


def test_page_number_without_the_announced_total_falls_back_to_the_short_page_rule() -> None:
    from kpisync.core.httpclient import HttpResponse

    paginator = PageNumber(size=2, total_pages="meta.pages")
    full, short = [{"id": 1}, {"id": 2}], [{"id": 3}]
    request = ("/items", {"page": 1, "per_page": 2})

    def answer(data: dict[str, Any]) -> HttpResponse:
        return HttpResponse(status=200, headers={}, data=data, url="http://x/items")

    assert paginator.next_request(answer({"meta": {"pages": 1}}), full, request) is None  # announced: last page
    assert paginator.next_request(answer({"meta": {"pages": 3}}), full, request) == ("/items", {"page": 2, "per_page": 2})
    assert paginator.next_request(answer({}), full, request) == ("/items", {"page": 2, "per_page": 2})  # not announced
    assert paginator.next_request(answer({}), short, request) is None
