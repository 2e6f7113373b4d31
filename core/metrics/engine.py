"""Evaluate a KPI: fresh facts, window, cells → rows, comparison, spikes/forecast, targets, notes.

`evaluate` is what `kpisync kpi` and the Python API (`kpisync.core.metrics.<kpi>`) call, so
both return the same rows. Rows carry ISO dates, durations in seconds and rates as fractions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..errors import KpisyncError, StoreError
from ..facts import refresh_facts
from ..store import Store
from .clock import local_midnight
from .periods import Window, iso, local_date, make_window, parse_instant, shifted
from .query import Context, Query, labels
from .registry import Availability, Kpi, all_kpis
from .settings import MetricsSettings
from .targets import apply_targets, missed
from .trends import add_forecast, add_spikes

When = str | date | datetime | int | float | None
#: Page cache for KPI reads and the facts refresh (KiB).
CACHE_KIB = 256 * 1024


@dataclass
class Result:
    """One KPI evaluation; `to_dict()` is the `--json` object."""

    kpi: str
    unit: str
    definition: str
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "unit": self.unit, "definition": self.definition, "params": self.params,
                "rows": self.rows, "notes": self.notes}

    @property
    def missed_targets(self) -> list[dict[str, Any]]:
        return missed(self.rows)


def get_kpi(kpi_id: str) -> Kpi:
    registry = all_kpis()
    if kpi_id not in registry:
        raise KpisyncError(f"unknown KPI {kpi_id!r} (see `kpisync kpi list`)")
    return registry[kpi_id]


def ensure_fresh(store: Store, settings: MetricsSettings) -> list[str]:
    """Refresh pending facts before reading them; a read-only store reports stale figures instead."""
    try:
        result = refresh_facts(store, settings=settings)
    except StoreError as exc:
        return [f"facts could not be refreshed ({exc}); figures may be stale"]
    if result.full and result.tickets:
        return [f"facts rebuilt for {result.tickets:,} tickets ({result.reason}) in {result.seconds:.1f}s"]
    return []


def _instant(value: When, settings: MetricsSettings, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise KpisyncError(f"{what}: expected a date")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=settings.zone)
        return int(value.timestamp())
    if isinstance(value, date):
        return local_midnight(value, settings.zone)
    return parse_instant(str(value), settings.zone, what)


@contextmanager
def query_tuning(store: Store) -> Iterator[None]:
    """Connection settings for KPI reads, restored afterwards.

    Without statistics SQLite prefers building an automatic index on the equality filters
    (excluded = 0 AND resolved_now = 1) — a full table scan per query — over the event-time
    index the bucket join is written for; turning automatic indexes off makes every KPI an index
    range scan. A bigger page cache keeps the fact indexes in memory between KPIs.
    """
    conn = store.conn
    auto = conn.execute("PRAGMA automatic_index").fetchone()[0]
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA automatic_index = OFF")
    conn.execute(f"PRAGMA cache_size = {min(cache, -CACHE_KIB)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA automatic_index = {int(auto)}")
        conn.execute(f"PRAGMA cache_size = {cache}")


def evaluate(
    store: Store,
    kpi_id: str,
    *,
    settings: MetricsSettings | None = None,
    period: str | None = None,
    by: str | None = None,
    since: When = None,
    until: When = None,
    hours: str = "calendar",
    compare: str | None = None,
    cohort: str = "event",
    spikes: bool = False,
    forecast: int | None = None,
    tickets: bool = False,
    limit: int = 50,
    now: When = None,
    refresh: bool = True,
) -> Result:
    """Compute KPI `kpi_id` over the store; see docs/kpis.md for every option."""
    with query_tuning(store):
        return _evaluate(store, kpi_id, settings=settings, period=period, by=by, since=since, until=until, hours=hours,
                         compare=compare, cohort=cohort, spikes=spikes, forecast=forecast, tickets=tickets,
                         limit=limit, now=now, refresh=refresh)


def evaluate_many(store: Store, requests: list[tuple[str, dict[str, Any]]], workers: int = 2) -> list[Result]:
    """Several KPIs at once, in order. sqlite3 runs a query outside the GIL, so a second
    connection in a second thread keeps the second core busy (dashboards, the bench suite).
    The facts must be fresh already (each request should pass refresh=False)."""
    if workers <= 1 or len(requests) < 2:
        return [evaluate(store, kpi_id, **options) for kpi_id, options in requests]
    local = threading.local()
    opened: list[Store] = []

    def run(request: tuple[str, dict[str, Any]]) -> Result:
        if not hasattr(local, "store"):
            local.store = Store(store.path)
            opened.append(local.store)
        return evaluate(local.store, request[0], **request[1])

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(run, requests))
    finally:
        for extra in opened:
            extra.close()


def _evaluate(store: Store, kpi_id: str, *, settings: MetricsSettings | None, period: str | None, by: str | None,
              since: When, until: When, hours: str, compare: str | None, cohort: str, spikes: bool,
              forecast: int | None, tickets: bool, limit: int, now: When, refresh: bool) -> Result:
    settings = settings or MetricsSettings()
    kpi = get_kpi(kpi_id)
    by = by or kpi.default_by
    _validate(kpi, by, hours, compare, cohort, spikes, forecast)
    notes = ensure_fresh(store, settings) if refresh else []
    clock_now = _instant(now, settings, "now") if now is not None else int(time.time())
    ctx = Context(store, settings, clock_now, by=by, hours=hours, cohort=cohort)
    window, window_note = _window(kpi, ctx, period, _instant(since, settings, "--since"), _instant(until, settings, "--until"))
    notes += window_note
    availability = _availability(kpi, ctx)
    notes += availability.notes
    params = {
        "period": period, "by": by, "since": iso(window.since, ctx.zone), "until": iso(window.until, ctx.zone),
        "timezone": settings.timezone, "hours": hours, "compare": compare, "cohort": cohort,
    }
    if tickets:
        if kpi.drill is None:
            raise KpisyncError(f"{kpi.id} has no ticket drill-down")
        rows = kpi.drill(Query(ctx, window), limit)
        for row in rows:
            row["at"] = iso(row.get("at"), ctx.zone)
        return Result(kpi.id, kpi.unit, kpi.definition, {**params, "tickets": True}, rows, notes)

    rows = _rows(kpi, ctx, window, availability)
    notes += _future_note(kpi, ctx, window)
    if compare:
        _compare(rows, _rows(kpi, ctx, shifted(window, compare, ctx.zone), availability), kpi)
        params["compare_since"] = iso(shifted(window, compare, ctx.zone).since, ctx.zone)
    if spikes:
        notes += add_spikes(kpi, ctx, window, rows)
    if forecast:
        notes += add_forecast(kpi, ctx, window, rows, forecast)
    for row in rows:
        row.pop("_i", None)
    apply_targets(rows, settings.targets.get(kpi.id), by, kpi.unit, kpi.id)
    return Result(kpi.id, kpi.unit, kpi.definition, params, rows, notes)


def _validate(kpi: Kpi, by: str | None, hours: str, compare: str | None, cohort: str, spikes: bool, forecast: int | None) -> None:
    if by is not None and by not in kpi.dims:
        allowed = ", ".join(kpi.dims) if kpi.dims else "no grouping"
        raise KpisyncError(f"{kpi.id} cannot be grouped by {by!r} (allowed: {allowed})")
    if hours not in ("calendar", "business"):
        raise KpisyncError("--hours must be calendar or business")
    if hours == "business" and "hours" not in kpi.params:
        raise KpisyncError(f"--hours business applies to durations, not to {kpi.id}")
    if cohort not in ("event", "created"):
        raise KpisyncError("--cohort must be event or created")
    if cohort == "created" and "cohort" not in kpi.params:
        raise KpisyncError(f"{kpi.id} is always counted at its own event time (no --cohort)")
    if compare not in (None, "previous", "year"):
        raise KpisyncError("--compare must be previous or year")
    if (spikes or forecast) and not kpi.series:
        raise KpisyncError(f"--spikes/--forecast apply to ticket_volume, social_tickets and mentions, not {kpi.id}")
    if forecast is not None and forecast < 1:
        raise KpisyncError("--forecast needs a number of periods ≥ 1")


def report_window(store: Store, settings: MetricsSettings, *, period: str | None = None, since: When = None,
                  until: When = None, now: When = None, kpi_id: str | None = None) -> tuple[Window, list[str]]:
    """The window a report covers (see `_window`), for callers that share one across KPIs."""
    clock_now = _instant(now, settings, "now") if now is not None else int(time.time())
    ctx = Context(store, settings, clock_now)
    kpi = get_kpi(kpi_id or "ticket_volume")
    return _window(kpi, ctx, period, _instant(since, settings, "--since"), _instant(until, settings, "--until"))


def _window(kpi: Kpi, ctx: Context, period: str | None, since: int | None, until: int | None) -> tuple[Window, list[str]]:
    """The window; without --since/--until it ends at the latest data when that is older than it."""
    window = make_window(ctx.zone, ctx.now, period, since, until)
    if since is not None or until is not None:
        return window, []
    latest = _latest_data(kpi, ctx)
    if latest is None or latest >= window.since:
        return window, []
    end = local_midnight(local_date(latest, ctx.zone) + timedelta(days=1), ctx.zone)
    shifted_window = make_window(ctx.zone, end, period)
    day = local_date(latest, ctx.zone).isoformat()
    return shifted_window, [f"the latest data is from {day}: the window ends there (pass --until to choose)"]


def _latest_data(kpi: Kpi, ctx: Context) -> int | None:
    if kpi.id == "mentions":
        return ctx.scalar("SELECT unixepoch(max(posted_at)) FROM social_mentions")
    return ctx.scalar("SELECT max(created) FROM ticket_facts")


def _availability(kpi: Kpi, ctx: Context) -> Availability:
    out = Availability()
    sources = ctx.sources()
    if not sources and kpi.id != "mentions":
        out.notes.append("no tickets synced yet — run `kpisync pull SOURCE` (or `kpisync demo`)")
        out.all_missing = True
    for need in kpi.needs:
        if need.scope == "any":
            if not ctx.scalar(f"SELECT EXISTS (SELECT 1 FROM {need.table} WHERE {need.where})"):
                out.notes.append(need.message)
                out.all_missing = True
            continue
        lacking = [s for s in sources if not ctx.has(s, need.table, need.where)]
        out.missing.update(lacking)
        out.notes += [need.message.format(source=s) for s in lacking]
        if sources and len(lacking) == len(sources):
            out.all_missing = True
    if ctx.business:
        for source in sources:
            if not ctx.has_schedule(source):
                out.notes.append(
                    f"no business-hours schedule for source {source}: business-hours durations unavailable "
                    "(sync schedules or set [metrics.business_hours])"
                )
    if kpi.notes is not None:
        out.notes += kpi.notes(ctx)
    return out


def _rows(kpi: Kpi, ctx: Context, window: Window, availability: Availability) -> list[dict[str, Any]]:
    cells = kpi.compute(Query(ctx, window))
    keys = {k if k is not None else "" for _, k in cells}
    if ctx.by == "source" and kpi.fill and kpi.id != "mentions":
        keys.update(ctx.sources())  # a source without the data gets a row that says n/a
    keys = sorted(keys)
    if not keys and ctx.by is None:
        keys = [""]
    names = labels(ctx, ctx.by, keys)
    rows = []
    for idx, bucket in enumerate(window.buckets):
        future = kpi.snapshot and bucket.lo > ctx.now
        bucket_rows = []
        for key in keys:
            cell = cells.get((idx, key))
            if future:  # unknown, not today's value again: every figure of the row is null
                cell = {name: None for name in kpi.empty()}
            elif cell is None:
                if not kpi.fill:
                    continue
                cell = kpi.empty()
            row = {"_i": idx, "period": bucket.label, "group": names[key], **cell}
            if bucket.partial:
                row["partial"] = True
            if ctx.by is not None:
                row["group_id"] = key
            blank = availability.all_missing or (ctx.by == "source" and key in availability.missing)
            if blank:
                row["value"] = None
            bucket_rows.append(row)
        if kpi.order == "rank":
            bucket_rows.sort(key=lambda r: r.get("rank") or 0)
        rows += bucket_rows
    return rows


def _future_note(kpi: Kpi, ctx: Context, window: Window) -> list[str]:
    """Why a point-in-time KPI has no value in buckets that start after now."""
    ahead = sum(1 for bucket in window.buckets if bucket.lo > ctx.now)
    if not kpi.snapshot or not ahead:
        return []
    when = iso(ctx.now, ctx.zone)
    what = f"{ahead} period{'s' if ahead > 1 else ''} after now ({when}) ha{'ve' if ahead > 1 else 's'}"
    return [f"{what} no {kpi.id}: it is counted at a moment in time, and the future is not known yet"]


def _compare(rows: list[dict[str, Any]], previous: list[dict[str, Any]], kpi: Kpi) -> None:
    """Absolute and relative change against the same bucket position and group of the other window."""
    old = {(r["_i"], r["group"]): r for r in previous}
    for row in rows:
        match = old.get((row["_i"], row["group"]))
        value = row.get("value")
        prior = match.get("value") if match else None
        row["previous"] = prior
        row["previous_period"] = match["period"] if match else None
        if value is None or prior is None:
            row["change"], row["change_pct"] = None, None
        else:
            row["change"] = round(value - prior, 6)
            row["change_pct"] = round((value - prior) / abs(prior), 6) if prior else None
