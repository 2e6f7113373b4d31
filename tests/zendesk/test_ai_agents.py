"""Zendesk AI agents (Advanced add-on) data export: the optional `ai_agent_conversations` stream
against its simulator (fixtures/zendesk_ai_sim.py), and the vendor figures it feeds beside
automated_resolution_rate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from kpisync.connectors.zendesk import ZendeskConfig, ZendeskConnector
from kpisync.connectors.zendesk.ai_agents import AiAgentConversations
from kpisync.core.httpclient import Runtime
from kpisync.core.metrics.engine import evaluate
from kpisync.core.models import BotConversation
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world
from kpisync.fixtures.zendesk_ai_sim import SIGNED_URLS_PATH, ZendeskAiAgentsSimulator
from kpisync.fixtures.zendesk_sim import ZendeskSimulator

from .conftest import TIME_SCALE, make_sim, rows, snapshot

STREAM = "ai_agent_conversations"
TODAY = date(2026, 10, 31)  # the conftest world ends 2026-10-31 18:00 UTC


@pytest.fixture()
def zd(world: World) -> Iterator[ZendeskSimulator]:
    with make_sim(world) as server:
        yield server


@pytest.fixture()
def ai(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[ZendeskAiAgentsSimulator]:
    """The export simulator; the stream's "now" is its clock (in-process runs only)."""
    with ZendeskAiAgentsSimulator(world, clock=SimClock(world.now + timedelta(minutes=2), scale=TIME_SCALE)) as server:
        monkeypatch.setattr(AiAgentConversations, "now", lambda self: server.clock.now().replace(microsecond=0))
        yield server
        assert server.errors == [] and server.files.errors == []


def ai_settings(ai: ZendeskAiAgentsSimulator, **extra: Any) -> dict[str, Any]:
    return {"ai_agents_organization_id": ai.organization_id, "ai_agents_bot_id": ai.bot_id,
            "ai_agents_api_key": ai.api_key, "ai_agents_base_url": ai.url, **extra}  # fmt: skip


def pull_ai(db: Path, zd: ZendeskSimulator, **settings: Any) -> RunResult:
    config = ZendeskConfig(subdomain="acme", email=zd.email, api_token=zd.api_token, base_url=zd.url, **settings)
    with Store(db) as store:
        return sync_source(store, "zendesk", ZendeskConnector(config, Runtime(time_scale=TIME_SCALE)), only_streams=[STREAM])


def stored(db: Path) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in rows(db, "SELECT external_id, ended_at, escalated, ticket_id, automated_resolution, "
                                          "export_day FROM bot_conversations")}  # fmt: skip


def expected(ai: ZendeskAiAgentsSimulator, first: date, last: date | None = None, *,
             final: bool = False) -> dict[str, tuple[Any, ...]]:  # fmt: skip
    """The rows of [first, last] as the files served now show them, or with every verdict given."""
    out = {}
    for c in ai.conversations(first, last) if final else ai.exported(first, last):
        ended = c["conversation_end_time"].replace(".000Z", "Z")
        ticket, verdict = c.get("ticket_id"), c["automated_resolution"]
        out[c["conversation_id"]] = (ended, int(ticket is not None), None if ticket is None else str(ticket),
                                     None if verdict is None else int(verdict), ended[:10])  # fmt: skip
    return out


#: The first pull's unsettled days: 10-28 ends 10-29 00:00, + 72 h = 11-01 00:00 > now (10-31 18:02).
UNSETTLED = ["2026-10-28", "2026-10-29", "2026-10-30"]


def state(db: Path) -> dict[str, Any] | None:
    with Store(db) as store:
        return store.get_state("zendesk", STREAM)


def posted_days(ai: ZendeskAiAgentsSimulator) -> int:
    return ai.request_count(SIGNED_URLS_PATH, method="POST", status=200)


