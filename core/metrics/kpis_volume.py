"""Counting KPIs: volume, handled, closed, backlog, overdue, social, mentions, macros, cost (§A 5-7, 14-18)."""

from __future__ import annotations

import calendar
from datetime import timedelta
from typing import Any

from ..errors import KpisyncError
from .cells import drill, ratio
from .clock import local_midnight
from .periods import local_date
from .query import ALL_DIMENSIONS, REPLIES, Base, Query, ticket_base
from .registry import Cells, Need, empty_count, kpi

CREATED = ticket_base("f.created")
RESOLUTIONS = Base("fact_events e", "e", "e.at", "e.agent_id", "e.group_id", "e.kind = 'resolve'")
MACROS = Base("fact_events e", "e", "e.at", "e.agent_id", "e.group_id", "e.kind = 'macro'")
COUNT_PARAMS = ("since", "until", "period", "by", "compare", "cohort")
SERIES_PARAMS = ("since", "until", "period", "by", "compare", "spikes", "forecast")


def _empty_volume() -> dict[str, Any]:
    return {"value": 0, "inbound": 0, "outbound": 0}


@kpi(
    "ticket_volume",
    unit="tickets",
    definition="Tickets created, inbound (customer-started) and outbound (agent-started) shown separately.",
    data="tickets",
    empty=_empty_volume,
    params=SERIES_PARAMS,
    series=True,
    drill=lambda q, limit: drill(q, CREATED, "f.created", limit=limit),
)
def ticket_volume(q: Query) -> Cells:
    return {
        (idx, key): {"value": total, "inbound": total - outbound, "outbound": outbound}
        for idx, key, total, outbound in q.select(CREATED, "count(*), sum(f.outbound)", group=True)
    }


@kpi(
    "tickets_handled",
    unit="tickets",
    definition="Distinct tickets with at least one public agent reply in the period (per agent: by that agent).",
    data="tickets, messages",
    empty=empty_count,
    params=COUNT_PARAMS,
    drill=lambda q, limit: drill(q, REPLIES[0], "1", agg="count", limit=limit),
)
def tickets_handled(q: Query) -> Cells:
    return {(idx, key): {"value": n} for idx, key, n in q.distinct_tickets(REPLIES)}


@kpi(
    "tickets_closed",
    unit="tickets",
    definition="Distinct tickets with a resolution event in the period, credited to the assignee at that event.",
    data="tickets, status history",
    empty=empty_count,
    params=COUNT_PARAMS,
    needs=(Need("ticket_status_events", "1", "no status history synced for source {source}: closed tickets unavailable"),),
    drill=lambda q, limit: drill(q, RESOLUTIONS, "1", agg="count", limit=limit),
)
def tickets_closed(q: Query) -> Cells:
    return {(idx, key): {"value": n} for idx, key, n in q.distinct_tickets((RESOLUTIONS,))}


# -- point-in-time counts: backlog and overdue ---------------------------------------------------
SPANS = Base("status_spans s", "s", "s.start_at", "s.assignee_id", "s.group_id")


def _open_at(q: Query, base: Base, start: str, end: str) -> Cells:
    """Rows with start <= T < end (end NULL = still open) at each bucket's snapshot T.

    At the first snapshot: the rows ending after it (or never) that started by then — an index
    range over recent rows, not the whole history. Later snapshots add the starts and subtract
    the ends in between (two range scans), never one scan per snapshot.
    """
    snaps = q.snapshots()
    if not snaps:
        return {}
    key, need_facts, joins = q.group_key(base)
    facts = f"JOIN ticket_facts f ON f.tid = {base.alias}.tid" if need_facts and not base.is_ticket_facts else ""
    where = base.where
    totals: dict[str, int] = {}
    for open_end in (f"{end} > ?1", f"{end} IS NULL"):
        for k, n in q.conn.execute(
            f"SELECT {key}, count(*) FROM {base.table} {facts} {joins} WHERE {where} AND {open_end} AND {start} <= ?1 "
            "GROUP BY 1",
            (snaps[0],),
        ):
            totals[k] = totals.get(k, 0) + n
    deltas: dict[tuple[int, str], int] = {}
    if len(snaps) > 1:
        q.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _kpi_s (idx INTEGER PRIMARY KEY, lo INTEGER, hi INTEGER)")
        q.conn.execute("DELETE FROM _kpi_s")
        q.conn.executemany("INSERT INTO _kpi_s VALUES (?, ?, ?)", [(i, snaps[i - 1] + 1, snaps[i] + 1) for i in range(1, len(snaps))])
        for column, sign in ((start, 1), (end, -1)):
            extra = f"AND {start} IS NOT NULL" if sign < 0 else ""
            for idx, k, n in q.conn.execute(
                f"SELECT w.idx, {key}, count(*) FROM _kpi_s w CROSS JOIN {base.table} ON {column} >= w.lo AND {column} < w.hi "
                f"{facts} {joins} WHERE {where} {extra} GROUP BY 1, 2"
            ):
                deltas[(idx, k)] = deltas.get((idx, k), 0) + sign * n
    keys = set(totals) | {k for _, k in deltas}
    cells: Cells = {}
    running = {k: totals.get(k, 0) for k in keys}
    for idx in range(len(snaps)):
        for k in keys:
            if idx:
                running[k] += deltas.get((idx, k), 0)
            if running[k]:
                cells[(idx, k)] = {"value": running[k]}
    return cells


