"""Derived per-ticket KPI facts, refreshed only for tickets that changed.

The store's triggers list every ticket whose rows changed in `changed_tickets` (core/schema
001). `refresh_facts` recomputes the facts of exactly those tickets — first agent reply,
reply pairs, resolutions and reopens, status spans for backlog, wait times, business-hours
durations, the counting rating, handle time and macro events — then deletes the processed
rows of `changed_tickets`, in one transaction: a kill leaves the old facts and the list intact.
A large refresh first moves the marks to `facts_claimed` and then commits its tickets part by
part on two cores (core/facts_parallel.py), each part with the removal of its claims: a kill
keeps what was committed and leaves the rest claimed for the next refresh. `refresh_all`
rebuilds everything in one transaction; it also runs by itself when the facts were computed with
other schedules or settings (the fingerprint in `facts_meta`).

The incremental refresh writes only what differs: each ticket's facts row keeps a fingerprint of
its rows in every child table (`digests`), so the stored rows of a table are read and diffed only
for the tickets whose fingerprint there changed, and changed rows are updated in place.

KPI queries (core/metrics) read only these tables; they never rescan messages. The rules
(roles, turns, resolutions, population) are those of docs/kpis.md.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import compress, groupby
from operator import itemgetter, ne
from typing import Any

import orjson

from .facts_parallel import CACHE_KIB, PARENT_SHARE, PartsRefresh, StreamingWorker, Write, apply, can_fork
from .lock import facts_refresh_lock
from .metrics.business_hours import Schedule
from .metrics.clock import BusinessClock
from .metrics.settings import MetricsSettings
from .store import Store

FACTS_VERSION = "2"  # 2: digests entries carry a row count, events in time order
CHUNK = 10_000  # tickets per refresh step: bounds the Python memory of a refresh
#: At least this many tickets are computed on two cores (a forked worker beside this process).
PARALLEL_MIN = 2000

RESOLVED = frozenset({"resolved", "closed"})
#: `via` values of a status change made by automation rather than by a person.
AUTOMATED_VIA = frozenset({"rule", "trigger", "automation", "bot", "system", "ai_agent"})
FIRST_REPLY_METRICS = frozenset({"first_reply", "first_reply_time", "reply_time"})
RESOLUTION_METRICS = frozenset({"resolution", "resolution_time", "total_resolution_time"})

TICKET_COLUMNS = (
    "tid", "source", "ticket_id", "created", "excluded", "outbound", "channel", "is_social",
    "priority", "group_id", "assignee_id", "organization_id", "requester_id", "resolved_now",
    "has_history", "first_reply_at", "first_reply_agent", "first_reply_group", "bh_first_reply",
    "second_reply_at", "second_reply_agent", "bh_second_reply", "agent_replies",
    "agent_replies_all", "customer_followups", "bot_public", "first_resolved_at",
    "last_resolved_at", "reopens", "res_agent", "res_group", "res_automated", "bh_first_res",
    "bh_full_res", "requester_wait", "agent_wait", "on_hold", "bh_requester_wait",
    "bh_agent_wait", "frt_due", "res_due", "fr_od_start", "fr_od_end", "url", "digests",
)
_INSERT_TICKET = f"INSERT INTO ticket_facts ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))})"
_INSERT_EVENT = "INSERT INTO fact_events (tid, kind, at, agent_id, group_id, ref, seconds, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_PAIR = "INSERT INTO reply_pairs (tid, customer_at, reply_at, agent_id, group_id, seconds, bh_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SPAN = "INSERT INTO status_spans (tid, start_at, end_at, assignee_id, group_id, od_start) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_RATING = (
    "INSERT OR REPLACE INTO rating_facts (source, rating_id, tid, kind, offered_at, responded_at, value, "
    "scale_min, scale_max, sentiment, agent_id, group_id, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TAG = "INSERT OR IGNORE INTO ticket_tags (tid, tag) VALUES (?, ?)"
_CHILD_TABLES = ("fact_events", "reply_pairs", "status_spans", "rating_facts", "ticket_tags")
_CHILD_INSERTS = (_INSERT_EVENT, _INSERT_PAIR, _INSERT_SPAN, _INSERT_RATING, _INSERT_TAG)
#: One child table's entry in ticket_facts.digests (schema 006): a hash of the ticket's rows there
#: in their canonical order (HASH_SIZE bytes), then how many there are (2 bytes, capped).
HASH_SIZE = 8
ENTRY_SIZE = HASH_SIZE + 2
_MAX_COUNT = 0xFFFF
_NO_ROWS = bytes(ENTRY_SIZE)
#: (child table, columns in insert order, key of a stored row) for the incremental diff, in
#: _CHILD_TABLES order; ticket_facts rows are compared by tid (`_ticket_changes`).
_DIFFED = (
    ("fact_events", ("tid", "kind", "at", "agent_id", "group_id", "ref", "seconds", "extra"), ("rowid",)),
    ("reply_pairs", ("tid", "customer_at", "reply_at", "agent_id", "group_id", "seconds", "bh_seconds"), ("rowid",)),
    ("status_spans", ("tid", "start_at", "end_at", "assignee_id", "group_id", "od_start"), ("rowid",)),
    ("rating_facts", ("source", "rating_id", "tid", "kind", "offered_at", "responded_at", "value", "scale_min", "scale_max",
                      "sentiment", "agent_id", "group_id", "comment"), ("rowid",)),
    ("ticket_tags", ("tid", "tag"), ("tid", "tag")),
)
#: Tables whose changed rows are rewritten in place (UPDATE of the differing columns only), with
#: the columns that identify "the same row, changed" (a turn that got its reply, a span that
#: ended). In place, the indexes on unchanged columns — above all the per-ticket `tid` indexes,
#: whose pages are scattered over the whole history — are not touched. rating_facts keeps
#: delete + INSERT OR REPLACE: its (source, rating_id) key may move between tickets.
_IDENTITY = {
    "fact_events": ("tid", "kind", "at"),
    "reply_pairs": ("tid", "customer_at"),
    "status_spans": ("tid", "start_at"),
}

@dataclass
class RefreshResult:
    tickets: int = 0
    full: bool = False
    seconds: float = 0.0
    reason: str = ""


# -- entry points ------------------------------------------------------------------------------
def refresh_facts(store: Store, source: str | None = None, settings: MetricsSettings | None = None) -> RefreshResult:
    """Recompute facts of the changed tickets (of `source`, or all), in one transaction.

    Without `settings`, the facts settings saved by the last refresh are reused (a sync does
    not read kpisync.toml's [metrics]); a different fingerprint means a full rebuild.
    """
    started = time.monotonic()
    rest: Callable[[], None] | None = None
    with _page_cache(store), facts_refresh_lock(store.path):
        with store.transaction():
            settings = settings or _saved_settings(store)
            fingerprint = _fingerprint(store, settings)
            if _meta(store, "fingerprint") != fingerprint:
                reason = _rebuild_reason(store)
                result = _rebuild(store, settings, fingerprint)
                result.reason = reason
                _set_meta(store, "built", "1")
            else:
                result, rest = _incremental(store, source, settings)
        if rest is not None:  # the claims are committed: now the parts, each in its own transaction
            rest()
    result.seconds = round(time.monotonic() - started, 3)
    return result


def refresh_all(store: Store, settings: MetricsSettings | None = None) -> RefreshResult:
    """Rebuild every fact from the canonical tables."""
    started = time.monotonic()
    with _page_cache(store), facts_refresh_lock(store.path), store.transaction():
        settings = settings or _saved_settings(store)
        result = _rebuild(store, settings, _fingerprint(store, settings))
        _set_meta(store, "built", "1")
    result.reason = "requested"
    result.seconds = round(time.monotonic() - started, 3)
    return result


def pending_tickets(store: Store) -> int:
    """Tickets whose facts wait for a refresh: marked as changed, or claimed by a refresh that did
    not finish."""
    return int(store.conn.execute(
        "SELECT count(*) FROM (SELECT source, ticket_id FROM changed_tickets UNION SELECT source, ticket_id FROM facts_claimed)"
    ).fetchone()[0])


# -- bookkeeping -------------------------------------------------------------------------------
@contextmanager
def _page_cache(store: Store) -> Iterator[None]:
    """CACHE_KIB of page cache for the refresh; the connection's own size again afterwards (a sync
    goes on with its streams, and SQLite frees the pages above the restored size)."""
    conn = store.conn
    saved = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {saved}")


def _meta(store: Store, key: str) -> str | None:
    row = store.conn.execute("SELECT value FROM facts_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(store: Store, key: str, value: str) -> None:
    store.conn.execute(
        "INSERT INTO facts_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _saved_settings(store: Store) -> MetricsSettings:
    saved = _meta(store, "settings")
    return MetricsSettings.from_facts_settings(json.loads(saved)) if saved else MetricsSettings()


def _fingerprint(store: Store, settings: MetricsSettings) -> str:
    digest = hashlib.sha256()
    digest.update(FACTS_VERSION.encode())
    digest.update(settings.facts_fingerprint().encode())
    for row in store.conn.execute(
        "SELECT source, external_id, tz, intervals, holidays, is_default FROM schedules ORDER BY source, external_id"
    ):
        digest.update(json.dumps(list(row)).encode())
    return digest.hexdigest()


def _rebuild_reason(store: Store) -> str:
    if _meta(store, "built") is None:
        return "first build"
    if _meta(store, "version") != FACTS_VERSION:
        return "this kpisync version keeps them differently"
    return "schedules or settings changed"


def _rebuild(store: Store, settings: MetricsSettings, fingerprint: str) -> RefreshResult:
    conn = store.conn
    for table in ("ticket_facts", *_CHILD_TABLES):
        conn.execute(f"DELETE FROM {table}")
    builder = _Builder(store, settings)
    total = 0
    last: tuple[str, str] = ("", "")
    while True:
        keys = conn.execute(
            "SELECT source, external_id FROM tickets WHERE (source, external_id) > (?, ?) "
            "ORDER BY source, external_id LIMIT ?",
            (*last, CHUNK),
        ).fetchall()
        if not keys:
            break
        builder.build(keys)
        total += len(keys)
        last = tuple(keys[-1])  # type: ignore[assignment]
    for (source,) in conn.execute("SELECT DISTINCT source FROM ratings WHERE ticket_id IS NULL").fetchall():
        builder.ticketless_ratings(source)
    conn.execute("DELETE FROM changed_tickets")
    conn.execute("DELETE FROM facts_claimed")
    _set_meta(store, "fingerprint", fingerprint)
    _set_meta(store, "settings", json.dumps(settings.facts_settings(), sort_keys=True))
    _set_meta(store, "version", FACTS_VERSION)
    return RefreshResult(tickets=total, full=True)


def _incremental(
    store: Store, source: str | None, settings: MetricsSettings
) -> tuple[RefreshResult, Callable[[], None] | None]:
    """Refreshes the changed tickets (and those a stopped refresh left claimed) in the caller's
    transaction; or, for many tickets on two cores, claims them and returns what to run once the
    claims are committed."""
    conn = store.conn
    where, params = ("WHERE source = ?", (source,)) if source else ("", ())
    keys = conn.execute(
        "SELECT k.source, k.ticket_id, f.tid FROM "
        f"(SELECT source, ticket_id FROM changed_tickets {where} UNION SELECT source, ticket_id FROM facts_claimed {where}) k "
        "LEFT JOIN ticket_facts f ON f.source = k.source AND f.ticket_id = k.ticket_id",
        params * 2,
    ).fetchall()
    builder = _Builder(store, settings)
    todo = builder.numbered(keys)
    for name in {source} if source else {k[0] for k in keys}:
        builder.ticketless_ratings(name)
    if len(todo) >= PARALLEL_MIN and can_fork():
        conn.execute(
            f"INSERT OR IGNORE INTO facts_claimed (source, ticket_id) SELECT source, ticket_id FROM changed_tickets {where}",
            params,
        )
        conn.execute(f"DELETE FROM changed_tickets {where}", params)
        return RefreshResult(tickets=len(todo)), PartsRefresh(builder, todo, CHUNK).run
    for i in range(0, len(todo), CHUNK):
        apply(conn, builder.changes_of(conn, todo[i : i + CHUNK], fresh=False))
    conn.execute(f"DELETE FROM changed_tickets {where}", params)
    conn.execute(f"DELETE FROM facts_claimed {where}", params)
    return RefreshResult(tickets=len(todo)), None


# -- per-chunk work ----------------------------------------------------------------------------
#: Message roles as small integers (cheap to fetch and compare): computed in SQL.
CUSTOMER, AGENT, BOT, SYSTEM, MERGE = 0, 1, 2, 3, 4
#: Message flags: public, automated, shared from another account. A walked message is exactly PUBLIC.
PUBLIC, AUTOMATED, SHARED = 1, 2, 4

#: CROSS JOIN fixes the loop order: the few changed tickets outside, an index probe into the big
#: table inside (without statistics SQLite would rather scan all of messages' index).
_JOIN = " FROM _facts_todo d CROSS JOIN {table} x ON x.source = d.source AND x.ticket_id = d.ticket_id"
_CHILD_SQL = {
    # tid, at, role, flags, author (agents only), chat session
    "messages": "SELECT d.tid, unixepoch(x.created_at), CASE WHEN x.via = 'merge' THEN 4 "
    "ELSE CASE x.author_role WHEN 'customer' THEN 0 WHEN 'agent' THEN 1 WHEN 'bot' THEN 2 ELSE 3 END END, "
    "x.is_public + 2 * coalesce(x.is_automated, 0) + 4 * coalesce(x.is_shared_external, 0), "
    "CASE WHEN x.author_role = 'agent' THEN x.author_id END, x.chat_session_id"
    + _JOIN.format(table="messages") + " ORDER BY d.tid, x.created_at, x.rowid",
    "status": "SELECT d.tid, unixepoch(x.at), x.from_category, x.to_category, x.actor_id, x.via"
    + _JOIN.format(table="ticket_status_events") + " ORDER BY d.tid, x.at, x.rowid",
    "assignment": "SELECT d.tid, unixepoch(x.at), x.field, x.value_id, x.previous_id"
    + _JOIN.format(table="ticket_assignment_events") + " ORDER BY d.tid, x.at, x.rowid",
    "ratings": "SELECT d.tid, x.external_id, x.kind, unixepoch(x.offered_at), unixepoch(x.responded_at), "
    "unixepoch(x.updated_at), x.value, x.scale_min, x.scale_max, x.sentiment, x.agent_id, x.group_id, x.comment"
    + _JOIN.format(table="ratings") + " ORDER BY d.tid",
    "entries": "SELECT d.tid, unixepoch(x.executed_at), x.agent_id, x.seconds" + _JOIN.format(table="time_entries") + " ORDER BY d.tid",
    "calls": "SELECT d.tid, unixepoch(x.started_at), x.agent_id, coalesce(x.talk_s, 0) + coalesce(x.hold_s, 0), "
    "coalesce(x.wrap_up_s, 0)" + _JOIN.format(table="calls") + " ORDER BY d.tid",
    "macros": "SELECT d.tid, unixepoch(x.applied_at), x.agent_id, coalesce(x.macro_title, x.macro_id)"
    + _JOIN.format(table="macro_applications") + " ORDER BY d.tid",
    "targets": "SELECT d.tid, x.metric, unixepoch(x.target_at)" + _JOIN.format(table="sla_targets") + " ORDER BY d.tid",
    "sla": "SELECT d.tid, x.metric, x.instance_id, x.type, unixepoch(x.at), x.target_minutes, x.business_hours"
    + _JOIN.format(table="sla_events") + " ORDER BY d.tid",
}
_TICKET_SQL = (
    "SELECT d.tid, t.source, t.external_id, unixepoch(t.created_at), unixepoch(t.updated_at), t.status_category, "
    "t.channel, t.is_social, t.priority, t.group_id, t.assignee_id, t.organization_id, t.requester_id, "
    "t.is_outbound, t.is_spam, t.is_deleted, t.is_merged, t.merged_into_id, t.schedule_id, "
    "unixepoch(t.first_response_due_at), unixepoch(t.resolution_due_at), t.tags, t.url "
    "FROM _facts_todo d CROSS JOIN tickets t ON t.source = d.source AND t.external_id = d.ticket_id"
)
_FIRST = itemgetter(0)
_EMPTY: tuple[tuple[Any, ...], ...] = ()


def _idkey(value: str) -> tuple[int, int, str]:
    """Sort key of vendor ids: numeric ids by value (they grow with time), others as text."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


