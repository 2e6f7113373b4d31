"""Tests for kpisync.core.metrics.business_hours.

Hand-checked expectations use 2024 calendars: 2024-03-08 is a Friday; Europe/Berlin springs
forward on Sun 2024-03-31 (02:00 CET -> 03:00 CEST, 01:00 UTC) and falls back on Sun 2024-10-27
(03:00 CEST -> 02:00 CET, 01:00 UTC); America/New_York on Sun 2024-03-10 and Sun 2024-11-03
(both at 02:00 local).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kpisync.core.metrics.business_hours import (
    Schedule,
    add_business_seconds,
    business_seconds,
)

UTC = timezone.utc
BER = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
H = 3600

WEEKDAYS_9_17 = tuple((wd, 9 * 60, 17 * 60) for wd in range(5))


def ber(*a: int) -> datetime:
    return datetime(*a, tzinfo=BER)


def nyc(*a: int) -> datetime:
    return datetime(*a, tzinfo=NY)


@pytest.fixture()
def office() -> Schedule:
    return Schedule("Europe/Berlin", WEEKDAYS_9_17)


# ------------------------------------------------------------------ basic overlaps
class TestBasics:
    def test_same_day_inside(self, office: Schedule) -> None:
        assert business_seconds(office, ber(2024, 3, 5, 10), ber(2024, 3, 5, 12, 30)) == 2.5 * H

    def test_weekend_is_skipped(self, office: Schedule) -> None:
        # Fri 16:00 -> Mon 10:00 = 1 h Friday + 1 h Monday
        assert business_seconds(office, ber(2024, 3, 8, 16), ber(2024, 3, 11, 10)) == 2 * H

    def test_start_before_opening(self, office: Schedule) -> None:
        assert business_seconds(office, ber(2024, 3, 5, 7), ber(2024, 3, 5, 10)) == 1 * H

    def test_start_after_closing(self, office: Schedule) -> None:
        assert business_seconds(office, ber(2024, 3, 5, 18), ber(2024, 3, 6, 9, 30)) == 1800

    def test_entirely_outside_hours(self, office: Schedule) -> None:
        assert business_seconds(office, ber(2024, 3, 5, 18), ber(2024, 3, 6, 8)) == 0
        assert business_seconds(office, ber(2024, 3, 9, 10), ber(2024, 3, 10, 20)) == 0  # Sat-Sun

    def test_empty_and_reversed_interval(self, office: Schedule) -> None:
        t = ber(2024, 3, 5, 10)
        assert business_seconds(office, t, t) == 0
        assert business_seconds(office, t, t - timedelta(hours=3)) == 0

    def test_full_week_and_full_year(self, office: Schedule) -> None:
        assert business_seconds(office, ber(2024, 3, 4), ber(2024, 3, 11)) == 40 * H
        # 2024-01-01 (Mon) .. 2024-12-31 00:00: 52 weeks + Mon 30 Dec = 261 weekdays, DST twice.
        assert business_seconds(office, ber(2024, 1, 1), ber(2024, 12, 31)) == 261 * 8 * H

    def test_inputs_in_other_offsets_are_instants(self, office: Schedule) -> None:
        # 08:00 UTC = 09:00 CET on Tue 2024-03-05; 12:00 UTC = 13:00 CET.
        assert business_seconds(office, datetime(2024, 3, 5, 8, tzinfo=UTC), datetime(2024, 3, 5, 12, tzinfo=UTC)) == 4 * H

    def test_sub_second_parts_are_summed_then_truncated(self, office: Schedule) -> None:
        start = ber(2024, 3, 5, 10, 0, 0) + timedelta(microseconds=400_000)
        end = ber(2024, 3, 5, 10, 0, 2) + timedelta(microseconds=300_000)
        assert business_seconds(office, start, end) == 1  # 1.9 s

    def test_naive_datetimes_rejected(self, office: Schedule) -> None:
        with pytest.raises(ValueError):
            business_seconds(office, datetime(2024, 3, 5, 10), ber(2024, 3, 5, 11))
        with pytest.raises(ValueError):
            add_business_seconds(office, datetime(2024, 3, 5, 10), 60)

    def test_split_windows_in_one_day(self) -> None:
        lunch = Schedule("Europe/Berlin", ((1, 9 * 60, 12 * 60), (1, 13 * 60, 17 * 60)))
        assert business_seconds(lunch, ber(2024, 3, 5, 11), ber(2024, 3, 5, 14)) == 2 * H

    def test_windows_touching_midnight_are_continuous(self) -> None:
        night = Schedule("UTC", ((0, 22 * 60, 1440), (1, 0, 6 * 60)))
        start = datetime(2024, 3, 4, 23, tzinfo=UTC)  # Monday 23:00
        assert business_seconds(night, start, datetime(2024, 3, 5, 2, tzinfo=UTC)) == 3 * H
        assert add_business_seconds(night, start, 2 * H) == datetime(2024, 3, 5, 1, tzinfo=UTC)

    def test_schedule_without_hours(self) -> None:
        empty = Schedule("UTC", ())
        assert business_seconds(empty, ber(2024, 1, 1), ber(2024, 6, 1)) == 0
        with pytest.raises(ValueError):
            add_business_seconds(empty, ber(2024, 1, 1), 1)


# ------------------------------------------------------------------ schedule construction
class TestSchedule:
    def test_validation(self) -> None:
        with pytest.raises(ValueError):
            Schedule("UTC", ((7, 0, 60),))
        with pytest.raises(ValueError):
            Schedule("UTC", ((0, 600, 600),))
        with pytest.raises(ValueError):
            Schedule("UTC", ((0, 0, 1441),))
        with pytest.raises(ValueError):
            Schedule("UTC", (), ((date(2024, 1, 2), date(2024, 1, 1)),))
        with pytest.raises(Exception):
            Schedule("Not/AZone", ())

    def test_overlapping_intervals_are_merged(self) -> None:
        s = Schedule("UTC", ((0, 600, 1020), (0, 540, 720), (0, 1020, 1080)))
        assert s.intervals == ((0, 540, 1080),)
        assert s == Schedule("UTC", ((0, 540, 1080),))
        assert hash(s) == hash(Schedule("UTC", ((0, 540, 1080),)))
        # Mon 2024-03-04 00:00 -> 24:00 counts 9 h once, not the overlap twice.
        assert business_seconds(s, datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC)) == 9 * H

    def test_week_seconds(self, office: Schedule) -> None:
        assert office.week_seconds == 40 * H
        assert Schedule.always_open().week_seconds == 7 * 24 * H

    def test_from_zendesk_intervals(self) -> None:
        zd = [{"start_time": 1440 * d + 540, "end_time": 1440 * d + 1020} for d in range(1, 6)]
        s = Schedule.from_zendesk_intervals("Europe/Berlin", zd)
        assert s == Schedule("Europe/Berlin", WEEKDAYS_9_17)

    def test_zendesk_sunday_saturday_and_week_end(self) -> None:
        s = Schedule.from_zendesk_intervals(
            "UTC",
            [{"start_time": 0, "end_time": 120}, {"start_time": 6 * 1440 + 1200, "end_time": 10080}],
        )
        assert s.intervals == ((5, 1200, 1440), (6, 0, 120))

    def test_zendesk_interval_crossing_midnight_is_split(self) -> None:
        # Mon 20:00 -> Tue 02:00 (not producible by Zendesk, but must not be mis-read)
        s = Schedule.from_zendesk_intervals("UTC", [{"start_time": 1440 + 1200, "end_time": 2880 + 120}])
        assert s.intervals == ((0, 1200, 1440), (1, 0, 120))
        with pytest.raises(ValueError):
            Schedule.from_zendesk_intervals("UTC", [{"start_time": 100, "end_time": 10081}])

    def test_zendesk_holidays(self) -> None:
        s = Schedule.from_zendesk_intervals(
            "Europe/Berlin",
            [{"start_time": 1440 * d + 540, "end_time": 1440 * d + 1020} for d in range(1, 6)],
            [{"name": "Xmas", "start_date": "2024-12-25", "end_date": "2024-12-26"}],
        )
        assert s.holidays == ((date(2024, 12, 25), date(2024, 12, 26)),)
        assert s.is_holiday(date(2024, 12, 26)) and not s.is_holiday(date(2024, 12, 27))

    def test_always_open(self) -> None:
        s = Schedule.always_open("UTC")
        t = datetime(2024, 5, 1, 13, 7, tzinfo=UTC)
        assert business_seconds(s, t, t + timedelta(days=40, seconds=5)) == 40 * 86400 + 5


# ------------------------------------------------------------------ holidays
class TestHolidays:
    def test_holidays_are_closed(self) -> None:
        s = Schedule("Europe/Berlin", WEEKDAYS_9_17, ((date(2024, 12, 25), date(2024, 12, 26)),))
        # Tue 24 16:00 -> Fri 27 10:00: 1 h Tue + Wed/Thu closed + 1 h Fri
        assert business_seconds(s, ber(2024, 12, 24, 16), ber(2024, 12, 27, 10)) == 2 * H
        # Starting and ending on a holiday
        assert business_seconds(s, ber(2024, 12, 25, 10), ber(2024, 12, 26, 12)) == 0

    def test_holiday_range_over_weekends_and_long_spans(self) -> None:
        # Two weeks off (Mon 2024-07-01 .. Sun 07-14) inside a 5-week span -> 3 working weeks.
        s = Schedule("Europe/Berlin", WEEKDAYS_9_17, ((date(2024, 7, 1), date(2024, 7, 14)),))
        assert business_seconds(s, ber(2024, 6, 24), ber(2024, 7, 29)) == 3 * 40 * H

    def test_touching_and_overlapping_holidays(self) -> None:
        hol = ((date(2024, 7, 3), date(2024, 7, 4)), (date(2024, 7, 1), date(2024, 7, 2)), (date(2024, 7, 2), date(2024, 7, 3)))
        s = Schedule("Europe/Berlin", WEEKDAYS_9_17, hol)
        assert business_seconds(s, ber(2024, 7, 1), ber(2024, 7, 8)) == 8 * H  # only Fri 5th

    def test_add_skips_holidays(self) -> None:
        s = Schedule("Europe/Berlin", WEEKDAYS_9_17, ((date(2024, 12, 25), date(2024, 12, 26)),))
        due = add_business_seconds(s, ber(2024, 12, 24, 16), 2 * H)
        assert due == ber(2024, 12, 27, 10)


# ------------------------------------------------------------------ DST
class TestDST:
    @pytest.mark.parametrize(
        ("zone", "day", "expected_h"),
        [
            ("Europe/Berlin", date(2024, 3, 24), 3),  # ordinary Sunday
            ("Europe/Berlin", date(2024, 3, 31), 2),  # 02:00-03:00 never happened
            ("Europe/Berlin", date(2024, 10, 27), 4),  # 02:00-03:00 happened twice
            ("America/New_York", date(2024, 3, 10), 2),
            ("America/New_York", date(2024, 11, 3), 4),
        ],
    )
    def test_window_across_the_change(self, zone: str, day: date, expected_h: int) -> None:
        tz = ZoneInfo(zone)
        s = Schedule(zone, ((6, 60, 240),))  # Sundays 01:00-04:00 local
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        assert business_seconds(s, start, start + timedelta(days=1)) == expected_h * H
        # Same answer when the query is a long span around the day (interior-day path).
        assert business_seconds(s, start - timedelta(days=3), start + timedelta(days=3)) == expected_h * H

    @pytest.mark.parametrize(
        ("zone", "day"),
        [("Europe/Berlin", date(2024, 3, 31)), ("Europe/Berlin", date(2024, 10, 27)),
         ("America/New_York", date(2024, 3, 10)), ("America/New_York", date(2024, 11, 3))],
    )
    def test_nine_to_five_on_dst_days_is_eight_hours(self, zone: str, day: date) -> None:
        tz = ZoneInfo(zone)
        s = Schedule(zone, ((6, 540, 1020),))
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        assert business_seconds(s, start, start + timedelta(days=1)) == 8 * H
        # 09:00 local is a different UTC hour on each side of the change.
        assert add_business_seconds(s, start, 8 * H) == datetime(day.year, day.month, day.day, 17, tzinfo=tz)

    def test_nonexistent_endpoint_shifts_forward(self) -> None:
        # Window 02:30-05:00 on the spring-forward day: 02:30 -> 03:00 CEST, so 2 h.
        s = Schedule("Europe/Berlin", ((6, 150, 300),))
        assert business_seconds(s, ber(2024, 3, 31), ber(2024, 4, 1)) == 2 * H
        ny = Schedule("America/New_York", ((6, 150, 300),))
        assert business_seconds(ny, nyc(2024, 3, 10), nyc(2024, 3, 11)) == 2 * H
        # A window wholly inside the gap never opens.
        gap = Schedule("Europe/Berlin", ((6, 125, 175),))
        assert business_seconds(gap, ber(2024, 3, 31), ber(2024, 4, 1)) == 0
        assert business_seconds(gap, ber(2024, 3, 24), ber(2024, 3, 25)) == 50 * 60
        due = add_business_seconds(s, ber(2024, 3, 31), 60)
        assert due == datetime(2024, 3, 31, 1, 1, tzinfo=UTC)  # 03:01 CEST

    def test_ambiguous_endpoint_takes_first_occurrence(self) -> None:
        # 02:30 on the fall-back day is 02:30 CEST = 00:30 UTC.
        s = Schedule("Europe/Berlin", ((6, 150, 300),))  # 02:30-05:00
        assert business_seconds(s, ber(2024, 10, 27), ber(2024, 10, 28)) == 3.5 * H
        s2 = Schedule("Europe/Berlin", ((6, 0, 150),))  # 00:00-02:30 (ends at first 02:30)
        assert business_seconds(s2, ber(2024, 10, 27), ber(2024, 10, 28)) == 2.5 * H

    def test_partial_overlap_with_a_dst_window(self) -> None:
        s = Schedule("Europe/Berlin", ((6, 60, 240),))
        # 00:30 UTC (01:30 CET) -> 01:30 UTC (03:30 CEST): one real hour.
        assert business_seconds(s, datetime(2024, 3, 31, 0, 30, tzinfo=UTC), datetime(2024, 3, 31, 1, 30, tzinfo=UTC)) == H

    def test_24x7_over_dst_weekends(self) -> None:
        s = Schedule.always_open("Europe/Berlin")
        assert business_seconds(s, ber(2024, 3, 30), ber(2024, 4, 1)) == 47 * H
        assert business_seconds(s, ber(2024, 10, 26), ber(2024, 10, 28)) == 49 * H
        # A whole year in local days: 366 days of 24 h, the two DST hours cancel.
        assert business_seconds(s, ber(2024, 1, 1), ber(2025, 1, 1)) == 366 * 24 * H

    def test_add_across_dst_window(self) -> None:
        s = Schedule("Europe/Berlin", tuple((wd, 60, 240) for wd in range(7)))  # daily 01:00-04:00
        # Sat 04:00: Sunday's window is only 2 h (spring forward) -> 1 h more on Monday.
        due = add_business_seconds(s, ber(2024, 3, 30, 4), 3 * H)
        assert due == ber(2024, 4, 1, 2)

    def test_skipped_day(self) -> None:
        # Pacific/Apia skipped Friday 2011-12-30 entirely.
        s = Schedule.always_open("Pacific/Apia")
        tz = ZoneInfo("Pacific/Apia")
        assert business_seconds(s, datetime(2011, 12, 29, tzinfo=tz), datetime(2011, 12, 31, tzinfo=tz)) == 24 * H


# ------------------------------------------------------------------ add_business_seconds
class TestAdd:
    def test_over_weekend(self, office: Schedule) -> None:
        assert add_business_seconds(office, ber(2024, 3, 8, 16), 2 * H) == ber(2024, 3, 11, 10)

    def test_result_is_utc(self, office: Schedule) -> None:
        due = add_business_seconds(office, ber(2024, 3, 8, 16), 2 * H)
        assert due.utcoffset() == timedelta(0) and due == datetime(2024, 3, 11, 9, tzinfo=UTC)

    def test_before_opening_and_at_close(self, office: Schedule) -> None:
        assert add_business_seconds(office, ber(2024, 3, 5, 7), H) == ber(2024, 3, 5, 10)
        assert add_business_seconds(office, ber(2024, 3, 5, 9), 8 * H) == ber(2024, 3, 5, 17)
        assert add_business_seconds(office, ber(2024, 3, 5, 9), 8 * H + 1) == ber(2024, 3, 6, 9, 0, 1)

    def test_zero_and_negative(self, office: Schedule) -> None:
        t = ber(2024, 3, 9, 12)  # Saturday
        assert add_business_seconds(office, t, 0) == t
        with pytest.raises(ValueError):
            add_business_seconds(office, t, -1)

    def test_long_budget(self, office: Schedule) -> None:
        # 150 working days from Mon 2024-01-01 09:00 = 30 weeks -> Fri 2024-07-26 17:00 (CEST).
        assert add_business_seconds(office, ber(2024, 1, 1), 150 * 8 * H) == ber(2024, 7, 26, 17)

    def test_long_budget_over_holidays_and_dst(self) -> None:
        s = Schedule("America/New_York", WEEKDAYS_9_17, ((date(2024, 11, 28), date(2024, 11, 29)),))
        start = nyc(2024, 10, 1)
        due = add_business_seconds(s, start, 300 * H)
        assert business_seconds(s, start, due) == 300 * H
        assert due.astimezone(NY).time().hour in range(9, 18)


# ------------------------------------------------------------------ brute-force properties
def _reference(schedule: Schedule, start: datetime, end: datetime, step: timedelta) -> int:
    """Count whole ``step`` slots whose wall time falls in a window of their own local day.

    Exact when start/end are multiples of ``step`` and the zone's offsets are too, because then
    membership is constant inside a slot.  This is the "set of instants whose wall time is in a
    window" definition, which equals the endpoint-conversion rule unless a window endpoint lies
    strictly inside a fall-back overlap; the random schedules avoid such endpoints.
    """
    tz = ZoneInfo(schedule.tz)
    by_day: dict[int, list[tuple[int, int]]] = {}
    for wd, a, b in schedule.intervals:
        by_day.setdefault(wd, []).append((a, b))
    hol = set()
    for a, b in schedule.holidays:
        d = a
        while d <= b:
            hol.add(d)
            d += timedelta(days=1)
    total = 0
    t = start
    while t < end:
        loc = t.astimezone(tz)
        d = loc.date()
        if d not in hol:
            minute = loc.hour * 60 + loc.minute
            if any(a <= minute < b for a, b in by_day.get(d.weekday(), ())):
                total += 1
        t += step
    return total * int(step.total_seconds())


# Minutes strictly inside each zone's fall-back overlap (an endpoint there is ambiguous).
_ZONES = {
    "Europe/Berlin": range(121, 180),
    "America/New_York": range(61, 120),
    "Australia/Lord_Howe": range(91, 120),  # 30-minute DST
    "UTC": range(0),
    "America/Santiago": range(1381, 1440),  # changes at midnight: 24:00 -> 23:00, 24:00 -> 01:00
    "Africa/Cairo": range(1381, 1440),  # 24:00 -> 23:00 (Oct), 00:00 -> 01:00 (Apr)
}


def _random_schedule(rng: random.Random, zone: str, base: date) -> Schedule:
    allowed = [m for m in range(0, 1441, 15) if m not in _ZONES[zone]]
    intervals = []
    for wd in range(7):
        for _ in range(rng.choice((0, 1, 1, 2))):
            a, b = sorted(rng.sample(allowed, 2))
            intervals.append((wd, a, b))
    holidays = []
    for _ in range(rng.randint(0, 4)):
        h0 = base + timedelta(days=rng.randint(-5, 130))
        holidays.append((h0, h0 + timedelta(days=rng.randint(0, 9))))
    return Schedule(zone, tuple(intervals), tuple(holidays))


# Bases chosen so random spans cover both DST changes of 2024 in each hemisphere.
_BASES = [date(2024, 2, 20), date(2024, 3, 5), date(2024, 9, 1), date(2024, 9, 25), date(2024, 10, 20), date(2024, 3, 28)]


def test_long_spans_match_brute_force() -> None:
    rng = random.Random(20240331)
    step = timedelta(minutes=15)
    for case in range(18):
        zone = list(_ZONES)[case % len(_ZONES)]
        base = rng.choice(_BASES)
        s = _random_schedule(rng, zone, base)
        start = datetime(base.year, base.month, base.day, tzinfo=UTC) + step * rng.randint(0, 4 * 96)
        end = start + step * rng.randint(0, 120 * 96)
        got = business_seconds(s, start, end)
        assert got == _reference(s, start, end, step), (case, s, start, end)


def test_short_spans_at_minute_resolution_match_brute_force() -> None:
    rng = random.Random(7)
    step = timedelta(minutes=1)
    for case in range(48):
        zone = list(_ZONES)[case % len(_ZONES)]
        base = rng.choice(_BASES) + timedelta(days=rng.randint(0, 40))
        s = _random_schedule(rng, zone, base)
        start = datetime(base.year, base.month, base.day, tzinfo=UTC) + step * rng.randint(0, 3 * 1440)
        end = start + step * rng.randint(0, 3 * 1440)
        assert business_seconds(s, start, end) == _reference(s, start, end, step), (case, s, start, end)


def test_add_business_seconds_inverts_business_seconds() -> None:
    rng = random.Random(11)
    for case in range(150):
        zone = list(_ZONES)[case % len(_ZONES)]
        base = rng.choice(_BASES)
        s = _random_schedule(rng, zone, base)
        if s.week_seconds == 0:
            continue
        start = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 20 * 86400))
        budget = rng.choice((rng.randint(1, 4 * 3600), rng.randint(1, 40 * s.week_seconds)))
        due = add_business_seconds(s, start, budget)
        assert business_seconds(s, start, due) == budget, (case, s, start, budget)
        # Earliest such instant: one second earlier is not enough.
        assert business_seconds(s, start, due - timedelta(seconds=1)) == budget - 1, (case, s, start, budget)


def test_thirty_year_span_is_computed() -> None:
    s = Schedule("Europe/Berlin", WEEKDAYS_9_17, ((date(2024, 12, 25), date(2024, 12, 26)),))
    assert business_seconds(s, ber(2000, 1, 3), ber(2030, 1, 7)) > 0
