"""Benchmark of the metrics core: the whole KPI suite and the incremental facts refresh at scale.

    python bench/bench_metrics.py            # 1M tickets / 10M messages (a few minutes to generate)
    python bench/bench_metrics.py --small    # 20k tickets / 200k messages, seconds
    python bench/bench_metrics.py --db /tmp/big.db --generate-only   # keep a generated store ...
    python bench/bench_metrics.py --db /tmp/big.db --reuse           # ... and measure on it again

Data goes straight into the canonical tables with executemany of plain tuples (no pydantic), the
way a sync would leave it: a ticket every ~1 minute for two years, 10 messages each on average
(customer turns, agent replies, private notes, bot messages), status history with solves and
reopens, assignments, CSAT, time entries, calls, macros and SLA due dates. Then:

1. the full facts build (`refresh_all`),
2. the KPI suite: every KPI over the last 13 weeks by week (one query set per KPI), plus the
   default dashboard — goal ≤ 3 s on 2 cores,
3. the incremental refresh after 1 % of tickets change (a new reply and a status change each) —
   goal ≤ 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kpisync.core.facts import refresh_all, refresh_facts
from kpisync.core.metrics.engine import evaluate, evaluate_many
from kpisync.core.metrics.registry import all_kpis
from kpisync.core.metrics.roles import dashboard
from kpisync.core.metrics.settings import MetricsSettings
from kpisync.core.store import Store

START = 1704067200  # 2024-01-01T00:00:00Z
SPAN = 2 * 365 * 86400
CHANNELS = ("email", "email", "email", "web", "web", "chat", "chat", "phone", "api", "social")
STATUS_CAT = {"new": "new", "open": "open", "pending": "pending", "solved": "resolved", "closed": "closed"}
NOW = "2026-01-01T00:00:00Z"
#: The end of the KPI suite's window and the dashboard's (2026-01-01T00:00Z; the generated
#: history ends a day before: 2024 has 366 days).
WINDOW_END = 1767225600
TS = "strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch')"

SQL = {
    "tickets": f"INSERT INTO tickets (source, external_id, channel, is_social, created_at, updated_at, status, "
               f"status_category, requester_id, organization_id, assignee_id, group_id, priority, is_outbound, is_spam, "
               f"is_deleted, is_merged, first_response_due_at, resolution_due_at, tags, url, synced_at) VALUES "
               f"('zd', ?, ?, ?, {TS}, {TS}, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, {TS}, {TS}, ?, ?, '{NOW}')",
    "messages": f"INSERT INTO messages (source, external_id, ticket_id, created_at, author_id, author_role, is_public, "
                f"is_automated, synced_at) VALUES ('zd', ?, ?, {TS}, ?, ?, ?, ?, '{NOW}')",
    "status": f"INSERT INTO ticket_status_events (source, external_id, ticket_id, at, from_status, to_status, "
              f"from_category, to_category, via, synced_at) VALUES ('zd', ?, ?, {TS}, ?, ?, ?, ?, ?, '{NOW}')",
    "assign": f"INSERT INTO ticket_assignment_events (source, external_id, ticket_id, at, field, value_id, previous_id, "
              f"synced_at) VALUES ('zd', ?, ?, {TS}, ?, ?, ?, '{NOW}')",
    "ratings": f"INSERT INTO ratings (source, external_id, ticket_id, kind, scale_min, scale_max, raw_value, value, "
               f"sentiment, offered_at, responded_at, agent_id, synced_at) VALUES "
               f"('zd', ?, ?, 'csat', 0, 1, ?, ?, ?, {TS}, {TS}, ?, '{NOW}')",
    "time": f"INSERT INTO time_entries (source, external_id, ticket_id, agent_id, seconds, executed_at, synced_at) "
            f"VALUES ('zd', ?, ?, ?, ?, {TS}, '{NOW}')",
    "calls": f"INSERT INTO calls (source, external_id, ticket_id, agent_id, started_at, talk_s, hold_s, wrap_up_s, "
             f"synced_at) VALUES ('zd', ?, ?, ?, {TS}, ?, ?, ?, '{NOW}')",
    "macros": f"INSERT INTO macro_applications (source, external_id, ticket_id, macro_id, macro_title, agent_id, "
              f"applied_at, synced_at) VALUES ('zd', ?, ?, ?, ?, ?, {TS}, '{NOW}')",
}


class Generator:
    """Plain tuples for every table, ticket by ticket, deterministic for a seed."""

    def __init__(self, seed: int, agents: int = 200, customers: int = 100_000) -> None:
        self.rng = random.Random(seed)
        self.agents = [f"a{i}" for i in range(1, agents + 1)]
        self.customers = customers
        self.next_id = 1
        self.rows: dict[str, list[tuple]] = {k: [] for k in SQL}

    def _id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def _gap(self, mean_minutes: float) -> int:
        return int(self.rng.expovariate(1 / (mean_minutes * 60))) + 30

    def ticket(self, number: int, created: int) -> None:
        rng, tid, rows = self.rng, str(number), self.rows
        channel = rng.choice(CHANNELS)
        agent = rng.choice(self.agents)
        group = f"g{int(agent[1:]) % 10 + 1}"
        outbound = rng.random() < 0.05
        customer = f"c{rng.randint(1, self.customers)}"
        t = created
        messages = rng.randint(4, 16)  # mean 10
        author = "agent" if outbound else "customer"
        status, steps = "new", [("new", created)]
        rows["assign"].append((self._id(), tid, created, "assignee", agent, None))
        rows["assign"].append((self._id(), tid, created, "group", group, None))
        for k in range(messages):
            if author == "customer":
                rows["messages"].append((self._id(), tid, t, customer, "customer", 1, 0))
                author = "agent"
                t += self._gap(180)
            else:
                kind = rng.random()
                if kind < 0.1:
                    rows["messages"].append((self._id(), tid, t, agent, "agent", 0, 0))  # private note
                elif kind < 0.15:
                    rows["messages"].append((self._id(), tid, t, "b1", "bot", 1, 1))
                else:
                    rows["messages"].append((self._id(), tid, t, agent, "agent", 1, 0))
                    if status == "new":
                        status = "open"
                        steps.append(("open", t))
                    author = "customer"
                t += self._gap(600)
        open_now = created > START + SPAN - 3 * 86400 and rng.random() < 0.7
        if not open_now:
            steps.append(("solved", t))
            if rng.random() < 0.1:  # reopened once, solved again
                t += self._gap(1440)
                steps.append(("open", t))
                t += self._gap(600)
                steps.append(("solved", t))
            status = "solved"
        previous = None
        for name, at in steps:
            rows["status"].append((self._id(), tid, at, previous, name, STATUS_CAT.get(previous or "", None), STATUS_CAT[name], "user"))
            previous = name
        if status == "solved" and rng.random() < 0.25:
            good = rng.random() < 0.85
            rows["ratings"].append((self._id(), tid, "good" if good else "bad", 1.0 if good else 0.0, 1 if good else -1,
                                    t + 86400, t + 90000, agent))
        if rng.random() < 0.1:
            rows["time"].append((self._id(), tid, agent, rng.randint(60, 1800), created + 3600))
        if channel == "phone":
            rows["calls"].append((self._id(), tid, agent, created, rng.randint(60, 900), rng.randint(0, 120), rng.randint(0, 60)))
        if rng.random() < 0.2:
            rows["macros"].append((self._id(), tid, "m1", "Refund policy", agent, created + 1800))
        due = rng.random() < 0.6
        rows["tickets"].append((
            tid, channel, 1 if channel == "social" else 0, created, t, status, STATUS_CAT[status], customer,
            f"o{rng.randint(1, 1000)}", agent, group, rng.choice(("low", "normal", "high", "urgent")), int(outbound),
            created + 4 * 3600 if due else None, created + 48 * 3600 if due else None,
            '["vip"]' if rng.random() < 0.05 else "[]", f"https://bench.example/agent/tickets/{tid}",
        ))

    def flush(self, store: Store) -> int:
        messages = len(self.rows["messages"])
        with store.transaction():
            for name, sql in SQL.items():
                store.conn.executemany(sql, self.rows[name])
                self.rows[name] = []
        return messages


def generate(store: Store, tickets: int, seed: int = 1) -> tuple[int, float]:
    started = time.perf_counter()
    gen = Generator(seed)
    with store.transaction():
        store.conn.executemany(
            f"INSERT INTO users (source, external_id, name, role, is_bot, synced_at) VALUES ('zd', ?, ?, ?, ?, '{NOW}')",
            [(a, f"Agent {a}", "agent", 0) for a in gen.agents] + [("b1", "Answer Bot", "bot", 1)],
        )
        store.conn.execute(
            "INSERT INTO schedules (source, external_id, name, tz, intervals, holidays, is_default, synced_at) VALUES "
            f"('zd', 's1', 'Office', 'Europe/Berlin', '[[0,540,1020],[1,540,1020],[2,540,1020],[3,540,1020],[4,540,1020]]', '[]', 1, '{NOW}')"
        )
    messages = 0
    step = SPAN / tickets
    for number in range(1, tickets + 1):
        gen.ticket(number, START + int(number * step))
        if number % 20_000 == 0:
            messages += gen.flush(store)
            print(f"\r  generated {number:,} tickets", end="", file=sys.stderr)
    messages += gen.flush(store)
    print(file=sys.stderr)
    return messages, time.perf_counter() - started


def suite(store: Store, settings: MetricsSettings, workers: int = 1) -> tuple[float, dict[str, tuple[float, float]]]:
    """Every KPI over the last 13 weeks by week, facts already fresh: (wall s, {kpi: (wall, cpu)}).

    One worker: one KPI after another, each timed. Two workers: `evaluate_many` on two
    connections (the total is what counts; per-KPI times are then not measured)."""
    requests = []
    for kpi_id, kpi in all_kpis().items():
        options = {"since": "2025-10-02", "until": "2026-01-01", "now": "2026-01-01", "settings": settings, "refresh": False}
        if "period" in kpi.params:
            options["period"] = "week"
        requests.append((kpi_id, options))
    started = time.perf_counter()
    if workers > 1:
        evaluate_many(store, requests, workers)
        return time.perf_counter() - started, {}
    timings = {}
    for kpi_id, options in requests:
        t0, c0 = time.perf_counter(), time.process_time()
        evaluate(store, kpi_id, **options)
        timings[kpi_id] = (time.perf_counter() - t0, time.process_time() - c0)
    return time.perf_counter() - started, timings


def change_one_percent(store: Store, tickets: int, recent: bool = False, seed: int | None = None) -> float:
    """A new agent reply and a status change on 1 % of the tickets, written as a sync would.

    `recent`: the changed tickets are among the newest 5 % (the last ~5 weeks), as in a real
    incremental sync where mostly recent tickets move; otherwise they are spread over all history.
    """
    rng = random.Random(seed)
    run = f"{time.time_ns()}"
    first = tickets - tickets // 20 if recent else 1
    chosen = rng.sample(range(first, tickets + 1), max(1, tickets // 100))
    # After everything written so far, as in the next real sync: after the suite's window (a store
    # measured again keeps its KPI figures) and after the previous round (not piled onto one instant).
    last = store.conn.execute("SELECT unixepoch(created_at) FROM messages ORDER BY rowid DESC LIMIT 1").fetchone()
    at = max(WINDOW_END + 60, (last[0] if last else 0) + 120)
    started = time.perf_counter()
    with store.transaction():
        store.conn.executemany(SQL["messages"], [(f"x{run}-{n}", str(n), at, "a1", "agent", 1, 0) for n in chosen])
        store.conn.executemany(
            SQL["status"], [(f"y{run}-{n}", str(n), at + 60, "solved", "open", "resolved", "open", "user") for n in chosen]
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="20k tickets: a quick run")
    parser.add_argument("--db", help="store path (default: a temporary file, deleted afterwards)")
    parser.add_argument("--reuse", action="store_true", help="reuse the store at --db (skip generation)")
    parser.add_argument("--generate-only", action="store_true", help="generate the store at --db and stop")
    parser.add_argument("--no-build", action="store_true", help="with --reuse: keep the facts, only refresh what is pending")
    args = parser.parse_args()
    tickets = 20_000 if args.small else args.tickets
    tmp = None
    if args.db is None:
        tmp = tempfile.mkdtemp(prefix="kpisync-bench-")
        path = Path(tmp) / "bench.db"
    else:
        path = Path(args.db)
    settings = MetricsSettings(timezone="Europe/Berlin")
    print(f"store: {path}  cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}")
    with Store(path) as store:
        if args.reuse:
            tickets = store.count("tickets")
        else:
            messages, seconds = generate(store, tickets)
            print(f"generated {tickets:,} tickets, {messages:,} messages in {seconds:.1f} s")
            if args.generate_only:
                return
        if args.no_build and args.reuse:
            refresh_facts(store, settings=settings)
        else:
            cpu = time.process_time()
            build = refresh_all(store, settings)
            print(f"full facts build: {build.tickets:,} tickets in {build.seconds:.1f} s, "
                  f"{time.process_time() - cpu:.1f} s CPU in this process (a forked worker does part of it)")
        total, timings = suite(store, settings)
        cpu = sum(c for _, c in timings.values())
        own = {k: v for k, v in timings.items() if k != "converted_tickets"}
        print(f"KPI suite ({len(timings)} KPIs, 13 weeks by week): {total:.2f} s, {cpu:.2f} s CPU (goal ≤ 3 s); "
              f"without converted_tickets (core/metrics/conversion.py): {sum(w for w, _ in own.values()):.2f} s, "
              f"{sum(c for _, c in own.values()):.2f} s CPU")
        for kpi_id, (wall, cpu) in sorted(timings.items(), key=lambda kv: -kv[1][1])[:8]:
            print(f"  {kpi_id:28s} {wall * 1000:7.0f} ms  {cpu * 1000:7.0f} ms CPU")
        parallel, _ = suite(store, settings, workers=2)
        print(f"KPI suite on two connections (evaluate_many, 2 threads): {parallel:.2f} s")
        t0 = time.perf_counter()
        board = dashboard(store, settings=settings, since="2025-12-01", until="2026-01-01", now="2026-01-01")
        print(f"dashboard ({len(board.results)} KPIs, 1 month vs previous): {time.perf_counter() - t0:.2f} s")
        for recent in (False, True):
            write = change_one_percent(store, tickets, recent=recent)
            cpu = time.process_time()
            result = refresh_facts(store, settings=settings)
            cpu = time.process_time() - cpu
            where = "among the newest 5 %" if recent else "spread over all history"
            print(f"incremental refresh after 1 % changed ({result.tickets:,} tickets, {where}): {result.seconds:.2f} s, "
                  f"{cpu:.2f} s CPU (goal ≤ 1 s; writing the changes took {write:.2f} s)")
    if tmp:
        shutil.rmtree(tmp)  # the store, its -wal/-shm and its facts lock file


if __name__ == "__main__":
    main()
