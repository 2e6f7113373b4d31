"""Freshdesk API v2 JSON → canonical records. Pure functions, no I/O.

Shapes and codes follow developers.freshdesk.com/api (Tickets, Conversations, Contacts, Agents,
Companies, Groups, Business Hours, SLA Policies, Satisfaction Ratings, Time Entries, Ticket
Fields). Source codes beyond the public table (1, 2, 3, 7, 9, 10) come from Freshdesk's own
`Helpdesk::Source` constants and Chatwoot's importer, which was checked against a live tenant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from datetime import datetime
from typing import Any

from kpisync.core.models import (
    Group,
    Message,
    Organization,
    Rating,
    Schedule,
    SlaPolicy,
    StatusCategory,
    Ticket,
    TicketStatusEvent,
    TimeEntry,
    User,
)
from kpisync.core.timeutil import to_utc
from kpisync.core.timezones import iana_zone

# -- codes ---------------------------------------------------------------------------------------
OPEN, PENDING, RESOLVED, CLOSED = 2, 3, 4, 5
STATUS_NAMES = {OPEN: "Open", PENDING: "Pending", RESOLVED: "Resolved", CLOSED: "Closed"}
STATUS_CATEGORY: dict[int, StatusCategory] = {
    OPEN: "open",
    PENDING: "pending",
    RESOLVED: "resolved",
    CLOSED: "closed",
}
PRIORITIES = {1: "low", 2: "normal", 3: "high", 4: "urgent"}  # Low, Medium, High, Urgent
OUTBOUND_EMAIL = 10
NOTE = 2  # conversation source of notes (public or private)

# Ticket `source` → (vendor name, normalised channel). Social codes are channel "social" only
# when the user counts them as social (`social_sources`); otherwise they keep this channel.
SOURCES: dict[int, tuple[str, str]] = {
    1: ("email", "email"),
    2: ("portal", "web"),
    3: ("phone", "phone"),
    4: ("forum", "web"),
    5: ("twitter", "social"),
    6: ("facebook", "social"),
    7: ("chat", "chat"),
    8: ("mobihelp", "web"),
    9: ("feedback_widget", "web"),
    10: ("outbound_email", "email"),
    11: ("ecommerce", "other"),
    12: ("bot", "chat"),
    13: ("whatsapp", "messaging"),
    14: ("chat_internal_task", "other"),
    15: ("web_chat", "chat"),
    16: ("web_form", "web"),
    17: ("instagram_message", "social"),
    18: ("instagram_comment", "social"),
    19: ("facebook_message", "social"),
    20: ("facebook_comment", "social"),
    21: ("mobile_chat_sdk", "chat"),
    22: ("sms", "sms"),
}
# The default `social_sources`. Rule (docs/kpis.md, social_tickets): social networks AND messaging
# apps are social, as in Zendesk's mapping (via twitter/facebook/instagram_dm/whatsapp/line/...),
# so 13 WhatsApp counts like Messenger (19) and Instagram DM (17); SMS (22) and chat do not.
SOCIAL_SOURCES = (5, 6, 13, 17, 18, 19, 20)
# Conversation `source`: a different enum from the ticket's (List All Conversations).
CONVERSATION_SOURCES = {
    0: "reply",
    2: "note",
    5: "tweet",
    6: "survey_feedback",
    7: "facebook",
    8: "forward",
    9: "phone",
    11: "ecommerce",
}
CONVERSATION_CHANNELS = {5: "social", 7: "social", 9: "phone"}
BODY_KEYS = ("body", "body_text", "description", "description_text", "structured_body", "structured_description")


# -- labels from /api/v2/ticket_fields -----------------------------------------------------------
class Labels:
    """Status and source labels of one account, including custom statuses and sources.

    `ticket_fields` lists `status` with choices {"code": [agent label, customer label]} and
    `source` with choices {"label": code}; custom statuses get codes 6 and up.
    """

    def __init__(self, fields: Iterable[dict[str, Any]] = (), overrides: Mapping[str, StatusCategory] | None = None) -> None:
        self.status: dict[int, str] = dict(STATUS_NAMES)
        self.source: dict[int, str] = {code: name for code, (name, _) in SOURCES.items()}
        self.overrides = {str(k).lower(): v for k, v in (overrides or {}).items()}
        for field in fields:
            choices = field.get("choices")
            if field.get("name") == "status" and isinstance(choices, dict):
                for code, labels in choices.items():
                    label = labels[0] if isinstance(labels, list) and labels else labels
                    if _is_int(code) and label:
                        self.status[int(code)] = str(label)
            elif field.get("name") == "source" and isinstance(choices, dict):
                for label, code in choices.items():
                    if _is_int(code) and int(code) not in SOURCES:
                        self.source[int(code)] = _slug(str(label))

    def status_name(self, code: int) -> str:
        return self.status.get(code, f"status_{code}")

    def category(self, code: int) -> StatusCategory:
        """Built-in statuses by code; custom ones from the `status_categories` setting, else by
        label: "…customer…" waits on the requester (pending), anything else waits on a third
        party (hold). Both are unresolved, so backlog KPIs never depend on the guess."""
        label = self.status_name(code)
        for key in (str(code), label.lower()):
            if key in self.overrides:
                return self.overrides[key]
        if code in STATUS_CATEGORY:
            return STATUS_CATEGORY[code]
        return "pending" if "customer" in label.lower() else "hold"


# -- tickets ---------------------------------------------------------------------------------------
def ticket(data: dict[str, Any], labels: Labels, social_sources: Set[int], agent_url: str, store_bodies: bool) -> Ticket:
    code = int(data.get("status") or OPEN)
    source = _int(data.get("source"))
    raw_channel, channel = _channel(source, labels)
    social = source in social_sources
    if social:
        channel = "social"
    elif channel == "social":  # a social code the user does not count as social
        channel = "messaging"
    deleted = bool(data.get("deleted"))
    return Ticket(
        external_id=data["id"],
        subject=data.get("subject"),
        channel=channel,
        raw_channel=raw_channel,
        is_social=social,
        created_at=data["created_at"],
        updated_at=data.get("updated_at"),
        status=labels.status_name(code),
        status_category="deleted" if deleted else labels.category(code),
        requester_id=_id(data.get("requester_id")),
        organization_id=_id(data.get("company_id")),
        assignee_id=_id(data.get("responder_id")),
        group_id=_id(data.get("group_id")),
        brand_id=_id(data.get("product_id")),
        priority=PRIORITIES.get(_int(data.get("priority")) or 0),
        type=data.get("type"),
        is_outbound=source == OUTBOUND_EMAIL,
        is_spam=bool(data.get("spam")),
        is_deleted=deleted,
        first_response_due_at=data.get("fr_due_by"),
        resolution_due_at=data.get("due_by"),
        tags=[str(t) for t in data.get("tags") or []],
        custom={"custom_fields": data.get("custom_fields") or {}} if data.get("custom_fields") else None,
        vendor_metrics=data.get("stats"),
        url=f"{agent_url}/a/tickets/{data['id']}",
        raw=_strip(data, store_bodies),
    )


def _channel(source: int | None, labels: Labels) -> tuple[str | None, str]:
    if source is None:
        return None, "other"
    known = SOURCES.get(source)
    if known is not None:
        return known[0], known[1]
    return labels.source.get(source, f"source_{source}"), "other"


def description(data: dict[str, Any], store_bodies: bool, channel: str) -> Message:
    """The ticket's description as its first message: Freshdesk keeps it on the ticket, not
    among the conversations. Outbound emails are written by an agent (we credit the assignee,
    the only agent the API names); anything else by the requester."""
    outbound = _int(data.get("source")) == OUTBOUND_EMAIL
    author = data.get("responder_id") if outbound else data.get("requester_id")
    return Message(
        external_id=f"{data['id']}:description",
        ticket_id=data["id"],
        created_at=data["created_at"],
        author_id=_id(author),
        author_role="agent" if outbound else "customer",
        is_public=True,
        via="description",
        channel=channel,
        body=(data.get("description_text") or None) if store_bodies else None,
    )


def conversation(
    data: dict[str, Any],
    agent_ids: Set[str],
    store_bodies: bool,
    public_notes_are_replies: bool,
    ticket_channel: str,
) -> Message:
    """A reply or note. The role comes from the author, not `incoming`: a customer answering
    through the portal has `incoming: false` (the field means "created from outside")."""
    source = _int(data.get("source"))
    author = _id(data.get("user_id"))
    role = "agent" if author is not None and author in agent_ids else "customer"
    private = bool(data.get("private"))
    is_note = source == NOTE
    return Message(
        external_id=data["id"],
        ticket_id=data["ticket_id"],
        created_at=data["created_at"],
        author_id=author,
        author_role=role,
        # A public note is visible to the requester but is not a reply; kpi-definitions counts
        # it only when `count_public_notes_as_replies` is on (Freshdesk's own reports do).
        is_public=not private and (not is_note or public_notes_are_replies),
        via=CONVERSATION_SOURCES.get(source or 0, f"source_{source}"),
        channel=CONVERSATION_CHANNELS.get(source or 0, ticket_channel),
        body=(data.get("body_text") or None) if store_bodies else None,
        raw=_strip(data, store_bodies),
    )


def status_events(data: dict[str, Any], labels: Labels) -> list[TicketStatusEvent]:
    """Status transitions rebuilt from `stats`, because Freshdesk has no status-history API.

    `stats` holds only the latest resolved/closed/reopened/pending times, so a snapshot is a
    partial history; ids are `{ticket}:{kind}:{unix}`, so every sync adds the transitions it
    sees and never duplicates one, and the store's history grows more complete over time.
    The last event always lands in the ticket's current status.
    """
    stats = data.get("stats") or {}
    tid = data["id"]
    found: list[tuple[datetime, int, str, int]] = []  # (at, tie order, kind, to_status)
    for order, (kind, key, to) in enumerate(
        (
            ("created", "created_at", OPEN),
            ("resolved", "resolved_at", RESOLVED),
            ("closed", "closed_at", CLOSED),
            ("reopened", "reopened_at", OPEN),
            ("pending", "pending_since", PENDING),
        )
    ):
        at = to_utc((data if key == "created_at" else stats).get(key))
        if at is not None:
            found.append((at, order, kind, to))
    found.sort()
    current = int(data.get("status") or OPEN)
    changed = to_utc(stats.get("status_updated_at"))
    if found and found[-1][3] != current and changed is not None and changed >= found[-1][0]:
        found.append((changed, 9, "status", current))
    events: list[TicketStatusEvent] = []
    previous: int | None = None
    for at, _, kind, to in found:
        before = previous
        if kind == "reopened" and previous not in (RESOLVED, CLOSED):
            before = RESOLVED  # a reopen always leaves a resolved state, even one we never saw
        events.append(
            TicketStatusEvent(
                external_id=f"{tid}:{kind}:{int(at.timestamp())}",
                ticket_id=tid,
                at=at,
                from_status=labels.status_name(before) if before is not None else None,
                to_status=labels.status_name(to),
                from_category=labels.category(before) if before is not None else None,
                to_category=labels.category(to),
                is_synthetic=True,  # who changed it is unknown: `via` and `actor_id` stay empty
            )
        )
        previous = to
    return events


# -- people and teams ------------------------------------------------------------------------------
def agent(data: dict[str, Any]) -> User:
    contact = data.get("contact") or {}
    collaborator = data.get("type") == "collaborator" or data.get("agent_type") == 3
    return User(
        external_id=data["id"],
        name=contact.get("name"),
        email=contact.get("email"),
        role="light_agent" if collaborator else "agent",
        time_zone=iana_zone(contact.get("time_zone")),
        active=bool(contact.get("active", True)),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        raw=data,
    )


def contact(data: dict[str, Any]) -> User:
    return User(
        external_id=data["id"],
        name=data.get("name"),
        email=data.get("email"),
        phone=data.get("phone") or data.get("mobile") or None,  # Contacts API: work phone, else mobile
        role="customer",
        organization_id=_id(data.get("company_id")),
        segment=data.get("custom_fields") or None,
        time_zone=iana_zone(data.get("time_zone")),
        active=bool(data.get("active", True)),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        raw=data,
    )


def company(data: dict[str, Any]) -> Organization:
    attributes = {k: data[k] for k in ("industry", "health_score", "renewal_date", "domains") if data.get(k)}
    attributes.update(data.get("custom_fields") or {})
    return Organization(
        external_id=data["id"],
        name=data.get("name"),
        tier=data.get("account_tier"),
        attributes=attributes or None,
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        raw=data,
    )


def group(data: dict[str, Any]) -> Group:
    return Group(
        external_id=data["id"], name=data.get("name"), created_at=data.get("created_at"),
        updated_at=data.get("updated_at"), raw=data,
    )  # fmt: skip


# -- schedules and SLAs ----------------------------------------------------------------------------
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def schedule(data: dict[str, Any]) -> Schedule:
    """Business hours: {"monday": {"start_time": "8:00 am", "end_time": "5:00 pm"}, ...} in a
    Rails time-zone name. The v2 API has no holiday list, so `holidays` stays empty."""
    intervals = []
    hours = data.get("business_hours") or {}
    for day, name in enumerate(WEEKDAYS):
        slot = hours.get(name)
        if not slot:
            continue
        start, end = _clock_minutes(slot.get("start_time")), _clock_minutes(slot.get("end_time"))
        if start is None or end is None:
            continue
        if end == 23 * 60 + 59:  # "11:59 pm" is how the admin UI says "until midnight"
            end = 1440
        if end > start:
            intervals.append((day, start, end))
    return Schedule(
        external_id=data["id"],
        name=data.get("name"),
        tz=iana_zone(data.get("time_zone")) or "UTC",
        intervals=intervals,
        is_default=bool(data.get("is_default")),
        raw=data,
    )


def sla_policy(data: dict[str, Any]) -> SlaPolicy:
    """`sla_target.priority_N.{respond_within, resolve_within}` are seconds."""
    targets = []
    for key, target in sorted((data.get("sla_target") or {}).items()):
        match = re.fullmatch(r"priority_(\d)", key)
        if not match or not isinstance(target, dict):
            continue
        priority = PRIORITIES.get(int(match.group(1)))
        for metric, field in (("first_reply_time", "respond_within"), ("full_resolution_time", "resolve_within")):
            seconds = target.get(field)
            if isinstance(seconds, (int, float)):
                targets.append({
                    "metric": metric, "priority": priority, "minutes": seconds / 60,
                    "business_hours": bool(target.get("business_hours")),
                })  # fmt: skip
    return SlaPolicy(external_id=data["id"], title=data.get("name"), targets=targets, raw=data)


# -- CSAT and time ---------------------------------------------------------------------------------
def rating(data: dict[str, Any]) -> Rating | None:
    """`ratings.default_question` ∈ {103, 102, 101, 100, −101, −102, −103}: 100 is neutral, the
    distance from 100 is the strength. `value` maps it onto −3…3 so means stay meaningful."""
    raw = (data.get("ratings") or {}).get("default_question")
    if not _is_int(raw):
        return None
    score = int(raw)
    value = 0 if score == 100 else (abs(score) - 100) * (1 if score > 0 else -1)
    return Rating(
        external_id=data["id"],
        ticket_id=_id(data.get("ticket_id")),
        kind="csat",
        scale_min=-3,
        scale_max=3,
        raw_value=str(score),
        value=float(value),
        sentiment=1 if score > 100 else (0 if score == 100 else -1),
        responded_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        agent_id=_id(data.get("agent_id")),
        group_id=_id(data.get("group_id")),
        comment=data.get("feedback") or None,
        raw=data,
    )


def time_entry(data: dict[str, Any]) -> TimeEntry:
    return TimeEntry(
        external_id=data["id"],
        ticket_id=_id(data.get("ticket_id")),
        agent_id=_id(data.get("agent_id")),
        seconds=hhmm_seconds(data.get("time_spent")),
        executed_at=data.get("executed_at") or data.get("created_at"),
        billable=data.get("billable"),
        raw=data,
    )


def hhmm_seconds(text: Any) -> int:
    """`time_spent` is "hh:mm" (minutes resolution)."""
    match = re.fullmatch(r"\s*(\d+):(\d{1,2})\s*", str(text or ""))
    return (int(match.group(1)) * 60 + int(match.group(2))) * 60 if match else 0


# -- helpers ---------------------------------------------------------------------------------------
def _clock_minutes(text: Any) -> int | None:
    """"8:00 am" / "5:30 pm" / "17:30" → minutes after midnight."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*([ap]m)?\s*", str(text or ""), re.IGNORECASE)
    if not match:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2)), (match.group(3) or "").lower()
    if half == "am" and hour == 12:
        hour = 0
    elif half == "pm" and hour != 12:
        hour += 12
    return hour * 60 + minute


def _strip(data: dict[str, Any], store_bodies: bool) -> dict[str, Any]:
    return data if store_bodies else {k: v for k, v in data.items() if k not in BODY_KEYS}


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"-?\d+", value.strip()))


def _int(value: Any) -> int | None:
    return int(value) if _is_int(value) else None


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or label
