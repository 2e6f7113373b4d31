"""Bluesky connector against the PDS simulator: exact pulls, session reuse, faults, secrets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kpisync.connectors.bluesky import BlueskyConfig, BlueskyConnector
from kpisync.connectors.bluesky.connector import _upgrade
from kpisync.core.errors import ApiError, AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.status import source_status
from kpisync.core.store import Store
from kpisync.fixtures.bluesky_sim import BlueskySimulator, post_uri
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import (
    KEYWORDS,
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
from kpisync.fixtures.social_testing import bluesky_expected as expected

PASSWORD = "k3yq-p9w2-zz8r-4mna"


def make(sim: BlueskySimulator, tmp_path: Path, runtime: Runtime | None = None, **overrides: object) -> BlueskyConnector:
    settings = {
        "identifier": "nimbus.bsky.social", "app_password": PASSWORD, "pds_url": "https://bsky.social",
        "base_url": sim.url, "keywords": KEYWORDS, "hashtags": TAGS,
        "session_store": "file", "session_file": str(tmp_path / "sessions.json"),
    }  # fmt: skip
    settings.update(overrides)
    return BlueskyConnector(BlueskyConfig(**settings), runtime or Runtime(time_scale=1))


def saved_jwts(session_file: Path) -> list[str]:
    """The access and refresh JWTs of every session in the file (kpisync.core.sdk.auth's format)."""
    return [v for s in json.loads(session_file.read_text()).values() for k, v in s.items() if k in ("value", "refresh")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "kpisync.db") as s:
        yield s


def test_full_then_incremental_pulls_match_the_world_exactly(store: Store, tmp_path: Path) -> None:
    with BlueskySimulator(world(), app_password=PASSWORD, clock=SimClock(midpoint(), scale=0)) as sim:
        first = sync(make(sim, tmp_path), store, "bluesky")
        assert first.status == "success", first.error
        got = rows(store, "bluesky")
        assert_rows_match(got, expected(midpoint()))
        kinds = {k: sum(1 for r in got.values() if r["kind"] == k) for k in ("mention", "reply", "quote", "hashtag", "keyword")}
        # Hand-checked against the seed-7 world: 20 days of Bluesky life.
        assert len(got) == 347 and kinds == {"mention": 137, "reply": 44, "quote": 9, "hashtag": 60, "keyword": 97}
        assert sum(r["is_own_account"] for r in got.values()) == 21  # the brand's own posts, found by search
        assert got[post_uri(world().posts_on("bluesky")[0])]["url"].startswith("https://bsky.app/profile/")

        sim.clock.set(world().end)
        sim.clear_log()
        second = sync(make(sim, tmp_path), store, "bluesky")
        assert second.status == "success", second.error
        assert_rows_match(rows(store, "bluesky"), expected(world().end))
        assert second.rows_written == len(expected(world().end)) - len(got) == 124

        sim.clear_log()
        idle = sync(make(sim, tmp_path), store, "bluesky")
        # One listNotifications and one searchPosts per query; the session was reused and the
        # posts at the boundary instant are known (seen_uris), so nothing is enriched again.
        assert idle.rows_written == 0
        assert sim.request_count(r"listNotifications") == 1 and sim.request_count(r"searchPosts") == 4
        assert sim.request_count() == 5  # no login, nothing re-enriched


def test_a_state_written_before_the_fan_out_is_resumed_not_read_again(store: Store, tmp_path: Path) -> None:
    """Stream states of the connector before core/sdk/fanout.py ({"seen", "seen_uris"} per list,
    mid-poll also {"head", "head_uris", "cursor"}) keep working: an idle sync after the upgrade
    costs one request per list, and the next sync brings exactly the new posts."""
    with BlueskySimulator(world(), app_password=PASSWORD, clock=SimClock(midpoint(), scale=0)) as sim:
        assert sync(make(sim, tmp_path), store, "bluesky").status == "success"
        mark = store.get_state("bluesky", "notifications")["feeds"]["notifications"]["mark"]  # type: ignore[index]
        queries = store.get_state("bluesky", "search")["queries"]  # type: ignore[index]
        store.write_batch("bluesky", "notifications", [], {"seen": mark["at"], "seen_uris": mark["ids"]})
        old = {q: {"seen": e["mark"]["at"], "seen_uris": e["mark"]["ids"]} for q, e in queries.items()}
        store.write_batch("bluesky", "search", [], {"queries": old})
        sim.clear_log()
        idle = sync(make(sim, tmp_path), store, "bluesky")
        assert idle.rows_written == 0 and sim.request_count() == 5
        sim.clock.set(world().end)
        assert sync(make(sim, tmp_path), store, "bluesky").status == "success"
    assert_rows_match(rows(store, "bluesky"), expected(world().end))
    mid_poll = {"seen": None, "seen_uris": [], "head": "2026-01-20T10:00:00Z", "head_uris": ["at://a"], "cursor": "c2"}
    assert _upgrade(mid_poll) == {"head": {"at": "2026-01-20T10:00:00Z", "ids": ["at://a"]}, "older": "c2"}


def test_posts_found_by_several_queries_are_one_row(store: Store, tmp_path: Path) -> None:
    """"Nimbus Cloud … #nimbus @nimbus.bsky.social" matches two keywords, a tag and a mention."""
    with BlueskySimulator(world(), app_password=PASSWORD) as sim:
        sync(make(sim, tmp_path), store, "bluesky")
        served = sim.request_count(r"searchPosts|getPosts")
    got = rows(store, "bluesky")
    multi = [p for p in world().posts_on("bluesky") if p.mentions_brand and p.hashtags and "Nimbus Cloud" in p.text]
    assert multi and all(got[post_uri(p)]["kind"] == "mention" for p in multi)
    assert store.count("social_mentions") == len(expected(world().end)) and served > 4


def test_the_session_is_created_once_and_reused_across_runs(store: Store, tmp_path: Path) -> None:
    """createSession allows ~100 calls a day; here 2. Five runs must log in once."""
    with BlueskySimulator(world(), app_password=PASSWORD, logins_per_day=2) as sim:
        for _ in range(5):
            run = sync(make(sim, tmp_path), store, "bluesky")
            assert run.status == "success", run.error
        assert sim.logins == 1 and sim.request_count(r"createSession") == 1
    session_file = tmp_path / "sessions.json"
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    # The tokens are in that file only: not in the store (rows, state) nor in the run summary.
    tokens = saved_jwts(session_file)
    assert len(tokens) == 2
    assert scan_for_secrets(tokens + [PASSWORD], store_files(store), [json.dumps(run.to_dict())]) == []


def test_an_expired_access_token_is_refreshed_not_recreated(store: Store, tmp_path: Path) -> None:
    with BlueskySimulator(world(), app_password=PASSWORD) as sim:
        assert sync(make(sim, tmp_path), store, "bluesky").status == "success"
        sim.clock.advance(3 * 3600)  # access tokens live 2 hours
        run = sync(make(sim, tmp_path), store, "bluesky")
        assert run.status == "success", run.error
        assert sim.request_count(r"refreshSession") == 1 and sim.logins == 1
        assert sim.request_count(status=400) == 1  # the one ExpiredToken answer


def test_losing_the_session_at_the_daily_login_limit_is_one_clear_error(store: Store, tmp_path: Path) -> None:
    with BlueskySimulator(world(), app_password=PASSWORD, logins_per_day=1) as sim:
        assert sync(make(sim, tmp_path), store, "bluesky").status == "success"
        (tmp_path / "sessions.json").unlink()
        with pytest.raises(ApiError) as refused:
            make(sim, tmp_path).check()
    message = str(refused.value)
    assert "createSession is rate limited" in message and "100 logins a day" in message
    assert "sessions.json" in message and "\n" not in message and PASSWORD not in message


def test_a_wrong_app_password_fails_fast_and_says_which_setting(store: Store, tmp_path: Path) -> None:
    with BlueskySimulator(world(), app_password="the-real-one") as sim:
        with pytest.raises(AuthError) as bad:
            make(sim, tmp_path).check()
        assert sim.request_count() == 1
    assert "app_password" in str(bad.value) and PASSWORD not in str(bad.value)


def test_a_run_killed_mid_search_resumes_to_the_same_store(store: Store, tmp_path: Path) -> None:
    with BlueskySimulator(world(), app_password=PASSWORD) as sim:
        connector = make(sim, tmp_path)
        killed = sync(connector, store, "bluesky", observer=StopAfter(connector, 5))
        assert killed.status == "interrupted"
        assert sync(make(sim, tmp_path), store, "bluesky").status == "success"
    assert_rows_match(rows(store, "bluesky"), expected(world().end))


def test_rate_limits_and_server_errors_are_survived_on_a_scaled_clock(store: Store, tmp_path: Path) -> None:
    clock = SimClock(world().end, scale=1200)
    with BlueskySimulator(world(), app_password=PASSWORD, clock=clock, rate_limit=10) as sim:
        sim.faults.fail_next(2, status=502, path=r"searchPosts")
        sim.faults.reset_next(1, path=r"getProfiles")
        runtime = Runtime(time_scale=1200)
        started = time.monotonic()
        run = sync(make(sim, tmp_path, runtime), store, "bluesky")
        assert run.status == "success", run.error
        assert runtime.waited > 0  # paced by ratelimit-remaining / ratelimit-reset
    assert time.monotonic() - started < 30  # the waits ran on the scaled clock
    assert_rows_match(rows(store, "bluesky"), expected(world().end))


def test_start_date_bounds_the_first_pull(store: Store, tmp_path: Path) -> None:
    start = world().end - timedelta(days=3)
    with BlueskySimulator(world(), app_password=PASSWORD) as sim:
        assert sync(make(sim, tmp_path, start_date=start), store, "bluesky").status == "success"
    assert_rows_match(rows(store, "bluesky"), expected(world().end, start))


def test_kpisync_pull_keeps_the_session_next_to_the_store_and_prints_no_secret(tmp_path: Path) -> None:
    """The real command twice: one login, tokens only in the 0600 session file, none in the
    output, the store or the status."""
    db = tmp_path / "data" / "kpi.db"
    db.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPISYNC_", "PYTHON_KEYRING"))}
    env.update(
        HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", KPISYNC_DB=str(db),
        KPISYNC_BLUESKY_IDENTIFIER="nimbus.bsky.social", KPISYNC_BLUESKY_APP_PASSWORD=PASSWORD,
        KPISYNC_BLUESKY_KEYWORDS=",".join(KEYWORDS), KPISYNC_BLUESKY_HASHTAGS=",".join(TAGS),
    )  # fmt: skip
    command = [sys.executable, "-c", "from kpisync.cli.main import run; run()"]
    with BlueskySimulator(world(), app_password=PASSWORD) as sim:
        env["KPISYNC_BLUESKY_BASE_URL"] = sim.url
        outputs = []
        for _ in range(2):
            done = subprocess.run([*command, "pull", "bluesky"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            outputs += [done.stdout, done.stderr]
        assert sim.logins == 1
    session_file = db.parent / "kpi.db.bluesky-session.json"
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    tokens = saved_jwts(session_file)
    with Store(db) as store:
        assert store.count("social_mentions") == len(expected(world().end))
        outputs.append(json.dumps(source_status(store)))  # what `kpisync status` shows
        files = store_files(store)
    assert scan_for_secrets([*tokens, PASSWORD], files, outputs) == []
