"""The Talk API's Incremental Calls Export cursor: a time export whose end shows only in `count`.

[TALK] https://developer.zendesk.com/api-reference/voice/talk-api/incremental_exports/ —
`GET /api/v2/channels/voice/stats/incremental/calls?start_time=` returns the calls modified on
or since start_time with `end_time` (the last call's time) and a `next_page` URL that is never
null: "use the count property to determine whether more items are available". No page size is
documented or settable, so the last page cannot be told by its length; the export is done when
a page brings nothing newer than its start (only the calls stamped at that second, repeated
because the start is inclusive — the upsert absorbs them). That costs one request beyond the
data on a full pull and exactly one on an idle sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from kpisync.core.errors import ApiError
from kpisync.core.sdk.exports import fetch, first_start
from kpisync.core.sdk.incremental import Cursor, State, Step, render
from kpisync.core.sdk.paginate import dig

if TYPE_CHECKING:
    from kpisync.core.sdk import RestStream


class CountExport(Cursor):
    """State `{"start_time": end_time of the last page}`; 422 (start less than a minute old) is
    "nothing yet"; an optional stream's 403/404 page goes back to RestStream as its notice.
    `stuck_at` items at one second with no way on is a failure, not a silent stop."""

    def __init__(self, earliest: datetime, stuck_at: int = 1000) -> None:
        self.earliest, self.stuck_at = earliest, stuck_at

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        saved = (state or {}).get("start_time")
        start = int(saved) if saved is not None else render(first_start(stream, self.earliest), "unix")
        while True:
            page = fetch(stream, {**stream.request_params(), "start_time": start}, (422,))
            if page.response.status == 422:
                return
            if page.response.status >= 400:
                yield [], None, page
                return
            end = dig(page.response.data, "end_time")
            if end is None:
                raise ApiError(f"{stream.connector.name}: {stream.path} answered without end_time")
            yield page.items, {"start_time": int(end)}, page
            if int(end) > start:
                start = int(end)
                continue
            if len(page.items) >= self.stuck_at:
                raise ApiError(
                    f"{stream.connector.name}: {stream.path} is stuck at start_time={start}: "
                    f"{len(page.items)} calls share that second; ask Zendesk support"
                )
            return
