"""The fast business clock of the facts refresh against the schedule module it must equal."""

from __future__ import annotations

import random
from datetime import date, datetime, timezone

from kpisync.core.metrics.business_hours import Schedule, business_seconds
from kpisync.core.metrics.clock import BusinessClock

UTC = timezone.utc
WEEKDAYS_9_17 = tuple((wd, 9 * 60, 17 * 60) for wd in range(5))
#: Over both 2024 DST changes of Europe/Berlin, with a holiday week in between.
SCHEDULE = Schedule("Europe/Berlin", WEEKDAYS_9_17, ((date(2024, 5, 13), date(2024, 5, 17)),))
LO, HI = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp()), int(datetime(2024, 11, 30, tzinfo=UTC).timestamp())


def _seconds(start: int, end: int) -> int:
    return business_seconds(SCHEDULE, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))


def test_durations_equal_the_schedule_module_over_dst_and_holidays() -> None:
    rng = random.Random(7)
    clock, memo = BusinessClock(SCHEDULE), BusinessClock(SCHEDULE).memo()
    for _ in range(300):
        a, b = sorted(rng.randrange(LO, HI) for _ in range(2))
        assert clock.seconds(a, b) == memo(a, b) == _seconds(a, b)
    assert clock.seconds(HI, LO) == 0 and clock.seconds(None, HI) is None
