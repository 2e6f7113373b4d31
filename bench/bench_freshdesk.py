"""Benchmark: requests and wall time of `kpisync pull freshdesk` against the simulator.

For each account size it runs a full pull with no rate limit, then (optionally) the same pull
under a simulated Growth plan (200 credits a minute, ticket list 20 a minute) on a scaled
clock, and one incremental pull after a simulated day. Requests are compared with the lower
bound ⌈T/100⌉ ticket pages + one conversations call per ticket + ⌈R/100⌉ ratings + ⌈E/100⌉
time entries + ⌈C/100⌉ contacts + the small lists (agents, groups, companies, business hours,
SLA policies, ticket fields, spam and deleted pages); for the incremental pull, the changed
tickets' pages and conversations + one request per other stream. Growth wall time is compared
with the limit-bound time: credits ÷ 200 a minute (a ticket page with `include=stats` costs 3
credits, everything else 1).

    python bench/bench_freshdesk.py                  # 1k and 10k tickets, Growth for both
    python bench/bench_freshdesk.py --sizes 1000 10000 100000 --growth-sizes 1000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import SecretStr

from kpisync.connectors.freshdesk import FreshdeskConfig, FreshdeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
from kpisync.fixtures.freshdesk_sim import FreshdeskSim
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.world import World, generate_world

KEY = "bench-key"
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
#: Simulated seconds per real second under Growth. The plan allows a call per 0.3 simulated s;
#: at 30 that is 10 real ms, comfortably above one call's real cost on localhost (2-6 ms), so the
#: limit, not the machine, sets the pace.
GROWTH_SCALE = 30.0


@dataclass
class Row:
    label: str
    tickets: int
    requests: int
    bound: int
    seconds: float
    sim_minutes: float | None = None
    bound_minutes: float | None = None


def make_world(tickets: int) -> World:
    days = 60 if tickets <= 2000 else 100
    return generate_world(seed=7, start=START, end=START + timedelta(days=days), tickets_per_day=tickets / days)


def lower_bound(world: World, conversations: int | None = None) -> tuple[int, int]:
    """(requests, credits) a perfect client needs for a full pull of `world`."""
    live = [t for t in world.tickets if not t.is_spam and not t.is_deleted]
    spam = sum(1 for t in world.tickets if t.is_spam and not t.is_deleted)
    deleted = sum(1 for t in world.tickets if t.is_deleted)
    pages = math.ceil(len(live) / 100)
    convs = len(live) if conversations is None else conversations
    small = 6 + max(1, math.ceil(spam / 100)) + max(1, math.ceil(deleted / 100))
    others = (max(1, math.ceil(len(world.ratings()) / 100)) + max(1, math.ceil(len(world.time_entries()) / 100))
              + max(1, math.ceil(len(world.customers) / 100)) + small)  # fmt: skip
    return pages + convs + others, 3 * pages + convs + others


def pull(sim: FreshdeskSim, db: Path, scale: float = 1.0) -> tuple[int, float, str]:
    """(requests, real seconds, status) of one `sync_source` run."""
    config = FreshdeskConfig(base_url=sim.url, api_key=SecretStr(KEY))
    with Store(db) as store:
        started = time.monotonic()
        run = sync_source(store, "freshdesk", FreshdeskConnector(config, Runtime(time_scale=scale)))
        return run.requests, time.monotonic() - started, run.status


def bench(size: int, growth: bool, work: Path, scale: float) -> list[Row]:
    world = make_world(size)
    live = sum(1 for t in world.tickets if not t.is_spam and not t.is_deleted)
    rows = []
    bound, credits = lower_bound(world)
    with FreshdeskSim(world, api_key=KEY) as sim:
        db = work / f"fd-{size}.db"
        requests, seconds, status = pull(sim, db)
        assert status == "success", status
        rows.append(Row(f"full, unthrottled ({status})", len(world.tickets), requests, bound, seconds))
        before = {t.id: t.updated_at for t in world.tickets}
        world.advance(world.now + timedelta(days=1), rng_seed=99)
        changed = sum(1 for t in world.tickets if before.get(t.id) != t.updated_at and not t.is_spam and not t.is_deleted)
        requests, seconds, status = pull(sim, db)
        inc_bound = math.ceil(changed / 100) + changed + 11  # + one request per other stream and the labels
        rows.append(Row(f"+1 day: {changed} changed ({status})", len(world.tickets), requests, inc_bound, seconds))
    if growth:
        world = make_world(size)
        bound, credits = lower_bound(world)
        clock = SimClock(world.now, scale=scale)
        with FreshdeskSim(world, api_key=KEY, plan="growth", clock=clock) as sim:
            requests, seconds, status = pull(sim, work / f"fd-{size}-growth.db", scale)
            limited = sim.request_count(status=429)
        minutes = max(credits / 200, math.ceil(live / 100) / 20)
        rows.append(Row(f"full, Growth plan ({status}, {limited}×429)", len(world.tickets), requests, bound, seconds,
                        seconds * scale / 60, minutes))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--growth-sizes", type=int, nargs="*", default=None, help="sizes also run under Growth (default: all)")
    parser.add_argument("--growth-scale", type=float, default=GROWTH_SCALE, help="simulated seconds per real second")
    args = parser.parse_args()
    growth = set(args.sizes if args.growth_sizes is None else args.growth_sizes)
    print(f"{'tickets':>8}  {'run':<40} {'requests':>9} {'bound':>8} {'ratio':>6} {'wall s':>8} {'sim min':>8} {'bound min':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for row in bench(size, size in growth, Path(tmp), args.growth_scale):
                sim_min = f"{row.sim_minutes:8.1f}" if row.sim_minutes is not None else f"{'':>8}"
                bound_min = f"{row.bound_minutes:9.1f}" if row.bound_minutes is not None else f"{'':>9}"
                print(f"{row.tickets:>8}  {row.label:<40} {row.requests:>9} {row.bound:>8} {row.requests / row.bound:>6.3f} "
                      f"{row.seconds:>8.1f} {sim_min} {bound_min}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
