"""Helprace pull cost: requests and wall time for 1k and 10k tickets, full then incremental.

    python bench/bench_helprace.py [--sizes 1000,10000]

Runs the real connector against the simulator on 127.0.0.1 without pacing, so "wall" is what
kpisync and the simulator themselves cost; "at 60/min" is how long the same requests take
against a real account at the connector's default pace (Helprace publishes no rate limit).
The incremental run follows one more simulated day of help-desk life.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import resource
from datetime import datetime, timedelta
from pathlib import Path

from kpisync.connectors.helprace import HelpraceConfig, HelpraceConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source
from kpisync.fixtures.helprace_sim import HelpraceSimulator
from kpisync.fixtures.world import UTC, generate_world

DAYS = 50


def pull(sim: HelpraceSimulator, store: Store) -> tuple[RunResult, float]:
    config = HelpraceConfig(base_url=sim.url, email="ops@acme.test", api_key="bench-key", requests_per_minute=1e9)
    started = time.perf_counter()
    result = sync_source(store, "helprace", HelpraceConnector(config, Runtime(time_scale=1)))
    assert result.status == "success", result.error
    return result, time.perf_counter() - started


def line(label: str, result: RunResult, wall: float) -> str:
    by_stream = ", ".join(f"{s.name} {s.requests}" for s in result.streams)
    return (f"  {label:<12} {result.requests:>6} requests ({by_stream}); wall {wall:6.1f} s; "
            f"at 60/min {result.requests / 60:6.1f} min; {result.rows_written} rows written")  # fmt: skip


def bench(size: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    world = generate_world(17, start, start + timedelta(days=DAYS), tickets_per_day=size / DAYS)
    with HelpraceSimulator(world, api_key="bench-key", limit_per_min=10**9) as sim, tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        visible = len(sim.visible_tickets())
        print(f"{len(world.tickets)} tickets ({visible} listed), {len(sim.listed_users())} users, "
              f"{sum(len(tk.comments) for tk in world.tickets)} comments")  # fmt: skip
        full, wall = pull(sim, store)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        state = store.get_state("helprace", "tickets") or {}
        print(line("full", full, wall) + f"; peak RSS {peak / 2**20:.0f} MiB (simulator included)")
        print(f"  {'':<12} tickets state {len(json.dumps(state)) / 1024:.0f} KiB")
        again, wall = pull(sim, store)
        print(line("unchanged", again, wall))
        changed = world.advance(world.now + timedelta(days=1), rng_seed=5)
        incremental, wall = pull(sim, store)
        print(line("+1 day", incremental, wall) + f" ({len(changed)} tickets touched)")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    for size in (int(s) for s in parser.parse_args().sizes.split(",")):
        bench(size)


if __name__ == "__main__":
    main()
