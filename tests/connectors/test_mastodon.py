"""Mastodon connector against the Mastodon simulator: exact pulls, dedupe, faults, secrets."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kpisync.connectors.mastodon import MastodonConfig, MastodonConnector
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.fixtures.mastodon_sim import MastodonSimulator, status_id, visibility
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import (
    TAGS,
    StopAfter,
    assert_rows_match,
    midpoint,
    rows,
    scan_for_secrets,
    store_files,
    sync,
    world,
)
from kpisync.fixtures.social_testing import mastodon_expected as expected

TOKEN = "mst-7f3a9c1e5b2d8f40"


def make(sim: MastodonSimulator, runtime: Runtime | None = None, **overrides: object) -> MastodonConnector:
    settings = {"instance_url": "https://social.example", "base_url": sim.url, "access_token": TOKEN, "account": "nimbus@social.example", "hashtags": TAGS}
    settings.update(overrides)
    return MastodonConnector(MastodonConfig(**settings), runtime or Runtime(time_scale=1))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "kpisync.db") as s:
        yield s


def test_full_then_incremental_pulls_match_the_world_exactly(store: Store) -> None:
    with MastodonSimulator(world(), access_token=TOKEN, clock=SimClock(midpoint(), scale=0)) as sim:
        first = sync(make(sim), store, "mastodon")
        assert first.status == "success", first.error
        got = rows(store, "mastodon")
        assert_rows_match(got, expected(midpoint()))
        kinds = {k: sum(1 for r in got.values() if r["kind"] == k) for k in ("mention", "reply", "hashtag")}
        # Hand-checked against the seed-7 world: 20 days of Mastodon life.
        assert len(got) == 238 and kinds == {"mention": 109, "reply": 74, "hashtag": 55}
        assert sum(r["is_own_account"] for r in got.values()) == 20  # the brand's daily posts

        sim.clock.set(world().end)
        sim.clear_log()
        second = sync(make(sim), store, "mastodon")
        assert_rows_match(rows(store, "mastodon"), expected(world().end))
        new = len(expected(world().end)) - len(got)
        assert second.rows_written == new == 71
        # Forward polling from the newest id: ⌈new/page⌉ requests per feed, nothing re-read.
        assert sim.request_count(r"/notifications") <= 3 and sim.request_count(r"/tag/") <= 4

        sim.clear_log()
        idle = sync(make(sim), store, "mastodon")
        assert idle.rows_written == 0 and sim.request_count() == 1 + len(TAGS)


def test_overlapping_feeds_store_each_status_once_with_one_classification(store: Store) -> None:
    """A status that @mentions the brand and carries #nimbus is returned by both feeds."""
    both = [p for p in world().posts_on("mastodon") if p.mentions_brand and p.hashtags and visibility(p) == "public"]
    assert len(both) >= 10
    with MastodonSimulator(world(), access_token=TOKEN) as sim:
        sync(make(sim), store, "mastodon")
        got = rows(store, "mastodon")
    for post in both:
        row = got[status_id(post)]
        assert row["kind"] in ("mention", "reply") and row["matched_term"] == "@nimbus"
    assert store.count("social_mentions") == len(got) == len(expected(world().end))


def test_start_date_bounds_the_first_pull_and_direct_mentions_stay_private(store: Store) -> None:
    start = datetime(2026, 1, 26, tzinfo=world().start.tzinfo)
    with MastodonSimulator(world(), access_token=TOKEN) as sim:
        run = sync(make(sim, start_date=start), store, "mastodon")
        assert_rows_match(rows(store, "mastodon"), expected(world().end, start))
        # The backfill stops at the first page that reaches before start_date.
        assert sim.request_count(r"/notifications") == 1
    direct = [p for p in world().posts_on("mastodon") if visibility(p) == "direct" and p.posted_at >= start]
    assert direct and not any(status_id(p) in rows(store, "mastodon") for p in direct)
    assert any("direct mention" in n for n in run.notices)


def test_a_run_killed_mid_backfill_resumes_to_the_same_store(store: Store) -> None:
    with MastodonSimulator(world(), access_token=TOKEN) as sim:
        connector = make(sim)
        killed = sync(connector, store, "mastodon", observer=StopAfter(connector, 2))
        assert killed.status == "interrupted"
        assert 0 < store.count("social_mentions") < len(expected(world().end))
        assert sync(make(sim), store, "mastodon").status == "success"
    assert_rows_match(rows(store, "mastodon"), expected(world().end))


