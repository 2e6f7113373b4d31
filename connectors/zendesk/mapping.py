"""Zendesk JSON → canonical records. Pure functions, no I/O.

Shapes follow the Zendesk Support API reference: Tickets and the incremental ticket export,
Incremental Ticket Event Export with `include=comment_events`, Users, Organizations, Groups,
Business Hours Schedules, SLA Policies, Satisfaction Ratings and Ticket Metric Events; the Talk
API's Incremental Calls Export; the Time Tracking app's ticket fields (in ticket events).
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from typing import Any, NamedTuple

from kpisync.core.models import (
    Call,
    Group,
    MacroApplication,
    Message,
    Organization,
    Rating,
    Record,
    Schedule,
    SlaEvent,
    SlaPolicy,
    Ticket,
    TicketAssignmentEvent,
    TicketStatusEvent,
    TimeEntry,
    User,
)
from kpisync.core.timezones import iana_zone

STATUS_CATEGORY = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "hold": "hold",
    "solved": "resolved",
    "closed": "closed",
    "deleted": "deleted",
}

# via.channel → normalised channel (Via types reference). Social channels keep their name in
# raw_channel and are flagged is_social. Rule (docs/kpis.md, social_tickets): social networks and
# messaging apps (WhatsApp, Instagram DM, LINE, WeChat, Telegram) are social — Freshdesk's default
# social sources follow the same rule; web/mobile messaging widgets are chat, SMS is sms.
CHANNELS = {
    "email": "email",
    "web": "web",
    "web_form": "web",
    "web_widget": "web",
    "help_center": "web",
    "mobile": "web",
    "mobile_sdk": "web",
    "api": "api",
    "chat": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "voice": "phone",
    "phone": "phone",
    "sms": "sms",
    "rule": "system",
    "closed_ticket": "web",
}
SOCIAL_CHANNELS = frozenset(
    {"twitter", "facebook", "instagram", "instagram_dm", "whatsapp", "line", "wechat", "telegram", "any_channel"}
)
SYSTEM_VIA = ("rule", "merge", "automation", "trigger", "system", "ai_agent", "side_conversation")
BODY_KEYS = ("body", "html_body", "plain_body")
SYSTEM_USER_ID = "-1"


def channel_of(via: dict[str, Any] | str | None) -> tuple[str, str | None, bool]:
    """(normalised channel, vendor channel, is_social) of a ticket's `via`."""
    raw = via.get("channel") if isinstance(via, dict) else via
    raw = str(raw) if raw is not None else None
    if raw in SOCIAL_CHANNELS:
        return "social", raw, True
    return CHANNELS.get(raw or "", "other"), raw, False


def ticket(data: dict[str, Any], agent_ids: Set[str], metric_set: dict[str, Any] | None, agent_url: str) -> Ticket:
    channel, raw_channel, social = channel_of(data.get("via"))
    tags = [str(t) for t in data.get("tags") or []]
    status = str(data.get("status") or "unknown")
    requester, submitter = _id(data.get("requester_id")), _id(data.get("submitter_id"))
    return Ticket(
        external_id=data["id"],
        subject=data.get("subject") or data.get("raw_subject"),
        channel=channel,
        raw_channel=raw_channel,
        is_social=social,
        created_at=data["created_at"],
        updated_at=data.get("updated_at"),
        status=status,
        status_category=STATUS_CATEGORY.get(status, "unknown"),
        requester_id=requester,
        submitter_id=submitter,
        organization_id=data.get("organization_id"),
        assignee_id=data.get("assignee_id"),
        group_id=data.get("group_id"),
        brand_id=data.get("brand_id"),
        priority=data.get("priority"),
        type=data.get("type"),
        is_outbound=submitter is not None and submitter != requester and submitter in agent_ids,
        is_spam="spam" in tags,
        is_deleted=status == "deleted",
        is_merged="closed_by_merge" in tags,
        tags=tags,
        custom={"custom_status_id": data.get("custom_status_id"), "fields": data.get("custom_fields") or data.get("fields")},
        vendor_metrics=metric_set,
        url=f"{agent_url}/agent/tickets/{data['id']}",
        raw=data,
    )


def user(data: dict[str, Any]) -> User:
    role = {"end-user": "customer", "agent": "agent", "admin": "admin"}.get(str(data.get("role")), "customer")
    if role == "agent" and data.get("role_type") == 1:
        role = "light_agent"
    return User(
        external_id=data["id"],
        name=data.get("name"),
        email=data.get("email"),
        # Users API: `phone` is the primary number; one flagged `shared_phone_number` (an office
        # line) would tie strangers' orders to this user, so it is not a match key.
        phone=None if data.get("shared_phone_number") else data.get("phone") or None,
        role=role,
        organization_id=data.get("organization_id"),
        segment=data.get("user_fields") or None,
        time_zone=data.get("iana_time_zone") or iana_zone(data.get("time_zone")),
        active=bool(data.get("active", True)),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        raw=data,
    )


def organization(data: dict[str, Any]) -> Organization:
    fields = data.get("organization_fields") or {}
    return Organization(
        external_id=data["id"],
        name=data.get("name"),
        tier=fields.get("tier") or _tier_tag(data.get("tags") or []),
        attributes=fields or None,
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        raw=data,
    )


