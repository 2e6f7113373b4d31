"""`kpisync pull freshdesk` as a real process: kill -9 and rerun, a bad key, no secret leaks."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpisync.core.store import Store
from kpisync.fixtures.freshdesk_sim import FreshdeskSim
from kpisync.fixtures.simserver import SimClock

from .test_freshdesk import KEY, assert_store_equals_world, make_world

SCALE = 60  # client and simulator clocks: a Growth-plan minute lasts one real second


def kpisync_command() -> list[str]:
    beside = Path(sys.executable).parent / "kpisync"
    found = str(beside) if beside.exists() else shutil.which("kpisync")
    return [found] if found else [sys.executable, "-c", "from kpisync.cli.main import run; run()"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KPISYNC_", "PYTHON_KEYRING"))}
    home = tmp_path / "home"
    home.mkdir()
    base.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), KPISYNC_TIME_SCALE=str(SCALE),
                PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", COLUMNS="200")  # fmt: skip
    return base


def freshdesk_env(env: dict[str, str], sim: FreshdeskSim, key: str = KEY) -> dict[str, str]:
    return dict(env, KPISYNC_FRESHDESK_BASE_URL=sim.url, KPISYNC_FRESHDESK_API_KEY=key)


def run_pull(env: dict[str, str], db: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kpisync_command(), "pull", "freshdesk", "--db", str(db)], env=env, cwd=db.parent,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def growth_sim() -> Iterator[tuple[FreshdeskSim, object]]:
    world = make_world(days=30, per_day=10, seed=5)
    with FreshdeskSim(world, api_key=KEY, plan="growth", clock=SimClock(world.now, scale=SCALE)) as sim:
        yield sim, world
    assert sim.errors == []


def test_kill_9_at_random_points_then_rerun_converges_to_the_world(tmp_path: Path, env: dict[str, str], growth_sim) -> None:
    sim, world = growth_sim
    db = tmp_path / "kpi.db"
    rng = random.Random(20240301)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([*kpisync_command(), "pull", "freshdesk", "--db", str(db)], env=freshdesk_env(env, sim),
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # Kill after a random number of served requests, not after a random time: the kill
        # points then do not depend on how fast the machine is.
        target = sim.request_count() + rng.randint(3, 60)
        deadline = time.monotonic() + 60
        while proc.poll() is None and sim.request_count() < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 2, "the pull finished before it could be killed; make the world bigger"
    final = run_pull(freshdesk_env(env, sim), db)
    assert final.returncode == 0, final.stderr
    with Store(db) as store:
        assert_store_equals_world(store, world)
        # and nothing is fetched twice on the next run
        sim.clear_log()
    again = run_pull(freshdesk_env(env, sim), db)
    assert again.returncode == 0 and sim.request_count(r"/conversations$") == 0


def test_a_bad_key_fails_fast_with_one_clear_line(tmp_path: Path, env: dict[str, str]) -> None:
    world = make_world(days=3, per_day=5)
    with FreshdeskSim(world, api_key=KEY) as sim:
        started = time.monotonic()
        result = run_pull(freshdesk_env(env, sim, key="wrong-key-4242"), tmp_path / "kpi.db")
        elapsed = time.monotonic() - started
        assert sim.request_count() == 1  # no retries of a 401
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: freshdesk: authentication failed (HTTP 401)"), result.stderr
    assert "KPISYNC_FRESHDESK_API_KEY" in lines[0] and "wrong-key-4242" not in result.stderr + result.stdout
    assert elapsed < 10


def test_the_api_key_is_never_stored_or_printed(tmp_path: Path, env: dict[str, str]) -> None:
    world = make_world(days=10, per_day=8)
    db = tmp_path / "kpi.db"
    with FreshdeskSim(world, api_key=KEY) as sim:
        sim.faults.fail_next(2, status=500, path="/conversations$")
        result = run_pull(freshdesk_env(env, sim), db)
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    for file in tmp_path.glob("kpi.db*"):
        data = file.read_bytes()
        assert KEY.encode() not in data, file.name
    with Store(db) as store:
        assert store.count("tickets") == len(world.tickets)
