"""What the store knows about each source: cursors, last runs, row counts.

Used by `kpisync status` and by anything that monitors syncs (stale-source checks).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .lock import SourceLock
from .store import Store
from .timeutil import to_utc, utcnow


def source_status(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """One entry per source that has state, runs or rows.

    `lag_seconds`: how long ago the last successful run finished (None: never);
    `last_error`: the most recent run that ended with an error ({at, status, error}).
    """
    sources: dict[str, dict[str, Any]] = {}

    def entry(source: str) -> dict[str, Any]:
        return sources.setdefault(source, empty_status(source))

    for row in store.query("SELECT source, stream, state, updated_at FROM sync_state ORDER BY source, stream"):
        entry(row["source"])["streams"][row["stream"]] = {
            "state": json.loads(row["state"]),
            "state_updated_at": row["updated_at"],
        }
    for table in store.canonical_tables():
        for row in store.query(f"SELECT source, count(*) AS n FROM {table} GROUP BY source"):
            entry(row["source"])["rows"][table] = row["n"]
    for row in store.query(
        "SELECT * FROM sync_runs r WHERE id = (SELECT max(id) FROM sync_runs WHERE source = r.source)"
    ):
        info = entry(row["source"])
        info["connector"] = row["connector"]
        info["last_run"] = _run(row)
        if row["status"] == "running" and not SourceLock(store.path, row["source"]).is_held():
            # Nobody holds the source's lock, so the process that started this run is gone
            # (kill -9, power loss): its committed batches stay, the next run continues from them.
            info["last_run"]["status"] = "killed"
        for stream in json.loads(row["streams"] or "[]"):
            slot = info["streams"].setdefault(stream["name"], {"state": None, "state_updated_at": None})
            slot.update(
                last_status=stream["status"],
                records=stream["records"],
                requests=stream["requests"],
                error=stream["error"],
            )
    for row in store.query(
        "SELECT source, max(finished_at) AS at FROM sync_runs WHERE status = 'success' GROUP BY source"
    ):
        entry(row["source"])["last_success"] = row["at"]
    for row in store.query(
        "SELECT source, status, coalesce(finished_at, started_at) AS at, error FROM sync_runs r "
        "WHERE id = (SELECT max(id) FROM sync_runs WHERE source = r.source AND error IS NOT NULL)"
    ):
        entry(row["source"])["last_error"] = {"at": row["at"], "status": row["status"], "error": row["error"]}
    now = now or utcnow()
    for info in sources.values():
        info["lag_seconds"] = lag_seconds(info["last_success"], now)
    return [sources[name] for name in sorted(sources)]


def empty_status(source: str) -> dict[str, Any]:
    """The status of a source the store knows nothing about (e.g. configured, never synced)."""
    return {
        "source": source, "streams": {}, "rows": {}, "last_run": None,
        "last_success": None, "last_error": None, "lag_seconds": None,
    }


def lag_seconds(last_success: str | None, now: datetime) -> int | None:
    """Seconds since `last_success` (the store's ISO text), or None when there was none."""
    at = to_utc(last_success)
    return None if at is None else max(0, int((now - at).total_seconds()))


def stale_reason(info: dict[str, Any], max_lag: float) -> str | None:
    """Why a source counts as stale for `status --max-lag`, or None when it is fresh."""
    lag = info.get("lag_seconds")
    if lag is None:
        return f"{info['source']} has never synced successfully"
    if lag > max_lag:
        return f"{info['source']} last synced successfully {format_lag(lag)} ago ({info['last_success']})"
    return None


def format_lag(seconds: int) -> str:
    """Minute precision for people: 42m, 3h 5m, 2d 4h."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _run(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "requests": row["requests"],
        "records": row["records"],
        "rows_written": row["rows_written"],
        "full_refresh": bool(row["full_refresh"]),
        "error": row["error"],
        "notices": json.loads(row["notices"] or "[]"),
    }
