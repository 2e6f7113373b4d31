"""Freshdesk runs the conformance suite (kpisync.testing) against its simulator.

Expected rows follow Freshdesk's rules as tests/connectors/test_freshdesk.py spells them out:
no "new" status (solved → resolved), the description is the first message, acknowledgements
and automation posts are not conversations, ratings are 103 … −103.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.freshdesk import FreshdeskConnector
from kpisync.fixtures.freshdesk_sim import FreshdeskSim
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import SYSTEM_USER_ID, World, generate_world
from kpisync.testing import ConformanceSuite, Expected, Harness

KEY = "fd-conformance-key-5521"
START = datetime(2026, 3, 1, tzinfo=UTC)
CATEGORY = {"new": "open", "open": "open", "pending": "pending", "hold": "hold", "solved": "resolved", "closed": "closed"}


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


class FreshdeskHarness(Harness):
    source = "freshdesk"
    connector_class = FreshdeskConnector
    time_scale = 1000.0
    # `tickets` reads the account's ticket-field labels (custom statuses) once per run.
    noop_requests = {"tickets": 2}

    def world(self) -> World:
        return generate_world(seed=11, start=START, end=START + timedelta(days=12), tickets_per_day=8)

    def simulator(self, world: World) -> FreshdeskSim:
        return FreshdeskSim(world, api_key=KEY, clock=SimClock(world.now, scale=self.time_scale))

    def settings(self, sim: FreshdeskSim) -> dict[str, Any]:
        return {"base_url": sim.url, "api_key": SecretStr(KEY)}

    def bad_settings(self, sim: FreshdeskSim) -> dict[str, Any]:
        return {"base_url": sim.url, "api_key": SecretStr("fd-wrong-key-0000")}

    def expected(self, world: World) -> Expected:
        tickets = {
            str(t.id): {"status_category": "deleted" if t.is_deleted else CATEGORY[t.status], "is_spam": int(t.is_spam),
                        "is_deleted": int(t.is_deleted), "requester_id": str(t.requester_id),
                        "assignee_id": _s(t.assignee_id), "priority": t.priority}
            for t in world.tickets
        }  # fmt: skip
        messages: dict[str, dict[str, Any]] = {}
        for t in world.tickets:
            if t.is_spam or t.is_deleted:
                continue
            author = t.assignee_id if t.is_outbound else t.requester_id
            messages[f"{t.id}:description"] = {"ticket_id": str(t.id), "author_id": _s(author), "is_public": 1}
            for c in t.comments[1:]:
                if c.author_kind == "bot" or c.author_id == SYSTEM_USER_ID:
                    continue
                role = "customer" if c.author_kind == "customer" else "agent"
                messages[str(c.id)] = {"ticket_id": str(t.id), "author_id": str(c.author_id), "author_role": role, "is_public": int(c.public)}
        users = {str(a.id): {"role": "agent", "email": a.email} for a in world.agents if not a.is_bot}
        users |= {str(c.id): {"role": "customer", "email": c.email} for c in world.customers}
        ratings = {
            str(r.id): {"ticket_id": str(r.ticket_id), "raw_value": str(100 + r.score if r.score >= 0 else -100 + r.score)}
            for r in world.ratings()
        }
        entries = {str(e.id): {"ticket_id": str(e.ticket_id), "seconds": e.seconds // 60 * 60} for e in world.time_entries()}
        return {"tickets": tickets, "messages": messages, "users": users, "ratings": ratings, "time_entries": entries}

    def scope(self, world: World) -> dict[str, str]:
        live = ",".join(f"'{t.id}'" for t in world.tickets if not t.is_spam and not t.is_deleted)
        return {"messages": f"ticket_id IN ({live})"}  # a deleted ticket keeps its history

    def change(self, world: World, sim: FreshdeskSim) -> None:
        at = world.now + timedelta(minutes=5)
        agent = next(a for a in world.agents if not a.is_bot)
        world.add_ticket(world.customers[3].id, at, subject="New!", channel="email")
        open_ticket = next(t for t in world.tickets if t.status in ("open", "pending") and not t.is_spam and not t.is_deleted)
        world.add_comment(open_ticket.id, agent.id, True, at + timedelta(minutes=1), status="solved")
        rated = max((t for t in world.tickets if t.rating and not t.is_deleted and t is not open_ticket),
                    key=lambda t: t.rating.created_at)  # type: ignore[union-attr]
        world.rate(rated.id, -3, "Changed my mind", max(at, rated.generated_at) + timedelta(minutes=2))
        victim = next(t for t in world.tickets if t.status == "closed" and not t.is_deleted and t is not rated)
        world.delete_ticket(victim.id, at + timedelta(minutes=3))


class TestFreshdeskConformance(ConformanceSuite):
    harness = FreshdeskHarness()