def _tier_tag(tags: list[str]) -> str | None:
    for tag in tags:
        if str(tag).startswith("tier_"):
            return str(tag)[5:]
    return None


def group(data: dict[str, Any]) -> Group:
    return Group(
        external_id=data["id"], name=data.get("name"), created_at=data.get("created_at"),
        updated_at=data.get("updated_at"), raw=data,
    )


def schedule(data: dict[str, Any], holidays: list[dict[str, Any]], is_default: bool) -> Schedule:
    """Intervals are minutes from Sunday 00:00 local (Schedules API); we use Monday = 0."""
    intervals = []
    for interval in data.get("intervals") or []:
        start, end = int(interval["start_time"]), int(interval["end_time"])
        day = start // 1440
        intervals.append(((day - 1) % 7, start - day * 1440, end - day * 1440))
    return Schedule(
        external_id=data["id"],
        name=data.get("name"),
        tz=iana_zone(data.get("time_zone")) or "UTC",
        intervals=sorted(intervals),
        holidays=[(h["start_date"], h["end_date"]) for h in holidays],
        is_default=is_default,
        raw={**data, "holidays": holidays},
    )


def sla_policy(data: dict[str, Any]) -> SlaPolicy:
    targets = [
        {
            "metric": m.get("metric"),
            "priority": m.get("priority"),
            "minutes": m.get("target"),
            "business_hours": m.get("business_hours"),
        }
        for m in data.get("policy_metrics") or []
    ]
    return SlaPolicy(external_id=data["id"], title=data.get("title"), targets=targets, raw=data)


def rating(data: dict[str, Any]) -> Rating | None:
    """Legacy CSAT: score good/bad/offered; `unoffered` is no survey at all and is skipped."""
    score = str(data.get("score") or "")
    if score == "unoffered":
        return None
    answered = score in ("good", "bad")
    return Rating(
        external_id=data["id"],
        ticket_id=data.get("ticket_id"),
        kind="csat",
        scale_min=0,
        scale_max=1,
        raw_value=score,
        value=(1.0 if score == "good" else 0.0) if answered else None,
        sentiment=(1 if score == "good" else -1) if answered else None,
        offered_at=data.get("created_at"),
        responded_at=data.get("updated_at") if answered else None,
        updated_at=data.get("updated_at"),
        agent_id=data.get("assignee_id"),
        group_id=data.get("group_id"),
        comment=data.get("comment") or None,
        reason=data.get("reason") or None,
        raw=data,
    )


def sla_event(data: dict[str, Any]) -> SlaEvent:
    sla = data.get("sla") or {}
    policy = sla.get("policy") or {}
    return SlaEvent(
        external_id=data["id"],
        ticket_id=data["ticket_id"],
        metric=_sla_metric(str(data.get("metric") or "")),
        instance_id=data.get("instance_id"),
        type=str(data.get("type") or ""),
        at=data["time"],
        target_minutes=_target_minutes(sla),
        business_hours=sla.get("business_hours"),
        policy_id=policy.get("id"),
        raw=data,
    )


def _target_minutes(sla: dict[str, Any]) -> float | None:
    target = sla.get("target")
    if isinstance(target, (int, float)):
        return float(target)
    seconds = sla.get("target_in_seconds")
    return seconds / 60 if isinstance(seconds, (int, float)) else None


def _sla_metric(metric: str) -> str:
    return {"reply_time": "first_reply", "periodic_update_time": "periodic_update"}.get(metric, metric)


# -- ticket events ------------------------------------------------------------------------------
_CHANGE_FIELDS = ("status", "assignee_id", "group_id")


def event_records(
    event: dict[str, Any], agent_ids: Set[str], store_bodies: bool, time_fields: TimeFields | None = None
) -> Iterator[Record]:
    """Canonical records of one ticket event (an audit and its child events)."""
    ticket_id = event["ticket_id"]
    at = event.get("created_at") or event.get("timestamp")
    actor = _id(event.get("updater_id"))
    event_via = _via_kind(event.get("via"))
    if time_fields is not None:
        entry = time_entry(event, time_fields)
        if entry is not None:
            yield entry
    for child in event.get("child_events") or []:
        kind = child.get("event_type") or child.get("type")
        if kind == "Comment":
            yield comment(child, ticket_id, agent_ids, store_bodies)
        elif kind in ("Create", "Change"):
            yield from _field_change(child, ticket_id, at, actor, event_via)
        elif kind == "AgentMacroReference":
            yield MacroApplication(
                external_id=child["id"],
                ticket_id=ticket_id,
                macro_id=child.get("macro_id"),
                macro_title=child.get("macro_title"),
                agent_id=actor,
                applied_at=child.get("created_at") or at,
                raw=child,
            )


