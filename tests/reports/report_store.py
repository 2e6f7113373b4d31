"""A hand-built store for the report tests: canonical records written with Store.write_batch,
then the facts refreshed, as a sync leaves them.

Four agents with figures that differ on purpose (so one agent's numbers can never pass for
another's), written in October 2026 (the report month), September 2026 (the previous month) and
October 2025 (the same month last year; September's replies took twice as long), plus one unassigned web ticket a day from August to
October 2026 (a baseline for spikes and forecasts) and a social spike on Tuesday 2026-10-20.

Agent   first reply after   October tickets        rating (Oct)             ticket ids
Ann     30 min              3, resolved, 1 reply   good "Ann fixed it ..."   ann-1..3
Bob     2 h                 2, resolved, 2 replies bad  "Bob took ..."      bob-1..2
Cem     5 h                 2, one still open      good "Cem explained ..."  cem-1..2
Dora    9 h                 1, still open          none                      dora-1

Ann's and Bob's tickets have resolution due dates; Bob's two resolutions come after theirs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kpisync.core.facts import refresh_facts
from kpisync.core.metrics.settings import MetricsSettings
from kpisync.core.models import (
    Group,
    Message,
    Order,
    Organization,
    Rating,
    Record,
    SocialMention,
    Ticket,
    TicketStatusEvent,
    User,
)
from kpisync.core.store import Store

UTC = timezone.utc
SETTINGS = MetricsSettings(timezone="UTC", min_resolved=1)
NOW = int(datetime(2026, 11, 15, tzinfo=UTC).timestamp())
MONTH = "2026-10"
CATEGORY = {"new": "new", "open": "open", "pending": "pending", "solved": "resolved", "closed": "closed"}

#: name, e-mail, first reply delay (minutes) per agent id.
AGENTS = {
    "a1": ("Ann Archer", "ann@acme.test", 30),
    "a2": ("Bob Baker", "bob@acme.test", 120),
    "a3": ("Cem Cruz", "cem@acme.test", 300),
    "a4": ("Dora Diaz", "dora@acme.test", 540),
}
COMMENTS = {"a1": "Ann fixed it in minutes", "a2": "Bob took days to answer", "a3": "Cem explained everything"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Builder:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.serial = 0

    def add(self, record: Record) -> None:
        self.records.append(record)

    def next_id(self) -> str:
        self.serial += 1
        return f"e{self.serial}"

    def ticket(self, tid: str, created: datetime, *, agent: str | None, group: str = "g1", channel: str = "email",
               requester: str = "c1", org: str | None = "o1", replies: list[datetime] = (),  # type: ignore[assignment]
               solved: datetime | None = None, due: datetime | None = None, frt_due: datetime | None = None) -> None:
        status = "solved" if solved else ("open" if replies else "new")
        self.add(Ticket(external_id=tid, created_at=created, status=status, status_category=CATEGORY[status],
                        requester_id=requester, assignee_id=agent, group_id=group, channel=channel,
                        is_social=channel == "social", organization_id=org, resolution_due_at=due,
                        first_response_due_at=frt_due, url=f"https://acme.example/tickets/{tid}"))
        self.add(Message(external_id=self.next_id(), ticket_id=tid, created_at=created, author_id=requester,
                         author_role="customer", is_public=True))
        for reply in replies:
            self.add(Message(external_id=self.next_id(), ticket_id=tid, created_at=reply, author_id=agent,
                             author_role="agent", is_public=True))
        steps = [(created, "new")] + ([(replies[0], "open")] if replies else []) + ([(solved, "solved")] if solved else [])
        previous = None
        for when, to in steps:
            self.add(TicketStatusEvent(external_id=self.next_id(), ticket_id=tid, at=when, from_status=previous, to_status=to,
                                       from_category=CATEGORY.get(previous) if previous else None,
                                       to_category=CATEGORY[to], via="user"))
            previous = to

    def rating(self, tid: str, good: bool, when: datetime, agent: str, comment: str | None = None) -> None:
        self.add(Rating(external_id=self.next_id(), ticket_id=tid, kind="csat", scale_min=0, scale_max=1,
                        raw_value="good" if good else "bad", value=1.0 if good else 0.0, sentiment=1 if good else -1,
                        offered_at=when - timedelta(hours=1), responded_at=when, agent_id=agent, comment=comment))


def _agent_month(b: Builder, start: date, prefix: str = "", slower: int = 1) -> None:
    """Each agent's tickets of one month, starting on `start` (a Monday); `slower` multiplies reply delays."""
    base = datetime(start.year, start.month, start.day, 9, tzinfo=UTC)
    plan = {"a1": 3, "a2": 2, "a3": 2, "a4": 1}
    for agent, count in plan.items():
        name, _, delay = AGENTS[agent]
        key = name.split()[0].lower()
        for i in range(count):
            tid = f"{prefix}{key}-{i + 1}"
            created = base + timedelta(days=i, hours=int(agent[1]))
            first = created + timedelta(minutes=delay * slower)
            replies = [first] + ([first + timedelta(hours=3)] if agent == "a2" else [])
            open_now = agent == "a4" or (agent == "a3" and i == 1)
            solved = None if open_now else first + timedelta(hours=6 + 2 * int(agent[1]))
            due = created + timedelta(hours={"a1": 12, "a2": 10}[agent]) if agent in ("a1", "a2") else None
            b.ticket(tid, created, agent=agent, group="g2" if agent == "a3" else "g1", replies=replies, solved=solved,
                     due=due, frt_due=created + timedelta(hours=1), requester=f"c{int(agent[1])}",
                     org="o1" if agent in ("a1", "a3") else "o2", channel="chat" if agent == "a2" else "email")