def _open_created(q: Query, base: Base, start: str, end: str) -> Cells:
    """`--cohort created`: of the tickets created in each bucket, those open at its snapshot.

    "Open" is `start <= T < end` for the bucket's own snapshot T (its last second, or now for
    the bucket containing now), so a ticket resolved before T — even if reopened later — is not
    counted, and one reopened before T is. Deleted, spam and merged-away tickets never count.
    """
    at = q.snapshot_sql()
    where = f"f.excluded = 0 AND b.lo <= {int(q.ctx.now)} AND {start} <= {at} AND ({end} IS NULL OR {end} > {at})"
    return {(idx, k): {"value": n} for idx, k, n in q.select(base, "count(*)", where, group=True) if n}


def _cohort_drill(q: Query, base: Base, start: str, end: str, value: str, limit: int) -> list[dict[str, Any]]:
    """Drill-down of `--cohort created`: the tickets counted in any bucket, worst `value` first."""
    from .query import labels

    at = q.snapshot_sql()
    key, _, joins = q.group_key(base)
    rows = q.conn.execute(
        f"SELECT f.source, f.ticket_id, f.url, {value.format(at=at)} AS v, {start}, {key} "
        f"FROM {q.from_clause(base, True)} {joins} WHERE f.excluded = 0 AND b.lo <= {int(q.ctx.now)} "
        f"AND {start} <= {at} AND ({end} IS NULL OR {end} > {at}) ORDER BY v DESC, f.source, f.ticket_id LIMIT ?",
        (limit,),
    ).fetchall()
    names = labels(q.ctx, q.by, {r[5] for r in rows})
    return [{"source": r[0], "ticket_id": r[1], "url": r[2], "value": r[3], "at": r[4], "group": names[r[5]]} for r in rows]


def _backlog_drill(q: Query, limit: int) -> list[dict[str, Any]]:
    if q.ctx.cohort == "created":
        return _cohort_drill(q, SPANS, "s.start_at", "s.end_at", "{at} - f.created", limit)
    snaps = q.snapshots()
    if not snaps:
        return []
    at = snaps[-1]
    base = Base("status_spans s", "s", "s.start_at", "s.assignee_id", "s.group_id",
                f"s.start_at <= {at} AND (s.end_at IS NULL OR s.end_at > {at})")
    return _drill_at(q, base, f"{at} - f.created", limit)


def _drill_at(q: Query, base: Base, value: str, limit: int) -> list[dict[str, Any]]:
    """Drill-down of a point-in-time KPI: not bounded by the buckets, only by the snapshot."""
    from .query import labels

    key, _, joins = q.group_key(base)
    rows = q.conn.execute(
        f"SELECT f.source, f.ticket_id, f.url, max({value}) AS v, max({base.time}), {key} FROM {base.table} "
        f"JOIN ticket_facts f ON f.tid = {base.alias}.tid {joins} WHERE {base.where} "
        f"GROUP BY f.tid ORDER BY v DESC, f.source, f.ticket_id LIMIT ?",
        (limit,),
    ).fetchall() if not base.is_ticket_facts else q.conn.execute(
        f"SELECT f.source, f.ticket_id, f.url, {value} AS v, {base.time}, {key} FROM ticket_facts f {joins} "
        f"WHERE {base.where} ORDER BY v DESC, f.source, f.ticket_id LIMIT ?",
        (limit,),
    ).fetchall()
    names = labels(q.ctx, q.by, {r[5] for r in rows})
    return [{"source": r[0], "ticket_id": r[1], "url": r[2], "value": r[3], "at": r[4], "group": names[r[5]]} for r in rows]


@kpi(
    "backlog",
    unit="tickets",
    definition="Unresolved tickets at the end of each period (23:59:59 local for days; now for the current one), "
    "rebuilt from status history; --cohort created: of the tickets created in the period, those still unresolved "
    "at its end.",
    data="tickets, status history (else current status and last update)",
    empty=empty_count,
    better="lower",
    params=COUNT_PARAMS,
    needs=(Need("ticket_status_events", "1",
                "no status history synced for source {source}: its backlog uses current status and last update time"),),
    drill=_backlog_drill,
    snapshot=True,
)
def backlog(q: Query) -> Cells:
    if q.ctx.cohort == "created":
        return _open_created(q, SPANS, "s.start_at", "s.end_at")
    return _open_at(q, SPANS, "s.start_at", "s.end_at")


