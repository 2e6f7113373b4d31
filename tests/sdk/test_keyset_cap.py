"""UpdatedSince keysets at a page cap: exact past it, and a clear failure when one second holds
more items than the cap lets through — whether the paginator knows the cap (`max_pages`) or the
API answers the page past it with an error that the stream's `fetch` turns into PageCapReached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from kpisync.core.connector import ConnectorConfig
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import LinkHeader, Page, PageCapReached, PageNumber, RestConnector, RestStream, UpdatedSince
from kpisync.core.sdk.paginate import Request
from kpisync.fixtures.simserver import Request as SimRequest
from kpisync.fixtures.simserver import Response, SimClock, SimServer

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class CappedSim(SimServer):
    """`/items?since=&page=` sorted by (`at`, id), inclusive filter, 5 a page, `Link: rel="next"`
    while more exist; page 4 and beyond answer 400 with the vendor's words (a cap of 3 pages)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.items = items
        self.route("GET", r"/items", self._items)

    def _items(self, request: SimRequest) -> Response:
        since, page = request.arg("since") or "", int(request.arg("page") or 1)
        if page > 3:
            return Response(400, json={"message": "You cannot access items beyond the 3rd page"})
        rows = sorted((i for i in self.items if i["at"] >= since), key=lambda i: (i["at"], i["id"]))
        headers = {}
        if len(rows) > page * 5:
            headers["Link"] = f'<{self.url}/items?since={since}&page={page + 1}>; rel="next"'
        return Response(json=rows[(page - 1) * 5 : page * 5], headers=headers)


class Config(ConnectorConfig):
    pass


class Items(RestStream):
    """The cap is only in the API's answer: fetch turns that 400 into a PageCapReached."""

    name = "items"
    path = "/items"
    params = {"page": 1}
    paginator = LinkHeader()
    cursor = UpdatedSince("since", "at")
    got: ClassVar[list[int]] = []

    def fetch(self, request: Request) -> Page:
        response = self.http.get(request[0], request[1], tolerate=(400,))
        if response.status == 400:
            raise PageCapReached(response.data["message"], status=400)
        return Page(response, response.data)

    def map(self, item: dict[str, Any]) -> None:
        Items.got.append(item["id"])


class Numbered(Items):
    """The cap known up front: PageNumber(max_pages=3) stops before asking for page 4."""

    paginator = PageNumber(size_param="per_page", size=5, max_pages=3)


class Desk(RestConnector):
    name, title, config_model, check_path = "desk", "Desk", Config, "/items"
    stream_classes = [Items]


def read(stream_class: type[RestStream], sim: CappedSim, state: dict[str, Any] | None = None) -> list[dict[str, Any] | None]:
    Items.got = []
    desk = Desk(Config(base_url=sim.url), Runtime(time_scale=1000))
    return [batch.state for batch in stream_class(desk).read(state)]


@pytest.mark.parametrize("stream_class", [Items, Numbered])
def test_many_more_items_than_the_cap_arrive_once_each(stream_class: type[RestStream]) -> None:
    # 40 items one second apart: 8 pages by offset, past the cap of 3 — page 1 each time
    items = [{"id": n, "at": stamp(n)} for n in range(40)]
    with CappedSim(items) as sim:
        states = read(stream_class, sim)
        assert sorted(Items.got) == list(range(40))
        assert {r.query["page"][0] for r in sim.request_log()} == {"1"}
    assert states[-1] == {"since": stamp(39), "seen": ["39"]}


@pytest.mark.parametrize("stream_class", [Items, Numbered])
def test_ten_items_at_one_second_page_on_within_it_and_a_kill_resumes(stream_class: type[RestStream]) -> None:
    # 3 early items, 10 at second 100 (two pages at one second, within the cap), 2 after
    items = [{"id": n, "at": stamp(n)} for n in range(3)] + [{"id": 10 + n, "at": stamp(100)} for n in range(10)]
    items += [{"id": 30, "at": stamp(101)}, {"id": 31, "at": stamp(102)}]
    with CappedSim(items) as sim:
        states = read(stream_class, sim)
        assert sorted(Items.got) == [i["id"] for i in items]
        # page 1 from the start, page 1 at second 100 (moves the filter), its page 2, page 1 at 101…
        assert [(r.query.get("since", [""])[0][-9:], r.query["page"][0]) for r in sim.request_log()] == [
            ("00:00:00Z", "1"), ("12:01:40Z", "1"), ("12:01:40Z", "2"), ("12:01:40Z", "3"),
        ]  # fmt: skip
        mid = states[1]  # a kill after the first page at second 100: ids seen there are kept
        assert mid == {"since": stamp(100), "seen": [str(10 + n) for n in range(5)]}
        read(stream_class, sim, mid)
        assert sorted(Items.got) == [15, 16, 17, 18, 19, 30, 31]


@pytest.mark.parametrize("stream_class", [Items, Numbered])
def test_more_items_at_one_second_than_the_cap_fails_naming_the_second(stream_class: type[RestStream]) -> None:
    items = [{"id": 1, "at": stamp(0)}] + [{"id": 100 + n, "at": stamp(7)} for n in range(20)]
    with CappedSim(items) as sim:
        with pytest.raises(PageCapReached) as failed:
            read(stream_class, sim)
    message = str(failed.value)
    assert message.startswith(f"desk: more than 3 pages of items share at {stamp(7)}; the ones beyond cannot be read")
    cause = "beyond the 3rd page" if stream_class is Items else "lists at most 3 pages"
    assert cause in message and failed.value.status == 400
    # once each; PageNumber refuses before delivering its last allowed page, the error after it
    assert Items.got == [1] + [100 + n for n in range(15 if stream_class is Items else 10)]
