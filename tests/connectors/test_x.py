"""X connector against the X API v2 simulator: exact pulls, 7-day window, cost, access errors."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kpisync.connectors.x import XConfig, XConnector
from kpisync.connectors.x.connector import search_queries
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
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
from kpisync.fixtures.social_testing import X_OWN as OWN
from kpisync.fixtures.social_testing import x_expected as expected
from kpisync.fixtures.social_world import contains_term, generate_social_world
from kpisync.fixtures.x_sim import XSimulator, tweet_id, user_id

TOKEN = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid"


def make(sim: XSimulator, runtime: Runtime | None = None, **overrides: object) -> XConnector:
    settings = {"bearer_token": TOKEN, "account": "NimbusHQ", "base_url": sim.url, "keywords": KEYWORDS, "hashtags": TAGS}
    settings.update(overrides)
    return XConnector(XConfig(**settings), runtime or Runtime(time_scale=1))


def sim_for(clock_at: datetime, **kwargs: object) -> XSimulator:
    kwargs.setdefault("clock", SimClock(clock_at, scale=0))
    return XSimulator(world(), tokens={TOKEN: "paid", "no-plan": "unenrolled"}, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "kpisync.db") as s:
        yield s


def test_full_and_incremental_pulls_match_the_world_and_report_their_cost(store: Store) -> None:
    with sim_for(midpoint()) as sim:
        first = sync(make(sim), store, "x")
        assert first.status == "success", first.error
        got = rows(store, "x")
        assert_rows_match(got, expected(midpoint()))
        kinds = {k: sum(1 for r in got.values() if r["kind"] == k) for k in ("mention", "reply", "hashtag", "keyword")}
        # Hand-checked against the seed-7 world: all mentions of 20 days + 7 days of keyword posts.
        assert len(got) == 365 and kinds == {"mention": 215, "reply": 46, "hashtag": 35, "keyword": 69}
        assert sum(r["is_own_account"] for r in got.values()) == 7  # the brand's posts of the last 7 days
        # Cost visibility: the notices count exactly what the API returned (and billed).
        reads = [n for n in first.notices if re.search(r"read \d+ posts", n)]
        counted = sum(int(re.search(r"read (\d+) posts", n).group(1)) for n in reads)  # type: ignore[union-attr]
        assert len(reads) == 2 and counted == sim.post_reads and "$" in reads[0]

        sim.clock.set(midpoint() + timedelta(days=3))
        sim.clear_log()
        second = sync(make(sim), store, "x")
        later = expected(midpoint() + timedelta(days=3), windows=(midpoint(),))
        assert_rows_match(rows(store, "x"), later)
        # since_id polling: one page per feed for three days of news, nothing re-read.
        assert sim.request_count(r"/mentions") == 1 and sim.request_count(r"/search/recent") == 1
        assert second.rows_written == len(later) - len(got) == 80

        sim.clear_log()
        idle = sync(make(sim), store, "x")
        assert idle.rows_written == 0 and sim.request_count(r"/mentions|/search") == 2


def test_a_poll_after_more_than_seven_days_reads_what_it_can_and_says_what_is_missing(store: Store) -> None:
    with sim_for(midpoint()) as sim:
        sync(make(sim), store, "x")
        sim.clock.set(world().end)  # 8 days later: the saved since_id is out of recent search's reach
        run = sync(make(sim), store, "x")
    assert run.status == "success", run.error
    assert any("more than 7 days old" in n for n in run.notices)
    assert_rows_match(rows(store, "x"), expected(world().end, windows=(midpoint(),)))


def test_retweets_are_billed_but_not_stored_and_overlaps_are_one_row(store: Store) -> None:
    with sim_for(world().end) as sim:
        sync(make(sim), store, "x")
    got = rows(store, "x")
    retweets = [p for p in world().posts_on("x") if p.kind == "repost" and p.parent is not None and p.parent.is_own]
    assert retweets and not any(tweet_id(p) in got for p in retweets)
    both = [p for p in world().posts_on("x") if contains_term(p.text, OWN) and p.hashtags and p.kind == "post"]
    assert both and all(got[tweet_id(p)]["kind"] == "mention" for p in both)


def test_long_keyword_lists_are_split_into_queries_of_at_most_512_characters() -> None:
    keywords = [f"nimbus product {n:03d}" for n in range(40)]
    queries = search_queries(keywords, ["nimbus"])
    assert len(queries) > 1 and all(len(q) <= 512 for q in queries)
    assert all(q.endswith(" -is:retweet") for q in queries)
    assert sum(q.count('"') // 2 for q in queries) == 40


def test_an_app_without_paid_access_gets_one_clear_line(store: Store) -> None:
    with sim_for(world().end) as sim:
        with pytest.raises(AuthError) as refused:
            make(sim, bearer_token="no-plan").check()
        run = sync(make(sim, bearer_token="no-plan"), store, "x")
    message = str(refused.value)
    assert "no paid API access" in message and "client-not-enrolled" in message and "\n" not in message
    assert run.status == "failed" and "no paid API access" in (run.error or "")


def test_a_bad_token_names_the_setting_and_never_echoes_it(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with sim_for(world().end) as sim:
        with pytest.raises(AuthError) as bad:
            make(sim, bearer_token="wrong-token-123").check()
        sim.faults.fail_next(1, status=503)
        run = sync(make(sim), store, "x")
    assert "HTTP 401" in str(bad.value) and "bearer_token" in str(bad.value)
    assert scan_for_secrets([TOKEN, "wrong-token-123"], store_files(store), [caplog.text, str(bad.value), str(run.to_dict())]) == []


def test_rate_limit_resets_without_retry_after_are_waited_out(store: Store) -> None:
    """3 requests per 15-minute window per endpoint; the client waits for x-rate-limit-reset."""
    clock = SimClock(world().end, scale=3600)
    with sim_for(world().end, clock=clock, rate_limit=3) as sim:
        sim.faults.fail_next(1, status=500, path=r"/search/recent")
        reset = str(int(time.time() + 900))
        sim.faults.fail_next(1, status=429, path=r"/mentions", headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
                             body={"title": "Too Many Requests", "status": 429})  # fmt: skip
        runtime = Runtime(time_scale=3600)
        started = time.monotonic()
        run = sync(make(sim, runtime), store, "x")
        assert run.status == "success", run.error
    assert runtime.waited >= 850 and time.monotonic() - started < 30  # ≈ the 900 s to x-rate-limit-reset, scaled
    assert_rows_match(rows(store, "x"), expected(world().end))


def test_a_post_read_cap_stops_the_run_and_the_next_run_continues(store: Store) -> None:
    with sim_for(world().end) as sim:
        capped = sync(make(sim, max_post_reads_per_run=150), store, "x")
        assert any("max_post_reads_per_run" in n for n in capped.notices)
        assert 0 < store.count("social_mentions") < len(expected(world().end))
        for _ in range(5):
            sync(make(sim, max_post_reads_per_run=150), store, "x")
    assert_rows_match(rows(store, "x"), expected(world().end))


def test_the_800_mention_reach_is_reported(store: Store) -> None:
    busy = generate_social_world(seed=3, platforms=("x",), daily_volume={"x": 80})  # ~1000 mentions
    with XSimulator(busy, tokens={TOKEN: "paid"}) as sim:
        run = sync(make(sim, keywords=[], hashtags=["nimbuscloud"]), store, "x")
    assert run.status == "success", run.error
    assert any("800 most recent mentions" in n for n in run.notices)
    assert store.count("social_mentions") == 780  # the 800 newest mentions, less 20 retweets


def test_a_run_stopped_mid_poll_resumes_from_its_next_token(store: Store) -> None:
    with sim_for(world().end) as sim:
        connector = make(sim)
        assert sync(connector, store, "x", observer=StopAfter(connector, 1)).status == "interrupted"
        assert sync(make(sim), store, "x").status == "success"
    assert_rows_match(rows(store, "x"), expected(world().end))


def user_id_of(handle: str) -> str:
    return user_id(next(a for a in world().authors["x"] if a.handle == handle))


def test_repeat_runs_and_the_credential_check_look_the_account_up_only_when_it_changes(store: Store) -> None:
    """The brand's user id is kept in the stream state: after the first run, `check` and a run
    with nothing new bill nothing at all; a changed account setting is looked up again."""
    other = world().authors["x"][1].handle  # another X user, made the brand below
    with sim_for(midpoint()) as sim:
        sync(make(sim), store, "x")
        assert sim.request_count(r"/2/users/by") == 1
        sim.clear_log()
        billed = (sim.post_reads, sim.user_reads)
        make(sim).check()
        idle = sync(make(sim), store, "x")
        assert idle.rows_written == 0 and sim.request_count(r"/2/users/by") == 0
        assert (sim.post_reads, sim.user_reads) == billed and sim.request_count() == 1 + 2
        sync(make(sim, account="nimbushq"), store, "x")  # usernames are case-insensitive
        assert sim.request_count(r"/2/users/by") == 0

        sim.clear_log()  # one more brand account: looked up, the brand's timeline goes on
        sync(make(sim, other_accounts=[other]), store, "x")
        assert sim.request_count(r"/2/users/by") == 1
        assert [r.query.get("since_id") is not None for r in sim.request_log() if "/mentions" in r.path] == [True]

        sim.clear_log()  # another brand account altogether: its own mentions, read from the start
        sync(make(sim, account=other), store, "x")
        assert sim.request_count(r"/2/users/by") == 1
        mentions = [r for r in sim.request_log() if "/mentions" in r.path]
        assert mentions and all(r.path.endswith(f"/{user_id_of(other)}/mentions") for r in mentions)
        assert "since_id" not in mentions[0].query
    state = store.get_state("x", "mentions")
    assert state is not None and set(state["feeds"]) == {user_id_of("NimbusHQ"), user_id_of(other)}


def test_a_state_saved_before_the_sdk_fan_out_is_continued_not_read_again(store: Store) -> None:
    """Stores synced by earlier versions keep {"since_id"} / {"queries": {q: {"since_id"}}}: the
    next run polls on from there (billed reads!), it does not read everything again."""
    with sim_for(midpoint()) as sim:
        assert sync(make(sim), store, "x").status == "success"
        got = len(rows(store, "x"))
        mentions, search = store.get_state("x", "mentions"), store.get_state("x", "search")
        assert mentions is not None and search is not None
        store.write_batch("x", "mentions", [], {"since_id": next(iter(mentions["feeds"].values()))["mark"]})
        store.write_batch("x", "search", [], {"queries": {q: {"since_id": e["mark"]} for q, e in search["queries"].items()}})
        sim.clock.set(midpoint() + timedelta(days=3))
        sim.clear_log()
        run = sync(make(sim), store, "x")
        assert sim.request_count(r"/mentions") == 1 and sim.request_count(r"/search/recent") == 1
    later = expected(midpoint() + timedelta(days=3), windows=(midpoint(),))
    assert run.rows_written == len(later) - got == 80
    assert_rows_match(rows(store, "x"), later)
