"""Quality KPIs on a hand-built day of tickets (01-05); expected values worked out per ticket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.core.metrics.engine import evaluate
from kpisync.core.store import Store

DAY = {"since": "2026-01-05", "until": "2026-01-06", "now": epoch("2026-01-10 00:00")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("quality") / "s.db")
    w = World(s)
    w.agent("a1", "Ann")
    w.agent("a2", "Bob")
    w.agent("b1", "Answer Bot", bot=True)
    # T1: one reply, a customer "thanks", solved; resolution due met, first reply due missed.
    w.ticket("1", "2026-01-05 09:00", "solved", assignee="a1", resolution_due_at=t("2026-01-05 12:00"),
             first_response_due_at=t("2026-01-05 09:30"))
    w.msg("1", "2026-01-05 09:00", "customer")
    w.msg("1", "2026-01-05 10:00", "agent", "a1")
    w.msg("1", "2026-01-05 10:30", "customer")
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 11:00", "solved"))
    w.rating("1", "good", offered="2026-01-06 09:00", responded="2026-01-06 10:00", rid="r1", agent="a1")
    # T2: solved, reopened, handed to Bob, solved again after its due date.
    w.ticket("2", "2026-01-05 09:00", "solved", assignee="a2", resolution_due_at=t("2026-01-05 12:00"))
    w.assign("2", "2026-01-05 09:00", "assignee", "a1")
    w.assign("2", "2026-01-05 11:30", "assignee", "a2", "a1")
    w.msg("2", "2026-01-05 09:00", "customer")
    w.msg("2", "2026-01-05 09:30", "agent", "a1")
    w.msg("2", "2026-01-05 12:00", "agent", "a2")
    w.lifecycle("2", ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "solved"), ("2026-01-05 11:00", "open"),
                ("2026-01-05 13:00", "solved"))
    w.rating("2", 4, scale=(1, 5), responded="2026-01-05 14:00", comment="ok")
    # T3: answered by a bot only, solved by a rule: an automated resolution; survey offered, no answer.
    w.ticket("3", "2026-01-05 09:00", "solved")
    w.msg("3", "2026-01-05 09:00", "customer")
    w.msg("3", "2026-01-05 09:01", "bot", "b1", automated=True)
    w.lifecycle("3", ("2026-01-05 09:00", "new"))
    w.status("3", "2026-01-05 09:05", "solved", "new", via="rule", actor="-1")
    w.rating("3", None, offered="2026-01-05 10:00", responded=None)
    # T4: agent-created, the customer answered, solved.
    w.ticket("4", "2026-01-05 09:00", "solved")
    w.msg("4", "2026-01-05 09:00", "agent", "a1")
    w.msg("4", "2026-01-05 10:00", "customer")
    w.msg("4", "2026-01-05 11:00", "agent", "a1")
    w.lifecycle("4", ("2026-01-05 09:00", "open"), ("2026-01-05 15:00", "solved"))
    # T5: still open.
    w.ticket("5", "2026-01-05 09:00", "open")
    w.msg("5", "2026-01-05 09:00", "customer")
    w.lifecycle("5", ("2026-01-05 09:00", "new"))
    # T6: created the day before, one reply, solved on 01-05; unhappy rating with a comment.
    w.ticket("6", "2026-01-04 10:00", "solved", assignee="a1")
    w.msg("6", "2026-01-04 10:00", "customer")
    w.msg("6", "2026-01-04 11:00", "agent", "a1")
    w.lifecycle("6", ("2026-01-04 10:00", "new"), ("2026-01-05 16:00", "solved"))
    w.rating("6", 2, scale=(1, 5), responded="2026-01-05 17:00", agent="a1", comment="slow")
    # NPS: three survey answers without a ticket and one on T1.
    for score in (10, 9, 6):
        w.rating(None, score, kind="nps", scale=(0, 10), responded="2026-01-05 12:00")
    w.rating("1", 8, kind="nps", scale=(0, 10), responded="2026-01-05 12:00")
    w.commit()
    # The customer changes T1's rating from good to bad: the latest answer wins.
    w.rating("1", "bad", offered="2026-01-06 09:00", responded="2026-01-06 11:00", rid="r1", agent="a1")
    w.commit()
    yield s
    s.close()


def one(store: Store, kpi: str, **options: object) -> dict:
    [row] = evaluate(store, kpi, **{**DAY, **options}).rows  # type: ignore[arg-type]
    return row


def test_sla_compliance(store: Store) -> None:
    row = one(store, "sla_compliance")
    # due dates: T1 met (11:00 ≤ 12:00), T2 missed (13:00); T3, T4, T6 resolved without one
    assert (row["value"], row["numerator"], row["count"], row["excluded"]) == (0.5, 1, 2, 3)
    assert (row["first_reply_rate"], row["first_reply_count"]) == (0.0, 1)  # T1 replied 10:00 > 09:30


def test_csat_latest_answer_scales_and_response_rate(store: Store) -> None:
    row = one(store, "csat")
    # received on 01-05: T2 4/5 (satisfied), T6 2/5 (unsatisfied); offered: T2, T3, T6 (T2/T6 at their solve)
    assert (row["value"], row["satisfied"], row["unsatisfied"], row["count"]) == (0.5, 1, 1, 2)
    assert (row["mean_score"], row["scale"]) == (3.0, "1 to 5")
    assert (row["offered"], row["response_rate"]) == (3, round(2 / 3, 6))
    assert [c["comment"] for c in row["comments"]] == ["slow", "ok"]


def test_csat_rating_changed_keeps_the_latest(store: Store) -> None:
    row = one(store, "csat", until="2026-01-07")
    # T1 good → bad (01-06 11:00): 1 satisfied out of 3
    assert (row["satisfied"], row["unsatisfied"], row["count"]) == (1, 2, 3)


def test_csat_credits_the_assignee_at_rating_time(store: Store) -> None:
    got = {r["group"]: r["value"] for r in evaluate(store, "csat", by="agent", **DAY).rows}
    # T2's rating names no agent: Bob was assigned at 14:00; T3's unanswered offer has nobody to credit
    assert got == {"Ann": 0.0, "Bob": 1.0, "unassigned": None}


def test_nps(store: Store) -> None:
    row = one(store, "nps")
    # 10, 9 promoters; 8 passive; 6 detractor → 100 × (2 − 1) / 4
    assert (row["value"], row["promoters"], row["passives"], row["detractors"]) == (25.0, 2, 1, 1)


def test_one_touch_resolution(store: Store) -> None:
    row = one(store, "one_touch_resolution")
    # inbound resolved: T1 (1 reply) ✓, T2 (2 replies, reopened) ✗, T6 (1 reply) ✓; T3 has 0 replies
    assert (row["value"], row["numerator"], row["count"], row["zero_reply"]) == (round(2 / 3, 6), 2, 3, 1)


def test_first_contact_resolution(store: Store) -> None:
    row = one(store, "first_contact_resolution")
    # ✓ T3 and T6; ✗ T1 ("thanks" follow-up), T2 (reopened), T4 (customer answered)
    assert (row["value"], row["numerator"], row["count"]) == (0.4, 2, 5)


def test_resolution_rate_and_throughput(store: Store) -> None:
    row = one(store, "resolution_rate")
    # created on 01-05: T1-T5, resolved now: T1-T4; resolution events on 01-05: T1, T2, T3, T4, T6
    assert (row["value"], row["count"], row["resolved_in_period"], row["throughput"]) == (0.8, 5, 5, 1.0)


def test_reopen_rate(store: Store) -> None:
    assert one(store, "reopen_rate")["value"] == 0.2  # T2 of the five resolved


def test_replies_per_ticket(store: Store) -> None:
    row = one(store, "replies_per_ticket")
    # T1 1, T2 2, T3 0, T4 1 (its agent-written description does not count), T6 1
    assert (row["value"], row["median"], row["p90"], row["count"]) == (1.0, 1.0, 1.6, 5)


def test_automated_resolution_rate(store: Store) -> None:
    row = one(store, "automated_resolution_rate")
    assert (row["value"], row["numerator"], row["count"]) == (0.2, 1, 5)


def test_a_source_that_never_shows_automation_has_no_automated_rate_rather_than_zero(tmp_path: Path) -> None:
    """Freshdesk-like data (no bot messages, a status history that does not say who changed
    it) cannot tell an automated resolution from a human one: null with a note, while a source
    that can tell counts (and is not diluted by the other's tickets in the total)."""
    with Store(tmp_path / "s.db") as s:
        zd, fd = World(s, "zd"), World(s, "fd")
        zd.agent("b1", "Answer Bot", bot=True)
        for w in (zd, fd):
            w.ticket("1", "2026-01-05 09:00", "solved")
            w.msg("1", "2026-01-05 09:00", "customer")
        zd.msg("1", "2026-01-05 09:01", "bot", "b1", automated=True)
        zd.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "solved"), via="rule")
        fd.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "solved"), via=None)
        for w in (zd, fd):
            w.commit()
        result = evaluate(s, "automated_resolution_rate", by="source", **DAY)
        assert {r["group"]: r["value"] for r in result.rows} == {"fd": None, "zd": 1.0}
        assert any(n.startswith("source fd shows no bot replies") for n in result.notes)
        total = one(s, "automated_resolution_rate")  # fd's ticket is not counted as "not automated"
        assert (total["value"], total["numerator"], total["count"]) == (1.0, 1, 1)


def test_resolution_kpis_credit_the_assignee_at_the_last_resolution(store: Store) -> None:
    got = {r["group"]: r["count"] for r in evaluate(store, "reopen_rate", by="agent", **DAY).rows}
    # T2 resolved last while assigned to Bob; T1, T6 Ann; T3, T4 unassigned
    assert got == {"Ann": 2, "Bob": 1, "unassigned": 2}