def test_rate_limit_budget_and_server_errors_are_survived_on_a_scaled_clock(store: Store) -> None:
    """5 requests per 5-minute window: the client stops when X-RateLimit-Remaining hits 0 and
    waits for X-RateLimit-Reset (ISO) instead of running into 429s. 600× time: a 300 s window
    costs half a real second."""
    clock = SimClock(world().end, scale=600)
    with MastodonSimulator(world(), access_token=TOKEN, clock=clock, rate_limit=5) as sim:
        sim.faults.fail_next(2, status=503, path=r"/notifications")
        sim.faults.fail_next(1, status=502, path=r"/tag/")
        runtime = Runtime(time_scale=600)
        run = sync(make(sim, runtime), store, "mastodon")
        assert run.status == "success", run.error
        assert sim.request_count(status=503) == 2 and sim.request_count(status=502) == 1
        assert sim.request_count(status=429) == 0 and sim.request_count(status=200) == 10
    assert runtime.waited > 0
    assert_rows_match(rows(store, "mastodon"), expected(world().end))


def test_a_429_without_retry_after_waits_for_the_iso_reset(store: Store) -> None:
    clock = SimClock(world().end, scale=600)
    with MastodonSimulator(world(), access_token=TOKEN, clock=clock) as sim:
        reset = datetime.fromtimestamp(time.time() + 300, timezone.utc).isoformat().replace("+00:00", "Z")
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        sim.faults.fail_next(1, status=429, body={"error": "Too many requests"}, headers=headers)
        runtime = Runtime(time_scale=600)
        started = time.monotonic()
        run = sync(make(sim, runtime), store, "mastodon")
        assert run.status == "success", run.error
    assert 290 <= runtime.waited <= 330 and time.monotonic() - started < 30  # scaled: 300 s unscaled
    assert_rows_match(rows(store, "mastodon"), expected(world().end))


def test_bad_token_and_missing_scope_fail_with_one_clear_line(store: Store) -> None:
    with MastodonSimulator(world(), access_token="the-right-one") as sim:
        with pytest.raises(AuthError) as bad:
            make(sim).check()
        message = str(bad.value)
        assert "HTTP 401" in message and "access_token" in message and TOKEN not in message
        assert "\n" not in message
        run = sync(make(sim), store, "mastodon")
        assert run.status == "failed" and "401" in (run.error or "")
    with MastodonSimulator(world(), access_token=TOKEN, scopes=("read:statuses",)) as sim:
        with pytest.raises(AuthError) as scope:
            make(sim).check()
        assert "read:notifications" in str(scope.value)


def test_the_token_never_reaches_the_store_or_the_logs(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with MastodonSimulator(world(), access_token=TOKEN) as sim:
        sim.faults.fail_next(1, status=500)
        run = sync(make(sim), store, "mastodon")
    texts = [caplog.text, str(run.to_dict())]
    assert scan_for_secrets([TOKEN], store_files(store), texts) == []


def test_an_unknown_hashtag_is_a_notice_not_a_failure(store: Store) -> None:
    with MastodonSimulator(world(), access_token=TOKEN) as sim:
        run = sync(make(sim, hashtags=["nimbus", "neverused"]), store, "mastodon")
    assert run.status == "success"
    assert any("#neverused" in n for n in run.notices)


def test_a_state_saved_before_the_sdk_fan_out_is_continued_not_read_again(store: Store) -> None:
    """Stores synced by earlier versions keep {"min_id"} / {"tags": {tag: {"min_id"}}}: the next
    run pages forward from there (⌈new/page⌉ requests per feed), it does not backfill again."""
    with MastodonSimulator(world(), access_token=TOKEN, clock=SimClock(midpoint(), scale=0)) as sim:
        sync(make(sim), store, "mastodon")
        mentions, tags = store.get_state("mastodon", "mentions"), store.get_state("mastodon", "hashtags")
        assert mentions is not None and tags is not None
        store.write_batch("mastodon", "mentions", [], {"min_id": mentions["feeds"]["mentions"]["mark"]})
        store.write_batch("mastodon", "hashtags", [], {"tags": {t: {"min_id": e["mark"]} for t, e in tags["tags"].items()}})
        sim.clock.set(world().end)
        sim.clear_log()
        run = sync(make(sim), store, "mastodon")
        assert run.rows_written == 71  # the same new statuses as the incremental pull above
        assert sim.request_count(r"/notifications") <= 3 and sim.request_count(r"/tag/") <= 4
        assert not any("max_id" in r.query for r in sim.request_log())
    assert_rows_match(rows(store, "mastodon"), expected(world().end))
