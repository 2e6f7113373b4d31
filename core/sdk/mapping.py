"""Record-mapping helpers: the small conversions every connector's mapping.py repeats.

    utc("2024-01-02T03:04:05+02:00")       # aware UTC datetime, whole seconds (or None)
    utc(1704164645123, unit="ms")          # epoch milliseconds
    ident(123)                             # "123" — ids are text in the store
    dig(item, "assignee.id")               # nested access that tolerates missing steps
    without(item, ("body", "html"))        # a raw copy with bodies (or secrets) dropped
    STATUS = EnumMap({"active": "open", "closed": "closed"}, unknown="unknown", name="status")
    STATUS("weird")                        # -> "unknown"; STATUS.notices() names "weird" once
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from ..timeutil import iso, to_utc
from .paginate import dig

__all__ = ["EnumMap", "dig", "ident", "iso", "utc", "without", "full_name"]

T = TypeVar("T")


def utc(value: datetime | str | int | float | None, unit: str = "s") -> datetime | None:
    """An API timestamp as aware UTC: ISO 8601 with any offset, or epoch seconds/ms/µs."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = value / {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    return to_utc(value)


def ident(value: Any) -> str | None:
    """An external id as text (None stays None; 0 and "" are kept as the vendor sent them)."""
    return None if value is None else str(value)


def without(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A shallow copy of `data` without `keys` (message bodies, secrets) for `raw`."""
    drop = set(keys)
    return {k: v for k, v in data.items() if k not in drop}


def full_name(*parts: Any) -> str | None:
    text = " ".join(str(p).strip() for p in parts if p and str(p).strip())
    return text or None


class EnumMap(Generic[T]):
    """A vendor code → canonical value table with an explicit value for codes it does not know.

    Vendors add statuses and channels without notice; a silent KeyError would stop a sync and a
    silent default would hide the change. Unknown codes map to `unknown` and are remembered, so
    a stream can say once per run which codes it did not recognise (`notices()`).
    """

    def __init__(self, table: Mapping[Any, T], unknown: T, name: str = "value", normalise: bool = True) -> None:
        self.table = {self._key(k, normalise): v for k, v in table.items()}
        self.unknown, self.name, self.normalise = unknown, name, normalise
        self.unknown_seen: set[str] = set()

    @staticmethod
    def _key(value: Any, normalise: bool) -> Any:
        return str(value).strip().lower() if normalise and value is not None else value

    def __call__(self, value: Any) -> T:
        key = self._key(value, self.normalise)
        if key in self.table:
            return self.table[key]
        if value is not None:
            self.unknown_seen.add(str(value))
        return self.unknown

    def __contains__(self, value: Any) -> bool:
        return self._key(value, self.normalise) in self.table

    def notices(self) -> list[str]:
        if not self.unknown_seen:
            return []
        codes = ", ".join(sorted(self.unknown_seen))
        return [f"unrecognised {self.name} {codes} mapped to '{self.unknown}'"]
