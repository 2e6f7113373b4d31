"""UTC timestamps in the one text form the store uses.

The store keeps every instant as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds): it sorts as text,
SQLite's date functions read it, and it is what every help desk API sends. Sub-second parts are
dropped on purpose so that the same instant always has the same text.
"""

from __future__ import annotations

from datetime import datetime, timezone

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def to_utc(value: datetime | str | int | float | None) -> datetime | None:
    """Parse an API timestamp (ISO 8601 with any offset, or unix seconds) to aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(value, tz=timezone.utc)
    else:
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)


def iso(value: datetime | str | int | float | None) -> str | None:
    """The store's text form of an instant, or None."""
    dt = to_utc(value)
    return dt.strftime(ISO_FORMAT) if dt is not None else None


def unix(value: datetime | str) -> int:
    """Unix seconds of an instant."""
    dt = to_utc(value)
    assert dt is not None
    return int(dt.timestamp())


def utcnow() -> datetime:
    """Now, aware UTC, whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0)
