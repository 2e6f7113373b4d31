"""Report windows and period buckets in the reporting time zone, DST-safe.

Buckets are half-open epoch ranges [lo, hi). Day, week (ISO, Monday), month, quarter and year
buckets start at a local midnight converted with zoneinfo, so a DST day is 23 or 25 hours long
and still one bucket; hour buckets are real hours (a fall-back night has two "02:00" buckets,
told apart by their UTC offset in the label). The window the user asked for is kept exactly:
the first and last buckets are clipped to it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..errors import KpisyncError
from .clock import local_midnight

PERIODS = ("hour", "day", "week", "month", "quarter", "year")
#: Buckets shown when --period is given without --since.
DEFAULT_BUCKETS = {"hour": 48, "day": 30, "week": 12, "month": 12, "quarter": 8, "year": 3}
DEFAULT_DAYS = 30
_UTC = timezone.utc


@dataclass(frozen=True)
class Bucket:
    lo: int
    hi: int
    label: str  # ISO local start of the (unclipped) period
    #: The window cuts this period short (e.g. the current week, until now): its counts cover
    #: only part of it, so it is flagged, and spike detection does not score it.
    partial: bool = False


@dataclass(frozen=True)
class Window:
    since: int
    until: int
    period: str | None
    buckets: tuple[Bucket, ...]

    @property
    def days(self) -> float:
        return (self.until - self.since) / 86400


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(d.day, calendar.monthrange(year, month + 1)[1]))


def period_start(d: date, period: str) -> date:
    """The local date on which the period containing `d` starts."""
    if period == "day":
        return d
    if period == "week":
        return d - timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    if period == "quarter":
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if period == "year":
        return date(d.year, 1, 1)
    raise ValueError(period)


def next_period(d: date, period: str) -> date:
    if period == "day":
        return d + timedelta(days=1)
    if period == "week":
        return d + timedelta(days=7)
    if period == "month":
        return _add_months(d, 1)
    if period == "quarter":
        return _add_months(d, 3)
    if period == "year":
        return date(d.year + 1, 1, 1)
    raise ValueError(period)


def local_date(epoch: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(epoch, zone).date()


def hour_floor(epoch: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, zone)
    return epoch - local.minute * 60 - local.second


def _hour_label(epoch: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="minutes")


def floor(epoch: int, period: str, zone: ZoneInfo) -> int:
    """Start of the (unclipped) bucket containing `epoch`."""
    if period == "hour":
        return hour_floor(epoch, zone)
    return local_midnight(period_start(local_date(epoch, zone), period), zone)


def buckets(since: int, until: int, period: str | None, zone: ZoneInfo) -> tuple[Bucket, ...]:
    """Buckets covering [since, until), clipped to it; one bucket when `period` is None."""
    if until <= since:
        return ()
    if period is None:
        return (Bucket(since, until, label_of(since, None, zone)),)
    out = []
    if period == "hour":
        start = hour_floor(since, zone)
        while start < until:
            end = start + 3600
            out.append(Bucket(max(start, since), min(end, until), _hour_label(start, zone), start < since or end > until))
            start += 3600
        return tuple(out)
    day = period_start(local_date(since, zone), period)
    start = local_midnight(day, zone)
    while start < until:
        following = next_period(day, period)
        end = local_midnight(following, zone)
        out.append(Bucket(max(start, since), min(end, until), day.isoformat(), start < since or end > until))
        day, start = following, end
    return tuple(out)


def label_of(epoch: int, period: str | None, zone: ZoneInfo) -> str:
    if period == "hour":
        return _hour_label(hour_floor(epoch, zone), zone)
    d = local_date(epoch, zone)
    return (period_start(d, period) if period else d).isoformat()


def parse_instant(text: str, zone: ZoneInfo, what: str) -> int:
    """`YYYY-MM-DD` (local midnight in the reporting zone) or an ISO datetime (zone if naive)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return local_midnight(date.fromisoformat(text), zone)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KpisyncError(f"{what}: expected a date (2026-01-31) or an ISO datetime, got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return int(dt.timestamp())


def make_window(
    zone: ZoneInfo,
    now: int,
    period: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> Window:
    """The report window: explicit bounds, else the last N periods (or 30 days) up to now."""
    if period is not None and period not in PERIODS:
        raise KpisyncError(f"unknown period {period!r} (use {', '.join(PERIODS)})")
    end = until if until is not None else now
    if since is None:
        if period is None:
            since = local_midnight(local_date(end, zone) - timedelta(days=DEFAULT_DAYS), zone)
        elif period == "hour":
            since = hour_floor(end, zone) - 3600 * (DEFAULT_BUCKETS["hour"] - 1)
        else:
            day = period_start(local_date(end - 1, zone), period)
            for _ in range(DEFAULT_BUCKETS[period] - 1):
                day = period_start(day - timedelta(days=1), period)
            since = local_midnight(day, zone)
    if end <= since:
        raise KpisyncError("the window is empty: --until must be after --since")
    return Window(since, end, period, buckets(since, end, period, zone))


def shifted(window: Window, compare: str, zone: ZoneInfo) -> Window:
    """The comparison window: the same span just before (`previous`) or one year earlier.

    A window made of whole months (quarters, years, weeks, days) is shifted by that many
    months (...), so the previous period of February is January, not the last 28 days of it.
    """
    if compare == "previous":
        since, until = _previous(window.since, window.until, zone)
    elif compare == "year":
        since = _year_earlier(window.since, zone)
        until = _year_earlier(window.until, zone)
    else:
        raise KpisyncError(f"unknown comparison {compare!r} (use previous or year)")
    return Window(since, until, window.period, buckets(since, until, window.period, zone))


def _previous(since: int, until: int, zone: ZoneInfo) -> tuple[int, int]:
    first, last = local_date(since, zone), local_date(until, zone)
    if local_midnight(first, zone) == since and local_midnight(last, zone) == until:
        for unit in ("year", "quarter", "month", "week", "day"):
            if period_start(first, unit) == first and period_start(last, unit) == last:
                count, day = 0, first
                while day < last:
                    day, count = next_period(day, unit), count + 1
                start = first
                for _ in range(count):
                    start = period_start(start - timedelta(days=1), unit)
                return local_midnight(start, zone), since
    return since - (until - since), since


def _year_earlier(epoch: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, zone)
    day = local.date()
    try:
        earlier = day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        earlier = date(day.year - 1, 2, 28)
    midnight = local_midnight(earlier, zone)
    return midnight + (epoch - local_midnight(day, zone))


def iso(epoch: int | None, zone: ZoneInfo) -> str | None:
    """Local ISO datetime of an instant (JSON output)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, zone).isoformat()


def iso_utc(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, _UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
