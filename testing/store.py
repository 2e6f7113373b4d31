"""Reading a store back for comparisons: exact snapshots and expected-row checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .harness import Expected


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical row without `synced_at`, for exact store comparisons."""
    conn = sqlite3.connect(db)
    try:
        out = {}
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE '%external_id%' ORDER BY name"
        ).fetchall()
        for (table,) in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "synced_at"]
            out[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY source, external_id").fetchall()
        return out
    finally:
        conn.close()


def mismatches(db: Path, source: str, expected: Expected, scope: dict[str, str] | None = None, limit: int = 8) -> list[str]:
    """Human-readable differences between the store and `expected` (empty: they agree)."""
    problems: list[str] = []
    conn = sqlite3.connect(db)
    try:
        for table, rows in expected.items():
            columns = sorted({c for row in rows.values() for c in row})
            where = f" AND ({scope[table]})" if scope and table in scope else ""
            select = ", ".join(["external_id", *columns])
            found = {
                r[0]: dict(zip(columns, r[1:]))
                for r in conn.execute(f"SELECT {select} FROM {table} WHERE source = ?{where}", (source,))
            }
            missing = sorted(set(rows) - set(found))
            extra = sorted(set(found) - set(rows))
            if missing:
                problems.append(f"{table}: {len(missing)} missing, e.g. {missing[:limit]}")
            if extra:
                problems.append(f"{table}: {len(extra)} unexpected, e.g. {extra[:limit]}")
            wrong = [
                f"{table}/{key}: {col}={found[key].get(col)!r}, expected {want!r}"
                for key, row in rows.items() if key in found
                for col, want in row.items() if found[key].get(col) != want
            ]  # fmt: skip
            problems.extend(wrong[:limit])
            if len(wrong) > limit:
                problems.append(f"{table}: … {len(wrong) - limit} more wrong values")
    finally:
        conn.close()
    return problems
