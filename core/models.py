"""Canonical records: the one shape every connector maps its API into.

Each record class is one table of the store (`__table__`). Its key in the store is
(source, external_id): `source` is the connector instance (e.g. "zendesk") and is stamped by the
sync engine, so a connector never needs to know under which name it runs. References to other
records (`ticket_id`, `author_id`, ...) hold the *external* id of the other record in the same
source. `raw` keeps the vendor payload for anything the schema does not model.

Timestamps are validated to aware UTC; the store writes them as ISO text (see `timeutil`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, computed_field

from .phone import normalise_phone
from .timeutil import to_utc


def _id_text(value: Any) -> Any:
    """Vendors send ids as numbers or strings; the store keeps text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: An aware UTC instant, parsed from ISO text, unix seconds or a datetime.
UtcDatetime = Annotated[datetime, BeforeValidator(to_utc)]
#: An external id, kept as text whatever JSON type the vendor used.
Id = Annotated[str, BeforeValidator(_id_text)]

AuthorRole = Literal["customer", "agent", "bot", "system"]
UserRole = Literal["customer", "agent", "admin", "light_agent", "bot", "system"]
StatusCategory = Literal["new", "open", "pending", "hold", "resolved", "closed", "deleted", "unknown"]
Sentiment = Literal[-1, 0, 1]


class Record(BaseModel):
    """Base of every canonical record."""

    model_config = ConfigDict(extra="forbid")
    __table__: ClassVar[str] = ""
    #: Column of the ticket this record belongs to, so the store knows which tickets changed.
    __ticket_column__: ClassVar[str | None] = "ticket_id"

    external_id: Id
    raw: dict[str, Any] | None = None


class Ticket(Record):
    """A ticket / conversation as the help desk holds it now."""

    __table__ = "tickets"
    __ticket_column__ = "external_id"

    subject: str | None = None
    channel: str = "other"  # normalised: email, web, chat, phone, api, social, sms, messaging, other
    raw_channel: str | None = None  # the vendor's own channel/source code
    is_social: bool = False
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    status: str  # the vendor's status name or label
    status_category: StatusCategory = "unknown"
    requester_id: Id | None = None
    submitter_id: Id | None = None
    organization_id: Id | None = None
    assignee_id: Id | None = None
    group_id: Id | None = None
    brand_id: Id | None = None
    priority: str | None = None
    type: str | None = None
    is_outbound: bool = False
    is_spam: bool = False
    is_deleted: bool = False
    is_merged: bool = False  # closed by merging into another ticket
    merged_into_id: Id | None = None
    schedule_id: Id | None = None
    sla_policy_id: Id | None = None
    first_response_due_at: UtcDatetime | None = None
    resolution_due_at: UtcDatetime | None = None
    tags: list[str] = []
    custom: dict[str, Any] | None = None
    vendor_metrics: dict[str, Any] | None = None  # the help desk's own per-ticket metrics
    url: str | None = None


class Message(Record):
    """One public reply or private note on a ticket."""

    __table__ = "messages"

    ticket_id: Id
    created_at: UtcDatetime
    author_id: Id | None = None
    author_role: AuthorRole
    is_public: bool
    is_automated: bool = False
    via: str | None = None
    channel: str | None = None
    chat_session_id: Id | None = None
    is_shared_external: bool = False
    body: str | None = None  # only when the source's `store_bodies` setting is on


class User(Record):
    """An agent, a customer or a bot."""

    __table__ = "users"
    __ticket_column__ = None

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: UserRole
    is_bot: bool = False
    organization_id: Id | None = None
    segment: dict[str, Any] | None = None
    hourly_cost: float | None = None
    time_zone: str | None = None
    active: bool = True
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def email_norm(self) -> str | None:
        """Join key to orders and to requesters of other sources."""
        return normalise_email(self.email)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def phone_norm(self) -> str | None:
        """Join key to orders by phone (core/phone.py: digits, country applied at query time)."""
        return normalise_phone(self.phone)


class Group(Record):
    __table__ = "groups"
    __ticket_column__ = None

    name: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class Organization(Record):
    __table__ = "organizations"
    __ticket_column__ = None

    name: str | None = None
    tier: str | None = None
    attributes: dict[str, Any] | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class Rating(Record):
    """A CSAT or NPS answer, or an offered survey that got none (responded_at is None)."""

    __table__ = "ratings"

    ticket_id: Id | None = None
    kind: Literal["csat", "nps"] = "csat"
    scale_min: float | None = None
    scale_max: float | None = None
    raw_value: str | None = None  # the vendor's value as sent: "good", "103", "4"
    value: float | None = None  # numeric value on the scale, when the scale is numeric
    sentiment: Sentiment | None = None  # +1 satisfied, 0 neutral, -1 unsatisfied; None = not answered
    offered_at: UtcDatetime | None = None
    responded_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    agent_id: Id | None = None
    group_id: Id | None = None
    comment: str | None = None
    reason: str | None = None


class TicketStatusEvent(Record):
    """A status transition, the base of resolution, reopen, backlog and wait-time KPIs."""

    __table__ = "ticket_status_events"

    ticket_id: Id
    at: UtcDatetime
    from_status: str | None = None
    to_status: str
    from_category: StatusCategory | None = None
    to_category: StatusCategory
    actor_id: Id | None = None
    via: str | None = None  # agent, rule, bot, api, merge, customer, system
    is_synthetic: bool = False  # rebuilt from timestamps rather than read from a history


