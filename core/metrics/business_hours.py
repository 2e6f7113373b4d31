"""Business-hours arithmetic (kpi-definitions §B2, "kpisync equivalent (simpler, exact)").

A :class:`Schedule` is a set of weekly local-time windows in one IANA zone plus whole-day
holidays.  :func:`business_seconds` measures how much of a UTC interval falls inside those
windows and :func:`add_business_seconds` walks forward by a business-time budget (SLA due dates).

Why not the dbt_zendesk week-slice algorithm: it pre-splits every zone into standard/daylight
periods.  Converting each local day's windows with :mod:`zoneinfo` is simpler and exact.

Conversion rules for a window endpoint (a local wall time on a given day):

* **Nonexistent** (inside a spring-forward gap) -> shifted forward to the first instant that
  exists, i.e. the transition instant.  Berlin 2024-03-31 02:30 becomes 03:00 CEST (01:00 UTC),
  so a 02:30-05:00 window lasts 2 h: exactly the wall-clock time that really occurred.
* **Ambiguous** (inside a fall-back overlap) -> the first occurrence (PEP 495 ``fold=0``).
  Berlin 2024-10-27 02:30 is 02:30 CEST (00:30 UTC).
* The window is the elapsed time between the two converted endpoints, so a 01:00-04:00 window
  lasts 2 h on a spring-forward day and 4 h on a fall-back day, and a 09:00-17:00 window (no
  endpoint near the change) lasts 8 h.

Speed: a day whose UTC offset does not change is "clean"; its windows last exactly their local
length, so runs of clean days are summed arithmetically (whole weeks at once) and only the two
edge days, DST-transition days and holidays are converted one by one.  Transition days are found
per zone and year from the offset at each local midnight (cached), which is exact unless a zone
changes offset twice within one day and back (no zone in tzdata does).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "Schedule",
    "business_seconds",
    "add_business_seconds",
    "MINUTES_PER_DAY",
    "MINUTES_PER_WEEK",
]

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_US_PER_MIN = 60_000_000
_US_PER_DAY = 86_400_000_000
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_DAY_CACHE_MAX = 50_000

Interval = tuple[int, int, int]  # (weekday 0=Mon..6=Sun, start_min, end_min), local minutes
Holiday = tuple[date, date]  # inclusive local dates


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or touching closed/half-open spans (so nothing counts twice)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"cannot read a date from {value!r}")


@dataclass(frozen=True)
class Schedule:
    """Weekly business windows in one time zone, plus whole-day holidays.

    ``intervals`` are ``(weekday, start_min, end_min)`` with weekday 0=Monday and minutes from
    local midnight, ``0 <= start_min < end_min <= 1440``.  They are stored sorted and merged, so
    two schedules describing the same hours compare equal.  ``holidays`` are inclusive
    ``(date_start, date_end)`` local dates on which no window is open.
    """

    tz: str
    intervals: tuple[Interval, ...]
    holidays: tuple[Holiday, ...] = ()

    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _day_windows: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _day_us: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _week_us: int = field(init=False, repr=False, compare=False)
    _hol_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hol_ranges: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)
    _cache: dict[int, tuple[tuple[int, int], ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        zone = ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError for a bad name
        per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for item in self.intervals:
            wd, start, end = (int(x) for x in item)
            if not 0 <= wd <= 6:
                raise ValueError(f"weekday must be 0..6 (0=Monday), got {wd}")
            if not 0 <= start < end <= MINUTES_PER_DAY:
                raise ValueError(f"need 0 <= start_min < end_min <= 1440, got {start}..{end}")
            per_day[wd].append((start, end))
        merged = [tuple(_merge(spans)) for spans in per_day]
        norm = tuple((wd, a, b) for wd in range(7) for a, b in merged[wd])

        hol: list[tuple[int, int]] = []
        norm_hol: list[Holiday] = []
        for item in self.holidays:
            a, b = _as_date(item[0]), _as_date(item[1])
            if b < a:
                raise ValueError(f"holiday ends before it starts: {a}..{b}")
            norm_hol.append((a, b))
            hol.append((a.toordinal(), b.toordinal()))
        # Holidays are inclusive day ranges: [a, b] and [b+1, c] touch and merge as well.
        hol_ranges: list[tuple[int, int]] = []
        for a, b in sorted(hol):
            if hol_ranges and a <= hol_ranges[-1][1] + 1:
                hol_ranges[-1] = (hol_ranges[-1][0], max(b, hol_ranges[-1][1]))
            else:
                hol_ranges.append((a, b))

        day_us = tuple(sum(b - a for a, b in merged[wd]) * _US_PER_MIN for wd in range(7))
        setattr_ = object.__setattr__
        setattr_(self, "intervals", norm)
        setattr_(self, "holidays", tuple(sorted(norm_hol)))
        setattr_(self, "_zone", zone)
        setattr_(self, "_day_windows", tuple(merged))
        setattr_(self, "_day_us", day_us)
        setattr_(self, "_week_us", sum(day_us))
        setattr_(self, "_hol_ranges", tuple(hol_ranges))
        setattr_(self, "_hol_starts", tuple(a for a, _ in hol_ranges))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_zendesk_intervals(
        cls,
        tz: str,
        intervals: Iterable[Mapping[str, int]],
        holidays: Iterable[Any] = (),
    ) -> Schedule:
        """Build from Zendesk ``{start_time, end_time}`` minutes counted from Sunday 00:00 local.

        Zendesk intervals never cross midnight, but an interval that does (hand-made data) is
        split at each midnight instead of being rejected; ``end_time`` may be 10080 (Saturday
        24:00).  Holidays may be ``(start, end)`` pairs or Zendesk holiday objects with
        ``start_date``/``end_date`` (ISO strings or dates).
        """
        out: list[Interval] = []
        for item in intervals:
            start, end = int(item["start_time"]), int(item["end_time"])
            if not 0 <= start < end <= MINUTES_PER_WEEK:
                raise ValueError(f"Zendesk interval must satisfy 0 <= start < end <= 10080: {item!r}")
            cur = start
            while cur < end:
                day = cur // MINUTES_PER_DAY  # 0 = Sunday in Zendesk's numbering
                day_end = min(end, (day + 1) * MINUTES_PER_DAY)
                out.append(((day - 1) % 7, cur - day * MINUTES_PER_DAY, day_end - day * MINUTES_PER_DAY))
                cur = day_end
        hol: list[Holiday] = []
        for h in holidays:
            if isinstance(h, Mapping):
                hol.append((_as_date(h["start_date"]), _as_date(h["end_date"])))
            else:
                hol.append((_as_date(h[0]), _as_date(h[1])))
        return cls(tz, tuple(out), tuple(hol))

    @classmethod
    def always_open(cls, tz: str = "UTC", holidays: Iterable[Holiday] = ()) -> Schedule:
        """A 24x7 calendar: every second counts (except on holidays, if any)."""
        return cls(tz, tuple((wd, 0, MINUTES_PER_DAY) for wd in range(7)), tuple(holidays))

    # ----------------------------------------------------------------- helpers
    @property
    def week_seconds(self) -> int:
        """Business seconds in an ordinary week (no holiday, no DST change)."""
        return self._week_us // 1_000_000

    def is_holiday(self, day: date) -> bool:
        """True when the local date lies in a holiday range."""
        return self._holiday_end(day.toordinal()) is not None

    def _holiday_end(self, d: int) -> int | None:
        """Last ordinal of the holiday range that contains ordinal ``d``, else None."""
        i = bisect.bisect_right(self._hol_starts, d) - 1
        if i >= 0 and self._hol_ranges[i][1] >= d:
            return self._hol_ranges[i][1]
        return None

    def _next_holiday_start(self, d: int) -> int | None:
        i = bisect.bisect_left(self._hol_starts, d)
        return self._hol_starts[i] if i < len(self._hol_starts) else None

    def _windows_us(self, d: int) -> tuple[tuple[int, int], ...]:
        """UTC windows of local day ordinal ``d`` in µs since the epoch (holidays ignored here)."""
        cached = self._cache.get(d)
        if cached is not None:
            return cached
        local = self._day_windows[(d - 1) % 7]  # date.fromordinal(1) is a Monday
        if not local:
            res: tuple[tuple[int, int], ...] = ()
        elif d not in _transition_days(self.tz, date.fromordinal(d).year):
            off = _midnight_offset_us(self._zone, d)
            mid = (d - _EPOCH_ORD) * _US_PER_DAY - off
            res = tuple((mid + a * _US_PER_MIN, mid + b * _US_PER_MIN) for a, b in local)
        else:
            day0 = datetime.combine(date.fromordinal(d), time())
            res = tuple(
                (
                    _local_to_utc_us(self._zone, day0 + timedelta(minutes=a)),
                    _local_to_utc_us(self._zone, day0 + timedelta(minutes=b)),
                )
                for a, b in local
            )
        if len(self._cache) >= _DAY_CACHE_MAX:
            self._cache.clear()
        self._cache[d] = res
        return res

    def _special_days(self, first: int, last: int) -> list[tuple[int, int]]:
        """Sorted, disjoint ranges in [first, last] that are holidays or DST-transition days."""
        spans: list[tuple[int, int]] = []
        i = max(bisect.bisect_right(self._hol_starts, first) - 1, 0)
        while i < len(self._hol_ranges) and self._hol_ranges[i][0] <= last:
            a, b = self._hol_ranges[i]
            if b >= first:
                spans.append((max(a, first), min(b, last)))
            i += 1
        y_first, y_last = date.fromordinal(first).year, date.fromordinal(last).year
        for year in range(y_first, y_last + 1):
            days = _transition_days(self.tz, year)
            if days:
                lo = bisect.bisect_left(days, first)
                hi = bisect.bisect_right(days, last)
                spans.extend((t, t) for t in days[lo:hi])
        return _merge(spans) if spans else spans

    def _clean_run_us(self, first: int, last: int) -> int:
        """Business µs of days first..last when none is a holiday or a transition day."""
        n = last - first + 1
        if n <= 0:
            return 0
        weeks, rem = divmod(n, 7)
        total = weeks * self._week_us
        wd = (first - 1) % 7
        for k in range(rem):
            total += self._day_us[(wd + k) % 7]
        return total

    def _day_us_exact(self, d: int) -> int:
        if self._holiday_end(d) is not None:
            return 0
        return sum(b - a for a, b in self._windows_us(d))


# --------------------------------------------------------------------------- zone helpers
def _midnight_offset_us(zone: ZoneInfo, d: int) -> int:
    off = datetime.combine(date.fromordinal(d), time(), zone).utcoffset()
    assert off is not None
    return off // timedelta(microseconds=1)


class _SortedDays(tuple):  # type: ignore[type-arg]
    """A sorted tuple of ordinals with O(log n) membership (used for transition days)."""

    def __contains__(self, d: object) -> bool:
        i = bisect.bisect_left(self, d)  # type: ignore[arg-type]
        return i < len(self) and self[i] == d


@lru_cache(maxsize=4096)
def _transition_days(tz: str, year: int) -> _SortedDays:
    """Sorted ordinals of local days of ``year`` whose length is not 24 h (an offset change).

    A day is flagged when the offset at its local midnight (fold=0) differs from the offset at
    the next local midnight; with fold=0 a nonexistent or ambiguous midnight reads the offset
    in force before the change, which flags exactly the day that is shorter or longer.
    """
    zone = ZoneInfo(tz)
    first = date(year, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    out: list[int] = []
    prev = _midnight_offset_us(zone, first)
    for d in range(first, last + 1):
        nxt = _midnight_offset_us(zone, d + 1)
        if nxt != prev:
            out.append(d)
        prev = nxt
    return _SortedDays(out)


def _to_us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _local_to_utc_us(zone: ZoneInfo, naive: datetime) -> int:
    """UTC µs of a local wall time: ambiguous -> first occurrence, nonexistent -> gap end."""
    first = naive.replace(tzinfo=zone, fold=0)
    us = _to_us(first)
    if first.astimezone(_UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return us
    # In a gap fold=0 applies the offset from before the change (instant after the change) and
    # fold=1 the offset after it (instant before the change); the change lies in between.
    before = _to_us(naive.replace(tzinfo=zone, fold=1))
    lo, hi = min(us, before), max(us, before)
    target = _from_us(hi).astimezone(zone).utcoffset()
    while hi - lo > 1_000_000:  # tzdata transitions fall on whole seconds
        mid = lo + (hi - lo) // 2_000_000 * 1_000_000
        if mid <= lo:
            mid = lo + 1_000_000
        if _from_us(mid).astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


def _check_aware(name: str, dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt!r}")


# --------------------------------------------------------------------------- public API
def business_seconds(schedule: Schedule, start: datetime, end: datetime) -> int:
    """Seconds of [start, end) that fall inside the schedule's open windows.

    ``start``/``end`` must be aware (any offset; they are compared as instants).  Returns 0 when
    ``end <= start``.  Fractions of a second are truncated after summing.
    """
    _check_aware("start", start)
    _check_aware("end", end)
    s_us, e_us = _to_us(start), _to_us(end)
    if e_us <= s_us or schedule._week_us == 0:
        return 0
    zone = schedule._zone
    d_first = start.astimezone(zone).date().toordinal()
    d_last = end.astimezone(zone).date().toordinal()

    def clipped(d: int) -> int:
        if schedule._holiday_end(d) is not None:
            return 0
        tot = 0
        for a, b in schedule._windows_us(d):
            lo = a if a > s_us else s_us
            hi = b if b < e_us else e_us
            if hi > lo:
                tot += hi - lo
        return tot

    if d_first == d_last:
        return clipped(d_first) // 1_000_000
    total = clipped(d_first) + clipped(d_last)
    first, last = d_first + 1, d_last - 1  # interior days lie wholly inside [start, end)
    if first <= last:
        cursor = first
        for a, b in schedule._special_days(first, last):
            total += schedule._clean_run_us(cursor, a - 1)
            for d in range(a, b + 1):
                total += schedule._day_us_exact(d)
            cursor = b + 1
        total += schedule._clean_run_us(cursor, last)
    return total // 1_000_000


def add_business_seconds(schedule: Schedule, start: datetime, seconds: float) -> datetime:
    """Earliest instant t >= start with ``business_seconds(schedule, start, t) == seconds``.

    Used for SLA due dates in business hours.  Returns a UTC datetime; ``seconds == 0`` returns
    ``start`` itself (even outside business hours).  A budget that ends exactly at a window's
    close returns that closing instant, not the next opening.
    """
    _check_aware("start", start)
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    remaining = round(seconds * 1_000_000)
    s_us = _to_us(start)
    if remaining == 0:
        return start.astimezone(_UTC)
    week = schedule._week_us
    if week == 0:
        raise ValueError("schedule has no business hours; the budget can never be spent")
    d = start.astimezone(schedule._zone).date().toordinal()
    first_day = True
    while True:
        if not first_day and remaining > week:
            # Jump whole clean weeks that end before the budget runs out.
            hol_end = schedule._holiday_end(d)
            if hol_end is not None:
                d = hol_end + 1
                continue
            horizon = d + 366
            nxt = schedule._next_holiday_start(d)
            if nxt is not None and nxt < horizon:
                horizon = nxt
            for year in (date.fromordinal(d).year, date.fromordinal(d).year + 1):
                days = _transition_days(schedule.tz, year)
                i = bisect.bisect_left(days, d)
                if i < len(days):
                    horizon = min(horizon, days[i])
                    break
            weeks = min((horizon - d) // 7, (remaining - 1) // week)
            if weeks > 0:
                remaining -= weeks * week
                d += 7 * weeks
                continue
        if schedule._holiday_end(d) is None:
            for a, b in schedule._windows_us(d):
                if a < s_us:
                    a = s_us
                if b <= a:
                    continue
                if remaining <= b - a:
                    return _from_us(a + remaining)
                remaining -= b - a
        first_day = False
        d += 1
