"""Benchmark of `kpisync report` on a demo-sized store (13 months of help-desk life).

    python bench/bench_reports.py --db kpisync-demo.db     # a store `kpisync demo` left behind
    python bench/bench_reports.py                          # runs `kpisync demo` into a temp dir first

Measures, for the last complete month: the report data (metrics API calls), the rendering
(Markdown; HTML with its charts) and each command end to end as a user runs it (a fresh
process: Python start-up, imports and the chart engine's start included). Goal: a few seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kpisync.core.metrics.settings import MetricsSettings
from kpisync.core.reports import agent_reports, render, team_report, trends_report
from kpisync.core.store import Store


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn()
    print(f"  {label:<44} {time.perf_counter() - started:6.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="an existing store (default: run `kpisync demo` into a temp dir)")
    parser.add_argument("--timezone", default="UTC")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kpisync-bench-reports-"))
    db = Path(args.db) if args.db else folder / "demo.db"
    if not args.db:
        print(f"building the demo store in {db} (kpisync demo) ...", flush=True)
        subprocess.run([sys.executable, "-m", "kpisync.cli", "demo", "--db", str(db), "--no-dashboard"], check=True,
                       stdout=subprocess.DEVNULL)
    settings = MetricsSettings(timezone=args.timezone)
    with Store(db) as store:
        tickets = store.conn.execute("SELECT count(*), min(created_at), max(created_at) FROM tickets").fetchone()
        print(f"store: {tickets[0]:,} tickets from {tickets[1]} to {tickets[2]}")
        print("in process:")
        team = timed("team report data", lambda: team_report(store, settings))
        timed("team report Markdown", lambda: render(team, "md"))
        timed("team report HTML (4 charts, engine start incl.)", lambda: render(team, "html"))
        agents = timed("agent reports data", lambda: agent_reports(store, settings))
        timed(f"agent reports Markdown + HTML ({len(agents)} agents)",
              lambda: [render(a, f) for a in agents for f in ("md", "html")])
        trends = timed("trends report data (12 months)", lambda: trends_report(store, settings))
        timed("trends report HTML", lambda: render(trends, "html"))
    print("end to end (a fresh `kpisync` process each):")
    cli = [sys.executable, "-m", "kpisync.cli", "report"]
    for label, extra in (
        ("report team --format md", ["team", "--format", "md", "-o", str(folder / "team.md")]),
        ("report team --format html", ["team", "--format", "html", "-o", str(folder / "team.html")]),
        ("report agents --out-dir (md)", ["agents", "--out-dir", str(folder / "agents")]),
        ("report trends --months 12 --format html", ["trends", "--format", "html", "-o", str(folder / "trends.html")]),
    ):
        timed(label, lambda extra=extra: subprocess.run([*cli, *extra, "--db", str(db)], check=True,
                                                        capture_output=True))
    print(f"reports written to {folder}")


if __name__ == "__main__":
    main()