def build(path: Path) -> Store:
    store = Store(path)
    b = Builder()
    for agent, (name, email, _) in AGENTS.items():
        b.add(User(external_id=agent, name=name, email=email, role="agent"))
    b.add(User(external_id="b1", name="Answer Bot", email="bot@acme.test", role="bot", is_bot=True))
    for n in range(1, 6):
        b.add(User(external_id=f"c{n}", name=f"Customer {n}", email=f"customer{n}@example.com", role="customer"))
    b.add(Group(external_id="g1", name="Tier 1"))
    b.add(Group(external_id="g2", name="R&D <Team>"))  # escaping in HTML and Markdown
    b.add(Organization(external_id="o1", name="BigCo", tier="enterprise"))
    b.add(Organization(external_id="o2", name="SmallCo", tier="free"))

    _agent_month(b, date(2026, 10, 5))                 # report month
    _agent_month(b, date(2026, 9, 7), prefix="sep-", slower=2)   # previous month: replies took twice as long
    _agent_month(b, date(2025, 10, 6), prefix="y-")    # same month last year
    b.rating("ann-1", True, at("2026-10-09 12:00"), "a1", COMMENTS["a1"])
    b.rating("ann-2", True, at("2026-10-09 13:00"), "a1")
    b.rating("bob-1", False, at("2026-10-09 14:00"), "a2", COMMENTS["a2"])
    b.rating("cem-1", True, at("2026-10-09 15:00"), "a3", COMMENTS["a3"])
    b.rating("sep-ann-1", False, at("2026-09-10 12:00"), "a1")
    b.rating("sep-bob-1", True, at("2026-09-10 13:00"), "a2")

    # one unassigned web ticket a day from August to October 2026, one a month before that
    day = date(2026, 8, 1)
    while day <= date(2026, 10, 31):
        b.ticket(f"bg-{day.isoformat()}", datetime(day.year, day.month, day.day, 11, tzinfo=UTC), agent=None,
                 channel="web", requester="c5", org=None)
        day += timedelta(days=1)
    for month in range(11, 20):  # Nov 2025 .. Jul 2026
        year, mon = 2025 + (month - 1) // 12, (month - 1) % 12 + 1
        b.ticket(f"m-{year}-{mon:02d}", datetime(year, mon, 15, 10, tzinfo=UTC), agent=None, channel="web",
                 requester="c5", org=None)
    # a social spike: 12 tickets on Tuesday 2026-10-20
    for i in range(12):
        b.ticket(f"spike-{i}", at("2026-10-20 08:00") + timedelta(minutes=20 * i), agent=None, channel="social",
                 group="g1", requester="c4", org=None)
    records: list[Any] = b.records
    store.write_batch("zd", "test", records, None)
    store.write_batch("mastodon", "mentions", [
        SocialMention(external_id=f"post-{i}", platform="mastodon", kind="mention", matched_term="acme",
                      posted_at=at("2026-10-12 10:00") + timedelta(hours=i), url=f"https://social.example/{i}")
        for i in range(5)
    ] + [SocialMention(external_id="post-sep", platform="mastodon", kind="mention", matched_term="acme",
                       posted_at=at("2026-09-12 10:00"), url="https://social.example/sep")], None)
    store.write_batch("shop", "orders", [
        # customer 1 (Ann's requester) buys a day after ann-1 was created: a converted ticket
        Order(external_id="o-1", platform="shopify", customer_email="Customer1@example.com",
              created_at=at("2026-10-06 10:00"), total="49.90", currency="EUR"),
    ], None)
    refresh_facts(store, settings=SETTINGS)
    return store
