"""The export cursors (kpisync.core.sdk.exports) and RestStream's read-ahead against a small
incremental-export API on 127.0.0.1.

The simulator follows the shape of Zendesk's Incremental Exports API
(developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/):
`start_time` (unix seconds) must lie at least a minute in the past, else 422 "Too recent
start_time"; cursor exports answer `after_cursor` + `end_of_stream` and take `cursor=` alone
afterwards; time exports answer `end_time` = the last item's time + `end_of_stream`, so items
at that second come again on the next page; big pages can answer 504 (shared/notes/zendesk-api.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import ApiError
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import CursorExport, RestConnector, RestStream, TimeExport
from kpisync.fixtures.simserver import Request, Response, SimClock, SimServer

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
NOW = int(T0.timestamp())
UNIX_START = datetime.fromtimestamp(1, UTC)


class ExportSim(SimServer):
    """`/cursor` (cursor-based) and `/time` (time-based) exports of `items` ({"id", "t"}),
    sorted by (t, id); items of the last minute are hidden; per_page > `max_ok` answers 504."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.items = items
        self.max_ok = 10**6
        self.route("GET", r"/cursor", self._cursor)
        self.route("GET", r"/time", self._time)

    def _visible(self) -> list[dict[str, Any]]:
        return sorted((i for i in self.items if i["t"] <= NOW - 60), key=lambda i: (i["t"], i["id"]))

    def _too_recent(self, start: int) -> Response | None:
        if start > NOW - 60:
            return Response(422, json={"error": "InvalidValue", "description": "Too recent start_time. Use a start_time older than 1 minute"})
        return None

    def _cursor(self, request: Request) -> Response:
        per_page = int(request.arg("per_page") or 1000)
        cursor = request.arg("cursor")
        if cursor is not None:  # the cursor replaces start_time
            assert request.arg("start_time") is None
            t, n = (int(x) for x in cursor.split(":"))
            rows = [i for i in self._visible() if (i["t"], i["id"]) > (t, n)]
        else:
            start = int(request.arg("start_time") or 0)
            if refused := self._too_recent(start):
                return refused
            rows = [i for i in self._visible() if i["t"] >= start]
            cursor = f"{start - 1}:0"
        page = rows[:per_page]
        after = f"{page[-1]['t']}:{page[-1]['id']}" if page else cursor
        return Response(json={"items": page, "after_cursor": after, "end_of_stream": len(rows) <= per_page})

    def _time(self, request: Request) -> Response:
        per_page = int(request.arg("per_page") or 1000)
        if per_page > self.max_ok:
            return Response(504, body=b"<html><body><h1>504 Gateway Time-out</h1></body></html>", headers={"Content-Type": "text/html"})
        start = int(request.arg("start_time") or 0)
        if refused := self._too_recent(start):
            return refused
        page = [i for i in self._visible() if i["t"] >= start][:per_page]
        return Response(json={"items": page, "end_time": page[-1]["t"] if page else start, "end_of_stream": len(page) < per_page})


class Config(ConnectorConfig):
    pass


class Exported(RestStream):
    name = "exported"
    path = "/cursor"
    records_path = "items"
    params = {"per_page": 3}
    cursor = CursorExport(earliest=UNIX_START)
    got: ClassVar[list[int]] = []

    def map(self, item: dict[str, Any]) -> None:
        Exported.got.append(item["id"])
        return None


class TimeExported(Exported):
    path = "/time"
    params = {}
    cursor = TimeExport(page_sizes=(4, 2), earliest=UNIX_START)


class ExportConnector(RestConnector):
    name, title, config_model, check_path = "exports", "Exports", Config, "/cursor"
    stream_classes = [Exported]


def read(sim: ExportSim, stream_class: type[RestStream], state: dict[str, Any] | None = None,
         start_date: datetime | None = None) -> list[dict[str, Any] | None]:  # fmt: skip
    """The states of every batch of one read."""
    Exported.got = []
    connector = ExportConnector(Config(base_url=sim.url, start_date=start_date), Runtime(time_scale=1000))
    try:
        return [batch.state for batch in stream_class(connector).read(state)]
    finally:
        connector.close()


