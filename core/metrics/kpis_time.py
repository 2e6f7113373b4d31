"""Duration KPIs: first response, every response, resolution, waits, handle time (§A 1-4)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .cells import drill, durations, summary_cell, value_lists
from .query import REPLIES, Base, Query, numbers, ticket_base
from .registry import HISTORY, Cells, Need, empty_duration, kpi

DURATION_PARAMS = ("since", "until", "period", "by", "compare", "hours", "cohort")
PAIRS = Base("reply_pairs p", "p", "p.reply_at", "p.agent_id", "p.group_id", "p.reply_at IS NOT NULL")
UNANSWERED_TURNS = Base("reply_pairs p", "p", "p.customer_at", None, None, "p.reply_at IS NULL")
RESOLVED = ticket_base("f.last_resolved_at", "f.res_agent", "f.res_group", "f.excluded = 0 AND f.last_resolved_at IS NOT NULL")


def _frt_bases(q: Query) -> list[tuple[Base, str]]:
    inbound = ticket_base("f.first_reply_at", "f.first_reply_agent", "f.first_reply_group",
                          "f.excluded = 0 AND f.outbound = 0 AND f.first_reply_at IS NOT NULL")
    parts = [(inbound, q.value("f.first_reply_at - f.created", "f.bh_first_reply"))]
    if q.settings.frt_outbound == "zendesk":  # agent-created: the clock stops at the 2nd public agent reply
        outbound = ticket_base("f.second_reply_at", "f.second_reply_agent", None,
                               "f.excluded = 0 AND f.outbound = 1 AND f.second_reply_at IS NOT NULL")
        parts.append((outbound, q.value("f.second_reply_at - f.created", "f.bh_second_reply")))
    return parts


def _frt_unanswered(q: Query) -> str:
    if q.settings.frt_outbound == "zendesk":
        return "(f.outbound = 0 AND f.first_reply_at IS NULL) OR (f.outbound = 1 AND f.second_reply_at IS NULL)"
    return "f.outbound = 0 AND f.first_reply_at IS NULL"


def _frt_drill(q: Query, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for base, value in _frt_bases(q):
        rows += drill(q, base, value, limit=limit)
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0)))
    return rows[:limit]


@kpi(
    "first_response_time",
    unit="seconds",
    definition="Time from ticket creation to the first public reply by a human agent (agent-created tickets excluded).",
    data="tickets, messages (author role, public flag); schedules for --hours business",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    drill=_frt_drill,
)
def first_response_time(q: Query) -> Cells:
    lists: dict[tuple[int, str], list[float]] = defaultdict(list)
    nulls: dict[tuple[int, str], int] = defaultdict(int)
    for base, value in _frt_bases(q):
        for key, (values, missing) in value_lists(q, base, value).items():
            lists[key] += values
            nulls[key] += missing
    cells: Cells = {key: summary_cell(values, nulls[key]) for key, values in lists.items()}
    unanswered = ticket_base("f.created")
    for idx, key, n in q.select(unanswered, "count(*)", _frt_unanswered(q), group=True):
        cells.setdefault((idx, key), empty_duration())["excluded"] += n
    return cells


@kpi(
    "response_time",
    unit="seconds",
    definition="Every customer turn to the next public agent reply, averaged over all pairs, credited to the replying agent.",
    data="tickets, messages (author role, public flag, automation flag)",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    drill=lambda q, limit: drill(q, PAIRS, q.value("p.seconds", "p.bh_seconds"), limit=limit),
)
def response_time(q: Query) -> Cells:
    return durations(q, PAIRS, q.value("p.seconds", "p.bh_seconds"), excluded=(UNANSWERED_TURNS, "1"))


def _resolution_value(q: Query, start: str, business: str) -> str:
    return f"CASE WHEN f.resolved_now = 1 THEN {q.value(f'{start} - f.created', business)} END"


@kpi(
    "first_resolution_time",
    unit="seconds",
    definition="Creation to the first resolution, for tickets resolved now, in the period of their last resolution.",
    data="tickets, status history",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED, _resolution_value(q, "f.first_resolved_at", "f.bh_first_res"), limit=limit),
)
def first_resolution_time(q: Query) -> Cells:
    return durations(q, RESOLVED, _resolution_value(q, "f.first_resolved_at", "f.bh_first_res"))


@kpi(
    "resolution_time",
    unit="seconds",
    definition="Creation to the last resolution (full resolution time), for tickets resolved now.",
    data="tickets, status history",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED, _resolution_value(q, "f.last_resolved_at", "f.bh_full_res"), limit=limit),
)
def resolution_time(q: Query) -> Cells:
    return durations(q, RESOLVED, _resolution_value(q, "f.last_resolved_at", "f.bh_full_res"))


def _wait_value(q: Query, column: str) -> str:
    return f"CASE WHEN f.resolved_now = 1 THEN {q.value(column, 'f.bh_' + column)} END"


@kpi(
    "requester_wait_time",
    unit="seconds",
    definition="Time a resolved ticket spent in new, open or on-hold (the requester waiting on the team).",
    data="tickets, status history",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED, _wait_value(q, "requester_wait"), limit=limit),
)
def requester_wait_time(q: Query) -> Cells:
    return durations(q, RESOLVED, _wait_value(q, "requester_wait"))


@kpi(
    "agent_wait_time",
    unit="seconds",
    definition="Time a resolved ticket spent pending (the team waiting on the requester).",
    data="tickets, status history",
    empty=empty_duration,
    better="lower",
    params=DURATION_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED, _wait_value(q, "agent_wait"), limit=limit),
)
def agent_wait_time(q: Query) -> Cells:
    return durations(q, RESOLVED, _wait_value(q, "agent_wait"))


HANDLE = Base("fact_events e", "e", "e.at", "e.agent_id", "e.group_id", "e.kind IN ('time', 'call')")


def _handle_seconds(q: Query) -> str:
    wrap = "coalesce(e.extra, 0)" if q.settings.include_wrap_up else "0"
    return f"e.seconds + CASE WHEN e.kind = 'call' THEN {wrap} ELSE 0 END"


def _empty_handle() -> dict[str, Any]:
    return {**empty_duration(), "total": 0, "coverage": None}


@kpi(
    "handle_time",
    unit="seconds",
    definition="Average handle time: logged time and call talk+hold(+wrap-up) per ticket that has any, by entry time; coverage = share of worked tickets with time data.",
    data="time entries and/or calls",
    empty=_empty_handle,
    better="lower",
    params=("since", "until", "period", "by", "compare", "cohort"),
    needs=(Need("(SELECT source FROM time_entries UNION ALL SELECT source FROM calls)", "1",
                "no time entries or calls synced for source {source}: handle time unavailable"),),
    drill=lambda q, limit: drill(q, HANDLE, _handle_seconds(q), agg="sum", limit=limit),
)
def handle_time(q: Query) -> Cells:
    per_ticket = q.select_sql(HANDLE, f"e.tid AS tid, sum({_handle_seconds(q)}) AS s") + " GROUP BY 1, 2, 3"
    worked = {(idx, key): n for idx, key, n in q.distinct_tickets((HANDLE, *REPLIES))}
    cells: Cells = {}
    for idx, key, text, total in q.conn.execute(f"SELECT idx, g, group_concat(s), sum(s) FROM ({per_ticket}) GROUP BY 1, 2"):
        tickets = numbers(text)
        cell = summary_cell(tickets)
        cell["total"] = total
        cell["coverage"] = round(len(tickets) / max(worked.get((idx, key), 0), len(tickets)), 6)
        cells[(idx, key)] = cell
    return cells
