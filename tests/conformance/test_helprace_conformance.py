"""Helprace runs the conformance suite (kpisync.testing) against its simulator.

Expected rows follow Helprace's rules as tests/connectors/test_helprace.py spells them out:
deleted and spam tickets vanish from the API (A5 in fixtures/helprace_sim.py), so a ticket gone
before the first sync never arrives and one that vanishes after it is kept, flagged deleted; a
ticket's messages are its description (by the submitter) plus the later comments by people
(no bot or system posts, A10); solved is "resolved"; bots are not users.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.helprace import HelpraceConnector
from kpisync.connectors.helprace.records import Tombstone
from kpisync.fixtures.helprace_sim import HelpraceSimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import Agent, World, generate_world
from kpisync.testing import ConformanceSuite, Expected, Harness

EMAIL, KEY = "ops@acme.test", "hr-conformance-key-6604"
START = datetime(2026, 4, 6, tzinfo=UTC)
END = START + timedelta(days=12)  # what the first sync sees; later deletions are flagged
CATEGORY = {"new": "new", "open": "open", "pending": "pending", "hold": "hold", "solved": "resolved", "closed": "closed"}


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class HelpraceHarness(Harness):
    source = "helprace"
    connector_class = HelpraceConnector
    time_scale = 1000.0
    # Helprace has no update filter (A3): a quiet sync still lists every ticket — 107 here, two
    # pages of 100 — and fetches replies only for tickets whose listing changed.
    noop_requests = {"tickets": 2}
    # A ticket that stops being listed (404) is written as a tombstone (connectors/helprace/records.py,
    # migration 003); a trigger flags the ticket row deleted.
    record_types = (Tombstone,)

    def world(self) -> World:
        return generate_world(seed=23, start=START, end=END, tickets_per_day=7)

    def simulator(self, world: World) -> HelpraceSimulator:
        clock = SimClock(world.now, scale=self.time_scale)
        return HelpraceSimulator(world, email=EMAIL, api_key=KEY, clock=clock)

    def settings(self, sim: HelpraceSimulator) -> dict[str, Any]:
        return {"base_url": sim.url, "email": EMAIL, "api_key": SecretStr(KEY)}

    def bad_settings(self, sim: HelpraceSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "api_key": SecretStr("hr-wrong-key-0000")}

    def secrets(self, sim: HelpraceSimulator) -> list[str]:
        """The key, and the Basic credentials it travels in."""
        return [*super().secrets(sim), base64.b64encode(f"{EMAIL}/api_key:{KEY}".encode()).decode()]

    def expected(self, world: World) -> Expected:
        tickets: dict[str, dict[str, Any]] = {}
        messages: dict[str, dict[str, Any]] = {}
        tombstones: dict[str, dict[str, Any]] = {}
        for tk in world.tickets:
            if tk.is_deleted or tk.is_spam:
                if tk.generated_at > END:  # seen by the first sync, gone since
                    tickets[str(tk.id)] = {"is_deleted": 1, "status_category": "deleted"}
                    tombstones[f"tickets:{tk.id}"] = {"object_table": "tickets", "object_id": str(tk.id)}
                continue
            tickets[str(tk.id)] = {
                "status_category": CATEGORY[tk.status], "priority": tk.priority, "requester_id": _s(tk.requester_id),
                "assignee_id": _s(tk.assignee_id), "group_id": _s(tk.group_id),
                "is_outbound": int(tk.submitter_id != tk.requester_id), "created_at": _iso(tk.created_at),
                "updated_at": _iso(tk.updated_at), "is_deleted": 0,
            }  # fmt: skip
            submitter_role = "agent" if isinstance(world.user(tk.submitter_id), Agent) else "customer"
            messages[f"{tk.id}-description"] = {"ticket_id": str(tk.id), "author_id": str(tk.submitter_id),
                                                "author_role": submitter_role, "is_public": 1,
                                                "created_at": _iso(tk.created_at)}  # fmt: skip
            for c in tk.comments[1:]:
                if c.author_kind in ("customer", "agent"):
                    messages[str(c.id)] = {"ticket_id": str(tk.id), "author_id": str(c.author_id), "author_role": c.author_kind,
                                           "is_public": int(c.public), "created_at": _iso(c.created_at)}  # fmt: skip
        users = {
            str(u.id): {"role": "customer" if not isinstance(u, Agent) else "admin" if u.role == "admin" else "agent"}
            for u in world.users() if not (isinstance(u, Agent) and u.is_bot)
        }  # fmt: skip
        return {"tickets": tickets, "messages": messages, "users": users, "tombstones": tombstones}

    def scope(self, world: World) -> dict[str, str]:
        live = ",".join(f"'{t.id}'" for t in world.tickets if not t.is_spam and not t.is_deleted)
        return {"messages": f"ticket_id IN ({live})"}  # a vanished ticket keeps its history

    def change(self, world: World, sim: HelpraceSimulator) -> None:
        at = world.now + timedelta(minutes=5)
        agent = next(a for a in world.agents if not a.is_bot and a.role == "agent")
        world.add_ticket(world.customers[4].id, at, subject="Invoice missing", channel="email")
        live = [t for t in world.tickets if not t.is_spam and not t.is_deleted]
        open_ticket = next(t for t in live if t.status in ("open", "pending"))
        world.add_comment(open_ticket.id, agent.id, False, at + timedelta(minutes=1), "internal: check logs")
        world.add_comment(open_ticket.id, agent.id, True, at + timedelta(minutes=2), status="solved")
        victim = next(t for t in live if t.status == "closed")
        world.delete_ticket(victim.id, at + timedelta(minutes=3))
        spam = next(t for t in live if t.status == "new" and t is not open_ticket)
        world.mark_spam(spam.id, at + timedelta(minutes=4))
        world.update_user(world.customers[6].id, at + timedelta(minutes=5), email="renamed@example.net")


class TestHelpraceConformance(ConformanceSuite):
    harness = HelpraceHarness()
