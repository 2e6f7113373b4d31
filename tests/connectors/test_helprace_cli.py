"""`kpisync pull helprace` and `kpisync import helprace-ratings` as real processes.

kill -9 at random points of a pull, then a rerun, must give the same store as one clean pull;
a bad key is one line and a non-zero exit; the key never reaches the output or the store; the
satisfaction CSV import keeps good rows, reports bad ones by line and is idempotent.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kpisync.connectors.helprace import HelpraceConfig, HelpraceConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
from kpisync.fixtures.helprace_sim import HelpraceSimulator, satisfaction_csv
from kpisync.fixtures.world import UTC, World, generate_world

START = datetime(2024, 3, 1, tzinfo=UTC)
EMAIL, KEY = "ops@acme.test", "hr-key-5f1c9e2a7b"
TABLES = ("tickets", "messages", "users", "organizations", "groups", "ticket_status_events", "tombstones")


def make_world() -> World:
    """The seed-11 world of test_helprace.py: 231 visible tickets, 48 ratings."""
    return generate_world(11, START, START + timedelta(days=30), tickets_per_day=8)


def clean_pull(sim: HelpraceSimulator, path: Path, **settings: Any) -> None:
    config = HelpraceConfig(base_url=sim.url, email=EMAIL, api_key=KEY, requests_per_minute=1e6, **settings)
    with Store(path) as store:
        assert sync_source(store, "helprace", HelpraceConnector(config, Runtime(time_scale=1))).status == "success"


def kpisync_executable() -> str:
    beside = Path(sys.executable).parent / "kpisync"
    return str(beside) if beside.exists() else str(shutil.which("kpisync"))


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def sim(world: World) -> Iterator[HelpraceSimulator]:
    with HelpraceSimulator(world, email=EMAIL, api_key=KEY, limit_per_min=1_000_000) as s:
        yield s
        assert s.errors == []


def environment(tmp_path: Path, sim: HelpraceSimulator, key: str = KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPISYNC_", "PYTHON_KEYRING"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", COLUMNS="200",
        KPISYNC_DB=str(tmp_path / "kpisync.db"), KPISYNC_TIME_SCALE="2000",
        KPISYNC_HELPRACE_BASE_URL=sim.url, KPISYNC_HELPRACE_EMAIL=EMAIL, KPISYNC_HELPRACE_API_KEY=key,
    )  # fmt: skip
    env.update(extra)
    return env


def kpisync(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kpisync_executable(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical row of the store, without the columns that record when it was written."""
    with Store(path) as store:
        out = {}
        for table in TABLES:
            rows = [dict(r) for r in store.query(f"SELECT * FROM {table} ORDER BY external_id")]
            out[table] = [tuple(v for k, v in r.items() if k not in ("synced_at", "vanished_at")) for r in rows]
        return out


