"""The SQLite store: schema migrations, batched upserts and sync bookkeeping.

One plain SQLite file in WAL mode, so `sqlite3` or datasette can read it while a sync writes.
Writes go through `Store.write_batch`, which upserts a batch of canonical records and the
stream's new state in one transaction: a kill at any moment leaves either both or neither.
An upsert only touches a row whose content changed, so re-reading unchanged data writes nothing
(and does not mark tickets for a facts refresh).
"""

from __future__ import annotations

import json
import sqlite3
import types
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from .errors import StoreError
from .models import RECORD_TYPES, Record
from .phone import normalise_phone
from .timeutil import ISO_FORMAT, iso, utcnow

_KEY_COLUMNS = ("source", "external_id")
_NOT_COMPARED = {"synced_at"}


def _migrations() -> list[tuple[int, str]]:
    """(version, sql) of every migration file, in order; the file name starts with the version."""
    files = resources.files("kpisync.core.schema")
    found = []
    for entry in files.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _to_sql(value: Any) -> Any:
    """SQLite value of any model value (used where the column type is not known up front)."""
    if isinstance(value, datetime):
        return value.strftime(ISO_FORMAT)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list, tuple)):
        return _json(value)
    return value


def _json(value: Any) -> str | None:
    """Compact JSON text; orjson because `raw` payloads are the bulk of every row written."""
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _iso_text(value: datetime | None) -> str | None:
    # Models hold aware UTC datetimes without microseconds: isoformat is exact and fast.
    return None if value is None else value.isoformat()[:19] + "Z"


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How a column's values become SQLite values, decided once per column from its type."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    for option in options:
        if typing.get_origin(option) is typing.Annotated:
            option = typing.get_args(option)[0]
        if option is datetime:
            return _iso_text
        if option is bool:
            return lambda v: None if v is None else int(v)
        origin = typing.get_origin(option) or option
        if origin in (dict, list, tuple):
            return _json
    return None


class _TableWriter:
    """Prepared upsert statement of one record type."""

    def __init__(self, record_type: type[Record]) -> None:
        self.table = record_type.__table__
        fields = [name for name in record_type.model_fields if name != "raw"]
        computed = list(record_type.model_computed_fields)
        self.columns = ["source", *fields, *computed, "raw", "synced_at"]
        self.fields = fields
        self.computed = computed
        self.converters = [_converter(record_type.model_fields[name].annotation) for name in fields]
        compared = [c for c in self.columns if c not in _KEY_COLUMNS and c not in _NOT_COMPARED]
        placeholders = ", ".join("?" for _ in self.columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c not in _KEY_COLUMNS)
        old = ", ".join(f"{self.table}.{c}" for c in compared)
        new = ", ".join(f"excluded.{c}" for c in compared)
        self.sql = (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT (source, external_id) DO UPDATE SET {updates} "
            f"WHERE ({old}) IS NOT ({new})"
        )

    def rows(self, records: Iterable[Record], source: str, synced_at: str) -> Iterator[tuple[Any, ...]]:
        pairs = list(zip(self.fields, self.converters))
        for record in records:
            values = record.__dict__
            row: list[Any] = [source]
            for name, convert in pairs:
                value = values[name]
                row.append(convert(value) if convert is not None else value)
            row.extend(getattr(record, name) for name in self.computed)
            row.append(_json(values["raw"]))
            row.append(synced_at)
            yield tuple(row)