# -- pulls -----------------------------------------------------------------------------------------
def test_a_first_pull_lands_the_last_30_complete_days_exactly(tmp_path: Path, world: World, zd, ai) -> None:
    db = tmp_path / "zd.db"
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    first = TODAY - timedelta(days=30)  # 2026-10-01: the export's window; today (10-31) is incomplete
    want = expected(ai, first, TODAY - timedelta(days=1))
    assert stored(db) == want and len(want) > 100
    assert state(db) == {"day": "2026-10-30", "unsettled": UNSETTLED}
    assert posted_days(ai) == 30 and ai.files.request_count("/exports/", status=200) == ai.files.request_count()
    # Escalations point at tickets of the Zendesk world; session variables (e-mails) are not stored.
    tickets = {t.id for t in world.tickets}
    linked = [int(v[2]) for v in want.values() if v[2] is not None]
    assert linked and set(linked) <= tickets
    assert rows(db, "SELECT count(*) FROM bot_conversations WHERE raw LIKE '%conversation_data%' OR raw LIKE '%@%'") == [(0,)]
    # The API key went to the API host only, never to the signed-URL host, the store or the run.
    assert ai.files.authorization_seen == []
    assert ai.api_key.encode() not in db.read_bytes()


def test_start_date_later_than_the_window_starts_there(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, start_date="2026-10-25T00:00:00Z", **ai_settings(ai)).status == "success"
    assert stored(db) == expected(ai, date(2026, 10, 25), date(2026, 10, 30))
    assert posted_days(ai) == 6  # 10-25 … 10-30


