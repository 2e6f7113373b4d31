"""What the store knows about each source: cursors, last runs, row counts.

Used by `kpisync status` and by anything that monitors syncs (stale-source checks).
"""

from __future__ import annotations

import json
from typing import Any

from .store import Store


def source_status(store: Store) -> list[dict[str, Any]]:
    """One entry per source that has state, runs or rows."""
    sources: dict[str, dict[str, Any]] = {}

    def entry(source: str) -> dict[str, Any]:
        return sources.setdefault(
            source, {"source": source, "streams": {}, "rows": {}, "last_run": None, "last_success": None}
        )

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
    return [sources[name] for name in sorted(sources)]


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
