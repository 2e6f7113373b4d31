"""Zendesk runs the conformance suite (kpisync.testing) against its simulator.

Expected rows follow Zendesk's rules as tests/zendesk/conftest.py spells them out: deleted and
spam tickets are flagged deleted, merged ones are flagged merged, and a comment's role is its
author's, automated authors (bot, triggers, merges) being "bot" or "system"; a ticket's rating
record is its survey, listed from the moment it is offered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kpisync.connectors.zendesk import ZendeskConnector
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world
from kpisync.fixtures.zendesk_sim import ZendeskSimulator
from kpisync.testing import ConformanceSuite, Expected, Harness

TOKEN = "zd-conformance-token-8472"
RATING_ID = 5 * 10**12
END = datetime(2026, 9, 30, 18, 0, tzinfo=UTC)


class ZendeskHarness(Harness):
    source = "zendesk"
    connector_class = ZendeskConnector
    time_scale = 3000.0
    # `tickets` reads the agent list first (comment roles); `schedules` reads each schedule's holidays;
    # `ticket_events` reads the Time Tracking app's field ids.
    noop_requests = {"tickets": 2, "schedules": 2, "ticket_events": 2}

    def world(self) -> World:
        return generate_world(seed=5, start=END - timedelta(days=12), end=END, tickets_per_day=8)

    def simulator(self, world: World) -> ZendeskSimulator:
        clock = SimClock(world.now + timedelta(minutes=2), scale=self.time_scale)
        return ZendeskSimulator(world, clock=clock, api_token=TOKEN)

    def settings(self, sim: ZendeskSimulator) -> dict[str, Any]:
        return {"subdomain": "acme", "email": sim.email, "api_token": TOKEN, "base_url": sim.url}

    def bad_settings(self, sim: ZendeskSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "api_token": "zd-wrong-token-1234"}

    def expected(self, world: World) -> Expected:
        tickets = {
            str(t.id): {
                "is_deleted": int(t.is_deleted or t.is_spam), "is_spam": int(t.is_spam),
                "is_merged": int(t.merged_into_id is not None), "is_outbound": int(t.is_outbound),
                **({} if t.is_deleted or t.is_spam else {"status": t.status}),
            }
            for t in world.tickets
        }  # fmt: skip
        messages = {}
        for c in world.all_comments():
            row: dict[str, Any] = {"ticket_id": str(c.ticket_id), "is_public": int(c.public), "body": None}
            if c.author_kind in ("customer", "agent"):
                row["author_role"] = c.author_kind
            messages[str(c.id)] = row
        # One legacy CSAT record per ticket, id 5e12 + ticket id: the answer, or the survey that went
        # out unanswered (score "offered": no sentiment) — solved email/web/API tickets the requester
        # asked for, not merged away, not spam.
        ratings = {str(RATING_ID + r.ticket_id): {"ticket_id": str(r.ticket_id), "sentiment": 1 if r.score > 0 else -1}
                   for r in world.ratings()}  # fmt: skip
        for t in world.tickets:
            surveyed = t.channel in ("email", "web", "api") and not (t.is_outbound or t.merged_into_id or t.is_spam)
            if t.rating is None and surveyed and world.first_solved_at(t) is not None:
                ratings[str(RATING_ID + t.id)] = {"ticket_id": str(t.id), "sentiment": None}
        users = {str(a.id): {"email": a.email} for a in world.agents} | {str(c.id): {"email": c.email} for c in world.customers}
        return {"tickets": tickets, "messages": messages, "ratings": ratings, "users": users}

    def scope(self, world: World) -> dict[str, str]:
        return {"users": "external_id > 0"}  # the export also lists Zendesk's system user (-1)

    def change(self, world: World, sim: ZendeskSimulator) -> None:
        t0 = world.now + timedelta(minutes=5)
        open_ticket = next(t for t in world.tickets if t.status == "open" and not t.is_deleted)
        world.add_comment(open_ticket.id, open_ticket.requester_id, True, t0)
        world.set_status(open_ticket.id, "solved", t0 + timedelta(minutes=10), world.admin().id)
        rated = next(t for t in world.tickets if t.rating is not None and not t.is_deleted)
        world.rate(rated.id, -2, "changed my mind", t0 + timedelta(minutes=20))
        victim = next(t for t in world.tickets if t.status == "closed" and not t.is_deleted)
        world.delete_ticket(victim.id, t0 + timedelta(minutes=30))
        world.add_ticket(world.customers[0].id, t0 + timedelta(minutes=40), subject="New one", channel="email")
        sim.sync_clock()


class TestZendeskConformance(ConformanceSuite):
    harness = ZendeskHarness()
