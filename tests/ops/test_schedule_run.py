"""Scheduled syncs against the simulators: `schedule run` ticks on a scaled clock and stops
cleanly on SIGTERM; the crontab line `schedule install` writes really syncs when /bin/sh runs it."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from kpisync.core.schedule import parse_duration

from .conftest import count, kpisync, start_kpisync, write_config

EMAIL = "ops@acme.test"
TOKEN = "tokS-31415926535"


def read_lines(stream: Any, into: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        into.put(json.loads(line))


def next_event(lines: queue.Queue[dict[str, Any]], prefix: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if line["message"].startswith(prefix):
            return line


def test_scheduler_ticks_on_a_scaled_clock_and_stops_on_sigterm(small_worlds: Any, tmp_path: Path, env: dict[str, str]) -> None:
    from kpisync.fixtures.zendesk_sim import ZendeskSimulator

    world = small_worlds(21, days=10, per_day=6)
    limits = {"incremental_limit_per_min": 100_000, "account_limit_per_min": 100_000}
    with ZendeskSimulator(world, email=EMAIL, api_token=TOKEN, **limits) as sim:
        write_config(tmp_path / "kpisync.toml", {"zendesk": {"base_url": sim.url, "email": EMAIL, "api_token": "env:ZD_TOKEN"}})
        # 15 clock minutes = 1.5 real seconds
        env = dict(env, ZD_TOKEN=TOKEN, KPISYNC_TIME_SCALE="600")
        db = tmp_path / "s.db"
        process = start_kpisync("schedule", "run", "--every", "15m", "--db", str(db), "--log-format", "json", env=env, cwd=tmp_path)
        lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=read_lines, args=(process.stderr, lines), daemon=True).start()
        try:
            assert next_event(lines, "scheduler started")["message"] == "scheduler started: `kpisync sync` every 15m (pid %d)" % process.pid
            first = next_event(lines, "sync finished")
            assert first["exit_code"] == 0 and count(db, "tickets") == len(world.tickets)
            idle = next_event(lines, "next sync in")["message"].removeprefix("next sync in ")
            assert idle == "0s" or parse_duration(idle) < 900  # the slot minus the sync's own time

            # life goes on at the help desk: a new ticket lands in a later tick
            customer = next(u for u in world.users() if type(u).__name__ == "Customer")
            with sim.lock:
                ticket = world.add_ticket(customer.id, world.now + timedelta(minutes=5), subject="after the first tick")
                sim.sync_clock()
            ticks = [first]
            while len(ticks) < 3:
                ticks.append(next_event(lines, "sync finished"))
            assert len({tick["run_id"] for tick in ticks}) == 3
            assert all(tick["exit_code"] == 0 for tick in ticks)
            assert count(db, "tickets") == len(world.tickets)
            with sqlite3.connect(db) as conn:
                titles = conn.execute("SELECT subject FROM tickets WHERE external_id = ?", (str(ticket.id),)).fetchall()
            assert titles == [("after the first tick",)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        assert process.returncode == 0
        stopped = next_event(lines, "scheduler stopped")
        assert stopped["message"].endswith("sync(s): stop requested")


def test_max_runs_ends_the_scheduler(tmp_path: Path, env: dict[str, str]) -> None:
    """Unreachable source: each tick fails that source, the scheduler itself keeps its rhythm."""
    write_config(tmp_path / "kpisync.toml", {"zendesk": {"base_url": "http://127.0.0.1:9", "email": EMAIL, "api_token": TOKEN}})
    started = time.monotonic()
    done = kpisync(
        "schedule", "run", "--every", "1h", "--max-runs", "3", "--db", str(tmp_path / "s.db"), "--log-format", "json",
        env=dict(env, KPISYNC_TIME_SCALE="36000"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    finished = [e for e in events if e["message"].startswith("sync finished")]
    assert [e["exit_code"] for e in finished] == [1, 1, 1]
    assert events[-1]["message"] == "scheduler stopped after 3 sync(s): --max-runs reached"
    assert time.monotonic() - started < 15  # 2 waits of one clock hour = 0.2 s real


def test_schedule_run_refuses_a_config_without_sources(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "kpisync.toml").write_text("# nothing yet\n")
    done = kpisync("schedule", "run", "--every", "15m", env=env, cwd=tmp_path)
    assert done.returncode == 2 and "no sources configured" in done.stderr


def test_the_installed_cron_line_syncs_when_sh_runs_it(small_worlds: Any, tmp_path: Path, env: dict[str, str]) -> None:
    """What cron does: /bin/sh -c '<command>' with a bare environment; secrets come from the env file."""
    from kpisync.fixtures.zendesk_sim import ZendeskSimulator

    world = small_worlds(22, days=5, per_day=5)
    with ZendeskSimulator(world, email=EMAIL, api_token=TOKEN, incremental_limit_per_min=100_000, account_limit_per_min=100_000) as sim:
        project = tmp_path / "project dir"  # a space, to prove the quoting
        project.mkdir()
        write_config(project / "kpisync.toml", {"zendesk": {"base_url": sim.url, "email": EMAIL, "api_token": "env:ZD_TOKEN"}})
        (project / "secrets.env").write_text(f"ZD_TOKEN={TOKEN}\nKPISYNC_TIME_SCALE=2000\n")
        target = tmp_path / "cron"
        done = kpisync(
            "schedule", "install", "--every", "5m", "--kind", "cron", "--target-dir", str(target), "--env-file", "secrets.env",
            env=env, cwd=project,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        _, line = (target / "crontab").read_text().splitlines()
        schedule, command = line[: len("*/5 * * * *")], line[len("*/5 * * * *") + 1 :]
        assert schedule == "*/5 * * * *" and TOKEN not in line
        cron_env = {"PATH": "/usr/bin:/bin", "HOME": env["HOME"], "SHELL": "/bin/sh", "PYTHON_KEYRING_BACKEND": env["PYTHON_KEYRING_BACKEND"]}
        ran = subprocess.run(["/bin/sh", "-c", command.replace("\\%", "%")], env=cron_env, cwd="/", capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert count(project / "kpisync.db", "tickets") == len(world.tickets)
        log = (project / "kpisync-sync.log").read_text()
        assert "sync finished: 1 of 1 sources synced" in log and TOKEN not in log
