"""Help Scout Mailbox API 2.0 JSON → canonical records. Pure functions, no I/O.

Shapes follow developer.helpscout.com/mailbox-api (Conversation, Thread, Customer, User and
the Happiness Ratings report); README.md beside this file lists the pages.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from kpisync.core.models import Message, Rating, Record, StatusCategory, Ticket, TicketStatusEvent, User
from kpisync.core.sdk import EnumMap, dig, full_name, ident, utc, without

CATEGORY: EnumMap[StatusCategory] = EnumMap(
    {"active": "open", "pending": "pending", "closed": "closed", "spam": "deleted"}, unknown="unknown", name="conversation status"
)
#: Conversation `type` first (chat/phone), else the `source.type` it came in by.
CHANNEL = EnumMap({"chat": "chat", "phone": "phone", "email": "email", "emailfwd": "email", "web": "web",
                   "beacon": "chat", "api": "api", "mobile": "chat"}, unknown="other", name="channel")  # fmt: skip
MESSAGE_TYPES = frozenset({"customer", "message", "note", "chat", "phone"})
STATUSES = frozenset({"active", "pending", "closed", "spam"})
#: Happiness ratings: three faces (ratingId 1 great, 2 ok, 3 not good).
FACES = {1: ("great", 3.0, 1), 2: ("ok", 2.0, 0), 3: ("not-good", 1.0, -1)}
BODY_KEYS = ("body", "preview")


def conversation(data: dict[str, Any], agents: Set[str], store_bodies: bool) -> list[Record]:
    """The ticket, its messages and its status changes (threads embedded with embed=threads)."""
    threads = sorted(dig(data, "_embedded.threads", []), key=lambda t: (t.get("createdAt") or "", t.get("id") or 0))
    kind = data.get("type")
    channel = CHANNEL(kind) if kind in ("chat", "phone") else CHANNEL(dig(data, "source.type"))
    status = str(data.get("status") or "")
    deleted = data.get("state") == "deleted"
    ticket = Ticket(
        external_id=data["id"], subject=data.get("subject"), channel=channel, raw_channel=dig(data, "source.type"),
        created_at=data["createdAt"], updated_at=data.get("updatedAt") or data.get("userUpdatedAt"), status=status,
        status_category="deleted" if deleted else CATEGORY(status), requester_id=ident(dig(data, "primaryCustomer.id")),
        submitter_id=ident(dig(data, "createdBy.id")), assignee_id=ident(dig(data, "assignee.id")),
        is_outbound=dig(data, "createdBy.type") == "user", is_spam=status == "spam", is_deleted=deleted,
        tags=[str(t.get("tag")) for t in data.get("tags") or [] if t.get("tag")],
        url=f"https://secure.helpscout.net/conversation/{data['id']}/{data.get('number')}/",
        raw=without(data, ("_embedded", "_links", *BODY_KEYS)),
    )  # fmt: skip
    records: list[Record] = [ticket]
    previous: str | None = None
    for thread in threads:
        if thread.get("type") in MESSAGE_TYPES:
            records.append(message(thread, data["id"], agents, store_bodies, channel))
        new = thread.get("status")
        if new in STATUSES:
            records.append(TicketStatusEvent(
                external_id=f"{data['id']}:{thread['id']}", ticket_id=data["id"], at=thread["createdAt"],
                from_status=previous, to_status=new, from_category=CATEGORY(previous) if previous else None,
                to_category=CATEGORY(new), actor_id=ident(dig(thread, "createdBy.id")),
                via=dig(thread, "createdBy.type") or "system",
            ))  # fmt: skip
            previous = new
    return records


def message(thread: dict[str, Any], ticket_id: Any, agents: Set[str], store_bodies: bool, channel: str) -> Message:
    """customer → the customer; message/note by a Help Scout user → an agent; a "user" that is
    not an invited user is an AI or system user (v2 reports those as "user") → bot."""
    author = ident(dig(thread, "createdBy.id"))
    if dig(thread, "createdBy.type") == "customer":
        role = "customer"
    else:
        role = "agent" if author in agents else "bot"
    return Message(
        external_id=thread["id"], ticket_id=ticket_id, created_at=thread["createdAt"], author_id=author,
        author_role=role, is_public=thread.get("type") != "note", is_automated=role == "bot", via=thread.get("type"),
        channel=channel, body=thread.get("body") if store_bodies else None, raw=without(thread, ("_embedded", "_links", *BODY_KEYS)),
    )  # fmt: skip


def user(data: dict[str, Any]) -> User:
    role = "admin" if data.get("role") in ("owner", "admin") else "agent"
    return User(
        external_id=data["id"], name=full_name(data.get("firstName"), data.get("lastName")), email=data.get("email"),
        role=role, time_zone=data.get("timezone"), created_at=data.get("createdAt"), updated_at=data.get("updatedAt"),
        raw=without(data, ("_links",)),
    )  # fmt: skip


def customer(data: dict[str, Any]) -> User:
    emails = dig(data, "_embedded.emails", [])
    # List Customers embeds phones as {id, value, type}; a fax or pager number is nobody's checkout phone.
    phones = [p.get("value") for p in dig(data, "_embedded.phones", []) or [] if p.get("type") not in ("fax", "pager")]
    return User(
        external_id=data["id"], name=full_name(data.get("firstName"), data.get("lastName")),
        email=emails[0].get("value") if emails else None, phone=next((p for p in phones if p), None), role="customer",
        created_at=data.get("createdAt"), updated_at=data.get("updatedAt"), raw=without(data, ("_links",)),
    )  # fmt: skip


def rating(row: dict[str, Any]) -> Rating:
    """One row of the happiness ratings report; its key is the rated reply (`threadid`)."""
    name, value, sentiment = FACES.get(int(row.get("ratingId") or 0), (str(row.get("ratingId")), None, None))
    return Rating(
        external_id=row["threadid"], ticket_id=ident(row.get("id")), kind="csat", scale_min=1.0, scale_max=3.0,
        raw_value=name, value=value, sentiment=sentiment, responded_at=utc(row.get("ratingCreatedAt")),
        updated_at=utc(row.get("ratingCreatedAt")), agent_id=ident(row.get("ratingUserId")),
        comment=row.get("ratingComments") or None, raw=row,
    )  # fmt: skip
