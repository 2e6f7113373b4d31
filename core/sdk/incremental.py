"""Incremental cursors: which slice of a list to ask for, and the state after each page.

A cursor drives one `RestStream` read: it turns the saved state into the filter of the first
request, drops what an earlier page or run already delivered, and says what state follows each
page. The rule behind all of them (core/connector.py): a state only moves past records that
are in the same or an earlier batch, so a kill at any point and a rerun converge.

    UpdatedSince("updated_since", "updated_at")                 # sorted ascending: keyset
    UpdatedSince("_updated_since", "updated_at", ordered=False) # unordered: state at the end
    SinceId("since_id")                                         # newest-first id-ordered feeds
    StartTime("start", "ratingCreatedAt", end_param="end",      # time-range reports, sliced
              window=timedelta(days=30), lookback=timedelta(days=14))
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..timeutil import iso, to_utc
from .paginate import Dedupe, Page, PageCapReached, Request, TimeWindows, dig

if TYPE_CHECKING:
    from .stream import RestStream

State = dict[str, Any]
Items = list[dict[str, Any]]
#: (records' source items, state after them or None to keep the last one, the page)
Step = tuple[Items, State | None, Page]

#: First-run start when neither the cursor nor the config names one.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def render(value: datetime, fmt: str) -> Any:
    """A filter value as the API wants it: "iso" (2024-01-02T03:04:05Z), "unix" seconds,
    "date" (2024-01-02) or any strftime pattern."""
    if fmt == "iso":
        return iso(value)
    if fmt == "unix":
        return int(value.timestamp())
    if fmt == "date":
        return value.date().isoformat()
    return value.strftime(fmt)


class Cursor:
    """Full refresh: every page, no state (small lists; unchanged rows write nothing)."""

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        for page in stream.pages(stream.request_params()):
            yield page.items, None, page


class UpdatedSince(Cursor):
    """A list filtered by a modification time.

    `ordered=True` (the list is sorted ascending by `field`): every request asks for the *first*
    page of `param` = the newest time seen, minus `overlap` for APIs whose filter is exclusive
    or whose clocks skew, and drops what it already delivered: items older than that time, and
    items *at* that second whose ids are in the state's `seen` list (same-second dedupe). A
    page-numbered list that changes while it is read never skips an item this way, and never
    meets a page cap; only when a whole page shares one second does it page on within it. If
    more items share one second than the cap lets through, the `PageCapReached` of the
    paginator (`max_pages`) or of the stream's `fetch` (an API that answers the page past its
    cap with an error) is raised again naming the second and how many pages share it.

    `ordered=False`: the list is read whole from `since - lookback`; the state moves to the
    newest time seen only after its last page (an unordered list has no safe point before).

    `earliest=None`: a first sync without a start date sends no filter at all (WooCommerce).
    """

    def __init__(
        self,
        param: str,
        field: str,
        *,
        fmt: str = "iso",
        ordered: bool = True,
        overlap: timedelta = timedelta(0),
        lookback: timedelta = timedelta(0),
        key: str = "id",
        earliest: datetime | None = EPOCH,
    ) -> None:
        self.param, self.field, self.fmt, self.ordered = param, field, fmt, ordered
        self.overlap, self.lookback, self.key, self.earliest = overlap, lookback, key, earliest

    def stamp(self, item: dict[str, Any]) -> datetime | None:
        return to_utc(dig(item, self.field))

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        saved = to_utc((state or {}).get("since"))
        since = saved or stream.start_date() or self.earliest
        if not self.ordered:
            yield from self._unordered(stream, saved - self.lookback if saved else since)
            return
        seen = {str(i) for i in (state or {}).get("seen", [])}
        paginator, base = stream.paginator, stream.request_params()
        request: Request | None = paginator.first(stream.path, self._filter(base, since, self.overlap))
        pages = 0  # pages read since the last restart at page 1 (paging on: all at `since`)
        while request is not None:
            try:
                page = stream.fetch(request)
                pages, items = pages + 1, page.items
                ok = page.response.status < 400
                following = paginator.next_request(page.response, items, request) if ok else None
            except PageCapReached as cap:
                raise self._capped(stream, since, pages, cap) from cap
            fresh = [i for i in items if not self._already(i, since, seen)]
            newest = max((s for s in map(self.stamp, items) if s is not None), default=since)
            if newest is not None and (since is None or newest > since):  # move the filter up, restart
                since, pages = newest, 0
                seen = {str(dig(i, self.key)) for i in items if self.stamp(i) == newest}
                request = paginator.first(stream.path, self._filter(base, since, self.overlap)) if following else None
            else:  # a whole page at one second: page on within it
                seen.update(str(dig(i, self.key)) for i in items if self.stamp(i) == since)
                request = following
            yield fresh, ({"since": iso(since), "seen": sorted(seen)} if since else None), page

    def _capped(self, stream: RestStream, since: datetime | None, pages: int, cap: PageCapReached) -> PageCapReached:
        """The cap met while paging within one second: no filter value can get past it."""
        at = iso(since) if since else "one time"
        return PageCapReached(
            f"{stream.connector.name}: more than {pages} pages of {stream.name} share {self.field} {at}; "
            f"the ones beyond cannot be read through this API ({cap})",
            status=cap.status,
        )

    def _filter(self, base: dict[str, Any], since: datetime | None, back: timedelta) -> dict[str, Any]:
        return base if since is None else {**base, self.param: render(since - back, self.fmt)}

    def _already(self, item: dict[str, Any], since: datetime | None, seen: set[str]) -> bool:
        stamp = self.stamp(item)
        return stamp is not None and since is not None and (stamp < since or (stamp == since and str(dig(item, self.key)) in seen))

    def _unordered(self, stream: RestStream, since: datetime | None) -> Iterator[Step]:
        newest: datetime | None = None
        pages = stream.pages(self._filter(stream.request_params(), since, timedelta(0)))
        for page, last in _with_last(pages):
            for item in page.items:
                stamp = self.stamp(item)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            yield page.items, ({"since": iso(newest)} if last and newest else None), page


class SinceId(Cursor):
    """Newest-first feeds polled with `since_id` (X, Mastodon, GitHub events): the first run
    reads back to the start; later runs only what is newer than the newest id of the last.
    Within a poll the state keeps the old `since_id`, the newest id so far and the next
    request, so a killed poll resumes where it stopped; it moves on only at the end."""

    def __init__(self, param: str = "since_id", field: str = "id") -> None:
        self.param, self.field = param, field

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        state = state or {}
        since, newest, resume = state.get("since_id"), state.get("newest"), state.get("next")
        base = stream.request_params()
        if since is not None:
            base = {**base, self.param: since}
        request: Request | None = (resume[0], resume[1]) if resume else stream.paginator.first(stream.path, base)
        while request is not None:
            page = stream.fetch(request)
            ids = [dig(i, self.field) for i in page.items if dig(i, self.field) is not None]
            if ids:
                top = max(ids, key=_id_order)
                newest = top if newest is None else max(newest, top, key=_id_order)
            request = stream.paginator.next_request(page.response, page.items, request) if page.items else None
            if request is None:
                done = newest if newest is not None else since
                yield page.items, ({"since_id": done} if done is not None else {}), page
            else:
                yield page.items, {"since_id": since, "newest": newest, "next": [stream.safe_url(request[0]), request[1]]}, page


def _id_order(value: Any) -> tuple[int, Any]:
    """Numeric ids compare as numbers (snowflakes), others as text."""
    text = str(value)
    return (len(text), text) if text.isdigit() else (0, text)


class StartTime(Cursor):
    """A list or report filtered by a time range (`start_param` … `end_param`).

    The range from the saved `since` (minus `lookback`, for late arrivals) to now + `horizon`
    (clocks that run ahead lose nothing) is cut into `window`s, read one after the other;
    windows overlap by `overlap` and items seen twice are dropped by `key`. After a window's
    last page the state moves to the newest item time seen, or to the window's end once that
    lies `lookback` in the past — never past an item the API might still add.
    """

    def __init__(
        self,
        start_param: str,
        field: str,
        *,
        end_param: str | None = None,
        fmt: str = "iso",
        window: timedelta | None = None,
        overlap: timedelta = timedelta(0),
        lookback: timedelta = timedelta(0),
        horizon: timedelta = timedelta(days=1),
        key: str = "id",
        earliest: datetime = EPOCH,
    ) -> None:
        self.start_param, self.end_param, self.field, self.fmt = start_param, end_param, field, fmt
        self.window, self.overlap, self.lookback, self.horizon = window, overlap, lookback, horizon
        self.key, self.earliest = key, earliest

    def read(self, stream: RestStream, state: State | None) -> Iterator[Step]:
        saved = to_utc((state or {}).get("since"))
        start = (saved - self.lookback) if saved else (stream.start_date() or self.earliest)
        now = stream.now()
        end = now + self.horizon
        if self.window is None or self.end_param is None:
            windows = [(start, end)]
        else:
            windows = [(w.start, w.end) for w in TimeWindows(self.window, self.overlap).windows(start, end)]
        dedupe = Dedupe(self.key)
        newest = mark = saved
        for lo, hi in windows:
            params = {**stream.request_params(), self.start_param: render(lo, self.fmt)}
            if self.end_param:
                params[self.end_param] = render(hi, self.fmt)
            for page, last in _with_last(stream.pages(params)):
                for stamp in (to_utc(dig(i, self.field)) for i in page.items):
                    if stamp is not None and (newest is None or stamp > newest):
                        newest = stamp
                closed = hi if hi <= now - self.lookback else None
                if last:
                    mark = max((t for t in (newest, closed, mark) if t is not None), default=None)
                yield dedupe.fresh(page.items), ({"since": iso(mark)} if last and mark else None), page


def _with_last(pages: Iterator[Page]) -> Iterator[tuple[Page, bool]]:
    """Each page with a flag telling whether it is the last one."""
    previous: Page | None = None
    for page in pages:
        if previous is not None:
            yield previous, False
        previous = page
    if previous is not None:
        yield previous, True


__all__ = ["EPOCH", "Cursor", "SinceId", "StartTime", "UpdatedSince", "render"]