def test_kill_9_at_random_points_then_rerun_converges(world: World, sim: HelpraceSimulator, tmp_path: Path) -> None:
    clean = tmp_path / "clean.db"
    clean_pull(sim, clean, page_size=20)
    assert len(sim.request_log()) == 5 + 12 + 231  # pages of 20: 92 users, 231 tickets; replies
    env = environment(tmp_path, sim, KPISYNC_HELPRACE_PAGE_SIZE="20")
    rng = random.Random(6)
    killed = 0
    for target in (rng.randint(10, 60) for _ in range(3)):  # die after this many requests
        sim.clear_log()
        proc = subprocess.Popen([kpisync_executable(), "pull", "helprace"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while len(sim.request_log()) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
    assert killed == 3
    done = kpisync("pull", "helprace", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert dump(tmp_path / "kpisync.db") == dump(clean)


def test_a_bad_key_is_one_line_and_exit_3(sim: HelpraceSimulator, tmp_path: Path) -> None:
    result = kpisync("pull", "helprace", env=environment(tmp_path, sim, key="not-the-key-8812"), cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "error: helprace: authentication failed (HTTP 401) — check email and api_key (KPISYNC_HELPRACE_EMAIL, "
        "KPISYNC_HELPRACE_API_KEY); the key is under Settings > Integrations > API in Helprace"
    ]
    assert "not-the-key-8812" not in result.stdout + result.stderr


def test_the_key_never_reaches_output_or_store_and_status_names_the_csat_gap(sim: HelpraceSimulator, tmp_path: Path) -> None:
    env = environment(tmp_path, sim)
    pulled = kpisync("pull", "helprace", env=env, cwd=tmp_path)
    as_json = kpisync("pull", "helprace", "--json", env=env, cwd=tmp_path)
    status = kpisync("status", env=env, cwd=tmp_path)
    assert pulled.returncode == as_json.returncode == status.returncode == 0, pulled.stderr
    assert "notice: Helprace's API has no satisfaction ratings: import Helprace's satisfaction export with " \
           "`kpisync import helprace-ratings FILE.csv`" in " ".join(status.stdout.split())  # fmt: skip
    token = base64.b64encode(f"{EMAIL}/api_key:{KEY}".encode()).decode()
    texts = [p.stdout + p.stderr for p in (pulled, as_json, status)]
    files = [p.read_bytes() for p in tmp_path.glob("kpisync.db*") if p.is_file()]
    for secret in (KEY, token):
        assert not any(secret in text for text in texts) and not any(secret.encode() in blob for blob in files)


def test_ratings_csv_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(
    world: World, sim: HelpraceSimulator, tmp_path: Path
) -> None:
    env = environment(tmp_path, sim)
    clean_pull(sim, tmp_path / "kpisync.db")  # the agents, for the Agent column
    export = satisfaction_csv(world)
    rows = export.splitlines()
    bad = ["77,Superb,,,2024-03-04 10:00:00", "78,Good,,,last tuesday", ",Bad,,,2024-03-04 10:00:00"]
    file = tmp_path / "satisfaction.csv"
    file.write_text("\n".join([rows[0], *rows[1:4], *bad, *rows[4:]]) + "\n", encoding="utf-8")
    rated = world.ratings()
    assert len(rated) == len(rows) - 1 == 48

    first = kpisync("import", "helprace-ratings", str(file), env=env, cwd=tmp_path)
    assert first.returncode == 1
    assert f"imported 48 rating(s) into source 'helprace' (48 new or changed)" in first.stdout
    assert first.stderr.splitlines()[1:] == [
        "  line 5: unknown rating 'Superb' (use Good/Neutral/Bad or a number 1..5)",
        "  line 6: unreadable date 'last tuesday' (use YYYY-MM-DD HH:MM:SS, UTC)",
        "  line 7: no ticket id",
    ]
    with Store(tmp_path / "kpisync.db") as store:
        got = {r[0]: tuple(r[1:]) for r in store.query("SELECT ticket_id, sentiment, agent_id, responded_at FROM ratings")}
    want = {
        str(r.ticket_id): ((r.score > 0) - (r.score < 0), str(r.agent_id) if r.agent_id else None,
                           r.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for r in rated
    }  # fmt: skip
    assert got == want

    again = kpisync("import", "helprace-ratings", str(file), env=env, cwd=tmp_path)
    assert "imported 48 rating(s) into source 'helprace' (0 new or changed)" in again.stdout
    clean = tmp_path / "clean.csv"
    clean.write_text(export, encoding="utf-8")
    ok = kpisync("import", "helprace-ratings", str(clean), env=env, cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == "" and "(0 new or changed)" in ok.stdout


def test_a_csv_without_the_required_columns_is_one_line(sim: HelpraceSimulator, tmp_path: Path) -> None:
    file = tmp_path / "wrong.csv"
    file.write_text("Ticket,Score\n5,Good\n", encoding="utf-8")
    result = kpisync("import", "helprace-ratings", str(file), env=environment(tmp_path, sim), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {file}: no Rated At column in the header (found: Ticket, Score)\n"
