"""`SnapshotStream`: a full listing diffed by fingerprint, against a tiny shop API on 127.0.0.1.

The simulator lists items by ascending id, 3 a page (`GET /items?page=&per_page=`), serves an
item's notes (`GET /items/{id}/notes`) and the item itself (`GET /items/{id}`); a deleted item
is no longer listed and answers 404 on both. The expected counts below are worked out by hand
from that: 3 items a page, one notes call per new or changed item, one GET per vanished item.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kpisync.connectors.helprace.records import Tombstone
from kpisync.core.connector import ConnectorConfig
from kpisync.core.httpclient import Runtime
from kpisync.core.models import Message, Record, Ticket
from kpisync.core.sdk import Change, Gone, PageNumber, RestConnector, Snapshot, SnapshotStream, fingerprint
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.simserver import Request, Response, SimClock, SimServer

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
Items = dict[int, dict[str, Any]]


def shop(count: int) -> tuple[Items, dict[int, list[dict[str, Any]]]]:
    """`count` items (ids 1..count), item n with n % 3 + 1 notes."""
    items = {n: {"id": n, "status": "open", "total": 10 * n} for n in range(1, count + 1)}
    notes = {n: [{"id": f"{n}-{k}", "at": (T0 + timedelta(minutes=k)).isoformat()} for k in range(n % 3 + 1)] for n in items}
    return items, notes


class ShopSim(SimServer):
    def __init__(self, items: Items, notes: dict[int, list[dict[str, Any]]]) -> None:
        super().__init__(SimClock(T0, scale=0))
        self.items, self.notes = items, notes
        #: Called after each request is answered (count of requests so far): faults mid-scan.
        self.after: Callable[[Request, int], None] = lambda request, n: None
        #: Items deleted the moment their notes are asked for (gone between listing and detail).
        self.gone_on_notes: set[int] = set()
        self.route("GET", r"/items/?", self._list)
        self.route("GET", r"/items/(?P<id>\d+)/notes", self._notes)
        self.route("GET", r"/items/(?P<id>\d+)", self._item)

    def handle(self, request: Request) -> Response:
        response = self.route_request(request)
        self.after(request, self.request_count() + 1)
        return response

    def _list(self, request: Request) -> Response:
        page, size = int(request.arg("page") or 1), int(request.arg("per_page") or 3)
        rows = [self.items[n] for n in sorted(self.items)]
        return Response(json={"items": rows[(page - 1) * size : page * size]})

    def _notes(self, request: Request) -> Response:
        n = int(request.params["id"])
        if n in self.gone_on_notes:
            self.items.pop(n, None)
        return Response(json={"notes": self.notes[n]}) if n in self.items else Response(404, json={"error": "gone"})

    def _item(self, request: Request) -> Response:
        n = int(request.params["id"])
        return Response(json={"item": self.items[n]}) if n in self.items else Response(404, json={"error": "gone"})


class ShopItems(SnapshotStream):
    name = "tickets"
    path = "/items"
    records_path = "items"
    item_path = "item"
    paginator = PageNumber(size_param="per_page", size=3)

    def min_batch(self) -> int:
        return 3

    def children(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.http.get(f"/items/{item['id']}/notes", tolerate=(404,))
        if response.status == 404:
            raise Gone(item["id"])
        return list(response.data["notes"])

    def map_change(self, change: Change) -> list[Record]:
        ticket = Ticket(external_id=change.id, created_at=T0, status=change.item["status"], raw=change.item)
        notes = [Message(external_id=n["id"], ticket_id=change.id, created_at=n["at"], author_role="agent", is_public=True)
                 for n in change.children]  # fmt: skip
        return [ticket, *notes]

    def tombstone(self, item_id: str) -> list[Record]:
        return [Tombstone.of("tickets", item_id, T0, "404")]


class ShopConnector(RestConnector):
    name, title, config_model, check_path = "shop", "Shop", ConnectorConfig, "/items"
    stream_classes = [ShopItems]


def pull(sim: ShopSim, store: Store, runtime: Runtime | None = None) -> RunResult:
    connector = ShopConnector(ConnectorConfig(base_url=sim.url), runtime or Runtime(time_scale=1000))
    return sync_source(store, "shop", connector)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = {"tickets": "external_id, status, is_deleted, raw", "messages": "external_id, ticket_id", "tombstones": "external_id"}
    return {t: [tuple(r) for r in store.query(f"SELECT {cols} FROM {t} ORDER BY external_id")] for t, cols in tables.items()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "s.db") as s:
        yield s


def test_first_scan_reads_all_then_only_changes_and_vanished_items_are_confirmed_once(store: Store) -> None:
    items, notes = shop(7)  # 7 items, 3 pages; 1+2+3 notes cycle: 2,3,1,2,3,1,2 = 14 notes
    with ShopSim(items, notes) as sim:
        first = pull(sim, store)
        assert first.status == "success", first.error
        assert first.requests == 3 + 7  # 3 list pages + one notes call per item
        assert (store.count("tickets"), store.count("messages")) == (7, 14)
        assert store.get_state("shop", "tickets") == {"v": 1, "items": {str(n): fingerprint(items[n]) for n in items}}
        # sha1 of the canonical JSON {"id":1,"status":"open","total":10}, first 12 hex digits
        assert fingerprint(items[1]) == "22a9a976a254"

        quiet = pull(sim, store)
        assert (quiet.requests, quiet.rows_written, quiet.notices) == (3, 0, [])

        items[2]["status"] = "solved"  # changed: its notes are read again (one more)
        notes[2].append({"id": "2-9", "at": T0.isoformat()})
        del items[5]  # vanished: one GET /items/5 answers 404
        items[8] = {"id": 8, "status": "open", "total": 80}  # new, with 3 notes
        notes[8] = [{"id": f"8-{k}", "at": T0.isoformat()} for k in range(3)]
        sim.clear_log()
        third = pull(sim, store)
        assert third.status == "success", third.error
        assert sim.request_count(r"^/items/?$") == 3 and sim.request_count(r"/notes$") == 2
        assert sim.request_count(r"^/items/5$", status=404) == 1 and third.requests == 6
        assert third.notices == ["1 tickets no longer listed (404) were marked deleted"]
        deleted = store.query("SELECT external_id, status_category FROM tickets WHERE is_deleted = 1")
        assert [tuple(r) for r in deleted] == [("5", "deleted")]
        assert store.query("SELECT status FROM tickets WHERE external_id = '2'")[0][0] == "solved"
        assert (store.count("tickets"), store.count("messages")) == (8, 14 + 1 + 3)
        assert "5" not in store.get_state("shop", "tickets")["items"]

        sim.clear_log()
        fourth = pull(sim, store)  # the tombstoned item is not asked about again
        assert (fourth.requests, fourth.rows_written) == (3, 0) and sim.request_count(r"^/items/\d+$") == 0


def test_an_item_that_moves_between_pages_is_confirmed_alive_and_not_tombstoned(store: Store) -> None:
    items, notes = shop(7)
    with ShopSim(items, notes) as sim:
        assert pull(sim, store).status == "success"

        def delete_2_after_page_1(request: Request, _: int) -> None:
            if request.path.rstrip("/") == "/items" and request.arg("page") == "1":
                items.pop(2, None)  # item 4 slides onto page 1, already read: this scan never lists it

        sim.after = delete_2_after_page_1
        sim.clear_log()
        moved = pull(sim, store)
        assert moved.status == "success", moved.error
        assert sim.request_count(r"^/items/4$", status=200) == 1  # asked, alive
        assert sim.request_count(r"/notes$") == 0  # and unchanged: its notes are not read
        assert store.query("SELECT count(*) FROM tickets WHERE is_deleted = 1")[0][0] == 0  # 2 was listed on page 1
        assert set(store.get_state("shop", "tickets")["items"]) == {"1", "2", "3", "4", "5", "6", "7"}

        sim.after = lambda request, n: None
        assert pull(sim, store).notices == ["1 tickets no longer listed (404) were marked deleted"]  # the next scan misses 2
        assert [r[0] for r in store.query("SELECT external_id FROM tickets WHERE is_deleted = 1")] == ["2"]


def test_an_item_gone_before_its_children_are_read_is_confirmed_then_tombstoned_or_dropped(store: Store) -> None:
    items, notes = shop(4)
    with ShopSim(items, notes) as sim:
        assert pull(sim, store).status == "success"
        items[3]["status"] = "solved"  # changed, so its notes are read — and it is deleted just then
        items[5] = {"id": 5, "status": "new", "total": 1}  # new, and deleted just as its notes are read
        notes[5] = []
        sim.gone_on_notes = {3, 5}
        sim.clear_log()
        run = pull(sim, store)
        assert run.status == "success", run.error
        assert run.notices == ["1 tickets no longer listed (404) were marked deleted"]
        assert [r[0] for r in store.query("SELECT external_id FROM tickets WHERE is_deleted = 1")] == ["3"]
        assert store.query("SELECT status FROM tickets WHERE external_id = '3'")[0][0] == "open"  # never half-written
        assert "5" not in {r[0] for r in store.query("SELECT external_id FROM tickets")}  # never seen alive: nothing
        assert set(store.get_state("shop", "tickets")["items"]) == {"1", "2", "4"}
        # 2 list pages, notes of 3 and 5 (both 404), GET 3 (404) and GET 4 (200: when 3 went, 4 slid
        # onto page 1, already read); 5 was never known, so it is not asked about
        assert run.requests == 2 + 2 + 2 and sim.request_count(r"^/items/4$", status=200) == 1
        assert sim.request_count(r"^/items/5$") == 0


def scenario(items: Items, notes: dict[int, list[dict[str, Any]]]) -> None:
    """The second sync's world: two changes, a new item, two deletions (one item moves pages)."""
    items[2]["status"] = "pending"
    items[9]["total"] = 91
    notes[9].append({"id": "9-9", "at": T0.isoformat()})
    items[12] = {"id": 12, "status": "new", "total": 120}
    notes[12] = [{"id": "12-0", "at": T0.isoformat()}]
    del items[1], items[6]


