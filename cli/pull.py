"""`kpisync pull SOURCE`: sync one source into the store."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console

from kpisync.core.errors import KpisyncError
from kpisync.core.httpclient import Runtime
from kpisync.core.sync import RunResult, sync_source

from .app import ConfigOption, DbOption, JsonOption, app
from .common import build_connector, open_store, stop_on_signals
from .progress import TerminalProgress, print_summary

EXIT_CODES = {"success": 0, "failed": 1, "interrupted": 130}


@app.command()
def pull(
    source: str = typer.Argument(..., help="Source name: a connector (zendesk) or a \\[sources.NAME] of the config."),
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Forget cursors and re-read everything (rows are upserted, never duplicated)."),
    stream: Optional[list[str]] = typer.Option(None, "--stream", help="Only these streams (repeatable)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Verify credentials with one request first."),
    as_json: bool = JsonOption,
) -> None:
    """Pull SOURCE: the first run reads the full history, later runs only what changed."""
    run = pull_source(source, db, config, full_refresh=full_refresh, streams=stream, check=check, as_json=as_json)
    raise typer.Exit(EXIT_CODES.get(run.status, 1))


def pull_source(
    source: str,
    db: str | None,
    config: str | None,
    *,
    full_refresh: bool = False,
    streams: list[str] | None = None,
    check: bool = True,
    as_json: bool = False,
) -> RunResult:
    """Shared by `pull`, `sync` and `demo`: one source, with progress and a summary."""
    console = Console(stderr=True)
    progress = TerminalProgress(console)
    runtime = Runtime(on_wait=progress.on_wait)
    connector = build_connector(source, config, runtime)
    with open_store(db) as store, stop_on_signals(runtime):
        try:
            if check:
                connector.check()
        except KpisyncError:
            connector.close()
            raise
        with progress:
            run = sync_source(store, source, connector, full_refresh=full_refresh, only_streams=streams, observer=progress)
    if as_json:
        json.dump(run.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_summary(Console(), run)
    if run.status == "failed" and run.error:
        print(f"error: {run.error}", file=sys.stderr)
    return run
