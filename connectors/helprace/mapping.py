"""Helprace JSON → canonical records. Pure functions, no I/O.

Field names follow what is known of the API (README.md beside this file): tickets as created
through the API (`subject`, `body`, `requester`, lower-case `status`/`priority`), the list items
of the community endpoints (`created`, an `author` object) and the help centre's placeholder
guide (`via`, `priority`, `type`, requester/submitter/assignee, team, internal notes). Where the
real payload might use a sibling name (`created_at` for `created`, `title` for `subject`...), the
readers below accept both, so a naming difference degrades nothing.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Any

from kpisync.core.models import Group, Message, Organization, Ticket, TicketStatusEvent, User
from kpisync.core.timeutil import to_utc, unix

# support.helprace.com/i27-ticket-statuses-within-helprace
STATUS_CATEGORY = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "on-hold": "hold",
    "solved": "resolved",
    "closed": "closed",
}
# support.helprace.com/i124-helprace-placeholder-guide: email, user-portal, admin-panel,
# feedback-widget, api. Helprace has no social-media channel.
CHANNELS = {
    "email": "email",
    "user-portal": "web",
    "feedback-widget": "web",
    "admin-panel": "web",
    "api": "api",
}
AGENT_ROLES = frozenset({"owner", "admin", "agent"})
USER_ROLES = {"owner": "admin", "admin": "admin", "agent": "agent"}
BODY_KEYS = ("body", "body_html", "html", "content")


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None:
            return value
    return None


def ref_id(value: Any) -> str | None:
    """The id of an embedded user/team/organization object (or a bare id)."""
    if isinstance(value, dict):
        value = value.get("id")
    return None if value is None or value == "" else str(value)


def status_of(data: dict[str, Any]) -> str:
    """Lower-case, hyphenated status: "On Hold" and "on_hold" both become "on-hold"."""
    text = str(data.get("status") or "unknown").strip().lower().replace("_", "-").replace(" ", "-")
    return "on-hold" if text == "onhold" else text


def created_of(data: dict[str, Any]) -> datetime:
    created = to_utc(_first(data, "created", "created_at"))
    if created is None:
        raise ValueError(f"Helprace item {data.get('id')} has no creation time")
    return created


def updated_of(data: dict[str, Any]) -> datetime | None:
    return to_utc(_first(data, "updated", "updated_at"))


def _without_bodies(data: dict[str, Any], store_bodies: bool) -> dict[str, Any]:
    return data if store_bodies else {k: v for k, v in data.items() if k not in BODY_KEYS}


def ticket(data: dict[str, Any], agent_ids: Set[str], store_bodies: bool) -> Ticket:
    status = status_of(data)
    via = _first(data, "via", "source", "channel")
    raw_channel = str(via) if via is not None else None
    requester = ref_id(data.get("requester"))
    submitter = ref_id(data.get("submitter"))
    tags = data.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    fields = _first(data, "fields", "custom_fields")
    kind = _first(data, "type", "ticket_type")
    return Ticket(
        external_id=data["id"],
        subject=_first(data, "subject", "title"),
        channel=CHANNELS.get(raw_channel or "", "other"),
        raw_channel=raw_channel,
        created_at=created_of(data),
        updated_at=updated_of(data),
        status=status,
        status_category=STATUS_CATEGORY.get(status, "unknown"),
        requester_id=requester,
        submitter_id=submitter,
        organization_id=ref_id(data.get("organization")),
        assignee_id=ref_id(data.get("assignee")),
        group_id=ref_id(_first(data, "team", "group")),
        priority=str(data["priority"]).lower() if data.get("priority") is not None else None,
        type=str(kind).lower() if kind else None,
        is_outbound=submitter is not None and submitter != requester and submitter in agent_ids,
        tags=[str(t) for t in tags],
        custom={"fields": fields} if fields else None,
        url=_first(data, "admin_url", "url"),
        raw=_without_bodies(data, store_bodies),
    )


def _role(author: str | None, agent_ids: Set[str]) -> str:
    if author is None:
        return "system"  # rule-sent messages have no author
    return "agent" if author in agent_ids else "customer"


def _is_private(data: dict[str, Any]) -> bool:
    for name in ("internal", "is_internal", "private", "is_private", "note"):
        if data.get(name) is not None:
            return bool(data[name])
    if data.get("public") is not None:
        return not data["public"]
    return False


def reply(data: dict[str, Any], ticket_id: str, agent_ids: Set[str], store_bodies: bool) -> Message:
    """A ticket reply (public) or internal note (private); the role comes from the users list."""
    author = ref_id(_first(data, "author", "user", "author_id", "user_id"))
    role = _role(author, agent_ids)
    return Message(
        external_id=data["id"],
        ticket_id=ticket_id,
        created_at=created_of(data),
        author_id=author,
        author_role=role,
        is_public=not _is_private(data),
        is_automated=role == "system",
        via=data.get("via"),
        body=_first(data, *BODY_KEYS) if store_bodies else None,
        raw=_without_bodies(data, store_bodies),
    )


def description(data: dict[str, Any], replies: list[dict[str, Any]], agent_ids: Set[str], store_bodies: bool) -> Message | None:
    """The ticket's first message, from the ticket's own `body` and submitter.

    The replies list does not repeat it (an assumption); if it does (a first reply by the
    submitter at the ticket's creation time), that reply is the description and none is made.
    """
    created = created_of(data)
    submitter = ref_id(data.get("submitter")) or ref_id(data.get("requester"))
    for item in replies[:1]:
        if ref_id(_first(item, "author", "user", "author_id", "user_id")) == submitter and created_of(item) == created:
            return None
    role = _role(submitter, agent_ids)
    return Message(
        external_id=f"{data['id']}-description",
        ticket_id=str(data["id"]),
        created_at=created,
        author_id=submitter,
        author_role=role,
        is_public=True,
        is_automated=role == "system",
        via=str(data["via"]) if data.get("via") is not None else None,
        body=data.get("body") if store_bodies else None,
    )


def status_events(data: dict[str, Any], previous: str | None) -> list[TicketStatusEvent]:
    """Synthetic status history: Helprace's API has none, so each sync records what it saw.

    First sight: "new" at creation, then the current status at the ticket's `updated` time.
    Later syncs: one event at `updated` when the status differs from the last one seen. Ids
    derive from (ticket, time, status), so a re-read writes nothing new.
    """
    tid = str(data["id"])
    status = status_of(data)
    created = created_of(data)
    updated = updated_of(data) or created

    def event(key: str, at: datetime, before: str | None, after: str) -> TicketStatusEvent:
        return TicketStatusEvent(
            external_id=f"{tid}:{key}", ticket_id=tid, at=at, from_status=before, to_status=after,
            from_category=STATUS_CATEGORY.get(before, "unknown") if before else None,
            to_category=STATUS_CATEGORY.get(after, "unknown"), is_synthetic=True,
        )

    if previous is None:
        if status == "new" or updated <= created:
            return [event("created", created, None, status)]
        return [event("created", created, None, "new"), event(f"{unix(updated)}:{status}", updated, "new", status)]
    if previous != status:
        return [event(f"{unix(updated)}:{status}", max(updated, created), previous, status)]
    return []


def user(data: dict[str, Any]) -> User:
    role = str(data.get("role") or "user").lower()
    active = data.get("active")
    return User(
        external_id=data["id"],
        name=data.get("name"),
        email=data.get("email"),
        phone=data.get("phone") or None,  # a converted-ticket match key (core/phone.py)
        role=USER_ROLES.get(role, "customer"),
        organization_id=ref_id(data.get("organization")),
        time_zone=data.get("time_zone"),
        active=True if active is None else bool(active),
        created_at=to_utc(_first(data, "created", "created_at")),
        updated_at=to_utc(_first(data, "updated", "updated_at")),
        raw=data,
    )


def is_agent(data: dict[str, Any]) -> bool:
    return str(data.get("role") or "").lower() in AGENT_ROLES


def organization(data: dict[str, Any]) -> Organization:
    return Organization(external_id=data["id"], name=data.get("name"), raw=data)


def group(data: dict[str, Any]) -> Group:
    """A Helprace team (tickets embed `team: {id, name}`)."""
    return Group(external_id=data["id"], name=data.get("name"), raw=data)