def _empty_overdue() -> dict[str, Any]:
    return {"value": 0, "first_reply_overdue": 0}


def _overdue_drill(q: Query, limit: int) -> list[dict[str, Any]]:
    if q.ctx.cohort == "created":
        return _cohort_drill(q, SPANS, "s.od_start", "s.end_at", "{at} - f.res_due", limit)
    snaps = q.snapshots()
    if not snaps:
        return []
    at = snaps[-1]
    base = Base("status_spans s", "s", "s.od_start", "s.assignee_id", "s.group_id",
                f"s.od_start <= {at} AND (s.end_at IS NULL OR s.end_at > {at})")
    return _drill_at(q, base, f"{at} - f.res_due", limit)


@kpi(
    "overdue",
    unit="tickets",
    definition="Backlog tickets past their resolution due date at the end of each period; first_reply_overdue counts "
    "unanswered tickets past their first-reply due date; --cohort created: of the tickets created in the period.",
    data="tickets with SLA due dates (or [metrics] overdue_after), status history",
    empty=_empty_overdue,
    better="lower",
    params=COUNT_PARAMS,
    needs=(Need("ticket_facts", "res_due IS NOT NULL OR frt_due IS NOT NULL",
                "no SLA due dates for source {source} (sync SLA data or set [metrics] overdue_after)"),),
    drill=_overdue_drill,
    snapshot=True,
)
def overdue(q: Query) -> Cells:
    open_at = _open_created if q.ctx.cohort == "created" else _open_at
    cells = open_at(q, SPANS, "s.od_start", "s.end_at")
    first = ticket_base("f.fr_od_start", "f.assignee_id", "f.group_id", "f.excluded = 0")
    for key, cell in open_at(q, first, "f.fr_od_start", "f.fr_od_end").items():
        cells.setdefault(key, _empty_overdue())["first_reply_overdue"] = cell["value"]
    for cell in cells.values():
        cell.setdefault("first_reply_overdue", 0)
    return cells


# -- social ----------------------------------------------------------------------------------
def _empty_social() -> dict[str, Any]:
    return {"value": 0, "total": 0, "share": None}


@kpi(
    "social_tickets",
    unit="tickets",
    definition="Tickets that came in through a social channel (Twitter/X, Facebook, Instagram, WhatsApp...), "
    "and their share of all tickets created.",
    data="tickets (channel)",
    empty=_empty_social,
    params=SERIES_PARAMS,
    series=True,
    drill=lambda q, limit: drill(q, CREATED, "f.created", "f.is_social = 1", limit=limit),
)
def social_tickets(q: Query) -> Cells:
    return {
        (idx, key): {"value": social, "total": total, "share": ratio(social, total)}
        for idx, key, social, total in q.select(CREATED, "sum(f.is_social), count(*)", group=True)
    }


def _mention_key(q: Query) -> str:
    by = q.by
    if by is None:
        return "''"
    if by == "channel":
        return "m.platform"
    if by == "tag":
        return "coalesce(m.matched_term, '')"
    if by == "source":
        return "m.source"
    raise KpisyncError("mentions can be grouped by channel (platform), tag (matched term) or source")


