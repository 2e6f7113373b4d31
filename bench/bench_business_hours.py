"""Business-hours and forecast arithmetic speed (was a timed unit test; belongs here).

    python bench/bench_business_hours.py
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from kpisync.core.metrics.business_hours import Schedule, business_seconds
from kpisync.core.metrics.timeseries import forecast

WEEKDAYS_9_17 = tuple((d, 540, 1020) for d in range(5))


def main() -> None:
    schedule = Schedule("Europe/Berlin", WEEKDAYS_9_17)
    rng = random.Random(3)
    spans = []
    for _ in range(20000):
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 360 * 86400))
        spans.append((start, start + timedelta(seconds=rng.randint(0, 2 * 86400))))
    t0 = time.perf_counter()
    for a, b in spans:
        business_seconds(schedule, a, b)
    per_call = (time.perf_counter() - t0) / len(spans)
    print(f"business_seconds, 0-2 day spans: {per_call * 1e6:.1f} µs per call")
    series = [(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i), 50 + 10 * (i % 7) + rng.gauss(0, 3)) for i in range(182)]
    t0 = time.perf_counter()
    result = forecast(series, 28)
    print(f"forecast, 26 weeks daily, 28-day horizon with backtest: {(time.perf_counter() - t0) * 1e3:.1f} ms ({result.method})")


if __name__ == "__main__":
    main()