def test_incremental_pulls_export_only_new_complete_days(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    before = stored(db)
    ai.clear_log()
    idle = pull_ai(db, zd, **ai_settings(ai))  # same day: nothing complete is new, nothing settled
    assert (idle.status, idle.streams[0].rows_written, ai.request_count()) == ("success", 0, 0)

    ai.clock.advance(2 * 86_400)  # now 2026-11-02: 10-31 and 11-01 are complete
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    # 10-28 and 10-29 have settled (+72 h: 11-01, 11-02 00:00) and are exported once more.
    assert [d.isoformat() for d in ai.requested_days] == ["2026-10-28", "2026-10-29", "2026-10-31", "2026-11-01"]
    again, new = expected(ai, date(2026, 10, 28), date(2026, 10, 29)), expected(ai, date(2026, 10, 31), date(2026, 11, 1))
    assert run.streams[0].records == len(again) + len(new) and len(new) > 0  # 11-01: past the world's end
    # Written: the new rows and the re-exported rows whose verdict came since (the rest unchanged).
    late = [k for k, v in again.items() if v != before[k]]
    assert late and all(before[k][3] is None for k in late)
    assert run.streams[0].rows_written == len(new) + len(late)
    # 10-30 is as the first pull left it (it settles on 11-03).
    assert stored(db) == {**expected(ai, date(2026, 10, 1), date(2026, 10, 29)), **{k: v for k, v in before.items() if v[4] == "2026-10-30"}, **new}
    assert state(db) == {"day": "2026-11-01", "unsettled": ["2026-10-30", "2026-10-31", "2026-11-01"]}


def test_a_state_older_than_the_window_says_which_days_are_lost(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    with Store(db) as store:
        store.write_batch("zendesk", STREAM, [], {"day": "2026-09-20"})
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    assert run.streams[0].notices == [
        "ai_agent_conversations: days 2026-09-21 to 2026-09-30 are older than the export's 30-day window "
        "and can no longer be pulled"
    ]
    assert stored(db) == expected(ai, date(2026, 10, 1), date(2026, 10, 30))


def test_a_day_that_leaves_the_window_while_it_is_pulled_is_lost_not_an_error(
    tmp_path: Path, zd, ai, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export host's midnight comes first (or the pull straddles 00:00 UTC): the oldest day
    is refused with a 400 when asked for. It is reported lost; the other days land."""
    monkeypatch.setattr(AiAgentConversations, "now", lambda self: ai.clock.now().replace(microsecond=0) - timedelta(hours=2))
    ai.clock.advance(6 * 3600)  # host: 2026-11-01 00:0x; the stream still thinks 10-31 22:0x
    db = tmp_path / "zd.db"
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    assert run.streams[0].notices == [
        "ai_agent_conversations: 2026-10-01 left the export's 30-day window before it was pulled (HTTP 400) "
        "and can no longer be pulled"
    ]
    assert stored(db) == expected(ai, date(2026, 10, 2), date(2026, 10, 30))
    assert state(db) == {"day": "2026-10-30", "unsettled": UNSETTLED}


def test_429_and_an_expired_signed_url_are_survived(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    ai.faults.fail_next(2, 429, body={"error": "TooManyRequests"}, headers={"Retry-After": "30"}, path=SIGNED_URLS_PATH)
    ai.files.faults.fail_next(2, 503, path="/exports/")
    ai.expire_next_urls(1)  # the first file's URL is stale by the time it is fetched
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    assert run.streams[0].waited >= 60  # two Retry-After: 30
    assert ai.files.request_count(status=403) == 1
    assert ai.request_count(SIGNED_URLS_PATH, status=200) == 31  # 30 days + the day asked again
    assert stored(db) == expected(ai, date(2026, 10, 1), date(2026, 10, 30))


def test_a_failure_inside_a_day_resumes_at_that_day_and_converges(tmp_path: Path, zd, ai) -> None:
    reference, broken = tmp_path / "reference.db", tmp_path / "broken.db"
    assert pull_ai(reference, zd, **ai_settings(ai)).status == "success"
    # 2026-10-12 (9 conversations: files of 4, 4, 1): its second file keeps failing, so its first
    # file is committed without a state.
    second = f"conversation_{ai.bot_id}_2026-10-12_000000000001.json"
    assert len(ai.days[date(2026, 10, 12)]) == 9
    ai.files.faults.fail_next(50, 503, path=second)
    failed = pull_ai(broken, zd, **ai_settings(ai))
    assert failed.status == "failed" and "failed after 8 attempts" in (failed.error or "")
    assert "Signature" not in (failed.error or "")  # the signed URL's token never shows
    assert state(broken) == {"day": "2026-10-11", "unsettled": []}
    assert len(stored(broken)) == len(expected(ai, date(2026, 10, 1), date(2026, 10, 11))) + 4
    ai.files.faults.clear()
    ai.clear_log()
    assert pull_ai(broken, zd, **ai_settings(ai)).status == "success"
    assert posted_days(ai) == 19  # 10-12 again (idempotent upserts), then 10-13 … 10-30
    assert snapshot(broken)["bot_conversations"] == snapshot(reference)["bot_conversations"]


def test_without_credentials_the_stream_is_skipped_with_a_notice(tmp_path: Path, zd, ai) -> None:
    run = pull_ai(tmp_path / "zd.db", zd)
    assert run.status == "success", run.error
    [notice] = run.streams[0].notices
    assert notice.startswith("ai_agent_conversations: skipped") and "ai_agents_api_key" in notice
    assert ai.request_count() == 0 and rows(tmp_path / "zd.db", "SELECT count(*) FROM bot_conversations") == [(0,)]


def test_half_the_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="ai_agents_organization_id"):
        ZendeskConfig(subdomain="acme", email="a@b.c", api_token="t", ai_agents_bot_id="b")


def test_the_simulator_refuses_bad_keys_and_days_outside_the_window(ai) -> None:
    headers = {"authorization": ai.api_key, "organizationid": ai.organization_id, "botid": ai.bot_id}
    post = lambda day, h=headers: requests.post(ai.url + SIGNED_URLS_PATH, json={"date": day}, headers=h, timeout=10)  # noqa: E731
    assert post("2026-10-30", {**headers, "authorization": "nope"}).status_code == 401
    assert post("2026-09-30").status_code == 400  # 31 days ago
    assert post("2026-11-01").status_code == 400  # the future
    assert post("2026-10-31").json() == {"date": "2026-10-31", "urls": []}  # today: not built yet
    [url] = post("2026-10-01").json()["urls"][:1]
    assert requests.get(url, timeout=10).status_code == 200
    assert requests.get(url.replace("Signature=", "Signature=0"), timeout=10).status_code == 403
    ai.clock.advance(24 * 3600 + 1)  # [DX-HC] the URL lived one day
    assert requests.get(url, timeout=10).status_code == 403



# -- late verdicts: a day is exported when complete and once more when settled -------------------
FOUR_DAYS = 4 * 86_400  # now 2026-11-04 18:02: 10-28 … 10-31 have settled (10-31: 11-04 00:00)


def vendor_days(db: Path) -> dict[str, tuple[int, int]]:
    """automated_resolution_rate's vendor figures per conversation-end day, 10-27 … 10-30."""
    with Store(db) as store:
        result = evaluate(store, "automated_resolution_rate", since="2026-10-27", until="2026-10-31", period="day",
                          now=int(datetime(2026, 11, 5, tzinfo=UTC).timestamp()))  # type: ignore[arg-type]  # fmt: skip
    return {r["period"][:10]: (r["vendor_automated_resolutions"], r["vendor_conversations"]) for r in result.rows}


def test_late_verdicts_land_when_their_days_settle_each_day_once(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    # [AR] ticket AI agents (email) are evaluated 72 h after the first message: the files built
    # 10-31 00:00 give none of 10-28 … 10-30's email conversations a verdict; chat ones have theirs.
    first = stored(db)
    nulls = sorted({v[4] for k, v in first.items() if v[3] is None})
    assert nulls == UNSETTLED
    assert {c["conversation_id"] for c in ai.conversations() if c["channel"] == "messaging"}.isdisjoint(
        k for k, v in first.items() if v[3] is None)  # fmt: skip
    assert first == {**expected(ai, date(2026, 10, 1), date(2026, 10, 27), final=True),
                     **{k: v for k, v in first.items() if v[4] in UNSETTLED}}  # fmt: skip
    assert sum(v[3] is None for v in first.values()) == 9  # 10-28: 3, 10-29: 2, 10-30: 4

    ai.clock.advance(FOUR_DAYS)
    ai.clear_log()
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    # The 3 settled days once each (oldest first), then the new days; 10-31 is settled already.
    assert [d.isoformat() for d in ai.requested_days] == [
        "2026-10-28", "2026-10-29", "2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]  # fmt: skip
    assert ai.files.request_count(status=200) == 2 + 1 + 2 + 2 + 3  # files of 4: 6, 4, 5, 6 conversations; 3 empty days
    assert stored(db) == expected(ai, date(2026, 10, 1), date(2026, 10, 31), final=True)
    assert run.streams[0].rows_written == 9 + len(expected(ai, date(2026, 10, 31)))  # the late verdicts + 10-31
    assert state(db) == {"day": "2026-11-03", "unsettled": ["2026-11-01", "2026-11-02", "2026-11-03"]}

    ai.clear_log()
    idle = pull_ai(db, zd, **ai_settings(ai))  # the same day: nothing new, nothing settled since
    assert (idle.status, idle.streams[0].rows_written, ai.request_count(), ai.files.request_count()) == ("success", 0, 0, 0)


def test_vendor_figures_count_the_late_verdicts_once_settled(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    # Hand-checked from the simulator's days (conversations; verified resolutions, final / in the
    # 10-31 files): 10-27 6; 3/3 — 10-28 6; 4/1 — 10-29 4; 2/1 — 10-30 5; 2/0.
    assert vendor_days(db) == {"2026-10-27": (3, 6), "2026-10-28": (1, 6), "2026-10-29": (1, 4), "2026-10-30": (0, 5)}
    ai.clock.advance(FOUR_DAYS)
    assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    assert vendor_days(db) == {"2026-10-27": (3, 6), "2026-10-28": (4, 6), "2026-10-29": (2, 4), "2026-10-30": (2, 5)}


def test_a_failure_inside_a_settle_re_export_resumes_at_that_day_and_converges(tmp_path: Path, zd, ai) -> None:
    reference, broken = tmp_path / "reference.db", tmp_path / "broken.db"
    for db in (reference, broken):
        assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    ai.clock.advance(FOUR_DAYS)
    assert pull_ai(reference, zd, **ai_settings(ai)).status == "success"
    # 10-30 (files of 4 and 1): its second file keeps failing while the day is exported again.
    ai.files.faults.fail_next(50, 503, path=f"conversation_{ai.bot_id}_2026-10-30_000000000001.json")
    failed = pull_ai(broken, zd, **ai_settings(ai))
    assert failed.status == "failed"
    # 10-28 and 10-29 left the list with their last files; 10-30's first file is in, the day is not.
    assert state(broken) == {"day": "2026-10-30", "unsettled": ["2026-10-30"]}
    assert sum(v[3] is None for v in stored(broken).values()) == 4 - 3  # 3 of 10-30's late verdicts landed
    ai.files.faults.clear()
    ai.clear_log()
    assert pull_ai(broken, zd, **ai_settings(ai)).status == "success"
    assert [d.isoformat() for d in ai.requested_days] == [
        "2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]  # fmt: skip
    assert snapshot(broken)["bot_conversations"] == snapshot(reference)["bot_conversations"]
    assert state(broken) == state(reference)


def test_a_state_without_unsettled_days_is_continued_without_reading_old_days(tmp_path: Path, zd, ai) -> None:
    """A state written before late verdicts were handled: its days are not read again."""
    db = tmp_path / "zd.db"
    with Store(db) as store:
        store.write_batch("zendesk", STREAM, [], {"day": "2026-10-30"})
    idle = pull_ai(db, zd, **ai_settings(ai))
    assert (idle.status, ai.request_count()) == ("success", 0)
    ai.clock.advance(FOUR_DAYS)
    assert pull_ai(db, zd, **ai_settings(ai)).status == "success"
    assert [d.isoformat() for d in ai.requested_days] == ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]
    assert set(stored(db)) == set(expected(ai, date(2026, 10, 31), date(2026, 10, 31)))
    assert state(db) == {"day": "2026-11-03", "unsettled": ["2026-11-01", "2026-11-02", "2026-11-03"]}


def test_unsettled_days_that_left_the_window_are_reported_lost(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    with Store(db) as store:
        store.write_batch("zendesk", STREAM, [], {"day": "2026-10-30", "unsettled": ["2026-09-29", "2026-09-30", "2026-10-28"]})
    run = pull_ai(db, zd, **ai_settings(ai))
    assert run.status == "success", run.error
    assert run.streams[0].notices == [
        "ai_agent_conversations: days 2026-09-29, 2026-09-30 left the export's 30-day window before their "
        "automated-resolution verdicts settled: conversations still without a verdict keep none"
    ]
    assert ai.request_count() == 0  # 10-28 has not settled yet (11-01 00:00)
    assert state(db) == {"day": "2026-10-30", "unsettled": ["2026-10-28"]}


def test_settle_hours_zero_never_exports_a_day_twice(tmp_path: Path, zd, ai) -> None:
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, **ai_settings(ai, ai_agents_settle_hours=0)).status == "success"
    assert state(db) == {"day": "2026-10-30", "unsettled": []}
    ai.clock.advance(FOUR_DAYS)
    assert pull_ai(db, zd, **ai_settings(ai, ai_agents_settle_hours=0)).status == "success"
    assert len(ai.requested_days) == 30 + 4  # 10-31 … 11-03 only


def test_a_settle_delay_off_midnight_waits_for_the_next_daily_build(tmp_path: Path, zd, ai) -> None:
    """80 h: 10-26 ends 10-27 00:00, ready 10-30 08:00, in the files built 10-31 00:00 — settled."""
    db = tmp_path / "zd.db"
    assert pull_ai(db, zd, **ai_settings(ai, ai_agents_settle_hours=80)).status == "success"
    assert state(db) == {"day": "2026-10-30", "unsettled": ["2026-10-27", *UNSETTLED]}

# -- the CLI: a bad key, a kill -------------------------------------------------------------------
def _cli_env(zd: ZendeskSimulator, ai: ZendeskAiAgentsSimulator, db: Path, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPISYNC_")}
    env.update(
        KPISYNC_DB=str(db), KPISYNC_TIME_SCALE=str(TIME_SCALE), KPISYNC_ZENDESK_SUBDOMAIN="acme",
        KPISYNC_ZENDESK_EMAIL=zd.email, KPISYNC_ZENDESK_API_TOKEN=zd.api_token, KPISYNC_ZENDESK_BASE_URL=zd.url,
        KPISYNC_ZENDESK_AI_AGENTS_ORGANIZATION_ID=ai.organization_id, KPISYNC_ZENDESK_AI_AGENTS_BOT_ID=ai.bot_id,
        KPISYNC_ZENDESK_AI_AGENTS_API_KEY=key or ai.api_key, KPISYNC_ZENDESK_AI_AGENTS_BASE_URL=ai.url,
    )  # fmt: skip
    return env


def _pull_cmd() -> list[str]:
    return [sys.executable, "-m", "kpisync.cli", "pull", "zendesk", "--stream", STREAM]


def test_a_bad_key_exits_with_one_clear_line(tmp_path: Path, zd, ai) -> None:
    env = _cli_env(zd, ai, tmp_path / "zd.db", key="wrong-ai-key-777")
    result = subprocess.run(_pull_cmd(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "authentication failed (HTTP 401)" in lines[0] and "ai_agents_api_key" in lines[0]
    assert "wrong-ai-key-777" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert ai.request_count(SIGNED_URLS_PATH) == 1  # checked up front; a 401 is not retried


def test_kills_at_random_points_then_a_rerun_converges(tmp_path: Path) -> None:
    """Real processes on the real clock: the world ends a few minutes ago, so "today" agrees."""
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 55:
        pytest.skip("too close to midnight UTC: the simulator and the process could see different days")
    world = generate_world(seed=5, start=now - timedelta(days=33), end=now - timedelta(minutes=5), tickets_per_day=6)
    reference, killed = tmp_path / "reference.db", tmp_path / "killed.db"
    with make_sim(world) as zd, ZendeskAiAgentsSimulator(world, clock=SimClock(now, scale=1)) as ai:
        env = _cli_env(zd, ai, killed)
        assert subprocess.run(_pull_cmd(), env={**env, "KPISYNC_DB": str(reference)}, cwd=tmp_path,
                              capture_output=True, timeout=120).returncode == 0  # fmt: skip
        kills = 0
        for target in (3, 11, 24, 40):  # files served before the kill
            ai.files.clear_log()
            proc = subprocess.Popen(_pull_cmd(), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while proc.poll() is None and ai.files.request_count() < target and time.monotonic() < deadline:
                time.sleep(0.001)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        final = subprocess.run(_pull_cmd(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
    assert kills >= 2
    assert snapshot(killed)["bot_conversations"] == snapshot(reference)["bot_conversations"]
    assert len(snapshot(reference)["bot_conversations"]) > 100


# -- the KPI: the vendor figure beside kpisync's own ----------------------------------------------
def test_vendor_figures_stand_beside_the_automated_resolution_rate(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "metrics"))
    from kpi_world import World as KpiWorld  # noqa: PLC0415 - the metrics tests' hand-built store
    from kpi_world import epoch

    store = Store(tmp_path / "s.db")
    w = KpiWorld(store, source="zendesk")
    w.agent("a1", "Ann")
    w.agent("b1", "Answer Bot", bot=True)
    # T1: answered by the bot only, solved by a rule: kpisync's own automated resolution.
    w.ticket("1", "2026-01-05 09:00", "solved")
    w.msg("1", "2026-01-05 09:00", "customer")
    w.msg("1", "2026-01-05 09:01", "bot", "b1", automated=True)
    w.lifecycle("1", ("2026-01-05 09:00", "new"))
    w.status("1", "2026-01-05 09:05", "solved", "new", via="rule", actor="-1")
    # T2: escalated by the AI agent, answered and solved by Ann.
    w.ticket("2", "2026-01-05 10:00", "solved", assignee="a1")
    w.msg("2", "2026-01-05 10:00", "customer")
    w.msg("2", "2026-01-05 10:30", "agent", "a1")
    w.lifecycle("2", ("2026-01-05 10:00", "new"), ("2026-01-05 11:00", "solved"))
    w.commit()

    def conv(ident: str, ended: str, verdict: bool | None, ticket: str | None = None) -> BotConversation:
        end = datetime.fromisoformat(ended).replace(tzinfo=UTC)
        return BotConversation(external_id=ident, started_at=end - timedelta(minutes=5), ended_at=end,
                               export_day=end.date().isoformat(), automated_resolution=verdict,
                               escalated=ticket is not None, ticket_id=ticket)  # fmt: skip

    store.write_batch("zendesk", STREAM, [
        conv("c0", "2026-01-04 23:59", True),          # the day before: not in 01-05
        conv("c1", "2026-01-05 08:00", True),
        conv("c2", "2026-01-05 09:30", True),
        conv("c3", "2026-01-05 12:00", False),
        conv("c4", "2026-01-05 10:00", False, "2"),    # the escalation that became T2
        conv("c5", "2026-01-05 18:00", None),          # no verdict (yet): a conversation, not a resolution
        conv("c6", "2026-01-06 09:00", True),
    ], {"day": "2026-01-06"})  # fmt: skip
    window = {"since": "2026-01-05", "until": "2026-01-07", "period": "day", "now": epoch("2026-01-10 00:00")}
    result = evaluate(store, "automated_resolution_rate", **window)  # type: ignore[arg-type]
    by_day = {r["period"][:10]: r for r in result.rows}
    day5, day6 = by_day["2026-01-05"], by_day["2026-01-06"]
    # Own rate unchanged by the vendor rows: T1 of the two resolved tickets.
    assert (day5["value"], day5["numerator"], day5["count"]) == (0.5, 1, 2)
    # Vendor: c1, c2 verified of c1-c5 (five conversations ended on 01-05).
    assert (day5["vendor_automated_resolutions"], day5["vendor_conversations"], day5["vendor_rate"]) == (2, 5, 0.4)
    assert (day6["value"], day6["count"], day6["vendor_automated_resolutions"], day6["vendor_conversations"]) == (None, 0, 1, 1)
    assert any("never in it" in n for n in result.notes)
    by_agent = evaluate(store, "automated_resolution_rate", by="agent", **window)  # type: ignore[arg-type]
    assert all(r["vendor_conversations"] is None for r in by_agent.rows)
    assert any("--by source only" in n for n in by_agent.notes)
    store.close()


def test_without_the_stream_the_vendor_fields_are_empty_and_a_note_says_why(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    result = evaluate(store, "automated_resolution_rate", since="2026-01-05", until="2026-01-06")  # type: ignore[arg-type]
    assert all(r["vendor_automated_resolutions"] is None and r["vendor_conversations"] is None for r in result.rows)
    assert any(n.startswith("vendor figures unavailable: no Zendesk AI agents conversations synced") for n in result.notes)
    store.close()
