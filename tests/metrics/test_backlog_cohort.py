"""`backlog` and `overdue` with `--cohort created`, on a hand-built store with a fixed clock.

Cohort created = of the tickets created in a bucket, those still unresolved (past due) at the
bucket's end — or at now for the bucket containing now. Every figure below is worked out from the
ticket times in `store()`; the clock is Wed 2026-03-04 12:00 UTC, so 03-05 lies in the future.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch, t

from kpisync.core.errors import KpisyncError
from kpisync.core.metrics.engine import evaluate
from kpisync.core.store import Store

NOW = epoch("2026-03-04 12:00")
DAYS = {"since": "2026-03-02", "until": "2026-03-06", "period": "day", "now": NOW}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("cohort") / "s.db")
    w = World(s)
    w.agent("a1", "Ann")
    w.agent("a2", "Bob")

    def inbound(tid: str, created: str, status: str, *steps: tuple[str, str], **fields: object) -> None:
        w.ticket(tid, created, status, assignee="a1", **fields)  # type: ignore[arg-type]
        w.msg(tid, created, "customer")
        w.lifecycle(tid, (created, "new"), *steps)

    # -- created Mon 03-02 ----------------------------------------------------------------------
    # T1: solved the same afternoon -> not open at 03-02 23:59:59.
    inbound("1", "2026-03-02 09:00", "solved", ("2026-03-02 15:00", "solved"))
    # T2: solved 12:00, REOPENED 18:00 (before the day ends), solved 03-03 09:00 -> open at the
    # end of 03-02; handed from Ann to Bob at 17:00, so Bob holds it at the snapshot.
    inbound("2", "2026-03-02 10:00", "solved", ("2026-03-02 12:00", "solved"), ("2026-03-02 18:00", "open"),
            ("2026-03-03 09:00", "solved"), resolution_due_at=t("2026-03-03 12:00"))
    w.assign("2", "2026-03-02 10:00", "assignee", "a1")
    w.assign("2", "2026-03-02 17:00", "assignee", "a2", "a1")
    # T3: solved 13:00, reopened only on 03-03 08:00 and open since -> resolved at the end of 03-02.
    inbound("3", "2026-03-02 11:00", "open", ("2026-03-02 13:00", "solved"), ("2026-03-03 08:00", "open"))
    # T4 spam and T5 deleted: open and past due, never counted.
    inbound("4", "2026-03-02 12:00", "open", is_spam=True, resolution_due_at=t("2026-03-02 13:00"))
    inbound("5", "2026-03-02 14:00", "open", is_deleted=True, resolution_due_at=t("2026-03-02 15:00"))
    # T8: open, resolution due 20:00 and first reply due 17:00, never answered.
    inbound("8", "2026-03-02 16:00", "open", resolution_due_at=t("2026-03-02 20:00"),
            first_response_due_at=t("2026-03-02 17:00"))
    # -- created Tue 03-03 ----------------------------------------------------------------------
    inbound("6", "2026-03-03 09:00", "open", resolution_due_at=t("2026-03-03 12:00"))   # overdue by the evening
    inbound("7", "2026-03-03 10:00", "solved", ("2026-03-04 11:00", "solved"),
            resolution_due_at=t("2026-03-04 10:00"))                                     # open, not yet due on 03-03
    # -- created Wed 03-04 (today; now = 12:00) -------------------------------------------------
    inbound("9", "2026-03-04 09:00", "open", resolution_due_at=t("2026-03-04 10:00"))   # overdue at now
    inbound("10", "2026-03-04 11:00", "solved", ("2026-03-04 11:30", "solved"))         # resolved before now
    # T12: solved at 20:00, after now -> open when measured at now (at the day's end it would not be).
    inbound("12", "2026-03-04 08:00", "solved", ("2026-03-04 20:00", "solved"), resolution_due_at=t("2026-03-04 18:00"))
    w.commit()
    yield s
    s.close()


def values(store: Store, kpi: str, field: str = "value", **options: object) -> list:
    return [r[field] for r in evaluate(store, kpi, **{**DAYS, **options}).rows]  # type: ignore[arg-type]


def test_backlog_by_event_time_for_contrast(store: Store) -> None:
    # 03-02 end: T2 (reopened), T8. 03-03 end: T3 (reopened), T6, T7, T8. 03-04 at now 12:00:
    # T3, T6, T8, T9, T12 (T7 solved 11:00, T10 11:30). 03-05: in the future -> no value.
    assert values(store, "backlog") == [2, 4, 5, None]


def test_backlog_cohort_created_counts_the_bucket_s_tickets_still_open_at_its_end(store: Store) -> None:
    # 03-02: T2 (reopened before midnight) and T8 — not T1 (solved), T3 (reopened only the next
    # day), T4 (spam) or T5 (deleted). 03-03: T6, T7. 03-04 at now: T9 and T12, not T10.
    assert values(store, "backlog", cohort="created") == [2, 2, 2, None]


def test_backlog_cohort_created_by_agent_uses_the_assignee_at_the_snapshot(store: Store) -> None:
    rows = evaluate(store, "backlog", cohort="created", by="agent", **DAYS).rows
    got = {(r["period"], r["group"]): r["value"] for r in rows}
    assert got[("2026-03-02", "Ann")] == 1 and got[("2026-03-02", "Bob")] == 1  # T8 / T2 (handed over at 17:00)
    assert got[("2026-03-05", "Ann")] is None and got[("2026-03-05", "Bob")] is None


def test_backlog_cohort_created_over_one_bucket(store: Store) -> None:
    # the whole window is one bucket that contains now: created 03-02..03-04, open at now 12:00:
    # T3 (reopened), T6, T8, T9, T12.
    result = evaluate(store, "backlog", cohort="created", since="2026-03-02", until="2026-03-06", now=NOW)
    assert [r["value"] for r in result.rows] == [5]
    assert result.params["cohort"] == "created"


def test_overdue_cohort_created(store: Store) -> None:
    # 03-02: T8 (due 20:00; T2 is due only on 03-03; T4/T5 excluded). 03-03: T6 (T7 due 03-04).
    # 03-04 at now: T9 (T12 is due at 18:00, after now).
    assert values(store, "overdue", cohort="created") == [1, 1, 1, None]
    # first reply: only T8 (due 17:00, never answered), in its creation bucket only
    assert values(store, "overdue", "first_reply_overdue", cohort="created") == [1, 0, 0, None]


def test_overdue_by_event_time_for_contrast(store: Store) -> None:
    # 03-02 end: T8. 03-03 end: T6, T8 (T2 solved 09:00, before its 12:00 due). 03-04 at now: T6, T8, T9.
    assert values(store, "overdue") == [1, 2, 3, None]
    assert values(store, "overdue", "first_reply_overdue") == [1, 1, 1, None]


def test_cohort_drill_down_lists_the_counted_tickets_oldest_at_their_snapshot_first(store: Store) -> None:
    rows = evaluate(store, "backlog", cohort="created", tickets=True, **DAYS).rows
    ages = {r["ticket_id"]: r["value"] for r in rows}
    assert ages == {
        "2": epoch("2026-03-02 23:59:59") - epoch("2026-03-02 10:00"),
        "8": epoch("2026-03-02 23:59:59") - epoch("2026-03-02 16:00"),
        "6": epoch("2026-03-03 23:59:59") - epoch("2026-03-03 09:00"),
        "7": epoch("2026-03-03 23:59:59") - epoch("2026-03-03 10:00"),
        "9": NOW - epoch("2026-03-04 09:00"),
        "12": NOW - epoch("2026-03-04 08:00"),
    }
    # oldest at its snapshot first: T6 (14:59:59), then T2 and T7 (13:59:59 each, by ticket id)
    assert [r["ticket_id"] for r in rows][:3] == ["6", "2", "7"]
    overdue = evaluate(store, "overdue", cohort="created", tickets=True, **DAYS).rows
    assert {r["ticket_id"]: r["value"] for r in overdue} == {
        "8": epoch("2026-03-02 23:59:59") - epoch("2026-03-02 20:00"),
        "6": epoch("2026-03-03 23:59:59") - epoch("2026-03-03 12:00"),
        "9": NOW - epoch("2026-03-04 10:00"),
    }


def test_cohort_still_rejected_where_it_has_no_meaning(store: Store) -> None:
    with pytest.raises(KpisyncError, match="no --cohort"):
        evaluate(store, "csat", cohort="created", **DAYS)
