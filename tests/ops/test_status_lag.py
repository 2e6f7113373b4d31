"""`kpisync status --max-lag`: exit 1 when a source's last success is too old or missing;
lag and last error per source."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from kpisync.core.store import Store
from kpisync.core.timeutil import iso, utcnow

from .conftest import cli, write_config


def add_run(store: Store, source: str, status: str, minutes_ago: int, error: str | None = None) -> None:
    run_id = store.start_run(source, "zendesk", False)
    store.finish_run(run_id, status=status, error=error, streams=[], notices=[])
    store.conn.execute("UPDATE sync_runs SET finished_at = ? WHERE id = ?", (iso(utcnow() - timedelta(minutes=minutes_ago)), run_id))


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    """fresh: succeeded 10 min ago. old: succeeded 3 h ago, failed 5 min ago."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        add_run(store, "fresh", "failed", 50, error="zendesk: GET /api/v2/groups.json returned HTTP 500")
        add_run(store, "fresh", "success", 10)
        add_run(store, "old", "success", 180)
        add_run(store, "old", "failed", 5, error="zendesk: cannot reach http://127.0.0.1:9 (connection refused)")
    return path


def test_exit_code_follows_the_oldest_last_success(db: Path, tmp_path: Path, env: dict[str, str]) -> None:
    stale = cli("status", "--db", str(db), "--max-lag", "1h", env=env, cwd=tmp_path)
    assert stale.returncode == 1
    [line] = stale.stderr.strip().splitlines()  # only "old"; "fresh" is 10 min behind
    assert line.startswith("stale: old last synced successfully 3h 0m ago (") and line.endswith("Z) (max lag 1h)")

    fine = cli("status", "--db", str(db), "--max-lag", "3h30m", env=env, cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert cli("status", "--db", str(db), env=env, cwd=tmp_path).returncode == 0  # no --max-lag: never stale


def test_configured_source_that_never_synced_is_stale(db: Path, tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path / "kpisync.toml", {"fresh": {"connector": "zendesk"}, "newdesk": {"connector": "zendesk"}})
    done = cli("status", "--db", str(db), "--config", str(config), "--max-lag", "4h", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "stale: newdesk has never synced successfully (max lag 4h)"
    assert "newdesk" in done.stdout and "last success never" in done.stdout
    # the default ./kpisync.toml is read the same way
    assert cli("status", "--db", str(db), "--max-lag", "4h", env=env, cwd=tmp_path).returncode == 1


def test_json_has_lag_and_last_error(db: Path, tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("status", "--db", str(db), "--json", "--max-lag", "1h", env=env, cwd=tmp_path)
    assert done.returncode == 1
    by_source = {info["source"]: info for info in json.loads(done.stdout)}
    fresh, old = by_source["fresh"], by_source["old"]
    assert 600 <= fresh["lag_seconds"] <= 660 and fresh["stale"] is None
    assert 10800 <= old["lag_seconds"] <= 10860 and old["stale"].startswith("old last synced successfully 3h 0m ago")
    # the last error is reported even when a later run succeeded, with its time and status
    assert fresh["last_error"]["error"] == "zendesk: GET /api/v2/groups.json returned HTTP 500"
    assert old["last_error"] == {
        "at": old["last_error"]["at"],
        "status": "failed",
        "error": "zendesk: cannot reach http://127.0.0.1:9 (connection refused)",
    }
    assert old["last_run"]["status"] == "failed"


def test_text_shows_lag_and_last_error(db: Path, tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("status", "--db", str(db), env=env, cwd=tmp_path)
    assert done.returncode == 0
    assert "(10m ago)" in done.stdout and "(3h 0m ago)" in done.stdout
    assert "last error (failed," in done.stdout
    assert "cannot reach http://127.0.0.1:9 (connection refused)" in done.stdout


def test_empty_store_is_stale(tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("status", "--db", str(tmp_path / "empty.db"), "--max-lag", "1h", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "no source has ever synced" in done.stderr
