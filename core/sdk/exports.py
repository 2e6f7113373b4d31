"""Incremental export cursors: bulk "everything changed since T" endpoints.

Many help desks offer an export that lists every item changed since a moment, in large pages
ordered by change time, with the position to resume from in the body (Zendesk's incremental
exports, Freshservice's and Gorgias's `updated_since` exports, Intercom-style scroll cursors).
An export is its own paginator: the position that fetches the next page *is* the state, so
these cursors page themselves and ignore the stream's `paginator`.

    CursorExport()                      # start_time once, then the opaque after_cursor
    TimeExport(page_sizes=(1000, 500, 250, 100))   # start_time = the last page's end_time

Both send `start_param` (rendered with `fmt`) from the config's start date on the first sync and
treat a `too_recent` status (Zendesk answers 422 to a start_time less than a minute old) as
"nothing to export yet". Exactness: each page's state is the position *after* that page, so a
kill between two pages resumes at the next one; a time export repeats the items that share the
boundary second, which the upsert absorbs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..timeutil import to_utc
from .incremental import EPOCH, Cursor, State, Step, render
from .paginate import Page, dig, records_at

if TYPE_CHECKING:
    from .stream import RestStream


class CursorExport(Cursor):
    """A cursor-based export: the first request carries `start_param`, every later one only the
    opaque `cursor_field` of the previous page (sent back as `cursor_param`); the state is that
    cursor. It ends at `end_field` (Zendesk's `end_of_stream`) or when no cursor comes back.

    `earliest` bounds the first start (Zendesk refuses start_time 0; the Unix epoch + 1 s reads
    the whole account)."""

    def __init__(
        self,
        start_param: str = "start_time",
        *,
        cursor_param: str = "cursor",
        cursor_field: str = "after_cursor",
        end_field: str | None = "end_of_stream",
        fmt: str = "unix",
        earliest: datetime = EPOCH,
        too_recent: tuple[int, ...] = (422,),
        state_key: str = "cursor",
    ) -> None:
        self.start_param, self.cursor_param, self.cursor_field, self.end_field = start_param, cursor_param, cursor_field, end_field
        self.fmt, self.earliest, self.too_recent, self.state_key = fmt, earliest, too_recent, state_key

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        base = stream.request_params()
        saved = (state or {}).get(self.state_key)
        if saved:
            params = {**base, self.cursor_param: saved}
        else:
            params = {**base, self.start_param: render(first_start(stream, self.earliest), self.fmt)}
        while True:
            page = fetch(stream, params, self.too_recent)
            if page.response.status in self.too_recent:
                return  # the start is too recent: nothing to export yet
            if page.response.status >= 400:  # an optional stream's 403/404: RestStream's notice
                yield [], None, page
                return
            cursor = dig(page.response.data, self.cursor_field)
            yield page.items, ({self.state_key: cursor} if cursor else None), page
            if not cursor or (self.end_field and dig(page.response.data, self.end_field)):
                return
            params = {**base, self.cursor_param: cursor}


class TimeExport(Cursor):
    """A time-based export: each request asks for `start_param` = the previous page's
    `end_field` (the time of its last item); the state is that end time.

    Pages overlap at the boundary (the API repeats the items stamped at the end time); the
    upsert absorbs them. Big pages can time out: a status in `shrink_on` (504) retries the same
    start with the next smaller of `page_sizes` (`size_param`), as Zendesk advises. When more
    than a page of items share one second the end time cannot move past the start: the cursor
    first grows the page back to the larger sizes, then fails with one clear line rather than
    loop. The export ends at `stop_field` (Zendesk's `end_of_stream`) or, with `stop_field=None`,
    at a short page."""

    def __init__(
        self,
        start_param: str = "start_time",
        *,
        end_field: str = "end_time",
        stop_field: str | None = "end_of_stream",
        size_param: str = "per_page",
        page_sizes: tuple[int, ...] = (1000,),
        shrink_on: tuple[int, ...] = (504,),
        fmt: str = "unix",
        earliest: datetime = EPOCH,
        too_recent: tuple[int, ...] = (422,),
        state_key: str = "start_time",
    ) -> None:
        if not page_sizes:
            raise ValueError("TimeExport needs at least one page size")
        self.start_param, self.end_field, self.stop_field, self.size_param = start_param, end_field, stop_field, size_param
        self.page_sizes, self.shrink_on, self.fmt, self.earliest = page_sizes, shrink_on, fmt, earliest
        self.too_recent, self.state_key = too_recent, state_key

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        base = stream.request_params()
        saved = (state or {}).get(self.state_key)
        start = saved if saved is not None else render(first_start(stream, self.earliest), self.fmt)
        name, path = stream.connector.name, stream.path
        size = 0
        while True:
            per_page = self.page_sizes[size]
            page = fetch(stream, {**base, self.start_param: start, self.size_param: per_page}, (*self.too_recent, *self.shrink_on))
            status = page.response.status
            if status in self.too_recent:
                return
            if status in self.shrink_on:
                if size + 1 >= len(self.page_sizes):
                    raise ApiError(f"{name}: {path} times out ({status}) even at {per_page} per page", status=status)
                size += 1
                continue
            if status >= 400:
                yield [], None, page
                return
            end = dig(page.response.data, self.end_field)
            if end is None:
                raise ApiError(f"{name}: {path} answered without {self.end_field}")
            end = int(end) if self.fmt == "unix" else end
            yield page.items, {self.state_key: end}, page
            last = dig(page.response.data, self.stop_field) if self.stop_field else len(page.items) < per_page
            if last:
                return
            if _instant(end) <= _instant(start):
                # More than a page of items share one second: the export cannot move on.
                if size > 0:
                    size -= 1
                    continue
                raise ApiError(
                    f"{name}: {path} is stuck at {self.start_param}={start}: more than {per_page} items "
                    "share that second; ask the vendor's support or use a larger page"
                )
            start = end


def first_start(stream: RestStream, earliest: datetime) -> datetime:
    """The first sync's start: the configured start date, never before `earliest`."""
    start = stream.start_date()
    return earliest if start is None or start < earliest else start


def fetch(stream: RestStream, params: dict[str, Any], tolerate: tuple[int, ...]) -> Page:
    """One export page; statuses in `tolerate` (and an optional stream's 403/404) come back
    as an empty page instead of an error, so the cursor decides what they mean."""
    response = stream.http.get(stream.path, params, tolerate=(*stream.tolerate, *tolerate))
    if response.status >= 400:
        return Page(response, [])
    return Page(response, records_at(response.data, stream.records_path, f"GET {stream.path}"))


def _instant(value: Any) -> float:
    """A position as a number: unix seconds as given, ISO times parsed."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return float(value)
    moment = to_utc(value)
    if moment is None:
        raise ApiError(f"export position {value!r} is not a time")
    return moment.timestamp()


__all__ = ["CursorExport", "TimeExport"]
