"""Derived facts: what one ticket's history turns into, and incremental = full rebuild."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World, epoch

from kpisync.core.facts import pending_tickets, refresh_all, refresh_facts
from kpisync.core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "s.db") as s:
        yield s


def facts(store: Store, ticket: str) -> dict:
    rows = store.query("SELECT * FROM ticket_facts WHERE ticket_id = ?", (ticket,))
    return dict(rows[0]) if rows else {}


def pairs(store: Store, ticket: str) -> list[tuple]:
    return [tuple(r) for r in store.query(
        "SELECT p.customer_at, p.reply_at, p.agent_id, p.seconds FROM reply_pairs p JOIN ticket_facts f ON f.tid = p.tid "
        "WHERE f.ticket_id = ? ORDER BY p.customer_at", (ticket,))]


def test_reply_pairs_follow_customer_turns(store: Store) -> None:
    """Consecutive customer messages collapse; extra agent messages in a turn are not paired."""
    w = World(store)
    w.agent("a1", "Ann")
    w.agent("a2", "Bob")
    w.ticket("1", "2026-01-05 09:00", "open")
    w.msg("1", "2026-01-05 09:00", "customer")           # turn 1 starts at creation
    w.msg("1", "2026-01-05 09:10", "customer")           # same turn
    w.msg("1", "2026-01-05 09:30", "agent", "a1", public=False)  # internal note: ignored
    w.msg("1", "2026-01-05 10:00", "agent", "a1")        # answers turn 1 (3600 s)
    w.msg("1", "2026-01-05 10:05", "agent", "a2")        # same turn: not paired
    w.msg("1", "2026-01-05 12:00", "customer")           # turn 2
    w.msg("1", "2026-01-05 12:30", "bot", "b1", automated=True)  # bot: not a reply
    w.msg("1", "2026-01-05 13:00", "agent", "a2")        # answers turn 2 (3600 s)
    w.msg("1", "2026-01-05 15:00", "customer")           # turn 3: unanswered
    w.commit()
    refresh_facts(store)
    assert pairs(store, "1") == [
        (epoch("2026-01-05 09:00"), epoch("2026-01-05 10:00"), "a1", 3600),
        (epoch("2026-01-05 12:00"), epoch("2026-01-05 13:00"), "a2", 3600),
        (epoch("2026-01-05 15:00"), None, None, None),
    ]
    f = facts(store, "1")
    assert (f["first_reply_at"], f["first_reply_agent"]) == (epoch("2026-01-05 10:00"), "a1")
    assert f["agent_replies"] == 3 and f["customer_followups"] == 3 and f["outbound"] == 0


def test_agent_created_ticket_is_outbound_and_its_description_is_not_a_reply(store: Store) -> None:
    w = World(store)
    w.ticket("2", "2026-01-05 09:00", "solved")
    w.msg("2", "2026-01-05 09:00", "agent", "a1")        # agent-written description
    w.msg("2", "2026-01-05 11:00", "customer")           # first customer turn
    w.msg("2", "2026-01-05 11:30", "agent", "a1")
    w.lifecycle("2", ("2026-01-05 09:00", "open"), ("2026-01-05 12:00", "solved"))
    w.commit()
    refresh_facts(store)
    f = facts(store, "2")
    assert f["outbound"] == 1
    assert f["agent_replies"] == 1 and f["agent_replies_all"] == 2
    assert pairs(store, "2") == [(epoch("2026-01-05 11:00"), epoch("2026-01-05 11:30"), "a1", 1800)]


def test_bots_never_count_as_agents_and_merge_notes_are_system(store: Store) -> None:
    w = World(store)
    w.agent("b1", "Answer Bot", bot=True)
    w.ticket("3", "2026-01-05 09:00", "solved")
    w.msg("3", "2026-01-05 09:00", "customer")
    w.msg("3", "2026-01-05 09:01", "agent", "b1")        # mapped as agent, but the author is a bot
    w.msg("3", "2026-01-05 09:02", "agent", "a1", via="merge")  # merge note
    w.lifecycle("3", ("2026-01-05 09:00", "new"), ("2026-01-05 09:05", "solved"))
    w.commit()
    refresh_facts(store)
    f = facts(store, "3")
    assert f["first_reply_at"] is None and f["agent_replies_all"] == 0
    assert f["bot_public"] == 1  # the bot message; the merge note is not counted


def test_reopened_twice_gives_first_and_last_resolution_and_two_reopens(store: Store) -> None:
    w = World(store)
    w.ticket("4", "2026-01-05 09:00", "closed")
    w.lifecycle(
        "4",
        ("2026-01-05 09:00", "new"), ("2026-01-05 10:00", "solved"), ("2026-01-05 11:00", "open"),
        ("2026-01-05 12:00", "solved"), ("2026-01-05 13:00", "pending"), ("2026-01-05 14:00", "solved"),
    )
    w.status("4", "2026-01-09 14:00", "closed", "solved", via="rule")  # auto-close: not a new resolution
    w.commit()
    refresh_facts(store)
    f = facts(store, "4")
    assert f["first_resolved_at"] == epoch("2026-01-05 10:00")
    assert f["last_resolved_at"] == epoch("2026-01-05 14:00")
    assert f["reopens"] == 2 and f["res_automated"] == 0
    # waits: new 1h + open 1h = 2h requester; pending 1h agent
    assert (f["requester_wait"], f["agent_wait"]) == (7200, 3600)
    spans = [tuple(r) for r in store.query("SELECT start_at, end_at FROM status_spans ORDER BY start_at")]
    assert spans == [
        (epoch("2026-01-05 09:00"), epoch("2026-01-05 10:00")),
        (epoch("2026-01-05 11:00"), epoch("2026-01-05 12:00")),
        (epoch("2026-01-05 13:00"), epoch("2026-01-05 14:00")),
    ]


def test_deleted_spam_and_merged_tickets_keep_only_a_flagged_row(store: Store) -> None:
    w = World(store)
    w.ticket("5", "2026-01-05 09:00", "deleted", is_deleted=True)
    w.ticket("6", "2026-01-05 09:00", "open", is_spam=True, tags=["spam"])
    w.ticket("7", "2026-01-05 09:00", "closed", is_merged=True, merged_into_id="8")
    for ticket in ("5", "6", "7"):
        w.msg(ticket, "2026-01-05 09:30", "agent", "a1")
    w.commit()
    refresh_facts(store)
    assert [facts(store, t)["excluded"] for t in ("5", "6", "7")] == [1, 2, 3]
    assert store.count("fact_events") == 0 and store.count("reply_pairs") == 0


def test_assignee_at_resolution_comes_from_history(store: Store) -> None:
    w = World(store)
    w.ticket("9", "2026-01-05 09:00", "solved", assignee="a3")
    w.assign("9", "2026-01-05 09:00", "assignee", "a1")
    w.assign("9", "2026-01-05 12:00", "assignee", "a2", "a1")
    w.assign("9", "2026-01-06 09:00", "assignee", "a3", "a2")  # reassigned after the solve
    w.lifecycle("9", ("2026-01-05 09:00", "new"), ("2026-01-05 13:00", "solved"))
    w.commit()
    refresh_facts(store)
    assert facts(store, "9")["res_agent"] == "a2"
    spans = [tuple(r) for r in store.query("SELECT start_at, end_at, assignee_id FROM status_spans ORDER BY start_at")]
    assert spans == [
        (epoch("2026-01-05 09:00"), epoch("2026-01-05 12:00"), "a1"),
        (epoch("2026-01-05 12:00"), epoch("2026-01-05 13:00"), "a2"),
    ]


def test_incremental_refresh_touches_only_changed_tickets_and_matches_a_rebuild(store: Store) -> None:
    w = World(store)
    for i in range(1, 6):
        w.ticket(str(i), f"2026-01-0{i} 09:00", "open")
        w.msg(str(i), f"2026-01-0{i} 09:00", "customer")
    w.commit()
    first = refresh_facts(store)
    assert first.full and first.tickets == 5 and pending_tickets(store) == 0
    w.msg("3", "2026-01-03 10:00", "agent", "a1")
    w.lifecycle("3", ("2026-01-03 09:00", "new"), ("2026-01-03 11:00", "solved"))
    w.commit()
    assert pending_tickets(store) == 1
    result = refresh_facts(store)
    assert (result.full, result.tickets) == (False, 1)
    assert facts(store, "3")["first_reply_at"] == epoch("2026-01-03 10:00")
    snapshot = [tuple(r) for r in store.query("SELECT * FROM ticket_facts ORDER BY ticket_id")]
    refresh_all(store)
    assert [tuple(r) for r in store.query("SELECT * FROM ticket_facts ORDER BY ticket_id")][0][1:] == snapshot[0][1:]
    assert sorted(r[1:] for r in snapshot) == sorted(tuple(r)[1:] for r in store.query("SELECT * FROM ticket_facts"))


def test_a_failed_refresh_keeps_old_facts_and_the_pending_list(store: Store) -> None:
    w = World(store)
    w.ticket("1", "2026-01-05 09:00", "open")
    w.commit()
    refresh_facts(store)
    w.msg("1", "2026-01-05 10:00", "agent", "a1")
    w.commit()
    store.conn.execute("CREATE TEMP TRIGGER boom BEFORE INSERT ON fact_events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception):
        refresh_facts(store)
    assert pending_tickets(store) == 1 and facts(store, "1")["first_reply_at"] is None
    store.conn.execute("DROP TRIGGER boom")
    refresh_facts(store)
    assert pending_tickets(store) == 0 and facts(store, "1")["first_reply_at"] == epoch("2026-01-05 10:00")


def test_a_schedule_change_rebuilds_business_hours(store: Store) -> None:
    w = World(store)
    w.schedule("s1", "UTC", [(d, 9 * 60, 17 * 60) for d in range(5)])
    w.ticket("1", "2026-01-05 08:00", "open")               # Monday
    w.msg("1", "2026-01-05 08:00", "customer")
    w.msg("1", "2026-01-05 10:00", "agent", "a1")
    w.commit()
    refresh_facts(store)
    assert facts(store, "1")["bh_first_reply"] == 3600       # 09:00-10:00
    w.schedule("s1", "UTC", [(d, 8 * 60, 17 * 60) for d in range(5)])
    w.commit()
    store.conn.execute("DELETE FROM changed_tickets")  # schedules mark no ticket; the fingerprint must notice
    result = refresh_facts(store)
    assert result.full
    assert facts(store, "1")["bh_first_reply"] == 7200


def test_sla_due_dates_from_events(store: Store) -> None:
    w = World(store)
    w.ticket("1", "2026-01-05 09:00", "open")
    w.sla("1", "2026-01-05 09:00", "first_reply", "apply_sla", minutes=60)
    w.sla("1", "2026-01-05 09:00", "resolution", "apply_sla", minutes=480)
    w.sla("1", "2026-01-05 13:00", "resolution", "breach", instance=None)
    w.commit()
    refresh_facts(store)
    f = facts(store, "1")
    assert f["frt_due"] == epoch("2026-01-05 10:00")   # apply + 60 min
    assert f["res_due"] == epoch("2026-01-05 13:00")   # the breach event wins over apply + target
    assert (f["fr_od_start"], f["fr_od_end"]) == (epoch("2026-01-05 10:00"), None)


def test_a_chat_session_counts_as_one_reply_and_shared_comments_are_ignored(store: Store) -> None:
    w = World(store)
    w.ticket("1", "2026-01-05 09:00", "solved", channel="chat")
    w.msg("1", "2026-01-05 09:00", "customer", chat="s1")
    w.msg("1", "2026-01-05 09:01", "agent", "a1", chat="s1")
    w.msg("1", "2026-01-05 09:02", "customer", chat="s1")
    w.msg("1", "2026-01-05 09:03", "agent", "a1", chat="s1")
    w.msg("1", "2026-01-05 10:00", "agent", "a9", shared=True)  # from a ticket-sharing partner: not a reply
    w.msg("1", "2026-01-05 11:00", "agent", "a1")              # a later email reply
    w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 12:00", "solved"))
    w.commit()
    refresh_facts(store)
    f = facts(store, "1")
    assert (f["agent_replies"], f["first_reply_at"]) == (2, epoch("2026-01-05 09:01"))
    assert len(pairs(store, "1")) == 2  # both chat turns answered; the email reply answers no turn


def _all_facts(store: Store) -> dict[str, list[tuple]]:
    """Every derived row, with tids replaced by ticket ids (tids are store-local, and so are the
    fingerprints of a ticket's rows, which include its tid)."""
    out = {}
    for table, columns in (
        ("ticket_facts", "*"), ("fact_events", "kind, at, agent_id, group_id, ref, seconds, extra"),
        ("reply_pairs", "customer_at, reply_at, agent_id, group_id, seconds, bh_seconds"),
        ("status_spans", "start_at, end_at, assignee_id, group_id, od_start"),
        ("rating_facts", "source, rating_id, kind, offered_at, responded_at, value, sentiment, agent_id, comment"),
        ("ticket_tags", "tag"),
    ):
        rows = store.query(
            f"SELECT f.ticket_id, {', '.join('x.' + c.strip() for c in columns.split(','))} FROM {table} x "
            "JOIN ticket_facts f ON f.tid = x.tid" if columns != "*" else "SELECT * FROM ticket_facts"
        )
        out[table] = sorted(tuple(r)[1:-1] if columns == "*" else tuple(r) for r in rows)  # no tid, no digests
    return out


def test_incremental_changes_of_every_kind_equal_a_full_rebuild(store: Store) -> None:
    w = World(store)
    w.schedule("s1", "UTC", [(d, 9 * 60, 17 * 60) for d in range(5)])
    for i in range(1, 5):
        w.ticket(str(i), f"2026-01-0{i + 4} 09:00", "open", assignee="a1", tags=["x"])
        w.msg(str(i), f"2026-01-0{i + 4} 09:00", "customer")
        w.msg(str(i), f"2026-01-0{i + 4} 10:00", "agent", "a1")
        w.lifecycle(str(i), (f"2026-01-0{i + 4} 09:00", "new"), (f"2026-01-0{i + 4} 10:00", "open"))
        w.rating(str(i), "good", responded=f"2026-01-0{i + 4} 12:00", rid=f"r{i}")
    w.commit()
    refresh_facts(store)
    w.msg("1", "2026-01-05 11:00", "customer")                          # a new turn
    w.status("2", "2026-01-06 15:00", "solved", "open")                   # a resolution
    w.assign("3", "2026-01-07 11:00", "assignee", "a2", "a1")             # a hand-over
    w.rating("4", "bad", responded="2026-01-08 13:00", rid="r4")          # a changed rating
    w.ticket("4", "2026-01-08 09:00", "open", assignee="a1", tags=["x", "y"])  # new tag
    w.ticket("2", "2026-01-06 09:00", "solved", assignee="a1", is_spam=True)   # then flagged spam
    w.commit()
    assert refresh_facts(store).tickets == 4
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental


def test_a_forked_worker_computes_the_same_facts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import kpisync.core.facts as facts_module
    import kpisync.core.facts_parallel as parallel_module

    w = World(store)
    for i in range(1, 41):
        w.ticket(str(i), f"2026-01-05 {i % 10:02d}:00", "open", assignee=f"a{i % 3}")
        w.msg(str(i), f"2026-01-05 {i % 10:02d}:00", "customer")
        w.msg(str(i), f"2026-01-05 {i % 10:02d}:30", "agent", f"a{i % 3}")
        w.lifecycle(str(i), (f"2026-01-05 {i % 10:02d}:00", "new"), (f"2026-01-05 {i % 10 + 10:02d}:00", "solved"))
    w.commit()
    refresh_facts(store)
    serial = _all_facts(store)
    if not facts_module.can_fork():
        pytest.skip("no fork on this platform")
    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(parallel_module, "SMALLEST_PART", 1)  # the 40 changed tickets in 11 parts
    refresh_all(store)
    assert _all_facts(store) == serial
    for i in range(1, 41):
        w.msg(str(i), "2026-01-06 09:00", "customer")
    w.commit()
    assert refresh_facts(store).tickets == 40
    parallel = _all_facts(store)
    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10**9)
    refresh_all(store)
    assert _all_facts(store) == parallel