class _History:
    """A field's value over time from its change events (value at t = after the last change ≤ t)."""

    __slots__ = ("times", "values", "before", "current")

    def __init__(self, changes: list[tuple[int, str | None, str | None]], current: str | None) -> None:
        self.times = [c[0] for c in changes]
        self.values = [c[1] for c in changes]
        self.before = changes[0][2] if changes else current
        self.current = current

    def at(self, t: int) -> str | None:
        times = self.times
        if not times:
            return self.current
        if t >= times[-1]:  # the common case: after the last change
            return self.values[-1]
        i = bisect.bisect_right(times, t) - 1
        return self.values[i] if i >= 0 else self.before


class _Builder:
    """Loads a chunk of tickets with all their rows, computes facts, replaces the old ones."""

    def __init__(self, store: Store, settings: MetricsSettings) -> None:
        self.store = store
        self.conn = conn = store.conn
        self.settings = settings
        self.clocks = _Clocks(store, settings)
        self.bots: dict[str, set[str]] = defaultdict(set)
        for source, user in conn.execute("SELECT source, external_id FROM users WHERE is_bot = 1 OR role IN ('bot', 'system')"):
            self.bots[source].add(user)

    def build(self, keys: Sequence[Sequence[str]]) -> None:
        """Computes and writes the facts of these tickets, of which the fact tables hold none
        (a rebuild), inside the caller's transaction. A forked worker computes a share; it reads
        the last committed state and needs not see this transaction's writes: they concern
        other tickets."""
        conn = self.conn
        todo = self.numbered((source, ticket_id, None) for source, ticket_id in keys)
        if len(todo) >= PARALLEL_MIN and can_fork():
            mine = int(len(todo) * PARENT_SHARE)
            with StreamingWorker(self, todo[mine:], fresh=True) as worker:  # the rest on the second core
                apply(conn, self.changes_of(conn, todo[:mine], fresh=True))
                for changes in worker.results():
                    apply(conn, changes)
        else:
            apply(conn, self.changes_of(conn, todo, fresh=True))

    def changes_of(self, conn: sqlite3.Connection, todo: Sequence[tuple[int, str, str]], fresh: bool) -> list[Write]:
        """The writes for these tickets, computed on `conn` (the parent's, or the worker's own)."""
        _fill_todo(conn, todo)
        with _cycle_collector_paused():
            return self.changes(conn, fresh)

    def numbered(self, keys: Iterable[tuple[str, str, int | None]]) -> list[tuple[int, str, str]]:
        """(tid, source, ticket_id) of these (source, ticket_id, tid their facts have or None)
        tickets, in tid order; a ticket without facts gets a new tid after the last."""
        next_tid = int(self.conn.execute("SELECT coalesce(max(tid), 0) FROM ticket_facts").fetchone()[0])
        todo = []
        for source, ticket_id, tid in keys:
            if tid is None:
                next_tid += 1
                tid = next_tid
            todo.append((tid, source, ticket_id))
        todo.sort()
        return todo

    def changes(self, conn: sqlite3.Connection, fresh: bool) -> list[Write]:
        """The writes that bring the facts of the tickets in `conn`'s `_facts_todo` up to date,
        in order. Reads only, so a forked worker can run it on its own connection."""
        children = {
            name: {tid: list(rows) for tid, rows in groupby(conn.execute(sql), _FIRST)} for name, sql in _CHILD_SQL.items()
        }
        out = _Output()
        messages, status, assignment, ratings, entries, calls, macros, targets, sla = (
            children[name].get for name in _CHILD_SQL
        )
        for row in conn.execute(_TICKET_SQL):
            tid = row[0]
            marks = out.marks()
            _ticket_facts(
                self, row, out, messages(tid, _EMPTY), status(tid, _EMPTY), assignment(tid, _EMPTY), ratings(tid, _EMPTY),
                entries(tid, _EMPTY), calls(tid, _EMPTY), macros(tid, _EMPTY), targets(tid, _EMPTY), sla(tid, _EMPTY),
            )
            out.seal(marks)
        if fresh:
            return [(sql, rows) for sql, rows in out.tables() if rows]
        return out.diff(conn)

    def ticketless_ratings(self, source: str) -> None:
        """Ratings not tied to a ticket (e.g. NPS surveys) count one by one."""
        self.conn.execute("DELETE FROM rating_facts WHERE source = ? AND tid IS NULL", (source,))
        rows = self.conn.execute(
            "SELECT external_id, kind, unixepoch(offered_at), unixepoch(responded_at), value, scale_min, scale_max, "
            "sentiment, agent_id, group_id, comment FROM ratings WHERE source = ? AND ticket_id IS NULL",
            (source,),
        ).fetchall()
        self.conn.executemany(
            _INSERT_RATING,
            [(source, r[0], None, r[1] or "csat", r[2] if r[2] is not None else r[3], *r[3:]) for r in rows],
        )


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Computing facts allocates millions of small tuples and lists and no reference cycles;
    Python's cycle collector would walk them again and again (~3 % of a refresh's CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fill_todo(conn: sqlite3.Connection, todo: Sequence[tuple[int, str, str]]) -> None:
    """The tickets a connection computes facts for. Keyed by tid so that the child reads, which
    loop over it, come out in (tid, time) order straight from the indexes, with no sort."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _facts_todo (tid INTEGER PRIMARY KEY, source TEXT NOT NULL, ticket_id TEXT NOT NULL)"
    )
    conn.execute("DELETE FROM _facts_todo")
    conn.executemany("INSERT INTO _facts_todo (tid, source, ticket_id) VALUES (?, ?, ?)", todo)


class _Output:
    """Rows of a chunk, written with one executemany per table."""

    def __init__(self) -> None:
        self.tickets: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.pairs: list[tuple[Any, ...]] = []
        self.spans: list[tuple[Any, ...]] = []
        self.ratings: list[tuple[Any, ...]] = []
        self.tags: list[tuple[Any, ...]] = []
        #: Where each ticket's rows start in every child table (its `marks`), in ticket order.
        self.starts: list[tuple[int, int, int, int, int]] = []

    def tables(self) -> tuple[tuple[str, list[tuple[Any, ...]]], ...]:
        return ((_INSERT_TICKET, self.tickets), *zip(_CHILD_INSERTS, self.children()))

    def children(self) -> tuple[list[tuple[Any, ...]], ...]:
        """The child tables' rows, in _CHILD_TABLES order."""
        return self.events, self.pairs, self.spans, self.ratings, self.tags

    def marks(self) -> tuple[int, int, int, int, int]:
        """Where the next ticket's rows start in each child table (in _CHILD_TABLES order)."""
        return len(self.events), len(self.pairs), len(self.spans), len(self.ratings), len(self.tags)

    def seal(self, marks: tuple[int, int, int, int, int]) -> None:
        """Completes the ticket row just computed with the fingerprints of its child rows. Its
        events are put in time order first (pairs and spans are in it already), so that what a
        ticket gets later — a reply, a reopen — comes after the rows it had: an append."""
        events = self.events
        e, p, s, r, t = marks
        if len(events) - e > 1:
            events[e:] = sorted(events[e:], key=_event_order)
        self.starts.append(marks)
        self.tickets[-1] += (
            _entry(events, e) + _entry(self.pairs, p) + _entry(self.spans, s) + _entry(self.ratings, r) + _entry(self.tags, t),
        )

    def diff(self, conn: sqlite3.Connection) -> list[Write]:
        """Against the stored facts of the tickets in `_facts_todo`: only the rows that differ.

        A typical change (one new reply) alters a few rows of a ticket. Per child table, the
        fingerprints tell which tickets kept their rows (left alone, unread) and which only got
        rows after the ones they had (those are inserted, nothing is read); only the others' stored
        rows are read and diffed. Rows equal to a stored one are left alone; a changed row replaces
        a stale row of the same ticket in place, setting only the columns that differ; the rest
        are deleted or inserted. On a large store the changed tickets' pages are scattered over
        all history, and every page a write touches is another page to log and checkpoint.
        """
        columns = TICKET_COLUMNS
        stored = conn.execute(
            f"SELECT {', '.join(columns)} FROM ticket_facts WHERE tid IN (SELECT tid FROM _facts_todo)"
        ).fetchall()
        writes = _ticket_changes(stored, self.tickets)
        todo = [tid for (tid,) in conn.execute("SELECT tid FROM _facts_todo")]
        sorted_rows = self._by_fingerprint(stored, todo)
        for insert, (table, columns, key), (dirty, rows, appended) in zip(_CHILD_INSERTS, _DIFFED, sorted_rows):
            stored = []
            if dirty:
                scope = "_facts_todo"
                if len(dirty) < len(todo):
                    scope = "_facts_dirty"
                    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _facts_dirty (tid INTEGER PRIMARY KEY)")
                    conn.execute("DELETE FROM _facts_dirty")
                    conn.executemany("INSERT INTO _facts_dirty (tid) VALUES (?)", [(tid,) for tid in dirty])
                stored = conn.execute(
                    f"SELECT {', '.join(columns)}, {', '.join(key)} FROM {table} WHERE tid IN (SELECT tid FROM {scope})"
                ).fetchall()
            stale, fresh = _row_changes(stored, rows, len(columns))
            updates: dict[tuple[int, ...], list[tuple[Any, ...]]] = defaultdict(list)
            if table in _IDENTITY and stale and fresh:
                stale, fresh = _pair_in_place(stale, fresh, [columns.index(c) for c in _IDENTITY[table]], updates)
            where = " AND ".join(f"{k} = ?" for k in key)
            if stale:
                writes.append((f"DELETE FROM {table} WHERE {where}", [stored for _, stored in stale]))
            for changed, params in updates.items():
                assignments = ", ".join(f"{columns[i]} = ?" for i in changed)
                writes.append((f"UPDATE {table} SET {assignments} WHERE {where}", params))
            if fresh or appended:
                writes.append((insert, fresh + appended))
        return writes

    def _by_fingerprint(
        self, stored: list[tuple[Any, ...]], todo: list[int]
    ) -> list[tuple[list[int], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """Per child table: the tickets whose stored rows must be read and diffed, their new rows,
        and the rows to insert without reading (tickets that only got rows after theirs).

        A ticket whose entry is unchanged keeps its rows. One whose first `count` new rows hash to
        its stored entry got rows appended; so did a ticket without facts yet (all its rows). A
        ticket without a stored entry (facts from before schema 006) or without a new facts row
        (gone from `tickets`) is read, so stale rows go.
        """
        d = TICKET_COLUMNS.index("digests")
        old = {row[0]: row[d] for row in stored}
        tables = self.children()
        out: list[tuple[list[int], list[tuple[Any, ...]], list[tuple[Any, ...]]]] = [([], [], []) for _ in tables]
        ends = [*self.starts[1:], tuple(len(rows) for rows in tables)]
        for ticket, starts, stops in zip(self.tickets, self.starts, ends):
            tid, after = ticket[0], ticket[d]
            if tid not in old:  # new: nothing stored to read
                for rows, start, stop, (_, _, appended) in zip(tables, starts, stops, out):
                    appended.extend(rows[start:stop])
                continue
            before = old[tid]
            if before == after:  # no child table changed
                continue
            known = before is not None and len(before) == len(after)
            for rows, start, stop, (dirty, diffed, appended), at in zip(tables, starts, stops, out, range(0, len(after), ENTRY_SIZE)):
                entry = before[at : at + ENTRY_SIZE] if known else None  # type: ignore[index]
                if entry == after[at : at + ENTRY_SIZE]:
                    continue
                count = int.from_bytes(entry[HASH_SIZE:], "big") if entry else -1
                if 0 <= count < stop - start and count < _MAX_COUNT and (count == 0 or _hash(rows[start : start + count]) == entry[:HASH_SIZE]):  # type: ignore[index]
                    appended.extend(rows[start + count : stop])
                else:
                    dirty.append(tid)
                    diffed.extend(rows[start:stop])
        gone = set(todo) - {ticket[0] for ticket in self.tickets}
        for dirty, _, _ in out:
            dirty.extend(gone)
        return out


def _event_order(event: tuple[Any, ...]) -> tuple[int, str]:
    return event[2] or 0, event[1]


def _hash(rows: list[tuple[Any, ...]]) -> bytes:
    return hashlib.blake2b(orjson.dumps(rows), digest_size=HASH_SIZE).digest()


def _entry(rows: list[tuple[Any, ...]], start: int) -> bytes:
    """Fingerprint of rows[start:] (one ticket's rows of one table); equal rows, equal bytes."""
    count = len(rows) - start
    if count == 0:
        return _NO_ROWS
    return _hash(rows[start:]) + min(count, _MAX_COUNT).to_bytes(2, "big")


def _ticket_changes(stored: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> list[Write]:
    """ticket_facts rows to insert, update (the differing columns) or delete (ticket gone)."""
    old = {row[0]: row for row in stored}
    fresh: list[tuple[Any, ...]] = []
    updates: dict[tuple[int, ...], list[tuple[Any, ...]]] = defaultdict(list)
    columns = range(len(TICKET_COLUMNS))
    for row in rows:
        before = old.pop(row[0], None)
        if before is None:
            fresh.append(row)
            continue
        changed = tuple(compress(columns, map(ne, before, row)))
        if changed:
            updates[changed].append((*(row[i] for i in changed), row[0]))
    writes: list[Write] = []
    if old:
        writes.append(("DELETE FROM ticket_facts WHERE tid = ?", [(tid,) for tid in old]))
    for changed, params in updates.items():
        assignments = ", ".join(f"{TICKET_COLUMNS[i]} = ?" for i in changed)
        writes.append((f"UPDATE ticket_facts SET {assignments} WHERE tid = ?", params))
    if fresh:
        writes.append((_INSERT_TICKET, fresh))
    return writes


def _row_changes(
    stored: list[tuple[Any, ...]], rows: list[tuple[Any, ...]], width: int
) -> tuple[list[tuple[tuple[Any, ...], tuple[Any, ...]]], list[tuple[Any, ...]]]:
    """The stored rows (values, key) that are not among the new `rows`, and the new rows that are
    not stored (a multiset difference: a row stored twice and computed once goes once)."""
    values = [row[:width] for row in stored]
    before, after = set(values), set(rows)
    if len(before) == len(values) and len(after) == len(rows):  # no duplicates: set work in C
        gone = before - after
        stale = [(v, row[width:]) for v, row in zip(values, stored) if v in gone] if gone else []
        return stale, [row for row in rows if row not in before]
    old: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for v, row in zip(values, stored):
        old[v].append(row[width:])
    fresh = []
    for row in rows:
        match = old.get(row)
        if match:  # unchanged
            match.pop()
        else:
            fresh.append(row)
    return [(v, k) for v, keys in old.items() for k in keys], fresh


def _pair_in_place(
    stale: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    fresh: list[tuple[Any, ...]],
    identity: list[int],
    updates: dict[tuple[int, ...], list[tuple[Any, ...]]],
) -> tuple[list[tuple[tuple[Any, ...], tuple[Any, ...]]], list[tuple[Any, ...]]]:
    """Pairs each new row with a stale row of the same identity; a pair becomes an UPDATE of the
    differing columns, grouped by column set in `updates` as (values..., key...). Returns the
    stale rows and the new rows left unpaired."""
    same = itemgetter(*identity)
    by_identity: dict[Any, list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = defaultdict(list)
    for item in stale:
        by_identity[same(item[0])].append(item)
    unpaired = []
    for row in fresh:
        candidates = by_identity.get(same(row))
        if not candidates:
            unpaired.append(row)
            continue
        values, stored = candidates.pop()
        changed = tuple(compress(range(len(row)), map(ne, values, row)))
        updates[changed].append((*(row[i] for i in changed), *stored))
    return [item for items in by_identity.values() for item in items], unpaired


class _Clocks:
    """The business clock of each ticket: [metrics] override, else its schedule, else the default."""

    def __init__(self, store: Store, settings: MetricsSettings) -> None:
        self.override = BusinessClock(settings.business_hours) if settings.business_hours else None
        self.by_id: dict[tuple[str, str], BusinessClock] = {}
        self.default: dict[str, BusinessClock] = {}
        if self.override:
            return
        per_source: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for source, ext, tz, intervals, holidays, is_default in store.conn.execute(
            "SELECT source, external_id, tz, intervals, holidays, is_default FROM schedules ORDER BY source, external_id"
        ):
            schedule = Schedule(
                tz, tuple(tuple(i) for i in json.loads(intervals)), tuple(tuple(h) for h in json.loads(holidays or "[]"))
            )
            self.by_id[(source, ext)] = BusinessClock(schedule)
            per_source[source].append((ext, bool(is_default)))
        for source, items in per_source.items():
            defaults = [ext for ext, is_default in items if is_default] or ([items[0][0]] if len(items) == 1 else [])
            if defaults:
                self.default[source] = self.by_id[(source, defaults[0])]

    def of(self, source: str, schedule_id: str | None) -> BusinessClock | None:
        if self.override:
            return self.override
        if schedule_id is not None:
            clock = self.by_id.get((source, schedule_id))
            if clock is not None:
                return clock
        return self.default.get(source)


def _no_clock(start: int | None, end: int | None) -> None:
    return None


def _ticket_facts(
    builder: _Builder,
    row: tuple[Any, ...],
    out: _Output,
    messages: Sequence[tuple[Any, ...]],
    status: Sequence[tuple[Any, ...]],
    assignment: Sequence[tuple[Any, ...]],
    ratings: Sequence[tuple[Any, ...]],
    entries: Sequence[tuple[Any, ...]],
    calls: Sequence[tuple[Any, ...]],
    macros: Sequence[tuple[Any, ...]],
    targets: Sequence[tuple[Any, ...]],
    sla: Sequence[tuple[Any, ...]],
) -> None:
    """The facts of one ticket (kpi-definitions §A), appended to `out`. Written for speed: it runs
    for every changed ticket, so it uses tuples and local variables rather than objects."""
    (tid, source, ticket_id, created, updated, category, channel, is_social, priority, group_id, assignee_id,
     organization_id, requester_id, is_outbound, is_spam, is_deleted, is_merged, merged_into, schedule_id,
     frt_due, res_due, tags, url) = row
    excluded = 1 if (is_deleted or category == "deleted") else 2 if is_spam else 3 if (is_merged or merged_into) else 0
    resolved_now = 1 if category in RESOLVED else 0
    social = 1 if is_social or channel == "social" else 0
    if excluded:
        out.tickets.append((
            tid, source, ticket_id, created, excluded, int(bool(is_outbound)), channel, social, priority, group_id,
            assignee_id, organization_id, requester_id, resolved_now, 0, None, None, None, None, None, None, None,
            0, 0, 0, 0, None, None, 0, None, None, 0, None, None, None, None, None, None, None, frt_due, res_due,
            None, None, url,
        ))
        return
    events, pairs = out.events, out.pairs
    clock = builder.clocks.of(source, schedule_id)
    bh = clock.memo() if clock else _no_clock

    # -- assignment history: who owned the ticket at any instant ------------------------------
    if assignment:
        assignee_changes = [(a[1], a[3], a[4]) for a in assignment if a[2] == "assignee"]
        group_changes = [(a[1], a[3], a[4]) for a in assignment if a[2] == "group"]
        assignee_at = _History(assignee_changes, assignee_id).at
        group_at = _History(group_changes, group_id).at
        change_times = [a[1] for a in assignment if a[1] > created]
    else:
        assignee_at = group_at = None
        change_times = []

    # -- messages: outbound, replies, turns ----------------------------------------------------
    bots = builder.bots.get(source)
    if bots:  # bots never count as agents, whatever role the connector gave their messages
        messages = [(m[0], m[1], BOT, *m[3:]) if m[2] == AGENT and m[4] in bots else m for m in messages]
    first_human = next((m for m in messages if m[2] <= AGENT), None)
    outbound = bool(is_outbound) or (first_human is not None and first_human[2] == AGENT)
    walk = [m for m in messages if m[3] == PUBLIC and m[2] <= AGENT]
    replies = [m for m in walk if m[2] == AGENT]
    bot_public = len([m for m in messages if m[3] & PUBLIC and (BOT <= m[2] <= SYSTEM or (m[2] == AGENT and m[3] & AUTOMATED))])
    all_replies = _collapse_chats(replies)
    description_is_agent = outbound and bool(walk) and walk[0][2] == AGENT
    agent_replies = _collapse_chats(replies[1:]) if description_is_agent else all_replies
    customer_msgs = len(walk) - len(replies)
    followups = max(0, customer_msgs - (1 if walk and walk[0][2] == CUSTOMER else 0))
    first_reply_at = first_agent = first_group = bh_first = None
    second_reply_at = second_agent = bh_second = None
    if replies:
        first_reply_at, first_agent = replies[0][1], replies[0][4]
        first_group = group_at(first_reply_at) if group_at else group_id
        bh_first = bh(created, first_reply_at)
        if len(replies) > 1:
            second_reply_at, second_agent = replies[1][1], replies[1][4]
            bh_second = bh(created, second_reply_at)
    turn = None if outbound else created
    for m in walk:
        at = m[1]
        if m[2] == CUSTOMER:
            if turn is None:
                turn = at
        elif turn is not None and at > turn:
            pairs.append((tid, turn, at, m[4], group_at(at) if group_at else group_id, at - turn, bh(turn, at)))
            turn = None
        else:  # an agent reply that answers no turn: still "handled" work (see REPLIES in kpis_volume)
            events.append((tid, "reply", at, m[4], group_at(at) if group_at else group_id, None, None, None))
    if turn is not None:
        pairs.append((tid, turn, None, None, None, None, None))

    # -- status history: resolutions, reopens, waits -----------------------------------------
    first_cat = (status[0][2] or "new") if status else "new"
    cur, last_t = first_cat, created
    waits: list[tuple[int, int, str]] = []
    resolutions: list[tuple[int, Any, Any]] = []
    reopens = 0
    cat_times: list[int] = []
    cat_values: list[str] = []
    for _, at, _from, to_cat, actor, via in status:
        if to_cat == "deleted":
            continue
        if at > last_t:
            if cur in ("new", "open", "hold", "pending"):
                waits.append((last_t, at, cur))
        if to_cat in RESOLVED:
            if cur not in RESOLVED:
                resolutions.append((at, actor, via))
                events.append((tid, "resolve", at, assignee_at(at) if assignee_at else assignee_id,
                               group_at(at) if group_at else group_id, via, None, None))
        elif cur in RESOLVED:
            reopens += 1
            events.append((tid, "reopen", at, assignee_at(at) if assignee_at else assignee_id,
                           group_at(at) if group_at else group_id, None, None, None))
        cur = to_cat
        if at > last_t:
            last_t = at
        cat_times.append(at)
        cat_values.append(to_cat)
    first_res = last_res = res_agent = res_group = bh_first_res = bh_full_res = None
    res_automated = 0
    if resolutions:
        first_res = resolutions[0][0]
        last_res, actor, via = resolutions[-1]
        res_agent = assignee_at(last_res) if assignee_at else assignee_id
        res_group = group_at(last_res) if group_at else group_id
        res_automated = 1 if (via in AUTOMATED_VIA or actor == "-1" or (bots is not None and actor in bots)) else 0
        bh_first_res = bh(created, first_res)
        bh_full_res = bh(created, last_res)
    req_wait = agt_wait = hold_wait = bh_req = bh_agt = None
    if resolved_now and status and cur in RESOLVED:
        req_wait = sum(b - a for a, b, c in waits if c != "pending")
        agt_wait = sum(b - a for a, b, c in waits if c == "pending")
        hold_wait = sum(b - a for a, b, c in waits if c == "hold")
        if clock:
            bh_req = sum(bh(a, b) or 0 for a, b, c in waits if c != "pending")
            bh_agt = sum(bh(a, b) or 0 for a, b, c in waits if c == "pending")

    # -- SLA due dates and overdue intervals --------------------------------------------------
    if (frt_due is None or res_due is None) and (targets or sla):
        targets = [t[1:] for t in targets]  # drop the tid
        sla = [e[1:] for e in sla]
        if frt_due is None:
            frt_due = _due(targets, sla, FIRST_REPLY_METRICS, clock, first_only=True)
        if res_due is None:
            res_due = _due(targets, sla, RESOLUTION_METRICS, clock, first_only=False)
    settings = builder.settings
    if frt_due is None and settings.first_reply_overdue_after is not None and not outbound:
        frt_due = _add(clock, settings, created, settings.first_reply_overdue_after)
    if res_due is None and settings.overdue_after is not None:
        res_due = _add(clock, settings, created, settings.overdue_after)
    fr_od_start = fr_od_end = None
    if frt_due is not None and not outbound:
        od_start = created if created > frt_due else frt_due
        ends = [t for t in (first_reply_at, first_res) if t is not None]
        od_end = min(ends) if ends else None
        if od_end is None or od_end > od_start:
            fr_od_start, fr_od_end = od_start, od_end

    # -- backlog spans: unresolved stretches with a constant assignee and group ----------------
    spans = out.spans
    if status:
        if change_times or len(cat_times) > 1 or assignee_at:
            cuts = sorted({created, *(t for t in cat_times if t > created), *change_times})
        else:
            cuts = [created]
        previous: tuple[Any, ...] | None = None
        start = created
        for t in cuts:
            i = bisect.bisect_right(cat_times, t) - 1
            state = (
                (cat_values[i] if i >= 0 else first_cat) not in RESOLVED,
                assignee_at(t) if assignee_at else assignee_id,
                group_at(t) if group_at else group_id,
            )
            if state == previous:
                continue
            if previous is not None and previous[0]:
                spans.append((tid, start, t, previous[1], previous[2], _od(start, t, res_due)))
            previous, start = state, t
        if previous is not None and previous[0]:
            spans.append((tid, start, None, previous[1], previous[2], _od(start, None, res_due)))
    elif not resolved_now:
        spans.append((tid, created, None, assignee_id, group_id, _od(created, None, res_due)))
    elif updated is not None and updated > created:  # no history: resolved at its last update, at the latest
        spans.append((tid, created, updated, assignee_id, group_id, _od(created, updated, res_due)))

    # -- ratings, handle time, macros, tags ----------------------------------------------------
    if ratings:
        _ratings(out, source, tid, ratings, [r[0] for r in resolutions], assignee_at, group_at, assignee_id, group_id)
    for _, at, agent, seconds in entries:
        events.append((tid, "time", at, agent, group_at(at) if group_at else group_id, None, seconds, None))
    for _, at, agent, talk_hold, wrap in calls:
        events.append((tid, "call", at, agent, group_at(at) if group_at else group_id, None, talk_hold, wrap))
    for _, at, agent, ref in macros:
        events.append((tid, "macro", at, agent, group_at(at) if group_at else group_id, ref, None, None))
    if tags and tags != "[]":
        out.tags.extend((tid, tag) for tag in sorted({str(tag) for tag in json.loads(tags)}))
    out.tickets.append((
        tid, source, ticket_id, created, 0, int(outbound), channel, social, priority, group_id, assignee_id,
        organization_id, requester_id, resolved_now, 1 if status else 0, first_reply_at, first_agent, first_group,
        bh_first, second_reply_at, second_agent, bh_second, agent_replies, all_replies, followups, bot_public,
        first_res, last_res, reopens, res_agent, res_group, res_automated, bh_first_res, bh_full_res, req_wait,
        agt_wait, hold_wait, bh_req, bh_agt, frt_due, res_due, fr_od_start, fr_od_end, url,
    ))


def _add(clock: BusinessClock | None, settings: MetricsSettings, start: int, seconds: int) -> int:
    """A configured target after `start`, in business or calendar time."""
    if clock is not None and settings.overdue_hours == "business":
        return clock.add(start, seconds)
    return start + seconds


def _ratings(
    out: _Output, source: str, tid: int, ratings: Sequence[tuple[Any, ...]], res_times: list[int],
    assignee_at: Any, group_at: Any, assignee_id: str | None, group_id: str | None,
) -> None:
    """Latest answer per kind wins; offered-but-unanswered counts only when nothing was answered."""
    by_kind: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in ratings:
        by_kind[r[2] or "csat"].append(r)
    for kind, items in by_kind.items():
        answered = [r for r in items if r[4] is not None]
        if answered:
            win = max(answered, key=lambda r: (r[4], r[5] or 0, _idkey(r[1])))
        else:
            win = max(items, key=lambda r: (r[3] or 0, r[5] or 0, _idkey(r[1])))
        (_, rating_id, _, offered, responded, _updated, value, smin, smax, sentiment, agent, group, comment) = win
        offers = [r[3] for r in items if r[3] is not None]
        if offers:
            offered_at = min(offers)
        else:  # clarification: the last resolution before the rating (or the last one at all)
            earlier = [t for t in res_times if responded is None or t <= responded]
            offered_at = earlier[-1] if earlier else responded
        moment = responded if responded is not None else offered_at
        if agent is None and moment is not None:
            agent = assignee_at(moment) if assignee_at else assignee_id
        if group is None and moment is not None:
            group = group_at(moment) if group_at else group_id
        out.ratings.append((source, rating_id, tid, kind, offered_at, responded, value, smin, smax, sentiment, agent, group, comment))


def _collapse_chats(replies: list[tuple[Any, ...]]) -> int:
    """Agent replies, a chat session counting once (Zendesk ticket_metrics.replies)."""
    sessions = {m[5] for m in replies if m[5] is not None}
    return sum(1 for m in replies if m[5] is None) + len(sessions)


def _od(start: int, end: int | None, due: int | None) -> int | None:
    """When a backlog span becomes overdue, if it does before it ends."""
    if due is None:
        return None
    od = max(start, due)
    return od if end is None or od < end else None


def _due(
    targets: Iterable[tuple[Any, ...]],
    sla: Iterable[tuple[Any, ...]],
    metrics: frozenset[str],
    clock: BusinessClock | None,
    first_only: bool,
) -> int | None:
    """An SLA due instant from sla_targets, else from SLA events (breach time, else apply + target)."""
    dues = [t[1] for t in targets if t[0] in metrics and t[1] is not None]
    if dues:
        return min(dues)
    events = [e for e in sla if e[0] in metrics and (not first_only or e[1] in (None, "1", "0"))]
    breaches = [e[3] for e in events if e[2] == "breach" and e[3] is not None]
    if breaches:
        return min(breaches)
    applied = sorted((e for e in events if e[2] in ("apply_sla", "apply_group_sla") and e[4] is not None), key=lambda e: e[3])
    if not applied:
        return None
    _, _, _, at, minutes, business = applied[-1]
    if business and clock is not None:
        return clock.add(at, minutes * 60)
    return int(at + minutes * 60)
