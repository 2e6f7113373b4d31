"""Fan-out: one stream over several newest-first listings, each with its own cursor.

Social connectors read a handful of post lists per stream — a mentions feed, one timeline per
hashtag, one search per query (Mastodon, X, Bluesky). Each `Listing` runs newest first and keeps
its own entry in the stream state, under `group` and keyed by `Listing.key` (a tag, a query):

* the first pass walks *down* from the newest page (`older_params`: max_id, pagination_token,
  cursor) until it reaches `start_date` or the bottom; the newest item seen becomes the
  listing's `mark`;
* later runs either page *up* from the mark (`forward = True`, `newer_params`: Mastodon's
  min_id), the mark moving with every page, or walk down from the newest page again until they
  meet the mark (`newest_params` may pass it on as X's since_id or Bluesky's since).

While a walk is under way its entry also holds the walk's `head` (newest item so far) and the
`older` cursor: a killed walk resumes at the page it stopped at, and the mark moves past the
walk only after its last page — the state never runs ahead of committed records. A post that
two listings return in one run is handed on once (`Listing.post_id`).

    {"tags": {"nimbus": {"mark": "1107"},                               # between runs
              "cloud": {"mark": "1002", "head": "1107", "older": "1050"}}}  # mid-walk

`FanOutStream` is the `RestStream` form (a connector lists its listings and maps the pages);
`FanOut` alone drives any other client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ..connector import Batch
from ..timeutil import to_utc
from .incremental import _id_order
from .stream import RestStream

State = dict[str, Any]
Item = dict[str, Any]
#: Whatever `Listing.fetch` takes: a dict, or a list of pairs for repeated keys.
Params = Any


@dataclass
class FeedPage:
    """One page of a listing, as `Listing.fetch` read it."""

    items: list[Item]
    #: What `older_params` needs for the next older page (max_id, a token); None at the bottom.
    older: Any = None
    #: Forward listings: more may lie above this page (it was full).
    newer: bool = False
    #: The body, for what the mapping needs besides the items (X's `includes`).
    data: Any = None
    #: The listing does not exist (a hashtag nobody used yet): a notice, its entry is kept.
    missing: bool = False
    #: Set by `FanOut`: the listing the page belongs to.
    listing: Listing | None = None


class Listing:
    """One newest-first list. Subclasses say how to fetch a page and which params ask for the
    newest, the next older and (forward listings) the next newer page; the item hooks default to
    Mastodon/X-style items (`id` a numeric string, `created_at` ISO)."""

    #: Later runs page up from the mark with `newer_params` instead of walking down to it.
    forward: ClassVar[bool] = False

    def __init__(self, key: str) -> None:
        self.key = key

    # -- how to read it ------------------------------------------------------------------------
    def fetch(self, params: Params) -> FeedPage:
        raise NotImplementedError

    def newest_params(self, mark: Any) -> Params:
        """The newest page. `mark` is the last pass's mark (None on a first pass): an API that
        takes a lower bound (since_id) gets it here; items at or below it are dropped anyway."""
        raise NotImplementedError

    def older_params(self, cursor: Any, mark: Any) -> Params:
        """The page below the one whose `FeedPage.older` was `cursor`."""
        raise NotImplementedError

    def newer_params(self, mark: Any) -> Params:
        """Forward listings: the page just above `mark` (Mastodon min_id)."""
        raise NotImplementedError(f"{type(self).__name__} does not page forward")

    # -- its items -----------------------------------------------------------------------------
    def item_id(self, item: Item) -> str:
        return str(item["id"])

    def post_id(self, item: Item) -> str:
        """The post an item is (or carries): the key of the dedupe across listings."""
        return self.item_id(item)

    def item_time(self, item: Item) -> datetime | None:
        return to_utc(item.get("created_at"))

    def advance(self, mark: Any, items: Sequence[Item]) -> Any:
        """The mark after `items`: the newest id (numeric ids compare as numbers). Time-ordered
        lists override this and `seen` ({"at", "ids"} for posts that share an instant)."""
        ids = [self.item_id(i) for i in items] + ([str(mark)] if mark is not None else [])
        return max(ids, key=_id_order) if ids else None

    def seen(self, item: Item, mark: Any) -> bool:
        """Delivered by an earlier pass: at or below the mark."""
        return mark is not None and _id_order(self.item_id(item)) <= _id_order(str(mark))


#: (listing, page, items to map — not seen before, not before the start, not found by an
#: earlier listing this run —, the stream state after them)
Step = tuple[Listing, FeedPage, list[Item], State]


class FanOut:
    """Reads `listings` one after the other from a stream state; `read` yields a `Step` per page.

    `stop()` is asked before every request (a per-run budget of billed reads): when it says
    stop, `stopped` is set and the read ends; the entries say where the next run continues.
    Afterwards `missing` names the listings that do not exist.
    """

    def __init__(
        self,
        listings: Sequence[Listing],
        *,
        group: str = "listings",
        start: datetime | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.listings, self.group, self.start, self.stop = listings, group, start, stop
        self.missing: list[str] = []
        self.stopped = False

    def read(self, state: State | None) -> Iterator[Step]:
        state = dict(state or {})
        entries: dict[str, State] = dict(state.get(self.group) or {})
        delivered: set[str] = set()
        for listing in self.listings:
            for page, items, entry in self._listing(listing, entries.get(listing.key) or {}):
                entries[listing.key] = entry
                fresh = []
                for item in items:
                    post = listing.post_id(item)
                    if post not in delivered:
                        delivered.add(post)
                        fresh.append(item)
                yield listing, page, fresh, {**state, self.group: dict(entries)}
            if self.stopped:
                return

    def _listing(self, listing: Listing, entry: State) -> Iterator[tuple[FeedPage, list[Item], State]]:
        mark = entry.get("mark")
        if listing.forward and mark is not None and "older" not in entry:
            yield from self._forward(listing, mark)
            return
        # A walk down: resumed at its saved cursor, or from the newest page.
        head = entry.get("head", mark)
        params = listing.older_params(entry["older"], mark) if "older" in entry else listing.newest_params(mark)
        while (page := self._fetch(listing, params)) is not None:
            head = listing.advance(head, page.items)
            keep = [i for i in page.items if not self._behind(listing, i, mark)]
            if len(keep) < len(page.items) or not page.items or page.older is None:
                yield page, keep, ({"mark": head} if head is not None else {})
                return
            yield page, keep, {**({"mark": mark} if mark is not None else {}), "head": head, "older": page.older}
            params = listing.older_params(page.older, mark)

    def _forward(self, listing: Listing, mark: Any) -> Iterator[tuple[FeedPage, list[Item], State]]:
        while (page := self._fetch(listing, listing.newer_params(mark))) is not None:
            keep = [i for i in page.items if not listing.seen(i, mark)]
            mark = listing.advance(mark, page.items)
            yield page, keep, {"mark": mark}
            if not page.items or not page.newer:
                return

    def _fetch(self, listing: Listing, params: Params) -> FeedPage | None:
        if self.stop():
            self.stopped = True
            return None
        page = listing.fetch(params)
        if page.missing:
            self.missing.append(listing.key)
            return None
        page.listing = listing
        return page

    def _behind(self, listing: Listing, item: Item, mark: Any) -> bool:
        if listing.seen(item, mark):
            return True
        if self.start is None:
            return False
        stamp = listing.item_time(item)
        return stamp is not None and stamp < self.start


class FanOutStream(RestStream):
    """A `RestStream` over several listings: override `listings` and `map` (or `map_page`, whose
    page is a `FeedPage` with its `listing`); one Batch per page, notices at the end."""

    #: The state key the listings' entries live under.
    group: ClassVar[str] = "listings"

    def listings(self) -> list[Listing]:
        raise NotImplementedError

    def stop(self) -> bool:
        """True to stop before the next request (a budget of billed reads is used up)."""
        return False

    def missing_notice(self, key: str) -> str:
        return f"{self.name}: {key} does not exist (yet)"

    def read(self, state: State | None) -> Iterator[Batch]:
        self.fan = FanOut(self.listings(), group=self.group, start=self.start_date(), stop=self.stop)
        for _listing, page, items, new_state in self.fan.read(state):
            yield Batch(self.map_page(items, page), new_state)  # type: ignore[arg-type]
        notices = [*(self.missing_notice(k) for k in self.fan.missing), *self.notices()]
        if notices:
            yield Batch([], notices=notices)


__all__ = ["FanOut", "FanOutStream", "FeedPage", "Listing"]