class Store:
    """A kpisync SQLite store. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                raise StoreError(f"cannot open store {self.path}: folder {self.path.parent} does not exist")
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.conn = conn
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            # Migration 005 normalises the phones already stored with the models' own rule.
            conn.create_function("kpisync_phone_norm", 1, normalise_phone, deterministic=True)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self._writers: dict[type[Record], _TableWriter] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        for version, sql in _migrations():
            if version <= current:
                continue
            with self.transaction():
                for statement in _split_sql(sql):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version}")

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; disk errors become StoreError.

        `conn`: another connection to this store (a forked facts worker's), instead of the store's.
        """
        conn = conn or self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _store_error(self.path, exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise _store_error(self.path, exc) from None
            raise

    # -- writes ------------------------------------------------------------------------------
    def _writer(self, record_type: type[Record]) -> _TableWriter:
        writer = self._writers.get(record_type)
        if writer is None:
            writer = self._writers[record_type] = _TableWriter(record_type)
        return writer

    def upsert(self, records: Sequence[Record], source: str) -> int:
        """Upsert records inside the caller's transaction; returns rows inserted or changed."""
        by_type: dict[type[Record], list[Record]] = defaultdict(list)
        for record in records:
            by_type[type(record)].append(record)
        synced_at = utcnow().strftime(ISO_FORMAT)
        written = 0
        for record_type, items in by_type.items():
            writer = self._writer(record_type)
            cursor = self.conn.executemany(writer.sql, writer.rows(items, source, synced_at))
            written += max(cursor.rowcount, 0)
        return written

    def write_batch(
        self, source: str, stream: str, records: Sequence[Record], state: dict[str, Any] | None
    ) -> int:
        """Records and the stream state after them, atomically. Returns rows written."""
        with self.transaction():
            written = self.upsert(records, source)
            if state is not None:
                self._set_state(source, stream, state)
        return written

    # -- stream state ------------------------------------------------------------------------
    def get_state(self, source: str, stream: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT state FROM sync_state WHERE source = ? AND stream = ?", (source, stream)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _set_state(self, source: str, stream: str, state: dict[str, Any]) -> None:
        text = json.dumps(state, sort_keys=True, separators=(",", ":"))
        self.conn.execute(
            "INSERT INTO sync_state (source, stream, state, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source, stream) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at WHERE sync_state.state IS NOT excluded.state",
            (source, stream, text, iso(utcnow())),
        )

    def clear_state(self, source: str, stream: str | None = None) -> None:
        """Forget cursors (full refresh); the rows stay and are upserted again."""
        with self.transaction():
            if stream is None:
                self.conn.execute("DELETE FROM sync_state WHERE source = ?", (source,))
            else:
                self.conn.execute("DELETE FROM sync_state WHERE source = ? AND stream = ?", (source, stream))

    # -- runs --------------------------------------------------------------------------------
    def start_run(self, source: str, connector: str, full_refresh: bool) -> int:
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO sync_runs (source, connector, started_at, status, full_refresh) "
                "VALUES (?, ?, ?, 'running', ?)",
                (source, connector, iso(utcnow()), int(full_refresh)),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, **fields: Any) -> None:
        fields["finished_at"] = iso(utcnow())
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = [_to_sql(v) for v in fields.values()]
        with self.transaction():
            self.conn.execute(f"UPDATE sync_runs SET {assignments} WHERE id = ?", (*values, run_id))

    # -- reads -------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        cursor = self.conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row  # type: ignore[assignment]
        return cursor.fetchall()

    def count(self, table: str, source: str | None = None) -> int:
        if source is None:
            return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return int(
            self.conn.execute(f"SELECT count(*) FROM {table} WHERE source = ?", (source,)).fetchone()[0]
        )

    @staticmethod
    def canonical_tables() -> list[str]:
        return [record_type.__table__ for record_type in RECORD_TYPES]


def _split_sql(sql: str) -> list[str]:
    """Statements of a migration file; `sqlite3.complete_statement` keeps triggers whole."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    text = str(exc)
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(
            f"store {path}: the disk is full; the current batch was rolled back and nothing saved "
            "is lost — free some space and rerun"
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(f"store {path} is read-only: {text}")
    if "locked" in text or "busy" in text:
        return StoreError(f"store {path} is busy (another writer held it for 30 s): {text}")
    return StoreError(f"store {path}: {text}")