class TicketAssignmentEvent(Record):
    """A change of a ticket's assignee or group (credits KPIs to the assignee at the time).

    One event per changed field: help desks log the two independently, and a null `value_id`
    means "unassigned", which must not be confused with "unchanged".
    """

    __table__ = "ticket_assignment_events"

    ticket_id: Id
    at: UtcDatetime
    field: Literal["assignee", "group"]
    value_id: Id | None = None
    previous_id: Id | None = None
    actor_id: Id | None = None


class Schedule(Record):
    """Business hours: weekly intervals in the schedule's own time zone, plus holidays."""

    __table__ = "schedules"
    __ticket_column__ = None

    name: str | None = None
    tz: str
    intervals: list[tuple[int, int, int]]  # (weekday 0=Mon..6, start_min, end_min) local
    holidays: list[tuple[str, str]] = []  # (first date, last date) inclusive, local ISO dates
    is_default: bool = False


class SlaPolicy(Record):
    __table__ = "sla_policies"
    __ticket_column__ = None

    title: str | None = None
    targets: list[dict[str, Any]] = []  # [{"metric", "priority", "minutes", "business_hours"}]


class SlaEvent(Record):
    """One SLA clock event (apply, fulfill, breach, pause...) as the help desk logged it."""

    __table__ = "sla_events"

    ticket_id: Id
    metric: str  # first_reply, next_reply, resolution, agent_work, requester_wait, ...
    instance_id: Id | None = None
    type: str  # apply_sla, activate, pause, fulfill, breach, update_status, measure
    at: UtcDatetime
    target_minutes: float | None = None
    business_hours: bool | None = None
    policy_id: Id | None = None


class SlaTarget(Record):
    """A ticket's SLA target for one metric: when it is due, and whether it was met."""

    __table__ = "sla_targets"

    ticket_id: Id
    metric: str
    target_at: UtcDatetime | None = None
    business_hours: bool | None = None
    fulfilled_at: UtcDatetime | None = None
    breached_at: UtcDatetime | None = None


class TimeEntry(Record):
    """Time an agent logged on a ticket (handle-time KPIs)."""

    __table__ = "time_entries"

    ticket_id: Id | None = None
    agent_id: Id | None = None
    seconds: int
    executed_at: UtcDatetime
    billable: bool | None = None
    source_kind: str = "time_entry"  # time_entry, time_tracking_app, call


class Call(Record):
    __table__ = "calls"

    ticket_id: Id | None = None
    agent_id: Id | None = None
    direction: str | None = None
    started_at: UtcDatetime
    talk_s: int | None = None
    hold_s: int | None = None
    wrap_up_s: int | None = None
    wait_s: int | None = None
    status: str | None = None


class MacroApplication(Record):
    __table__ = "macro_applications"

    ticket_id: Id
    macro_id: Id | None = None
    macro_title: str | None = None
    agent_id: Id | None = None
    applied_at: UtcDatetime


class SocialMention(Record):
    """A public post that mentions the brand (mention, keyword or hashtag match)."""

    __table__ = "social_mentions"
    __ticket_column__ = None

    platform: str
    kind: Literal["mention", "keyword", "hashtag", "reply", "quote"]
    matched_term: str | None = None
    author_id: Id | None = None
    author_handle: str | None = None
    author_followers: int | None = None
    text: str | None = None
    url: str | None = None
    lang: str | None = None
    posted_at: UtcDatetime
    is_own_account: bool = False
    reposts: int | None = None
    likes: int | None = None
    replies: int | None = None
    ticket_id: Id | None = None


class Order(Record):
    """A shop order; money as decimal text in the currency's major unit, never float."""

    __table__ = "orders"
    __ticket_column__ = None

    platform: str
    customer_id: Id | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    total: str
    net_total: str | None = None
    currency: str
    status: str | None = None
    is_test: bool = False
    cancelled_at: UtcDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def customer_email_norm(self) -> str | None:
        """Join key to ticket requesters (converted tickets)."""
        return normalise_email(self.customer_email)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def customer_phone_norm(self) -> str | None:
        """Join key to ticket requesters by phone (core/phone.py)."""
        return normalise_phone(self.customer_phone)


def normalise_email(email: str | None) -> str | None:
    """Trimmed, lower-cased email, the join key between tickets and orders."""
    if email is None:
        return None
    cleaned = email.strip().lower()
    return cleaned or None


class BotConversation(Record):
    """One conversation of the help desk's own AI agent, as the vendor exports it (Zendesk AI
    agents - Advanced, Data Export API). Kept in its own table, apart from tickets and messages:
    `automated_resolution` is the vendor's LLM-verified verdict, reported beside kpisync's own
    automated resolution rate and never mixed into it (KPI definitions §A.13)."""

    __table__ = "bot_conversations"
    __ticket_column__ = None  # a verdict arriving changes no ticket fact

    bot_id: Id | None = None
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    export_day: str  # the UTC day (YYYY-MM-DD) of the vendor's export file that held it
    channel: str | None = None  # the vendor's own channel name
    language: str | None = None
    status: str | None = None  # the vendor's conversation status
    escalated: bool | None = None
    ticket_id: Id | None = None  # the ticket it was escalated to, when the export names one
    automated_resolution: bool | None = None  # None: the vendor gave no verdict (yet)


#: Every canonical record class, in a stable order (schema creation, status listings).
RECORD_TYPES: tuple[type[Record], ...] = (
    Ticket,
    Message,
    User,
    Group,
    Organization,
    Rating,
    TicketStatusEvent,
    TicketAssignmentEvent,
    Schedule,
    SlaPolicy,
    SlaEvent,
    SlaTarget,
    TimeEntry,
    Call,
    MacroApplication,
    SocialMention,
    Order,
    BotConversation,
)