def at(seconds: int, n: int) -> dict[str, Any]:
    return {"id": n, "t": NOW - 3600 + seconds}


def test_cursor_export_starts_at_start_date_then_follows_the_cursor_to_end_of_stream() -> None:
    items = [at(s, n) for n, s in enumerate([0, 0, 5, 10, 10, 10, 20], start=1)]
    with ExportSim(items) as sim:
        states = read(sim, Exported, start_date=T0 - timedelta(seconds=3600 - 5))
        assert Exported.got == [3, 4, 5, 6, 7]  # from the start date on: 2 pages of 3
        assert states == [{"cursor": f"{NOW - 3590}:5"}, {"cursor": f"{NOW - 3580}:7"}]
        first, second = (r.query for r in sim.requests)
        assert first == {"start_time": [str(NOW - 3595)], "per_page": ["3"]}
        assert second == {"cursor": [f"{NOW - 3590}:5"], "per_page": ["3"]}  # the cursor alone

        # Without a start date the whole account from `earliest`; a saved cursor resumes after it.
        assert read(sim, Exported)[-1] == {"cursor": f"{NOW - 3580}:7"} and Exported.got == list(range(1, 8))
        assert sim.requests[2].query["start_time"] == ["1"]
        sim.items.append(at(30, 8))
        assert read(sim, Exported, {"cursor": f"{NOW - 3580}:7"}) == [{"cursor": f"{NOW - 3570}:8"}]
        assert Exported.got == [8]


def test_a_too_recent_start_means_nothing_to_export() -> None:
    with ExportSim([at(0, 1)]) as sim:
        assert read(sim, Exported, start_date=T0 - timedelta(seconds=10)) == []
        assert read(sim, TimeExported, start_date=T0 - timedelta(seconds=10)) == []
        assert Exported.got == [] and sim.request_count(status=422) == 2


def test_time_export_state_is_the_last_end_time_and_the_boundary_overlap_is_repeated() -> None:
    # 4 a page: page 1 ends at second 10 (items 1-4), page 2 starts at 10 again: item 4 twice.
    items = [at(s, n) for n, s in enumerate([0, 5, 5, 10, 12, 14], start=1)]
    with ExportSim(items) as sim:
        states = read(sim, TimeExported)
        assert Exported.got == [1, 2, 3, 4, 4, 5, 6]  # the upsert absorbs the repeat
        assert states == [{"start_time": NOW - 3590}, {"start_time": NOW - 3586}]
        assert read(sim, TimeExported, states[-1]) == [{"start_time": NOW - 3586}] and Exported.got == [6]


def test_a_504_drops_to_the_next_smaller_page_and_stays_there() -> None:
    items = [at(s, n) for n, s in enumerate(range(0, 50, 10), start=1)]
    with ExportSim(items) as sim:
        sim.max_ok = 2
        states = read(sim, TimeExported)
        # 504 at 4 (not retried), then 2 a page: [1 2] [2 3] [3 4] [4 5] [5] (boundary repeats)
        assert [(r.query["per_page"][0], r.status) for r in sim.requests] == [("4", 504)] + [("2", 200)] * 5
        assert sorted(set(Exported.got)) == [1, 2, 3, 4, 5] and states[-1] == {"start_time": NOW - 3560}
        sim.max_ok = 1
        with pytest.raises(ApiError) as failed:
            read(sim, TimeExported)
    assert str(failed.value) == "exports: /time times out (504) even at 2 per page"


