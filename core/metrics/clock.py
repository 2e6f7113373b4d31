"""A fast business-hours clock over epoch seconds, exact by construction.

`business_hours.business_seconds` costs a few microseconds per call; the facts refresh needs
hundreds of thousands of durations per second. `BusinessClock` keeps a per-local-day prefix sum
(`cum`) so that `B(t)` — business seconds from an anchor to `t` — is a bisect and one or two
window clips, and a duration is `B(end) - B(start)`.

Exactness: a day whose UTC offset is the same at its local midnight and the next one and that
is not a holiday has its windows at `midnight + minutes`, which is what `business_seconds`
computes for such a day. Every other day (DST change, holiday) is measured by
`business_seconds` itself. Day totals for the prefix sum also come from `business_seconds`, so
the two can only disagree if the schedule module does; tests check them against each other.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from .business_hours import Schedule, add_business_seconds, business_seconds

_UTC = timezone.utc
_DAY = 86400


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, _UTC)


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """Epoch of the first instant of local `day` (a midnight lost to DST starts the day later)."""
    return int(datetime.combine(day, time(), zone).timestamp())


class BusinessClock:
    """Business seconds between epoch instants for one schedule, with a lazily grown day table."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.zone = ZoneInfo(schedule.tz)
        self._local = [[(a * 60, b * 60) for w, a, b in schedule.intervals if w == wd] for wd in range(7)]
        self._first: int | None = None  # ordinal of the first day in the table
        self._starts: list[int] = []  # epoch of each day's local midnight (+1 day sentinel at end)
        self._cum: list[int] = []  # business seconds from the table start to each day's start
        self._windows: list[tuple[tuple[int, int], ...] | None] = []  # None = measure exactly
        self._offset = 0  # business seconds prepended before the first anchor: keeps positions stable

    # -- table -------------------------------------------------------------------------------
    def _day_of(self, epoch: int) -> date:
        return datetime.fromtimestamp(epoch, self.zone).date()

    def _extend_to(self, epoch: int) -> None:
        """Grow the table so that `epoch` lies inside it (never shrinks; grows by ≥ 64 days)."""
        if self._first is None:
            day = self._day_of(epoch)
            first = day.toordinal() - 32
            self._first = first
            self._starts = [local_midnight(date.fromordinal(first), self.zone)]
            self._cum = [0]
            self._windows = []
            self._append_days(64)
        while epoch < self._starts[0]:
            self._prepend_days(64)
        while epoch >= self._starts[-1]:
            self._append_days(max(64, len(self._windows) // 2))

    def _day_info(self, ordinal: int, start: int, end: int) -> tuple[int, tuple[tuple[int, int], ...] | None]:
        """(business seconds of the day, its UTC windows or None if it must be measured)."""
        day = date.fromordinal(ordinal)
        clean = end - start == _DAY and not self.schedule.is_holiday(day)
        if clean:
            windows = tuple((start + a, start + b) for a, b in self._local[day.weekday()])
            return sum(b - a for a, b in windows), windows
        return business_seconds(self.schedule, _dt(start), _dt(end)), None

    def _append_days(self, count: int) -> None:
        assert self._first is not None
        ordinal = self._first + len(self._windows)
        for _ in range(count):
            start = self._starts[-1]
            end = local_midnight(date.fromordinal(ordinal + 1), self.zone)
            total, windows = self._day_info(ordinal, start, end)
            self._windows.append(windows)
            self._starts.append(end)
            self._cum.append(self._cum[-1] + total)
            ordinal += 1

    def _prepend_days(self, count: int) -> None:
        assert self._first is not None
        starts, cums, wins = [], [], []
        end = self._starts[0]
        for ordinal in range(self._first - 1, self._first - 1 - count, -1):
            start = local_midnight(date.fromordinal(ordinal), self.zone)
            total, windows = self._day_info(ordinal, start, end)
            starts.append(start)
            cums.append(total)
            wins.append(windows)
            end = start
        starts.reverse()
        cums.reverse()
        wins.reverse()
        prefix, running = [], 0
        for total in cums:
            prefix.append(running)
            running += total
        self._cum = prefix + [c + running for c in self._cum]
        self._offset += running
        self._starts = starts + self._starts
        self._windows = wins + self._windows
        self._first -= count

    # -- queries -----------------------------------------------------------------------------
    def position(self, epoch: int) -> int:
        """Business seconds from a fixed anchor to `epoch` (negative before it; only differences matter)."""
        if not self._starts or epoch < self._starts[0] or epoch >= self._starts[-1]:
            self._extend_to(epoch)
        i = bisect.bisect_right(self._starts, epoch) - 1
        windows = self._windows[i]
        if windows is None:
            return self._cum[i] - self._offset + business_seconds(self.schedule, _dt(self._starts[i]), _dt(epoch))
        total = self._cum[i] - self._offset
        for a, b in windows:
            if epoch <= a:
                break
            total += (b if epoch > b else epoch) - a
        return total

    def seconds(self, start: int | None, end: int | None) -> int | None:
        """Business seconds in [start, end); None if either is None; 0 if end <= start."""
        if start is None or end is None:
            return None
        if end <= start:
            return 0
        return self.position(end) - self.position(start)

    def memo(self) -> Callable[[int | None, int | None], int | None]:
        """`seconds` with positions cached: durations of one ticket share most endpoints."""
        cache: dict[int, int] = {}
        position = self.position

        def seconds(start: int | None, end: int | None) -> int | None:
            if start is None or end is None:
                return None
            if end <= start:
                return 0
            a = cache.get(start)
            if a is None:
                a = cache[start] = position(start)
            b = cache.get(end)
            if b is None:
                b = cache[end] = position(end)
            return b - a

        return seconds

    def add(self, start: int, seconds: float) -> int:
        """The instant `seconds` of business time after `start` (SLA due dates)."""
        return int(add_business_seconds(self.schedule, _dt(start), seconds).timestamp())

