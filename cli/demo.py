"""`kpisync demo`: simulators on loopback, a real pull of every connector, then the dashboard."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core.errors import KpisyncError
from kpisync.core.httpclient import Runtime
from kpisync.core.registry import load_connector
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source

from .app import app
from .progress import TerminalProgress

DEMO_MARKER = "kpisync_demo"


@app.command()
def demo(
    db: str = typer.Option("kpisync-demo.db", "--db", help="Demo store (replaced on every run)."),
    seed: int = typer.Option(1, "--seed", help="Seed of the generated accounts."),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Show the KPI dashboard at the end."),
) -> None:
    """Pull generated accounts from built-in API simulators on 127.0.0.1 — no account, no network."""
    from kpisync.fixtures.demo import TIME_SCALE, demo_account

    path = Path(db)
    _replace_demo_store(path)
    console = Console(stderr=True)
    started = time.monotonic()
    runs: list[tuple[str, str, RunResult]] = []
    with Store(path) as store:
        store.conn.execute(f"CREATE TABLE IF NOT EXISTS {DEMO_MARKER} (created_at TEXT)")
        console.print("[bold]kpisync demo[/]: generating 14 months of help-desk life and starting the simulators…")
        with demo_account(seed=seed, session_dir=str(path.parent)) as account:
            for source in account.sources:
                progress = TerminalProgress(console)
                runtime = Runtime(time_scale=TIME_SCALE, on_wait=progress.on_wait)
                connector_cls = load_connector(source.connector)
                connector = connector_cls(connector_cls.config_model(**source.settings), runtime)
                console.print(f"[bold]pull {source.source}[/] ({source.note}) from {source.server.url}", highlight=False)
                with progress:
                    run = sync_source(store, source.source, connector, observer=progress)
                runs.append((source.source, source.note, run))
                if run.status != "success":
                    raise KpisyncError(f"demo: pulling {source.source} failed: {run.error}")
    _summary(Console(), runs, time.monotonic() - started)
    from kpisync.core.reports import write_team_report

    with Store(path) as store:
        report = write_team_report(store, path.with_name(f"{path.stem}-team-report.html"))
    if dashboard:
        from .dashboard import dashboard_command

        dashboard_command(role=None, since=None, until=None, hours="calendar", compare=True,
                          check_targets=False, db=str(path), config=None, as_json=False)
    _conversion(Console(), path)
    Console().print(f"\nTeam report (last full month vs the one before and a year ago): [bold]{report}[/]", highlight=False)
    Console().print(
        f"The store is [bold]{path}[/]. Try: kpisync status --db {path} · "
        f"kpisync kpi list · kpisync kpi first_response_time --db {path} --period month --by source",
        highlight=False,
    )


def _conversion(console: Console, path: Path) -> None:
    """Converted tickets of the last 30 days: the help desks joined with the shop's orders."""
    from kpisync.core import metrics
    from kpisync.core.metrics.settings import MetricsSettings

    # The demo's customers are in Germany: national numbers ("030 …") are read as +49.
    result = metrics.kpi(path, "converted_tickets", settings=MetricsSettings(default_phone_country="49"))
    for row in result.rows:
        if row.get("value") is None:
            continue
        revenue = ", ".join(f"{amount} {currency}" for currency, amount in sorted(row.get("revenue", {}).items()))
        keys = ", ".join(f"{key} {n}" for key, n in sorted((row.get("matched_by") or {}).items()) if n)
        console.print(
            f"\nconverted tickets (an order within 5 days, last 30 days): {row['converted']} of {row['count']} "
            f"customer tickets = {row['value']:.1%}{f' (orders matched by {keys})' if keys else ''}; revenue {revenue or '0'}",
            highlight=False,
        )


def _replace_demo_store(path: Path) -> None:
    """Remove the previous demo store — but never a store that the demo did not create."""
    if not path.exists():
        return
    with Store(path) as store:
        marked = store.query("SELECT name FROM sqlite_master WHERE name = ?", (DEMO_MARKER,))
    if not marked:
        raise KpisyncError(f"{path} exists and is not a demo store; choose another --db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _summary(console: Console, runs: list[tuple[str, str, RunResult]], seconds: float) -> None:
    table = Table(title=f"demo pulls ({seconds:.1f} s in all)", title_justify="left", header_style="bold")
    for column in ("source", "how", "records", "requests", "seconds"):
        table.add_column(column, justify="right" if column in ("records", "requests", "seconds") else "left")
    for source, note, run in runs:
        table.add_row(source, note, f"{run.records:,}", str(run.requests), f"{run.seconds:.1f}")
    console.print(table)
