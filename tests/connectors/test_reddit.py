"""Reddit connector against the Reddit simulator: exact pulls, the 1000-item cap, OAuth, faults."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kpisync.connectors.reddit import RedditConfig, RedditConnector
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.fixtures.reddit_sim import RedditSimulator, post_fullname
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import (
    KEYWORDS,
    StopAfter,
    assert_rows_match,
    midpoint,
    rows,
    scan_for_secrets,
    store_files,
    sync,
    world,
)
from kpisync.fixtures.social_testing import reddit_expected as expected
from kpisync.fixtures.social_world import SocialWorld, generate_social_world

SECRET = "r3dd1t-s3cr3t-9Fq2"
SUBS = ["nimbus", "selfhosted"]


def make(sim: RedditSimulator, runtime: Runtime | None = None, **overrides: object) -> RedditConnector:
    settings = {
        "client_id": "reddit-app", "client_secret": SECRET, "username": "nimbus_ops",
        "keywords": KEYWORDS, "subreddits": SUBS, "own_accounts": ["NimbusHQ"],
        "base_url": sim.url, "auth_url": sim.url,
    }  # fmt: skip
    settings.update(overrides)
    return RedditConnector(RedditConfig(**settings), runtime or Runtime(time_scale=1))


def sim_for(source: SocialWorld, at: datetime, **kwargs: object) -> RedditSimulator:
    kwargs.setdefault("clock", SimClock(at, scale=0))
    return RedditSimulator(source, client_secret=SECRET, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "kpisync.db") as s:
        yield s


def test_full_then_incremental_pulls_match_the_world_exactly(store: Store) -> None:
    with sim_for(world(), midpoint()) as sim:
        first = sync(make(sim), store, "reddit")
        assert first.status == "success", first.error
        got = rows(store, "reddit")
        assert_rows_match(got, expected(midpoint()))
        # Hand-checked against the seed-7 world: 20 days of Reddit posts naming the brand.
        assert len(got) == 88 and sum(r["kind"] == "mention" for r in got.values()) == 37
        assert sum(r["is_own_account"] for r in got.values()) == 3  # the brand's weekly posts
        assert all(a.startswith("python:kpisync:") and a.endswith("(by /u/nimbus_ops)") for a in sim.user_agents)

        sim.clock.set(world().end)
        sim.clear_log()
        second = sync(make(sim), store, "reddit")
        assert_rows_match(rows(store, "reddit"), expected(world().end))
        assert second.rows_written == len(expected(world().end)) - len(got)

        sim.clear_log()
        idle = sync(make(sim), store, "reddit")
        # One listing request per poll (sitewide + 2 subreddits), plus the token.
        assert idle.rows_written == 0 and sim.request_count(r"search") == 3


def test_sitewide_and_subreddit_searches_overlap_into_one_row_each(store: Store) -> None:
    with sim_for(world(), world().end) as sim:
        run = sync(make(sim), store, "reddit")
    per_stream = {s.name: s.records for s in run.streams}
    in_subs = [p for p in world().posts_on("reddit") if p.subreddit in SUBS and post_fullname(p) in expected(world().end)]
    assert per_stream["subreddits"] == len(in_subs) > 0
    assert store.count("social_mentions") == len(expected(world().end)) == per_stream["search"]


def test_the_1000_item_listing_cap_is_reported_as_a_gap_risk(store: Store) -> None:
    busy = generate_social_world(seed=5, platforms=("reddit",), daily_volume={"reddit": 90})
    middle = busy.start + timedelta(days=14)
    with sim_for(busy, middle) as sim:
        first = sync(make(sim), store, "reddit")
        assert any("1000-item listing limit" in n and "were not read" in n for n in first.notices)
        sim.clock.set(busy.end)  # 18 days later: far more than 1000 new posts
        second = sync(make(sim), store, "reddit")
    assert any("before reaching the last poll" in n and "poll more often" in n for n in second.notices)
    # The subreddit searches reach further back than the capped sitewide listing.
    assert second.streams[1].records > 0


def test_bad_client_credentials_fail_fast_with_the_settings_named(store: Store) -> None:
    with sim_for(world(), world().end) as sim:
        with pytest.raises(AuthError) as bad:
            make(sim, client_secret="nope").check()
        assert sim.request_count() == 1
    message = str(bad.value)
    assert "HTTP 401" in message and "client_secret" in message and "approval" in message
    assert "nope" not in message and "\n" not in message


def test_an_expired_token_is_renewed_and_the_secret_is_never_stored(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with sim_for(world(), world().end, token_ttl=0.0) as sim:  # every token is dead on arrival
        dead = sync(make(sim), store, "reddit")
    assert dead.status == "failed" and "refused a fresh token" in (dead.error or "")
    with sim_for(world(), world().end) as sim:
        connector = make(sim)
        connector.token()
        sim.tokens = {}  # the server forgets every token: the next call gets a 401 and renews
        run = sync(connector, store, "reddit")
        assert run.status == "success", run.error
        assert sim.request_count(r"access_token") == 2
    assert scan_for_secrets([SECRET], store_files(store), [caplog.text, str(run.to_dict())]) == []


def test_rate_limits_and_server_errors_are_survived_on_a_scaled_clock(store: Store) -> None:
    """4 requests per 10-minute window; X-Ratelimit-Reset is in seconds, relative."""
    clock = SimClock(world().end, scale=3000)
    with sim_for(world(), world().end, clock=clock, rate_limit=4) as sim:
        sim.faults.fail_next(1, status=503, path=r"/search")
        sim.faults.fail_next(1, status=500, path=r"access_token")
        runtime = Runtime(time_scale=3000)
        started = time.monotonic()
        run = sync(make(sim, runtime, subreddits=SUBS + ["technology"]), store, "reddit")
        assert run.status == "success", run.error
        assert sim.request_count(status=200) >= 5  # more than one window's worth
    assert runtime.waited > 0 and time.monotonic() - started < 30  # paced by X-Ratelimit-Reset, on the scaled clock
    assert_rows_match(rows(store, "reddit"), expected(world().end))


def test_a_generic_user_agent_would_be_throttled(store: Store) -> None:
    with sim_for(world(), world().end) as sim:
        connector = make(sim, Runtime(time_scale=1000), user_agent="python-requests/2.31")
        connector.http.max_attempts = 2
        run = sync(connector, store, "reddit")
    assert run.status == "failed" and "429" in (run.error or "")


def test_a_run_stopped_mid_listing_resumes_to_the_same_store(store: Store) -> None:
    busy = generate_social_world(seed=5, platforms=("reddit",), daily_volume={"reddit": 20})
    with sim_for(busy, busy.end) as sim:
        connector = make(sim)
        assert sync(connector, store, "reddit", observer=StopAfter(connector, 2)).status == "interrupted"
        assert sync(make(sim), store, "reddit").status == "success"
    assert_rows_match(rows(store, "reddit"), expected(busy.end, source=busy))
