"""Hand-built stores for the KPI tests: canonical records written with Store.write_batch.

Times are written "Mon 10:00"-style as `t("2026-01-05 10:00")` (UTC unless a zone is given);
every expected figure in the tests is computed by hand from these times.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

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
    SocialMention,
    Ticket,
    TicketAssignmentEvent,
    TicketStatusEvent,
    TimeEntry,
    User,
)
from kpisync.core.store import Store

CATEGORY = {"new": "new", "open": "open", "pending": "pending", "hold": "hold", "solved": "resolved", "closed": "closed"}


def t(text: str, tz: str = "UTC") -> datetime:
    """"2026-01-05 10:00" in `tz`, as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def epoch(text: str, tz: str = "UTC") -> int:
    return int(t(text, tz).timestamp())


class World:
    """Collects canonical records for one source, then writes them in one batch."""

    def __init__(self, store: Store, source: str = "zd") -> None:
        self.store = store
        self.source = source
        self.records: list[Record] = []
        self.ids = itertools.count(1000)

    def _add(self, record: Record) -> Record:
        self.records.append(record)
        return record

    def commit(self) -> None:
        self.store.write_batch(self.source, "test", self.records, None)
        self.records = []

    # -- people ---------------------------------------------------------------------------------
    def agent(self, uid: str, name: str, bot: bool = False, hourly_cost: float | None = None) -> None:
        self._add(User(external_id=uid, name=name, role="bot" if bot else "agent", is_bot=bot, hourly_cost=hourly_cost))

    def customer(self, uid: str, name: str = "", org: str | None = None, segment: dict[str, Any] | None = None,
                 email: str | None = None) -> None:
        self._add(User(external_id=uid, name=name or f"customer {uid}", role="customer", organization_id=org,
                       segment=segment, email=email))

    def group(self, gid: str, name: str) -> None:
        self._add(Group(external_id=gid, name=name))

    def org(self, oid: str, name: str, tier: str | None = None) -> None:
        self._add(Organization(external_id=oid, name=name, tier=tier))

    def schedule(self, sid: str, tz: str, intervals: list[tuple[int, int, int]], holidays: list[tuple[str, str]] = (),
                 default: bool = True) -> None:  # type: ignore[assignment]
        self._add(Schedule(external_id=sid, tz=tz, intervals=intervals, holidays=list(holidays), is_default=default))

    # -- tickets --------------------------------------------------------------------------------
    def ticket(self, tid: str, created: str, status: str = "open", *, requester: str = "c1", assignee: str | None = None,
               group: str | None = None, channel: str = "email", **fields: Any) -> None:
        self._add(Ticket(
            external_id=tid, created_at=t(created), status=status, status_category=CATEGORY.get(status, status),
            requester_id=requester, assignee_id=assignee, group_id=group, channel=channel,
            url=f"https://acme.example/agent/tickets/{tid}", **fields,
        ))

    def msg(self, ticket: str, at: str, role: str, author: str | None = None, *, public: bool = True,
            automated: bool = False, via: str | None = None, chat: str | None = None, shared: bool = False) -> None:
        author = author if author is not None else ("c1" if role == "customer" else "a1")
        self._add(Message(
            external_id=str(next(self.ids)), ticket_id=ticket, created_at=t(at), author_id=author, author_role=role,
            is_public=public, is_automated=automated, via=via, chat_session_id=chat, is_shared_external=shared,
        ))

    def status(self, ticket: str, at: str, to: str, frm: str | None = None, via: str | None = "user",
               actor: str | None = None) -> None:
        self._add(TicketStatusEvent(
            external_id=str(next(self.ids)), ticket_id=ticket, at=t(at), from_status=frm, to_status=to,
            from_category=CATEGORY.get(frm) if frm else None, to_category=CATEGORY[to], via=via, actor_id=actor,
        ))

    def lifecycle(self, ticket: str, *steps: tuple[str, str], via: str | None = "user") -> None:
        """Status path: ("2026-01-05 10:00", "new"), ("...", "solved"), ..."""
        previous = None
        for at, status in steps:
            self.status(ticket, at, status, previous, via=via)
            previous = status

    def assign(self, ticket: str, at: str, field: str, value: str | None, previous: str | None = None) -> None:
        self._add(TicketAssignmentEvent(
            external_id=str(next(self.ids)), ticket_id=ticket, at=t(at), field=field, value_id=value, previous_id=previous,
        ))

    def rating(self, ticket: str | None, score: str | float | None, *, responded: str | None, offered: str | None = None,
               kind: str = "csat", scale: tuple[float, float] = (0, 1), agent: str | None = None, comment: str | None = None,
               rid: str | None = None, sentiment: int | None = None, updated: str | None = None) -> None:
        value: float | None
        if score in ("good", "bad"):
            value, mood = (1.0, 1) if score == "good" else (0.0, -1)
        else:
            value, mood = (float(score) if score is not None else None), sentiment
        self._add(Rating(
            external_id=rid or str(next(self.ids)), ticket_id=ticket, kind=kind, scale_min=scale[0], scale_max=scale[1],
            raw_value=None if score is None else str(score), value=value, sentiment=mood,
            offered_at=t(offered) if offered else None, responded_at=t(responded) if responded else None,
            updated_at=t(updated) if updated else None, agent_id=agent, comment=comment,
        ))

    def time_entry(self, ticket: str, at: str, seconds: int, agent: str = "a1") -> None:
        self._add(TimeEntry(external_id=str(next(self.ids)), ticket_id=ticket, agent_id=agent, seconds=seconds, executed_at=t(at)))

    def call(self, ticket: str, at: str, talk: int, hold: int = 0, wrap: int = 0, agent: str = "a1") -> None:
        self._add(Call(external_id=str(next(self.ids)), ticket_id=ticket, agent_id=agent, started_at=t(at), talk_s=talk,
                       hold_s=hold, wrap_up_s=wrap))

    def macro(self, ticket: str, at: str, title: str, agent: str = "a1") -> None:
        self._add(MacroApplication(external_id=str(next(self.ids)), ticket_id=ticket, macro_id=title, macro_title=title,
                                   agent_id=agent, applied_at=t(at)))

    def sla(self, ticket: str, at: str, metric: str, kind: str, minutes: float | None = None, business: bool = False,
            instance: str | None = "1") -> None:
        self._add(SlaEvent(external_id=str(next(self.ids)), ticket_id=ticket, metric=metric, type=kind, at=t(at),
                           target_minutes=minutes, business_hours=business, instance_id=instance))

    def mention(self, post: str, at: str, platform: str = "mastodon", term: str = "acme", own: bool = False) -> None:
        self._add(SocialMention(external_id=post, platform=platform, kind="mention", matched_term=term, posted_at=t(at),
                                is_own_account=own, url=f"https://{platform}.example/{post}"))
