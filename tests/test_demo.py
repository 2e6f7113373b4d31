"""`kpisync demo`: one command, no account, every connector pulled for real, then the dashboard."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

EXPECTED_SOURCES = {"zendesk", "freshdesk", "helprace", "helpscout", "mastodon", "bluesky", "x", "reddit", "shopify"}


def _kpisync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPISYNC_")}
    return subprocess.run([sys.executable, "-m", "kpisync.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_demo_pulls_every_connector_and_shows_the_dashboard(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    started = datetime.now(UTC)
    result = _kpisync("demo", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kpisync dashboard" in result.stdout
    assert (tmp_path / "demo-team-report.html").stat().st_size > 10_000
    assert "first_response_time" in result.stdout and "csat" in result.stdout
    assert "converted tickets (an order within 5 days" in result.stdout
    conn = sqlite3.connect(db)
    runs = dict(conn.execute("SELECT source, status FROM sync_runs").fetchall())
    assert set(runs) == EXPECTED_SOURCES and set(runs.values()) == {"success"}
    months = conn.execute("SELECT count(DISTINCT substr(created_at, 1, 7)) FROM tickets WHERE source = 'zendesk'").fetchone()[0]
    assert months >= 13  # enough history for month-over-month and year-over-year comparisons
    conn.close()

    # The generated viral moment (10 days before the demo's end, 3 minutes before it started) is
    # found by the spike detector of the mentions KPI.
    spike_day = (started - timedelta(minutes=3) - timedelta(days=10)).date().isoformat()
    since = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    mentions = _kpisync("kpi", "mentions", "--db", str(db), "--period", "day", "--since", since, "--spikes", "--json", cwd=tmp_path)
    assert mentions.returncode == 0, mentions.stderr
    flagged = {row["period"] for row in json.loads(mentions.stdout)["rows"] if row.get("spike")}
    assert spike_day in flagged

    # A rerun replaces its own store; a store the demo did not create is never touched.
    assert _kpisync("demo", "--db", str(db), "--no-dashboard", cwd=tmp_path).returncode == 0
    precious = tmp_path / "precious.db"
    sqlite3.connect(precious).execute("CREATE TABLE t (x)").connection.close()
    refused = _kpisync("demo", "--db", str(precious), cwd=tmp_path)
    assert refused.returncode == 2 and "is not a demo store" in refused.stderr
    assert precious.exists()