def test_a_kill_after_any_request_then_a_rerun_converges_to_the_uninterrupted_store(tmp_path: Path) -> None:
    base_items, base_notes = shop(10)
    with Store(tmp_path / "clean.db") as clean, ShopSim(*copy.deepcopy((base_items, base_notes))) as sim:
        assert pull(sim, clean).status == "success"
        scenario(sim.items, sim.notes)
        sim.clear_log()
        assert pull(sim, clean).status == "success"
        second_requests = sim.request_count()  # 4 pages + 3 notes (2, 9, 12) + 2 confirmations = 9
        assert second_requests == 9
        want = dump(clean)
        assert len(want["tombstones"]) == 2

    interrupted = 0
    for kill_after in range(1, second_requests + 1):
        with Store(tmp_path / f"killed{kill_after}.db") as store, ShopSim(*copy.deepcopy((base_items, base_notes))) as sim:
            assert pull(sim, store).status == "success"
            scenario(sim.items, sim.notes)
            runtime = Runtime(time_scale=1000)
            sim.after = lambda request, n, at=sim.request_count() + kill_after: runtime.stop.set() if n >= at else None
            killed = pull(sim, store, runtime)
            assert killed.status in ("interrupted", "success"), killed.error
            interrupted += killed.status == "interrupted"
            sim.after = lambda request, n: None
            rerun = pull(sim, store)
            assert rerun.status == "success", rerun.error
            assert dump(store) == want, f"killed after request {kill_after}"
    assert interrupted >= second_requests - 1  # (a stop after the last request may find the run done)


def test_the_snapshot_state_on_its_own_orders_vanished_ids_and_drops_another_version() -> None:
    snap = Snapshot.load({"v": 1, "items": {"10": "a", "9": "b", "x": "c", "2": "d"}})
    assert snap.first_listing("9") and not snap.first_listing("9")  # listed twice: taken once
    assert snap.changed("9", "b") is False and snap.changed("2", "z") is True
    assert snap.vanished() == ["2", "10", "x"]  # numeric ids in numeric order, others after
    snap.forget("x")
    assert snap.state() == {"v": 1, "items": {"10": "a", "9": "b", "2": "d"}}
    assert Snapshot.load({"v": 2, "items": {"1": "a"}}).known == {}  # a new format reads everything again