def _field_change(
    child: dict[str, Any], ticket_id: Any, at: Any, actor: str | None, via: str
) -> Iterator[Record]:
    field = next((f for f in _CHANGE_FIELDS if f in child), child.get("field_name"))
    if field not in _CHANGE_FIELDS:
        return
    value = child.get(field, child.get("value"))
    previous = child.get("previous_value")
    when = child.get("created_at") or at
    if field == "status":
        yield TicketStatusEvent(
            external_id=child["id"],
            ticket_id=ticket_id,
            at=when,
            from_status=previous,
            to_status=str(value),
            from_category=STATUS_CATEGORY.get(str(previous), "unknown") if previous is not None else None,
            to_category=STATUS_CATEGORY.get(str(value), "unknown"),
            actor_id=actor,
            via=_via_kind(child.get("via")) if child.get("via") else via,
            raw=child,
        )
    else:
        yield TicketAssignmentEvent(
            external_id=child["id"],
            ticket_id=ticket_id,
            at=when,
            field="assignee" if field == "assignee_id" else "group",
            value_id=_id(value),
            previous_id=_id(previous),
            actor_id=actor,
            raw=child,
        )


def comment(child: dict[str, Any], ticket_id: Any, agent_ids: Set[str], store_bodies: bool) -> Message:
    """A comment child event. Role: system for rules/merges, agent if the author is an agent."""
    via = child.get("via") or {}
    via_channel = str(via.get("channel") or "") if isinstance(via, dict) else str(via)
    author = _id(child.get("author_id"))
    source_rel = str(((via.get("source") or {}).get("rel")) or "") if isinstance(via, dict) else ""
    if via_channel in ("rule", "merge") or source_rel in ("trigger", "automation") or author == SYSTEM_USER_ID:
        role = "system"
    elif via_channel == "ai_agent" or source_rel == "ai_agent":
        role = "bot"
    elif author in agent_ids:
        role = "agent"
    else:
        role = "customer"
    raw = child if store_bodies else {k: v for k, v in child.items() if k not in BODY_KEYS}
    channel, _, _ = channel_of(via_channel)
    return Message(
        external_id=child["id"],
        ticket_id=ticket_id,
        created_at=child.get("created_at"),
        author_id=author,
        author_role=role,
        is_public=bool(child.get("public")),
        is_automated=role in ("system", "bot"),
        via=via_channel or None,
        channel=channel,
        is_shared_external=via_channel == "ticket_sharing",
        body=(child.get("plain_body") or child.get("body")) if store_bodies else None,
        raw=raw,
    )


def _via_kind(via: Any) -> str:
    """The ticket event `via` is a display string ("Web form", "Rule", "Mail"...)."""
    text = (via.get("channel") if isinstance(via, dict) else via) or ""
    text = str(text).lower()
    for kind in ("rule", "trigger", "automation", "merge", "api"):
        if kind in text:
            return "rule" if kind in ("trigger", "automation") else kind
    return "user" if text else "unknown"


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


# -- handle time: Time Tracking app and Talk calls ----------------------------------------------
class TimeFields(NamedTuple):
    """Ids of the Time Tracking app's ticket fields "Total time spent (sec)" and "Time spent last
    update (sec)" in this account (either may be unknown)."""

    total: str | None
    last_update: str | None


def time_entry(event: dict[str, Any], fields: TimeFields) -> TimeEntry | None:
    """The time an agent logged with this update, from the app's field changes in the audit.

    The total's increase is the logged time; "time spent last update" alone is the fallback
    (Using the Time Tracking app, support.zendesk.com/hc/en-us/articles/4408822487450: when an
    agent logs the same time as the previous update, only the total changes). A lowered total
    (an admin's correction) logs nothing. The id is the change event's, so reruns upsert."""
    total = last = None
    for child in event.get("child_events") or []:
        values = child.get("custom_ticket_fields")
        if not isinstance(values, dict) or (child.get("event_type") or child.get("type")) not in ("Create", "Change"):
            continue
        if fields.total is not None and _int(values.get(fields.total)) is not None:
            total = (child, _int(values[fields.total]) - (_int(child.get("previous_value")) or 0))  # type: ignore[operator]
        elif fields.last_update is not None and _int(values.get(fields.last_update)) is not None:
            last = (child, _int(values[fields.last_update]))
    child, seconds = total or last or (None, None)
    if child is None or not seconds or seconds <= 0:
        return None
    return TimeEntry(
        external_id=child["id"],
        ticket_id=event["ticket_id"],
        agent_id=_id(event.get("updater_id")),
        seconds=seconds,
        executed_at=child.get("created_at") or event.get("created_at") or event.get("timestamp"),
        source_kind="time_tracking_app",
        raw=child,
    )


def call(data: dict[str, Any]) -> Call:
    """A Talk call (Incremental Calls Export): durations in seconds; `created_at` starts it."""
    return Call(
        external_id=data["id"],
        ticket_id=data.get("ticket_id"),
        agent_id=data.get("agent_id") or None,
        direction=data.get("direction"),
        started_at=data["created_at"],
        talk_s=data.get("talk_time"),
        hold_s=data.get("hold_time"),
        wrap_up_s=data.get("wrap_up_time"),
        wait_s=data.get("wait_time"),
        status=data.get("completion_status"),
        raw=data,
    )


def _int(value: Any) -> int | None:
    """Custom field values are strings in events ("300"); empty or non-numeric gives None."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
