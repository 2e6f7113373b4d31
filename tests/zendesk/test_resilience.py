"""Faults a real account throws at a sync: 429 storms, 5xx bursts, resets, truncated bodies,
504 on big pages, bad credentials, kills at random points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from kpisync.connectors.zendesk import ZendeskConfig, ZendeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World
from kpisync.fixtures.zendesk_sim import ZendeskSimulator

from .conftest import TIME_SCALE, assert_store_matches_world, make_sim, make_world, pull, snapshot


def test_429_storm_and_5xx_burst_are_survived(tmp_path: Path, world: World) -> None:
    with make_sim(world) as sim:
        too_many = {"error": "APIRateLimitExceeded", "description": "Number of allowed incremental export API requests per minute exceeded"}
        sim.faults.fail_next(3, 429, body=too_many, headers={"Retry-After": "30"}, path="incremental/tickets")
        sim.faults.fail_next(2, 429, body=too_many, path="incremental/organizations")  # no Retry-After
        sim.faults.fail_next(4, 503, path="ticket_events")
        sim.faults.fail_next(2, 500, path="incremental/users")
        sim.faults.reset_next(2, path="incremental/tickets")
        sim.faults.truncate_next(2, path="satisfaction_ratings")
        run = pull(tmp_path / "zd.db", sim)
        assert sim.faults.pending == 0
    assert run.status == "success", run.error
    waited = {s.name: s.waited for s in run.streams}
    assert waited["tickets"] >= 90 and waited["organizations"] >= 120  # Retry-After, else 60 s
    assert_store_matches_world(tmp_path / "zd.db", world)


def test_pacing_keeps_exports_under_the_rate_limit(tmp_path: Path, world: World) -> None:
    # A slower shared clock (100x) than elsewhere, so scheduling jitter of a loaded machine is
    # small against the 15 s spacing; the simulator's limiter would answer 429 to a burst.
    clock = SimClock(world.now + timedelta(minutes=2), scale=100)
    with ZendeskSimulator(world, clock=clock, api_token="zd-secret-token-123", incremental_limit_per_min=4) as sim:
        config = ZendeskConfig(subdomain="acme", email=sim.email, api_token=sim.api_token, base_url=sim.url,
                               export_requests_per_minute=4)
        with Store(tmp_path / "zd.db") as store:
            run = sync_source(store, "zendesk", ZendeskConnector(config, Runtime(time_scale=100)))
        assert sim.request_count(status=429) == 0
        arrivals = [r.at for r in sim.requests if r.path.startswith("/api/v2/incremental/")]
    assert run.status == "success", run.error
    mean_gap = (arrivals[-1] - arrivals[0]).total_seconds() / (len(arrivals) - 1)
    assert len(arrivals) > 8 and mean_gap >= 14.5  # 4 per minute on the simulated clock


def test_504_on_big_event_pages_drops_to_smaller_pages(tmp_path: Path, world: World) -> None:
    with make_sim(world, events_max_page_ok=250) as sim:
        run = pull(tmp_path / "zd.db", sim)
        sizes = {r.query["per_page"][0] for r in sim.requests if "ticket_events" in r.path}
    assert run.status == "success", run.error
    assert_store_matches_world(tmp_path / "zd.db", world)
    assert sizes == {"1000", "500", "250"}


def test_an_api_that_keeps_failing_fails_the_stream_not_the_store(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        sim.faults.fail_next(50, 503, path="satisfaction_ratings")
        run = pull(db, sim)
        assert run.status == "failed"
        assert "satisfaction_ratings" not in [s.name for s in run.streams if s.status == "success"]
        assert "failed after 8 attempts" in (run.error or "")
        sim.faults.clear()
        assert pull(db, sim).status == "success"
    assert_store_matches_world(db, world)


def _cli_env(sim: ZendeskSimulator, db: Path, token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPISYNC_")}
    env.update(
        KPISYNC_DB=str(db),
        KPISYNC_TIME_SCALE=str(TIME_SCALE),
        KPISYNC_ZENDESK_SUBDOMAIN="acme",
        KPISYNC_ZENDESK_EMAIL=sim.email,
        KPISYNC_ZENDESK_API_TOKEN=token or sim.api_token,
        KPISYNC_ZENDESK_BASE_URL=sim.url,
    )
    return env


def _kpisync(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kpisync.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_bad_credentials_exit_fast_with_one_clear_line(tmp_path: Path, world: World) -> None:
    with make_sim(world) as sim:
        started = time.monotonic()
        result = _kpisync("pull", "zendesk", env=_cli_env(sim, tmp_path / "zd.db", token="wrong-token-xyz"), cwd=tmp_path)
        elapsed = time.monotonic() - started
        assert sim.request_count() == 1  # no retry of a 401: the time is the process start-up
    assert result.returncode == 3
    assert elapsed < 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "authentication failed (HTTP 401)" in lines[0] and "api_token" in lines[0]
    assert "wrong-token-xyz" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_kill_at_random_points_then_rerun_converges(tmp_path: Path) -> None:
    world = make_world(days=30, per_day=25, seed=3)
    reference = tmp_path / "reference.db"
    killed = tmp_path / "killed.db"
    rng = random.Random(42)
    with make_sim(world) as sim:
        pull(reference, sim)
        env = _cli_env(sim, killed)
        kills = 0
        for _ in range(4):
            proc = subprocess.Popen(
                [sys.executable, "-m", "kpisync.cli", "pull", "zendesk"], env=env, cwd=tmp_path,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            # Kill after a random number of served requests (not a random time), so the kill
            # points land inside the pull however fast the machine is: even a pull with nothing
            # left to read makes 10 requests (one per stream, plus the agents list).
            target = len(sim.requests) + rng.randint(1, 9)
            deadline = time.monotonic() + 60
            while proc.poll() is None and len(sim.requests) < target and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        assert kills == 4
        final = _kpisync("pull", "zendesk", env=env, cwd=tmp_path)
        assert final.returncode == 0, final.stderr
    assert snapshot(killed) == snapshot(reference)
    assert_store_matches_world(killed, world)


def test_no_secret_in_store_logs_or_output(tmp_path: Path, world: World) -> None:
    db = tmp_path / "zd.db"
    with make_sim(world) as sim:
        sim.faults.fail_next(2, 503)
        result = _kpisync("pull", "zendesk", "--json", env=_cli_env(sim, db), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        secret = sim.api_token
    leftovers = [p for p in tmp_path.iterdir() if p.is_file()]
    assert leftovers
    for path in leftovers:
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.stdout + result.stderr
