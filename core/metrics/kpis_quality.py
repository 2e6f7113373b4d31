"""Quality KPIs: SLA, CSAT, NPS, one-touch, FCR, resolution/reopen rates, replies, automation (§A 7-13)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .cells import drill, rates, ratio, summary_cell, value_lists
from .format import scale_label
from .periods import iso_utc
from .query import Base, Context, Query, sql_text, ticket_base
from .registry import HISTORY, Cells, Need, empty_duration, empty_rate, kpi
from .settings import MetricsSettings

RATE_PARAMS = ("since", "until", "period", "by", "compare", "cohort")
#: Tickets whose last resolution event is in the bucket and that are resolved now.
RESOLVED_NOW = ticket_base("f.last_resolved_at", "f.res_agent", "f.res_group", "f.excluded = 0 AND f.resolved_now = 1")
#: Same, including tickets reopened since (reopen rate must see them).
RESOLVED_EVER = ticket_base("f.last_resolved_at", "f.res_agent", "f.res_group", "f.excluded = 0 AND f.last_resolved_at IS NOT NULL")
CREATED = ticket_base("f.created")


# -- SLA -----------------------------------------------------------------------------------------
def _empty_sla() -> dict[str, Any]:
    return {"value": None, "numerator": 0, "count": 0, "excluded": 0,
            "first_reply_rate": None, "first_reply_met": 0, "first_reply_count": 0}


FIRST_REPLIES = ticket_base("f.first_reply_at", "f.first_reply_agent", "f.first_reply_group",
                            "f.excluded = 0 AND f.outbound = 0 AND f.frt_due IS NOT NULL")


@kpi(
    "sla_compliance",
    unit="fraction",
    definition="Resolved tickets resolved by their resolution due date ÷ resolved tickets that have one; "
    "first_reply_rate: first replies by their due date.",
    data="tickets with SLA due dates (Zendesk SLA events, Freshdesk due_by/fr_due_by), status history",
    empty=_empty_sla,
    better="higher",
    params=RATE_PARAMS,
    needs=(Need("ticket_facts", "res_due IS NOT NULL OR frt_due IS NOT NULL",
                "no SLA due dates synced for source {source}: SLA compliance unavailable"),),
    drill=lambda q, limit: drill(q, RESOLVED_NOW, "f.last_resolved_at - f.res_due", "f.res_due IS NOT NULL", limit=limit),
)
def sla_compliance(q: Query) -> Cells:
    cells: Cells = {}
    for idx, key, met, due, without in q.select(
        RESOLVED_NOW,
        "sum(CASE WHEN f.res_due IS NOT NULL AND f.last_resolved_at <= f.res_due THEN 1 ELSE 0 END), "
        "sum(f.res_due IS NOT NULL), sum(f.res_due IS NULL)",
        group=True,
    ):
        cells[(idx, key)] = {**_empty_sla(), "value": ratio(met, due), "numerator": met, "count": due, "excluded": without}
    for idx, key, met, total in q.select(
        FIRST_REPLIES, "sum(CASE WHEN f.first_reply_at <= f.frt_due THEN 1 ELSE 0 END), count(*)", group=True
    ):
        cell = cells.setdefault((idx, key), _empty_sla())
        cell.update(first_reply_rate=ratio(met, total), first_reply_met=met, first_reply_count=total)
    return cells


# -- CSAT and NPS ----------------------------------------------------------------------------
def rating_base(kind: str, time: str = "r.responded_at", answered: bool = True) -> Base:
    where = f"r.kind = '{kind}'" + (" AND r.responded_at IS NOT NULL" if answered else " AND r.offered_at IS NOT NULL")
    return Base("rating_facts r", "r", time, "r.agent_id", "r.group_id", where, optional_ticket=True, source="r.source")


def sentiment(settings: MetricsSettings, stored: int | None, value: float | None, low: float | None, high: float | None) -> int | None:
    """§A.8 mapping: 1-5 → 4-5 +, 3 neutral; 1-10 → ≥8 +, 6-7 neutral (configurable); else as stored."""
    if value is not None and low is not None and high is not None and high - low >= 2:
        positive = settings.csat_positive_min.get(int(high))
        if positive is not None:
            neutral = settings.csat_neutral_min.get(int(high))
            if value >= positive:
                return 1
            return 0 if neutral is not None and value >= neutral else -1
    return stored


def _empty_csat() -> dict[str, Any]:
    return {"value": None, "count": 0, "satisfied": 0, "neutral": 0, "unsatisfied": 0, "mean_score": None,
            "scale": None, "offered": 0, "response_rate": None, "comments": []}


MAX_COMMENTS = 10


def _csat_drill(q: Query, limit: int) -> list[dict[str, Any]]:
    base = Base(rating_base("csat").table, "r", "r.responded_at", "r.agent_id", "r.group_id",
                "r.kind = 'csat' AND r.responded_at IS NOT NULL AND r.tid IS NOT NULL")
    return drill(q, base, "r.sentiment", limit=limit, worst="asc")


def _has_unanswered(ctx: Context, source: str) -> bool:
    """Whether `source` has an unanswered CSAT offer. `+source` keeps SQLite off the (source,
    ticket_id) index, which walks every rating of a source that has none; the responded_at
    index finds the NULLs first."""
    return bool(ctx.scalar(
        "SELECT EXISTS (SELECT 1 FROM ratings WHERE responded_at IS NULL AND +source = ? AND kind = 'csat')", (source,)
    ))


def _csat_notes(ctx: Context) -> list[str]:
    sources = [s for s in ctx.sources() if ctx.has(s, "ratings", "kind = 'csat'")]
    quiet = [s for s in sources if not _has_unanswered(ctx, s)]
    return [f"source {s} lists only answered surveys: its response rate is not meaningful" for s in quiet]


@kpi(
    "csat",
    unit="fraction",
    definition="Satisfied ratings ÷ ratings received (latest rating per ticket, by rating time); "
    "response rate = received ÷ offered, by offer time.",
    data="satisfaction ratings",
    empty=_empty_csat,
    better="higher",
    params=("since", "until", "period", "by", "compare"),
    needs=(Need("ratings", "kind = 'csat'", "no CSAT ratings synced for source {source}"),),
    notes=_csat_notes,
    drill=_csat_drill,
)
def csat(q: Query) -> Cells:
    groups: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in q.select(
        rating_base("csat"),
        "r.sentiment, r.value, r.scale_min, r.scale_max, r.comment, r.responded_at, "
        "CASE WHEN r.comment IS NOT NULL THEN (SELECT t.source || '|' || t.ticket_id FROM ticket_facts t WHERE t.tid = r.tid) END",
    ):
        groups[(row[0], row[1])].append(row[2:])
    cells: Cells = {}
    for key, items in groups.items():
        cell = _empty_csat()
        numeric: list[float] = []
        scales = set()
        comments = []
        for stored, value, low, high, comment, at, ticket in items:
            mood = sentiment(q.settings, stored, value, low, high)
            cell["count"] += 1
            cell[{1: "satisfied", 0: "neutral", -1: "unsatisfied"}.get(mood, "neutral")] += 1
            if value is not None and low is not None and high is not None and high - low >= 2:
                numeric.append(value)
                scales.add((low, high))
            if comment:
                source, _, ticket_id = (ticket or "|").partition("|")
                comments.append({"at": at, "ticket_id": ticket_id or None, "source": source or None,
                                 "sentiment": mood, "comment": comment})
        cell["value"] = ratio(cell["satisfied"], cell["count"])
        if numeric and len(scales) == 1:
            low, high = scales.pop()
            cell["mean_score"] = round(sum(numeric) / len(numeric), 3)
            cell["scale"] = scale_label(low, high)
        comments.sort(key=lambda c: (c["sentiment"] if c["sentiment"] is not None else 0, -c["at"]))
        for comment in comments[:MAX_COMMENTS]:
            comment["at"] = iso_utc(comment["at"])
        cell["comments"] = comments[:MAX_COMMENTS]
        cell["comments_total"] = len(comments)
        cells[key] = cell
    for idx, key, offered, answered in q.select(
        rating_base("csat", "r.offered_at", answered=False), "count(*), sum(r.responded_at IS NOT NULL)", group=True
    ):
        cell = cells.setdefault((idx, key), _empty_csat())
        cell.update(offered=offered, response_rate=ratio(answered, offered))
    return cells


def _empty_nps() -> dict[str, Any]:
    return {"value": None, "count": 0, "promoters": 0, "passives": 0, "detractors": 0}


@kpi(
    "nps",
    unit="score",
    definition="Net promoter score: 100 × (promoters 9-10 − detractors 0-6) ÷ responses, by response time (−100..100).",
    data="NPS survey responses (ratings of kind nps)",
    empty=_empty_nps,
    better="higher",
    params=("since", "until", "period", "by", "compare"),
    needs=(Need("ratings", "kind = 'nps'", "no NPS responses synced for source {source}"),),
    drill=lambda q, limit: drill(q, rating_base("nps"), "r.value", "r.tid IS NOT NULL", limit=limit, worst="asc"),
)
def nps(q: Query) -> Cells:
    cells: Cells = {}
    for idx, key, n, promoters, detractors in q.select(
        rating_base("nps"), "count(*), sum(r.value >= 9), sum(r.value <= 6)", "r.value IS NOT NULL", group=True
    ):
        cells[(idx, key)] = {
            "value": round(100 * (promoters - detractors) / n, 1) if n else None,
            "count": n, "promoters": promoters, "passives": n - promoters - detractors, "detractors": detractors,
        }
    return cells


# -- resolution quality ------------------------------------------------------------------------
def _empty_one_touch() -> dict[str, Any]:
    return {**empty_rate(), "zero_reply": 0}


@kpi(
    "one_touch_resolution",
    unit="fraction",
    definition="Resolved customer-started tickets with exactly one agent reply and no reopen ÷ those with at least one "
    "agent reply; zero_reply counts resolutions without any reply.",
    data="tickets, messages, status history",
    empty=_empty_one_touch,
    better="higher",
    params=RATE_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED_NOW, "f.agent_replies + f.reopens", "f.outbound = 0", limit=limit),
)
def one_touch_resolution(q: Query) -> Cells:
    cells: Cells = {}
    for idx, key, one, replied, zero in q.select(
        RESOLVED_NOW,
        "sum(f.agent_replies = 1 AND f.reopens = 0), sum(f.agent_replies >= 1), sum(f.agent_replies = 0)",
        "f.outbound = 0",
        group=True,
    ):
        cells[(idx, key)] = {"value": ratio(one, replied), "numerator": one, "count": replied, "zero_reply": zero}
    return cells


@kpi(
    "first_contact_resolution",
    unit="fraction",
    definition="Resolved tickets with no customer message after the first one and no reopen ÷ tickets resolved.",
    data="tickets, messages, status history",
    empty=empty_rate,
    better="higher",
    params=RATE_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED_NOW, "f.customer_followups + f.reopens", limit=limit),
)
def first_contact_resolution(q: Query) -> Cells:
    return rates(q, RESOLVED_NOW, "f.customer_followups = 0 AND f.reopens = 0")


def _empty_resolution_rate() -> dict[str, Any]:
    return {**empty_rate(), "resolved_in_period": 0, "throughput": None}


@kpi(
    "resolution_rate",
    unit="fraction",
    definition="Tickets created in the period that are resolved now ÷ tickets created; throughput = tickets resolved "
    "in the period ÷ tickets created in it.",
    data="tickets, status history",
    empty=_empty_resolution_rate,
    better="higher",
    params=("since", "until", "period", "by", "compare"),
    drill=lambda q, limit: drill(q, CREATED, f"CASE WHEN f.resolved_now = 1 THEN 0 ELSE {q.ctx.now} - f.created END", limit=limit),
)
def resolution_rate(q: Query) -> Cells:
    cells: Cells = {key: {**_empty_resolution_rate(), **cell} for key, cell in rates(q, CREATED, "f.resolved_now = 1").items()}
    resolutions = Base("fact_events e", "e", "e.at", "e.agent_id", "e.group_id", "e.kind = 'resolve'")
    for idx, key, n in q.distinct_tickets((resolutions,)):
        cells.setdefault((idx, key), _empty_resolution_rate())["resolved_in_period"] = n
    for cell in cells.values():
        cell["throughput"] = ratio(cell["resolved_in_period"], cell["count"]) if cell["count"] else None
    return cells


@kpi(
    "reopen_rate",
    unit="fraction",
    definition="Tickets whose last resolution is in the period and that were ever reopened ÷ those tickets.",
    data="tickets, status history",
    empty=empty_rate,
    better="lower",
    params=RATE_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED_EVER, "f.reopens", limit=limit),
)
def reopen_rate(q: Query) -> Cells:
    return rates(q, RESOLVED_EVER, "f.reopens > 0")


@kpi(
    "replies_per_ticket",
    unit="replies",
    definition="Mean public agent replies per resolved ticket (zeros included; a chat session counts once; an agent-written "
    "description does not count).",
    data="tickets, messages, status history",
    empty=empty_duration,
    better="lower",
    params=RATE_PARAMS,
    needs=(HISTORY,),
    drill=lambda q, limit: drill(q, RESOLVED_NOW, "f.agent_replies", limit=limit),
)
def replies_per_ticket(q: Query) -> Cells:
    return {key: summary_cell(values, nulls) for key, (values, nulls) in value_lists(q, RESOLVED_NOW, "f.agent_replies").items()}


#: A source whose status history never says who or what made a change, and that shows no bot
#: reply, cannot tell an automated resolution from a human one (Freshdesk's and Helprace's APIs
#: show neither): "none" would be a guess, so its value is null with this note rather than 0 %.
#: A source that can tell but had no automation still reads 0 %.
AUTOMATION = Need(
    "(SELECT source FROM ticket_status_events WHERE via IS NOT NULL UNION ALL "
    "SELECT source FROM ticket_facts WHERE bot_public > 0)", "1",
    "source {source} shows no bot replies and its status history does not say who or what made a change: "
    "automated resolutions cannot be told apart there",
)


def _showing_automation(q: Query) -> str:
    """Only tickets of sources that can show automation count, in a total as per source: the
    others' tickets would all read "not automated". A filter, not an index: `+` keeps SQLite on
    the resolution-time index (on the (source, ticket_id) index it read every ticket per bucket:
    3.6 s instead of 0.1 s at 1M tickets)."""
    shown = [s for s in q.ctx.sources() if q.ctx.has(s, AUTOMATION.table, AUTOMATION.where)]
    return f"+f.source IN ({', '.join(sql_text(s) for s in shown)})" if shown else "0"


#: The vendor's AI-agent conversations (Zendesk AI agents data export), by conversation end.
VENDOR_BOT = Base("bot_conversations v", "v", "unixepoch(coalesce(v.ended_at, v.started_at))", None, None, "1",
                  optional_ticket=True, source="v.source")
#: Groupings the vendor figure has: its conversations carry no agent, group or ticket attributes.
VENDOR_BY = (None, "source")


def _empty_automated() -> dict[str, Any]:
    return {**empty_rate(), "vendor_automated_resolutions": None, "vendor_conversations": None, "vendor_rate": None}


def _vendor_notes(ctx: Context) -> list[str]:
    if not ctx.scalar("SELECT EXISTS (SELECT 1 FROM bot_conversations)"):
        return ["vendor figures unavailable: no Zendesk AI agents conversations synced (set the ai_agents_* "
                "settings of the Zendesk source; connectors/zendesk/README.md) — the value never includes them"]
    if ctx.by not in VENDOR_BY:
        return [f"vendor figures are given without --by or with --by source only, not by {ctx.by}"]
    return ["vendor_automated_resolutions / vendor_conversations: the AI agents' own LLM-verified automated "
            "resolutions (Zendesk) among their conversations, by conversation end; beside the value, never in it"]


@kpi(
    "automated_resolution_rate",
    unit="fraction",
    definition="Resolved tickets with no agent reply ever and a bot/system public message or a resolution by a rule or "
    "bot ÷ tickets resolved. Beside it, never mixed in: the vendor's LLM-verified automated resolutions of its AI "
    "agents ÷ their conversations (vendor_*).",
    data="tickets, messages, status history (who resolved); Zendesk AI agents conversations for vendor_*",
    empty=_empty_automated,
    better="higher",
    params=RATE_PARAMS,
    needs=(HISTORY, AUTOMATION),
    notes=_vendor_notes,
    drill=lambda q, limit: drill(
        q, RESOLVED_NOW, "f.bot_public + f.res_automated", "f.agent_replies_all = 0", limit=limit
    ),
)
def automated_resolution_rate(q: Query) -> Cells:
    own = rates(q, RESOLVED_NOW, "f.agent_replies_all = 0 AND (f.bot_public > 0 OR f.res_automated = 1)",
                _showing_automation(q))
    cells: Cells = {key: {**_empty_automated(), **cell} for key, cell in own.items()}
    if q.ctx.by not in VENDOR_BY or not q.ctx.scalar("SELECT EXISTS (SELECT 1 FROM bot_conversations)"):
        return cells
    # Synced: every bucket of every source with conversations counts from 0, like any count.
    keys = [""] if q.ctx.by is None else [r[0] for r in q.conn.execute("SELECT DISTINCT source FROM bot_conversations")]
    for idx in range(len(q.window.buckets)):
        for key in keys:
            cells.setdefault((idx, key), _empty_automated()).update(
                vendor_automated_resolutions=0, vendor_conversations=0)  # fmt: skip
    for idx, key, total, automated in q.select(VENDOR_BOT, "count(*), sum(v.automated_resolution = 1)", group=True):
        cells[(idx, key)].update(vendor_automated_resolutions=automated, vendor_conversations=total,
                                 vendor_rate=ratio(automated, total))  # fmt: skip
    return cells
