"""Full-scan snapshots: sync an API that cannot say what changed.

Some APIs (Helprace, many small help desks, some shops) have no `updated_since` filter and no
sort by update time, so every sync has to list everything. A snapshot keeps a short
fingerprint of each item from the last scan in the stream state and turns the next scan into a
diff:

- an item whose fingerprint is unchanged costs nothing beyond its share of the listing;
- a new or changed item is mapped together with its children (replies, line items), fetched
  only now, and its new fingerprint is committed in the same batch as those records;
- an item the last scan listed and this one did not is reported as vanished: the stream asks
  the API about it (`confirm`) and writes a tombstone when it is really gone.

    class Tickets(SnapshotStream):
        name = "tickets"
        path = "/api/tickets"
        records_path = "tickets"
        paginator = PageNumber(size_param="per_page", size=100)

        def children(self, item):                        # only for new or changed tickets
            r = self.http.get(f"/api/tickets/{item['id']}/replies", tolerate=(404,))
            if r.status == 404:
                raise Gone(item["id"])                   # deleted since listed: confirm() decides
            return r.data["replies"]

        def map_change(self, change):
            return [mapping.ticket(change.item), *map(mapping.reply, change.children)]

        def tombstone(self, item_id):
            return [Tombstone.of("tickets", item_id, utcnow())]

State: `{"v": version, "<state_key>": {id: fingerprint}}`, about 25 bytes an item. A kill at
any point repeats only the items whose fingerprint was not yet committed; a rerun converges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..connector import Batch
from ..errors import MalformedPayload
from ..models import Record
from .paginate import dig
from .stream import RestStream

State = dict[str, Any]


def fingerprint(item: Any, digits: int = 12) -> str:
    """The first `digits` hex digits of the SHA-1 of `item` as canonical JSON.

    12 digits (48 bits) make a collision between two versions of one item negligible while
    keeping the state near 25 bytes an item.
    """
    text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:digits]


class Gone(Exception):
    """Raised by `SnapshotStream.children` when the item answers 404 after being listed."""


@dataclass
class Change:
    """A new or changed item: its payload, the fingerprint the last sync committed (None when
    it is new) and what `children` fetched for it."""

    id: str
    item: dict[str, Any]
    previous: str | None
    children: Any = None


@dataclass
class Snapshot:
    """The fingerprints of the last complete scan and what the current scan has listed so far.

    `SnapshotStream` drives it; a connector that is not a RestStream can too: `load(state)`,
    then per listed item `first_listing` → `changed` → (fetch, map) → `remember`, after the scan
    `vanished()` → confirm → `forget`, and `state()` into each Batch with the records it covers.
    """

    known: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    state_key: str = "items"
    version: int = 1

    @classmethod
    def load(cls, state: State | None, state_key: str = "items", version: int = 1) -> Snapshot:
        """The snapshot a stream state holds; another version's state starts afresh (a full read)."""
        state = state or {}
        known = state.get(state_key) if state.get("v") == version else None
        return cls(dict(known or {}), set(), state_key, version)

    def first_listing(self, item_id: str) -> bool:
        """True the first time this scan lists `item_id` (a page shift can list it twice)."""
        if item_id in self.listed:
            return False
        self.listed.add(item_id)
        return True

    def unlist(self, item_id: str) -> None:
        """`item_id` answered 404 after being listed: let the vanished check confirm it."""
        self.listed.discard(item_id)

    def changed(self, item_id: str, mark: str) -> bool:
        return self.known.get(item_id) != mark

    def remember(self, item_id: str, mark: str) -> None:
        self.known[item_id] = mark

    def forget(self, item_id: str) -> None:
        self.known.pop(item_id, None)

    def vanished(self) -> list[str]:
        """Ids the last scan knew and this one did not list, numeric ids in numeric order."""
        return sorted(set(self.known) - self.listed, key=_id_order)

    def state(self) -> State:
        return {"v": self.version, self.state_key: dict(self.known)}


def _id_order(item_id: str) -> tuple[int, str]:
    return (int(item_id), "") if item_id.isdigit() else (1 << 62, item_id)