def test_more_than_a_page_at_one_second_grows_the_page_back_then_fails_clearly() -> None:
    # 3 items share second 0: a page of 2 cannot move past it. The first request (4) meets a
    # 504 fault, so the cursor is at 2 when it gets stuck, and grows back to 4 to get past.
    items = [at(0, 1), at(0, 2), at(0, 3), at(7, 4)]
    with ExportSim(items) as sim:
        sim.faults.fail_next(1, 504, path="/time")
        states = read(sim, TimeExported, start_date=T0 - timedelta(hours=1))
        pages = [(r.query["per_page"][0], r.status) for r in sim.requests]
        assert pages == [("4", 504), ("2", 200), ("4", 200), ("4", 200)]  # 504, stuck at 2, grown back
        assert sorted(set(Exported.got)) == [1, 2, 3, 4] and states[-1] == {"start_time": NOW - 3593}

        # With no larger page to grow to, one clear line instead of a loop.
        sim.clear_log()
        with pytest.raises(ApiError) as stuck:
            read(sim, SmallPages, start_date=T0 - timedelta(hours=1))
    assert str(stuck.value) == (
        f"exports: /time is stuck at start_time={NOW - 3600}: more than 2 items share that second; "
        "ask the vendor's support or use a larger page"
    )
    assert "\n" not in str(stuck.value)


class SmallPages(TimeExported):
    cursor = TimeExport(page_sizes=(2,), earliest=UNIX_START)


class NoStopFlag(TimeExported):
    """An API without end_of_stream: a short page ends the export."""

    cursor = TimeExport("since", end_field="until", stop_field=None, size_param="limit", page_sizes=(3,),
                        earliest=UNIX_START, state_key="since")  # fmt: skip


class RenamedSim(ExportSim):
    def _time(self, request: Request) -> Response:
        start, limit = int(request.arg("since") or 0), int(request.arg("limit") or 0)
        page = [i for i in self._visible() if i["t"] >= start][:limit]
        return Response(json={"items": page, "until": page[-1]["t"] if page else start})


def test_param_names_and_keys_are_configurable() -> None:
    items = [at(s, n) for n, s in enumerate([0, 1, 2, 3], start=1)]
    with RenamedSim(items) as sim:
        states = read(sim, NoStopFlag)
        assert [r.query["limit"] for r in sim.requests] == [["3"], ["3"]]
        assert states == [{"since": NOW - 3598}, {"since": NOW - 3597}]  # the second page is short
        assert sorted(set(Exported.got)) == [1, 2, 3, 4]


class OnePerPage(Exported):
    params = {"per_page": 1}


class ReadAhead(OnePerPage):
    read_ahead = True
    prepared: ClassVar[list[int]] = []
    overlapped: ClassVar[list[bool]] = []
    sim: ClassVar[ExportSim]

    def prepare(self) -> None:
        ReadAhead.prepared.append(self.sim.request_count())

    def map(self, item: dict[str, Any]) -> None:
        # One item a page: while page n is mapped, page n + 1 is requested (the last page has
        # end_of_stream, so nothing follows it).
        deadline = time.monotonic() + 5
        wanted = item["id"] + 1 if item["id"] < 4 else 4
        while self.sim.request_count() < wanted and time.monotonic() < deadline:
            time.sleep(0.002)
        ReadAhead.overlapped.append(self.sim.request_count() >= wanted)
        return super().map(item)


def test_read_ahead_overlaps_requests_with_mapping_and_keeps_each_state_with_its_page() -> None:
    items = [at(s, n) for n, s in enumerate([0, 1, 2, 3], start=1)]
    with ExportSim(items) as sim:
        ReadAhead.sim, ReadAhead.prepared, ReadAhead.overlapped = sim, [], []
        states = read(sim, ReadAhead)
        assert ReadAhead.prepared == [0]  # lookups before any page is fetched
        assert ReadAhead.overlapped == [True, True, True, True]
        plain = read(sim, OnePerPage)
    assert Exported.got == [1, 2, 3, 4]
    assert states == plain == [{"cursor": f"{NOW - 3600 + s}:{n}"} for n, s in enumerate([0, 1, 2, 3], start=1)]