def test_identical_time_entries_count_twice_and_one_removed_counts_once(store: Store) -> None:
    """Two entries of the same agent, instant and length are two fact rows; when one goes, the
    incremental refresh leaves exactly one (a multiset, not a set), as a rebuild does."""
    w = World(store)
    w.ticket("1", "2026-01-05 09:00", "open", assignee="a1")
    w.msg("1", "2026-01-05 09:00", "customer")
    w.time_entry("1", "2026-01-05 10:00", 600)
    w.time_entry("1", "2026-01-05 10:00", 600)
    w.commit()
    refresh_facts(store)
    assert store.query("SELECT count(*), sum(seconds) FROM fact_events WHERE kind = 'time'")[0][:] == (2, 1200)
    store.conn.execute("DELETE FROM time_entries WHERE rowid = (SELECT max(rowid) FROM time_entries)")
    store.conn.execute("INSERT OR IGNORE INTO changed_tickets (source, ticket_id) VALUES ('zd', '1')")
    assert refresh_facts(store).tickets == 1
    assert store.query("SELECT count(*), sum(seconds) FROM fact_events WHERE kind = 'time'")[0][:] == (1, 600)
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental


def _two_ticket_world(store: Store) -> World:
    w = World(store)
    for i in ("1", "2"):
        w.ticket(i, "2026-01-05 09:00", "solved", assignee="a1", tags=["b", "a"])
        w.msg(i, "2026-01-05 09:00", "customer")
        w.msg(i, "2026-01-05 10:00", "agent", "a1")
        w.lifecycle(i, ("2026-01-05 09:00", "new"), ("2026-01-05 11:00", "solved"))
    w.rating("1", "good", responded="2026-01-05 12:00", rid="r1")
    w.commit()
    refresh_facts(store)
    return w