def _mentions_drill(q: Query, limit: int) -> list[dict[str, Any]]:
    rows = q.conn.execute(
        "SELECT m.source, m.external_id, m.url, coalesce(m.reposts, 0) + coalesce(m.likes, 0) + coalesce(m.replies, 0) AS v, "
        "unixepoch(m.posted_at), m.platform FROM _kpi_b b CROSS JOIN social_mentions m "
        "ON m.posted_at >= b.lo_iso AND m.posted_at < b.hi_iso WHERE coalesce(m.is_own_account, 0) = 0 "
        "ORDER BY v DESC, m.posted_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [{"source": r[0], "ticket_id": r[1], "url": r[2], "value": r[3], "at": r[4], "group": r[5]} for r in rows]


@kpi(
    "mentions",
    unit="mentions",
    definition="Distinct public posts mentioning the brand, by posting time, excluding the brand's own accounts.",
    data="social mentions",
    empty=empty_count,
    params=SERIES_PARAMS,
    dims=("channel", "tag", "source"),
    needs=(Need("social_mentions", "1", "no social mentions synced (add a social source such as mastodon or bluesky)", scope="any"),),
    series=True,
    drill=_mentions_drill,
)
def mentions(q: Query) -> Cells:
    key = _mention_key(q)
    return {
        (idx, k): {"value": n}
        for idx, k, n in q.conn.execute(
            f"SELECT b.idx, {key}, count(DISTINCT m.platform || '|' || m.external_id) FROM _kpi_b b "
            "CROSS JOIN social_mentions m ON m.posted_at >= b.lo_iso AND m.posted_at < b.hi_iso "
            "WHERE coalesce(m.is_own_account, 0) = 0 GROUP BY 1, 2"
        )
    }


# -- macros ----------------------------------------------------------------------------------
def _empty_macro() -> dict[str, Any]:
    return {"value": 0, "tickets": 0, "rate": None}


@kpi(
    "macro_usage",
    unit="applications",
    definition="Macro applications per macro; rate = tickets with a macro ÷ tickets with an agent reply in the period.",
    data="macro applications (Zendesk AgentMacroReference audit events)",
    empty=_empty_macro,
    params=COUNT_PARAMS,
    dims=ALL_DIMENSIONS,
    default_by="macro",
    needs=(Need("macro_applications", "1", "no macro applications synced for source {source}"),),
    drill=lambda q, limit: drill(q, MACROS, "1", agg="count", limit=limit),
)
def macro_usage(q: Query) -> Cells:
    handled_by = "" if q.by == "macro" else q.by
    handled = {(idx, k): n for idx, k, n in q.distinct_tickets(REPLIES, by=handled_by)}
    cells: Cells = {}
    for idx, k, apps, tickets in q.select(MACROS, "count(*), count(DISTINCT e.tid)", group=True):
        reference = handled.get((idx, "" if q.by == "macro" else k))
        cells[(idx, k)] = {"value": apps, "tickets": tickets, "rate": ratio(tickets, reference)}
    return cells


# -- cost per contact --------------------------------------------------------------------------
def _empty_cost() -> dict[str, Any]:
    return {"value": None, "cost": None, "contacts": 0, "currency": None}


def _daily_cost(q: Query) -> float | None:
    costs = q.settings.costs
    if costs is None:
        return None
    if costs.agent_hours_per_week is not None:
        total = q.conn.execute(
            "SELECT sum(hourly_cost) FROM users WHERE role IN ('agent', 'admin', 'light_agent') "
            "AND hourly_cost IS NOT NULL AND coalesce(active, 1) = 1"
        ).fetchone()[0]
        return None if total is None else total * costs.agent_hours_per_week / 7
    return None


def _bucket_cost(q: Query, lo: int, hi: int, per_day: float | None) -> float | None:
    """Configured cost of [lo, hi): per local day, prorated by the part of each day covered."""
    costs = q.settings.costs
    if costs is None or (costs.per_month is None and per_day is None):
        return None
    zone, total = q.ctx.zone, 0.0
    day = local_date(lo, zone)
    while True:
        start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
        if start >= hi:
            break
        covered = min(end, hi) - max(start, lo)
        if covered > 0:
            daily = per_day if per_day is not None else costs.per_month / calendar.monthrange(day.year, day.month)[1]  # type: ignore[operator]
            total += daily * covered / (end - start)
        day += timedelta(days=1)
    return round(total, 2)


def _cost_notes(ctx: Any) -> list[str]:
    costs = ctx.settings.costs
    if costs is None:
        return ["no support cost configured: set [metrics.costs] per_month or agent_hours_per_week in kpisync.toml"]
    if costs.per_month is None and costs.agent_hours_per_week is not None:
        if ctx.scalar("SELECT count(*) FROM users WHERE hourly_cost IS NOT NULL") == 0:
            return ["agent_hours_per_week is set but no agent has an hourly_cost"]
    return []


@kpi(
    "cost_per_contact",
    unit="currency",
    definition="Configured support cost of the period ÷ contacts (customer-started tickets created in the period).",
    data="tickets; [metrics.costs] in kpisync.toml (fixed monthly cost, or agent hourly costs × hours)",
    empty=_empty_cost,
    better="lower",
    params=("since", "until", "period", "compare"),
    dims=(),
    notes=_cost_notes,
)
def cost_per_contact(q: Query) -> Cells:
    contacts = {idx: n for idx, _, n in q.select(CREATED, "count(*)", "f.outbound = 0", group=True)}
    per_day = _daily_cost(q)
    currency = q.settings.costs.currency if q.settings.costs else None
    cells: Cells = {}
    for idx, bucket in enumerate(q.window.buckets):
        cost = _bucket_cost(q, bucket.lo, bucket.hi, per_day)
        n = contacts.get(idx, 0)
        cells[(idx, "")] = {"value": ratio(cost, n, 2), "cost": cost, "contacts": n, "currency": currency or None}
    return cells
