"""`kpisync backup PATH`: a consistent copy of a live store.

Copying the .db file while a sync writes can catch half a transaction, and misses whatever still
sits in the -wal file. SQLite's online backup API (https://www.sqlite.org/backup.html; Python:
`sqlite3.Connection.backup`) copies the pages of one read transaction. The store is in WAL mode,
where a reader sees one snapshot and does not block writers, so the copy is done in a single
step: a consistent snapshot, while a running sync keeps committing (a stepped backup would
restart whenever another process writes, and could chase a busy store forever). The copy is
written to a temporary file and renamed, so PATH never holds a half-written backup.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Optional

import typer

from kpisync.core.config import resolve_db
from kpisync.core.errors import StoreError

from .app import DbOption, app

@app.command()
def backup(
    path: str = typer.Argument(..., help="Backup file, or an existing folder (then kpisync-<UTC time>.db inside it)."),
    db: Optional[str] = DbOption,
    force: bool = typer.Option(False, "--force", help="Replace PATH if it exists."),
) -> None:
    """Copy the store safely while syncs may be running (SQLite online backup)."""
    source = resolve_db(db)
    if not source.exists():
        raise StoreError(f"store {source} does not exist")
    target = Path(path)
    if target.is_dir():
        target = target / time.strftime("kpisync-%Y%m%dT%H%M%SZ.db", time.gmtime())
    if target.exists() and not force:
        raise StoreError(f"{target} already exists (use --force to replace it)")
    if target.absolute() == source.absolute():
        raise StoreError("the backup path is the store itself")
    started = time.monotonic()
    pages, tables = backup_store(source, target)
    size = target.stat().st_size
    print(
        f"backed up {source} to {target}: {size / 1e6:.1f} MB, {pages} pages, {tables} tables, "
        f"integrity ok, {time.monotonic() - started:.1f}s"
    )


def backup_store(source: Path, target: Path) -> tuple[int, int]:
    """Copy `source` to `target` atomically; returns (pages, tables). Raises StoreError."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(str(source), timeout=30)
        try:
            dst = sqlite3.connect(str(partial))
            try:
                src.backup(dst)
                # A standalone file: no -wal beside it, readable by any SQLite tool as it is.
                dst.execute("PRAGMA journal_mode = DELETE")
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(f"the backup failed its integrity check: {check}")
                pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
                tables = int(dst.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} to {target} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return pages, tables
