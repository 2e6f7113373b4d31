"""The SDK fan-out (core/sdk/fanout.py) against a tiny feed server on 127.0.0.1: several listings
per stream, each with its own state entry; a first walk back to the start date, then forward
paging (min_id) or a walk down to the mark (since_id); dedupe across listings; exact resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from kpisync.core.connector import ConnectorConfig
from kpisync.core.httpclient import HttpClient, Runtime
from kpisync.core.sdk import FanOut, FanOutStream, FeedPage, Listing, RestConnector
from kpisync.fixtures.simserver import Request, Response, SimClock, SimServer

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
LIMIT = 3


def post(n: int, minute: int | None = None) -> dict[str, Any]:
    """Post n, posted at minute n (or `minute`: several posts can share an instant)."""
    at = T0 + timedelta(minutes=n if minute is None else minute)
    return {"id": str(n), "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}


class FeedSim(SimServer):
    """GET /feeds/{name}: newest first, `limit` a page; `max_id` pages back and the body's `older`
    names the next max_id while more lie below; `since_id` bounds from below; `min_id` returns the
    `limit` posts just above it (still newest first). An unknown feed is a 404 — the id paging of
    Mastodon's lists (docs.joinmastodon.org/api/guidelines#paginating), cursor in the body."""

    def __init__(self, feeds: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.feeds = feeds
        self.route("GET", r"/feeds/(?P<name>\w+)", self._feed)

    def _feed(self, request: Request) -> Response:
        feed = self.feeds.get(request.params["name"])
        if feed is None:
            return Response(404, json={"error": "Record not found"})
        limit = int(request.arg("limit") or LIMIT)
        max_id, since_id, min_id = (request.arg(n) for n in ("max_id", "since_id", "min_id"))
        window = sorted(
            (p for p in feed
             if (max_id is None or int(p["id"]) < int(max_id))
             and (since_id is None or int(p["id"]) > int(since_id))
             and (min_id is None or int(p["id"]) > int(min_id))),
            key=lambda p: int(p["id"]), reverse=True,
        )  # fmt: skip
        page = window[-limit:] if min_id is not None else window[:limit]
        older = page[-1]["id"] if min_id is None and len(window) > limit else None
        return Response(json={"items": page, "older": older})


class Feed(Listing):
    """A listing of the simulator: walks down with max_id; later runs walk down to since_id."""

    def __init__(self, http: HttpClient, key: str) -> None:
        super().__init__(key)
        self.http = http

    def fetch(self, params: dict[str, Any]) -> FeedPage:
        response = self.http.get(f"/feeds/{self.key}", params, tolerate=(404,))
        if response.status == 404:
            return FeedPage([], missing=True)
        items = response.data["items"]
        return FeedPage(items, older=response.data["older"], newer=len(items) == LIMIT)

    def newest_params(self, mark: Any) -> dict[str, Any]:
        return {"limit": LIMIT, **({"since_id": mark} if mark else {})}

    def older_params(self, cursor: Any, mark: Any) -> dict[str, Any]:
        return {**self.newest_params(mark), "max_id": cursor}


class Forward(Feed):
    """Later runs page up from the mark with min_id (Mastodon)."""

    forward = True

    def newer_params(self, mark: Any) -> dict[str, Any]:
        return {"limit": LIMIT, "min_id": mark}


class ByTime(Feed):
    """Bluesky-style: no server-side bound, time order with ties; the mark is the newest instant
    and the ids seen at it, so a post that arrives later at that same instant still counts."""

    def newest_params(self, mark: Any) -> dict[str, Any]:
        return {"limit": LIMIT}

    def advance(self, mark: Any, items: Any) -> Any:
        at, ids = (mark["at"], set(mark["ids"])) if mark else (None, set())
        for item in items:
            if at is None or item["created_at"] > at:
                at, ids = item["created_at"], {item["id"]}
            elif item["created_at"] == at:
                ids.add(item["id"])
        return {"at": at, "ids": sorted(ids)} if at else None

    def seen(self, item: dict[str, Any], mark: Any) -> bool:
        return mark is not None and (
            item["created_at"] < mark["at"] or (item["created_at"] == mark["at"] and item["id"] in mark["ids"])
        )


def client(sim: FeedSim) -> HttpClient:
    return HttpClient(sim.url, Runtime(time_scale=1000), name="feeds")


def run(fan: FanOut, state: dict[str, Any] | None, *, steps: int | None = None) -> tuple[list[str], dict[str, Any] | None]:
    """Ids handed on and the state the engine would have committed (after `steps` pages: a kill)."""
    got: list[str] = []
    for n, (_listing, _page, items, new_state) in enumerate(fan.read(state)):
        if steps is not None and n == steps:
            break
        got += [i["id"] for i in items]
        state = new_state
    return got, state


def fan(http: HttpClient, *keys_and_types: tuple[str, type[Feed]], **options: Any) -> FanOut:
    return FanOut([kind(http, key) for key, kind in keys_and_types], group="feeds", **options)


def feeds() -> dict[str, list[dict[str, Any]]]:
    # "a": posts 101..110; "b": 105..112, sharing 105..110 with "a".
    return {"a": [post(n) for n in range(101, 111)], "b": [post(n) for n in range(105, 113)]}


START = T0 + timedelta(minutes=103)  # the first walk stops below post 103


def test_first_walk_then_forward_and_since_id_polls_and_an_idle_run() -> None:
    world = feeds()
    with FeedSim(world) as sim:
        http = client(sim)
        listings = (("a", Forward), ("b", Feed))
        got, state = run(fan(http, *listings, start=START), None)
        # "a" back to the start date (3 pages: 110-108, 107-105, 104-102), then "b": only what
        # "a" did not already hand on this run.
        assert got == [str(n) for n in (110, 109, 108, 107, 106, 105, 104, 103, 112, 111)]
        assert state == {"feeds": {"a": {"mark": "110"}, "b": {"mark": "112"}}}
        assert sim.request_count() == 3 + 3

        world["a"] += [post(n) for n in range(113, 118)]
        world["b"] += [post(114), post(118)]
        sim.clear_log()
        got, state = run(fan(http, *listings, start=START), state)
        # "a" pages up with min_id (a full page, then a short one); "b" walks down to since_id=112.
        assert got == ["115", "114", "113", "117", "116", "118"]
        assert state == {"feeds": {"a": {"mark": "117"}, "b": {"mark": "118"}}}
        assert [r.query.get("min_id") or r.query.get("since_id") for r in sim.request_log()] == [["110"], ["115"], ["112"]]

        sim.clear_log()
        got, again = run(fan(http, *listings, start=START), state)
        assert got == [] and again == state and sim.request_count() == 2


@pytest.mark.parametrize("kill_after", range(6))
def test_a_run_killed_after_any_page_resumes_to_the_same_items_and_state(kill_after: int) -> None:
    with FeedSim(feeds()) as sim:
        http = client(sim)
        listings = (("a", Forward), ("b", Feed))
        whole, final = run(fan(http, *listings, start=START), None)
        before, saved = run(fan(http, *listings, start=START), None, steps=kill_after)
        sim.clear_log()
        after, state = run(fan(http, *listings, start=START), saved)
    assert state == final
    assert set(before) | set(after) == set(whole)
    # The resumed walk starts at the page after the last committed one, not from the top again.
    if saved and "older" in saved["feeds"].get("a", {}):
        assert sim.request_log()[0].query["max_id"] == [saved["feeds"]["a"]["older"]]


def test_a_budget_stops_before_the_next_request_and_the_next_run_continues() -> None:
    with FeedSim(feeds()) as sim:
        http = client(sim)
        listings = (("a", Forward), ("b", Feed))
        whole, final = run(fan(http, *listings, start=START), None)
        sim.clear_log()
        capped = fan(http, *listings, start=START, stop=lambda: sim.request_count() >= 2)
        first, state = run(capped, None)
        assert capped.stopped and sim.request_count() == 2 and first == whole[:6]
        assert state == {"feeds": {"a": {"head": "110", "older": "105"}}}
        rest, state = run(fan(http, *listings, start=START), state)
    # "a" goes on at its cursor; "b" hands on all of its posts (the dedupe is per run: upserts).
    assert rest[:2] == ["104", "103"] and set(first + rest) == set(whole) and state == final


def test_a_missing_listing_is_named_and_the_others_are_read() -> None:
    with FeedSim(feeds()) as sim:
        reader = fan(client(sim), ("a", Forward), ("nobody", Forward), ("b", Feed))
        got, state = run(reader, None)
    assert reader.missing == ["nobody"]
    assert state is not None and set(state["feeds"]) == {"a", "b"} and len(got) == 12


def test_time_ordered_listings_keep_posts_that_share_the_marks_instant() -> None:
    world = {"t": [post(n, minute=n // 2) for n in range(200, 208)]}  # two posts a minute
    with FeedSim(world) as sim:
        reader = lambda: fan(client(sim), ("t", ByTime))  # noqa: E731
        got, state = run(reader(), None)
        assert got == [str(n) for n in range(207, 199, -1)]
        assert state == {"feeds": {"t": {"mark": {"at": post(207, minute=103)["created_at"], "ids": ["206", "207"]}}}}
        world["t"].append(post(208, minute=207 // 2))  # late, at the mark's instant
        sim.clear_log()
        got, state = run(reader(), state)
        assert got == ["208"] and sim.request_count() == 1
        assert state["feeds"]["t"]["mark"]["ids"] == ["206", "207", "208"]  # type: ignore[index]
        got, _ = run(reader(), state)
        assert got == []


class Config(ConnectorConfig):
    pass


class Posts(FanOutStream):
    name = "posts"
    group = "feeds"
    got: ClassVar[list[tuple[str, str]]] = []

    def listings(self) -> list[Listing]:
        return [Forward(self.http, "a"), Forward(self.http, "nobody"), Feed(self.http, "b")]

    def map_page(self, items: list[dict[str, Any]], page: FeedPage) -> list[Any]:  # type: ignore[override]
        Posts.got += [(page.listing.key, i["id"]) for i in items]  # type: ignore[union-attr]
        return []

    def missing_notice(self, key: str) -> str:
        return f"posts: {key} has no feed"


class PostsConnector(RestConnector):
    name, title, config_model, check_path = "posts", "Posts", Config, "/feeds/a"
    stream_classes = [Posts]


def test_fan_out_stream_is_a_rest_stream_with_one_batch_a_page_and_notices_at_the_end() -> None:
    with FeedSim(feeds()) as sim:
        connector = PostsConnector(Config(base_url=sim.url, start_date=START), Runtime(time_scale=1000))
        Posts.got = []
        batches = list(connector.streams()[0].read(None))
    assert [b.state for b in batches[-2:]] == [{"feeds": {"a": {"mark": "110"}, "b": {"mark": "112"}}}, None]
    assert batches[-1].notices == ["posts: nobody has no feed"]
    assert len(batches) == 3 + 3 + 1  # a batch per page ("a" 3, "b" 3), then the notices
    assert Posts.got[-2:] == [("b", "112"), ("b", "111")]