class SnapshotStream(RestStream):
    """A full listing diffed against the last one; subclasses set the `RestStream` attributes
    (path, records_path, params, paginator) and override the hooks below.

    Batches: changed items are committed in batches of at least `min_batch()` items and at
    least 1/`batch_share` of the known ones, so the state (rewritten with each batch) costs
    about `batch_share` times its size per full sync at most. The last batch holds the
    vanished items' tombstones, the final state and the notices.
    """

    #: Where the state keeps the fingerprints, and its version (a new version reads everything).
    state_key: ClassVar[str] = "items"
    state_version: ClassVar[int] = 1
    #: The item's id in the listing.
    key: ClassVar[str] = "id"
    #: Where the item is in the body of `GET path/id` ("" = the body).
    item_path: ClassVar[str] = ""
    batch_share: ClassVar[int] = 20

    # -- what subclasses override -------------------------------------------------------------
    def fingerprint(self, item: dict[str, Any]) -> str:
        """What decides "changed": the payload's hash by default. Append derived values the
        mapping needs from the previous sync (a status, for synthetic history)."""
        return fingerprint(item)

    def wanted(self, item: dict[str, Any]) -> bool:
        """False skips a listed item (older than the start date, say); it is not marked listed."""
        return True

    def last_page(self, items: list[dict[str, Any]]) -> bool:
        """True stops the scan after this page (a newest-first list past the start date)."""
        return False

    def children(self, item: dict[str, Any]) -> Any:
        """Fetch what a changed item needs beyond its listing; raise `Gone` on a 404."""
        return None

    def map_change(self, change: Change) -> list[Record]:
        """Records of a new or changed item."""
        raise NotImplementedError

    def confirm(self, item_id: str) -> dict[str, Any] | None:
        """The item that the scan did not list, or None when it is gone (GET `path`/id: 404)."""
        url = f"{self.path.rstrip('/')}/{item_id}"
        response = self.http.get(url, tolerate=(404,))
        if response.status == 404:
            return None
        item = dig(response.data, self.item_path)
        if not isinstance(item, dict):
            raise MalformedPayload(f"malformed response from GET {url}: expected an object at '{self.item_path or 'the body'}'")
        return item

    def tombstone(self, item_id: str) -> list[Record]:
        """Records that mark a confirmed-gone item deleted."""
        raise NotImplementedError

    def vanished_notice(self, count: int) -> str:
        return f"{count} {self.name} no longer listed (404) were marked deleted"

    def min_batch(self) -> int:
        return 100

    # -- the scan --------------------------------------------------------------------------------
    def read(self, state: State | None) -> Iterator[Batch]:
        self.prepare()
        snap = Snapshot.load(state, self.state_key, self.state_version)
        pending: list[Record] = []
        changed = 0
        for page in self.pages(self.request_params()):
            if page.response.status >= 400:  # an optional list this plan lacks: nothing vanished
                yield Batch([], notices=[self.unavailable(page.response.status)])
                return
            for item in page.items:
                item_id = self.item_id(item)
                if self.wanted(item) and snap.first_listing(item_id):
                    changed += self._take(snap, item_id, item, pending)
            if changed and changed >= max(self.min_batch(), len(snap.known) // self.batch_share):
                yield Batch(pending, snap.state())
                pending, changed = [], 0
            if self.last_page(page.items):
                break
        gone = 0
        for item_id in snap.vanished():
            item = self.confirm(item_id)
            if item is None:
                pending.extend(self.tombstone(item_id))
                snap.forget(item_id)
                gone += 1
            else:  # it moved between pages while they were read
                snap.listed.add(item_id)
                self._take(snap, item_id, item, pending)
        notices = self.notices() + ([self.vanished_notice(gone)] if gone else [])
        yield Batch(pending, snap.state(), notices=notices)

    def item_id(self, item: Any) -> str:
        value = dig(item, self.key) if isinstance(item, dict) else None
        if value is None:
            raise MalformedPayload(f"malformed response from GET {self.path}: an item without '{self.key}'")
        return str(value)

    def _take(self, snap: Snapshot, item_id: str, item: dict[str, Any], out: list[Record]) -> int:
        """Append a new or changed item's records to `out` and remember it; 1 if it changed."""
        mark = self.fingerprint(item)
        if not snap.changed(item_id, mark):
            return 0
        try:
            children = self.children(item)
        except Gone:
            snap.unlist(item_id)
            return 0
        out.extend(self.map_change(Change(item_id, item, snap.known.get(item_id), children)))
        snap.remember(item_id, mark)
        return 1


__all__ = ["Change", "Gone", "Snapshot", "SnapshotStream", "fingerprint"]