def _refresh_traced(store: Store) -> tuple[int, list[str]]:
    """A refresh: the tickets it took and the SQL statements it ran."""
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        tickets = refresh_facts(store).tickets
    finally:
        store.conn.set_trace_callback(None)
    return tickets, statements


def test_a_change_in_one_fact_table_leaves_the_others_rows_as_they_were(store: Store) -> None:
    """A late reply on a solved ticket changes its events, not its pairs, spans, rating or tags:
    those rows are neither read nor rewritten (same rowids), and the result equals a rebuild."""
    w = _two_ticket_world(store)
    rows_of = {t: f"SELECT rowid, * FROM {t} ORDER BY rowid" for t in ("reply_pairs", "status_spans", "rating_facts")}
    rows_of["ticket_tags"] = "SELECT * FROM ticket_tags ORDER BY tid, tag"  # WITHOUT ROWID
    before = {t: [tuple(r) for r in store.query(sql)] for t, sql in rows_of.items()}
    w.msg("1", "2026-01-06 09:00", "agent", "a2")
    w.commit()
    tickets, statements = _refresh_traced(store)
    assert tickets == 1
    assert not [s for s in statements if "FROM reply_pairs" in s or "FROM status_spans" in s]
    assert {t: [tuple(r) for r in store.query(sql)] for t, sql in rows_of.items()} == before
    assert facts(store, "1")["agent_replies_all"] == 2
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental


def test_rows_a_ticket_gets_after_its_own_are_inserted_without_reading_the_stored_ones(store: Store) -> None:
    """A late reply and a reopen on a solved ticket add events and a backlog span after the ones
    it had: they are appended without reading its stored events or spans, and the facts equal a
    rebuild. A turn that gets its answer changes a stored pair: that one is read and updated."""
    w = _two_ticket_world(store)
    w.msg("1", "2026-01-06 09:00", "agent", "a2")
    w.status("1", "2026-01-06 09:05", "open", "solved")
    w.commit()
    tickets, statements = _refresh_traced(store)
    assert tickets == 1
    assert not [s for s in statements if "FROM fact_events" in s or "FROM status_spans" in s]
    assert [tuple(r) for r in store.query("SELECT kind FROM fact_events e JOIN ticket_facts f ON f.tid = e.tid "
                                          "WHERE f.ticket_id = '1' ORDER BY e.at")] == [("resolve",), ("reply",), ("reopen",)]
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental
    w.msg("2", "2026-01-06 09:00", "customer")  # a new turn (appended), then its answer (a stored pair changes)
    w.commit()
    refresh_facts(store)
    w.msg("2", "2026-01-06 10:00", "agent", "a1")
    w.commit()
    _, statements = _refresh_traced(store)
    assert [s for s in statements if "FROM reply_pairs" in s]
    assert pairs(store, "2")[-1] == (epoch("2026-01-06 09:00"), epoch("2026-01-06 10:00"), "a1", 3600)
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental


def test_facts_built_before_fingerprints_existed_refresh_like_a_rebuild(store: Store) -> None:
    w = _two_ticket_world(store)
    store.conn.execute("UPDATE ticket_facts SET digests = NULL")  # as migration 006 leaves old rows
    w.msg("1", "2026-01-06 09:00", "customer")                    # a new turn: pairs and spans change
    w.rating("1", "bad", responded="2026-01-06 12:00", rid="r1")
    w.ticket("2", "2026-01-05 09:00", "solved", assignee="a1", tags=["c"])
    w.commit()
    assert refresh_facts(store).tickets == 2
    incremental = _all_facts(store)
    assert store.query("SELECT count(*) FROM ticket_facts WHERE digests IS NULL")[0][0] == 0
    refresh_all(store)
    assert _all_facts(store) == incremental


def test_a_rating_moved_to_another_ticket_and_a_vanished_ticket_are_followed(store: Store) -> None:
    w = _two_ticket_world(store)
    w.rating("2", "good", responded="2026-01-05 12:00", rid="r1")  # the vendor re-links the rating
    w.commit()
    assert refresh_facts(store).tickets == 2
    assert [tuple(r) for r in store.query(
        "SELECT f.ticket_id, r.rating_id FROM rating_facts r JOIN ticket_facts f ON f.tid = r.tid")] == [("2", "r1")]
    store.conn.execute("DELETE FROM tickets WHERE external_id = '1'")
    store.conn.execute("INSERT OR IGNORE INTO changed_tickets (source, ticket_id) VALUES ('zd', '1')")
    refresh_facts(store)
    assert facts(store, "1") == {}
    assert store.query("SELECT count(*) FROM reply_pairs")[0][0] == 1
    incremental = _all_facts(store)
    refresh_all(store)
    assert _all_facts(store) == incremental


