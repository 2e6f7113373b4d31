"""Help Scout — the connector written only with the SDK — runs the conformance suite.

Expected rows spell out Help Scout's rules from the world: statuses active/pending/closed/spam
(new and open are active, hold is pending, solved and closed are closed), merged-away
conversations are not listed, a deleted one is flagged, automation posts are not threads, AI
replies come from a "user" that is not an invited user (role bot), and a rating belongs to the
last reply before it (key: that thread).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.helpscout import HelpScoutConnector
from kpisync.fixtures.helpscout_sim import HelpScoutSim
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import SYSTEM_USER_ID, World, generate_world
from kpisync.testing import ConformanceSuite, Expected, Harness

CLIENT_ID, SECRET = "hs-conformance-app", "hs-conformance-secret-7731"
STATUS = {"new": "active", "open": "active", "pending": "pending", "hold": "pending", "solved": "closed", "closed": "closed"}
CATEGORY = {"active": "open", "pending": "pending", "closed": "closed", "spam": "deleted"}
FACE = {1: "great", 0: "ok", -1: "not-good"}


class HelpScoutHarness(Harness):
    source = "helpscout"
    connector_class = HelpScoutConnector
    time_scale = 1000.0

    def world(self) -> World:
        # Ratings are read by time range up to "now": the world ends now, as a live account does.
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        return generate_world(seed=17, start=end - timedelta(days=12), end=end, tickets_per_day=8)

    def simulator(self, world: World) -> HelpScoutSim:
        clock = SimClock(world.now, scale=self.time_scale)
        return HelpScoutSim(world, client_id=CLIENT_ID, client_secret=SECRET, clock=clock)

    def settings(self, sim: HelpScoutSim) -> dict[str, Any]:
        return {"base_url": sim.url, "client_id": CLIENT_ID, "client_secret": SecretStr(SECRET),
                "start_date": sim.world.start - timedelta(days=1)}  # fmt: skip

    def bad_settings(self, sim: HelpScoutSim) -> dict[str, Any]:
        return {**self.settings(sim), "client_secret": SecretStr("hs-wrong-secret-0000")}

    def expected(self, world: World) -> Expected:
        listed = [t for t in world.tickets if t.merged_into_id is None]
        tickets, messages, ratings = {}, {}, {}
        for t in listed:
            status = "spam" if t.is_spam else STATUS[t.status]
            tickets[str(t.id)] = {"status": status, "status_category": "deleted" if t.is_deleted else CATEGORY[status],
                                  "is_spam": int(t.is_spam), "is_deleted": int(t.is_deleted), "is_outbound": int(t.is_outbound),
                                  "requester_id": str(t.requester_id), "assignee_id": None if t.assignee_id is None else str(t.assignee_id)}  # fmt: skip
            threads = [c for c in t.comments if c.author_kind != "system" and c.author_id != SYSTEM_USER_ID]
            for c in threads:
                messages[str(c.id)] = {"ticket_id": str(t.id), "author_id": str(c.author_id), "author_role": c.author_kind,
                                       "is_public": int(c.public or c.author_kind == "customer")}  # fmt: skip
            if t.rating is not None:
                replies = [c for c in threads if c.author_kind != "customer" and c.public and c.created_at <= t.rating.updated_at]
                if replies:
                    sign = (t.rating.score > 0) - (t.rating.score < 0)
                    ratings[str(replies[-1].id)] = {"ticket_id": str(t.id), "raw_value": FACE[sign], "sentiment": sign,
                                                    "comment": t.rating.comment}  # fmt: skip
        users = {str(a.id): {"role": "admin" if a.role == "admin" else "agent", "email": a.email} for a in world.agents if not a.is_bot}
        users |= {str(c.id): {"role": "customer", "email": c.email} for c in world.customers}
        return {"tickets": tickets, "messages": messages, "ratings": ratings, "users": users}

    def change(self, world: World, sim: HelpScoutSim) -> None:
        at = world.now + timedelta(minutes=5)
        agent = next(a for a in world.agents if not a.is_bot and a.role == "agent")
        world.add_ticket(world.customers[2].id, at, subject="Where is my order?", channel="web")
        open_ticket = next(t for t in world.tickets if t.status in ("open", "new") and not t.is_spam and not t.is_deleted
                           and t.merged_into_id is None)  # fmt: skip
        world.add_comment(open_ticket.id, agent.id, True, at + timedelta(minutes=1), status="solved")
        world.rate(open_ticket.id, 2, "Quick, thanks", at + timedelta(minutes=20))
        victim = next(t for t in world.tickets if t.status == "closed" and not t.is_deleted and t.merged_into_id is None)
        world.delete_ticket(victim.id, at + timedelta(minutes=30))
        world.update_user(world.customers[5].id, at + timedelta(minutes=40), email="renamed@example.net")


class TestHelpScoutConformance(ConformanceSuite):
    harness = HelpScoutHarness()
