"""Zendesk sync benchmark: requests vs the API's lower bound, wall time, records/s, peak RSS.

    python bench/bench_zendesk.py                 # 1k, 10k and 100k tickets
    python bench/bench_zendesk.py --sizes 1000    # just one size

The simulator runs in its own process (so its CPU does not count against the client), the sync
in another fresh process (so peak RSS is the sync's own). Rate limits are lifted: this measures
kpisync, not Zendesk's 10 requests/minute; the request count is what the limit would cost.
Lower bound = ⌈T/1000⌉ tickets + ⌈A/1000⌉ ticket events + ⌈U/1000⌉ users + ⌈O/1000⌉ orgs
+ ⌈R/100⌉ ratings + ⌈M/1000⌉ metric events + ⌈C/1000⌉ + 1 Talk calls + small lists (groups,
schedules + holidays, SLA policies, the agents list, the ticket fields naming the Time Tracking
app's fields). The Talk export documents no page size and says to judge the end by `count`, so
even an ideal client needs the one page that brings nothing new (the +1); its 1000 a page is
the simulator's assumption.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

END = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)


def _serve(tickets: int, queue: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    from kpisync.fixtures.simserver import SimClock
    from kpisync.fixtures.world import generate_world
    from kpisync.fixtures.zendesk_sim import ZendeskSimulator

    days = 365
    world = generate_world(seed=1, start=END - timedelta(days=days), end=END, tickets_per_day=tickets / days)
    events = sum(len(t.updates) for t in world.tickets)  # one event per audit; updates[0] is the creation
    counts = {
        "tickets": len(world.tickets),
        "events": events,
        "users": len(world.users()),
        "organizations": len(world.organizations),
        "ratings": len(world.ratings()),
        "schedules": len(world.schedules),
        "calls": len(world.calls()),
    }
    clock = SimClock(world.now + timedelta(minutes=2), scale=1.0)
    sim = ZendeskSimulator(world, clock=clock, incremental_limit_per_min=10**9, account_limit_per_min=10**9,
                           talk_limit_per_min=10**9)
    sim.start()
    queue.put((sim.url, sim.email, sim.api_token, counts))
    stop.wait()
    metric_events = sum(1 for r in sim.requests if "ticket_metric_events" in r.path)
    queue.put(metric_events)
    sim.stop()


SYNC = r"""
import json, resource, sys, time
from kpisync.connectors.zendesk import ZendeskConfig, ZendeskConnector
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import sync_source
url, email, token, db = sys.argv[1:5]
config = ZendeskConfig(subdomain="bench", email=email, api_token=token, base_url=url)
started = time.perf_counter()
with Store(db) as store:
    run = sync_source(store, "zendesk", ZendeskConnector(config, Runtime(time_scale=1e6)))
print(json.dumps({"status": run.status, "error": run.error, "seconds": time.perf_counter() - started,
                  "requests": {s.name: s.requests for s in run.streams}, "records": run.records,
                  "stream_seconds": {s.name: s.seconds for s in run.streams},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def lower_bound(c: dict[str, int], metric_event_pages: int) -> int:
    up = lambda n, k: -(-n // k)  # noqa: E731
    small = 1 + (1 + c["schedules"]) + 1 + 1 + 1  # groups, schedules+holidays, sla policies, agents, ticket fields
    return (
        up(c["tickets"], 1000) + up(c["events"], 1000) + up(c["users"], 1000) + up(c["organizations"], 1000)
        + up(c["ratings"], 100) + metric_event_pages + up(c["calls"], 1000) + 1 + small
    )


def bench(tickets: int) -> dict[str, object]:
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(tickets, queue, stop), daemon=True)
    server.start()
    url, email, token, counts = queue.get(timeout=600)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        out = subprocess.run([sys.executable, "-c", SYNC, url, email, token, db], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
    stop.set()
    metric_pages = queue.get(timeout=60)
    server.join(timeout=30)
    requests = sum(result["requests"].values())
    bound = lower_bound(counts, metric_pages)
    return {
        "tickets": counts["tickets"],
        "records": result["records"],
        "requests": requests,
        "lower_bound": bound,
        "ratio": round(requests / bound, 3),
        "seconds": round(result["seconds"], 2),
        "records_per_s": int(result["records"] / result["seconds"]),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "status": result["status"],
        "by_stream": result["requests"],
        "stream_seconds": result["stream_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        row = bench(size)
        rows.append(row)
        if not args.json:
            print(
                f"{row['tickets']:>7} tickets  {row['records']:>9} records  requests {row['requests']:>5} "
                f"(lower bound {row['lower_bound']}, ×{row['ratio']})  {row['seconds']:>7}s  "
                f"{row['records_per_s']:>7} records/s  peak RSS {row['peak_rss_mb']} MB  [{row['status']}]"
                f"  (bench total {time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