def _forty_tickets_with_a_new_turn(store: Store) -> World:
    """40 tickets with facts, then a new customer turn on each: 40 changed tickets."""
    w = World(store)
    for i in range(1, 41):
        w.ticket(str(i), f"2026-01-05 {i % 10:02d}:00", "open")
        w.msg(str(i), f"2026-01-05 {i % 10:02d}:00", "customer")
        w.msg(str(i), f"2026-01-05 {i % 10:02d}:30", "agent", f"a{i % 3}")
    w.commit()
    refresh_facts(store)
    for i in range(1, 41):
        w.msg(str(i), "2026-01-06 09:00", "customer")
    w.commit()
    return w


def _equal_to_a_rebuild(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict:
    import kpisync.core.facts as facts_module

    incremental = _all_facts(store)
    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10**9)
    refresh_all(store)
    assert _all_facts(store) == incremental
    return incremental


def test_a_worker_failing_midway_leaves_its_unfinished_part_to_the_parent(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os
    import time

    import kpisync.core.facts as facts_module
    import kpisync.core.facts_parallel as parallel_module

    _forty_tickets_with_a_new_turn(store)
    if not facts_module.can_fork():
        pytest.skip("no fork on this platform")
    parent, failed = os.getpid(), tmp_path / "worker-failed"
    original = facts_module._Builder.changes_of

    def worker_fails_on_its_first_part(self, conn, todo, fresh):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            failed.touch()
            raise OSError("disk gone")
        deadline = time.monotonic() + 10
        while not failed.exists() and time.monotonic() < deadline:  # let the worker take a part first
            time.sleep(0.01)
        return original(self, conn, todo, fresh)

    warnings: list[str] = []  # not caplog: CLI tests may have set the kpisync loggers not to propagate
    monkeypatch.setattr(parallel_module.log, "warning", lambda message, *args: warnings.append(message % args))
    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(parallel_module, "SMALLEST_PART", 1)
    monkeypatch.setattr(facts_module._Builder, "changes_of", worker_fails_on_its_first_part)
    assert refresh_facts(store).tickets == 40
    assert warnings == ["facts worker failed (OSError('disk gone')); computing its tickets here"]
    assert pending_tickets(store) == 0
    monkeypatch.setattr(facts_module._Builder, "changes_of", original)
    assert len(_equal_to_a_rebuild(store, monkeypatch)["reply_pairs"]) == 80


def test_a_refresh_whose_worker_cannot_start_computes_every_part_itself(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    import kpisync.core.facts as facts_module
    import kpisync.core.facts_parallel as parallel_module

    _forty_tickets_with_a_new_turn(store)
    if not facts_module.can_fork():
        pytest.skip("no fork on this platform")

    def refused(self) -> None:  # type: ignore[no-untyped-def]
        raise OSError(11, "Resource temporarily unavailable")

    warnings: list[str] = []
    monkeypatch.setattr(parallel_module.log, "warning", lambda message, *args: warnings.append(message % args))
    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", refused)
    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(parallel_module, "SMALLEST_PART", 1)
    assert refresh_facts(store).tickets == 40
    assert warnings == ["facts worker failed (not started: [Errno 11] Resource temporarily unavailable); computing its tickets here"]
    assert pending_tickets(store) == 0
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert len(_equal_to_a_rebuild(store, monkeypatch)["reply_pairs"]) == 80


def test_a_refresh_stopped_between_parts_keeps_them_and_the_next_one_finishes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large refresh commits part by part: after a kill, what was committed stays and the rest
    is still pending (claimed), so the next refresh converges to the same facts as a rebuild."""
    import kpisync.core.facts as facts_module
    import kpisync.core.facts_parallel as parallel_module

    _forty_tickets_with_a_new_turn(store)
    if not facts_module.can_fork():
        pytest.skip("no fork on this platform")

    committed: list[int] = []

    def first_part_then_killed(self) -> None:  # type: ignore[no-untyped-def]
        self._commit(self.builder.conn, self.parts[0])
        committed.append(len(self.parts[0]))
        raise KeyboardInterrupt

    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(parallel_module, "SMALLEST_PART", 1)
    monkeypatch.setattr(parallel_module.PartsRefresh, "run", first_part_then_killed)
    with pytest.raises(KeyboardInterrupt):
        refresh_facts(store)
    assert committed == [10]  # a quarter of the 40 tickets
    assert pending_tickets(store) == 30
    assert store.query("SELECT count(*) FROM changed_tickets")[0][0] == 0
    assert store.query("SELECT count(*) FROM reply_pairs WHERE customer_at = ?", (epoch("2026-01-06 09:00"),))[0][0] == 10
    monkeypatch.undo()
    assert refresh_facts(store).tickets == 30
    assert pending_tickets(store) == 0
    assert len(_equal_to_a_rebuild(store, monkeypatch)["reply_pairs"]) == 80


def test_a_ticket_changed_during_a_large_refresh_is_refreshed_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync writing while a refresh runs its parts marks the ticket anew (its mark was moved
    to the claims), so the change is not lost with the claim the refresh then drops."""
    import sqlite3

    import kpisync.core.facts as facts_module
    import kpisync.core.facts_parallel as parallel_module

    _forty_tickets_with_a_new_turn(store)
    if not facts_module.can_fork():
        pytest.skip("no fork on this platform")
    original = parallel_module.PartsRefresh.run

    def a_sync_writes_meanwhile(self) -> None:  # type: ignore[no-untyped-def]
        other = sqlite3.connect(str(store.path), isolation_level=None)
        other.execute(
            "INSERT INTO messages (source, external_id, ticket_id, created_at, author_id, author_role, is_public, synced_at) "
            "VALUES ('zd', 'late', '1', '2026-01-06T10:00:00Z', 'a1', 'agent', 1, '2026-01-06T10:00:00Z')"
        )
        other.close()
        original(self)

    monkeypatch.setattr(facts_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(parallel_module, "SMALLEST_PART", 1)
    monkeypatch.setattr(parallel_module.PartsRefresh, "run", a_sync_writes_meanwhile)
    assert refresh_facts(store).tickets == 40
    assert pending_tickets(store) == 1
    monkeypatch.setattr(parallel_module.PartsRefresh, "run", original)
    assert refresh_facts(store).tickets == 1
    assert pairs(store, "1")[-1] == (epoch("2026-01-06 09:00"), epoch("2026-01-06 10:00"), "a1", 3600)
    _equal_to_a_rebuild(store, monkeypatch)


def test_one_facts_refresh_at_a_time(tmp_path: Path) -> None:
    """A second refresh of the same store waits for the running one (they would take the same
    claimed tickets and number new tickets alike)."""
    import threading
    import time

    from kpisync.core.lock import facts_refresh_lock

    db, order = tmp_path / "s.db", []

    def second() -> None:
        with facts_refresh_lock(db):
            order.append("second")

    with facts_refresh_lock(db):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first done")
    thread.join(5)
    assert order == ["first done", "second"]

def test_facts_kept_by_an_older_kpisync_are_rebuilt_once_and_say_why(store: Store) -> None:
    _two_ticket_world(store)
    store.conn.execute("UPDATE facts_meta SET value = 'from an older kpisync' WHERE key = 'fingerprint'")
    store.conn.execute("DELETE FROM facts_meta WHERE key = 'version'")
    result = refresh_facts(store)
    assert result.full and result.reason == "this kpisync version keeps them differently"
    assert not refresh_facts(store).full
