"""Log lines of unattended runs: human text by default, JSON lines for log shippers.

Every line of one `kpisync sync` (or one tick of `kpisync schedule run`) carries the same
`run_id`, so a log shipper can group them; source-level lines add `source`, stream lines add
`stream`, `requests`, `records`, `written` and `waited` (clock seconds spent in rate-limit or
retry waits). The engine's own loggers (`kpisync.sync`, `kpisync.http`: retries) go through the
same handler, so their lines are formatted the same way.

A redaction filter replaces every secret value registered with `add_secret` (the settings of
each source being synced) before a line is written — a second line of defence behind the
HTTP client's own redaction.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from typing import Any, TextIO

from .sync import RunResult, StreamResult, SyncObserver

LOGGER = "kpisync"
FORMATS = ("text", "json")

log = logging.getLogger(LOGGER)


def new_run_id() -> str:
    """Short, sortable-enough id of one invocation: UTC time + random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class _Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.values: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.values:
            text = record.getMessage()
            for value in sorted(self.values, key=len, reverse=True):
                text = text.replace(value, "***")
            record.msg, record.args = text, None
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict):
                record.fields = {k: self._scrub(v) for k, v in fields.items()}
        return True

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self.values, key=len, reverse=True):
                value = value.replace(secret, "***")
        return value


class _Context(logging.Filter):
    """Adds the current run id to every record."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(getattr(record, "fields", None) or {})
        if self.run_id and "run_id" not in fields:
            fields["run_id"] = self.run_id
        record.fields = fields
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, event and the run fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2024-05-01T12:00:00Z info  zendesk/tickets: message [run 20240501T120000Z-1a2b3c]`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {}) or {}
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        where = fields.get("source", "")
        if where and fields.get("stream"):
            where += "/" + str(fields["stream"])
        prefix = f"{ts} {record.levelname.lower():<5} " + (f"{where}: " if where else "")
        suffix = f" [run {fields['run_id']}]" if fields.get("run_id") else ""
        return prefix + record.getMessage() + suffix


_redactor = _Redactor()
_context = _Context()
_handler: logging.Handler | None = None


def setup_logging(fmt: str = "text", stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send kpisync's log lines to `stream` (stderr) in `fmt`; calling again replaces the handler."""
    global _handler
    if fmt not in FORMATS:
        from .errors import ConfigError

        raise ConfigError(f"unknown log format '{fmt}' (use {' or '.join(FORMATS)})")
    logger = logging.getLogger(LOGGER)
    if _handler is not None:
        logger.removeHandler(_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_context)
    handler.addFilter(_redactor)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    _handler = handler


def set_run_id(run_id: str | None) -> None:
    _context.run_id = run_id


def add_secret(value: str) -> None:
    """Never write `value` in a log line."""
    if value and len(value) >= 4:
        _redactor.values.add(value)


def event(message: str, level: int = logging.INFO, **fields: Any) -> None:
    """A log line with structured fields (None values are left out)."""
    log.log(level, message, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def stream_fields(result: StreamResult) -> dict[str, Any]:
    return {
        "stream": result.name,
        "status": result.status,
        "records": result.records,
        "written": result.rows_written,
        "requests": result.requests,
        "waited": result.waited,
        "seconds": result.seconds,
        "error": result.error,
    }


class LogObserver(SyncObserver):
    """Sync progress as log lines: one per finished stream."""

    def stream_started(self, source: str, stream: str) -> None:
        event("stream started", logging.DEBUG, source=source, stream=stream)

    def stream_finished(self, source: str, result: StreamResult) -> None:
        text = (
            f"{result.status}: {result.records} records ({result.rows_written} written), "
            f"{result.requests} requests, waited {result.waited:g}s"
        )
        if result.error:
            text += f" — {result.error}"
        level = logging.INFO if result.status in ("success", "skipped") else logging.WARNING
        event(text, level, source=source, **stream_fields(result))


def run_fields(run: RunResult) -> dict[str, Any]:
    return {
        "source": run.source,
        "connector": run.connector,
        "store_run": run.run_id,
        "status": run.status,
        "records": run.records,
        "written": run.rows_written,
        "requests": run.requests,
        "waited": round(sum(s.waited for s in run.streams), 3),
        "seconds": run.seconds,
        "error": run.error,
    }


class WaitLogger:
    """A `Runtime.on_wait` callback: retry and rate-limit waits at info, routine pacing at debug."""

    def __init__(self) -> None:
        self.source: str | None = None  # the source being synced, set by the caller

    def __call__(self, seconds: float, reason: str) -> None:
        level = logging.DEBUG if reason.startswith("pacing") else logging.INFO
        event(f"waiting {seconds:.1f}s ({reason})", level, source=self.source, wait=round(seconds, 3), reason=reason)
